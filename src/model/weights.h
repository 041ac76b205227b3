// Gemma weights bound in place from a GGUF mapping, every tensor's shape and type checked once at load.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "model/config.h"
#include "ops/matmul.h"

namespace gemma {

class GgufFile;

struct LayerWeights {
    const float* attn_norm = nullptr;  // [n_embd], norm weights already carry Gemma's +1
    ops::Matrix attn_q;                // [n_embd -> n_head*head_dim]
    ops::Matrix attn_k;                // [n_embd -> n_head_kv*head_dim]
    ops::Matrix attn_v;                // [n_embd -> n_head_kv*head_dim]
    ops::Matrix attn_output;           // [n_head*head_dim -> n_embd]
    const float* ffn_norm = nullptr;   // [n_embd]
    ops::Matrix ffn_gate;              // [n_embd -> n_ff]
    ops::Matrix ffn_up;                // [n_embd -> n_ff]
    ops::Matrix ffn_down;              // [n_ff -> n_embd]
};

struct ModelWeights {
    ops::Matrix token_embd;            // [n_embd, n_vocab]: the embedding table (row = token)
    ops::Matrix output;                // [n_embd -> n_vocab]: token_embd itself unless output.weight exists
    const float* output_norm = nullptr;  // [n_embd]
    std::vector<LayerWeights> layers;

    // Binds every tensor of `f` (which must outlive the weights). Throws gemma::Error naming the tensor
    // and the expected vs actual shape, or an unsupported type.
    static ModelWeights bind(const GgufFile& f, const ModelConfig& c);

    // Norm vectors stored in another type than F32 are widened into here (they are tiny).
    std::vector<std::vector<float>> owned;

    // Copies every matrix the kernels have a row-interleaved layout for (kernels::packable: Q4_0, Q8_0, Q4_K,
    // Q5_K; rows a multiple of kernels::kPackRows) into packed buffers owned here, and points the matrix at them.
    // token_embd stays in the mapping (the embedding lookup reads plain rows); a tied output gets its own
    // packed copy. Packing runs on all hardware threads. Returns the bytes packed.
    size_t repack();
    std::vector<LargeBuffer> packed_storage;
};

}  // namespace gemma
