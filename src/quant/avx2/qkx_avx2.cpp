// ggml's (scale, min) search for eight groups at once, one group per AVX2 lane, with the scalar search's bits.
//
// The scalar search is a chain of dependent float sums per group, so it runs at the add latency. Eight
// independent groups (the sub-blocks of a K-quant super-block, or consecutive Q4_1/Q5_1 blocks) fill the
// lanes; each lane does exactly the scalar operations in the scalar order (no FMA, same rounding, same
// comparisons and NaN outcomes), so every byte matches make_qkx2/3_quants.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "quant/kquants_search.h"

namespace gemma::detail {
namespace {

// ggml's nearest_int: add 1.5*2^23 (the float add rounds half to even), keep the low mantissa bits.
inline __m256i nearest_int8(__m256 v) {
    const __m256i bits = _mm256_castps_si256(_mm256_add_ps(v, _mm256_set1_ps(12582912.f)));
    return _mm256_sub_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x00400000));
}

inline __m256 error_term(__m256 diff, bool use_mad) {
    return use_mad ? _mm256_andnot_ps(_mm256_set1_ps(-0.0f), diff) : _mm256_mul_ps(diff, diff);
}

}  // namespace

void qkx_search_x8_avx2(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* scales,
                        float* the_mins, float rmin, float rdelta, int nstep, bool use_mad, bool degenerate_le) {
    constexpr int kMaxN = 32;
    GEMMA_ASSERT(n >= 1 && n <= kMaxN);
    // Element i of the eight groups as one vector (group g in lane g).
    __m256 X[kMaxN], W[kMaxN];
    __m256i Lbest[kMaxN], Laux[kMaxN];
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(n));
    for (int i = 0; i < n; ++i) {
        X[i] = _mm256_i32gather_ps(x + i, idx, 4);
        W[i] = _mm256_i32gather_ps(weights + i, idx, 4);
    }
    __m256 vmin = X[0], vmax = X[0];
    __m256 sum_w = W[0];
    __m256 sum_x = _mm256_mul_ps(sum_w, X[0]);
    for (int i = 1; i < n; ++i) {
        vmin = _mm256_min_ps(X[i], vmin);  // x < min ? x : min
        vmax = _mm256_max_ps(X[i], vmax);  // x > max ? x : max
        sum_w = _mm256_add_ps(sum_w, W[i]);
        sum_x = _mm256_add_ps(sum_x, _mm256_mul_ps(W[i], X[i]));
    }
    const __m256 zero = _mm256_setzero_ps();
    vmin = _mm256_blendv_ps(vmin, zero, _mm256_cmp_ps(vmin, zero, _CMP_GT_OQ));
    const __m256 degenerate = degenerate_le ? _mm256_cmp_ps(vmax, vmin, _CMP_NGT_UQ)   // !(max > min)
                                            : _mm256_cmp_ps(vmax, vmin, _CMP_EQ_OQ);
    const __m256 fnmax = _mm256_set1_ps(static_cast<float>(nmax));
    __m256 iscale = _mm256_div_ps(fnmax, _mm256_sub_ps(vmax, vmin));
    __m256 scale = _mm256_div_ps(_mm256_set1_ps(1.0f), iscale);
    __m256 best_error = zero;
    const __m256i inmax = _mm256_set1_epi32(nmax);
    for (int i = 0; i < n; ++i) {
        __m256i l = nearest_int8(_mm256_mul_ps(iscale, _mm256_sub_ps(X[i], vmin)));
        l = _mm256_max_epi32(_mm256_setzero_si256(), _mm256_min_epi32(inmax, l));
        Lbest[i] = l;
        const __m256 diff = _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(scale, _mm256_cvtepi32_ps(l)), vmin), X[i]);
        best_error = _mm256_add_ps(best_error, _mm256_mul_ps(W[i], error_term(diff, use_mad)));
    }
    for (int is = 0; nstep >= 1 && is <= nstep; ++is) {
        const float num = rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax);
        // min moves to the best fit so far, and later trials measure from it (as in ggml).
        iscale = _mm256_div_ps(_mm256_set1_ps(num), _mm256_sub_ps(vmax, vmin));
        __m256 sum_l = zero, sum_l2 = zero, sum_xl = zero;
        for (int i = 0; i < n; ++i) {
            const __m256 v = _mm256_mul_ps(iscale, _mm256_sub_ps(X[i], vmin));
            const __m256i l = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(v, zero, _CMP_GT_OQ)),
                                               nearest_int8(_mm256_min_ps(v, fnmax)));
            Laux[i] = l;
            const __m256 wl = _mm256_mul_ps(W[i], _mm256_cvtepi32_ps(l));
            sum_l = _mm256_add_ps(sum_l, wl);
            sum_l2 = _mm256_add_ps(sum_l2, _mm256_mul_ps(wl, _mm256_cvtepi32_ps(l)));
            sum_xl = _mm256_add_ps(sum_xl, _mm256_mul_ps(wl, X[i]));
        }
        const __m256 D = _mm256_sub_ps(_mm256_mul_ps(sum_w, sum_l2), _mm256_mul_ps(sum_l, sum_l));
        // A degenerate lane's range is 0: its trials are garbage and must never be taken (it returns early in
        // the scalar search).
        const __m256 ok = _mm256_andnot_ps(degenerate, _mm256_cmp_ps(D, zero, _CMP_GT_OQ));
        if (_mm256_movemask_ps(ok) == 0) continue;
        __m256 this_scale = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_w, sum_xl), _mm256_mul_ps(sum_x, sum_l)), D);
        __m256 this_min = _mm256_div_ps(_mm256_sub_ps(_mm256_mul_ps(sum_l2, sum_x), _mm256_mul_ps(sum_l, sum_xl)), D);
        const __m256 pos = _mm256_cmp_ps(this_min, zero, _CMP_GT_OQ);
        this_min = _mm256_blendv_ps(this_min, zero, pos);
        this_scale = _mm256_blendv_ps(this_scale, _mm256_div_ps(sum_xl, sum_l2), pos);
        __m256 cur_error = zero;
        for (int i = 0; i < n; ++i) {
            const __m256 diff =
                _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(this_scale, _mm256_cvtepi32_ps(Laux[i])), this_min), X[i]);
            cur_error = _mm256_add_ps(cur_error, _mm256_mul_ps(W[i], error_term(diff, use_mad)));
        }
        const __m256 better = _mm256_and_ps(ok, _mm256_cmp_ps(cur_error, best_error, _CMP_LT_OQ));
        if (_mm256_movemask_ps(better) == 0) continue;
        const __m256i bi = _mm256_castps_si256(better);
        for (int i = 0; i < n; ++i) Lbest[i] = _mm256_blendv_epi8(Lbest[i], Laux[i], bi);
        best_error = _mm256_blendv_ps(best_error, cur_error, better);
        scale = _mm256_blendv_ps(scale, this_scale, better);
        vmin = _mm256_blendv_ps(vmin, this_min, better);
    }
    // Degenerate groups: all levels 0, scale 0, the (clamped) min.
    scale = _mm256_blendv_ps(scale, zero, degenerate);
    const __m256i keep = _mm256_xor_si256(_mm256_castps_si256(degenerate), _mm256_set1_epi32(-1));
    alignas(32) int32_t lanes[kMaxN][8];
    for (int i = 0; i < n; ++i) _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[i]), _mm256_and_si256(Lbest[i], keep));
    for (int g = 0; g < 8; ++g)
        for (int i = 0; i < n; ++i) L[g * n + i] = static_cast<uint8_t>(lanes[i][g]);
    _mm256_storeu_ps(scales, scale);
    _mm256_storeu_ps(the_mins, _mm256_xor_ps(vmin, _mm256_set1_ps(-0.0f)));
}

}  // namespace gemma::detail
