// The AVX-512 float micro-tile (F32/F16/BF16 weights) and its operand types, shared by the plain AVX-512 unit and the
// AVX512-BF16 one; include only from translation units compiled with the AVX-512 flags, after avx512_common.h.
#pragma once
#include "kernels/avx512/avx512_common.h"  // first: it includes <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "kernels/avx2/tile_driver.h"

namespace gemma::kernels::avx512 {
namespace {

inline __mmask16 low_mask16(int rem) { return static_cast<__mmask16>((1u << rem) - 1); }
inline __mmask32 low_mask32(int rem) { return static_cast<__mmask32>((1u << rem) - 1); }

// Operand kinds: T (element type in memory), V (one step in registers), kStep (elements per step), load(p) and
// load_tail(p, rem) (the last rem < kStep elements, zeros beyond them; masked, so nothing past the row is read).
struct OpF32 {
    using T = float;
    using V = __m512;
    static constexpr int kStep = 16;
    static V load(const T* p) { return _mm512_loadu_ps(p); }
    static V load_tail(const T* p, int rem) { return _mm512_maskz_loadu_ps(low_mask16(rem), p); }
};

struct OpF16 {
    using T = uint16_t;
    using V = __m512;
    static constexpr int kStep = 16;
    static V load(const T* p) { return _mm512_cvtph_ps(loadu256(p)); }
    static V load_tail(const T* p, int rem) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(low_mask16(rem), p)); }
};

// 32 bf16 values as their even and odd elements widened to f32 (a shift and a mask: a bf16 is the top half of
// its f32), so one load feeds two FMAs per lane.
struct OpBF16 {
    using T = uint16_t;
    struct V {
        __m512 even, odd;
    };
    static constexpr int kStep = 32;
    static V widen(__m512i raw) {
        return {_mm512_castsi512_ps(_mm512_slli_epi32(raw, 16)),
                _mm512_castsi512_ps(_mm512_and_si512(raw, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))))};
    }
    static V load(const T* p) { return widen(_mm512_loadu_si512(p)); }
    static V load_tail(const T* p, int rem) { return widen(_mm512_maskz_loadu_epi16(low_mask32(rem), p)); }
};

// Same-type pairs: madd(acc, w, a) adds w*a lane by lane. BF16 adds each lane's odd product, then its even one:
// the order of AVX512-BF16's vdpbf16ps (see float_bf16.cpp), so both BF16 kernels give the same bits.
template <typename Op>
struct Same {
    using W = Op;
    using A = Op;
    static constexpr int kStep = Op::kStep;
    static void madd(__m512& acc, const typename Op::V& w, const typename Op::V& a) {
        if constexpr (std::is_same_v<Op, OpBF16>) {
            acc = _mm512_fmadd_ps(w.odd, a.odd, acc);
            acc = _mm512_fmadd_ps(w.even, a.even, acc);
        } else {
            acc = _mm512_fmadd_ps(w, a, acc);
        }
    }
};

// P provides W and A (operand kinds of equal kStep) and madd(acc, w, a).
// Per (row, token): one 16-lane accumulator over the steps in order, the ragged tail as one zero-padded step, then
// hsum512. Every tile shape does exactly this per pair, so gemm equals vec_dot (the 1x1 tile) bit for bit.
template <typename P, int kR, int kT>
struct FloatKernel {
    using TW = typename P::W::T;
    using TA = typename P::A::T;
    static constexpr int kMaxR = kR;
    static constexpr int kMaxT = kT;
    static constexpr int kStep = P::kStep;

    template <int R, int TT>
    GEMMA_ALWAYS_INLINE static void step(const TW* const* wr, const TA* const* at, int64_t i, int rem,
                                         __m512 (&acc)[R][TT]) {
        typename P::W::V wv[R];
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r) wv[r] = rem == 0 ? P::W::load(wr[r] + i) : P::W::load_tail(wr[r] + i, rem);
        #pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) {
            const typename P::A::V av = rem == 0 ? P::A::load(at[t] + i) : P::A::load_tail(at[t] + i, rem);
            #pragma GCC unroll 8
            for (int r = 0; r < R; ++r) P::madd(acc[r][t], wv[r], av);
        }
    }

    template <int R, int TT>
    static void tile(int64_t n, const uint8_t* w, size_t wrb, const uint8_t* a, size_t arb, float* out, int64_t stride,
                     const uint8_t* pf_end) {
        const TW* wr[R];
        const TA* at[TT];
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r) wr[r] = reinterpret_cast<const TW*>(w + r * wrb);
        #pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) at[t] = reinterpret_cast<const TA*>(a + t * arb);
        __m512 acc[R][TT];
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
            #pragma GCC unroll 8
            for (int t = 0; t < TT; ++t) acc[r][t] = _mm512_setzero_ps();
        const int64_t full = n - n % kStep;
        const size_t row_len = static_cast<size_t>(n) * sizeof(TW);
        for (int64_t i = 0; i < full; i += kStep) {
            if (pf_end) avx2::prefetch_block_rows<R, kStep * sizeof(TW)>(w, wrb, row_len, i / kStep, pf_end);
            step<R, TT>(wr, at, i, 0, acc);
        }
        if (full < n) step<R, TT>(wr, at, full, static_cast<int>(n - full), acc);
        #pragma GCC unroll 8
        for (int t = 0; t < TT; ++t)
            #pragma GCC unroll 8
            for (int r = 0; r < R; ++r) out[t * stride + r] = hsum512(acc[r][t]);
    }
};

}  // namespace
}  // namespace gemma::kernels::avx512
