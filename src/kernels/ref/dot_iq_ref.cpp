// Scalar dot products for iq weight types (being written).
#include "kernels/kernels_internal.h"

namespace gemma::kernels::detail {
void fill_ref_iq(KernelTable&) {}
}  // namespace gemma::kernels::detail
