// IQ3_XXS and IQ3_S dot/gemm kernels on AVX-512 VBMI: grid indices become 12-bit codes by in-register word permutes
// and codes become bytes by multishift, instead of one scalar load and insert per 4 weights (the AVX2 kernels' cost).
#include "kernels/avx512/avx512_common.h"  // first: it includes <immintrin.h>

#include <cstring>

#include "core/error.h"
#include "kernels/avx2/tile_driver.h"
#include "kernels/kernels_internal.h"
#include "quant/blocks.h"
#include "quant/iq_tables.h"

namespace gemma::kernels::detail {
namespace {

using namespace avx512;

// A grid entry's 4 bytes as 3-bit codes (byte j at bits 3j..3j+2): 16 bits per entry, so a 64-entry slice of the
// table fits two zmm registers and one vpermt2w looks up 32 entries.
struct alignas(64) CodeTables {
    uint16_t xxs[256];
    uint16_t s[512];
};
CodeTables g_codes;

// The byte each 3-bit code stands for, in the low 8 bytes of each 128-bit lane (for vpshufb).
constexpr uint8_t kXxsValues[8] = {4, 12, 20, 28, 36, 44, 52, 62};
constexpr uint8_t kSValues[8] = {1, 3, 5, 7, 9, 11, 13, 15};

template <size_t N>
void build_codes(const uint32_t* grid, const uint8_t (&values)[8], uint16_t (&out)[N]) {
    for (size_t e = 0; e < N; ++e) {
        uint16_t code = 0;
        for (int j = 0; j < 4; ++j) {
            const uint8_t b = static_cast<uint8_t>(grid[e] >> (8 * j));
            int c = 0;
            while (c < 8 && values[c] != b) ++c;
            GEMMA_ASSERT(c < 8);  // the grids are constants whose bytes all come from the code book
            code = static_cast<uint16_t>(code | (c << (3 * j)));
        }
        out[e] = code;
    }
}

inline __m512i values_table(const uint8_t (&v)[8]) {
    uint64_t q = 0;
    for (int c = 0; c < 8; ++c) q |= static_cast<uint64_t>(v[c]) << (8 * c);
    return _mm512_set1_epi64(static_cast<int64_t>(q));
}

// Codes of 32 indices (word lanes, bits 0-7 used) from a 256-entry table: four permutes of 64-entry slices, the
// slice picked by bits 6 and 7.
inline GEMMA_ALWAYS_INLINE __m512i codes256(__m512i idx, const uint16_t* tab) {
    const auto* t = reinterpret_cast<const __m512i*>(tab);
    const __m512i r0 = _mm512_permutex2var_epi16(_mm512_load_si512(t + 0), idx, _mm512_load_si512(t + 1));
    const __m512i r1 = _mm512_permutex2var_epi16(_mm512_load_si512(t + 2), idx, _mm512_load_si512(t + 3));
    const __m512i r2 = _mm512_permutex2var_epi16(_mm512_load_si512(t + 4), idx, _mm512_load_si512(t + 5));
    const __m512i r3 = _mm512_permutex2var_epi16(_mm512_load_si512(t + 6), idx, _mm512_load_si512(t + 7));
    const __mmask32 b6 = _mm512_test_epi16_mask(idx, _mm512_set1_epi16(64));
    const __mmask32 b7 = _mm512_test_epi16_mask(idx, _mm512_set1_epi16(128));
    return _mm512_mask_blend_epi16(b7, _mm512_mask_blend_epi16(b6, r0, r1), _mm512_mask_blend_epi16(b6, r2, r3));
}

// 16 codes (8 dword lanes, each a pair of codes) -> their 64 grid bytes in index order: each qword takes a pair,
// multishift pulls the 3-bit fields at bits 0,3,6,9 and 16,19,22,25 into its 8 bytes, vpshufb maps them to values.
inline GEMMA_ALWAYS_INLINE __m512i expand16(__m256i pairs, __m512i values) {
    const __m512i q = _mm512_cvtepu32_epi64(pairs);
    const __m512i f = _mm512_multishift_epi64_epi8(_mm512_set1_epi64(0x1916131009060300LL), q);
    return _mm512_shuffle_epi8(values, _mm512_and_si512(f, _mm512_set1_epi8(7)));
}

// One super-block ready for any number of tokens: 4 x 64 grid bytes (weights 64p..64p+63), their signs as masks,
// the int16 scale of each maddubs lane (16 lanes of sub-block 2p, then 16 of 2p+1) and the block's float scale.
struct Decoded {
    __m512i g[4];
    __mmask64 neg[4];
    __m512i sc[4];
    float d;
};

// Sub-block scales (8 int16 in an xmm) -> per p, lanes 0-15 = scale 2p, lanes 16-31 = scale 2p+1.
inline GEMMA_ALWAYS_INLINE void spread_scales(__m128i s8, __m512i (&sc)[4]) {
    const __m512i s = _mm512_castsi128_si512(s8);
#pragma GCC unroll 4
    for (int p = 0; p < 4; ++p)
        sc[p] = _mm512_permutexvar_epi16(
            _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_set1_epi16(static_cast<int16_t>(2 * p)),
                                    _mm512_set1_epi16(static_cast<int16_t>(2 * p + 1))),
            s);
}

inline GEMMA_ALWAYS_INLINE void expand_codes(__m512i c0, __m512i c1, __m512i values, Decoded& out) {
    out.g[0] = expand16(_mm512_castsi512_si256(c0), values);
    out.g[1] = expand16(_mm512_extracti64x4_epi64(c0, 1), values);
    out.g[2] = expand16(_mm512_castsi512_si256(c1), values);
    out.g[3] = expand16(_mm512_extracti64x4_epi64(c1, 1), values);
}

struct IQ3XXS {
    using Block = block_iq3_xxs;
    GEMMA_ALWAYS_INLINE static void decode(const Block* b, Decoded& out) {
        const __m512i q = _mm512_loadu_si512(b->qs);
        const __m512i c0 = codes256(_mm512_cvtepu8_epi16(_mm512_castsi512_si256(q)), g_codes.xxs);
        const __m512i c1 = codes256(_mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(q, 1)), g_codes.xxs);
        expand_codes(c0, c1, values_table(kXxsValues), out);
        // 8 words of 4 seven-bit sign indices and a 4-bit scale: multishift gathers the indices of a pair of words
        // into a qword's bytes (bits 0,7,14,21 and 32,39,46,53), ksigns (128 bytes) completes each to 8 signs.
        const __m256i aux = loadu256(b->qs + QK_K / 4);
        const __m256i si = _mm256_and_si256(_mm256_multishift_epi64_epi8(_mm256_set1_epi64x(0x352E2720150E0700LL), aux),
                                            _mm256_set1_epi8(0x7F));
        const auto* ks = reinterpret_cast<const __m512i*>(ksigns_iq2xs);
        const __m256i signs = _mm512_castsi512_si256(
            _mm512_permutex2var_epi8(_mm512_loadu_si512(ks), _mm512_zextsi256_si512(si), _mm512_loadu_si512(ks + 1)));
        out.neg[0] = _cvtu64_mask64(static_cast<uint64_t>(_mm256_extract_epi64(signs, 0)));
        out.neg[1] = _cvtu64_mask64(static_cast<uint64_t>(_mm256_extract_epi64(signs, 1)));
        out.neg[2] = _cvtu64_mask64(static_cast<uint64_t>(_mm256_extract_epi64(signs, 2)));
        out.neg[3] = _cvtu64_mask64(static_cast<uint64_t>(_mm256_extract_epi64(signs, 3)));
        const __m256i ls = _mm256_add_epi32(_mm256_slli_epi32(_mm256_srli_epi32(aux, 28), 1), _mm256_set1_epi32(1));
        spread_scales(_mm256_cvtepi32_epi16(ls), out.sc);
        // The format's factor 1/4 is a power of two: folding it into d is exact.
        out.d = _cvtsh_ss(b->d) * 0.25f;
    }
};

struct IQ3S {
    using Block = block_iq3_s;
    GEMMA_ALWAYS_INLINE static void decode(const Block* b, Decoded& out) {
        const __m512i q = _mm512_loadu_si512(b->qs);
        // qh bit 8*ib+k is index 8*ib+k's ninth bit: the 64 bits are one mask over the 64 indices (added, as the
        // zero-extended bytes have no bit 8: AVX-512 has no masked 16-bit or).
        uint64_t h;
        std::memcpy(&h, b->qh, 8);
        const __m512i bit8 = _mm512_set1_epi16(256);
        __m512i i0 = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(q));
        __m512i i1 = _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(q, 1));
        i0 = _mm512_mask_add_epi16(i0, _cvtu32_mask32(static_cast<uint32_t>(h)), i0, bit8);
        i1 = _mm512_mask_add_epi16(i1, _cvtu32_mask32(static_cast<uint32_t>(h >> 32)), i1, bit8);
        const __m512i c0 = _mm512_mask_blend_epi16(_mm512_test_epi16_mask(i0, bit8), codes256(i0, g_codes.s),
                                                   codes256(i0, g_codes.s + 256));
        const __m512i c1 = _mm512_mask_blend_epi16(_mm512_test_epi16_mask(i1, bit8), codes256(i1, g_codes.s),
                                                   codes256(i1, g_codes.s + 256));
        expand_codes(c0, c1, values_table(kSValues), out);
        // Explicit sign bits, bit w for weight w.
#pragma GCC unroll 4
        for (int p = 0; p < 4; ++p) {
            uint64_t s;
            std::memcpy(&s, b->signs + 8 * p, 8);
            out.neg[p] = _cvtu64_mask64(s);
        }
        // 8 four-bit scales, sub-block 2m in the low nibble of byte m: interleave low and high nibbles.
        const __m128i raw = _mm_cvtsi32_si128(static_cast<int>(load_u32(b->scales)));
        const __m128i m4 = _mm_set1_epi8(0x0F);
        const __m128i ls = _mm_unpacklo_epi8(_mm_and_si128(raw, m4), _mm_and_si128(_mm_srli_epi16(raw, 4), m4));
        spread_scales(_mm_add_epi16(_mm_slli_epi16(_mm_cvtepu8_epi16(ls), 1), _mm_set1_epi16(1)), out.sc);
        out.d = _cvtsh_ss(b->d);
    }
};

// Per (row, token): the super-block's exact integer sum in 16 int32 lanes (signs applied to the activations,
// maddubs, then vpdpwssd with the scales), one float FMA per super-block into 16 lanes, hsum512 at the end: the
// same arithmetic for every tile shape, so gemm equals vec_dot bit for bit.
template <typename F, int KT>
struct IqKernel {
    static constexpr int kMaxR = 1;
    static constexpr int kMaxT = KT;

    template <int R, int T>
    static void tile(int64_t n, const uint8_t* w, size_t wrb, const uint8_t* a, size_t arb, float* out, int64_t stride,
                     const uint8_t* pf_end) {
        static_assert(R == 1);
        const auto* x = reinterpret_cast<const typename F::Block*>(w);
        const int64_t nb = n / QK_K;
        __m512 acc[T];
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
        const __m512i zero = _mm512_setzero_si512();
        for (int64_t b = 0; b < nb; ++b) {
            if (pf_end)
                avx2::prefetch_block_rows<1, sizeof(typename F::Block)>(w, wrb, static_cast<size_t>(nb) * sizeof(typename F::Block), b, pf_end);
            Decoded dec;
            F::decode(x + b, dec);
#pragma GCC unroll 8
            for (int t = 0; t < T; ++t) {
                const block_q8_K* y = reinterpret_cast<const block_q8_K*>(a + t * arb) + b;
                __m512i sumi = _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int p = 0; p < 4; ++p) {
                    const __m512i av = _mm512_loadu_si512(y->qs + 64 * p);
                    // Q8_K never holds -128, so negating in int8 is exact.
                    const __m512i sv = _mm512_mask_sub_epi8(av, dec.neg[p], zero, av);
                    sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(dec.g[p], sv), dec.sc[p]);
                }
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_set1_ps(dec.d * y->d), acc[t]);
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < T; ++t) out[t * stride] = hsum512(acc[t]);
    }
};

}  // namespace

void fill_avx512vbmi_iq3(KernelTable& t) {
    build_codes(iq3xxs_grid, kXxsValues, g_codes.xxs);
    build_codes(iq3s_grid, kSValues, g_codes.s);
    avx2::install_tiled<IqKernel<IQ3XXS, 8>>(t, TypeId::IQ3_XXS);
    avx2::install_tiled<IqKernel<IQ3S, 8>>(t, TypeId::IQ3_S);
}

}  // namespace gemma::kernels::detail
