// The AVX2 instance of the packed kernels (packed_kernels.h, packed_lowk.h, packed_iq.h).
#include "kernels/avx2/packed_iq.h"
#include "kernels/avx2/packed_lowk.h"

namespace gemma::kernels::detail {

void fill_avx2_packed(KernelTable& t) {
    install_packed(t);
    install_packed_lowk(t);
    install_packed_iq(t);
}

}  // namespace gemma::kernels::detail
