// Helpers shared by the AVX-512 packed-kernel TUs (packed_avx512.cpp, packed_lowk_avx512.cpp, packed_iq_avx512.cpp):
// group pairing, byte-pick masks, the Q8_K block-sum pairs. Internal linkage, as avx512_common.h.
#pragma once
#include "kernels/avx512/avx512_common.h"  // first: it includes <immintrin.h>
#include "kernels/kernels_internal.h"
#include "kernels/packed.h"
#include "kernels/packed_driver.h"

namespace gemma::kernels::detail {

namespace {

using namespace avx512;

inline __m512i dpbusd(__m512i acc, __m512i u, __m512i s) { return _mm512_dpbusd_epi32(acc, u, s); }
// A tile runs 1 or 2 consecutive groups (packed_driver.h); a lone group runs as both halves, its copy not stored.
template <typename Group>
inline const Group* second_group(const Group* g0, int64_t groups, int64_t nb) { return groups > 1 ? g0 + nb : g0; }
inline __mmask16 store_mask(int64_t groups) { return groups > 1 ? __mmask16{0xFFFF} : __mmask16{0x00FF}; }
// a | (b & c), one vpternlogd.
inline __m512i or_and(__m512i a, __m512i b, __m512i c) { return _mm512_ternarylogic_epi32(a, b, c, 0xF8); }

// vpshufb masks, the same in every 128-bit lane (each lane holds 4 rows' 32-bit words): in dword q,
// b32[j]: byte j of the dword zero-extended to int32; b16[j0][j1]: bytes j0 and j1 as two zero-extended int16;
// s32[j]: byte j in the top byte (an arithmetic shift by 24 then sign-extends it).
struct PickMasks {
    int8_t b32[4][64] = {};
    int8_t b16[4][4][64] = {};
    int8_t s32[4][64] = {};
    constexpr PickMasks() {
        for (int q = 0; q < 16; ++q) {
            const int base = 4 * (q % 4);
            for (int j = 0; j < 4; ++j) {
                for (int i = 0; i < 4; ++i) {
                    b32[j][4 * q + i] = i == 0 ? static_cast<int8_t>(base + j) : -128;
                    s32[j][4 * q + i] = i == 3 ? static_cast<int8_t>(base + j) : -128;
                }
                for (int j1 = 0; j1 < 4; ++j1) {
                    b16[j][j1][4 * q + 0] = static_cast<int8_t>(base + j);
                    b16[j][j1][4 * q + 1] = -128;
                    b16[j][j1][4 * q + 2] = static_cast<int8_t>(base + j1);
                    b16[j][j1][4 * q + 3] = -128;
                }
            }
        }
    }
};
constexpr PickMasks kPick{};
inline __m512i shuffle_by(__m512i v, const int8_t* mask) { return _mm512_shuffle_epi8(v, _mm512_loadu_si512(mask)); }

// Q4_K / Q5_K: the 16 rows' 6-bit scales and mins from their three interleaved scale words w0..w2 (ggml's
// get_scale_min_k4 as word operations). Lane r: byte j of sc[0] / mn[0] is sub-block j's scale / min (j < 4), of
// sc[1] / mn[1] sub-block j + 4's.
inline void k4_scales_mins(__m512i w0, __m512i w1, __m512i w2, __m512i (&sc)[2], __m512i (&mn)[2]) {
    const __m512i k1 = _mm512_set1_epi8(0x3F), k2 = _mm512_set1_epi8(0x0F), k3 = _mm512_set1_epi8(0x03);
    sc[0] = _mm512_and_si512(w0, k1);
    sc[1] = _mm512_or_si512(_mm512_and_si512(w2, k2), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(w0, 6), k3), 4));
    mn[0] = _mm512_and_si512(w1, k1);
    mn[1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(w2, 4), k2),
                            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(w1, 6), k3), 4));
}

// Per token and Q8_K super-block, 9 int32: d_a as float bits, then the bsum pairs (4w, 4w+2) and (4w+1, 4w+3), w < 4,
// as int16 pairs: one vpdpwssd by a word of int8 scales split into its even and odd bytes takes 4 sub-blocks.
inline void prepare_bsum_pairs(const block_q8_K* a, int64_t nb, int32_t* aux) {
    auto pair = [](int lo, int hi) { return static_cast<int32_t>((static_cast<uint32_t>(hi) << 16) | static_cast<uint16_t>(lo)); };
    for (int64_t b = 0; b < nb; ++b) {
        aux[9 * b] = bits_from_f32(a[b].d);
        for (int w = 0; w < 4; ++w) {
            const int16_t* bs = a[b].bsums + 4 * w;
            aux[9 * b + 1 + 2 * w] = pair(bs[0], bs[2]);
            aux[9 * b + 2 + 2 * w] = pair(bs[1], bs[3]);
        }
    }
}

// Per token and Q8_K super-block, 5 int32: d_a as float bits, then the activation sums of the 32-element sub-blocks
// (2i, 2i+1), i < 4, as int16 pairs: one vpdpwssd by a vector of (scale 2i, scale 2i+1) pairs takes two sub-blocks.
inline void prepare_sub_pairs(const block_q8_K* a, int64_t nb, int32_t* aux) {
    for (int64_t b = 0; b < nb; ++b) {
        aux[5 * b] = bits_from_f32(a[b].d);
        for (int i = 0; i < 4; ++i) {
            const int lo = a[b].bsums[4 * i] + a[b].bsums[4 * i + 1];
            const int hi = a[b].bsums[4 * i + 2] + a[b].bsums[4 * i + 3];
            aux[5 * b + 1 + i] = static_cast<int32_t>((static_cast<uint32_t>(hi) << 16) | static_cast<uint16_t>(lo));
        }
    }
}

// The super-block's float step, the same for every K-type tile: acc = fma(float(isum), d_w * d_a, acc), with d_a the
// token's float bits at aux[t][off]. One definition keeps every tile's rounding order identical.
template <int T>
GEMMA_ALWAYS_INLINE inline void superblock_fma(__m512 (&acc)[T], const __m512i (&isum)[T], __m512 dw, const int32_t* const* aux,
                                               int64_t off) {
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t)
        acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(dw, bcast_f32(&aux[t][off])), acc[t]);
}

// A tile's results: one row of 8 or 16 outputs per token (the store mask drops a missing second group).
template <int T>
GEMMA_ALWAYS_INLINE inline void store_tile(float* out, int64_t stride, __mmask16 store, const __m512 (&acc)[T]) {
    #pragma GCC unroll 16
    for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(out + t * stride, store, acc[t]);
}

}  // namespace
}  // namespace gemma::kernels::detail
