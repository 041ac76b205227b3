// Scalar dot products for legacy weight types (being written).
#include "kernels/kernels_internal.h"

namespace gemma::kernels::detail {
void fill_ref_legacy(KernelTable&) {}
}  // namespace gemma::kernels::detail
