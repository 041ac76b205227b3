// Gemma hyper-parameters, read from GGUF metadata only (the gemma.* keys), so every size is data.
#pragma once
#include <cstdint>
#include <string>

namespace gemma {

class GgufFile;

struct ModelConfig {
    std::string arch;          // general.architecture ("gemma")
    std::string name;          // general.name, if any
    int64_t n_ctx_train = 0;   // gemma.context_length
    int64_t n_embd = 0;        // gemma.embedding_length
    int64_t n_layer = 0;       // gemma.block_count
    int64_t n_ff = 0;          // gemma.feed_forward_length
    int64_t n_head = 0;        // gemma.attention.head_count
    int64_t n_head_kv = 0;     // gemma.attention.head_count_kv (default n_head)
    int64_t head_dim = 0;      // gemma.attention.key_length (default n_embd / n_head)
    int64_t head_dim_v = 0;    // gemma.attention.value_length (default head_dim)
    int64_t n_rot = 0;         // gemma.rope.dimension_count (default head_dim)
    int64_t n_vocab = 0;       // rows of token_embd.weight
    float rms_eps = 1e-6f;     // gemma.attention.layer_norm_rms_epsilon
    float rope_freq_base = 10000.0f;  // gemma.rope.freq_base (absent in Gemma files)

    int64_t n_gqa() const { return n_head / n_head_kv; }
    int64_t q_dim() const { return n_head * head_dim; }      // width of the query projection
    int64_t kv_dim() const { return n_head_kv * head_dim; }  // width of the key/value projections
    // sqrtf(n_embd) in f32, never rounded further (llama.cpp's embedding scale).
    float embd_scale() const;
    // 1/sqrtf(head_dim), applied to q after RoPE.
    float q_scale() const;
    std::string describe() const;  // one line for logs and `gemma info`

    // Throws gemma::Error naming the file and the key when a key is missing, has the wrong type or
    // an impossible value, or when the architecture is not Gemma 1.
    static ModelConfig from_gguf(const GgufFile& f);
};

}  // namespace gemma
