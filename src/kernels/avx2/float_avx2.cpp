// AVX2 float kernels (being written).
#include "kernels/kernels_internal.h"

namespace gemma::kernels::detail {
void fill_avx2_float(KernelTable&) {}
}  // namespace gemma::kernels::detail
