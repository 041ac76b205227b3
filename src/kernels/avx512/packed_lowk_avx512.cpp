// AVX-512 gemm over row-interleaved Q3_K and Q2_K groups (kernels/packed.h), two groups per zmm as
// packed_avx512.cpp: exact integer sums and Ref's float steps, so Ref's bits paired or alone.
#include "kernels/avx512/packed_common.h"  // first: it includes <immintrin.h>

namespace gemma::kernels::detail {
namespace {

// Q3_K / Q2_K against Q8_K. A qs word shifted by 2m and masked gives the 2-bit quants of 4 elements of 16 rows
// (Q3_K ORs in the high bit from the hmask word as bit 2), unsigned: q in 0..7 (Q3_K, value q - 4) or 0..3 (Q2_K).
// Per sub-block of 16 (4 words) vpdpbusd sums q . a in int32 (|sum| <= 16 * 7 * 128 fits the low int16), then one
// vpdpwssd by (scale, 0) scales and adds it. Scales as int8 bytes, byte c of word w (lane r) sub-block 4w + c:
// Q3_K's 6-bit scale - 32, Q2_K's low nibble. The bsum terms take 4 sub-blocks per vpdpwssd pair against the
// prepared bsum pairs: Q3_K's offset -4 * sum_j scale_j * bsum_j starts isum; Q2_K's mins (high nibbles) make
// msum, subtracted in float as Q4_K's.
template <typename GroupT>
struct PackedLowK {
    static constexpr bool kQ3 = requires(const GroupT& g) { g.hmask; };
    using Group = GroupT;
    using Act = block_q8_K;
    static constexpr int64_t kQK = 256;
    static constexpr int64_t kGroups = 2;
    static constexpr int kAux = 9;  // prepare_bsum_pairs
    static constexpr int kMaxT = 8;
    static void prepare(const Act* a, int64_t nb, int32_t* aux) { prepare_bsum_pairs(a, nb, aux); }

    // sum_j v_j * bsum_j per lane, v the 16 int8 bytes of words v[0..3] (sub-block 4w + c), from the bsum pairs.
    GEMMA_ALWAYS_INLINE static __m512i weighted_bsums(__m512i s, const __m512i (&v)[4], const int32_t* pairs) {
        #pragma GCC unroll 4
        for (int w = 0; w < 4; ++w) {
            const __m512i even = _mm512_srai_epi16(_mm512_slli_epi16(v[w], 8), 8), odd = _mm512_srai_epi16(v[w], 8);
            s = _mm512_dpwssd_epi32(_mm512_dpwssd_epi32(s, even, _mm512_set1_epi32(pairs[2 * w])), odd,
                                    _mm512_set1_epi32(pairs[2 * w + 1]));
        }
        return s;
    }

    GEMMA_ALWAYS_INLINE static void scale_words(const Group& G0, const Group& G1, __m512i (&sw)[4]) {
        const __m512i m0f = _mm512_set1_epi8(0x0F);
        if constexpr (kQ3) {
            // As the AVX2 tile: low 4 bits from words 0, 1 and their high nibbles, top 2 bits from bits 2w of word 2.
            const __m512i w0 = load2(G0.sc, G1.sc), w1 = load2(G0.sc + 32, G1.sc + 32), w2 = load2(G0.sc + 64, G1.sc + 64);
            const __m512i m30 = _mm512_set1_epi8(0x30), k32 = _mm512_set1_epi8(32);
            const __m512i lo[4] = {_mm512_and_si512(w0, m0f), _mm512_and_si512(w1, m0f),
                                   _mm512_and_si512(_mm512_srli_epi16(w0, 4), m0f),
                                   _mm512_and_si512(_mm512_srli_epi16(w1, 4), m0f)};
            const __m512i hi[4] = {_mm512_slli_epi16(w2, 4), _mm512_slli_epi16(w2, 2), w2, _mm512_srli_epi16(w2, 2)};
            #pragma GCC unroll 4
            for (int w = 0; w < 4; ++w) sw[w] = _mm512_sub_epi8(or_and(lo[w], hi[w], m30), k32);
        } else {
            #pragma GCC unroll 4
            for (int w = 0; w < 4; ++w) sw[w] = _mm512_and_si512(load2(G0.sc + 32 * w, G1.sc + 32 * w), m0f);
        }
    }

    template <int T>
    static void tile(int64_t nb, const Group* g0, int64_t groups, const Act* const* a, const int32_t* const* aux,
                     float* out, int64_t stride) {
        const Group* g1 = second_group(g0, groups, nb);
        const __mmask16 store = store_mask(groups);
        __m512 acc[T];
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
        const __m512i m3 = _mm512_set1_epi8(3), b2 = _mm512_set1_epi8(4), lo16 = _mm512_set1_epi32(0xFFFF);
        for (int64_t b = 0; b < nb; ++b) {
            const Group& G0 = g0[b];
            const Group& G1 = g1[b];
            __m512i sw[4];
            scale_words(G0, G1, sw);
            alignas(64) int8_t sbytes[4][64];
            #pragma GCC unroll 4
            for (int w = 0; w < 4; ++w) _mm512_store_si512(sbytes[w], sw[w]);
            __m512i isum[T];
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t)
                isum[t] = kQ3 ? _mm512_sub_epi32(_mm512_setzero_si512(),
                                                  _mm512_slli_epi32(weighted_bsums(_mm512_setzero_si512(), sw, aux[t] + 9 * b + 1), 2))
                              : _mm512_setzero_si512();
            #pragma GCC unroll 1
            for (int h = 0; h < 2; ++h) {
                const __m128i hshift = _mm_cvtsi32_si128(4 * h);
                #pragma GCC unroll 4
                for (int m = 0; m < 4; ++m) {
                    #pragma GCC unroll 2
                    for (int half = 0; half < 2; ++half) {
                        const int j = 8 * h + 2 * m + half;  // the sub-block
                        __m512i s[T];
                        #pragma GCC unroll 4
                        for (int i = 0; i < 4; ++i) {
                            const int kk = 4 * half + i;
                            const int q = 32 * (8 * h + kk);
                            __m512i u = _mm512_and_si512(_mm512_srli_epi16(load2(G0.qs + q, G1.qs + q), 2 * m), m3);
                            if constexpr (kQ3) {
                                // Bit 4h + m of each hmask byte to bit 2.
                                const __m512i hm = _mm512_srl_epi16(load2(G0.hmask + 32 * kk, G1.hmask + 32 * kk), hshift);
                                u = or_and(u, m >= 2 ? _mm512_srli_epi16(hm, m - 2) : _mm512_slli_epi16(hm, 2 - m), b2);
                            }
                            const int e = 128 * h + 32 * m + 4 * kk;  // the word's first element
                            #pragma GCC unroll 8
                            for (int t = 0; t < T; ++t)
                                s[t] = dpbusd(i == 0 ? _mm512_setzero_si512() : s[t], u, bcast_word(a[t][b].qs + e));
                        }
                        const __m512i sv = _mm512_and_si512(
                            _mm512_srai_epi32(shuffle_by(_mm512_load_si512(sbytes[j / 4]), kPick.s32[j % 4]), 24), lo16);
                        #pragma GCC unroll 8
                        for (int t = 0; t < T; ++t) isum[t] = _mm512_dpwssd_epi32(isum[t], s[t], sv);
                    }
                }
            }
            const __m512 dw = fp16x16(G0.d, G1.d);
            if constexpr (kQ3) {
                #pragma GCC unroll 8
                for (int t = 0; t < T; ++t)
                    acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(dw, bcast_f32(&aux[t][9 * b])), acc[t]);
            } else {
                __m512i mn[4];
                #pragma GCC unroll 4
                for (int w = 0; w < 4; ++w)
                    mn[w] = _mm512_and_si512(_mm512_srli_epi16(load2(G0.sc + 32 * w, G1.sc + 32 * w), 4), _mm512_set1_epi8(0x0F));
                const __m512 dm = fp16x16(G0.dmin, G1.dmin);
                #pragma GCC unroll 8
                for (int t = 0; t < T; ++t) {
                    const __m512 da = bcast_f32(&aux[t][9 * b]);
                    const __m512i msum = weighted_bsums(_mm512_setzero_si512(), mn, aux[t] + 9 * b + 1);
                    acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(dw, da), acc[t]);
                    acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum), _mm512_mul_ps(dm, da), acc[t]);
                }
            }
        }
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(out + t * stride, store, acc[t]);
    }
};

}  // namespace

void fill_avx512_packed_lowk(KernelTable& t) {
    t.gemm_packed[idx(TypeId::Q3_K)] = gemm_packed_tiled<PackedLowK<block_q3_Kx8>>;
    t.gemm_packed[idx(TypeId::Q2_K)] = gemm_packed_tiled<PackedLowK<block_q2_Kx8>>;
}

}  // namespace gemma::kernels::detail
