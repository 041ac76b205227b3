// AVX2 iq kernels (being written).
#include "kernels/kernels_internal.h"

namespace gemma::kernels::detail {
void fill_avx2_iq(KernelTable&) {}
}  // namespace gemma::kernels::detail
