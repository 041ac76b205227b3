// Scalar references of the attention kernels: the operation order every ISA reproduces.
#include <cmath>
#include <limits>

#include "core/fp16.h"
#include "kernels/attn_kernels.h"
#include "kernels/ref/exp_poly.h"

namespace gemma::kernels {
namespace {

double exp_sub_sum_ref(float* x, int64_t n, float m) {
    double lane[8] = {};
    for (int64_t i = 0; i < n; ++i) {
        x[i] = exp_poly::eval(x[i] - m);
        lane[i % 8] += static_cast<double>(x[i]);
    }
    return ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
}

float max_of_ref(const float* x, int64_t n) {
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
    return m;
}

void scale_round_ref(float* x, int64_t n, float s, bool round_f16) {
    for (int64_t i = 0; i < n; ++i) {
        x[i] *= s;
        if (round_f16) x[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
    }
}

void f16_to_f32_ref(const uint16_t* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(src[i]);
}

void accumulate_v_ref(float* acc, const float* p, const float* v, int64_t v_stride, int64_t n, int64_t hd) {
    for (int64_t j = 0; j < n; ++j)
        for (int64_t d = 0; d < hd; ++d) acc[d] = std::fma(p[j], v[j * v_stride + d], acc[d]);
}

}  // namespace

float exp_f32(float x) { return exp_poly::eval(x); }

namespace detail {
const AttnKernels kAttnRef = {exp_sub_sum_ref, max_of_ref, scale_round_ref, f16_to_f32_ref, accumulate_v_ref};
}  // namespace detail

}  // namespace gemma::kernels
