// Routes the attention kernels to the active ISA's implementation.
#include "kernels/attn_kernels.h"
#include "kernels/kernels.h"

namespace gemma::kernels {
namespace {

const detail::AttnKernels& active() {
    // Every ISA above Ref runs on an AVX2+FMA+F16C CPU, so it takes the AVX2 kernels.
    return active_isa() == Isa::Ref ? detail::kAttnRef : detail::kAttnAvx2;
}

}  // namespace

double exp_sub_sum(float* x, int64_t n, float m) { return active().exp_sub_sum(x, n, m); }
float max_of(const float* x, int64_t n) { return active().max_of(x, n); }
void scale_round(float* x, int64_t n, float s, bool round_f16) { active().scale_round(x, n, s, round_f16); }
void f16_to_f32(const uint16_t* src, float* dst, int64_t n) { active().f16_to_f32(src, dst, n); }
void accumulate_v(float* acc, const float* p, const float* v, int64_t v_stride, int64_t n, int64_t hd) {
    active().accumulate_v(acc, p, v, v_stride, n, hd);
}

}  // namespace gemma::kernels
