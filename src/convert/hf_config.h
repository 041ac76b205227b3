// Hugging Face Gemma config.json / generation_config.json, and the HF -> GGUF tensor name and shape map.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gemma {

struct HfConfig {
    std::string path;                  // config.json, for error messages
    std::string architecture;          // "GemmaForCausalLM"
    int64_t hidden_size = 0;
    int64_t intermediate_size = 0;
    int64_t num_attention_heads = 0;
    int64_t num_key_value_heads = 0;   // defaults to num_attention_heads, as the converter does
    int64_t num_hidden_layers = 0;
    int64_t max_position_embeddings = 0;
    int64_t head_dim = 0;              // HF GemmaConfig default 256
    int64_t vocab_size = 0;            // HF GemmaConfig default 256000
    double rms_norm_eps = 1e-6;
    // Integer "<type>_token_id" entries (bos, eos, pad, ...): fallbacks for the special token ids.
    std::map<std::string, int64_t> token_ids;

    // Reads DIR/config.json. Throws gemma::Error naming the file for a missing file, invalid JSON, an
    // architecture other than GemmaForCausalLM, or a missing/impossible hyper-parameter.
    static HfConfig load(const std::string& dir);
};

// "<type>_token_id" integers of DIR/generation_config.json; empty when the file is absent.
std::map<std::string, int64_t> load_generation_token_ids(const std::string& dir);

// What an HF tensor becomes in the GGUF file.
struct TensorMapping {
    std::string gguf_name;
    std::vector<int64_t> hf_shape;  // expected shape, PyTorch order ([out, in])
    bool is_norm = false;           // *norm.weight: stored as w + 1, always F32
};

// The mapping for an HF tensor name; nullopt for tensors the converter drops (lm_head.weight, rotary
// caches). Throws gemma::Error for a name it cannot map or a layer index >= num_hidden_layers.
std::optional<TensorMapping> map_gemma_tensor(const HfConfig& cfg, const std::string& hf_name);

// Every HF tensor name a complete Gemma checkpoint has.
std::vector<std::string> gemma_hf_tensor_names(const HfConfig& cfg);

// "[2048, 256000]"
std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace gemma
