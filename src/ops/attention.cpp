// Attention: K·Q and V·p through the matmul kernels (the cache is a weight matrix here), softmax in f32.
#include "ops/attention.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/fp16.h"
#include "kernels/kernels.h"
#include "ops/ops.h"

namespace gemma::ops {
namespace {

// Query heads sharing a KV head are processed this many at a time: one kernel call reads the keys once
// for all of them, and fixed sub-groups keep the work split independent of the thread count.
constexpr int64_t kSubHeads = 4;

int64_t sub_heads(const AttnShape& s) { return std::min<int64_t>(kSubHeads, s.n_head / s.n_head_kv); }

size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

}  // namespace

bool kv_type_supported(TypeId t) { return t == TypeId::F32 || t == TypeId::F16 || t == TypeId::Q8_0; }

size_t kv_layer_bytes(TypeId t, const AttnShape& s) {
    return static_cast<size_t>(s.n_ctx) * row_size(t, s.n_head_kv * s.head_dim);
}

void kv_store(const KvLayerView& kv, const AttnShape& s, int32_t pos, const float* k, const float* v) {
    GEMMA_ASSERT(pos >= 0 && pos < s.n_ctx);
    const int64_t n = s.n_head_kv * s.head_dim;
    const size_t row = row_size(kv.type, n);
    // The cache is K·Q's "weight" side: storing it in the weight layout of its type lets the
    // activation converter produce exactly what ggml's f32 -> cache-type copy writes.
    kernels::convert_act_row(kv.type, k, kv.k + static_cast<size_t>(pos) * row, n);
    switch (kv.type) {
        case TypeId::F16: {
            auto* vt = reinterpret_cast<uint16_t*>(kv.v);
            for (int64_t i = 0; i < n; ++i) vt[i * s.n_ctx + pos] = fp32_to_fp16(v[i]);
            break;
        }
        case TypeId::F32: {
            auto* vt = reinterpret_cast<float*>(kv.v);
            for (int64_t i = 0; i < n; ++i) vt[i * s.n_ctx + pos] = v[i];
            break;
        }
        default:
            kernels::convert_act_row(kv.type, v, kv.v + static_cast<size_t>(pos) * row, n);
    }
}

AttnScratch::AttnScratch(TypeId kv_type, const AttnShape& s, int n_threads) {
    const size_t sh = static_cast<size_t>(sub_heads(s));
    q_bytes = round_up(sh * kernels::act_row_size(kv_type, s.head_dim), 64);
    scores_bytes = round_up(sh * static_cast<size_t>(s.n_ctx) * sizeof(float), 64);
    // F32/F16 caches convert the probabilities; Q8_0 dequantizes V rows into a head_dim buffer instead.
    p_bytes = kv_type == TypeId::Q8_0 ? round_up(static_cast<size_t>(s.head_dim) * sizeof(float), 64)
                                      : round_up(sh * kernels::act_row_size(kv_type, s.n_ctx), 64);
    per_thread_ = q_bytes + scores_bytes + p_bytes;
    buf_.assign(per_thread_ * static_cast<size_t>(n_threads), 0);
}

void attention(const KvLayerView& kv, const AttnShape& s, const float* q, int64_t q_stride, const int32_t* pos,
               int64_t n_tok, float* out, int64_t out_stride, AttnScratch& scratch, ThreadPool& pool) {
    const int64_t hd = s.head_dim;
    const int64_t group = s.n_head / s.n_head_kv;
    const int64_t sh = sub_heads(s);
    const int64_t n_sub = (group + sh - 1) / sh;
    const size_t k_row = row_size(kv.type, s.n_head_kv * hd);      // bytes between positions
    const size_t k_head = row_size(kv.type, hd);                   // bytes between kv heads
    const size_t q_act = kernels::act_row_size(kv.type, hd);
    const bool v_trans = kv.type != TypeId::Q8_0;
    const size_t vt_row = v_trans ? row_size(kv.type, s.n_ctx) : 0;  // bytes between rows of V^T
    const size_t p_act = v_trans ? kernels::act_row_size(kv.type, s.n_ctx) : 0;

    pool.parallel_for(n_tok * s.n_head_kv * n_sub, [&](int64_t c, int thread) {
        const int64_t t = c / (s.n_head_kv * n_sub);
        const int64_t g = (c / n_sub) % s.n_head_kv;
        const int64_t h0 = g * group + (c % n_sub) * sh;
        const int64_t nh = std::min(sh, g * group + group - h0);
        const int64_t n_kv = static_cast<int64_t>(pos[t]) + 1;
        GEMMA_ASSERT(pos[t] >= 0 && n_kv <= s.n_ctx);

        uint8_t* base = scratch.thread_base(thread);
        uint8_t* qc = base;
        auto* scores = reinterpret_cast<float*>(base + scratch.q_bytes);
        uint8_t* pc = base + scratch.q_bytes + scratch.scores_bytes;

        const float* qt = q + t * q_stride;
        for (int64_t i = 0; i < nh; ++i) kernels::convert_act_row(kv.type, qt + (h0 + i) * hd, qc + i * q_act, hd);
        // scores[i][j] = K_j · q_i for the nh heads at once: the keys are read once.
        kernels::gemm(kv.type, hd, kv.k + g * k_head, k_row, 0, n_kv, qc, q_act, nh, scores, s.n_ctx);
        for (int64_t i = 0; i < nh; ++i) softmax(scores + i * s.n_ctx, n_kv);

        float* ot = out + t * out_stride;
        if (v_trans) {
            for (int64_t i = 0; i < nh; ++i)
                kernels::convert_act_row(kv.type, scores + i * s.n_ctx, pc + i * p_act, n_kv);
            // out[h][d] = V^T_d · p_h: V^T rows are the head's dims, dotted over positions 0..n_kv-1.
            kernels::gemm(kv.type, n_kv, kv.v + static_cast<size_t>(g * hd) * vt_row, vt_row, 0, hd, pc, p_act, nh,
                          ot + h0 * hd, hd);
        } else {
            auto* vrow = reinterpret_cast<float*>(pc);
            const auto dq = type_traits(kv.type).dequantize_row;
            for (int64_t i = 0; i < nh; ++i) std::memset(ot + (h0 + i) * hd, 0, static_cast<size_t>(hd) * sizeof(float));
            for (int64_t j = 0; j < n_kv; ++j) {
                dq(kv.v + static_cast<size_t>(j) * k_row + g * k_head, vrow, hd);
                for (int64_t i = 0; i < nh; ++i) {
                    const float p = scores[i * s.n_ctx + j];
                    float* o = ot + (h0 + i) * hd;
                    for (int64_t d = 0; d < hd; ++d) o[d] += p * vrow[d];
                }
            }
        }
    });
}

}  // namespace gemma::ops
