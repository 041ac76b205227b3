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

// Norm weights already carry Gemma's +1. Tensors a family lacks stay null (ArchDesc::tensors says which exist).
struct LayerWeights {
    const float* attn_norm = nullptr;  // [n_embd]
    ops::Matrix attn_q;                // [n_embd -> n_head*head_dim]
    ops::Matrix attn_k;                // [n_embd -> n_head_kv*head_dim]
    ops::Matrix attn_v;                // [n_embd -> n_head_kv*head_dim]
    const float* attn_q_norm = nullptr;  // [head_dim] Gemma 3: RMSNorm over each query head
    const float* attn_k_norm = nullptr;  // [head_dim] Gemma 3: RMSNorm over each key head
    ops::Matrix attn_output;           // [n_head*head_dim -> n_embd]
    const float* post_attn_norm = nullptr;  // [n_embd] Gemma 2/3: on the attention branch before the residual add
    const float* ffn_norm = nullptr;   // [n_embd]
    ops::Matrix ffn_gate;              // [n_embd -> n_ff]
    ops::Matrix ffn_up;                // [n_embd -> n_ff]
    ops::Matrix ffn_down;              // [n_ff -> n_embd]
    const float* post_ffw_norm = nullptr;  // [n_embd] Gemma 2/3: on the FFN branch before the residual add
};

struct ModelWeights {
    ops::Matrix token_embd;            // [n_embd, n_vocab]: the embedding table (row = token)
    ops::Matrix output;                // [n_embd -> n_vocab]: token_embd itself unless output.weight exists
    const float* output_norm = nullptr;  // [n_embd]
    std::vector<LayerWeights> layers;

    // Binds every tensor the family's description lists (which `f` must outlive). Throws gemma::Error naming the
    // tensor and the expected vs actual shape, an unsupported type, or a tensor the family does not have.
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
