// AVX2 kquants kernels (being written).
#include "kernels/kernels_internal.h"

namespace gemma::kernels::detail {
void fill_avx2_kquants(KernelTable&) {}
}  // namespace gemma::kernels::detail
