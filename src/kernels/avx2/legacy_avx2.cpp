// AVX2 dot/gemm kernels for 32-element blocks: Q4_0, Q5_0, Q8_0, IQ4_NL (vs Q8_0) and Q4_1, Q5_1 (vs Q8_1).
#include "kernels/avx2/avx2_common.h"
#include "kernels/avx2/tile_driver.h"
#include "kernels/kernels_internal.h"
#include "quant/blocks.h"
#include "quant/iq_tables.h"

namespace gemma::kernels::detail {
namespace {

using namespace avx2;

// How a weight block's bytes become a vector for maddubs (which needs one unsigned operand):
//   Offset: unsigned q with value q - kOff; the offset is removed with one maddubs(kOff, a) per token,
//           shared by every row of the tile (cheaper than the sign trick per row).
//   Min:    unsigned q with value d*q + m; the m term is m * s of the Q8_1 block, summed in a scalar.
//   Signed: signed values; the sign trick moves the weight's sign onto the activation.
enum class Kind { Offset, Min, Signed };

struct Q4_0 {
    static constexpr Kind kKind = Kind::Offset;
    static constexpr int kOff = 8;
    using Block = block_q4_0;
    using Act = block_q8_0;
    static __m256i quants(const Block* b) { return nibbles_to_bytes(b->qs); }
};

struct Q5_0 {
    static constexpr Kind kKind = Kind::Offset;
    static constexpr int kOff = 16;
    using Block = block_q5_0;
    using Act = block_q8_0;
    static __m256i quants(const Block* b) {
        const __m256i hi = _mm256_and_si256(bits_to_bytes(load_u32(b->qh)), _mm256_set1_epi8(0x10));
        return _mm256_or_si256(nibbles_to_bytes(b->qs), hi);
    }
};

struct Q4_1 {
    static constexpr Kind kKind = Kind::Min;
    static constexpr int kOff = 0;
    using Block = block_q4_1;
    using Act = block_q8_1;
    static __m256i quants(const Block* b) { return nibbles_to_bytes(b->qs); }
};

struct Q5_1 {
    static constexpr Kind kKind = Kind::Min;
    static constexpr int kOff = 0;
    using Block = block_q5_1;
    using Act = block_q8_1;
    static __m256i quants(const Block* b) {
        const __m256i hi = _mm256_and_si256(bits_to_bytes(load_u32(b->qh)), _mm256_set1_epi8(0x10));
        return _mm256_or_si256(nibbles_to_bytes(b->qs), hi);
    }
};

struct Q8_0 {
    static constexpr Kind kKind = Kind::Signed;
    static constexpr int kOff = 0;
    using Block = block_q8_0;
    using Act = block_q8_0;
    static __m256i quants(const Block* b) { return loadu256(b->qs); }
};

struct IQ4_NL {
    static constexpr Kind kKind = Kind::Signed;
    static constexpr int kOff = 0;
    using Block = block_iq4_nl;
    using Act = block_q8_0;
    static __m256i quants(const Block* b) {
        const __m256i table = _mm256_broadcastsi128_si256(loadu128(kvalues_iq4nl));
        return _mm256_shuffle_epi8(table, nibbles_to_bytes(b->qs));
    }
};

template <typename F>
struct LegacyKernel {
    using Block = typename F::Block;
    using Act = typename F::Act;
    // 3 x 4: twelve accumulators; wider tiles make GCC spill them to the stack on every block.
    static constexpr int kMaxR = 3;
    static constexpr int kMaxT = 4;

    template <int R, int T>
    static void tile(int64_t n, const uint8_t* w, size_t wrb, const uint8_t* a, size_t arb, float* out,
                     int64_t stride, const uint8_t* pf_end) {
        const int64_t nb = n / 32;
        const Block* wr[R];
        const Act* at[T];
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r) wr[r] = reinterpret_cast<const Block*>(w + r * wrb);
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) at[t] = reinterpret_cast<const Act*>(a + t * arb);
        __m256 acc[R][T];
        float summs[R][T];
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) {
                acc[r][t] = _mm256_setzero_ps();
                summs[r][t] = 0.0f;
            }
        const __m256i ones = _mm256_set1_epi16(1);
        for (int64_t b = 0; b < nb; ++b) {
            if (pf_end) prefetch_block_rows<R, sizeof(Block)>(w, wrb, static_cast<size_t>(nb) * sizeof(Block), b, pf_end);
            // Per token of the block: the offset correction and the scale, read R times below.
            __m256i off[T];
            __m256 da[T];
            float sa[T];
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) {
                if constexpr (F::kKind == Kind::Offset)
                    off[t] = _mm256_maddubs_epi16(_mm256_set1_epi8(F::kOff), loadu256(at[t][b].qs));
                da[t] = fp16x8_splat(&at[t][b].d);
                if constexpr (F::kKind == Kind::Min) sa[t] = fp16_to_f32(load_u16(&at[t][b].s));
            }
            // Row-major inside the block: one row's unpacked quants and scale live in registers while every
            // token of the tile uses them; activations come straight from L1 as memory operands.
            #pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
                const __m256i q = F::quants(wr[r] + b);
                __m256i qabs = q;
                if constexpr (F::kKind == Kind::Signed) qabs = _mm256_abs_epi8(q);
                const __m256 dw = fp16x8_splat(&wr[r][b].d);
                float mw = 0.0f;
                if constexpr (F::kKind == Kind::Min) mw = fp16_to_f32(load_u16(&wr[r][b].m));
                #pragma GCC unroll 8
                for (int t = 0; t < T; ++t) {
                    const __m256i av = loadu256(at[t][b].qs);
                    __m256i p16;
                    if constexpr (F::kKind == Kind::Offset) {
                        p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, av), off[t]);
                    } else if constexpr (F::kKind == Kind::Min) {
                        p16 = _mm256_maddubs_epi16(q, av);
                        summs[r][t] += mw * sa[t];
                    } else {
                        p16 = _mm256_maddubs_epi16(qabs, _mm256_sign_epi8(av, q));
                    }
                    const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
                    acc[r][t] = _mm256_fmadd_ps(p, _mm256_mul_ps(dw, da[t]), acc[r][t]);
                }
            }
        }
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t)
            #pragma GCC unroll 8
            for (int r = 0; r < R; ++r) out[t * stride + r] = hsum_ps(acc[r][t]) + summs[r][t];
    }
};

}  // namespace

void fill_avx2_legacy(KernelTable& t) {
    install_tiled<LegacyKernel<Q4_0>>(t, TypeId::Q4_0);
    install_tiled<LegacyKernel<Q5_0>>(t, TypeId::Q5_0);
    install_tiled<LegacyKernel<Q4_1>>(t, TypeId::Q4_1);
    install_tiled<LegacyKernel<Q5_1>>(t, TypeId::Q5_1);
    install_tiled<LegacyKernel<Q8_0>>(t, TypeId::Q8_0);
    install_tiled<LegacyKernel<IQ4_NL>>(t, TypeId::IQ4_NL);
}

}  // namespace gemma::kernels::detail
