// BF16 dot/gemm with AVX512_BF16: vdpbf16ps multiplies 32 bf16 pairs and adds them into 16 f32 lanes, as ggml pairs
// BF16 weights with BF16 activations. Registered only where CPUID reports AVX512_BF16 (dispatch.cpp).
#include "kernels/avx512/float_tile.h"
#include "kernels/kernels_internal.h"

namespace gemma::kernels::detail {
namespace {

using namespace avx512;

struct BF16Dot {
    using T = uint16_t;
    using V = __m512bh;
    static constexpr int kStep = 32;
    static V load(const T* p) { return reinterpret_cast<V>(_mm512_loadu_si512(p)); }
    static V load_tail(const T* p, int rem) {
        return reinterpret_cast<V>(_mm512_maskz_loadu_epi16(static_cast<__mmask32>((1u << rem) - 1), p));
    }
    static void madd(__m512& acc, V w, V a) { acc = _mm512_dpbf16_ps(acc, w, a); }
};

}  // namespace

void fill_avx512_bf16(KernelTable& t) {
    using K = FloatKernel512<BF16Dot, 4, 4>;
    t.vec_dot[idx(TypeId::BF16)] = avx2::vec_dot_tiled<K>;
    t.gemm[idx(TypeId::BF16)] = avx2::gemm_tiled<K>;
}

}  // namespace gemma::kernels::detail
