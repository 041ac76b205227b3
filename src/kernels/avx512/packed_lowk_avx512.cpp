// AVX-512 gemm over row-interleaved Q3_K and Q2_K groups (kernels/packed.h), two groups per zmm as
// packed_avx512.cpp: exact integer sums and Ref's float steps, so Ref's bits paired or alone.
#include "kernels/avx512/packed_common.h"  // first: it includes <immintrin.h>

namespace gemma::kernels::detail {
namespace {

// Q3_K / Q2_K against Q8_K, as the AVX2 tile (avx2/packed_lowk.h): a qs word shifted by 2mp and, for Q3_K, the
// hmask word's high bits merged in with one vpternlogd give the unsigned quants of two element runs 64 apart (q in
// 0..7, value q - 4, or 0..3) of 16 rows. Per sub-block of 16 (4 words) vpdpbusd sums q . a in int32 (|sum| <=
// 16 * 7 * 128 fits the low int16), then one vpdpwssd by (scale, 0) scales and adds it. Scales as int8 bytes, byte c
// of word w (lane r) sub-block 4w + c: Q3_K's 6-bit scale - 32, Q2_K's low nibble. The bsum terms take 4 sub-blocks
// per vpdpwssd pair against the prepared bsum pairs: Q3_K's offset -4 * sum_j scale_j * bsum_j starts isum; Q2_K's
// mins (high nibbles) make msum, subtracted in float as Q4_K's.
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

    // The unsigned quants of word kk of fields (mp, mp + 2) of half h: elements 128h + 32mp + 4kk.. and +64.
    GEMMA_ALWAYS_INLINE static void quants(const Group& G0, const Group& G1, int h, int mp, int kk, __m512i& lo,
                                           __m512i& hi) {
        const int q = 32 * (8 * h + kk);
        __m512i x = _mm512_srli_epi16(load2(G0.qs + q, G1.qs + q), 2 * mp);
        if constexpr (kQ3) {
            const __m512i hm = load2(G0.hmask + 32 * kk, G1.hmask + 32 * kk);
            const int sh = mp - 2 * h;  // the high bits of the two fields to bits 2 and 6
            const __m512i hs = sh > 0 ? _mm512_srli_epi16(hm, sh) : sh < 0 ? _mm512_slli_epi16(hm, -sh) : hm;
            // Bits 0x33 from x, the rest from hs (bits 3 and 7 left over: the masks below drop them).
            x = _mm512_ternarylogic_epi32(_mm512_set1_epi8(0x33), x, hs, 0xCA);  // a ? b : c, bitwise
        }
        const __m512i mask = _mm512_set1_epi8(kQ3 ? 7 : 3);
        lo = _mm512_and_si512(x, mask);
        hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), mask);
    }

    template <int T>
    static void tile(int64_t nb, const Group* g0, int64_t groups, const Act* const* a, const int32_t* const* aux,
                     float* out, int64_t stride, const uint8_t* pf_end) {
        const Group* g1 = second_group(g0, groups, nb);
        const __mmask16 store = store_mask(groups);
        __m512 acc[T];
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
        const __m512i lo16 = _mm512_set1_epi32(0xFFFF);
        for (int64_t b = 0; b < nb; ++b) {
            if (pf_end) prefetch_streams<Group, kGroups>(g0, nb, b, pf_end);
            const Group& G0 = g0[b];
            const Group& G1 = g1[b];
            __m512i sw[4];
            scale_words(G0, G1, sw);
            __m512i isum[T];
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t)
                isum[t] = kQ3 ? _mm512_sub_epi32(_mm512_setzero_si512(),
                                                  _mm512_slli_epi32(weighted_bsums(_mm512_setzero_si512(), sw, aux[t] + 9 * b + 1), 2))
                              : _mm512_setzero_si512();
            #pragma GCC unroll 2
            for (int h = 0; h < 2; ++h) {
                #pragma GCC unroll 2
                for (int mp = 0; mp < 2; ++mp) {
                    #pragma GCC unroll 2
                    for (int half = 0; half < 2; ++half) {
                        // Sub-blocks 8h + 2mp + half (scale byte c of word 2h) and 4 further (word 2h + 1).
                        const int c = 2 * mp + half;
                        __m512i slo[T], shi[T];
                        #pragma GCC unroll 4
                        for (int i = 0; i < 4; ++i) {
                            const int kk = 4 * half + i;
                            __m512i lo, hi;
                            quants(G0, G1, h, mp, kk, lo, hi);
                            const int e = 128 * h + 32 * mp + 4 * kk;  // lo's first element; hi's is e + 64
                            #pragma GCC unroll 8
                            for (int t = 0; t < T; ++t) {
                                const __m512i z = _mm512_setzero_si512();
                                slo[t] = dpbusd(i == 0 ? z : slo[t], lo, bcast_word(a[t][b].qs + e));
                                shi[t] = dpbusd(i == 0 ? z : shi[t], hi, bcast_word(a[t][b].qs + e + 64));
                            }
                        }
                        const __m512i svl = _mm512_and_si512(_mm512_srai_epi32(shuffle_by(sw[2 * h], kPick.s32[c]), 24), lo16);
                        const __m512i svh = _mm512_and_si512(_mm512_srai_epi32(shuffle_by(sw[2 * h + 1], kPick.s32[c]), 24), lo16);
                        #pragma GCC unroll 8
                        for (int t = 0; t < T; ++t)
                            isum[t] = _mm512_dpwssd_epi32(_mm512_dpwssd_epi32(isum[t], slo[t], svl), shi[t], svh);
                    }
                }
            }
            const __m512 dw = fp16x16(G0.d, G1.d);
            if constexpr (kQ3) {
                superblock_fma(acc, isum, dw, aux, 9 * b);
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
        store_tile(out, stride, store, acc);
    }
};

}  // namespace

void fill_avx512_packed_lowk(KernelTable& t) {
    t.gemm_packed[idx(TypeId::Q3_K)] = gemm_packed_tiled<PackedLowK<block_q3_Kx8>>;
    t.gemm_packed[idx(TypeId::Q2_K)] = gemm_packed_tiled<PackedLowK<block_q2_Kx8>>;
}

}  // namespace gemma::kernels::detail
