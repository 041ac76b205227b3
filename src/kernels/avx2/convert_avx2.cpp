// AVX2 convert kernels (being written).
#include "kernels/kernels_internal.h"

namespace gemma::kernels::detail {
void fill_avx2_convert(KernelTable&) {}
}  // namespace gemma::kernels::detail
