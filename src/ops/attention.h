// Causal multi-head attention (any GQA ratio, optional sliding window and soft-cap) over a KV cache, tiled with an
// online softmax in f32 (flash-attention style), batch-invariant by construction.
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
};

// Keys are visited in tiles of kAttnTile positions aligned to multiples of kAttnTile, and folded in segments of
// kAttnSegment positions (also aligned): a token's result then depends only on its position, the window and
// the cache contents, never on which other tokens share the call or how the work is split between threads.
inline constexpr int64_t kAttnTile = 64;
inline constexpr int64_t kAttnSegment = 512;

// One layer of a KV cache: K and V rows of n_head_kv * head_dim elements per cell, in the cache type. Position p
// lives in cell p % n_cells, so a sliding-window layer can keep a ring of a little more than its window.
// n_cells is a multiple of kAttnTile, so an aligned tile of positions is a contiguous run of cells.
struct KvLayerView {
    TypeId type = TypeId::F16;   // F32, F16 or Q8_0
    uint8_t* k = nullptr;        // [n_cells][n_head_kv][head_dim]
    uint8_t* v = nullptr;        // [n_cells][n_head_kv][head_dim]
    int64_t n_cells = 0;
};

// Per-layer attention facts.
struct AttnParams {
    int64_t window = 0;      // > 0: a query at p sees keys p - window + 1 .. p; 0: all of 0 .. p
    float softcap = 0.0f;    // > 0: scores become softcap * tanh(score / softcap) (Gemma 2)
    // false: llama.cpp's default numerics (flash attention off): the softmax over all of a token's keys, its
    // probabilities rounded to the cache's activation type (fp16 for an F16 cache) before they weight V.
    // true: flash-attention numerics: an online softmax per segment, unnormalised f32 weights, one division at the
    // end (llama.cpp -fa; it differs from the default by about what llama.cpp's own -fa does).
    bool flash = false;
    // Tests only: 1 runs a work item's segments in that item, 2 spreads segments over items; 0 picks by size.
    // Both give the same bits.
    int force_mode = 0;
};

bool kv_type_supported(TypeId t);
// Bytes one layer's K (or V) takes with n_cells cells.
size_t kv_layer_bytes(TypeId t, const AttnShape& s, int64_t n_cells);

// Stores one token's K (post-RoPE) and V, each n_head_kv * head_dim floats, in the cell of position pos.
void kv_store(const KvLayerView& kv, const AttnShape& s, int32_t pos, const float* k, const float* v);

// Scratch for attention(); grows on first use to what a shape needs and is reused afterwards.
class AttnScratch {
public:
    // Grows (never shrinks) to n_threads areas of per_thread floats and one shared area; called outside workers.
    void reserve(int n_threads, size_t per_thread, size_t shared);
    float* thread_floats(int thread, size_t n);  // per-thread area of at least n floats
    float* shared_floats(size_t n);              // one area of at least n floats
    size_t bytes() const;

private:
    std::vector<std::vector<float>> per_thread_;
    std::vector<float> shared_;
};

// out[t][h*head_dim + d] = Σ_j softmax_j(s_tj) v_j[d] over the keys token t sees (positions lo_t .. pos[t]),
// s_tj = q_t,h · k_j (then soft-capped), for n_tok query rows of one sequence. q rows (n_head * head_dim floats,
// q_stride apart) must already carry the attention scale. Q is rounded to the cache's activation type for
// K·Q (as llama.cpp does); V is accumulated in f32. Every key a token sees must be in the cache (stored before the
// call; a ring must not have overwritten it).
void attention(const KvLayerView& kv, const AttnShape& s, const AttnParams& p, const float* q, int64_t q_stride,
               const int32_t* pos, int64_t n_tok, float* out, int64_t out_stride, AttnScratch& scratch,
               ThreadPool& pool);

}  // namespace gemma::ops
