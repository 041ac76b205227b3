// The Gemma family descriptions (SPEC.md, SPEC-GEMMA2-3.md): tensors, HF names and llama.cpp's key defaults.
#include "arch/arch.h"

#include <array>
#include <cstring>

namespace gemma {
namespace {

using T = TensorId;
using D = Dim;

// Matmul inputs, as the forward pass names them for its debug hook (llama.cpp's callback names).
constexpr const char* kAttnIn = "attn_norm";
constexpr const char* kAttnOutIn = "kqv_out";
constexpr const char* kFfnIn = "ffn_norm";
constexpr const char* kDownIn = "ffn_geglu";

constexpr TensorDef kTokenEmbd{T::TokenEmbd, "token_embd.weight", "model.embed_tokens.weight", false, D::Embd, D::Vocab,
                               false, false, nullptr};
constexpr TensorDef kOutput{T::Output, "output.weight", "lm_head.weight", false, D::Embd, D::Vocab, false, true, nullptr};
constexpr TensorDef kOutputNorm{T::OutputNorm, "output_norm.weight", "model.norm.weight", false, D::Embd, D::One, true,
                                false, nullptr};

constexpr TensorDef norm(T id, const char* gguf, const char* hf, D n = D::Embd) {
    return {id, gguf, hf, true, n, D::One, true, false, nullptr};
}
constexpr TensorDef mat(T id, const char* gguf, const char* hf, D in, D out, const char* input) {
    return {id, gguf, hf, true, in, out, false, false, input};
}

constexpr TensorDef kQ = mat(T::AttnQ, "attn_q.weight", "self_attn.q_proj.weight", D::Embd, D::QDim, kAttnIn);
constexpr TensorDef kK = mat(T::AttnK, "attn_k.weight", "self_attn.k_proj.weight", D::Embd, D::KvDim, kAttnIn);
constexpr TensorDef kV = mat(T::AttnV, "attn_v.weight", "self_attn.v_proj.weight", D::Embd, D::KvDim, kAttnIn);
constexpr TensorDef kO = mat(T::AttnOutput, "attn_output.weight", "self_attn.o_proj.weight", D::QDim, D::Embd, kAttnOutIn);
constexpr TensorDef kGate = mat(T::FfnGate, "ffn_gate.weight", "mlp.gate_proj.weight", D::Embd, D::Ff, kFfnIn);
constexpr TensorDef kUp = mat(T::FfnUp, "ffn_up.weight", "mlp.up_proj.weight", D::Embd, D::Ff, kFfnIn);
constexpr TensorDef kDown = mat(T::FfnDown, "ffn_down.weight", "mlp.down_proj.weight", D::Ff, D::Embd, kDownIn);
constexpr TensorDef kAttnNorm = norm(T::AttnNorm, "attn_norm.weight", "input_layernorm.weight");

// Gemma 1: HF's post_attention_layernorm is the pre-FFN norm.
constexpr std::array kGemma1Tensors = {
    kTokenEmbd, kOutput, kOutputNorm, kAttnNorm, kQ, kK, kV, kO,
    norm(T::FfnNorm, "ffn_norm.weight", "post_attention_layernorm.weight"), kGate, kUp, kDown,
};

// Gemma 2 and 3 norm both branches before and after; the same HF name now means the post-attention norm.
constexpr TensorDef kPostAttn = norm(T::PostAttnNorm, "post_attention_norm.weight", "post_attention_layernorm.weight");
constexpr TensorDef kFfnNorm2 = norm(T::FfnNorm, "ffn_norm.weight", "pre_feedforward_layernorm.weight");
constexpr TensorDef kPostFfw = norm(T::PostFfwNorm, "post_ffw_norm.weight", "post_feedforward_layernorm.weight");

constexpr std::array kGemma2Tensors = {
    kTokenEmbd, kOutput, kOutputNorm, kAttnNorm, kQ, kK, kV, kO, kPostAttn, kFfnNorm2, kGate, kUp, kDown, kPostFfw,
};

// Gemma 3 adds RMSNorm over each query and key head (QK-norm).
constexpr std::array kGemma3Tensors = {
    kTokenEmbd, kOutput, kOutputNorm, kAttnNorm, kQ, kK, kV,
    norm(T::AttnQNorm, "attn_q_norm.weight", "self_attn.q_norm.weight", D::HeadDim),
    norm(T::AttnKNorm, "attn_k_norm.weight", "self_attn.k_norm.weight", D::HeadDim),
    kO, kPostAttn, kFfnNorm2, kGate, kUp, kDown, kPostFfw,
};

constexpr std::array<std::string_view, 1> kGemma1Hf = {"GemmaForCausalLM"};
constexpr std::array<std::string_view, 1> kGemma2Hf = {"Gemma2ForCausalLM"};
constexpr std::array<std::string_view, 2> kGemma3Hf = {"Gemma3ForCausalLM", "Gemma3ForConditionalGeneration"};

const std::array<ArchDesc, 3>& descs() {
    static const std::array<ArchDesc, 3> d = [] {
        std::array<ArchDesc, 3> a{};
        a[0] = ArchDesc{Family::Gemma1, "gemma", "Gemma 1", kGemma1Hf, kGemma1Tensors};
        a[1] = ArchDesc{Family::Gemma2, "gemma2", "Gemma 2", kGemma2Hf, kGemma2Tensors};
        a[1].window = 4096;
        a[1].swa_period = 2;
        a[1].attn_softcap = 50.0f;
        a[1].final_softcap = 30.0f;
        a[1].big_model_layers = 46;
        a[2] = ArchDesc{Family::Gemma3, "gemma3", "Gemma 3", kGemma3Hf, kGemma3Tensors};
        a[2].rope_base = 1000000.0f;
        a[2].rope_base_swa = 10000.0f;
        a[2].swa_period = 6;
        a[2].big_model_layers = 62;
        a[2].chat_trims_content = true;
        return a;
    }();
    return d;
}

}  // namespace

const ArchDesc& arch_desc(Family f) { return descs()[static_cast<size_t>(f)]; }

const ArchDesc* find_arch(std::string_view gguf_arch) {
    for (const ArchDesc& a : descs())
        if (gguf_arch == a.gguf_arch) return &a;
    return nullptr;
}

const ArchDesc* find_arch_by_hf_class(std::string_view hf_class) {
    for (const ArchDesc& a : descs())
        for (std::string_view c : a.hf_classes)
            if (c == hf_class) return &a;
    return nullptr;
}

std::string supported_archs() {
    std::string s;
    for (const ArchDesc& a : descs()) s += (s.empty() ? "" : ", ") + std::string(a.gguf_arch);
    return s;
}

const TensorDef* find_tensor_def(const ArchDesc& a, TensorId id) {
    for (const TensorDef& d : a.tensors)
        if (d.id == id) return &d;
    return nullptr;
}

std::string gguf_tensor_name(const TensorDef& d, int64_t layer) {
    return d.per_layer ? "blk." + std::to_string(layer) + "." + d.gguf : std::string(d.gguf);
}

const TensorDef* match_gguf_tensor(const ArchDesc& a, std::string_view name, int64_t* layer) {
    int64_t il = -1;
    if (name.substr(0, 4) == "blk.") {
        size_t i = 4;
        int64_t v = 0;
        while (i < name.size() && name[i] >= '0' && name[i] <= '9' && i < 14) v = v * 10 + (name[i++] - '0');
        if (i == 4 || i >= name.size() || name[i] != '.') return nullptr;
        il = v;
        name.remove_prefix(i + 1);
    }
    for (const TensorDef& d : a.tensors) {
        if (d.per_layer != (il >= 0) || name != d.gguf) continue;
        if (layer) *layer = il;
        return &d;
    }
    return nullptr;
}

int64_t tensor_dim(Dim d, const TensorDims& x) {
    switch (d) {
        case Dim::One: return 1;
        case Dim::Embd: return x.n_embd;
        case Dim::QDim: return x.n_head * x.head_dim;
        case Dim::KvDim: return x.n_head_kv * x.head_dim;
        case Dim::Ff: return x.n_ff;
        case Dim::HeadDim: return x.head_dim;
        case Dim::Vocab: return x.n_vocab;
    }
    return 0;
}

}  // namespace gemma
