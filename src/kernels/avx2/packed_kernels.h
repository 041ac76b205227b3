// AVX2 (and AVX-VNNI) gemm over row-interleaved groups (kernels/packed.h): each instruction works on 8 rows.
// Included by one TU per ISA: packed_avx2.cpp, and vnni/packed_vnni.cpp with GEMMA_VNNI defined, where every
// u8 x s8 dot goes through vpdpbusd straight into int32 instead of maddubs + int16 sums + madd. The integer
// results are exact either way, so both give Ref's bits.
#pragma once
#include "kernels/avx2/avx2_common.h"
#include "kernels/kernels_internal.h"
#include "kernels/packed.h"
#include "kernels/packed_driver.h"
#include "quant/iq_tables.h"


namespace gemma::kernels::detail {
namespace {

using namespace avx2;

#ifdef GEMMA_VNNI
constexpr bool kVnni = true;
// acc + the sums of 4 u8 x s8 products per int32 lane, exact (no saturation anywhere).
inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_avx_epi32(acc, u, s); }
#else
constexpr bool kVnni = false;
inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) { return _mm256_add_epi32(acc, dot_u8s8_lanes(u, s)); }
#endif

// One activation word (4 quants) in every lane: it meets 4 quants of each of the 8 rows of the group.
inline __m256i bcast_word(const int8_t* p) { return _mm256_set1_epi32(static_cast<int>(load_u32(p))); }

// s[b] = 2^shift * (sum of block b's quants): the offset term of Q4_0 (shift 3) and Q5_0 (shift 4). Eight blocks at a time through a transposing
// hadd tree (a per-block horizontal sum costs twice as much, and decode recomputes this for every chunk).
void offset_sums(const block_q8_0* a, int64_t nb, int32_t* s, int shift) {
    const __m256i ones8 = _mm256_set1_epi8(1);
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        __m256i v[8];
        #pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) v[i] = dot_u8s8_lanes(ones8, loadu256(a[b + i].qs));
        const __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
        const __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
        // h0 holds blocks 0..3 (low 128: lanes 0..3 of each, high 128: lanes 4..7), h1 blocks 4..7.
        const __m256i tot = _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20), _mm256_permute2x128_si256(h0, h1, 0x31));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(s + b), _mm256_sll_epi32(tot, _mm_cvtsi32_si128(shift)));
    }
    for (; b < nb; ++b) s[b] = hsum_epi32(dot_u8s8_lanes(ones8, loadu256(a[b].qs))) << shift;
}

// The 4- and 5-bit types: unsigned quants q (the fifth bit ORed in from the rearranged high-bit word, packed.h)
// times signed activations. Offset types (Q4_0: 8, Q5_0: 16) remove 2^kShift * sum(a) once per block, computed
// once per token and block by the driver and shared by every group; min types (Q4_1, Q5_1) need nothing here.
// maddubs results add up in int16 before one madd widens them: all 8 for 4 bits (|q a| <= 15 * 128, 16
// products per lane pair), 4 for 5 bits (31 * 128).
template <typename G, typename A, bool kHigh, int kShift>
struct NibbleInts {
    using Group = G;
    using Act = A;
    static constexpr int kAux = kShift > 0 ? 1 : 0;  // per token and block: 2^kShift * sum(a)
    static void prepare(const Act* a, int64_t nb, int32_t* aux) {
        if constexpr (kShift > 0) offset_sums(a, nb, aux, kShift);
    }

    template <int T>
    GEMMA_ALWAYS_INLINE static void block(const Group& g, const Act* const* a, const int32_t* const* sums, int64_t b,
                                          __m256i (&i32)[T]) {
        const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
        __m256i hbits = _mm256_setzero_si256();
        if constexpr (kHigh) hbits = loadu256(g.qh);
        __m256i s16[T];
        #pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
            const __m256i raw = loadu256(g.qs + 32 * k);
            __m256i lo = _mm256_and_si256(raw, m4);                        // elements 4k..4k+3
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);  // elements 16+4k..
            if constexpr (kHigh) {
                lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_srli_epi32(hbits, k), b4));
                hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi32(hbits, 4 - k), b4));
            }
            if constexpr (kVnni) {
                #pragma GCC unroll 8
                for (int t = 0; t < T; ++t) {
                    i32[t] = dpbusd(k == 0 ? _mm256_setzero_si256() : i32[t], lo, bcast_word(a[t][b].qs + 4 * k));
                    i32[t] = dpbusd(i32[t], hi, bcast_word(a[t][b].qs + 16 + 4 * k));
                }
                continue;
            }
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) {
                const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, bcast_word(a[t][b].qs + 4 * k)),
                                                   _mm256_maddubs_epi16(hi, bcast_word(a[t][b].qs + 16 + 4 * k)));
                s16[t] = k == 0 || (kHigh && k == 2) ? p : _mm256_add_epi16(s16[t], p);
            }
            if (k == 3 || (kHigh && k == 1)) {
                #pragma GCC unroll 8
                for (int t = 0; t < T; ++t) {
                    const __m256i w = _mm256_madd_epi16(s16[t], _mm256_set1_epi16(1));
                    i32[t] = k == 1 || !kHigh ? w : _mm256_add_epi32(i32[t], w);
                }
            }
        }
        if constexpr (kShift > 0) {
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) i32[t] = _mm256_sub_epi32(i32[t], _mm256_set1_epi32(sums[t][b]));
        }
    }
};
using Q4_0Ints = NibbleInts<block_q4_0x8, block_q8_0, false, 3>;
using Q5_0Ints = NibbleInts<block_q5_0x8, block_q8_0, true, 4>;
using Q4_1Ints = NibbleInts<block_q4_1x8, block_q8_1, false, 0>;
using Q5_1Ints = NibbleInts<block_q5_1x8, block_q8_1, true, 0>;

// One quant word's exact dot for the 8 rows: signed weights w (|w| in aw) against a broadcast activation word,
// through the sign trick, added to acc (ignored when first). Straight to int32: a maddubs result can reach
// 2 * 128 * 127.
inline __m256i signed_word_dot(__m256i acc, bool first, __m256i w, __m256i aw, const int8_t* a) {
    const __m256i as = _mm256_sign_epi8(bcast_word(a), w);
    if constexpr (kVnni) return dpbusd(first ? _mm256_setzero_si256() : acc, aw, as);
    const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, as), _mm256_set1_epi16(1));
    return first ? p : _mm256_add_epi32(acc, p);
}

// IQ4_NL: the nibbles index the non-linear table (signed values up to 127 in magnitude), then signed words.
struct IQ4_NLInts {
    using Group = block_iq4_nlx8;
    using Act = block_q8_0;
    static constexpr int kAux = 0;
    static void prepare(const Act*, int64_t, int32_t*) {}

    template <int T>
    GEMMA_ALWAYS_INLINE static void block(const Group& g, const Act* const* a, const int32_t* const*, int64_t b,
                                          __m256i (&i32)[T]) {
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        const __m256i table = _mm256_broadcastsi128_si256(loadu128(kvalues_iq4nl));
        #pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
            const __m256i raw = loadu256(g.qs + 32 * k);
            const __m256i lo = _mm256_shuffle_epi8(table, _mm256_and_si256(raw, m4));
            const __m256i hi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4));
            const __m256i alo = _mm256_sign_epi8(lo, lo), ahi = _mm256_sign_epi8(hi, hi);
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) {
                i32[t] = signed_word_dot(i32[t], k == 0, lo, alo, a[t][b].qs + 4 * k);
                i32[t] = signed_word_dot(i32[t], false, hi, ahi, a[t][b].qs + 16 + 4 * k);
            }
        }
    }
};

// Q8_0: signed words as they are.
struct Q8_0Ints {
    using Group = block_q8_0x8;
    using Act = block_q8_0;
    static constexpr int kAux = 0;
    static void prepare(const block_q8_0*, int64_t, int32_t*) {}

    template <int T>
    GEMMA_ALWAYS_INLINE static void block(const Group& g, const block_q8_0* const* a, const int32_t* const*, int64_t b,
                                          __m256i (&i32)[T]) {
        #pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) {
            const __m256i w = loadu256(g.qs + 32 * k);
            const __m256i aw = _mm256_sign_epi8(w, w);
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) i32[t] = signed_word_dot(i32[t], k == 0, w, aw, a[t][b].qs + 4 * k);
        }
    }
};

// The 32-element types: F gives each block's exact integer dots (a lane per row), the tile scales them by
// d_w * d_a with one fma per block, and adds m_w * s_a with a second one for the types with a min (vs Q8_1).
template <typename F>
struct Packed32 {
    using Group = typename F::Group;
    using Act = typename F::Act;
    static constexpr bool kMin = requires(const Group& g) { g.m; };
    static constexpr int64_t kQK = 32;
    static constexpr int64_t kGroups = 1;
    static constexpr int kAux = F::kAux;
    static constexpr int kMaxT = 4;  // tokens per tile: 2T accumulators plus the unpacked weights in registers
    static void prepare(const Act* a, int64_t nb, int32_t* aux) { F::prepare(a, nb, aux); }

    template <int T>
    static void tile(int64_t nb, const Group* g, int64_t /*groups: always 1*/, const Act* const* a,
                     const int32_t* const* aux, float* out, int64_t stride, const uint8_t* pf_end) {
        __m256 acc[T];
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; ++b) {
            if (pf_end) prefetch_streams<Group, kGroups>(g, nb, b, pf_end);
            __m256i i32[T];
            F::template block<T>(g[b], a, aux, b, i32);
            const __m256 dw = _mm256_cvtph_ps(loadu128(g[b].d));
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t)
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32[t]), _mm256_mul_ps(dw, fp16x8_splat(&a[t][b].d)), acc[t]);
            if constexpr (kMin) {
                const __m256 mw = _mm256_cvtph_ps(loadu128(g[b].m));
                #pragma GCC unroll 8
                for (int t = 0; t < T; ++t) acc[t] = _mm256_fmadd_ps(mw, fp16x8_splat(&a[t][b].s), acc[t]);
            }
        }
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) _mm256_storeu_ps(out + t * stride, acc[t]);
    }
};

// Byte-pick masks for vpshufb: in every 32-bit lane, int16 pairs (byte j0 of the lane, byte j1 of the lane),
// zero-extended. Turns the 8 rows' unpacked scale (or min) bytes into the int16 factors of one madd.
struct PickMasks {
    int8_t m[4][4][32] = {};  // [j0][j1][byte]
    constexpr PickMasks() {
        for (int j0 = 0; j0 < 4; ++j0)
            for (int j1 = 0; j1 < 4; ++j1)
                for (int q = 0; q < 8; ++q) {
                    m[j0][j1][4 * q + 0] = static_cast<int8_t>(4 * (q % 4) + j0);
                    m[j0][j1][4 * q + 1] = -128;
                    m[j0][j1][4 * q + 2] = static_cast<int8_t>(4 * (q % 4) + j1);
                    m[j0][j1][4 * q + 3] = -128;
                }
    }
};
constexpr PickMasks kPick{};
inline __m256i pick(__m256i v, int j0, int j1) { return _mm256_shuffle_epi8(v, loadu256(kPick.m[j0][j1])); }

// Q4_K / Q5_K against Q8_K: the 8 rows' 6-bit scales and mins unpack from three interleaved words with ggml's
// word operations, one lane per row. Per sub-block, the maddubs results add up in int16 (Q4_K: all 8, as
// |q a| <= 15 * 128 over 16 products per lane pair; Q5_K: 4 at a time, |q| <= 31), then a madd by the rows'
// scales widens and scales them; the min term is min_j * (activation sum of sub-block j), two sub-blocks per
// madd against the driver's int16 sum pairs. Q5_K's fifth bit: qh byte l holds bit j for sub-block j.
template <typename GroupT>
struct PackedK {
    static constexpr bool kHigh = requires(const GroupT& g) { g.qh; };
    using Group = GroupT;
    using Act = block_q8_K;
    static constexpr int64_t kQK = 256;
    static constexpr int64_t kGroups = 1;
    static constexpr int kAux = 4;   // per token and super-block: sums of sub-blocks (2i, 2i+1) as int16 pairs
    static constexpr int kMaxT = 4;  // 4T live vectors per token: some spill, still ahead of T = 2 (pp +15%) and 3
    static void prepare(const Act* a, int64_t nb, int32_t* aux) {
        for (int64_t b = 0; b < nb; ++b)
            for (int i = 0; i < 4; ++i) {
                const int lo = a[b].bsums[4 * i] + a[b].bsums[4 * i + 1];
                const int hi = a[b].bsums[4 * i + 2] + a[b].bsums[4 * i + 3];
                aux[4 * b + i] = static_cast<int32_t>((static_cast<uint32_t>(hi) << 16) | static_cast<uint16_t>(lo));
            }
    }

    template <int T>
    static void tile(int64_t nb, const Group* g, int64_t /*groups: always 1*/, const Act* const* a,
                     const int32_t* const* aux, float* out, int64_t stride, const uint8_t* pf_end) {
        __m256 acc[T];
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        const __m256i k1 = _mm256_set1_epi8(0x3F), k2 = _mm256_set1_epi8(0x0F), k3 = _mm256_set1_epi8(0x03);
        const __m256i b4 = _mm256_set1_epi8(0x10);
        for (int64_t b = 0; b < nb; ++b) {
            if (pf_end) prefetch_streams<Group, kGroups>(g, nb, b, pf_end);
            const Group& G = g[b];
            const __m256i w0 = loadu256(G.sc), w1 = loadu256(G.sc + 32), w2 = loadu256(G.sc + 64);
            // Lane r: bytes j of sc[0] / mn[0] are sub-block j's scale / min (j < 4), of sc[1] / mn[1] j + 4's.
            const __m256i sc[2] = {_mm256_and_si256(w0, k1),
                                   _mm256_or_si256(_mm256_and_si256(w2, k2),
                                                   _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(w0, 6), k3), 4))};
            const __m256i mn[2] = {_mm256_and_si256(w1, k1),
                                   _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(w2, 4), k2),
                                                   _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(w1, 6), k3), 4))};
            __m256i isum[T], msum[T];
            #pragma GCC unroll 4
            for (int i = 0; i < 4; ++i) {
                const __m256i mv = pick(mn[i / 2], 2 * (i % 2), 2 * (i % 2) + 1);
                #pragma GCC unroll 8
                for (int t = 0; t < T; ++t) {
                    const __m256i p = _mm256_madd_epi16(mv, _mm256_set1_epi32(aux[t][4 * b + i]));
                    msum[t] = i == 0 ? p : _mm256_add_epi32(msum[t], p);
                }
            }
            #pragma GCC unroll 1
            for (int p = 0; p < 4; ++p) {
                const __m256i svl = pick(sc[p / 2], 2 * (p % 2), 2 * (p % 2));
                const __m256i svh = pick(sc[p / 2], 2 * (p % 2) + 1, 2 * (p % 2) + 1);
                const __m128i hshift = _mm_cvtsi32_si128(2 * p);
                __m256i slo[T], shi[T];
                #pragma GCC unroll 8
                for (int kk = 0; kk < 8; ++kk) {
                    const __m256i raw = loadu256(G.qs + 32 * (8 * p + kk));
                    __m256i lo = _mm256_and_si256(raw, m4);
                    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
                    if constexpr (kHigh) {
                        // Bits 2p and 2p+1 of each qh byte to bit 4 (16-bit shifts: the mask keeps each byte's own).
                        const __m256i h = _mm256_srl_epi16(loadu256(G.qh + 32 * kk), hshift);
                        lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(h, 4), b4));
                        hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(h, 3), b4));
                    }
                    if constexpr (kVnni) {
                        // Sub-block sums straight in int32; scaled once per sub-block below.
                        #pragma GCC unroll 8
                        for (int t = 0; t < T; ++t) {
                            const __m256i z = _mm256_setzero_si256();
                            slo[t] = dpbusd(kk == 0 ? z : slo[t], lo, bcast_word(a[t][b].qs + 64 * p + 4 * kk));
                            shi[t] = dpbusd(kk == 0 ? z : shi[t], hi, bcast_word(a[t][b].qs + 64 * p + 32 + 4 * kk));
                        }
                        continue;
                    }
                    #pragma GCC unroll 8
                    for (int t = 0; t < T; ++t) {
                        const __m256i pl = _mm256_maddubs_epi16(lo, bcast_word(a[t][b].qs + 64 * p + 4 * kk));
                        const __m256i ph = _mm256_maddubs_epi16(hi, bcast_word(a[t][b].qs + 64 * p + 32 + 4 * kk));
                        const bool first = kk == 0 || (kHigh && kk == 4);
                        slo[t] = first ? pl : _mm256_add_epi16(slo[t], pl);
                        shi[t] = first ? ph : _mm256_add_epi16(shi[t], ph);
                    }
                    if (kk == 7 || (kHigh && kk == 3)) {
                        #pragma GCC unroll 8
                        for (int t = 0; t < T; ++t) {
                            const __m256i v =
                                _mm256_add_epi32(_mm256_madd_epi16(slo[t], svl), _mm256_madd_epi16(shi[t], svh));
                            isum[t] = p == 0 && kk == (kHigh ? 3 : 7) ? v : _mm256_add_epi32(isum[t], v);
                        }
                    }
                }
                if constexpr (kVnni) {
                    // The int16 pair (scale, scale) of each lane as one int32 scale.
                    const __m256i lo16 = _mm256_set1_epi32(0xFFFF);
                    const __m256i s32l = _mm256_and_si256(svl, lo16), s32h = _mm256_and_si256(svh, lo16);
                    #pragma GCC unroll 8
                    for (int t = 0; t < T; ++t) {
                        const __m256i v = _mm256_add_epi32(_mm256_mullo_epi32(slo[t], s32l), _mm256_mullo_epi32(shi[t], s32h));
                        isum[t] = p == 0 ? v : _mm256_add_epi32(isum[t], v);
                    }
                }
            }
            const __m256 dw = _mm256_cvtph_ps(loadu128(G.d)), dm = _mm256_cvtph_ps(loadu128(G.dmin));
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) {
                const __m256 da = _mm256_set1_ps(a[t][b].d);
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(dw, da), acc[t]);
                acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum[t]), _mm256_mul_ps(dm, da), acc[t]);
            }
        }
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) _mm256_storeu_ps(out + t * stride, acc[t]);
    }
};

// Q6_K against Q8_K. The quants are unsigned 6-bit q (value q - 32): per sub-block of 16, q . a (VNNI: one
// int32 dot; AVX2: two maddubs added in int16, |q a| <= 63 * 128 over 4 products) times the rows' int8 scales,
// then the offset once per super-block: 32 * sum_i scale_i * bsum_i, two sub-blocks per madd against the
// driver's int16 bsum pairs. Scale byte c of a word, sign-extended, comes from one byte shuffle and an
// arithmetic shift: to int32 (shift 24) or to an int16 pair (shift 8).
struct Q6Masks {
    int8_t s32[4][32] = {};
    int8_t s16[4][32] = {};
    constexpr Q6Masks() {
        for (int c = 0; c < 4; ++c)
            for (int q = 0; q < 8; ++q) {
                const auto src = static_cast<int8_t>(4 * (q % 4) + c);
                s32[c][4 * q + 0] = s32[c][4 * q + 1] = s32[c][4 * q + 2] = -128;
                s32[c][4 * q + 3] = src;
                s16[c][4 * q + 0] = s16[c][4 * q + 2] = -128;
                s16[c][4 * q + 1] = s16[c][4 * q + 3] = src;
            }
    }
};
constexpr Q6Masks kQ6{};

struct PackedQ6K {
    using Group = block_q6_Kx8;
    using Act = block_q8_K;
    static constexpr int64_t kQK = 256;
    static constexpr int64_t kGroups = 1;
    static constexpr int kAux = 8;   // per token and super-block: bsum pairs (4w, 4w+2) and (4w+1, 4w+3), w < 4
    static constexpr int kMaxT = 4;
    static void prepare(const Act* a, int64_t nb, int32_t* aux) {
        auto pair = [](int lo, int hi) {
            return static_cast<int32_t>((static_cast<uint32_t>(hi) << 16) | static_cast<uint16_t>(lo));
        };
        for (int64_t b = 0; b < nb; ++b)
            for (int w = 0; w < 4; ++w) {
                const int16_t* bs = a[b].bsums + 4 * w;
                aux[8 * b + 2 * w] = pair(bs[0], bs[2]);
                aux[8 * b + 2 * w + 1] = pair(bs[1], bs[3]);
            }
    }

    template <int T>
    static void tile(int64_t nb, const Group* g, int64_t /*groups: always 1*/, const Act* const* a,
                     const int32_t* const* aux, float* out, int64_t stride, const uint8_t* pf_end) {
        __m256 acc[T];
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
        const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
        for (int64_t b = 0; b < nb; ++b) {
            if (pf_end) prefetch_streams<Group, kGroups>(g, nb, b, pf_end);
            const Group& G = g[b];
            __m256i isum[T], msum[T];
            #pragma GCC unroll 4
            for (int w = 0; w < 4; ++w) {
                const __m256i sw = loadu256(G.sc + 32 * w);
                const __m256i even = _mm256_srai_epi16(_mm256_slli_epi16(sw, 8), 8), odd = _mm256_srai_epi16(sw, 8);
                #pragma GCC unroll 8
                for (int t = 0; t < T; ++t) {
                    const __m256i v = _mm256_add_epi32(_mm256_madd_epi16(even, _mm256_set1_epi32(aux[t][8 * b + 2 * w])),
                                                       _mm256_madd_epi16(odd, _mm256_set1_epi32(aux[t][8 * b + 2 * w + 1])));
                    msum[t] = w == 0 ? v : _mm256_add_epi32(msum[t], v);
                }
            }
            #pragma GCC unroll 1
            for (int h = 0; h < 2; ++h) {
                #pragma GCC unroll 1
                for (int jq = 0; jq < 2; ++jq) {
                    #pragma GCC unroll 2
                    for (int mp = 0; mp < 2; ++mp) {
                        // Sub-blocks ia (m = 2mp) and ib (m = 2mp + 1) over words j = 4jq..4jq+3.
                        const int ia = 8 * h + 4 * mp + jq, ib = ia + 2;
                        __m256i da[T], db[T];
                        #pragma GCC unroll 4
                        for (int jj = 0; jj < 4; ++jj) {
                            const int j = 4 * jq + jj;
                            const __m256i qh = loadu256(G.qh + 32 * (8 * h + j));
                            __m256i l1 = loadu256(G.ql + 32 * (16 * h + j)), l2 = loadu256(G.ql + 32 * (16 * h + 8 + j));
                            __m256i ha, hb;
                            if (mp == 0) {
                                ha = _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30);
                                hb = _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30);
                            } else {
                                l1 = _mm256_srli_epi16(l1, 4);
                                l2 = _mm256_srli_epi16(l2, 4);
                                ha = _mm256_and_si256(qh, m30);
                                hb = _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30);
                            }
                            const __m256i qa = _mm256_or_si256(_mm256_and_si256(l1, m4), ha);
                            const __m256i qb = _mm256_or_si256(_mm256_and_si256(l2, m4), hb);
                            const int ea = 128 * h + 64 * mp + 4 * j;  // element of qa's first quant; qb's is +32
                            #pragma GCC unroll 8
                            for (int t = 0; t < T; ++t) {
                                if constexpr (kVnni) {
                                    const __m256i z = _mm256_setzero_si256();
                                    da[t] = dpbusd(jj == 0 ? z : da[t], qa, bcast_word(a[t][b].qs + ea));
                                    db[t] = dpbusd(jj == 0 ? z : db[t], qb, bcast_word(a[t][b].qs + ea + 32));
                                } else {
                                    const __m256i pa = _mm256_maddubs_epi16(qa, bcast_word(a[t][b].qs + ea));
                                    const __m256i pb = _mm256_maddubs_epi16(qb, bcast_word(a[t][b].qs + ea + 32));
                                    da[t] = jj % 2 == 0 ? pa : _mm256_add_epi16(da[t], pa);
                                    db[t] = jj % 2 == 0 ? pb : _mm256_add_epi16(db[t], pb);
                                }
                            }
                            if (!kVnni && jj % 2 == 1) {
                                // Two words' int16 sums, widened by the int16 scale pairs.
                                const __m256i sa = _mm256_srai_epi16(
                                    _mm256_shuffle_epi8(loadu256(G.sc + 32 * (ia / 4)), loadu256(kQ6.s16[ia % 4])), 8);
                                const __m256i sb = _mm256_srai_epi16(
                                    _mm256_shuffle_epi8(loadu256(G.sc + 32 * (ib / 4)), loadu256(kQ6.s16[ib % 4])), 8);
                                #pragma GCC unroll 8
                                for (int t = 0; t < T; ++t) {
                                    const __m256i v = _mm256_add_epi32(_mm256_madd_epi16(da[t], sa), _mm256_madd_epi16(db[t], sb));
                                    isum[t] = h == 0 && jq == 0 && mp == 0 && jj == 1 ? v : _mm256_add_epi32(isum[t], v);
                                }
                            }
                        }
                        if constexpr (kVnni) {
                            const __m256i sa = _mm256_srai_epi32(
                                _mm256_shuffle_epi8(loadu256(G.sc + 32 * (ia / 4)), loadu256(kQ6.s32[ia % 4])), 24);
                            const __m256i sb = _mm256_srai_epi32(
                                _mm256_shuffle_epi8(loadu256(G.sc + 32 * (ib / 4)), loadu256(kQ6.s32[ib % 4])), 24);
                            #pragma GCC unroll 8
                            for (int t = 0; t < T; ++t) {
                                const __m256i v = _mm256_add_epi32(_mm256_mullo_epi32(da[t], sa), _mm256_mullo_epi32(db[t], sb));
                                isum[t] = h == 0 && jq == 0 && mp == 0 ? v : _mm256_add_epi32(isum[t], v);
                            }
                        }
                    }
                }
            }
            const __m256 dw = _mm256_cvtph_ps(loadu128(G.d));
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) {
                const __m256i si = _mm256_sub_epi32(isum[t], _mm256_slli_epi32(msum[t], 5));
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si), _mm256_mul_ps(dw, _mm256_set1_ps(a[t][b].d)), acc[t]);
            }
        }
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) _mm256_storeu_ps(out + t * stride, acc[t]);
    }
};

inline void install_packed(KernelTable& t) {
    t.gemm_packed[idx(TypeId::Q4_0)] = gemm_packed_tiled<Packed32<Q4_0Ints>>;
    t.gemm_packed[idx(TypeId::Q8_0)] = gemm_packed_tiled<Packed32<Q8_0Ints>>;
    t.gemm_packed[idx(TypeId::Q5_0)] = gemm_packed_tiled<Packed32<Q5_0Ints>>;
    t.gemm_packed[idx(TypeId::Q4_1)] = gemm_packed_tiled<Packed32<Q4_1Ints>>;
    t.gemm_packed[idx(TypeId::Q5_1)] = gemm_packed_tiled<Packed32<Q5_1Ints>>;
    t.gemm_packed[idx(TypeId::IQ4_NL)] = gemm_packed_tiled<Packed32<IQ4_NLInts>>;
    t.gemm_packed[idx(TypeId::Q4_K)] = gemm_packed_tiled<PackedK<block_q4_Kx8>>;
    t.gemm_packed[idx(TypeId::Q5_K)] = gemm_packed_tiled<PackedK<block_q5_Kx8>>;
    t.gemm_packed[idx(TypeId::Q6_K)] = gemm_packed_tiled<PackedQ6K>;
}

}  // namespace
}  // namespace gemma::kernels::detail
