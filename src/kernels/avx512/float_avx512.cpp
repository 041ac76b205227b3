// AVX-512 dot/gemm kernels for F32, F16 and BF16 weights (16 f32 lanes per FMA); BF16 with vdpbf16ps lives in
// float_avx512bf16.cpp and replaces the BF16 one here where the CPU has AVX512_BF16.
#include "kernels/avx512/float_tile.h"
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
// its f32). The products are exact in f32, so each step is two correctly rounded adds per lane.
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

template <typename K>
void install(KernelTable& t, TypeId id) {
    t.vec_dot[idx(id)] = avx2::vec_dot_tiled<K>;
    t.gemm[idx(id)] = avx2::gemm_tiled<K>;
}

}  // namespace

void fill_avx512_float(KernelTable& t) {
    install<FloatKernel512<F32, 4, 4>>(t, TypeId::F32);
    install<FloatKernel512<F16, 4, 4>>(t, TypeId::F16);
    install<FloatKernel512<BF16, 4, 4>>(t, TypeId::BF16);
}

}  // namespace gemma::kernels::detail
