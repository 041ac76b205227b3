// Packing of row groups into the interleaved layouts (Q4_0, Q8_0, Q4_K, Q5_K), and the scalar reference gemm over them.
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kernels/kernels_internal.h"
#include "kernels/packed.h"

namespace gemma::kernels::detail {
namespace {

constexpr int kRows = 8;

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
            for (int k = 0; k < kWords; ++k) std::memcpy(&out.qs[32 * k + 4 * r], &in.qs[4 * k], 4);
        }
        std::memcpy(g + b, &out, sizeof out);
    }
}

// Q4_K and Q5_K: d, dmin, the 3 scale words and the quant words (and Q5_K's high-bit words) interleaved.
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
            out.dmin[r] = in.dmin;
            for (int w = 0; w < 3; ++w) std::memcpy(&out.sc[4 * (8 * w + r)], &in.scales[4 * w], 4);
            for (int k = 0; k < QK_K / 8; ++k) std::memcpy(&out.qs[32 * k + 4 * r], &in.qs[4 * k], 4);
            if constexpr (requires { in.qh; })
                for (int k = 0; k < QK_K / 32; ++k) std::memcpy(&out.qh[32 * k + 4 * r], &in.qh[4 * k], 4);
        }
        std::memcpy(g + b, &out, sizeof out);
    }
}

// The packed arithmetic, which every ISA reproduces bit for bit: per (row, token) one exact integer dot per
// block, then acc = fma(float(isum), d_w * d_a, acc) over blocks in order. Exact integers make the SIMD
// lanes' summation order irrelevant; only the float steps are fixed, and they are the same here.
int32_t isum_q4_0(const block_q4_0x8& g, int r, const block_q8_0& a) {
    int32_t s = 0;
    for (int k = 0; k < 4; ++k)
        for (int j = 0; j < 4; ++j) {
            const uint8_t q = g.qs[32 * k + 4 * r + j];
            s += ((q & 0xF) - 8) * a.qs[4 * k + j] + ((q >> 4) - 8) * a.qs[16 + 4 * k + j];
        }
    return s;
}

int32_t isum_q8_0(const block_q8_0x8& g, int r, const block_q8_0& a) {
    int32_t s = 0;
    for (int k = 0; k < 8; ++k)
        for (int j = 0; j < 4; ++j) s += g.qs[32 * k + 4 * r + j] * a.qs[4 * k + j];
    return s;
}

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

// One row's step over one block of the 32-element types: acc = fma(isum, d_w * d_a, acc).
template <typename Group, int32_t (*Isum)(const Group&, int, const block_q8_0&)>
float step_32(const Group& g, int r, const block_q8_0& a, float acc) {
    return std::fma(static_cast<float>(Isum(g, r, a)), fp16_to_fp32(g.d[r]) * fp16_to_fp32(a.d), acc);
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

}  // namespace

void fill_ref_packed(KernelTable& t) {
    t.pack[idx(TypeId::Q4_0)] = pack<block_q4_0x8, block_q4_0>;
    t.pack[idx(TypeId::Q8_0)] = pack<block_q8_0x8, block_q8_0>;
    t.gemm_packed[idx(TypeId::Q4_0)] =
        gemm_packed_ref<block_q4_0x8, block_q8_0, QK4_0, step_32<block_q4_0x8, isum_q4_0>>;
    t.gemm_packed[idx(TypeId::Q8_0)] =
        gemm_packed_ref<block_q8_0x8, block_q8_0, QK8_0, step_32<block_q8_0x8, isum_q8_0>>;
    t.pack[idx(TypeId::Q4_K)] = pack_k<block_q4_Kx8, block_q4_K>;
    t.gemm_packed[idx(TypeId::Q4_K)] = gemm_packed_ref<block_q4_Kx8, block_q8_K, QK_K, step_k<block_q4_Kx8>>;
    t.pack[idx(TypeId::Q5_K)] = pack_k<block_q5_Kx8, block_q5_K>;
    t.gemm_packed[idx(TypeId::Q5_K)] = gemm_packed_ref<block_q5_Kx8, block_q8_K, QK_K, step_k<block_q5_Kx8>>;
}

}  // namespace gemma::kernels::detail
