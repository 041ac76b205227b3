// Legacy 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1): ggml-exact dequantizers and quantizers.
#include <algorithm>
#include <cmath>
#include <limits>
#include <cstring>

#include "core/error.h"
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/kquants_search.h"

namespace gemma {
namespace {

// ggml converts float -> int8/uint8 with a plain C cast; on x86-64 that is cvttss2si (truncation
// to int32) followed by keeping the low byte. Going through int keeps that behaviour without UB.
inline int8_t trunc_i8(float v) { return static_cast<int8_t>(static_cast<int>(v)); }
inline uint8_t trunc_u8(float v) { return static_cast<uint8_t>(static_cast<int>(v)); }

inline uint32_t load_qh(const uint8_t* qh) {
    uint32_t h;
    std::memcpy(&h, qh, 4);
    return h;
}

inline void store_qh(uint8_t* dst, uint32_t h) { std::memcpy(dst, &h, 4); }

// Packs 5-bit levels into nibbles + the qh bit plane (element j's bit 4 -> bit j).
inline void pack5(const uint8_t* L, uint8_t* qs, uint8_t* qh_out) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        const uint8_t a = L[j], b = L[j + 16];
        qs[j] = static_cast<uint8_t>((a & 0x0F) | ((b & 0x0F) << 4));
        qh |= ((a & 0x10u) >> 4) << j;
        qh |= ((b & 0x10u) >> 4) << (j + 16);
    }
    store_qh(qh_out, qh);
}

// Signed value with the largest magnitude, first one on ties (ggml's strict `<`).
inline float signed_absmax(const float* x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; ++j) {
        if (amax < std::fabs(x[j])) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    }
    return max;
}

inline void min_max(const float* x, int n, float* mn, float* mx) {
    float lo = std::numeric_limits<float>::max(), hi = -std::numeric_limits<float>::max();
    for (int j = 0; j < n; ++j) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

inline float abs_max(const float* x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; ++j) {
        const float a = std::fabs(x[j]);
        amax = amax > a ? amax : a;  // ggml's MAX()
    }
    return amax;
}

// sigma2 of the imatrix paths is taken over the whole row, not per block.
inline float row_sigma2(const float* x, int64_t n) {
    float sum_x2 = 0.0f;
    for (int64_t j = 0; j < n; ++j) sum_x2 += x[j] * x[j];
    return sum_x2 / static_cast<float>(n);
}

inline void imatrix_weights(const float* xb, const float* qw, float sigma2, float* w) {
    for (int j = 0; j < 32; ++j) w[j] = qw[j] * std::sqrt(sigma2 + xb[j] * xb[j]);
}

// The imatrix (scale, min) search of Q4_1/Q5_1 over a row's nb blocks: eight blocks per batched search (the
// same bytes as one at a time), the rest one by one; emit(ib, L, d, min) stores block ib.
template <typename Emit>
void imatrix_min_blocks(const float* x, const float* imatrix, float sigma2, int64_t nb, int nmax, Emit emit) {
    float w[256], d[8], min[8];
    uint8_t L[256], Laux[32];
    int64_t ib = 0;
    for (; ib + 8 <= nb; ib += 8) {
        for (int g = 0; g < 8; ++g) imatrix_weights(x + 32 * (ib + g), imatrix + 32 * (ib + g), sigma2, w + 32 * g);
        make_qkx3_quants_x8(32, nmax, x + 32 * ib, w, L, d, min, -0.9f, 0.05f, 36, false);
        for (int g = 0; g < 8; ++g) emit(ib + g, L + 32 * g, d[g], min[g]);
    }
    for (; ib < nb; ++ib) {
        imatrix_weights(x + 32 * ib, imatrix + 32 * ib, sigma2, w);
        const float dd = make_qkx3_quants(32, nmax, x + 32 * ib, w, L, &min[0], Laux, -0.9f, 0.05f, 36, false);
        emit(ib, L, dd, min[0]);
    }
}

void q4_0_ref_block(const float* x, block_q4_0* y) {
    const float max = signed_absmax(x, 32);
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = fp32_to_fp16(d);
    for (int j = 0; j < 16; ++j) {
        const int a = std::min<int>(15, trunc_i8(x[j] * id + 8.5f));
        const int b = std::min<int>(15, trunc_i8(x[j + 16] * id + 8.5f));
        y->qs[j] = static_cast<uint8_t>(static_cast<uint8_t>(a) | (static_cast<uint8_t>(b) << 4));
    }
}

void q4_1_ref_block(const float* x, block_q4_1* y) {
    float min, max;
    min_max(x, 32, &min, &max);
    const float d = (max - min) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = fp32_to_fp16(d);
    y->m = fp32_to_fp16(min);
    for (int j = 0; j < 16; ++j) {
        const int a = std::min<int>(15, trunc_i8((x[j] - min) * id + 0.5f));
        const int b = std::min<int>(15, trunc_i8((x[j + 16] - min) * id + 0.5f));
        y->qs[j] = static_cast<uint8_t>(static_cast<uint8_t>(a) | (static_cast<uint8_t>(b) << 4));
    }
}

void q5_0_ref_block(const float* x, block_q5_0* y) {
    const float max = signed_absmax(x, 32);
    const float d = max / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = fp32_to_fp16(d);
    uint8_t L[32];
    for (int j = 0; j < 32; ++j) L[j] = static_cast<uint8_t>(std::min<int>(31, trunc_i8(x[j] * id + 16.5f)));
    pack5(L, y->qs, y->qh);
}

void q5_1_ref_block(const float* x, block_q5_1* y) {
    float min, max;
    min_max(x, 32, &min, &max);
    const float d = (max - min) / 31;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y->d = fp32_to_fp16(d);
    y->m = fp32_to_fp16(min);
    uint8_t L[32];
    for (int j = 0; j < 32; ++j) L[j] = trunc_u8((x[j] - min) * id + 0.5f);  // no clamp, as in ggml
    pack5(L, y->qs, y->qh);
}

// Returns d (the f32 value before fp16 rounding); qs receives roundf(x/d).
float q8_block(const float* x, int8_t* qs) {
    const float amax = abs_max(x, 32);
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; ++j) qs[j] = static_cast<int8_t>(static_cast<int>(std::round(x[j] * id)));
    return d;
}

// Row-by-row driver: the imatrix paths depend on whole-row statistics, the ref paths do not but
// splitting them by row gives the same bytes.
template <typename Block, typename RowFn>
size_t quantize_rows(const float* src, void* dst, int64_t nrows, int64_t n_per_row, RowFn row_fn) {
    GEMMA_ASSERT(n_per_row % 32 == 0);
    const int64_t nb = n_per_row / 32;
    auto* out = static_cast<Block*>(dst);
    for (int64_t r = 0; r < nrows; ++r) row_fn(src + r * n_per_row, out + r * nb, nb);
    return static_cast<size_t>(nrows * nb) * sizeof(Block);
}

}  // namespace

// ---- dequantizers (ggml's float forms: q*d, q*d + m) ----

void dequantize_row_q4_0(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const block_q4_0*>(src);
    for (int64_t i = 0; i < n / 32; ++i, y += 32) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < 16; ++j) {
            y[j] = static_cast<float>((x[i].qs[j] & 0x0F) - 8) * d;
            y[j + 16] = static_cast<float>((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void dequantize_row_q4_1(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const block_q4_1*>(src);
    for (int64_t i = 0; i < n / 32; ++i, y += 32) {
        const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
        for (int j = 0; j < 16; ++j) {
            y[j] = static_cast<float>(x[i].qs[j] & 0x0F) * d + m;
            y[j + 16] = static_cast<float>(x[i].qs[j] >> 4) * d + m;
        }
    }
}

void dequantize_row_q5_0(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const block_q5_0*>(src);
    for (int64_t i = 0; i < n / 32; ++i, y += 32) {
        const float d = fp16_to_fp32(x[i].d);
        const uint32_t qh = load_qh(x[i].qh);
        for (int j = 0; j < 16; ++j) {
            const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
            const int h1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
            y[j] = static_cast<float>(((x[i].qs[j] & 0x0F) | h0) - 16) * d;
            y[j + 16] = static_cast<float>(((x[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

void dequantize_row_q5_1(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const block_q5_1*>(src);
    for (int64_t i = 0; i < n / 32; ++i, y += 32) {
        const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
        const uint32_t qh = load_qh(x[i].qh);
        for (int j = 0; j < 16; ++j) {
            const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
            const int h1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
            y[j] = static_cast<float>((x[i].qs[j] & 0x0F) | h0) * d + m;
            y[j + 16] = static_cast<float>((x[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

void dequantize_row_q8_0(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const block_q8_0*>(src);
    for (int64_t i = 0; i < n / 32; ++i, y += 32) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
    }
}

// ggml has no Q8_1 dequantizer; the natural one (s is only a dot-product helper).
void dequantize_row_q8_1(const void* src, float* y, int64_t n) {
    const auto* x = static_cast<const block_q8_1*>(src);
    for (int64_t i = 0; i < n / 32; ++i, y += 32) {
        const float d = fp16_to_fp32(x[i].d);
        for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
    }
}

// ---- quantizers ----

size_t quantize_q4_0(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix) {
    return quantize_rows<block_q4_0>(src, dst, nrows, n_per_row, [&](const float* x, block_q4_0* y, int64_t nb) {
        if (!imatrix) {
            for (int64_t ib = 0; ib < nb; ++ib) q4_0_ref_block(x + 32 * ib, y + ib);
            return;
        }
        const float sigma2 = row_sigma2(x, n_per_row);
        float w[32];
        int8_t L[32];
        for (int64_t ib = 0; ib < nb; ++ib) {
            imatrix_weights(x + 32 * ib, imatrix + 32 * ib, sigma2, w);
            const float d = make_qx_quants(32, 8, x + 32 * ib, L, 1, w);
            y[ib].d = fp32_to_fp16(d);
            for (int j = 0; j < 16; ++j) y[ib].qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
        }
    });
}

size_t quantize_q4_1(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix) {
    return quantize_rows<block_q4_1>(src, dst, nrows, n_per_row, [&](const float* x, block_q4_1* y, int64_t nb) {
        if (!imatrix) {
            for (int64_t ib = 0; ib < nb; ++ib) q4_1_ref_block(x + 32 * ib, y + ib);
            return;
        }
        const float sigma2 = row_sigma2(x, n_per_row);
        imatrix_min_blocks(x, imatrix, sigma2, nb, 15, [&](int64_t ib, const uint8_t* L, float d, float min) {
            y[ib].d = fp32_to_fp16(d);
            y[ib].m = fp32_to_fp16(-min);
            for (int j = 0; j < 16; ++j) y[ib].qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
        });
    });
}

size_t quantize_q5_0(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix) {
    return quantize_rows<block_q5_0>(src, dst, nrows, n_per_row, [&](const float* x, block_q5_0* y, int64_t nb) {
        if (!imatrix) {
            for (int64_t ib = 0; ib < nb; ++ib) q5_0_ref_block(x + 32 * ib, y + ib);
            return;
        }
        const float sigma2 = row_sigma2(x, n_per_row);
        float w[32];
        int8_t L[32];
        uint8_t U[32];
        for (int64_t ib = 0; ib < nb; ++ib) {
            imatrix_weights(x + 32 * ib, imatrix + 32 * ib, sigma2, w);
            const float d = make_qx_quants(32, 16, x + 32 * ib, L, 1, w);
            y[ib].d = fp32_to_fp16(d);
            for (int j = 0; j < 32; ++j) U[j] = static_cast<uint8_t>(L[j]);
            pack5(U, y[ib].qs, y[ib].qh);
        }
    });
}

size_t quantize_q5_1(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix) {
    return quantize_rows<block_q5_1>(src, dst, nrows, n_per_row, [&](const float* x, block_q5_1* y, int64_t nb) {
        if (!imatrix) {
            for (int64_t ib = 0; ib < nb; ++ib) q5_1_ref_block(x + 32 * ib, y + ib);
            return;
        }
        const float sigma2 = row_sigma2(x, n_per_row);
        imatrix_min_blocks(x, imatrix, sigma2, nb, 31, [&](int64_t ib, const uint8_t* L, float d, float min) {
            y[ib].d = fp32_to_fp16(d);
            y[ib].m = fp32_to_fp16(-min);
            pack5(L, y[ib].qs, y[ib].qh);
        });
    });
}

// Q8_0 has no imatrix path in ggml: the weights are ignored.
size_t quantize_q8_0(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
    return quantize_rows<block_q8_0>(src, dst, nrows, n_per_row, [](const float* x, block_q8_0* y, int64_t nb) {
        for (int64_t ib = 0; ib < nb; ++ib) y[ib].d = fp32_to_fp16(q8_block(x + 32 * ib, y[ib].qs));
    });
}

size_t quantize_q8_1(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
    return quantize_rows<block_q8_1>(src, dst, nrows, n_per_row, [](const float* x, block_q8_1* y, int64_t nb) {
        for (int64_t ib = 0; ib < nb; ++ib) {
            const float d = q8_block(x + 32 * ib, y[ib].qs);
            int sum = 0;
            for (int j = 0; j < 32; ++j) sum += y[ib].qs[j];
            y[ib].d = fp32_to_fp16(d);
            y[ib].s = fp32_to_fp16(static_cast<float>(sum) * d);
        }
    });
}

}  // namespace gemma
