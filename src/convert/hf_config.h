// Hugging Face Gemma config.json / generation_config.json, and the HF -> GGUF tensor name and shape map.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arch/arch.h"
#include "convert/gguf_hparams.h"

namespace gemma {

struct HfConfig {
    std::string path;                  // config.json, for error messages
    std::string architecture;          // "Gemma3ForConditionalGeneration"
    const ArchDesc* arch = nullptr;    // the family (never null after load)
    bool multimodal = false;           // a text_config: the text tower's parameters were read from it
    int64_t hidden_size = 0;
    int64_t intermediate_size = 0;
    int64_t num_attention_heads = 0;
    int64_t num_key_value_heads = 0;   // defaults to num_attention_heads (Gemma 3: 4), as the converter does
    int64_t num_hidden_layers = 0;
    int64_t max_position_embeddings = 0;
    int64_t head_dim = 0;              // HF default 256
    int64_t vocab_size = 0;            // HF default 256000 (Gemma 3: 262208)
    double rms_norm_eps = 1e-6;
    // Gemma 2 and 3; 0 where the family or the checkpoint has none.
    int64_t sliding_window = 0;
    std::vector<bool> sliding;         // per layer, from layer_types or sliding_window_pattern (families with windows)
    double rope_theta = 0;             // global layers' RoPE base
    double rope_local_base_freq = 0;   // sliding layers' RoPE base
    double rope_scaling_factor = 0;    // linear scaling of the global layers
    double attn_softcap = 0, final_softcap = 0;
    double query_pre_attn_scalar = 0;  // absent: 0
    // Integer "<type>_token_id" entries (bos, eos, pad, ...): fallbacks for the special token ids.
    std::map<std::string, int64_t> token_ids;
    std::vector<std::string> warnings;  // facts worth telling the user that do not stop the conversion

    // Reads DIR/config.json (a text_config's entries override the top level's, as llama.cpp merges them).
    // Throws gemma::Error naming the file for a missing file, invalid JSON, an unsupported architecture, or a
    // missing/impossible hyper-parameter.
    static HfConfig load(const std::string& dir);

    TensorDims dims() const;
    // The GGUF keys this checkpoint gets (general.file_type aside).
    GgufHparams gguf_hparams() const;
};

// "<type>_token_id" integers of DIR/generation_config.json; empty when the file is absent.
std::map<std::string, int64_t> load_generation_token_ids(const std::string& dir);

// What an HF tensor becomes in the GGUF file.
struct TensorMapping {
    std::string gguf_name;
    std::vector<int64_t> hf_shape;  // expected shape, PyTorch order ([out, in])
    bool is_norm = false;           // *norm.weight: stored as w + 1, always F32
    const TensorDef* def = nullptr;
};

// The text model's name for a tensor of a multimodal checkpoint ("language_model.model.norm.weight" ->
// "model.norm.weight"); other names unchanged.
std::string text_tensor_name(const HfConfig& cfg, std::string_view hf_name);

// For a tensor of another tower (vision encoder, projector), which the text model leaves out, the prefix that
// says so ("vision_tower."); else empty.
std::string_view other_tower_of(const HfConfig& cfg, std::string_view hf_name);

// The mapping for an HF tensor name (either prefix spelling); nullopt for tensors the converter drops
// (lm_head.weight, rotary caches). Throws gemma::Error for a name it cannot map or a layer index >=
// num_hidden_layers.
std::optional<TensorMapping> map_gemma_tensor(const HfConfig& cfg, const std::string& hf_name);

// Every HF tensor name (text-model spelling) a complete checkpoint has.
std::vector<std::string> gemma_hf_tensor_names(const HfConfig& cfg);

// "[2048, 256000]"
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace gemma
