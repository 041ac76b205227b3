// AVX-512 dot/gemm kernels for F32, F16 and BF16 weights against activations of the same type (16 f32 lanes per FMA).
#include "kernels/avx512/float_tile.h"  // first: it includes <immintrin.h>

#include "kernels/kernels_internal.h"

namespace gemma::kernels::detail {

// vec_dot is the 1x1 tile of the same kernel, so the tile shape only sets how many conversions and loads each FMA
// shares: 4 rows x 6 tokens (24 accumulators) converts 10 operands per 24 FMAs where 4x4 converts 8 per 16.
void fill_avx512_float(KernelTable& t) {
    using namespace avx512;
    avx2::install_tiled<FloatKernel<Same<OpF32>, 4, 4>>(t, TypeId::F32);
    avx2::install_tiled<FloatKernel<Same<OpF16>, 4, 6>>(t, TypeId::F16);
    avx2::install_tiled<FloatKernel<Same<OpBF16>, 4, 6>>(t, TypeId::BF16);
}

}  // namespace gemma::kernels::detail
