// The element-wise steps of attention (exp, sums, fp16 rounding, V accumulation), per ISA, each bit-identical to its
// scalar reference so attention gives the same bits on every ISA.
#pragma once
#include <cstdint>

namespace gemma::kernels {

// The library's exp: round-to-nearest range reduction by ln 2 (split in two parts), a degree-7 Taylor polynomial
// in Horner form with fused multiply-adds, times 2^n built from bits; below -87 it is 0. Within 2 ulp of expf over
// the range softmax uses (arguments <= 0). Every ISA evaluates exactly these operations.
float exp_f32(float x);

// x[i] = exp_f32(x[i] - m) for i in [0, n); returns their sum in double, accumulated in 8 interleaved lanes
// (element i into lane i % 8) that are then added pairwise in a fixed order.
double exp_sub_sum(float* x, int64_t n, float m);

// max(x[0..n)); -inf for n = 0.
float max_of(const float* x, int64_t n);

// x[i] = x[i] * s, then rounded to fp16 and back when round_f16 (what an F16 cache's V·p conversion does).
void scale_round(float* x, int64_t n, float s, bool round_f16);

// dst[i] = fp16 src[i] widened to f32.
void f16_to_f32(const uint16_t* src, float* dst, int64_t n);

// acc[d] = fma(p[j], v[j * v_stride + d], acc[d]) for j = 0 .. n-1 in order, every d in [0, hd).
void accumulate_v(float* acc, const float* p, const float* v, int64_t v_stride, int64_t n, int64_t hd);

namespace detail {
// The per-ISA entries, for the kernels' tests.
struct AttnKernels {
    double (*exp_sub_sum)(float* x, int64_t n, float m);
    float (*max_of)(const float* x, int64_t n);
    void (*scale_round)(float* x, int64_t n, float s, bool round_f16);
    void (*f16_to_f32)(const uint16_t* src, float* dst, int64_t n);
    void (*accumulate_v)(float* acc, const float* p, const float* v, int64_t v_stride, int64_t n, int64_t hd);
};
extern const AttnKernels kAttnRef;
extern const AttnKernels kAttnAvx2;  // only callable when the CPU has AVX2+FMA+F16C
}  // namespace detail

}  // namespace gemma::kernels
