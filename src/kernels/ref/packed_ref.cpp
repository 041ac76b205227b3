// Packing of row groups into the interleaved layouts (packed.h), and the scalar reference gemm over them.
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kernels/kernels_internal.h"
#include "kernels/packed.h"
#include "quant/iq_tables.h"

namespace gemma::kernels::detail {
namespace {

constexpr int kRows = 8;

// The 32 high bits of a Q5_0 / Q5_1 block (bit e: element e) in the packed order of packed.h.
uint32_t packed_qh(const uint8_t* qh) {
    uint32_t h = 0, out = 0;
    std::memcpy(&h, qh, 4);
    for (int k = 0; k < 4; ++k)
        for (int j = 0; j < 4; ++j) {
            out |= ((h >> (4 * k + j)) & 1u) << (8 * j + 4 + k);
            out |= ((h >> (16 + 4 * k + j)) & 1u) << (8 * j + k);
        }
    return out;
}

// The 32-element types: d (and m), the high-bit words, and the quant words interleaved.
template <typename Group, typename Block>
void pack(int64_t n, const void* src, size_t row_bytes, void* dst) {
    constexpr int kWords = static_cast<int>(sizeof(Block{}.qs)) / 4;
    auto* g = static_cast<Group*>(dst);
    const auto* s = static_cast<const uint8_t*>(src);
    for (int64_t b = 0; b < n / 32; ++b) {
        Group out;
        for (int r = 0; r < kRows; ++r) {
            Block in;
            std::memcpy(&in, s + static_cast<size_t>(r) * row_bytes + static_cast<size_t>(b) * sizeof(Block), sizeof in);
            out.d[r] = in.d;
            if constexpr (requires { in.m; }) out.m[r] = in.m;
            if constexpr (requires { in.qh; }) {
                const uint32_t h = packed_qh(in.qh);
                std::memcpy(&out.qh[4 * r], &h, 4);
            }
            for (int k = 0; k < kWords; ++k) std::memcpy(&out.qs[32 * k + 4 * r], &in.qs[4 * k], 4);
        }
        std::memcpy(g + b, &out, sizeof out);
    }
}

// Row r's copy of a byte array (a whole number of words) into its interleaved group array: word k at 32k + 4r.
template <size_t N>
void put_words(uint8_t* dst, const uint8_t (&src)[N], int r) {
    static_assert(N % 4 == 0);
    for (size_t k = 0; k < N / 4; ++k) std::memcpy(dst + 32 * k + 4 * static_cast<size_t>(r), src + 4 * k, 4);
}

// Where Q3_K's packed hmask keeps ggml's bit 4h + m (packed.h).
constexpr int q3_hbit_pos(int h, int m) { return 2 * (1 - h) + (m & 1) + 4 * (m >> 1); }
struct HmaskBytes { uint8_t b[QK_K / 8]; };
HmaskBytes q3_hmask_permuted(const uint8_t (&hmask)[QK_K / 8]) {
    HmaskBytes out{};
    for (int l = 0; l < QK_K / 8; ++l)
        for (int bit = 0; bit < 8; ++bit)
            out.b[l] = static_cast<uint8_t>(out.b[l] | ((hmask[l] >> bit) & 1) << q3_hbit_pos(bit / 4, bit % 4));
    return out;
}

// The super-block types: d (and dmin) per row, then every byte array word-interleaved (Q4_K/Q5_K/Q3_K: 3 scale
// words; Q6_K/Q2_K: 4; IQ4_XS: 1, its scales_h beside it), with Q6_K's and Q3_K's arrays renamed to the group's fields.
template <typename Group, typename Block>
void pack_k(int64_t n, const void* src, size_t row_bytes, void* dst) {
    auto* g = static_cast<Group*>(dst);
    const auto* s = static_cast<const uint8_t*>(src);
    for (int64_t b = 0; b < n / QK_K; ++b) {
        Group out;
        for (int r = 0; r < kRows; ++r) {
            Block in;
            std::memcpy(&in, s + static_cast<size_t>(r) * row_bytes + static_cast<size_t>(b) * sizeof in, sizeof in);
            out.d[r] = in.d;
            if constexpr (requires { in.dmin; }) out.dmin[r] = in.dmin;
            if constexpr (requires { in.scales_l; }) {
                out.sh[r] = in.scales_h;
                put_words(out.sl, in.scales_l, r);
            } else {
                uint8_t sc[sizeof in.scales];
                std::memcpy(sc, in.scales, sizeof sc);  // Q6_K's are int8
                put_words(out.sc, sc, r);
            }
            if constexpr (requires { in.ql; }) put_words(out.ql, in.ql, r);
            if constexpr (requires { in.qs; }) put_words(out.qs, in.qs, r);
            if constexpr (requires { in.qh; }) put_words(out.qh, in.qh, r);
            if constexpr (requires { in.hmask; }) put_words(out.hmask, q3_hmask_permuted(in.hmask).b, r);
        }
        std::memcpy(g + b, &out, sizeof out);
    }
}

// The packed arithmetic, which every ISA reproduces bit for bit: per (row, token) one exact integer dot per
// block, then acc = fma(float(isum), d_w * d_a, acc) over blocks in order. Exact integers make the SIMD
// lanes' summation order irrelevant; only the float steps are fixed, and they are the same here.
// Element e of row r's block as the integer the kernels multiply (offsets removed; 4-bit types: word k holds
// elements 4k..4k+3 in its low nibbles and 16+4k.. in its high nibbles).
template <typename Group>
int nibble(const Group& g, int r, int e) {
    const uint8_t q = g.qs[32 * ((e % 16) / 4) + 4 * r + e % 4];
    return e < 16 ? (q & 0xF) : (q >> 4);
}
template <typename Group>
int high_bit(const Group& g, int r, int e) {
    uint32_t h = 0;
    std::memcpy(&h, &g.qh[4 * r], 4);
    const int f = e % 16;
    return static_cast<int>((h >> (8 * (f % 4) + f / 4 + (e < 16 ? 4 : 0))) & 1u);
}
int val_q4_0(const block_q4_0x8& g, int r, int e) { return nibble(g, r, e) - 8; }
int val_q4_1(const block_q4_1x8& g, int r, int e) { return nibble(g, r, e); }
int val_q5_0(const block_q5_0x8& g, int r, int e) { return (nibble(g, r, e) | high_bit(g, r, e) << 4) - 16; }
int val_q5_1(const block_q5_1x8& g, int r, int e) { return nibble(g, r, e) | high_bit(g, r, e) << 4; }
int val_iq4_nl(const block_iq4_nlx8& g, int r, int e) { return kvalues_iq4nl[nibble(g, r, e)]; }
int val_q8_0(const block_q8_0x8& g, int r, int e) { return g.qs[32 * (e / 4) + 4 * r + e % 4]; }

// Row r's 6-bit scale and min of sub-block j, from the interleaved scale words (ggml's get_scale_min_k4).
template <typename Group>
void scale_min_k4(const Group& g, int r, int j, int& sc, int& m) {
    auto q = [&](int i) { return static_cast<int>(g.sc[4 * (8 * (i / 4) + r) + i % 4]); };
    if (j < 4) {
        sc = q(j) & 63;
        m = q(j + 4) & 63;
    } else {
        sc = (q(j + 4) & 0xF) | ((q(j - 4) >> 6) << 4);
        m = (q(j + 4) >> 4) | ((q(j) >> 6) << 4);
    }
}

// One row's step over one block of the 32-element types: acc = fma(isum, d_w * d_a, acc), then for the types
// with a min (against Q8_1) acc = fma(m_w, s_a, acc).
template <typename Group, typename Act, int (*Val)(const Group&, int, int)>
float step_32(const Group& g, int r, const Act& a, float acc) {
    int32_t isum = 0;
    for (int e = 0; e < 32; ++e) isum += Val(g, r, e) * a.qs[e];
    acc = std::fma(static_cast<float>(isum), fp16_to_fp32(g.d[r]) * fp16_to_fp32(a.d), acc);
    if constexpr (requires { g.m; }) acc = std::fma(fp16_to_fp32(g.m[r]), fp16_to_fp32(a.s), acc);
    return acc;
}

// Q4_K / Q5_K, one super-block: acc = fma(isum, d * d_a, acc), then acc = fma(-msum, dmin * d_a, acc), where
// isum is sum_j scale_j * (q . a over sub-block j) and msum is sum_j min_j * (the activation sum of sub-block j).
template <typename Group>
float step_k(const Group& g, int r, const block_q8_K& a, float acc) {
    int32_t isum = 0, msum = 0;
    for (int j = 0; j < 8; ++j) {
        int sc = 0, m = 0;
        scale_min_k4(g, r, j, sc, m);
        int32_t dot = 0;
        for (int i = 0; i < 32; ++i) {
            const int k = 8 * (j / 2) + i / 4;  // the qs word holding element i of sub-block j
            const uint8_t q = g.qs[32 * k + 4 * r + i % 4];
            int v = (j % 2) ? (q >> 4) : (q & 0xF);
            if constexpr (requires { g.qh; }) v |= ((g.qh[32 * (i / 4) + 4 * r + i % 4] >> j) & 1) << 4;
            dot += v * a.qs[32 * j + i];
        }
        isum += sc * dot;
        msum += m * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
    }
    acc = std::fma(static_cast<float>(isum), fp16_to_fp32(g.d[r]) * a.d, acc);
    return std::fma(-static_cast<float>(msum), fp16_to_fp32(g.dmin[r]) * a.d, acc);
}

// Q6_K, one super-block: acc = fma(isum, d * d_a, acc) with isum = sum_i scale_i * (sum over sub-block i of
// (q - 32) * a), q the 6-bit quant of ggml's layout (element 128h + 32m + l: ql byte 64h + l + 32(m & 1), its
// high nibble for m >= 2; bits 2m, 2m+1 of qh byte 32h + l).
float step_q6_k(const block_q6_Kx8& g, int r, const block_q8_K& a, float acc) {
    auto byte = [r](const uint8_t* v, int i) { return v[32 * (i / 4) + 4 * r + i % 4]; };
    int32_t isum = 0;
    for (int i = 0; i < QK_K / 16; ++i) {
        int32_t dot = 0;
        for (int e = 16 * i; e < 16 * i + 16; ++e) {
            const int h = e / 128, m = (e % 128) / 32, l = e % 32;
            const uint8_t lb = byte(g.ql, 64 * h + l + 32 * (m & 1));
            const int q = (m >= 2 ? lb >> 4 : lb & 0xF) | ((byte(g.qh, 32 * h + l) >> (2 * m)) & 3) << 4;
            dot += (q - 32) * a.qs[e];
        }
        isum += static_cast<int8_t>(byte(g.sc, i)) * dot;
    }
    return std::fma(static_cast<float>(isum), fp16_to_fp32(g.d[r]) * a.d, acc);
}

// Byte i of row r's copy of an interleaved byte array.
inline int row_byte(const uint8_t* v, int r, int i) { return v[32 * (i / 4) + 4 * r + i % 4]; }
// The 2-bit field of element e in Q2_K / Q3_K's qs (ggml's order: byte 32(e/128) + e%32, bits 2((e%128)/32)).
inline int low2(const uint8_t* qs, int r, int e) { return (row_byte(qs, r, 32 * (e / 128) + e % 32) >> (2 * ((e % 128) / 32))) & 3; }

// Q3_K, one super-block: acc = fma(isum, d * d_a, acc), isum = sum_j (scale_j - 32) * (sum over sub-block j of
// (q - 4 + 4 hbit) * a), scale_j 6-bit: low 4 bits from byte j (j < 8) or the high nibble of byte j - 8, top 2
// bits from byte 8 + j%4 at 2(j/4).
float step_q3_k(const block_q3_Kx8& g, int r, const block_q8_K& a, float acc) {
    int32_t isum = 0;
    for (int j = 0; j < QK_K / 16; ++j) {
        const int lo = j < 8 ? row_byte(g.sc, r, j) & 0xF : row_byte(g.sc, r, j - 8) >> 4;
        const int hi = (row_byte(g.sc, r, 8 + j % 4) >> (2 * (j / 4))) & 3;
        int32_t dot = 0;
        for (int e = 16 * j; e < 16 * j + 16; ++e) {
            const int hbit = (row_byte(g.hmask, r, e % 32) >> q3_hbit_pos(e / 128, (e % 128) / 32)) & 1;
            dot += (low2(g.qs, r, e) - 4 + 4 * hbit) * a.qs[e];
        }
        isum += ((lo | hi << 4) - 32) * dot;
    }
    return std::fma(static_cast<float>(isum), fp16_to_fp32(g.d[r]) * a.d, acc);
}

// Q2_K, one super-block: acc = fma(isum, d * d_a, acc), then acc = fma(-msum, dmin * d_a, acc), with
// isum = sum_j (low nibble of scale byte j) * (q . a over sub-block j), msum = sum_j (high nibble) * bsum_j.
float step_q2_k(const block_q2_Kx8& g, int r, const block_q8_K& a, float acc) {
    int32_t isum = 0, msum = 0;
    for (int j = 0; j < QK_K / 16; ++j) {
        const int sc = row_byte(g.sc, r, j);
        int32_t dot = 0;
        for (int e = 16 * j; e < 16 * j + 16; ++e) dot += low2(g.qs, r, e) * a.qs[e];
        isum += (sc & 0xF) * dot;
        msum += (sc >> 4) * a.bsums[j];
    }
    acc = std::fma(static_cast<float>(isum), fp16_to_fp32(g.d[r]) * a.d, acc);
    return std::fma(-static_cast<float>(msum), fp16_to_fp32(g.dmin[r]) * a.d, acc);
}

// IQ4_XS, one super-block: acc = fma(isum, d * d_a, acc), isum = sum_j (scale_j - 32) * (sum over sub-block j of
// kvalues_iq4nl[q] * a), scale_j 6-bit: bits 4j..4j+3 of the row's sl word, top 2 bits from bits 2j, 2j+1 of sh.
float step_iq4_xs(const block_iq4_xsx8& g, int r, const block_q8_K& a, float acc) {
    uint32_t sl = 0;
    std::memcpy(&sl, &g.sl[4 * r], 4);
    const uint32_t sh = g.sh[r];
    int32_t isum = 0;
    for (int j = 0; j < QK_K / 32; ++j) {
        const int ls = static_cast<int>(((sl >> (4 * j)) & 0xF) | ((sh >> (2 * j)) & 3) << 4);
        int32_t dot = 0;
        for (int i = 0; i < 32; ++i) {
            const int q = row_byte(g.qs, r, 16 * j + i % 16);
            dot += kvalues_iq4nl[i < 16 ? q & 0xF : q >> 4] * a.qs[32 * j + i];
        }
        isum += (ls - 32) * dot;
    }
    return std::fma(static_cast<float>(isum), fp16_to_fp32(g.d[r]) * a.d, acc);
}

// Every (row, token): acc = 0, then Step over the blocks in order.
template <typename Group, typename Act, int QK, float (*Step)(const Group&, int, const Act&, float)>
void gemm_packed_ref(int64_t n, const void* W, size_t wrb, int64_t r0, int64_t r1, const void* act, size_t arb,
                     int64_t n_tok, float* out, int64_t stride) {
    const int64_t nb = n / QK;
    for (int64_t t = 0; t < n_tok; ++t) {
        const auto* a = reinterpret_cast<const Act*>(static_cast<const uint8_t*>(act) + t * arb);
        for (int64_t g0 = r0; g0 < r1; g0 += kRows) {
            const auto* g = reinterpret_cast<const Group*>(static_cast<const uint8_t*>(W) + g0 * wrb);
            for (int r = 0; r < kRows; ++r) {
                float acc = 0.0f;
                for (int64_t b = 0; b < nb; ++b) acc = Step(g[b], r, a[b], acc);
                out[t * stride + g0 + r] = acc;
            }
        }
    }
}

template <typename Group, typename Block, typename Act, int (*Val)(const Group&, int, int)>
void install_32(KernelTable& t, TypeId id) {
    t.pack[idx(id)] = pack<Group, Block>;
    t.gemm_packed[idx(id)] = gemm_packed_ref<Group, Act, 32, step_32<Group, Act, Val>>;
}

}  // namespace

void fill_ref_packed(KernelTable& t) {
    install_32<block_q4_0x8, block_q4_0, block_q8_0, val_q4_0>(t, TypeId::Q4_0);
    install_32<block_q8_0x8, block_q8_0, block_q8_0, val_q8_0>(t, TypeId::Q8_0);
    install_32<block_q4_1x8, block_q4_1, block_q8_1, val_q4_1>(t, TypeId::Q4_1);
    install_32<block_q5_0x8, block_q5_0, block_q8_0, val_q5_0>(t, TypeId::Q5_0);
    install_32<block_q5_1x8, block_q5_1, block_q8_1, val_q5_1>(t, TypeId::Q5_1);
    install_32<block_iq4_nlx8, block_iq4_nl, block_q8_0, val_iq4_nl>(t, TypeId::IQ4_NL);
    t.pack[idx(TypeId::Q4_K)] = pack_k<block_q4_Kx8, block_q4_K>;
    t.gemm_packed[idx(TypeId::Q4_K)] = gemm_packed_ref<block_q4_Kx8, block_q8_K, QK_K, step_k<block_q4_Kx8>>;
    t.pack[idx(TypeId::Q5_K)] = pack_k<block_q5_Kx8, block_q5_K>;
    t.gemm_packed[idx(TypeId::Q5_K)] = gemm_packed_ref<block_q5_Kx8, block_q8_K, QK_K, step_k<block_q5_Kx8>>;
    t.pack[idx(TypeId::Q6_K)] = pack_k<block_q6_Kx8, block_q6_K>;
    t.gemm_packed[idx(TypeId::Q6_K)] = gemm_packed_ref<block_q6_Kx8, block_q8_K, QK_K, step_q6_k>;
    t.pack[idx(TypeId::Q3_K)] = pack_k<block_q3_Kx8, block_q3_K>;
    t.gemm_packed[idx(TypeId::Q3_K)] = gemm_packed_ref<block_q3_Kx8, block_q8_K, QK_K, step_q3_k>;
    t.pack[idx(TypeId::Q2_K)] = pack_k<block_q2_Kx8, block_q2_K>;
    t.gemm_packed[idx(TypeId::Q2_K)] = gemm_packed_ref<block_q2_Kx8, block_q8_K, QK_K, step_q2_k>;
    t.pack[idx(TypeId::IQ4_XS)] = pack_k<block_iq4_xsx8, block_iq4_xs>;
    t.gemm_packed[idx(TypeId::IQ4_XS)] = gemm_packed_ref<block_iq4_xsx8, block_q8_K, QK_K, step_iq4_xs>;
}

}  // namespace gemma::kernels::detail
