// The AVX-512 float gemm tile (F32, F16, BF16 weights against activations of the same type), for the AVX2 tile
// driver. Shared by float_avx512.cpp and the AVX512_BF16 TU, which plug in their own load and multiply-add.
#pragma once
#include "kernels/avx512/avx512_common.h"  // first: it includes <immintrin.h>
#include "kernels/avx2/tile_driver.h"

namespace gemma::kernels::avx512 {
namespace {

// F provides: V (one step's operand), kStep (elements per step), load(p) and load_tail(p, rem) (the last rem <
// kStep elements, zeros beyond them; masked, so nothing past the row is read) and madd(acc, w, a).
// Per (row, token): one 16-lane accumulator over the steps in order, the ragged tail as one zero-padded step, then
// hsum512. Every tile shape does exactly this per pair, so gemm equals vec_dot (the 1x1 tile) bit for bit.
template <typename F, int kR, int kT>
struct FloatKernel512 {
    using T = typename F::T;
    using V = typename F::V;
    static constexpr int kMaxR = kR;
    static constexpr int kMaxT = kT;

    template <int R, int TT>
    GEMMA_ALWAYS_INLINE static void step(const T* const* wr, const T* const* at, int64_t i, int rem, __m512 (&acc)[R][TT]) {
        V wv[R];
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r) wv[r] = rem == 0 ? F::load(wr[r] + i) : F::load_tail(wr[r] + i, rem);
        #pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) {
            const V av = rem == 0 ? F::load(at[t] + i) : F::load_tail(at[t] + i, rem);
            #pragma GCC unroll 8
            for (int r = 0; r < R; ++r) F::madd(acc[r][t], wv[r], av);
        }
    }

    template <int R, int TT>
    static void tile(int64_t n, const uint8_t* w, size_t wrb, const uint8_t* a, size_t arb, float* out, int64_t stride) {
        const T* wr[R];
        const T* at[TT];
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r) wr[r] = reinterpret_cast<const T*>(w + r * wrb);
        #pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) at[t] = reinterpret_cast<const T*>(a + t * arb);
        __m512 acc[R][TT];
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
            #pragma GCC unroll 8
            for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_setzero_ps();
        const int64_t full = n - n % F::kStep;
        for (int64_t i = 0; i < full; i += F::kStep) step<R, TT>(wr, at, i, 0, acc);
        if (full < n) step<R, TT>(wr, at, full, static_cast<int>(n - full), acc);
        #pragma GCC unroll 8
        for (int t = 0; t < TT; ++t)
            #pragma GCC unroll 8
            for (int r = 0; r < R; ++r) out[t * stride + r] = hsum512(acc[r][t]);
    }
};

}  // namespace
}  // namespace gemma::kernels::avx512
