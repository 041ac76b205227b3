// AVX-512 dot/gemm kernels for F32, F16 and BF16 weights against activations of the same type (16 f32 lanes per FMA).
#include "kernels/avx512/avx512_common.h"  // first: it includes <immintrin.h>
#include "kernels/avx2/tile_driver.h"
#include "kernels/kernels_internal.h"

namespace gemma::kernels::detail {
namespace {

using namespace avx512;

inline __mmask16 low_mask16(int rem) { return static_cast<__mmask16>((1u << rem) - 1); }
inline __mmask32 low_mask32(int rem) { return static_cast<__mmask32>((1u << rem) - 1); }

struct F32 {
    using T = float;
    using V = __m512;
    static constexpr int kStep = 16;
    static V load(const T* p) { return _mm512_loadu_ps(p); }
    static V load_tail(const T* p, int rem) { return _mm512_maskz_loadu_ps(low_mask16(rem), p); }
    static void madd(__m512& acc, V w, V a) { acc = _mm512_fmadd_ps(w, a, acc); }
};

struct F16 {
    using T = uint16_t;
    using V = __m512;
    static constexpr int kStep = 16;
    static V load(const T* p) { return _mm512_cvtph_ps(loadu256(p)); }
    static V load_tail(const T* p, int rem) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(low_mask16(rem), p)); }
    static void madd(__m512& acc, V w, V a) { acc = _mm512_fmadd_ps(w, a, acc); }
};

// 32 bf16 values as their even and odd elements widened to f32 (a shift and a mask: a bf16 is the top half of
// its f32), so one load feeds two FMAs per lane.
struct BF16 {
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
    static void madd(__m512& acc, const V& w, const V& a) {
        acc = _mm512_fmadd_ps(w.odd, a.odd, acc);
        acc = _mm512_fmadd_ps(w.even, a.even, acc);
    }
};

// F provides: V (one step's operand), kStep (elements per step), load(p) and load_tail(p, rem) (the last rem <
// kStep elements, zeros beyond them; masked, so nothing past the row is read) and madd(acc, w, a).
// Per (row, token): one 16-lane accumulator over the steps in order, the ragged tail as one zero-padded step, then
// hsum512. Every tile shape does exactly this per pair, so gemm equals vec_dot (the 1x1 tile) bit for bit.
template <typename F, int kR, int kT>
struct FloatKernel {
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

template <typename K>
void install(KernelTable& t, TypeId id) {
    t.vec_dot[idx(id)] = avx2::vec_dot_tiled<K>;
    t.gemm[idx(id)] = avx2::gemm_tiled<K>;
}

}  // namespace

void fill_avx512_float(KernelTable& t) {
    install<FloatKernel<F32, 4, 4>>(t, TypeId::F32);
    install<FloatKernel<F16, 4, 4>>(t, TypeId::F16);
    install<FloatKernel<BF16, 4, 4>>(t, TypeId::BF16);
}

}  // namespace gemma::kernels::detail
