// The AVX-VNNI instance of the packed kernels (avx2/packed_kernels.h, packed_lowk.h, packed_iq.h): vpdpbusd for
// every u8 x s8 dot.
#define GEMMA_VNNI 1
#include "kernels/avx2/packed_iq.h"
#include "kernels/avx2/packed_lowk.h"

namespace gemma::kernels::detail {

void fill_vnni_packed(KernelTable& t) {
    install_packed(t);
    install_packed_lowk(t);
    install_packed_iq(t);
}

}  // namespace gemma::kernels::detail
