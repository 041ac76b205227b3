// AVX2 dot/gemm kernels for IQ4_XS, IQ3_XXS, IQ3_S and IQ2_S against Q8_K (grids looked up per 32 values).
#include "kernels/avx2/ktile.h"
#include "kernels/kernels_internal.h"
#include "quant/iq2_tables.h"
#include "quant/iq_tables.h"

namespace gemma::kernels::detail {
namespace {

using namespace avx2;

// ksigns_iq2xs expanded to 8 sign bytes (-1 or +1) per entry, ready for _mm256_sign_epi8.
struct EvenSigns {
    uint64_t v[128];
};
constexpr EvenSigns make_even_signs() {
    EvenSigns t{};
    for (int i = 0; i < 128; ++i) {
        const int s = i | (((__builtin_popcount(static_cast<unsigned>(i)) & 1)) << 7);
        uint64_t e = 0;
        for (int k = 0; k < 8; ++k) e |= static_cast<uint64_t>((s >> k) & 1 ? 0xFF : 0x01) << (8 * k);
        t.v[i] = e;
    }
    return t;
}
constexpr EvenSigns kEvenSigns = make_even_signs();

// 32 explicit sign bits (bit i for value i) -> +-1 bytes.
inline __m256i sign_bytes(uint32_t bits) { return _mm256_or_si256(bits_to_bytes(bits), _mm256_set1_epi8(1)); }

inline __m256i splat16(int v) { return _mm256_set1_epi16(static_cast<int16_t>(v)); }

struct IQ4XS {
    using Block = block_iq4_xs;
    static constexpr bool kSigned = true, kHasMin = false;
    static constexpr int kOffsetShift = 0;
    struct Super {
        float d, dmin = 0.0f;
        __m256i offset_scales{}, mins16{}, sc;
        const uint8_t* qs;
        GEMMA_ALWAYS_INLINE explicit Super(const Block* b) : qs(b->qs) {
            d = fp16_to_f32(b->d);
            // All 8 six-bit scales at once: low nibbles of scales_l interleaved with high nibbles, plus 2 bits
            // each of scales_h, minus 32.
            const uint32_t sl = load_u32(b->scales_l);
            const __m128i l4 = _mm_unpacklo_epi8(_mm_cvtsi32_si128(static_cast<int>(sl & 0x0F0F0F0Fu)),
                                                 _mm_cvtsi32_si128(static_cast<int>((sl >> 4) & 0x0F0F0F0Fu)));
            const __m256i h2 = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(b->scales_h),
                                                                  _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)),
                                                _mm256_set1_epi32(3));
            const __m256i ls = _mm256_sub_epi32(_mm256_or_si256(_mm256_cvtepu8_epi32(l4), _mm256_slli_epi32(h2, 4)),
                                                _mm256_set1_epi32(32));
            const __m128i ls16 = _mm_packs_epi32(_mm256_castsi256_si128(ls), _mm256_extracti128_si256(ls, 1));
            sc = _mm256_broadcastsi128_si256(ls16);
        }
        template <typename Fn>
        GEMMA_ALWAYS_INLINE void chunks(Fn&& fn) const {
            const __m256i table = _mm256_broadcastsi128_si256(loadu128(kvalues_iq4nl));
            const __m256i m4 = _mm256_set1_epi8(0x0F);
#pragma GCC unroll 4
            for (int p = 0; p < 4; ++p) {
                // 32 bytes hold two sub-blocks; each sub-block's low nibbles are its first 16 values.
                const __m256i v = loadu256(qs + 32 * p);
                const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
                const __m256i v0 = _mm256_shuffle_epi8(table, _mm256_permute2x128_si256(lo, hi, 0x20));
                const __m256i v1 = _mm256_shuffle_epi8(table, _mm256_permute2x128_si256(lo, hi, 0x31));
                fn(2 * p, _mm256_abs_epi8(v0), v0, lane16_splat(sc, 2 * p));
                fn(2 * p + 1, _mm256_abs_epi8(v1), v1, lane16_splat(sc, 2 * p + 1));
            }
        }
    };
};

struct IQ3XXS {
    using Block = block_iq3_xxs;
    static constexpr bool kSigned = true, kHasMin = false;
    static constexpr int kOffsetShift = 0;
    struct Super {
        float d, dmin = 0.0f;
        __m256i offset_scales{}, mins16{};
        const uint8_t* qs;
        // The format's factor 1/4 (ggml scales by 0.25 at the end) is a power of two: folding it into d is exact.
        GEMMA_ALWAYS_INLINE explicit Super(const Block* b) : qs(b->qs) { d = fp16_to_f32(b->d) * 0.25f; }
        template <typename Fn>
        GEMMA_ALWAYS_INLINE void chunks(Fn&& fn) const {
#pragma GCC unroll 8
            for (int ib = 0; ib < 8; ++ib) {
                const uint8_t* q = qs + 8 * ib;
                const __m256i g = _mm256_set_epi32(
                    static_cast<int>(iq3xxs_grid[q[7]]), static_cast<int>(iq3xxs_grid[q[6]]),
                    static_cast<int>(iq3xxs_grid[q[5]]), static_cast<int>(iq3xxs_grid[q[4]]),
                    static_cast<int>(iq3xxs_grid[q[3]]), static_cast<int>(iq3xxs_grid[q[2]]),
                    static_cast<int>(iq3xxs_grid[q[1]]), static_cast<int>(iq3xxs_grid[q[0]]));
                const uint32_t aux = load_u32(qs + QK_K / 4 + 4 * ib);
                const __m256i sgn = _mm256_set_epi64x(
                    static_cast<int64_t>(kEvenSigns.v[(aux >> 21) & 127]), static_cast<int64_t>(kEvenSigns.v[(aux >> 14) & 127]),
                    static_cast<int64_t>(kEvenSigns.v[(aux >> 7) & 127]), static_cast<int64_t>(kEvenSigns.v[aux & 127]));
                fn(ib, g, sgn, splat16(static_cast<int>(2 * (aux >> 28) + 1)));
            }
        }
    };
};

struct IQ3S {
    using Block = block_iq3_s;
    static constexpr bool kSigned = true, kHasMin = false;
    static constexpr int kOffsetShift = 0;
    struct Super {
        float d, dmin = 0.0f;
        __m256i offset_scales{}, mins16{};
        const Block* x;
        GEMMA_ALWAYS_INLINE explicit Super(const Block* b) : x(b) { d = fp16_to_f32(b->d); }
        template <typename Fn>
        GEMMA_ALWAYS_INLINE void chunks(Fn&& fn) const {
#pragma GCC unroll 8
            for (int ib = 0; ib < 8; ++ib) {
                const uint8_t* q = x->qs + 8 * ib;
                const uint32_t h = x->qh[ib];
                int i[8];
#pragma GCC unroll 8
                for (int k = 0; k < 8; ++k) i[k] = q[k] | static_cast<int>((h << (8 - k)) & 0x100);
                const __m256i g = _mm256_set_epi32(
                    static_cast<int>(iq3s_grid[i[7]]), static_cast<int>(iq3s_grid[i[6]]), static_cast<int>(iq3s_grid[i[5]]),
                    static_cast<int>(iq3s_grid[i[4]]), static_cast<int>(iq3s_grid[i[3]]), static_cast<int>(iq3s_grid[i[2]]),
                    static_cast<int>(iq3s_grid[i[1]]), static_cast<int>(iq3s_grid[i[0]]));
                const int ls = (x->scales[ib / 2] >> (4 * (ib % 2))) & 0xF;
                fn(ib, g, sign_bytes(load_u32(x->signs + 4 * ib)), splat16(2 * ls + 1));
            }
        }
    };
};

struct IQ2S {
    using Block = block_iq2_s;
    static constexpr bool kSigned = true, kHasMin = false;
    static constexpr int kOffsetShift = 0;
    struct Super {
        float d, dmin = 0.0f;
        __m256i offset_scales{}, mins16{};
        const Block* x;
        // The format's factor 1/8 folded into d (exact, a power of two).
        GEMMA_ALWAYS_INLINE explicit Super(const Block* b) : x(b) { d = fp16_to_f32(b->d) * 0.125f; }
        template <typename Fn>
        GEMMA_ALWAYS_INLINE void chunks(Fn&& fn) const {
#pragma GCC unroll 8
            for (int ib = 0; ib < 8; ++ib) {
                const uint8_t* q = x->qs + 4 * ib;
                const uint32_t h = x->qh[ib];
                const __m256i g = _mm256_set_epi64x(static_cast<int64_t>(iq2s_grid[q[3] | ((h << 2) & 0x300)]),
                                                    static_cast<int64_t>(iq2s_grid[q[2] | ((h << 4) & 0x300)]),
                                                    static_cast<int64_t>(iq2s_grid[q[1] | ((h << 6) & 0x300)]),
                                                    static_cast<int64_t>(iq2s_grid[q[0] | ((h << 8) & 0x300)]));
                const int s = x->scales[ib];
                // Two 16-value halves with their own scale: maddubs lanes 0..7 are the first half.
                const __m256i sc = _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(2 * (s >> 4) + 1)),
                                                    _mm_set1_epi16(static_cast<int16_t>(2 * (s & 0xF) + 1)));
                fn(ib, g, sign_bytes(load_u32(x->qs + QK_K / 8 + 4 * ib)), sc);
            }
        }
    };
};

}  // namespace

void fill_avx2_iq(KernelTable& t) {
    install_tiled<SuperKernel<IQ4XS>>(t, TypeId::IQ4_XS);
    install_tiled<SuperKernel<IQ3XXS>>(t, TypeId::IQ3_XXS);
    install_tiled<SuperKernel<IQ3S>>(t, TypeId::IQ3_S);
    install_tiled<SuperKernel<IQ2S>>(t, TypeId::IQ2_S);
}

}  // namespace gemma::kernels::detail
