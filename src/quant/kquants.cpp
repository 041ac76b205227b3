// Q6_K (weights) and Q8_K (activations only): ggml-exact dequantizers and quantizers.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/kquants_search.h"
#include "quant/rounding.h"

namespace gemma {
namespace {

// qw_block == null is the reference path (make_qx_quants weights x^2); otherwise the raw imatrix
// values are the weights (ggml's Q6_K impl has no sigma2 term).
void q6_K_block(const float* x, const float* qw_block, block_q6_K* y) {
    int8_t L[QK_K];
    float scales[QK_K / 16];
    float max_scale = 0.0f, max_abs_scale = 0.0f;
    for (int ib = 0; ib < QK_K / 16; ++ib) {
        const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1, qw_block ? qw_block + 16 * ib : nullptr);
        scales[ib] = scale;
        const float abs_scale = std::fabs(scale);
        if (abs_scale > max_abs_scale) {
            max_abs_scale = abs_scale;
            max_scale = scale;
        }
    }
    if (max_abs_scale < kGroupMaxEps) {
        std::memset(y, 0, sizeof(*y));
        return;
    }
    const float iscale = -128.0f / max_scale;
    y->d = fp32_to_fp16(1 / iscale);
    for (int ib = 0; ib < QK_K / 16; ++ib)
        y->scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
    const float d_all = fp16_to_fp32(y->d);
    for (int j = 0; j < QK_K / 16; ++j) {
        const float d = d_all * static_cast<float>(y->scales[j]);
        if (d == 0.0f) continue;  // keeps the search's levels, as ggml does
        for (int ii = 0; ii < 16; ++ii) {
            const int l = nearest_int(x[16 * j + ii] / d);
            L[16 * j + ii] = static_cast<int8_t>(std::max(-32, std::min(31, l)) + 32);
        }
    }
    uint8_t* ql = y->ql;
    uint8_t* qh = y->qh;
    for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
        for (int l = 0; l < 32; ++l) {
            const int a = L[j + l], b = L[j + l + 32], c = L[j + l + 64], e = L[j + l + 96];
            ql[l] = static_cast<uint8_t>((a & 0xF) | ((c & 0xF) << 4));
            ql[l + 32] = static_cast<uint8_t>((b & 0xF) | ((e & 0xF) << 4));
            qh[l] = static_cast<uint8_t>((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6));
        }
    }
}

}  // namespace

void dequantize_row_q6_K(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const block_q6_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        const uint8_t* ql = x[i].ql;
        const uint8_t* qh = x[i].qh;
        const int8_t* sc = x[i].scales;
        for (int half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                // (d * scale) * q, in ggml's order
                y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
                y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
                y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
                y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
            }
        }
    }
}

size_t quantize_q6_K(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix) {
    return quantize_superblock_rows<block_q6_K, QK_K>(src, dst, nrows, n_per_row,
                                                       [&](const float* x, block_q6_K* y, int64_t col) {
        q6_K_block(x, imatrix ? imatrix + col : nullptr, y);
    });
}

void dequantize_row_q8_K(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const block_q8_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i)
        for (int j = 0; j < QK_K; ++j) *y++ = x[i].d * static_cast<float>(x[i].qs[j]);
}

void quantize_row_q8_K_ref(const float* x, void* dst, int64_t n) {
    auto* y = static_cast<block_q8_K*>(dst);
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        float max = 0.0f, amax = 0.0f;
        for (int j = 0; j < QK_K; ++j) {
            const float ax = std::fabs(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0.0f) {
            // ggml leaves bsums untouched here; we zero them so the block is fully defined.
            std::memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        // -127 (not -128) keeps every level symmetric, which the SIMD dot products rely on.
        const float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; ++j) y[i].qs[j] = static_cast<int8_t>(std::min(127, nearest_int(iscale * x[j])));
        for (int j = 0; j < QK_K / 16; ++j) {
            int sum = 0;
            for (int ii = 0; ii < 16; ++ii) sum += y[i].qs[j * 16 + ii];
            y[i].bsums[j] = static_cast<int16_t>(sum);
        }
        y[i].d = 1 / iscale;
    }
}

size_t quantize_q8_K(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
    return quantize_superblock_rows<block_q8_K, QK_K>(src, dst, nrows, n_per_row,
                                                       [](const float* x, block_q8_K* y, int64_t) {
        quantize_row_q8_K_ref(x, y, QK_K);
    });
}

}  // namespace gemma
