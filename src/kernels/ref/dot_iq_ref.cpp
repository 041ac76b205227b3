// Scalar dot products for the IQ types with 256-element super-blocks (IQ4_XS, IQ3_XXS, IQ3_S, IQ2_S) vs Q8_K.
#include <cstring>

#include "core/fp16.h"
#include "kernels/kernels_internal.h"
#include "quant/blocks.h"
#include "quant/iq2_tables.h"
#include "quant/iq_tables.h"

namespace gemma::kernels::detail {
namespace {

// As ggml's generic kernels: odd integer scales (2*ls+1) keep the sub-block sums exact; the format's
// fractional factor (1/4 for IQ3_XXS, 1/8 for IQ2_S) is applied once at the end.

inline uint8_t grid_byte(uint32_t entry, int k) { return static_cast<uint8_t>(entry >> (8 * k)); }
inline uint8_t grid_byte(uint64_t entry, int k) { return static_cast<uint8_t>(entry >> (8 * k)); }

void vec_dot_iq4_xs_ref(int64_t n, float* s, const void* w, const void* a) {
    const auto* x = static_cast<const block_iq4_xs*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        int isum = 0;
        for (int ib = 0; ib < 8; ++ib) {
            const int ls = ((x[i].scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((x[i].scales_h >> (2 * ib)) & 3) << 4);
            const uint8_t* qs = x[i].qs + 16 * ib;
            const int8_t* q8 = y[i].qs + 32 * ib;
            int sub = 0;
            for (int j = 0; j < 16; ++j)
                sub += kvalues_iq4nl[qs[j] & 0xF] * q8[j] + kvalues_iq4nl[qs[j] >> 4] * q8[j + 16];
            isum += (ls - 32) * sub;
        }
        sumf += fp16_to_fp32(x[i].d) * y[i].d * static_cast<float>(isum);
    }
    *s = sumf;
}

void vec_dot_iq3_xxs_ref(int64_t n, float* s, const void* w, const void* a) {
    const auto* x = static_cast<const block_iq3_xxs*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const uint8_t* qs = x[i].qs;
        const uint8_t* scales_and_signs = x[i].qs + QK_K / 4;
        int isum = 0;
        for (int ib = 0; ib < 8; ++ib) {
            uint32_t aux;
            std::memcpy(&aux, scales_and_signs + 4 * ib, 4);
            const int8_t* q8 = y[i].qs + 32 * ib;
            int sub = 0;
            for (int l = 0; l < 4; ++l) {
                const uint8_t signs = ksigns_iq2xs[(aux >> (7 * l)) & 127];
                const uint32_t g1 = iq3xxs_grid[qs[8 * ib + 2 * l]];
                const uint32_t g2 = iq3xxs_grid[qs[8 * ib + 2 * l + 1]];
                for (int j = 0; j < 4; ++j) {
                    const int v1 = grid_byte(g1, j), v2 = grid_byte(g2, j);
                    sub += (signs & kmask_iq2xs[j] ? -v1 : v1) * q8[8 * l + j];
                    sub += (signs & kmask_iq2xs[j + 4] ? -v2 : v2) * q8[8 * l + j + 4];
                }
            }
            isum += static_cast<int>(2 * (aux >> 28) + 1) * sub;
        }
        sumf += fp16_to_fp32(x[i].d) * y[i].d * static_cast<float>(isum);
    }
    *s = 0.25f * sumf;
}

void vec_dot_iq3_s_ref(int64_t n, float* s, const void* w, const void* a) {
    const auto* x = static_cast<const block_iq3_s*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        int isum = 0;
        for (int ib = 0; ib < 8; ++ib) {
            const int ls = (x[i].scales[ib / 2] >> (4 * (ib % 2))) & 0xF;
            const int8_t* q8 = y[i].qs + 32 * ib;
            int sub = 0;
            for (int k = 0; k < 8; ++k) {  // group of 4 values
                const int index = x[i].qs[8 * ib + k] | (((x[i].qh[ib] >> k) & 1) << 8);
                const uint32_t g = iq3s_grid[index];
                const uint8_t signs = x[i].signs[4 * ib + k / 2];
                for (int j = 0; j < 4; ++j) {
                    const int v = grid_byte(g, j);
                    sub += (signs & kmask_iq2xs[4 * (k % 2) + j] ? -v : v) * q8[4 * k + j];
                }
            }
            isum += (2 * ls + 1) * sub;
        }
        sumf += fp16_to_fp32(x[i].d) * y[i].d * static_cast<float>(isum);
    }
    *s = sumf;
}

void vec_dot_iq2_s_ref(int64_t n, float* s, const void* w, const void* a) {
    const auto* x = static_cast<const block_iq2_s*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const uint8_t* qs = x[i].qs;
        const uint8_t* signs = x[i].qs + QK_K / 8;
        int isum = 0;
        for (int ib = 0; ib < 8; ++ib) {
            const int8_t* q8 = y[i].qs + 32 * ib;
            for (int half = 0; half < 2; ++half) {  // two 16-value halves with their own 4-bit scale
                const int ls = (x[i].scales[ib] >> (4 * half)) & 0xF;
                int sub = 0;
                for (int l = 2 * half; l < 2 * half + 2; ++l) {
                    const int index = qs[4 * ib + l] | ((x[i].qh[ib] << (8 - 2 * l)) & 0x300);
                    const uint64_t g = iq2s_grid[index];
                    const uint8_t sg = signs[4 * ib + l];
                    for (int j = 0; j < 8; ++j) {
                        const int v = grid_byte(g, j);
                        sub += (sg & kmask_iq2xs[j] ? -v : v) * q8[8 * l + j];
                    }
                }
                isum += (2 * ls + 1) * sub;
            }
        }
        sumf += fp16_to_fp32(x[i].d) * y[i].d * static_cast<float>(isum);
    }
    *s = 0.125f * sumf;
}

}  // namespace

void fill_ref_iq(KernelTable& t) {
    t.vec_dot[idx(TypeId::IQ4_XS)] = vec_dot_iq4_xs_ref;
    t.vec_dot[idx(TypeId::IQ3_XXS)] = vec_dot_iq3_xxs_ref;
    t.vec_dot[idx(TypeId::IQ3_S)] = vec_dot_iq3_s_ref;
    t.vec_dot[idx(TypeId::IQ2_S)] = vec_dot_iq2_s_ref;
}

}  // namespace gemma::kernels::detail
