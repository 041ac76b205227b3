// Gemma text families as data: per-family defaults, HF classes, and the one tensor table that loading, convert,
// synth, imatrix and the quantize mixes read.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace gemma {

enum class Family : uint8_t { Gemma1, Gemma2, Gemma3 };

// Every tensor kind any Gemma text family has. A family lists the ones it uses (ArchDesc::tensors).
enum class TensorId : uint8_t {
    TokenEmbd, Output, OutputNorm,
    AttnNorm, AttnQ, AttnK, AttnV, AttnQNorm, AttnKNorm, AttnOutput, PostAttnNorm,
    FfnNorm, FfnGate, FfnUp, FfnDown, PostFfwNorm,
    Count
};

// A tensor dimension in terms of the hyper-parameters (resolved by tensor_dim()).
enum class Dim : uint8_t { One, Embd, QDim, KvDim, Ff, HeadDim, Vocab };

struct TensorDef {
    TensorId id;
    const char* gguf;   // llama.cpp's name; per-layer ones get "blk.N." in front ("attn_q.weight")
    const char* hf;     // Hugging Face name; per-layer ones live under "model.layers.N." ("self_attn.q_proj.weight")
    bool per_layer;
    Dim ne0, ne1;       // ggml order: ne0 is the row length (the matmul input width); ne1 = One for vectors
    bool norm;          // an RMSNorm gain: stored F32 with Gemma's +1 already added (the converter adds it)
    bool optional;      // may be absent (output.weight: the output is then the tied token_embd)
    // Matmuls: the named activation they multiply (the forward pass's debug-hook name, "blk.N." omitted), so
    // imatrix statistics of one input serve every weight reading it. nullptr for norms and the embedding.
    const char* input;
};

// A model size of a family (SPEC-GEMMA2-3 §1, or a tiny one for tests): what `synth` and `synth-hf` write.
struct ModelShape {
    const char* name;          // "gemma3-1b"
    int64_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
    int64_t n_ctx;             // context length
    int64_t window = 0;        // sliding window of the sliding layers (families that have them)
    float rope_scale = 0.0f;   // linear RoPE factor of the global layers; 0: none
};

// config.json entries a checkpoint may leave out, with the values Hugging Face's config class (and so
// llama.cpp's converter) uses for them; 0: required.
struct HfDefaults {
    int64_t max_position_embeddings = 0;
    int64_t num_attention_heads = 0;
    int64_t num_key_value_heads = 0;  // 0: num_attention_heads
    int64_t head_dim = 256;
    int64_t vocab_size = 256000;
    int64_t sliding_window = 0;
    double rms_norm_eps = 0.0;
};

// A tensor-name prefix of a multimodal checkpoint's text tower and what it stands for in a text-only one.
struct HfRename {
    std::string_view from, to;
};

struct ArchDesc {
    Family family;
    const char* gguf_arch;            // general.architecture: "gemma", "gemma2", "gemma3"
    const char* label;                // "Gemma 2", for messages
    std::span<const std::string_view> hf_classes;  // config.json "architectures" this converter maps here
    std::span<const TensorDef> tensors;

    // GGUF hyper-parameter defaults where a key is absent (llama.cpp's).
    float rope_base = 10000.0f;       // {arch}.rope.freq_base (global layers)
    float rope_base_swa = 0.0f;       // {arch}.rope.freq_base_swa; 0: the global base
    int64_t window = 0;               // {arch}.attention.sliding_window; 0: every layer global
    int swa_period = 0;               // sliding_window_pattern period: layer il slides iff il % n < n - 1
    float attn_softcap = 0.0f;        // {arch}.attn_logit_softcapping; 0: none
    float final_softcap = 0.0f;       // {arch}.final_logit_softcapping; 0: none
    // The 27B sizes scale queries by 1/sqrt(n_embd / n_head), not 1/sqrt(head_dim); a GGUF has no key for
    // it, so llama.cpp recognises them by their layer count (0: never).
    int64_t big_model_layers = 0;
    bool chat_trims_content = false;  // Gemma 3's template trims each message and folds a system turn itself

    // Hugging Face checkpoints (`convert`, `synth-hf`).
    std::span<const std::string_view> hf_model_types{};  // config.json "model_type", by hf_classes position
    std::string_view hf_multimodal_class{};  // the class of hf_classes whose text tower this family is, if any
    std::span<const HfRename> hf_renames{};  // its text tower's tensor prefixes ("language_model.model." -> "model.")
    std::span<const std::string_view> hf_other_towers{};  // its other towers' tensor prefixes: left out
    HfDefaults hf{};
    bool rope_scaling = false;       // linear RoPE scaling of the global layers (rope.scaling.type/factor)
    bool gguf_rope_base = false;     // the GGUF carries {arch}.rope.freq_base
    bool trim_vocab = false;         // token_embd keeps the tokenizer's rows only (Gemma 3: 262208 -> 262144)
    int32_t gguf_eot_id = -1;        // tokenizer.ggml.eot_token_id the converter sets; -1: none

    // Synthetic models (`synth`, `synth-hf`): sizes, and the vocabulary (a GGUF, relative to golden/).
    std::span<const ModelShape> shapes{};
    const char* synth_vocab = "vocab/gemma-vocab.gguf";
};

const ArchDesc& arch_desc(Family f);
// Every family, in Family order.
std::span<const ArchDesc> all_archs();
// By general.architecture; nullptr when it is not a Gemma text family.
const ArchDesc* find_arch(std::string_view gguf_arch);
// By a Hugging Face config.json architecture class; nullptr when unknown.
const ArchDesc* find_arch_by_hf_class(std::string_view hf_class);
// "gemma, gemma2, gemma3": for error messages.
std::string supported_archs();
// "GemmaForCausalLM, Gemma2ForCausalLM, ...": for error messages.
std::string supported_hf_classes();
// By config.json "model_type" (old configs without "architectures"): the family and its class.
const ArchDesc* find_arch_by_hf_model_type(std::string_view model_type, std::string_view* hf_class);
// A shape of any family by name, with its family; nullptr when unknown.
const ModelShape* find_shape(std::string_view name, const ArchDesc** arch);
// "gemma-2b, gemma-7b, tiny, gemma2-2b, ...": every shape name, for help and errors.
std::string shape_names();

const TensorDef* find_tensor_def(const ArchDesc& a, TensorId id);
// "blk.3.attn_q.weight" for layer 3 (layer ignored for global tensors).
std::string gguf_tensor_name(const TensorDef& d, int64_t layer);
// The definition a GGUF tensor name refers to, and its layer (-1 for global tensors); nullptr if none.
const TensorDef* match_gguf_tensor(const ArchDesc& a, std::string_view name, int64_t* layer);

// The hyper-parameters tensor shapes depend on.
struct TensorDims {
    int64_t n_embd = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0, n_vocab = 0;
};
int64_t tensor_dim(Dim d, const TensorDims& dims);

}  // namespace gemma
