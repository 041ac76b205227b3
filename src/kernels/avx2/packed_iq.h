// AVX2 (and AVX-VNNI) gemm over row-interleaved IQ4_XS groups (kernels/packed.h), on top of the helpers of
// packed_kernels.h; included by the same two TUs. Integer sums are exact, the float steps Ref's: Ref's bits.
#pragma once
#include "kernels/avx2/packed_kernels.h"

namespace gemma::kernels::detail {
namespace {

// Row r's sub-block scales of an IQ4_XS group, one int32 lane per row: scale j (6 bits) minus 32.
struct Iq4XsScales {
    __m256i sl, sh;  // the sl words; sh zero-extended and shifted left by 4, so bits 2j, 2j+1 land at 4 + 2j
    GEMMA_ALWAYS_INLINE explicit Iq4XsScales(const block_iq4_xsx8& g)
        : sl(loadu256(g.sl)), sh(_mm256_slli_epi32(_mm256_cvtepu16_epi32(loadu128(g.sh)), 4)) {}
    GEMMA_ALWAYS_INLINE __m256i operator[](int j) const {
        const __m256i lo = _mm256_and_si256(_mm256_srli_epi32(sl, 4 * j), _mm256_set1_epi32(0x0F));
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi32(sh, 2 * j), _mm256_set1_epi32(0x30));
        return _mm256_sub_epi32(_mm256_or_si256(lo, hi), _mm256_set1_epi32(32));
    }
};

// IQ4_XS against Q8_K. A qs word's nibbles look up IQ4_NL's values for 8 rows at once, once per tile of tokens.
// AVX2: the sign trick as IQ4_NL's (|w| times a with w's sign, maddubs pairs |.| <= 2 * 127 * 127 fit int16), and
// one madd by the rows' (scale, scale) int16 pairs both scales and widens each word's products.
// VNNI: the looked-up values plus 128 are unsigned; vpdpbusd sums a sub-block's (v + 128) . a in int32 and one
// vpmulld scales it; the bias, 128 * sum_j scale_j * (activation sum of sub-block j), is taken off up front,
// two sub-blocks per madd against the driver's int16 sum pairs (Q4_K's).
struct PackedIQ4XS {
    using Group = block_iq4_xsx8;
    using Act = block_q8_K;
    static constexpr int64_t kQK = 256;
    static constexpr int64_t kGroups = 1;
    static constexpr int kAux = kVnni ? PackedK<block_q4_Kx8>::kAux : 0;
    static constexpr int kMaxT = 4;
    static void prepare(const Act* a, int64_t nb, int32_t* aux) {
        if constexpr (kVnni) PackedK<block_q4_Kx8>::prepare(a, nb, aux);
    }

    template <int T>
    static void tile(int64_t nb, const Group* g, int64_t /*groups: always 1*/, const Act* const* a,
                     const int32_t* const* aux, float* out, int64_t stride, const uint8_t* pf_end) {
        __m256 acc[T];
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        const __m256i table = _mm256_broadcastsi128_si256(loadu128(kVnni ? static_cast<const void*>(kIq4Biased.v) : kvalues_iq4nl));
        for (int64_t b = 0; b < nb; ++b) {
            if (pf_end) prefetch_streams<Group, kGroups>(g, nb, b, pf_end);
            const Group& G = g[b];
            const Iq4XsScales scales(G);
            __m256i isum[T];
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) isum[t] = _mm256_setzero_si256();
            if constexpr (kVnni) {
                #pragma GCC unroll 4
                for (int i = 0; i < 4; ++i) {
                    // Lane r: the int16 pair (scale 2i, scale 2i + 1).
                    const __m256i sp = _mm256_blend_epi16(scales[2 * i], _mm256_slli_epi32(scales[2 * i + 1], 16), 0xAA);
                    #pragma GCC unroll 8
                    for (int t = 0; t < T; ++t) {
                        const __m256i p = _mm256_madd_epi16(sp, _mm256_set1_epi32(aux[t][4 * b + i]));
                        isum[t] = _mm256_add_epi32(isum[t], p);
                    }
                }
                #pragma GCC unroll 8
                for (int t = 0; t < T; ++t) isum[t] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(isum[t], 7));
            }
            #pragma GCC unroll 1
            for (int j = 0; j < 8; ++j) {
                const __m256i s = scales[j];
                const __m256i s16 = _mm256_blend_epi16(s, _mm256_slli_epi32(s, 16), 0xAA);  // (scale, scale)
                [[maybe_unused]] __m256i dot[T];
                #pragma GCC unroll 4
                for (int i = 0; i < 4; ++i) {
                    const int k = 4 * j + i, e = 32 * j + 4 * i;  // lo's first element; hi's is e + 16
                    const __m256i raw = loadu256(G.qs + 32 * k);
                    const __m256i lo = _mm256_shuffle_epi8(table, _mm256_and_si256(raw, m4));
                    const __m256i hi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4));
                    if constexpr (kVnni) {
                        #pragma GCC unroll 8
                        for (int t = 0; t < T; ++t) {
                            dot[t] = dpbusd(i == 0 ? _mm256_setzero_si256() : dot[t], lo, bcast_word(a[t][b].qs + e));
                            dot[t] = dpbusd(dot[t], hi, bcast_word(a[t][b].qs + e + 16));
                        }
                        continue;
                    }
                    const __m256i alo = _mm256_sign_epi8(lo, lo), ahi = _mm256_sign_epi8(hi, hi);
                    #pragma GCC unroll 8
                    for (int t = 0; t < T; ++t) {
                        const __m256i pl = _mm256_maddubs_epi16(alo, _mm256_sign_epi8(bcast_word(a[t][b].qs + e), lo));
                        const __m256i ph = _mm256_maddubs_epi16(ahi, _mm256_sign_epi8(bcast_word(a[t][b].qs + e + 16), hi));
                        const __m256i v = _mm256_add_epi32(_mm256_madd_epi16(pl, s16), _mm256_madd_epi16(ph, s16));
                        isum[t] = _mm256_add_epi32(isum[t], v);
                    }
                }
                if constexpr (kVnni) {
                    #pragma GCC unroll 8
                    for (int t = 0; t < T; ++t) isum[t] = _mm256_add_epi32(isum[t], _mm256_mullo_epi32(dot[t], s));
                }
            }
            const __m256 dw = _mm256_cvtph_ps(loadu128(G.d));
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t)
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(dw, _mm256_set1_ps(a[t][b].d)), acc[t]);
        }
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) _mm256_storeu_ps(out + t * stride, acc[t]);
    }
};

inline void install_packed_iq(KernelTable& t) { t.gemm_packed[idx(TypeId::IQ4_XS)] = gemm_packed_tiled<PackedIQ4XS>; }

}  // namespace
}  // namespace gemma::kernels::detail
