// Scalar activation converters: f32 rows to Q8_0 / Q8_1 (x86 semantics), Q8_K (ggml ref), F16 / BF16 (RNE), F32.
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kernels/kernels_internal.h"
#include "quant/blocks.h"
#include "quant/rounding.h"

namespace gemma::kernels::detail {
namespace {

// llama.cpp's AVX path (what reference logits come from): id = 127/max rather than 1/d, and the product
// is rounded half-to-even. |x*id| <= 127 (+1 ulp), well inside nearest_int's exact range.
template <bool kWithSum>
void q8_x86_block(const float* x, fp16_t* d_out, fp16_t* s_out, int8_t* qs) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
        const int q = nearest_int(x[j] * id);
        qs[j] = static_cast<int8_t>(q);
        sum += q;
    }
    *d_out = fp32_to_fp16(d);
    if constexpr (kWithSum) *s_out = fp32_to_fp16(d * static_cast<float>(sum));
}

void convert_q8_0_ref(const float* x, void* dst, int64_t n) {
    auto* y = static_cast<block_q8_0*>(dst);
    for (int64_t i = 0; i < n / QK8_0; ++i) q8_x86_block<false>(x + i * QK8_0, &y[i].d, nullptr, y[i].qs);
}

void convert_q8_1_ref(const float* x, void* dst, int64_t n) {
    auto* y = static_cast<block_q8_1*>(dst);
    for (int64_t i = 0; i < n / QK8_1; ++i) q8_x86_block<true>(x + i * QK8_1, &y[i].d, &y[i].s, y[i].qs);
}

// ggml's quantize_row_q8_K_ref (x86 runs it too). The reference leaves bsums unset for an all-zero block;
// we zero them so the output is fully defined.
void convert_q8_K_ref(const float* x, void* dst, int64_t n) {
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
            y[i].d = 0.0f;
            std::memset(y[i].qs, 0, sizeof(y[i].qs));
            std::memset(y[i].bsums, 0, sizeof(y[i].bsums));
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; ++j) {
            const int v = nearest_int(iscale * x[j]);
            y[i].qs[j] = static_cast<int8_t>(v < 127 ? v : 127);
        }
        for (int j = 0; j < QK_K / 16; ++j) {
            int sum = 0;
            for (int k = 0; k < 16; ++k) sum += y[i].qs[16 * j + k];
            y[i].bsums[j] = static_cast<int16_t>(sum);
        }
        y[i].d = 1 / iscale;
    }
}

void convert_f16_ref(const float* x, void* dst, int64_t n) {
    auto* h = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(x[i]);
}

void convert_bf16_ref(const float* x, void* dst, int64_t n) {
    auto* h = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_bf16(x[i]);
}

void convert_f32_ref(const float* x, void* dst, int64_t n) { std::memcpy(dst, x, static_cast<size_t>(n) * 4); }

}  // namespace

void fill_ref_convert(KernelTable& t) {
    t.convert[idx(TypeId::Q8_0)] = convert_q8_0_ref;
    t.convert[idx(TypeId::Q8_1)] = convert_q8_1_ref;
    t.convert[idx(TypeId::Q8_K)] = convert_q8_K_ref;
    t.convert[idx(TypeId::F16)] = convert_f16_ref;
    t.convert[idx(TypeId::BF16)] = convert_bf16_ref;
    t.convert[idx(TypeId::F32)] = convert_f32_ref;
}

}  // namespace gemma::kernels::detail
