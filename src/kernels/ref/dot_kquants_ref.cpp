// Scalar dot products for the k-quants (Q2_K..Q6_K) against Q8_K activations.
#include <cstring>

#include "core/fp16.h"
#include "kernels/kernels_internal.h"
#include "quant/blocks.h"

namespace gemma::kernels::detail {
namespace {

// Each super-block: exact integer sums of scale * q * q8 (and of min * bsum), then scaled in float,
// the shape of ggml's generic kernels.

// Element e of a Q2_K/Q3_K block: 2-bit field of byte qs[32*(e/128) + e%32] at shift 2*((e%128)/32).
inline int low2(const uint8_t* qs, int e) { return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3; }

void vec_dot_q2_K_ref(int64_t n, float* s, const void* w, const void* a) {
    const auto* x = static_cast<const block_q2_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        int isum = 0, summs = 0;
        for (int j = 0; j < 16; ++j) {
            int sub = 0;
            for (int k = 0; k < 16; ++k) sub += low2(x[i].qs, 16 * j + k) * y[i].qs[16 * j + k];
            isum += (x[i].scales[j] & 0xF) * sub;
            summs += (x[i].scales[j] >> 4) * y[i].bsums[j];
        }
        const float dall = y[i].d * fp16_to_fp32(x[i].d);
        const float dmin = y[i].d * fp16_to_fp32(x[i].dmin);
        sumf += dall * static_cast<float>(isum) - dmin * static_cast<float>(summs);
    }
    *s = sumf;
}

void vec_dot_q3_K_ref(int64_t n, float* s, const void* w, const void* a) {
    const auto* x = static_cast<const block_q3_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const uint8_t* sc = x[i].scales;
        int isum = 0;
        for (int j = 0; j < 16; ++j) {
            const int lo = j < 8 ? (sc[j] & 0xF) : (sc[j - 8] >> 4);
            const int hi = (sc[8 + j % 4] >> (2 * (j / 4))) & 3;
            int sub = 0;
            for (int k = 0; k < 16; ++k) {
                const int e = 16 * j + k;
                const int hbit = (x[i].hmask[e % 32] >> (e / 32)) & 1;
                sub += (low2(x[i].qs, e) - (hbit ? 0 : 4)) * y[i].qs[e];
            }
            isum += ((lo | (hi << 4)) - 32) * sub;
        }
        sumf += fp16_to_fp32(x[i].d) * y[i].d * static_cast<float>(isum);
    }
    *s = sumf;
}

// 6-bit scale and min of sub-block j (0..7) of Q4_K / Q5_K.
inline void scale_min_k4(int j, const uint8_t* q, int* sc, int* m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

// Shared by Q4_K and Q5_K: q(e) gives the unsigned quant of element e.
template <typename Block, typename QFn>
float dot_q45_K(const Block& x, const block_q8_K& y, QFn q) {
    int isum = 0, summs = 0;
    for (int j = 0; j < 8; ++j) {
        int sc, m;
        scale_min_k4(j, x.scales, &sc, &m);
        int sub = 0;
        for (int k = 0; k < 32; ++k) sub += q(32 * j + k) * y.qs[32 * j + k];
        isum += sc * sub;
        summs += m * (y.bsums[2 * j] + y.bsums[2 * j + 1]);
    }
    const float d = fp16_to_fp32(x.d) * y.d;
    const float dmin = fp16_to_fp32(x.dmin) * y.d;
    return d * static_cast<float>(isum) - dmin * static_cast<float>(summs);
}

void vec_dot_q4_K_ref(int64_t n, float* s, const void* w, const void* a) {
    const auto* x = static_cast<const block_q4_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const uint8_t* qs = x[i].qs;
        // Byte l of 64-element chunk c: low nibble = element 64c+l, high nibble = element 64c+32+l.
        sumf += dot_q45_K(x[i], y[i], [qs](int e) { return (qs[32 * (e / 64) + e % 32] >> (4 * ((e / 32) & 1))) & 0xF; });
    }
    *s = sumf;
}

void vec_dot_q5_K_ref(int64_t n, float* s, const void* w, const void* a) {
    const auto* x = static_cast<const block_q5_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const uint8_t* qs = x[i].qs;
        const uint8_t* qh = x[i].qh;
        sumf += dot_q45_K(x[i], y[i], [qs, qh](int e) {
            const int lo = (qs[32 * (e / 64) + e % 32] >> (4 * ((e / 32) & 1))) & 0xF;
            return lo | (((qh[e % 32] >> (e / 32)) & 1) << 4);
        });
    }
    *s = sumf;
}

void vec_dot_q6_K_ref(int64_t n, float* s, const void* w, const void* a) {
    const auto* x = static_cast<const block_q6_K*>(w);
    const auto* y = static_cast<const block_q8_K*>(a);
    float sumf = 0.0f;
    for (int64_t i = 0; i < n / QK_K; ++i) {
        int q[QK_K];
        for (int h = 0; h < 2; ++h) {
            const uint8_t* ql = x[i].ql + 64 * h;
            const uint8_t* qh = x[i].qh + 32 * h;
            int* o = q + 128 * h;
            for (int l = 0; l < 32; ++l) {
                o[l] = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                o[l + 32] = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                o[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                o[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            }
        }
        int isum = 0;
        for (int j = 0; j < 16; ++j) {
            int sub = 0;
            for (int k = 0; k < 16; ++k) sub += q[16 * j + k] * y[i].qs[16 * j + k];
            isum += x[i].scales[j] * sub;
        }
        sumf += fp16_to_fp32(x[i].d) * y[i].d * static_cast<float>(isum);
    }
    *s = sumf;
}

}  // namespace

void fill_ref_kquants(KernelTable& t) {
    t.vec_dot[idx(TypeId::Q2_K)] = vec_dot_q2_K_ref;
    t.vec_dot[idx(TypeId::Q3_K)] = vec_dot_q3_K_ref;
    t.vec_dot[idx(TypeId::Q4_K)] = vec_dot_q4_K_ref;
    t.vec_dot[idx(TypeId::Q5_K)] = vec_dot_q5_K_ref;
    t.vec_dot[idx(TypeId::Q6_K)] = vec_dot_q6_K_ref;
}

}  // namespace gemma::kernels::detail
