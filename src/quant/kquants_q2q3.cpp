// Q2_K and Q3_K (16-element sub-blocks): ggml-exact dequantizers and reference / imatrix quantizers.
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

// 2-bit plane shared by Q2_K and Q3_K: byte l of each 128-half holds elements l, l+32, l+64, l+96.
void pack_2bit(const uint8_t* L, uint8_t* qs) {
    for (int j = 0; j < QK_K; j += 128)
        for (int l = 0; l < 32; ++l)
            qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                                 (L[j + l + 96] << 6));
}

// Requantize a Q2_K block against its stored (fp16-rounded) scales, then pack. A sub-block whose
// scale decodes to 0 keeps the levels of the search (ggml's `if (!d) continue;`).
void finish_q2_K(const float* x, uint8_t* L, block_q2_K* y) {
    const float d_all = fp16_to_fp32(y->d), m_all = fp16_to_fp32(y->dmin);
    for (int j = 0; j < QK_K / 16; ++j) {
        const float d = d_all * static_cast<float>(y->scales[j] & 0xF);
        if (d == 0.0f) continue;
        const float dm = m_all * static_cast<float>(y->scales[j] >> 4);
        for (int ii = 0; ii < 16; ++ii) {
            const int l = nearest_int((x[16 * j + ii] + dm) / d);
            L[16 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(3, l)));
        }
    }
    pack_2bit(L, y->qs);
}

void q2_K_ref_block(const float* x, block_q2_K* y) {
    uint8_t L[QK_K];
    float weights[QK_K], mins[QK_K / 16], scales[QK_K / 16];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int l = 0; l < QK_K; ++l) weights[l] = std::fabs(x[l]);
    // Sixteen independent sub-block searches, eight per batched call (same bytes as one at a time).
    for (int h = 0; h < 2; ++h)
        make_qkx2_quants_x8(16, 3, x + 128 * h, weights + 128 * h, L + 128 * h, scales + 8 * h, mins + 8 * h, -0.5f,
                            0.1f, 15, true);
    for (int j = 0; j < QK_K / 16; ++j) {
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    if (max_scale > 0) {
        const float iscale = 15.0f / max_scale;
        // ggml stores the int into a uint8 (wraps) and ORs the min nibble on top.
        for (int j = 0; j < QK_K / 16; ++j) y->scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
        y->d = fp32_to_fp16(max_scale / 15.0f);
    } else {
        for (int j = 0; j < QK_K / 16; ++j) y->scales[j] = 0;
        y->d = fp32_to_fp16(0.0f);
    }
    if (max_min > 0) {
        const float iscale = 15.0f / max_min;
        for (int j = 0; j < QK_K / 16; ++j) {
            const int l = nearest_int(iscale * mins[j]);
            y->scales[j] = static_cast<uint8_t>(y->scales[j] | (l << 4));
        }
        y->dmin = fp32_to_fp16(max_min / 15.0f);
    } else {
        y->dmin = fp32_to_fp16(0.0f);
    }
    finish_q2_K(x, L, y);
}

void q2_K_imatrix_block(const float* x, const float* qw_block, block_q2_K* y) {
    uint8_t L[QK_K], Ls[QK_K / 16], Lm[QK_K / 16];
    float weights[QK_K], mins[QK_K / 16], scales[QK_K / 16], sw[QK_K / 16];
    float sumx2 = 0.0f;
    for (int j = 0; j < QK_K; ++j) sumx2 += x[j] * x[j];
    const float sigma2 = sumx2 / QK_K;  // no factor 2 here, unlike Q3_K..Q5_K
    for (int j = 0; j < QK_K / 16; ++j) {
        const float* qw = qw_block + 16 * j;
        float* weight = weights + 16 * j;
        for (int l = 0; l < 16; ++l) weight[l] = qw[l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
        float s = 0.0f;
        for (int l = 0; l < 16; ++l) s += weight[l];
        sw[j] = s;
    }
    // Sixteen independent sub-block searches, eight per batched call (same bytes as one at a time).
    for (int h = 0; h < 2; ++h)
        make_qkx3_quants_x8(16, 3, x + 128 * h, weights + 128 * h, L + 128 * h, scales + 8 * h, mins + 8 * h, -0.9f,
                            0.05f, 36, false);
    const float dm = make_qp_quants(QK_K / 16, 15, scales, Ls, sw);
    const float mm = make_qp_quants(QK_K / 16, 15, mins, Lm, sw);
    y->d = fp32_to_fp16(dm);
    y->dmin = fp32_to_fp16(mm);
    for (int j = 0; j < QK_K / 16; ++j) y->scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
    finish_q2_K(x, L, y);
}

// 16 six-bit values (already biased to 0..63) into Q3_K's 12 scale bytes (zeroed first).
void pack_q3_scales(const int* ls, uint8_t* s) {
    std::memset(s, 0, 12);
    for (int j = 0; j < QK_K / 16; ++j) {
        int l = ls[j];
        if (j < 8) s[j] = static_cast<uint8_t>(l & 0xF);
        else s[j - 8] = static_cast<uint8_t>(s[j - 8] | ((l & 0xF) << 4));
        l >>= 4;
        s[j % 4 + 8] = static_cast<uint8_t>(s[j % 4 + 8] | (l << (2 * (j / 4))));
    }
}

// Requantize against the stored scales (same skip rule as Q2_K), then split the high bit into hmask.
void finish_q3_K(const float* x, int8_t* L, block_q3_K* y) {
    const float d_all = fp16_to_fp32(y->d);
    for (int j = 0; j < QK_K / 16; ++j) {
        int8_t sc = static_cast<int8_t>(j < 8 ? y->scales[j] & 0xF : y->scales[j - 8] >> 4);
        sc = static_cast<int8_t>((sc | (((y->scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
        const float d = d_all * static_cast<float>(sc);
        if (d == 0.0f) continue;
        for (int ii = 0; ii < 16; ++ii) {
            const int l = nearest_int(x[16 * j + ii] / d);
            L[16 * j + ii] = static_cast<int8_t>(std::max(-4, std::min(3, l)) + 4);
        }
    }
    std::memset(y->hmask, 0, QK_K / 8);
    uint8_t U[QK_K];
    for (int j = 0; j < QK_K; ++j) {
        int l = L[j];
        if (l > 3) {
            y->hmask[j % 32] = static_cast<uint8_t>(y->hmask[j % 32] | (1u << (j / 32)));
            l -= 4;
        }
        U[j] = static_cast<uint8_t>(l);
    }
    pack_2bit(U, y->qs);
}

void q3_K_ref_block(const float* x, block_q3_K* y) {
    int8_t L[QK_K];
    float scales[QK_K / 16];
    float max_scale = 0.0f, amax = 0.0f;
    for (int j = 0; j < QK_K / 16; ++j) {
        scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j, true);
        const float a = std::fabs(scales[j]);
        if (a > amax) {
            amax = a;
            max_scale = scales[j];
        }
    }
    if (max_scale != 0.0f) {
        const float iscale = -32.0f / max_scale;
        int ls[QK_K / 16];
        for (int j = 0; j < QK_K / 16; ++j) {
            // ggml narrows to int8 before clamping.
            const int8_t l = static_cast<int8_t>(nearest_int(iscale * scales[j]));
            ls[j] = std::max<int>(-32, std::min<int>(31, l)) + 32;
        }
        pack_q3_scales(ls, y->scales);
        y->d = fp32_to_fp16(1 / iscale);
    } else {
        std::memset(y->scales, 0, 12);
        y->d = fp32_to_fp16(0.0f);
    }
    finish_q3_K(x, L, y);
}

void q3_K_imatrix_block(const float* x, const float* qw_block, block_q3_K* y) {
    int8_t L[QK_K], Ls[QK_K / 16];
    float scales[QK_K / 16], weight[16], sw[QK_K / 16];
    float sumx2 = 0.0f;
    for (int j = 0; j < QK_K; ++j) sumx2 += x[j] * x[j];
    const float sigma2 = 2 * sumx2 / QK_K;
    for (int j = 0; j < QK_K / 16; ++j) {
        const float* qw = qw_block + 16 * j;
        for (int l = 0; l < 16; ++l) weight[l] = qw[l] * std::sqrt(sigma2 + x[16 * j + l] * x[16 * j + l]);
        float s = 0.0f;
        for (int l = 0; l < 16; ++l) s += weight[l];
        sw[j] = s;
        scales[j] = make_qx_quants(16, 4, x + 16 * j, L + 16 * j, 1, weight);
    }
    const float d_block = make_qx_quants(QK_K / 16, 32, scales, Ls, 1, sw);
    int ls[QK_K / 16];
    for (int j = 0; j < QK_K / 16; ++j) ls[j] = Ls[j];
    pack_q3_scales(ls, y->scales);
    y->d = fp32_to_fp16(d_block);
    finish_q3_K(x, L, y);
}

}  // namespace

void dequantize_row_q2_K(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const block_q2_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(x[i].d), min = fp16_to_fp32(x[i].dmin);
        const uint8_t* q = x[i].qs;
        int is = 0;
        for (int half = 0; half < 2; ++half, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; ++part) {  // two 16-element sub-blocks share each 32-byte run
                    const uint8_t sc = x[i].scales[is++];
                    const float dl = d * static_cast<float>(sc & 0xF), ml = min * static_cast<float>(sc >> 4);
                    for (int l = 0; l < 16; ++l)
                        *y++ = dl * static_cast<float>((q[l + 16 * part] >> shift) & 3) - ml;
                }
            }
        }
    }
}

void dequantize_row_q3_K(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const block_q3_K*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d_all = fp16_to_fp32(x[i].d);
        const uint8_t* s = x[i].scales;
        int sc[16];
        for (int j = 0; j < 16; ++j) {
            const int low = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
            const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
            sc[j] = (low | (high << 4)) - 32;
        }
        const uint8_t* q = x[i].qs;
        const uint8_t* hm = x[i].hmask;
        uint8_t m = 1;
        int is = 0;
        for (int half = 0; half < 2; ++half, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1)) {
                for (int part = 0; part < 2; ++part) {
                    const float dl = d_all * static_cast<float>(sc[is++]);
                    for (int l = 0; l < 16; ++l) {
                        const int k = l + 16 * part;
                        const int v = ((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4);
                        *y++ = dl * static_cast<float>(v);
                    }
                }
            }
        }
    }
}

size_t quantize_q2_K(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix) {
    return quantize_superblock_rows<block_q2_K, QK_K>(src, dst, nrows, n_per_row,
                                                       [&](const float* x, block_q2_K* y, int64_t col) {
        if (imatrix) q2_K_imatrix_block(x, imatrix + col, y);
        else q2_K_ref_block(x, y);
    });
}

size_t quantize_q3_K(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix) {
    return quantize_superblock_rows<block_q3_K, QK_K>(src, dst, nrows, n_per_row,
                                                       [&](const float* x, block_q3_K* y, int64_t col) {
        if (imatrix) q3_K_imatrix_block(x, imatrix + col, y);
        else q3_K_ref_block(x, y);
    });
}

}  // namespace gemma
