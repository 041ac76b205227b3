// Scalar dot products for F32 / F16 / BF16 weights against activations of the same type (double accumulation).
#include "core/fp16.h"
#include "kernels/kernels_internal.h"

namespace gemma::kernels::detail {
namespace {

// Products of two floats are exact in double, so the only rounding is the final one: a stable reference.
void vec_dot_f32_ref(int64_t n, float* s, const void* w, const void* a) {
    const auto* x = static_cast<const float*>(w);
    const auto* y = static_cast<const float*>(a);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * static_cast<double>(y[i]);
    *s = static_cast<float>(sum);
}

void vec_dot_f16_ref(int64_t n, float* s, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const uint16_t*>(a);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i)
        sum += static_cast<double>(fp16_to_fp32(x[i])) * static_cast<double>(fp16_to_fp32(y[i]));
    *s = static_cast<float>(sum);
}

void vec_dot_bf16_ref(int64_t n, float* s, const void* w, const void* a) {
    const auto* x = static_cast<const uint16_t*>(w);
    const auto* y = static_cast<const uint16_t*>(a);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i)
        sum += static_cast<double>(bf16_to_fp32(x[i])) * static_cast<double>(bf16_to_fp32(y[i]));
    *s = static_cast<float>(sum);
}

}  // namespace

void fill_ref_float(KernelTable& t) {
    t.vec_dot[idx(TypeId::F32)] = vec_dot_f32_ref;
    t.vec_dot[idx(TypeId::F16)] = vec_dot_f16_ref;
    t.vec_dot[idx(TypeId::BF16)] = vec_dot_bf16_ref;
}

}  // namespace gemma::kernels::detail
