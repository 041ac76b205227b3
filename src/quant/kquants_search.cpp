// ggml's scale searches (make_qx/q3/qkx2/qkx3/qp_quants), reproduced in ggml's exact float evaluation order.
#include "quant/kquants_search.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/cpu.h"
#include "quant/rounding.h"

namespace gemma {
namespace {

// Every product below is written left to right as in ggml ((a*b)*c): with contraction off this
// is what makes the searches pick the same candidates bit for bit.
inline float rmse_weight(int rmse_type, float x) {
    switch (rmse_type) {
        case 1: return x * x;
        case 2: return 1.0f;
        case 3: return std::fabs(x);
        default: return std::sqrt(std::fabs(x));
    }
}

inline int clamp_sym(int l, int nmax) { return std::max(-nmax, std::min(nmax - 1, l)); }

}  // namespace

float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* qw) {
    float max = 0.0f, amax = 0.0f;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < kGroupMaxEps) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.0f;
    }
    float iscale = static_cast<float>(-nmax) / max;
    if (rmse_type == 0) {
        for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + clamp_sym(nearest_int(iscale * x[i]), nmax));
        return 1 / iscale;
    }
    bool return_early = false;
    if (rmse_type < 0) {
        rmse_type = -rmse_type;
        return_early = true;
    }
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
        const int l = clamp_sym(nearest_int(iscale * x[i]), nmax);
        L[i] = static_cast<int8_t>(l + nmax);
        const float w = qw ? qw[i] : rmse_weight(rmse_type, x[i]);
        sumlx += w * x[i] * static_cast<float>(l);
        suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    if (return_early) return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
        sumlx = suml2 = 0.0f;
        for (int i = 0; i < n; ++i) {
            const int l = clamp_sym(nearest_int(iscale * x[i]), nmax);
            const float w = qw ? qw[i] : rmse_weight(rmse_type, x[i]);
            sumlx += w * x[i] * static_cast<float>(l);
            suml2 += w * static_cast<float>(l) * static_cast<float>(l);
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i)
                L[i] = static_cast<int8_t>(nmax + clamp_sym(nearest_int(iscale * x[i]), nmax));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

float make_q3_quants(int n, int nmax, const float* x, int8_t* L, bool do_rmse) {
    float max = 0.0f, amax = 0.0f;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < kGroupMaxEps) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.0f;
    }
    const float iscale = static_cast<float>(-nmax) / max;
    if (do_rmse) {
        float sumlx = 0.0f, suml2 = 0.0f;
        for (int i = 0; i < n; ++i) {
            const int l = clamp_sym(nearest_int(iscale * x[i]), nmax);
            L[i] = static_cast<int8_t>(l);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * static_cast<float>(l);
            suml2 += w * static_cast<float>(l) * static_cast<float>(l);
        }
        for (int itry = 0; itry < 5; ++itry) {
            int n_changed = 0;
            for (int i = 0; i < n; ++i) {
                const float w = x[i] * x[i];
                const float li = static_cast<float>(L[i]);
                float slx = sumlx - w * x[i] * li;
                if (slx > 0) {
                    float sl2 = suml2 - w * li * li;
                    const int new_l = clamp_sym(nearest_int(x[i] * sl2 / slx), nmax);
                    if (new_l != L[i]) {
                        slx += w * x[i] * static_cast<float>(new_l);
                        sl2 += w * static_cast<float>(new_l) * static_cast<float>(new_l);
                        if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                            L[i] = static_cast<int8_t>(new_l);
                            sumlx = slx;
                            suml2 = sl2;
                            ++n_changed;
                        }
                    }
                }
            }
            if (!n_changed) break;
        }
        for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
        return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
    }
    for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(clamp_sym(nearest_int(iscale * x[i]), nmax) + nmax);
    return 1 / iscale;
}

namespace {

// The common body of make_qkx2/3_quants. `weights` is never null here (qkx3 materialises x^2 first,
// which is the same float as computing it inline). `degenerate_le` selects qkx3's `max <= min` test.
// Note that `min` moves to the best fit found so far and later candidates are measured from it, as in ggml.
float qkx_search(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min, uint8_t* Laux,
                 float rmin, float rdelta, int nstep, bool use_mad, bool degenerate_le) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (degenerate_le ? !(max > min) : max == min) {
        std::memset(L, 0, static_cast<size_t>(n));
        *the_min = -min;
        return 0.0f;
    }
    float iscale = static_cast<float>(nmax) / (max - min);
    float scale = 1 / iscale;
    float best_error = 0.0f;
    for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
        float diff = scale * static_cast<float>(L[i]) + min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; ++i) {
            // Guarded rounding: for in-range values it equals clamp(nearest_int(v), 0, nmax), and it keeps
            // nearest_int away from huge or NaN arguments.
            const float v = iscale * (x[i] - min);
            const int l = v > 0 ? nearest_int(std::min(v, static_cast<float>(nmax))) : 0;
            Laux[i] = static_cast<uint8_t>(l);
            const float w = weights[i];
            const float lf = static_cast<float>(l);
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0.0f;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
                diff = use_mad ? std::fabs(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                std::memcpy(L, Laux, static_cast<size_t>(n));
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

}  // namespace

float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
    return qkx_search(n, nmax, x, weights, L, the_min, Laux, rmin, rdelta, nstep, use_mad, false);
}

float make_qkx3_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
    if (weights) return qkx_search(n, nmax, x, weights, L, the_min, Laux, rmin, rdelta, nstep, use_mad, true);
    float w2[256];
    GEMMA_ASSERT(n <= 256);  // callers use 16- or 32-element groups
    for (int i = 0; i < n; ++i) w2[i] = x[i] * x[i];
    return qkx_search(n, nmax, x, w2, L, the_min, Laux, rmin, rdelta, nstep, use_mad, true);
}

void detail::qkx_search_x8_scalar(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* scales,
                                  float* the_mins, float rmin, float rdelta, int nstep, bool use_mad,
                                  bool degenerate_le) {
    uint8_t Laux[32];
    GEMMA_ASSERT(n >= 1 && n <= 32);
    for (int g = 0; g < 8; ++g)
        scales[g] = qkx_search(n, nmax, x + g * n, weights + g * n, L + g * n, &the_mins[g], Laux, rmin, rdelta,
                               nstep, use_mad, degenerate_le);
}

namespace {

void qkx_x8(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* scales, float* the_mins,
            float rmin, float rdelta, int nstep, bool use_mad, bool degenerate_le) {
    // Run-time dispatch: the quantizers are built for the baseline ISA, this one search also for AVX2.
    static const bool avx2 = cpu_has_avx2();
    if (avx2)
        detail::qkx_search_x8_avx2(n, nmax, x, weights, L, scales, the_mins, rmin, rdelta, nstep, use_mad, degenerate_le);
    else
        detail::qkx_search_x8_scalar(n, nmax, x, weights, L, scales, the_mins, rmin, rdelta, nstep, use_mad, degenerate_le);
}

}  // namespace

void make_qkx2_quants_x8(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* scales,
                         float* the_mins, float rmin, float rdelta, int nstep, bool use_mad) {
    qkx_x8(n, nmax, x, weights, L, scales, the_mins, rmin, rdelta, nstep, use_mad, false);
}

void make_qkx3_quants_x8(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* scales,
                         float* the_mins, float rmin, float rdelta, int nstep, bool use_mad) {
    qkx_x8(n, nmax, x, weights, L, scales, the_mins, rmin, rdelta, nstep, use_mad, true);
}

float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights) {
    float max = 0.0f;
    for (int i = 0; i < n; ++i) max = max > x[i] ? max : x[i];  // ggml's MAX() (NaN-propagating order)
    if (max < kGroupMaxEps) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.0f;
    }
    float iscale = static_cast<float>(nmax) / max;
    // L is uint8 in ggml: a (theoretically) negative level wraps here and is read back wrapped below.
    for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(nearest_int(iscale * x[i]));
    const float scale = 1 / iscale;
    float best_mse = 0.0f;
    for (int i = 0; i < n; ++i) {
        const float diff = x[i] - scale * static_cast<float>(L[i]);
        best_mse += quant_weights[i] * diff * diff;
    }
    for (int is = -4; is <= 4; ++is) {
        if (is == 0) continue;
        const float iscale_is = (0.1f * static_cast<float>(is) + static_cast<float>(nmax)) / max;
        const float scale_is = 1 / iscale_is;
        float mse = 0.0f;
        for (int i = 0; i < n; ++i) {
            const int l = std::min(nmax, nearest_int(iscale_is * x[i]));
            const float diff = x[i] - scale_is * static_cast<float>(l);
            mse += quant_weights[i] * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
        const int l = std::min(nmax, nearest_int(iscale * x[i]));
        L[i] = static_cast<uint8_t>(l);
        const float w = quant_weights[i];
        sumlx += w * x[i] * static_cast<float>(l);
        suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = quant_weights[i];
            const float li = static_cast<float>(L[i]);
            float slx = sumlx - w * x[i] * li;
            float sl2 = suml2 - w * li * li;
            if (slx > 0 && sl2 > 0) {
                const int new_l = std::min(nmax, nearest_int(x[i] * sl2 / slx));
                if (new_l != L[i]) {
                    slx += w * x[i] * static_cast<float>(new_l);
                    sl2 += w * static_cast<float>(new_l) * static_cast<float>(new_l);
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = static_cast<uint8_t>(new_l);
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

}  // namespace gemma
