// The AVX-VNNI instance of the packed kernels (avx2/packed_kernels.h): vpdpbusd for every u8 x s8 dot.
#define GEMMA_VNNI 1
#include "kernels/avx2/packed_kernels.h"

namespace gemma::kernels::detail {

void fill_vnni_packed(KernelTable& t) { install_packed(t); }

}  // namespace gemma::kernels::detail
