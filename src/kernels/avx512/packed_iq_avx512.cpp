// AVX-512 gemm over row-interleaved IQ4_XS groups (kernels/packed.h), two groups per zmm as packed_avx512.cpp:
// exact integer sums and Ref's float steps, so Ref's bits paired or alone.
#include "kernels/avx512/packed_common.h"  // first: it includes <immintrin.h>

namespace gemma::kernels::detail {
namespace {

// IQ4_XS against Q8_K, as the AVX-VNNI tile (avx2/packed_iq.h): a qs word's nibbles look up IQ4_NL's values plus
// 128 (unsigned) for 16 rows; vpdpbusd sums a sub-block's (v + 128) . a in int32 (|.| <= 32 * 241 * 127, too wide
// for vpdpwssd) and one vpmulld by the rows' scale - 32 adds it to isum. The bias, 128 * sum_j scale_j * (activation
// sum of sub-block j), starts isum negated: two sub-blocks per vpdpwssd against the prepared int16 sum pairs.
struct PackedIQ4XS {
    using Group = block_iq4_xsx8;
    using Act = block_q8_K;
    static constexpr int64_t kQK = 256;
    static constexpr int64_t kGroups = 2;
    static constexpr int kAux = 5;  // prepare_sub_pairs
    static constexpr int kMaxT = 8;
    static void prepare(const Act* a, int64_t nb, int32_t* aux) { prepare_sub_pairs(a, nb, aux); }

    template <int T>
    static void tile(int64_t nb, const Group* g0, int64_t groups, const Act* const* a, const int32_t* const* aux,
                     float* out, int64_t stride, const uint8_t* pf_end) {
        const Group* g1 = second_group(g0, groups, nb);
        const __mmask16 store = store_mask(groups);
        __m512 acc[T];
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
        const __m512i m4 = _mm512_set1_epi8(0x0F), table = _mm512_broadcast_i32x4(loadu128(kIq4Biased.v));
        const __m512i m0f = _mm512_set1_epi32(0x0F), m30 = _mm512_set1_epi32(0x30), k32 = _mm512_set1_epi32(32);
        for (int64_t b = 0; b < nb; ++b) {
            if (pf_end) prefetch_streams<Group, kGroups>(g0, nb, b, pf_end);
            const Group& G0 = g0[b];
            const Group& G1 = g1[b];
            // Lane r: the sl word, and sh shifted left by 4 so bits 2j, 2j+1 land at 4 + 2j.
            const __m512i sl = load2(G0.sl, G1.sl);
            const __m256i sh16 = _mm256_inserti128_si256(_mm256_castsi128_si256(loadu128(G0.sh)), loadu128(G1.sh), 1);
            const __m512i sh = _mm512_slli_epi32(_mm512_cvtepu16_epi32(sh16), 4);
            auto scale = [&](int j) GEMMA_ALWAYS_INLINE {  // sub-block j's scale - 32, an int32 lane per row
                const __m512i lo = _mm512_and_si512(_mm512_srli_epi32(sl, 4 * j), m0f);
                return _mm512_sub_epi32(or_and(lo, _mm512_srli_epi32(sh, 2 * j), m30), k32);
            };
            __m512i isum[T];
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) isum[t] = _mm512_setzero_si512();
            #pragma GCC unroll 4
            for (int i = 0; i < 4; ++i) {
                const __m512i sp = _mm512_mask_blend_epi16(0xAAAAAAAAu, scale(2 * i), _mm512_slli_epi32(scale(2 * i + 1), 16));
                #pragma GCC unroll 8
                for (int t = 0; t < T; ++t) isum[t] = _mm512_dpwssd_epi32(isum[t], sp, _mm512_set1_epi32(aux[t][5 * b + 1 + i]));
            }
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) isum[t] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(isum[t], 7));
            #pragma GCC unroll 1
            for (int j = 0; j < 8; ++j) {
                __m512i dot[T];
                #pragma GCC unroll 4
                for (int i = 0; i < 4; ++i) {
                    const int k = 4 * j + i, e = 32 * j + 4 * i;  // lo's first element; hi's is e + 16
                    const __m512i raw = load2(G0.qs + 32 * k, G1.qs + 32 * k);
                    const __m512i lo = _mm512_shuffle_epi8(table, _mm512_and_si512(raw, m4));
                    const __m512i hi = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4));
                    #pragma GCC unroll 8
                    for (int t = 0; t < T; ++t) {
                        dot[t] = dpbusd(i == 0 ? _mm512_setzero_si512() : dot[t], lo, bcast_word(a[t][b].qs + e));
                        dot[t] = dpbusd(dot[t], hi, bcast_word(a[t][b].qs + e + 16));
                    }
                }
                const __m512i s = scale(j);
                #pragma GCC unroll 8
                for (int t = 0; t < T; ++t) isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(dot[t], s));
            }
            const __m512 dw = fp16x16(G0.d, G1.d);
            superblock_fma(acc, isum, dw, aux, 5 * b);
        }
        store_tile(out, stride, store, acc);
    }
};

}  // namespace

void fill_avx512_packed_iq(KernelTable& t) { t.gemm_packed[idx(TypeId::IQ4_XS)] = gemm_packed_tiled<PackedIQ4XS>; }

}  // namespace gemma::kernels::detail
