// Scalar dot products for kquants weight types (being written).
#include "kernels/kernels_internal.h"

namespace gemma::kernels::detail {
void fill_ref_kquants(KernelTable&) {}
}  // namespace gemma::kernels::detail
