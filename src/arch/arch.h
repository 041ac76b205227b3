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
};

const ArchDesc& arch_desc(Family f);
// By general.architecture; nullptr when it is not a Gemma text family.
const ArchDesc* find_arch(std::string_view gguf_arch);
// By a Hugging Face config.json architecture class; nullptr when unknown.
const ArchDesc* find_arch_by_hf_class(std::string_view hf_class);
// "gemma, gemma2, gemma3": for error messages.
std::string supported_archs();

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
