// AVX2 dot/gemm kernels for the k-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K against Q8_K activations.
#include <type_traits>

#include "kernels/avx2/ktile.h"
#include "kernels/kernels_internal.h"

namespace gemma::kernels::detail {
namespace {

using namespace avx2;

struct Q2K {
    using Block = block_q2_K;
    static constexpr bool kSigned = false, kHasMin = true;
    static constexpr int kOffsetShift = 0;
    struct Super {
        float d, dmin;
        __m256i offset_scales{}, mins16, sc;
        const uint8_t* qs;
        GEMMA_ALWAYS_INLINE explicit Super(const Block* x) : qs(x->qs) {
            d = fp16_to_f32(x->d);
            dmin = fp16_to_f32(x->dmin);
            const __m128i s8 = loadu128(x->scales);
            const __m128i m4 = _mm_set1_epi8(0x0F);
            sc = scales16_even_odd(_mm_and_si128(s8, m4));
            mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s8, 4), m4));
        }
        template <typename Fn>
        GEMMA_ALWAYS_INLINE void chunks(Fn&& fn) const {
            const __m256i m3 = _mm256_set1_epi8(3);
#pragma GCC unroll 4
            for (int h = 0; h < 2; ++h) {
                const __m256i qv = loadu256(qs + 32 * h);
                fn(4 * h + 0, _mm256_and_si256(qv, m3), qv, lane16_splat(sc, 4 * h + 0));
                fn(4 * h + 1, _mm256_and_si256(_mm256_srli_epi16(qv, 2), m3), qv, lane16_splat(sc, 4 * h + 1));
                fn(4 * h + 2, _mm256_and_si256(_mm256_srli_epi16(qv, 4), m3), qv, lane16_splat(sc, 4 * h + 2));
                fn(4 * h + 3, _mm256_and_si256(_mm256_srli_epi16(qv, 6), m3), qv, lane16_splat(sc, 4 * h + 3));
            }
        }
    };
};

struct Q3K {
    using Block = block_q3_K;
    static constexpr bool kSigned = false, kHasMin = false;
    static constexpr int kOffsetShift = 2;  // q3 = (low2 | hbit << 2) - 4
    struct Super {
        float d, dmin = 0.0f;
        __m256i offset_scales, mins16{}, sc;
        const uint8_t* qs;
        const uint8_t* hmask;
        GEMMA_ALWAYS_INLINE explicit Super(const Block* x) : qs(x->qs), hmask(x->hmask) {
            d = fp16_to_f32(x->d);
            uint32_t aux[3];
            std::memcpy(aux, x->scales, 12);
            constexpr uint32_t k1 = 0x03030303, k2 = 0x0f0f0f0f;
            const __m128i s8 = _mm_sub_epi8(
                _mm_set_epi32(static_cast<int>(((aux[1] >> 4) & k2) | (((aux[2] >> 6) & k1) << 4)),
                              static_cast<int>(((aux[0] >> 4) & k2) | (((aux[2] >> 4) & k1) << 4)),
                              static_cast<int>((aux[1] & k2) | (((aux[2] >> 2) & k1) << 4)),
                              static_cast<int>((aux[0] & k2) | (((aux[2] >> 0) & k1) << 4))),
                _mm_set1_epi8(32));
            sc = scales16_even_odd(s8);
            offset_scales = _mm256_cvtepi8_epi16(s8);
        }
        template <typename Fn>
        GEMMA_ALWAYS_INLINE void chunks(Fn&& fn) const {
            const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(4);
            const __m256i hm = loadu256(hmask);
#pragma GCC unroll 4
            for (int h = 0; h < 2; ++h) {
                const __m256i qv = loadu256(qs + 32 * h);
#pragma GCC unroll 4
                for (int k = 0; k < 4; ++k) {
                    const int j = 4 * h + k;
                    const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(qv, 2 * k), m3);
                    const __m256i hb = _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(hm, j), 2), m4);
                    fn(j, _mm256_or_si256(lo, hb), qv, lane16_splat(sc, j));
                }
            }
        }
    };
};

// Q4_K / Q5_K: 8 six-bit scales and mins, unpacked as ggml does (bytes 0..7 scales, 8..15 mins).
inline void unpack_scales_mins_k4(const uint8_t* scales, __m256i* sc, __m256i* mins16) {
    uint32_t u[4];
    std::memcpy(u, scales, 12);
    constexpr uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
    u[3] = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4);
    const uint32_t uaux = u[1] & k1;
    u[1] = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);
    u[2] = uaux;
    u[0] &= k1;
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(u));
    *sc = scales8_both(v);
    // Each min covers two 16-element bsums: duplicate it.
    *mins16 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(v, _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15)));
}

template <bool kFive>
struct Q45K {
    using Block = std::conditional_t<kFive, block_q5_K, block_q4_K>;
    static constexpr bool kSigned = false, kHasMin = true;
    static constexpr int kOffsetShift = 0;
    struct Super {
        float d, dmin;
        __m256i offset_scales{}, mins16, sc;
        const uint8_t* qs;
        const uint8_t* qh = nullptr;
        GEMMA_ALWAYS_INLINE explicit Super(const Block* x) : qs(x->qs) {
            d = fp16_to_f32(x->d);
            dmin = fp16_to_f32(x->dmin);
            unpack_scales_mins_k4(x->scales, &sc, &mins16);
            if constexpr (kFive) qh = x->qh;
        }
        template <typename Fn>
        GEMMA_ALWAYS_INLINE void chunks(Fn&& fn) const {
            const __m256i m4 = _mm256_set1_epi8(0x0F);
            __m256i hb{};
            if constexpr (kFive) hb = loadu256(qh);
#pragma GCC unroll 4
            for (int c = 0; c < 4; ++c) {
                const __m256i v = loadu256(qs + 32 * c);
                __m256i lo = _mm256_and_si256(v, m4);
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                if constexpr (kFive) {
                    const __m256i b5 = _mm256_set1_epi8(0x10);
                    lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(hb, 2 * c), 4), b5));
                    hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(_mm256_srli_epi16(hb, 2 * c + 1), 4), b5));
                }
                fn(2 * c, lo, v, lane16_splat(sc, 2 * c));
                fn(2 * c + 1, hi, v, lane16_splat(sc, 2 * c + 1));
            }
        }
    };
};

struct Q6K {
    using Block = block_q6_K;
    static constexpr bool kSigned = false, kHasMin = false;
    static constexpr int kOffsetShift = 5;  // q6 - 32
    struct Super {
        float d, dmin = 0.0f;
        __m256i offset_scales, mins16{}, sc;
        const uint8_t* ql;
        const uint8_t* qh;
        GEMMA_ALWAYS_INLINE explicit Super(const Block* x) : ql(x->ql), qh(x->qh) {
            d = fp16_to_f32(x->d);
            const __m128i s8 = loadu128(x->scales);
            sc = scales16_even_odd(s8);
            offset_scales = _mm256_cvtepi8_epi16(s8);
        }
        template <typename Fn>
        GEMMA_ALWAYS_INLINE void chunks(Fn&& fn) const {
            const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
#pragma GCC unroll 4
            for (int h = 0; h < 2; ++h) {
                const __m256i l0 = loadu256(ql + 64 * h), l1 = loadu256(ql + 64 * h + 32);
                const __m256i hv = loadu256(qh + 32 * h);
                const int j = 4 * h;
                fn(j + 0, _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hv, 4), m30)), hv,
                   lane16_splat(sc, j + 0));
                fn(j + 1, _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hv, 2), m30)), hv,
                   lane16_splat(sc, j + 1));
                fn(j + 2, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hv, m30)), hv,
                   lane16_splat(sc, j + 2));
                fn(j + 3,
                   _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(hv, 2), m30)),
                   hv, lane16_splat(sc, j + 3));
            }
        }
    };
};

}  // namespace

void fill_avx2_kquants(KernelTable& t) {
    install_tiled<SuperKernel<Q2K>>(t, TypeId::Q2_K);
    install_tiled<SuperKernel<Q3K>>(t, TypeId::Q3_K);
    install_tiled<SuperKernel<Q45K<false>>>(t, TypeId::Q4_K);
    install_tiled<SuperKernel<Q45K<true>>>(t, TypeId::Q5_K);
    install_tiled<SuperKernel<Q6K>>(t, TypeId::Q6_K);
}

}  // namespace gemma::kernels::detail
