// The AVX2 micro-kernel for 256-element super-block weights against Q8_K: per-type chunk unpackers, one tile loop.
#pragma once
#include "kernels/avx2/avx2_common.h"
#include "kernels/avx2/tile_driver.h"
#include "quant/blocks.h"

namespace gemma::kernels::avx2 {
namespace {

// A super-block format F provides
//   using Block;  static constexpr bool kSigned, kHasMin;  static constexpr int kOffsetShift;
//   struct Super { explicit Super(const Block*); float d, dmin; __m256i offset_scales, mins16;
//                  template <class Fn> void chunks(Fn&& fn) const; };
// chunks() calls fn(j, q, sgn, scale16) for the 8 chunks of 32 elements in order, where q holds unsigned
// bytes (magnitudes when kSigned, with sgn carrying the signs as +-1 bytes), and scale16 the int16 scale of
// each maddubs output lane (lanes 0..7 cover elements 0..15 of the chunk, lanes 8..15 elements 16..31).
// Integer part per (row, token): sumi = sum_j madd(maddubs(q, a_j), scale16_j), exact.
//   kOffsetShift k: weights are stored as q - 2^k; sumi -= 2^k * sum_sub scale_sub * bsum_sub.
//   kHasMin: the result also gets -dmin * sum_sub mins16_sub * bsum_sub, in float.

// Broadcast int16 lane j of each 128-bit half (the control repeats bytes 2j, 2j+1).
inline __m256i lane16_splat(__m256i v, int j) {
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16(static_cast<int16_t>(0x0100 + 0x0202 * j)));
}

// 16 int8 scales (sub-blocks of 16) -> int16 with even sub-blocks in the low half, odd in the high half,
// so lane16_splat(v, j) gives chunk j's [scale 2j x8 | scale 2j+1 x8].
inline __m256i scales16_even_odd(__m128i s8) {
    const __m128i eo = _mm_shuffle_epi8(s8, _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
    return _mm256_cvtepi8_epi16(eo);
}

// 8 unsigned 8-bit scales (sub-blocks of 32) -> int16, the same 8 in both halves.
inline __m256i scales8_both(__m128i s8) { return _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(s8)); }

template <typename F, int KR = 1, int KT = 4>
struct SuperKernel {
    using Block = typename F::Block;
    static constexpr int kMaxR = KR;
    static constexpr int kMaxT = KT;

    template <int R, int T>
    static void tile(int64_t n, const uint8_t* w, size_t wrb, const uint8_t* a, size_t arb, float* out,
                     int64_t stride, const uint8_t* pf_end) {
        const int64_t nb = n / QK_K;
        __m256 acc[R][T];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
            for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; ++b) {
            if (pf_end) prefetch_block_rows<R, sizeof(Block)>(w, wrb, static_cast<size_t>(nb) * sizeof(Block), b, pf_end);
            const block_q8_K* y[T];
#pragma GCC unroll 8
            for (int t = 0; t < T; ++t) y[t] = reinterpret_cast<const block_q8_K*>(a + t * arb) + b;
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
                const typename F::Super s(reinterpret_cast<const Block*>(w + r * wrb) + b);
                __m256i sumi[T];
#pragma GCC unroll 8
                for (int t = 0; t < T; ++t) sumi[t] = _mm256_setzero_si256();
                s.chunks([&](int j, __m256i q, __m256i sgn, __m256i sc) GEMMA_ALWAYS_INLINE {
#pragma GCC unroll 8
                    for (int t = 0; t < T; ++t) {
                        __m256i av = loadu256(y[t]->qs + 32 * j);
                        if constexpr (F::kSigned) av = _mm256_sign_epi8(av, sgn);
                        sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(_mm256_maddubs_epi16(q, av), sc));
                    }
                });
#pragma GCC unroll 8
                for (int t = 0; t < T; ++t) {
                    float da;
                    std::memcpy(&da, &y[t]->d, 4);
                    __m256i si = sumi[t];
                    if constexpr (F::kOffsetShift > 0 || F::kHasMin) {
                        const __m256i bs = loadu256(y[t]->bsums);
                        if constexpr (F::kOffsetShift > 0)
                            si = _mm256_sub_epi32(si, _mm256_slli_epi32(_mm256_madd_epi16(s.offset_scales, bs), F::kOffsetShift));
                        acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si), _mm256_set1_ps(s.d * da), acc[r][t]);
                        if constexpr (F::kHasMin)
                            acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(s.mins16, bs)),
                                                        _mm256_set1_ps(-(s.dmin * da)), acc[r][t]);
                    } else {
                        acc[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si), _mm256_set1_ps(s.d * da), acc[r][t]);
                    }
                }
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t)
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) out[t * stride + r] = hsum_ps(acc[r][t]);
    }
};

}  // namespace
}  // namespace gemma::kernels::avx2
