// Q4_K and Q5_K (8 sub-blocks of 32 with 6-bit scales and mins): ggml-exact dequantizers and quantizers.
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

inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// ggml's packing, including its uint8 truncations (an out-of-range level spills exactly as there).
void pack_scale_min_k4(const uint8_t* ls, const uint8_t* lm, uint8_t* s) {
    for (int j = 0; j < QK_K / 32; ++j) {
        if (j < 4) {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            s[j - 4] = static_cast<uint8_t>(s[j - 4] | ((ls[j] >> 4) << 6));
            s[j] = static_cast<uint8_t>(s[j] | ((lm[j] >> 4) << 6));
        }
    }
}

// Requantize against the stored fp16 d/dmin and 6-bit scales. Sub-blocks whose scale decodes to 0
// keep the search's levels (ggml's `if (!d) continue;`).
void requantize_k4(const float* x, const uint8_t* scales, fp16_t d16, fp16_t dmin16, int nmax, uint8_t* L) {
    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t sc, m;
        get_scale_min_k4(j, scales, &sc, &m);
        const float d = fp16_to_fp32(d16) * static_cast<float>(sc);
        if (d == 0.0f) continue;
        const float dm = fp16_to_fp32(dmin16) * static_cast<float>(m);
        for (int ii = 0; ii < 32; ++ii) {
            const int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
        }
    }
}

// The reference (no imatrix) search shared by Q4_K (nmax 15) and Q5_K (nmax 31); fills the header.
template <typename Block>
void k4_ref_scales(const float* x, int nmax, float rmin, float rdelta, int nstep, uint8_t* L, Block* y) {
    float weights[QK_K], mins[QK_K / 32], scales[QK_K / 32];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < QK_K / 32; ++j) {
        float sum_x2 = 0.0f;
        for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = std::sqrt(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[32 * j + l] = av_x + std::fabs(x[32 * j + l]);
    }
    // The eight sub-blocks' searches are independent: one batched call (same bytes as eight).
    make_qkx2_quants_x8(32, nmax, x, weights, L, scales, mins, rmin, rdelta, nstep, false);
    for (int j = 0; j < QK_K / 32; ++j) {
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    uint8_t ls[QK_K / 32], lm[QK_K / 32];
    for (int j = 0; j < QK_K / 32; ++j) {
        // The int is narrowed to uint8 before the min, as in ggml.
        ls[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
        lm[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
    }
    pack_scale_min_k4(ls, lm, y->scales);
    y->d = fp32_to_fp16(max_scale / 63.0f);
    y->dmin = fp32_to_fp16(max_min / 63.0f);
}

// The imatrix search shared by Q4_K and Q5_K (scales/mins quantized by make_qp_quants with nmax 63).
template <typename Block>
void k4_imatrix_scales(const float* x, const float* qw_block, int nmax, bool clamp63, uint8_t* L, Block* y) {
    uint8_t Ls[QK_K / 32], Lm[QK_K / 32];
    float weights[QK_K], sw[QK_K / 32], mins[QK_K / 32], scales[QK_K / 32];
    float sum_x2 = 0.0f;
    for (int l = 0; l < QK_K; ++l) sum_x2 += x[l] * x[l];
    const float sigma2 = 2 * sum_x2 / QK_K;
    for (int j = 0; j < QK_K / 32; ++j) {
        const float* qw = qw_block + 32 * j;
        float* w = weights + 32 * j;
        for (int l = 0; l < 32; ++l) w[l] = qw[l] * std::sqrt(sigma2 + x[32 * j + l] * x[32 * j + l]);
        float sumw = 0.0f;
        for (int l = 0; l < 32; ++l) sumw += w[l];
        sw[j] = sumw;
    }
    // The eight sub-blocks' searches are independent: one batched call (same bytes as eight).
    static_assert(QK_K / 32 == 8);
    make_qkx3_quants_x8(32, nmax, x, weights, L, scales, mins, -0.9f, 0.05f, 36, false);
    const float d_block = make_qp_quants(QK_K / 32, 63, scales, Ls, sw);
    const float m_block = make_qp_quants(QK_K / 32, 63, mins, Lm, sw);
    if (clamp63) {  // ggml's Q5_K impl clamps here, its Q4_K impl does not
        for (int j = 0; j < QK_K / 32; ++j) {
            Ls[j] = std::min<uint8_t>(63, Ls[j]);
            Lm[j] = std::min<uint8_t>(63, Lm[j]);
        }
    }
    pack_scale_min_k4(Ls, Lm, y->scales);
    y->d = fp32_to_fp16(d_block);
    y->dmin = fp32_to_fp16(m_block);
}

void pack_q4_K(const uint8_t* L, block_q4_K* y) {
    uint8_t* q = y->qs;
    for (int j = 0; j < QK_K; j += 64, q += 32)
        for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
}

void pack_q5_K(const uint8_t* L, block_q5_K* y) {
    uint8_t* qh = y->qh;
    uint8_t* ql = y->qs;
    std::memset(qh, 0, QK_K / 8);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < QK_K; n += 64, ql += 32) {
        for (int j = 0; j < 32; ++j) {
            int l1 = L[n + j];
            if (l1 > 15) {
                l1 -= 16;
                qh[j] |= m1;
            }
            int l2 = L[n + j + 32];
            if (l2 > 15) {
                l2 -= 16;
                qh[j] |= m2;
            }
            ql[j] = static_cast<uint8_t>(l1 | (l2 << 4));
        }
        m1 = static_cast<uint8_t>(m1 << 2);
        m2 = static_cast<uint8_t>(m2 << 2);
    }
}

}  // namespace

void dequantize_row_q4_K(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const block_q4_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(x[i].d), min = fp16_to_fp32(x[i].dmin);
        const uint8_t* q = x[i].qs;
        for (int is = 0; is < 8; is += 2, q += 32) {
            uint8_t sc, m;
            get_scale_min_k4(is, x[i].scales, &sc, &m);
            const float d1 = d * static_cast<float>(sc), m1 = min * static_cast<float>(m);
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * static_cast<float>(sc), m2 = min * static_cast<float>(m);
            for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
        }
    }
}

void dequantize_row_q5_K(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const block_q5_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(x[i].d), min = fp16_to_fp32(x[i].dmin);
        const uint8_t* ql = x[i].qs;
        const uint8_t* qh = x[i].qh;
        uint8_t u1 = 1, u2 = 2;
        for (int is = 0; is < 8; is += 2, ql += 32) {
            uint8_t sc, m;
            get_scale_min_k4(is, x[i].scales, &sc, &m);
            const float d1 = d * static_cast<float>(sc), m1 = min * static_cast<float>(m);
            get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * static_cast<float>(sc), m2 = min * static_cast<float>(m);
            for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            u1 = static_cast<uint8_t>(u1 << 2);
            u2 = static_cast<uint8_t>(u2 << 2);
        }
    }
}

size_t quantize_q4_K(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix) {
    return quantize_superblock_rows<block_q4_K, QK_K>(src, dst, nrows, n_per_row,
                                                       [&](const float* x, block_q4_K* y, int64_t col) {
        uint8_t L[QK_K];
        if (imatrix) k4_imatrix_scales(x, imatrix + col, 15, false, L, y);
        else k4_ref_scales(x, 15, -1.0f, 0.1f, 20, L, y);
        requantize_k4(x, y->scales, y->d, y->dmin, 15, L);
        pack_q4_K(L, y);
    });
}

size_t quantize_q5_K(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix) {
    return quantize_superblock_rows<block_q5_K, QK_K>(src, dst, nrows, n_per_row,
                                                       [&](const float* x, block_q5_K* y, int64_t col) {
        uint8_t L[QK_K];
        if (imatrix) k4_imatrix_scales(x, imatrix + col, 31, true, L, y);
        else k4_ref_scales(x, 31, -0.5f, 0.1f, 15, L, y);
        requantize_k4(x, y->scales, y->d, y->dmin, 31, L);
        pack_q5_K(L, y);
    });
}

}  // namespace gemma
