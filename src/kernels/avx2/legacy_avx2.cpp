// AVX2 legacy kernels (being written).
#include "kernels/kernels_internal.h"

namespace gemma::kernels::detail {
void fill_avx2_legacy(KernelTable&) {}
}  // namespace gemma::kernels::detail
