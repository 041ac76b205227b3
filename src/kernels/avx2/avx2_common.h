// Helpers shared by the AVX2 translation units only (compiled with -mavx2 -mfma -mf16c; never include elsewhere).
#pragma once
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

// Everything here is internal linkage on purpose: an inline function with external linkage compiled with
// AVX2 flags could be picked by the linker for a non-AVX2 caller of the same name.
// GCC does not always inline the per-type chunk walkers into the tile loops (they take a lambda), and then the
// integer accumulators go through memory; force it.
#define GEMMA_ALWAYS_INLINE __attribute__((always_inline))

namespace gemma::kernels::avx2 {
namespace {

inline float fp16_to_f32(uint16_t h) { return _cvtsh_ss(h); }

inline uint16_t load_u16(const void* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

inline uint32_t load_u32(const void* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// The same value in every lane, converted by the vector unit: the compiler cannot see that it is a splat, so a
// product of two of these stays one vmulps instead of becoming vmulss + vbroadcastss.
inline __m256 fp16x8_splat(const void* p) {
    return _mm256_cvtph_ps(_mm_set1_epi16(static_cast<short>(load_u16(p))));
}

inline __m256i loadu256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i loadu128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

// Fixed reduction order: (lo128 + hi128), then pairs; every kernel uses this one so tiles agree bit for bit.
inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline int hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

// 16 bytes of packed nibbles -> 32 bytes: low nibbles are elements 0..15, high nibbles 16..31.
inline __m256i nibbles_to_bytes(const uint8_t* p) {
    const __m128i v = loadu128(p);
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// 32 bits -> 32 bytes, 0xFF where the bit is set (bit i -> byte i).
inline __m256i bits_to_bytes(uint32_t x) {
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(x)), shuf);
    bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

// Sum of pairs of u8*s8 products widened to 8 int32 lanes of 4 consecutive elements each.
inline __m256i dot_u8s8_lanes(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// Signed x signed via the sign trick: |x| * (y with x's sign).
inline __m256i dot_s8s8_lanes(__m256i x, __m256i y) {
    return dot_u8s8_lanes(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

}  // namespace
}  // namespace gemma::kernels::avx2
