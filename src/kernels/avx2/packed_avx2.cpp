// The AVX2 instance of the packed kernels (packed_kernels.h).
#include "kernels/avx2/packed_kernels.h"

namespace gemma::kernels::detail {

void fill_avx2_packed(KernelTable& t) { install_packed(t); }

}  // namespace gemma::kernels::detail
