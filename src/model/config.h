// Gemma hyper-parameters, read from GGUF metadata only ({arch}.* keys, llama.cpp's defaults), so every size is data.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "arch/arch.h"

namespace gemma {

class GgufFile;

// What differs between the layers of one model (Gemma 2/3 alternate sliding-window and global attention).
struct LayerConfig {
    bool sliding = false;
    int64_t window = 0;            // sliding layers: a query at p sees keys p - window + 1 .. p; 0: all of 0 .. p
    float rope_base = 10000.0f;
    float rope_freq_scale = 1.0f;  // linear RoPE scaling: positions are multiplied by this
};

struct ModelConfig {
    const ArchDesc* desc = nullptr;  // the family description (never null after from_gguf)
    std::string arch;          // general.architecture ("gemma", "gemma2", "gemma3")
    std::string name;          // general.name, if any
    int64_t n_ctx_train = 0;   // {arch}.context_length
    int64_t n_embd = 0;        // {arch}.embedding_length
    int64_t n_layer = 0;       // {arch}.block_count
    int64_t n_ff = 0;          // {arch}.feed_forward_length
    int64_t n_head = 0;        // {arch}.attention.head_count
    int64_t n_head_kv = 0;     // {arch}.attention.head_count_kv (default n_head)
    int64_t head_dim = 0;      // {arch}.attention.key_length (default n_embd / n_head)
    int64_t head_dim_v = 0;    // {arch}.attention.value_length (default head_dim)
    int64_t n_rot = 0;         // {arch}.rope.dimension_count (default head_dim)
    int64_t n_vocab = 0;       // rows of token_embd.weight
    float rms_eps = 1e-6f;     // {arch}.attention.layer_norm_rms_epsilon
    float rope_freq_base = 10000.0f;  // {arch}.rope.freq_base: the global layers' base
    int64_t n_swa = 0;         // {arch}.attention.sliding_window (0: no sliding layers)
    float attn_softcap = 0.0f;   // {arch}.attn_logit_softcapping: s = c * tanh(s / c) on the scores; 0: off
    float final_softcap = 0.0f;  // {arch}.final_logit_softcapping on the logits; 0: off
    float attn_scale = 0.0f;     // applied to q after RoPE (1/sqrt(head_dim), or the 27B rule of SPEC-GEMMA2-3 §4)
    std::vector<LayerConfig> layers;  // [n_layer]

    Family family() const { return desc->family; }
    bool has_tensor(TensorId id) const { return find_tensor_def(*desc, id) != nullptr; }
    int64_t n_gqa() const { return n_head / n_head_kv; }
    int64_t q_dim() const { return n_head * head_dim; }      // width of the query projection
    int64_t kv_dim() const { return n_head_kv * head_dim; }  // width of the key/value projections
    TensorDims dims() const { return {n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab}; }
    bool any_sliding() const;
    // sqrtf(n_embd) in f32, never rounded further (llama.cpp's embedding scale).
    float embd_scale() const;
    float q_scale() const { return attn_scale; }
    std::string describe() const;  // one line for logs and `gemma info`

    // Throws gemma::Error naming the file and the key when a key is missing, has the wrong type or an
    // impossible value, or when the architecture is not a Gemma text family.
    static ModelConfig from_gguf(const GgufFile& f);
};

}  // namespace gemma
