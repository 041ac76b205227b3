// AVX2 (and AVX-VNNI) gemm over row-interleaved Q3_K and Q2_K groups (kernels/packed.h), on top of the helpers of
// packed_kernels.h; included by the same two TUs. Integer sums are exact, the float steps Ref's: Ref's bits.
#pragma once
#include "kernels/avx2/packed_kernels.h"

namespace gemma::kernels::detail {
namespace {

#ifdef GEMMA_VNNI
// acc + lo16(s) * lo16(w) + hi16(s) * hi16(w) per int32 lane, exact.
inline __m256i dpwssd(__m256i acc, __m256i s, __m256i w) { return _mm256_dpwssd_avx_epi32(acc, s, w); }
#else
inline __m256i dpwssd(__m256i acc, __m256i s, __m256i w) { return _mm256_add_epi32(acc, _mm256_madd_epi16(s, w)); }
#endif

// Q3_K / Q2_K against Q8_K. A qs word shifted by 2mp (mp < 2) gives the 2-bit quants of two element runs of every
// row, 64 apart (fields mp and mp + 2 of half h, sub-blocks j and j + 4); Q3_K puts their high bits beside them
// from the hmask word with one shift (packed.h), so a mask and a shift-and-mask give the two unsigned quant vectors:
// q in 0..7 (Q3_K, value q - 4) or 0..3 (Q2_K). Per sub-block of 16 (4 words): AVX2 adds the 4 maddubs results in
// int16 (|sum| <= 16 * 7 * 128) and one madd by the rows' (scale, scale) int16 pairs widens and scales them; VNNI
// sums in int32 with vpdpbusd and scales with one vpdpwssd by (scale, 0), the sub-block's sum fitting the low
// int16. Scales as int8 bytes, byte c of word w (lane r) sub-block 4w + c: Q3_K's 6-bit scale - 32, Q2_K's low
// nibble. The bsum terms take two sub-blocks per madd against Q6_K's bsum pairs: Q3_K's offset
// -4 * sum_j scale_j * bsum_j starts isum, Q2_K's mins (high nibbles) make msum, subtracted in float as Q4_K's.
template <typename GroupT>
struct PackedLowK {
    static constexpr bool kQ3 = requires(const GroupT& g) { g.hmask; };
    using Group = GroupT;
    using Act = block_q8_K;
    static constexpr int64_t kQK = 256;
    static constexpr int64_t kGroups = 1;
    static constexpr int kAux = PackedQ6K::kAux;
    static constexpr int kMaxT = 4;
    static void prepare(const Act* a, int64_t nb, int32_t* aux) { PackedQ6K::prepare(a, nb, aux); }

    // sum_j v_j * bsum_j per lane, v the 16 int8 bytes of words v[0..3] (sub-block 4w + c), from the bsum pairs.
    GEMMA_ALWAYS_INLINE static __m256i weighted_bsums(const __m256i (&v)[4], const int32_t* pairs) {
        __m256i s = _mm256_setzero_si256();
        #pragma GCC unroll 4
        for (int w = 0; w < 4; ++w) {
            const __m256i even = _mm256_srai_epi16(_mm256_slli_epi16(v[w], 8), 8), odd = _mm256_srai_epi16(v[w], 8);
            s = _mm256_add_epi32(s, _mm256_add_epi32(_mm256_madd_epi16(even, _mm256_set1_epi32(pairs[2 * w])),
                                                     _mm256_madd_epi16(odd, _mm256_set1_epi32(pairs[2 * w + 1]))));
        }
        return s;
    }

    GEMMA_ALWAYS_INLINE static void scale_words(const Group& G, __m256i (&sw)[4]) {
        const __m256i m0f = _mm256_set1_epi8(0x0F);
        if constexpr (kQ3) {
            // Low 4 bits: bytes 0..7 (sub-blocks 0..7), then their high nibbles (8..15); top 2 bits: bits 2(j/4) of
            // byte 8 + j%4, i.e. bits 2w of word 2, moved to bits 4-5 (16-bit shifts: the masks keep each byte's own).
            const __m256i w0 = loadu256(G.sc), w1 = loadu256(G.sc + 32), w2 = loadu256(G.sc + 64);
            const __m256i m30 = _mm256_set1_epi8(0x30), k32 = _mm256_set1_epi8(32);
            const __m256i lo[4] = {_mm256_and_si256(w0, m0f), _mm256_and_si256(w1, m0f),
                                   _mm256_and_si256(_mm256_srli_epi16(w0, 4), m0f),
                                   _mm256_and_si256(_mm256_srli_epi16(w1, 4), m0f)};
            const __m256i hi[4] = {_mm256_slli_epi16(w2, 4), _mm256_slli_epi16(w2, 2), w2, _mm256_srli_epi16(w2, 2)};
            #pragma GCC unroll 4
            for (int w = 0; w < 4; ++w)
                sw[w] = _mm256_sub_epi8(_mm256_or_si256(lo[w], _mm256_and_si256(hi[w], m30)), k32);
        } else {
            #pragma GCC unroll 4
            for (int w = 0; w < 4; ++w) sw[w] = _mm256_and_si256(loadu256(G.sc + 32 * w), m0f);
        }
    }

    // The unsigned quants of word kk of fields (mp, mp + 2) of half h: elements 128h + 32mp + 4kk.. and +64.
    GEMMA_ALWAYS_INLINE static void quants(const Group& G, int h, int mp, int kk, __m256i& lo, __m256i& hi) {
        __m256i x = _mm256_srli_epi16(loadu256(G.qs + 32 * (8 * h + kk)), 2 * mp);
        if constexpr (kQ3) {
            const __m256i hm = loadu256(G.hmask + 32 * kk);
            const int sh = mp - 2 * h;  // the high bits of the two fields to bits 2 and 6
            const __m256i hs = sh > 0 ? _mm256_srli_epi16(hm, sh) : sh < 0 ? _mm256_slli_epi16(hm, -sh) : hm;
            // Bits 0x33 from x, the rest from hs: bits 3 and 7 are left over, and the masks below drop them.
            x = _mm256_xor_si256(hs, _mm256_and_si256(_mm256_xor_si256(hs, x), _mm256_set1_epi8(0x33)));
        }
        const __m256i mask = _mm256_set1_epi8(kQ3 ? 7 : 3);
        lo = _mm256_and_si256(x, mask);
        hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), mask);
    }

    template <int T>
    static void tile(int64_t nb, const Group* g, int64_t /*groups: always 1*/, const Act* const* a,
                     const int32_t* const* aux, float* out, int64_t stride, const uint8_t* pf_end) {
        __m256 acc[T];
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
        const __m256i lo16 = _mm256_set1_epi32(0xFFFF);
        for (int64_t b = 0; b < nb; ++b) {
            if (pf_end) prefetch_streams<Group, kGroups>(g, nb, b, pf_end);
            const Group& G = g[b];
            __m256i sw[4];
            scale_words(G, sw);
            __m256i isum[T];
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t)
                isum[t] = kQ3 ? _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(weighted_bsums(sw, aux[t] + 8 * b), 2))
                              : _mm256_setzero_si256();
            #pragma GCC unroll 2
            for (int h = 0; h < 2; ++h) {
                #pragma GCC unroll 2
                for (int mp = 0; mp < 2; ++mp) {
                    #pragma GCC unroll 2
                    for (int half = 0; half < 2; ++half) {
                        // Sub-blocks 8h + 2mp + half (scale byte c of word 2h) and 4 further (word 2h + 1).
                        const int c = 2 * mp + half;
                        __m256i slo[T], shi[T];
                        #pragma GCC unroll 4
                        for (int i = 0; i < 4; ++i) {
                            const int kk = 4 * half + i;
                            __m256i lo, hi;
                            quants(G, h, mp, kk, lo, hi);
                            const int e = 128 * h + 32 * mp + 4 * kk;  // lo's first element; hi's is e + 64
                            #pragma GCC unroll 8
                            for (int t = 0; t < T; ++t) {
                                if constexpr (kVnni) {
                                    const __m256i z = _mm256_setzero_si256();
                                    slo[t] = dpbusd(i == 0 ? z : slo[t], lo, bcast_word(a[t][b].qs + e));
                                    shi[t] = dpbusd(i == 0 ? z : shi[t], hi, bcast_word(a[t][b].qs + e + 64));
                                } else {
                                    const __m256i pl = _mm256_maddubs_epi16(lo, bcast_word(a[t][b].qs + e));
                                    const __m256i ph = _mm256_maddubs_epi16(hi, bcast_word(a[t][b].qs + e + 64));
                                    slo[t] = i == 0 ? pl : _mm256_add_epi16(slo[t], pl);
                                    shi[t] = i == 0 ? ph : _mm256_add_epi16(shi[t], ph);
                                }
                            }
                        }
                        const __m256i pick = loadu256(kQ6.s16[c]);
                        __m256i svl = _mm256_srai_epi16(_mm256_shuffle_epi8(sw[2 * h], pick), 8);
                        __m256i svh = _mm256_srai_epi16(_mm256_shuffle_epi8(sw[2 * h + 1], pick), 8);
                        if constexpr (kVnni) {
                            svl = _mm256_and_si256(svl, lo16);
                            svh = _mm256_and_si256(svh, lo16);
                        }
                        #pragma GCC unroll 8
                        for (int t = 0; t < T; ++t) isum[t] = dpwssd(dpwssd(isum[t], slo[t], svl), shi[t], svh);
                    }
                }
            }
            const __m256 dw = _mm256_cvtph_ps(loadu128(G.d));
            if constexpr (kQ3) {
                #pragma GCC unroll 8
                for (int t = 0; t < T; ++t)
                    acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(dw, _mm256_set1_ps(a[t][b].d)), acc[t]);
            } else {
                __m256i mn[4];
                #pragma GCC unroll 4
                for (int w = 0; w < 4; ++w)
                    mn[w] = _mm256_and_si256(_mm256_srli_epi16(loadu256(G.sc + 32 * w), 4), _mm256_set1_epi8(0x0F));
                const __m256 dm = _mm256_cvtph_ps(loadu128(G.dmin));
                #pragma GCC unroll 8
                for (int t = 0; t < T; ++t) {
                    const __m256 da = _mm256_set1_ps(a[t][b].d);
                    const __m256i msum = weighted_bsums(mn, aux[t] + 8 * b);
                    acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(dw, da), acc[t]);
                    acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_mul_ps(dm, da), acc[t]);
                }
            }
        }
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) _mm256_storeu_ps(out + t * stride, acc[t]);
    }
};

inline void install_packed_lowk(KernelTable& t) {
    t.gemm_packed[idx(TypeId::Q3_K)] = gemm_packed_tiled<PackedLowK<block_q3_Kx8>>;
    t.gemm_packed[idx(TypeId::Q2_K)] = gemm_packed_tiled<PackedLowK<block_q2_Kx8>>;
}

}  // namespace
}  // namespace gemma::kernels::detail
