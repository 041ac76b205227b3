// BF16 dot/gemm kernels on AVX512-BF16: vdpbf16ps multiplies 32 bf16 pairs per instruction, half the work of
// widening both operands to f32 for two FMAs.
#include "kernels/avx512/float_tile.h"  // first: it includes <immintrin.h>

#include "kernels/kernels_internal.h"

namespace gemma::kernels::detail {
namespace {

using namespace avx512;

// 32 bf16 values as they lie in memory.
struct OpBF16Raw {
    using T = uint16_t;
    using V = __m512i;
    static constexpr int kStep = 32;
    static V load(const T* p) { return _mm512_loadu_si512(p); }
    static V load_tail(const T* p, int rem) { return _mm512_maskz_loadu_epi16(low_mask32(rem), p); }
};

// vdpbf16ps adds to each f32 lane its odd pair's product and then its even pair's, each rounded to nearest-even
// (the products of two bf16 are exact in f32): exactly Same<OpBF16>'s two FMAs, so this kernel gives the plain
// AVX-512 one's bits (dispatch checks that on each CPU before using it; tests compare the two). Intel documents DAZ/FTZ for the instruction: they differ
// only for subnormal inputs or sums, which weights and normalised activations never are.
struct BF16Dot {
    using W = OpBF16Raw;
    using A = OpBF16Raw;
    static constexpr int kStep = OpBF16Raw::kStep;
    static void madd(__m512& acc, __m512i w, __m512i a) {
        acc = _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh&>(w), reinterpret_cast<__m512bh&>(a));
    }
};

using KBF16Dot = FloatKernel<BF16Dot, 4, 6>;

}  // namespace

void fill_avx512bf16_float(KernelTable& t) {
    avx2::install_tiled<KBF16Dot>(t, TypeId::BF16);
}

}  // namespace gemma::kernels::detail
