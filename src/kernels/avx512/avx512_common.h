// Helpers shared by the AVX-512 translation units only (compiled with the AVX-512 flags; never include elsewhere).
#pragma once
// GCC 12's AVX-512 intrinsics fill don't-care lanes from a self-initialised variable and then warn about it at every
// use (GCC bug 105593, fixed in 13); silence exactly those header lines. This header must be the TU's first
// include of <immintrin.h> for that.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>
#include <cstring>

// Internal linkage throughout, as in avx2/avx2_common.h: no AVX-512 code may be merged into a generic caller.
#define GEMMA_ALWAYS_INLINE __attribute__((always_inline))

namespace gemma::kernels::avx512 {
namespace {

inline uint32_t load_u32(const void* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

inline float f32_from_bits(int32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline int32_t bits_from_f32(float f) {
    int32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

inline __m256i loadu256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i loadu128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

// 32 bytes at p0 in the low half, 32 bytes at p1 in the high half: the same block of two row groups, 16 rows.
inline __m512i load2(const void* p0, const void* p1) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(loadu256(p0)), loadu256(p1), 1);
}

// The 8 fp16 scales of each of two groups as 16 floats.
inline __m512 fp16x16(const void* p0, const void* p1) {
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(loadu128(p0)), loadu128(p1), 1));
}

// One 32-bit value in every lane, straight from memory (a broadcast load, no shuffle port).
inline __m512i bcast_word(const void* p) { return _mm512_set1_epi32(static_cast<int>(load_u32(p))); }
inline __m512 bcast_f32(const int32_t* p) { return _mm512_set1_ps(f32_from_bits(*p)); }

// Fixed reduction order, (lo256 + hi256), (lo128 + hi128), then pairs: every float kernel uses this one.
inline float hsum512(__m512 v) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

}  // namespace
}  // namespace gemma::kernels::avx512
