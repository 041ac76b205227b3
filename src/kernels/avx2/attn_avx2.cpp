// AVX2+FMA+F16C attention kernels: the scalar references' operations, 8 lanes at a time.
#include <immintrin.h>

#include <cmath>
#include <limits>

#include "core/fp16.h"
#include "kernels/attn_kernels.h"
#include "kernels/ref/exp_poly.h"

namespace gemma::kernels {
namespace {

namespace ep = exp_poly;

__m256 exp8(__m256 x) {
    const __m256 below = _mm256_cmp_ps(x, _mm256_set1_ps(ep::kMinArg), _CMP_NGE_UQ);  // x < min, or NaN
    x = _mm256_min_ps(x, _mm256_set1_ps(ep::kMaxArg));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(ep::kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-ep::kLn2Hi), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-ep::kLn2Lo), r);
    __m256 p = _mm256_set1_ps(ep::kC[0]);
    for (int k = 1; k < 6; ++k) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(ep::kC[k]));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    // Below the range n may be out of the exponent's reach; those lanes are zeroed anyway.
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(_mm256_max_ps(n, _mm256_set1_ps(-126.0f))),
                                                          _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(below, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

double exp_sub_sum_avx2(float* x, int64_t n, float m) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();  // lanes 0-3 and 4-7
    const __m256 vm = _mm256_set1_ps(m);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    alignas(32) double lane[8];
    _mm256_store_pd(lane, lo);
    _mm256_store_pd(lane + 4, hi);
    for (; i < n; ++i) {
        x[i] = ep::eval(x[i] - m);
        lane[i % 8] += static_cast<double>(x[i]);
    }
    return ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
}

float max_of_avx2(const float* x, int64_t n) {
    float m = -std::numeric_limits<float>::infinity();
    int64_t i = 0;
    if (n >= 8) {
        __m256 v = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8) v = _mm256_max_ps(v, _mm256_loadu_ps(x + i));
        alignas(32) float l[8];
        _mm256_store_ps(l, v);
        for (float f : l) m = f > m ? f : m;
    }
    for (; i < n; ++i) m = x[i] > m ? x[i] : m;
    return m;
}

void scale_round_avx2(float* x, int64_t n, float s, bool round_f16) {
    const __m256 vs = _mm256_set1_ps(s);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs);
        if (round_f16) v = _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        _mm256_storeu_ps(x + i, v);
    }
    for (; i < n; ++i) {
        x[i] *= s;
        if (round_f16) x[i] = fp16_to_fp32(fp32_to_fp16(x[i]));
    }
}

void f16_to_f32_avx2(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
    for (; i < n; ++i) dst[i] = fp16_to_fp32(src[i]);
}

void accumulate_v_avx2(float* acc, const float* p, const float* v, int64_t v_stride, int64_t n, int64_t hd) {
    int64_t d = 0;
    // Four registers of acc stay in place while every row adds into them: the same fma per element, j in order.
    for (; d + 32 <= hd; d += 32) {
        __m256 a0 = _mm256_loadu_ps(acc + d), a1 = _mm256_loadu_ps(acc + d + 8);
        __m256 a2 = _mm256_loadu_ps(acc + d + 16), a3 = _mm256_loadu_ps(acc + d + 24);
        for (int64_t j = 0; j < n; ++j) {
            const __m256 pj = _mm256_broadcast_ss(p + j);
            const float* vj = v + j * v_stride + d;
            a0 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj), a0);
            a1 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 8), a1);
            a2 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 16), a2);
            a3 = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 24), a3);
        }
        _mm256_storeu_ps(acc + d, a0);
        _mm256_storeu_ps(acc + d + 8, a1);
        _mm256_storeu_ps(acc + d + 16, a2);
        _mm256_storeu_ps(acc + d + 24, a3);
    }
    for (; d + 8 <= hd; d += 8) {
        __m256 a = _mm256_loadu_ps(acc + d);
        for (int64_t j = 0; j < n; ++j) a = _mm256_fmadd_ps(_mm256_broadcast_ss(p + j), _mm256_loadu_ps(v + j * v_stride + d), a);
        _mm256_storeu_ps(acc + d, a);
    }
    for (; d < hd; ++d)
        for (int64_t j = 0; j < n; ++j) acc[d] = std::fma(p[j], v[j * v_stride + d], acc[d]);
}

}  // namespace

namespace detail {
const AttnKernels kAttnAvx2 = {exp_sub_sum_avx2, max_of_avx2, scale_round_avx2, f16_to_f32_avx2, accumulate_v_avx2};
}  // namespace detail

}  // namespace gemma::kernels
