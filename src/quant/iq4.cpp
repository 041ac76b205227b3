// IQ4_NL / IQ4_XS: dequantizers and the quantizer llama-quantize runs (quantize_row_iq4_nl_impl, ntry = 7).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/iq_tables.h"
#include "quant/rounding.h"

namespace gemma {
namespace {

constexpr float kGroupMaxEps = 1e-15f;
constexpr int kNtry = 7;  // llama-quantize never uses the ntry = -1 `_ref` variant

// ggml's best_index_int8 (the nearest code-book entry; an exact midpoint goes to the upper entry, NaN to the
// last) for the 32 values a * x[j] of a block at once. ggml finds the bracketing pair by binary search;
// counting the entries <= y finds the same pair (the 16 values rise strictly), and with the code book in the
// outer loop the inner loop is 32 independent compares the compiler turns into vector instructions.
// Comparisons round nothing, so the indices are ggml's exactly.
void best_indices32(const int8_t* val, float a, const float* x, int* idx) {
    float y[32];
    for (int j = 0; j < 32; ++j) y[j] = a * x[j];
    int cnt[32] = {};
    for (int k = 1; k < 15; ++k) {
        const float v = val[k];
        for (int j = 0; j < 32; ++j) cnt[j] += v <= y[j] ? 1 : 0;
    }
    for (int j = 0; j < 32; ++j) {
        const float t = y[j];
        if (t <= val[0]) idx[j] = 0;
        else if (t >= val[15] || t != t) idx[j] = 15;
        else idx[j] = t - val[cnt[j]] < val[cnt[j] + 1] - t ? cnt[j] : cnt[j] + 1;
    }
}

// One super-block (32 for NL, 256 for XS) of 32-element sub-blocks. Fills the best scale of every
// sub-block into `scales` and the search-time indices into L; returns the signed largest-|d| scale.
float search_scales(const float* x, int super_size, const float* qw, float* scales, uint8_t* L) {
    float sigma2 = 0;
    for (int j = 0; j < super_size; ++j) sigma2 += x[j] * x[j];
    sigma2 *= 2.f / super_size;

    const int8_t* values = kvalues_iq4nl;
    float weight[32];
    float max_scale = 0, amax_scale = 0;
    for (int ib = 0; ib < super_size / 32; ++ib) {
        const float* xb = x + 32 * ib;
        uint8_t* Lb = L + 32 * ib;
        if (qw) {
            for (int j = 0; j < 32; ++j) weight[j] = qw[32 * ib + j] * std::sqrt(sigma2 + xb[j] * xb[j]);
        } else {
            for (int j = 0; j < 32; ++j) weight[j] = xb[j] * xb[j];
        }
        float amax = 0, max = 0;
        for (int j = 0; j < 32; ++j) {
            const float ax = std::fabs(xb[j]);
            if (ax > amax) { amax = ax; max = xb[j]; }
        }
        if (amax < kGroupMaxEps) {
            scales[ib] = 0;
            std::memset(Lb, 0, 32);
            continue;
        }
        float d = -max / values[0];
        float id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        int idx[32];
        best_indices32(values, id, xb, idx);
        for (int j = 0; j < 32; ++j) {
            const int l = idx[j];
            Lb[j] = static_cast<uint8_t>(l);
            const float q = values[l];
            const float w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
        float best = d * sumqx;
        // The trial scales only move d; Lb keeps the first pass (the callers requantize anyway).
        for (int itry = -kNtry; itry <= kNtry; ++itry) {
            id = static_cast<float>(itry + values[0]) / max;
            sumqx = sumq2 = 0;
            best_indices32(values, id, xb, idx);
            for (int j = 0; j < 32; ++j) {
                const float q = values[idx[j]];
                const float w = weight[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        if (std::fabs(d) > amax_scale) { amax_scale = std::fabs(d); max_scale = d; }
    }
    return max_scale;
}

// Low nibble = element j, high nibble = element j+16 of each 32-block.
void pack_nibbles(const uint8_t* L, int n, uint8_t* qs) {
    for (int i = 0; i < n / 32; ++i)
        for (int j = 0; j < 16; ++j)
            qs[16 * i + j] = static_cast<uint8_t>(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

void quantize_block_iq4_nl(const float* x, const float* qw, block_iq4_nl* y) {
    float scale;
    uint8_t L[32];
    search_scales(x, 32, qw, &scale, L);
    y->d = fp32_to_fp16(scale);
    const float id = scale ? 1 / scale : 0;  // the unrounded scale, not f32(fp16)
    int idx[32];
    best_indices32(kvalues_iq4nl, id, x, idx);
    for (int j = 0; j < 32; ++j) L[j] = static_cast<uint8_t>(idx[j]);
    pack_nibbles(L, 32, y->qs);
}

void quantize_block_iq4_xs(const float* x, const float* qw, block_iq4_xs* y) {
    float scales[QK_K / 32];
    uint8_t L[QK_K];
    const float max_scale = search_scales(x, QK_K, qw, scales, L);
    // An all-zero super-block gives d = -0.0f, stored as fp16 0x8000; keep it for bit-exactness.
    const float d = -max_scale / 32;
    y->d = fp32_to_fp16(d);
    const float id = d ? 1 / d : 0.f;
    y->scales_h = 0;
    for (int ib = 0; ib < QK_K / 32; ++ib) {
        int l = nearest_int(id * scales[ib]);
        l = std::max(-32, std::min(31, l));
        const float dl = d * l;  // f32 d, not the fp16-rounded one
        const float idl = dl ? 1 / dl : 0.f;
        int idx[32];
        best_indices32(kvalues_iq4nl, idl, x + 32 * ib, idx);
        for (int j = 0; j < 32; ++j) L[32 * ib + j] = static_cast<uint8_t>(idx[j]);
        l += 32;
        const uint8_t lo = static_cast<uint8_t>(l & 0xF);
        if (ib % 2 == 0) y->scales_l[ib / 2] = lo;
        else y->scales_l[ib / 2] |= static_cast<uint8_t>(lo << 4);
        y->scales_h = static_cast<uint16_t>(y->scales_h | ((l >> 4) << (2 * ib)));
    }
    pack_nibbles(L, QK_K, y->qs);
}

}  // namespace

void dequantize_row_iq4_nl(const void* src, float* dst, int64_t n) {
    GEMMA_ASSERT(n % QK4_NL == 0);
    const auto* x = static_cast<const block_iq4_nl*>(src);
    for (int64_t i = 0; i < n / QK4_NL; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < 16; ++j) {
            dst[j] = d * kvalues_iq4nl[x[i].qs[j] & 0xF];
            dst[j + 16] = d * kvalues_iq4nl[x[i].qs[j] >> 4];
        }
        dst += QK4_NL;
    }
}

void dequantize_row_iq4_xs(const void* src, float* dst, int64_t n) {
    GEMMA_ASSERT(n % QK_K == 0);
    const auto* x = static_cast<const block_iq4_xs*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        const uint8_t* qs = x[i].qs;
        for (int ib = 0; ib < QK_K / 32; ++ib) {
            const int ls = ((x[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((x[i].scales_h >> (2 * ib)) & 3) << 4);
            const float dl = d * (ls - 32);
            for (int j = 0; j < 16; ++j) {
                dst[j] = dl * kvalues_iq4nl[qs[j] & 0xF];
                dst[j + 16] = dl * kvalues_iq4nl[qs[j] >> 4];
            }
            dst += 32;
            qs += 16;
        }
    }
}

size_t quantize_iq4_nl(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix) {
    GEMMA_ASSERT(n_per_row % QK4_NL == 0);
    const int64_t nb = n_per_row / QK4_NL;
    auto* y = static_cast<block_iq4_nl*>(dst);
    for (int64_t r = 0; r < nrows; ++r)
        for (int64_t b = 0; b < nb; ++b)
            quantize_block_iq4_nl(src + r * n_per_row + b * QK4_NL, imatrix ? imatrix + b * QK4_NL : nullptr,
                                  &y[r * nb + b]);
    return static_cast<size_t>(nrows * nb) * sizeof(block_iq4_nl);
}

size_t quantize_iq4_xs(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix) {
    GEMMA_ASSERT(n_per_row % QK_K == 0);
    const int64_t nb = n_per_row / QK_K;
    auto* y = static_cast<block_iq4_xs*>(dst);
    for (int64_t r = 0; r < nrows; ++r)
        for (int64_t b = 0; b < nb; ++b)
            quantize_block_iq4_xs(src + r * n_per_row + b * QK_K, imatrix ? imatrix + b * QK_K : nullptr,
                                  &y[r * nb + b]);
    return static_cast<size_t>(nrows * nb) * sizeof(block_iq4_xs);
}

}  // namespace gemma
