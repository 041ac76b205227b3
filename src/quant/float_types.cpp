// F32 / F16 / BF16 rows: the "quantizers" are exact conversions (RNE), as ggml does them.
#include <cstring>

#include "core/fp16.h"
#include "quant/formats.h"

namespace gemma {

void dequantize_row_f32(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, static_cast<size_t>(n) * 4); }

void dequantize_row_f16(const void* src, float* dst, int64_t n) {
    const auto* h = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
}

void dequantize_row_bf16(const void* src, float* dst, int64_t n) {
    const auto* h = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
}

size_t quantize_f32(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
    const size_t n = static_cast<size_t>(nrows * n_per_row);
    std::memcpy(dst, src, n * 4);
    return n * 4;
}

size_t quantize_f16(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
    const int64_t n = nrows * n_per_row;
    auto* h = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
    return static_cast<size_t>(n) * 2;
}

size_t quantize_bf16(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float*) {
    const int64_t n = nrows * n_per_row;
    auto* h = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(src[i]);
    return static_cast<size_t>(n) * 2;
}

}  // namespace gemma
