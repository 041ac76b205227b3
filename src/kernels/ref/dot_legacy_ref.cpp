// Scalar dot products for the 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) vs Q8_0 / Q8_1.
#include <cstring>

#include "core/fp16.h"
#include "kernels/kernels_internal.h"
#include "quant/blocks.h"
#include "quant/iq_tables.h"

namespace gemma::kernels::detail {
namespace {

// As ggml's generic kernels: an exact integer dot per block, scaled in float and summed over blocks.
uint32_t load_u32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

void vec_dot_q4_0_ref(int64_t n, float* s, const void* w, const void* a) {
    const auto* x = static_cast<const block_q4_0*>(w);
    const auto* y = static_cast<const block_q8_0*>(a);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK4_0; ++i) {
        int sumi = 0;
        for (int j = 0; j < 16; ++j) {
            sumi += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j];
            sumi += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
        }
        sumf += fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d) * static_cast<float>(sumi);
    }
    *s = sumf;
}

void vec_dot_q4_1_ref(int64_t n, float* s, const void* w, const void* a) {
    const auto* x = static_cast<const block_q4_1*>(w);
    const auto* y = static_cast<const block_q8_1*>(a);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK4_1; ++i) {
        int sumi = 0;
        for (int j = 0; j < 16; ++j) {
            sumi += (x[i].qs[j] & 0xF) * y[i].qs[j];
            sumi += (x[i].qs[j] >> 4) * y[i].qs[j + 16];
        }
        // y.s = d_y * sum(q_y), so the weight offset m contributes m * s.
        sumf += fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d) * static_cast<float>(sumi) +
                fp16_to_fp32(x[i].m) * fp16_to_fp32(y[i].s);
    }
    *s = sumf;
}

void vec_dot_q5_0_ref(int64_t n, float* s, const void* w, const void* a) {
    const auto* x = static_cast<const block_q5_0*>(w);
    const auto* y = static_cast<const block_q8_0*>(a);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK5_0; ++i) {
        const uint32_t qh = load_u32(x[i].qh);
        int sumi = 0;
        for (int j = 0; j < 16; ++j) {
            const int lo = (x[i].qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1) << 4);
            const int hi = (x[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
            sumi += (lo - 16) * y[i].qs[j] + (hi - 16) * y[i].qs[j + 16];
        }
        sumf += fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d) * static_cast<float>(sumi);
    }
    *s = sumf;
}

void vec_dot_q5_1_ref(int64_t n, float* s, const void* w, const void* a) {
    const auto* x = static_cast<const block_q5_1*>(w);
    const auto* y = static_cast<const block_q8_1*>(a);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK5_1; ++i) {
        const uint32_t qh = load_u32(x[i].qh);
        int sumi = 0;
        for (int j = 0; j < 16; ++j) {
            const int lo = (x[i].qs[j] & 0xF) | static_cast<int>(((qh >> j) & 1) << 4);
            const int hi = (x[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
            sumi += lo * y[i].qs[j] + hi * y[i].qs[j + 16];
        }
        sumf += fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d) * static_cast<float>(sumi) +
                fp16_to_fp32(x[i].m) * fp16_to_fp32(y[i].s);
    }
    *s = sumf;
}

void vec_dot_q8_0_ref(int64_t n, float* s, const void* w, const void* a) {
    const auto* x = static_cast<const block_q8_0*>(w);
    const auto* y = static_cast<const block_q8_0*>(a);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        int sumi = 0;
        for (int j = 0; j < 32; ++j) sumi += x[i].qs[j] * y[i].qs[j];
        sumf += fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d) * static_cast<float>(sumi);
    }
    *s = sumf;
}

void vec_dot_iq4_nl_ref(int64_t n, float* s, const void* w, const void* a) {
    const auto* x = static_cast<const block_iq4_nl*>(w);
    const auto* y = static_cast<const block_q8_0*>(a);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK4_NL; ++i) {
        int sumi = 0;
        for (int j = 0; j < 16; ++j) {
            sumi += kvalues_iq4nl[x[i].qs[j] & 0xF] * y[i].qs[j];
            sumi += kvalues_iq4nl[x[i].qs[j] >> 4] * y[i].qs[j + 16];
        }
        sumf += fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d) * static_cast<float>(sumi);
    }
    *s = sumf;
}

}  // namespace

void fill_ref_legacy(KernelTable& t) {
    t.vec_dot[idx(TypeId::Q4_0)] = vec_dot_q4_0_ref;
    t.vec_dot[idx(TypeId::Q4_1)] = vec_dot_q4_1_ref;
    t.vec_dot[idx(TypeId::Q5_0)] = vec_dot_q5_0_ref;
    t.vec_dot[idx(TypeId::Q5_1)] = vec_dot_q5_1_ref;
    t.vec_dot[idx(TypeId::Q8_0)] = vec_dot_q8_0_ref;
    t.vec_dot[idx(TypeId::IQ4_NL)] = vec_dot_iq4_nl_ref;
}

}  // namespace gemma::kernels::detail
