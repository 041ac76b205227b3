// Causal multi-head attention (any GQA ratio) over a KV cache, with llama.cpp's flash-attention-off numerics.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ops/thread_pool.h"
#include "quant/types.h"

namespace gemma::ops {

struct AttnShape {
    int64_t n_head = 0;
    int64_t n_head_kv = 0;
    int64_t head_dim = 0;
    int64_t n_ctx = 0;   // cache slots; a token at position p uses slot p and attends to slots 0..p
};

// One layer of a KV cache. K rows are stored per position; V is stored transposed for F32/F16 (so V·p
// is a dot product over positions, as ggml's v_trans layout does), and per position for Q8_0.
struct KvLayerView {
    TypeId type = TypeId::F16;   // F32, F16 or Q8_0
    uint8_t* k = nullptr;        // [n_ctx][n_head_kv][head_dim]
    uint8_t* v = nullptr;        // F32/F16: [n_head_kv * head_dim][n_ctx]; Q8_0: as k
};

bool kv_type_supported(TypeId t);
// Bytes one layer's K (or V) takes.
size_t kv_layer_bytes(TypeId t, const AttnShape& s);

// Stores one token's K (post-RoPE) and V, each n_head_kv * head_dim floats, at slot pos.
void kv_store(const KvLayerView& kv, const AttnShape& s, int32_t pos, const float* k, const float* v);

// Per-thread scratch for attention(), sized once for a shape and thread count.
class AttnScratch {
public:
    AttnScratch() = default;
    AttnScratch(TypeId kv_type, const AttnShape& s, int n_threads);
    uint8_t* thread_base(int t) { return buf_.data() + static_cast<size_t>(t) * per_thread_; }
    size_t q_bytes = 0, scores_bytes = 0, p_bytes = 0;

private:
    size_t per_thread_ = 0;
    std::vector<uint8_t> buf_;
};

// out[t][h*head_dim + d] = Σ_j softmax_j(q_t,h · k_j) v_j[d] over slots j <= pos[t], for n_tok query rows.
// q rows (n_head * head_dim floats, q_stride apart) must already carry the 1/sqrt(head_dim) scale.
// Q is rounded to the cache's activation type before K·Q, the probabilities before V·p (fp16 for an
// F16 cache), and the softmax runs in f32, as llama.cpp does with flash attention off.
void attention(const KvLayerView& kv, const AttnShape& s, const float* q, int64_t q_stride, const int32_t* pos,
               int64_t n_tok, float* out, int64_t out_stride, AttnScratch& scratch, ThreadPool& pool);

}  // namespace gemma::ops
