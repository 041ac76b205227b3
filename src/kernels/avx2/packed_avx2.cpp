// AVX2 gemm over row-interleaved Q4_0 / Q8_0 groups (kernels/packed.h): each instruction works on 8 rows.
#include "kernels/avx2/avx2_common.h"
#include "kernels/kernels_internal.h"
#include "kernels/packed.h"

namespace gemma::kernels::detail {
namespace {

using namespace avx2;

// One activation word (4 quants) in every lane: it meets 4 quants of each of the 8 rows of the group.
inline __m256i bcast_word(const int8_t* p) { return _mm256_set1_epi32(static_cast<int>(load_u32(p))); }

// Q4_0: unsigned nibbles q times signed activations, with the offset removed once per block as 8 * sum(a)
// (computed once per token and block by the driver, shared by every group). Eight maddubs results fit in
// int16 (|q * a| <= 15 * 128, 16 products per lane pair), so one madd widens a whole block.
struct PackedQ4_0 {
    using Group = block_q4_0x8;
    static constexpr bool kNeedsSums = true;

    template <int T>
    static void tile(int64_t nb, const Group* g, const block_q8_0* const* a, const int32_t* const* sums, float* out,
                     int64_t stride) {
        __m256 acc[T];
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        const __m256i ones = _mm256_set1_epi16(1);
        for (int64_t b = 0; b < nb; ++b) {
            __m256i s16[T];
            #pragma GCC unroll 4
            for (int k = 0; k < 4; ++k) {
                const __m256i raw = loadu256(g[b].qs + 32 * k);
                const __m256i lo = _mm256_and_si256(raw, m4);                         // elements 4k..4k+3
                const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);   // elements 16+4k..
                #pragma GCC unroll 8
                for (int t = 0; t < T; ++t) {
                    const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, bcast_word(a[t][b].qs + 4 * k)),
                                                       _mm256_maddubs_epi16(hi, bcast_word(a[t][b].qs + 16 + 4 * k)));
                    s16[t] = k == 0 ? p : _mm256_add_epi16(s16[t], p);
                }
            }
            const __m256 dw = _mm256_cvtph_ps(loadu128(g[b].d));
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) {
                const __m256i i32 = _mm256_sub_epi32(_mm256_madd_epi16(s16[t], ones), _mm256_set1_epi32(sums[t][b]));
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), _mm256_mul_ps(dw, fp16x8_splat(&a[t][b].d)), acc[t]);
            }
        }
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) _mm256_storeu_ps(out + t * stride, acc[t]);
    }
};

// Q8_0: signed x signed through the sign trick; one maddubs result can reach 2 * 128 * 127, so each is
// widened to int32 on its own.
struct PackedQ8_0 {
    using Group = block_q8_0x8;
    static constexpr bool kNeedsSums = false;

    template <int T>
    static void tile(int64_t nb, const Group* g, const block_q8_0* const* a, const int32_t* const*, float* out,
                     int64_t stride) {
        __m256 acc[T];
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
        const __m256i ones = _mm256_set1_epi16(1);
        for (int64_t b = 0; b < nb; ++b) {
            __m256i s32[T];
            #pragma GCC unroll 8
            for (int k = 0; k < 8; ++k) {
                const __m256i w = loadu256(g[b].qs + 32 * k);
                const __m256i aw = _mm256_sign_epi8(w, w);
                #pragma GCC unroll 8
                for (int t = 0; t < T; ++t) {
                    const __m256i p = _mm256_madd_epi16(
                        _mm256_maddubs_epi16(aw, _mm256_sign_epi8(bcast_word(a[t][b].qs + 4 * k), w)), ones);
                    s32[t] = k == 0 ? p : _mm256_add_epi32(s32[t], p);
                }
            }
            const __m256 dw = _mm256_cvtph_ps(loadu128(g[b].d));
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t)
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32[t]), _mm256_mul_ps(dw, fp16x8_splat(&a[t][b].d)), acc[t]);
        }
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) _mm256_storeu_ps(out + t * stride, acc[t]);
    }
};

constexpr int64_t kMaxT = 4;  // tokens per tile: 2T accumulators plus the unpacked weights stay in registers
// Activation sums of one token block live on the stack: blocks x tokens is kept under this (64 KiB).
constexpr int64_t kSumSlots = 16384;
constexpr size_t kActBlockBytes = 128 * 1024;
constexpr size_t kRowBlockBytes = 128 * 1024;

constexpr int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
constexpr int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// s[b] = 8 * (sum of block b's quants): Q4_0's offset term. Eight blocks at a time through a transposing
// hadd tree (a per-block horizontal sum costs twice as much, and decode recomputes this for every chunk).
void offset_sums(const block_q8_0* a, int64_t nb, int32_t* s) {
    const __m256i ones8 = _mm256_set1_epi8(1);
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        __m256i v[8];
        #pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) v[i] = dot_u8s8_lanes(ones8, loadu256(a[b + i].qs));
        const __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
        const __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
        // h0 holds blocks 0..3 (low 128: lanes 0..3 of each, high 128: lanes 4..7), h1 blocks 4..7.
        const __m256i tot = _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20), _mm256_permute2x128_si256(h0, h1, 0x31));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(s + b), _mm256_slli_epi32(tot, 3));
    }
    for (; b < nb; ++b) s[b] = 8 * hsum_epi32(dot_u8s8_lanes(ones8, loadu256(a[b].qs)));
}

template <typename K>
using PackedTileFn = void (*)(int64_t, const typename K::Group*, const block_q8_0* const*, const int32_t* const*,
                              float*, int64_t);

template <typename K>
void gemm_packed_tiled(int64_t n, const void* W, size_t wrb, int64_t r0, int64_t r1, const void* act, size_t arb,
                       int64_t n_tok, float* out, int64_t stride) {
    static constexpr PackedTileFn<K> tiles[kMaxT] = {&K::template tile<1>, &K::template tile<2>, &K::template tile<3>,
                                                     &K::template tile<4>};
    const int64_t nb = n / 32;
    const size_t grb = 8 * wrb;  // bytes per group of 8 rows
    const auto* wb = static_cast<const uint8_t*>(W);
    const auto* ab = static_cast<const uint8_t*>(act);
    // Cache blocking as in tile_driver.h: a token block and a row block both stay in L2 while their tiles run.
    const int64_t block_groups = max64(1, static_cast<int64_t>(kRowBlockBytes / grb));
    int64_t block_toks = max64(kMaxT, static_cast<int64_t>(kActBlockBytes / arb) / kMaxT * kMaxT);
    block_toks = max64(kMaxT, min64(block_toks, kSumSlots / nb / kMaxT * kMaxT));
    int32_t sums[kSumSlots];
    const int64_t g_begin = r0 / 8, g_end = r1 / 8;
    for (int64_t tb0 = 0; tb0 < n_tok; tb0 += block_toks) {
        const int64_t tb1 = min64(n_tok, tb0 + block_toks);
        if constexpr (K::kNeedsSums)
            for (int64_t t = tb0; t < tb1; ++t)
                offset_sums(reinterpret_cast<const block_q8_0*>(ab + static_cast<size_t>(t) * arb), nb,
                            sums + (t - tb0) * nb);
        for (int64_t gb0 = g_begin; gb0 < g_end; gb0 += block_groups) {
            const int64_t gb1 = min64(g_end, gb0 + block_groups);
            for (int64_t t0 = tb0; t0 < tb1; t0 += kMaxT) {
                const int64_t nt = min64(kMaxT, tb1 - t0);
                const block_q8_0* at[kMaxT];
                const int32_t* st[kMaxT];
                for (int64_t t = 0; t < nt; ++t) {
                    at[t] = reinterpret_cast<const block_q8_0*>(ab + static_cast<size_t>(t0 + t) * arb);
                    st[t] = sums + (t0 + t - tb0) * nb;
                }
                for (int64_t g = gb0; g < gb1; ++g)
                    tiles[nt - 1](nb, reinterpret_cast<const typename K::Group*>(wb + static_cast<size_t>(g) * grb), at,
                                  st, out + t0 * stride + g * 8, stride);
            }
        }
    }
}

}  // namespace

void fill_avx2_packed(KernelTable& t) {
    t.gemm_packed[idx(TypeId::Q4_0)] = gemm_packed_tiled<PackedQ4_0>;
    t.gemm_packed[idx(TypeId::Q8_0)] = gemm_packed_tiled<PackedQ8_0>;
}

}  // namespace gemma::kernels::detail
