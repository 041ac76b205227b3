// AVX-512 dot/gemm kernels for F32, F16 and BF16 weights against activations of the same type (16 f32 lanes per FMA).
#include "kernels/avx512/float_tile.h"  // first: it includes <immintrin.h>

#include "kernels/kernels_internal.h"

namespace gemma::kernels::detail {
namespace {

using namespace avx512;

// vec_dot is the 1x1 tile of the same kernel, so the tile shape only sets how many conversions and loads each FMA
// shares: 4 rows x 6 tokens (24 accumulators) converts 10 operands per 24 FMAs where 4x4 converts 8 per 16.
template <typename K>
void install(KernelTable& t, TypeId id) {
    t.vec_dot[idx(id)] = avx2::vec_dot_tiled<K>;
    t.gemm[idx(id)] = avx2::gemm_tiled<K>;
}

}  // namespace

void fill_avx512_float(KernelTable& t) {
    install<FloatKernel<Same<OpF32>, 4, 4>>(t, TypeId::F32);
    install<FloatKernel<Same<OpF16>, 4, 6>>(t, TypeId::F16);
    install<FloatKernel<Same<OpBF16>, 4, 6>>(t, TypeId::BF16);
}

}  // namespace gemma::kernels::detail
