// Synthetic checkpoints' config.json (flat, or a multimodal text_config in two transformers layouts) and tokenizer files.
#include "convert/hf_synth_files.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "convert/hf_tokenizer.h"
#include "convert/sentencepiece_model.h"
#include "convert/synth.h"
#include "core/error.h"
#include "gguf/gguf.h"

namespace gemma {

namespace fs = std::filesystem;
using json = nlohmann::json;

void write_text_file(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
    if (!out) throw_error(path + ": cannot write");
}

namespace {

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw_error(path + ": cannot write");
}

// tokenizer.json + tokenizer_config.json copied (and a tokenizer.model built from them on request).
int64_t copy_hf_files(const HfSynthOptions& opt, const std::string& vdir) {
    const json tj = parse_tokenizer_json(vdir + "/tokenizer.json");
    int64_t n = 0;
    if (tj.contains("model") && tj["model"].contains("vocab") && tj["model"]["vocab"].is_object())
        for (auto it = tj["model"]["vocab"].begin(); it != tj["model"]["vocab"].end(); ++it)
            n = std::max(n, it.value().get<int64_t>() + 1);
    if (n == 0) throw_error(vdir + "/tokenizer.json: empty vocabulary");
    std::error_code ec;
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
        fs::copy_file(vdir + "/" + f, opt.dir + "/" + f, fs::copy_options::overwrite_existing, ec);
        if (ec) throw_error(opt.dir + "/" + f + ": cannot copy from " + vdir + ": " + ec.message());
        // The golden sources are read-only; the copies must not be, or the next run could not replace them.
        fs::permissions(opt.dir + "/" + f, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                        fs::perms::others_read, ec);
    }
    if (opt.with_spm) write_bytes(opt.dir + "/tokenizer.model", serialize_sentencepiece_model(sentencepiece_pieces_from_hf(vdir)));
    return n;
}

// tokenizer.model + tokenizer_config.json holding what a GGUF vocabulary holds: pieces, scores and types, the
// control and user-defined tokens as added tokens (so the converter types them back), special tokens, flags and
// the chat template. The multimodal layouts add Gemma 3's <image_soft_token> past the tokenizer, as published.
int64_t write_from_gguf(const HfSynthOptions& opt, const std::string& path) {
    const auto g = GgufFile::open(path);
    const GgufValue* toks = g->find("tokenizer.ggml.tokens");
    const GgufValue* scores = g->find("tokenizer.ggml.scores");
    const GgufValue* types = g->find("tokenizer.ggml.token_type");
    if (!toks || !toks->is_array() || toks->elem_type != GgufType::STRING || !scores || !scores->is_array() ||
        scores->elem_type != GgufType::FLOAT32 || scores->count != toks->count || !types || !types->is_array() ||
        types->elem_type != GgufType::INT32 || types->count != toks->count)
        throw_error(path + ": no tokenizer.ggml tokens, scores and token_type arrays of one length");
    const auto full = static_cast<int64_t>(toks->count);
    const int64_t n = opt.n_vocab > 0 ? std::min(opt.n_vocab, full) : full;
    std::vector<SpPiece> pieces(static_cast<size_t>(n));
    json added = json::object();
    for (int64_t i = 0; i < n; ++i) {
        const auto t = types->elem<int32_t>(static_cast<uint64_t>(i));
        SpPiece& p = pieces[static_cast<size_t>(i)];
        p.piece = toks->strs[static_cast<size_t>(i)];
        p.score = scores->elem<float>(static_cast<uint64_t>(i));
        p.type = t >= 1 && t <= 6 ? static_cast<SpType>(t) : SpType::Normal;
        if (p.type == SpType::Control || p.type == SpType::UserDefined || p.type == SpType::Unknown)
            added[std::to_string(i)] = {{"content", p.piece}, {"lstrip", false}, {"normalized", false}, {"rstrip", false},
                                        {"single_word", false}, {"special", p.type != SpType::UserDefined}};
    }
    if (opt.layout != HfLayout::CausalLM)
        added[std::to_string(n)] = {{"content", "<image_soft_token>"}, {"lstrip", false}, {"normalized", false},
                                    {"rstrip", false}, {"single_word", false}, {"special", true}};
    write_bytes(opt.dir + "/tokenizer.model", serialize_sentencepiece_model(pieces));

    json tc = {{"added_tokens_decoder", added}, {"clean_up_tokenization_spaces", false}, {"sp_model_kwargs", json::object()},
               {"spaces_between_special_tokens", false}, {"tokenizer_class", "GemmaTokenizer"},
               {"use_default_system_prompt", false}};
    tc["add_bos_token"] = g->get_bool("tokenizer.ggml.add_bos_token", true);
    tc["add_eos_token"] = g->get_bool("tokenizer.ggml.add_eos_token", false);
    for (const auto& [key, name] : {std::pair{"bos", "bos"}, {"eos", "eos"}, {"unknown", "unk"}, {"padding", "pad"}}) {
        const std::string k = std::string("tokenizer.ggml.") + key + "_token_id";
        if (!g->find(k)) continue;
        const uint64_t id = g->get_uint(k);
        if (id < static_cast<uint64_t>(n)) tc[std::string(name) + "_token"] = toks->strs[static_cast<size_t>(id)];
    }
    if (g->find("tokenizer.chat_template")) tc["chat_template"] = g->get_string("tokenizer.chat_template");
    write_text_file(opt.dir + "/tokenizer_config.json", tc.dump(2) + "\n");
    return n;
}

}  // namespace

int64_t write_hf_tokenizer_files(const HfSynthOptions& opt, const ArchDesc& a) {
    std::string gguf = opt.vocab_gguf;
    // Families with Gemma 1's vocabulary get the HF files it was made from (they carry the merges too).
    const bool gemma1_vocab = std::string_view(a.synth_vocab) == arch_desc(Family::Gemma1).synth_vocab;
    if (gguf.empty() && opt.vocab_dir.empty() && !gemma1_vocab) gguf = default_synth_vocab(a);
    if (!gguf.empty()) return write_from_gguf(opt, gguf);
    if (opt.n_vocab > 0) throw_error("synth-hf: --n-vocab needs a GGUF vocabulary (--vocab FILE.gguf)");
    return copy_hf_files(opt, opt.vocab_dir.empty() ? default_hf_vocab_dir() : opt.vocab_dir);
}

std::string hf_layout_name(HfLayout layout, const std::string& n) {
    // transformers' layouts of a ForConditionalGeneration model (4.5x, then 5.x).
    if (layout == HfLayout::CausalLM || n.rfind("model.", 0) != 0) return n;
    return (layout == HfLayout::Multimodal ? "language_model.model." : "model.language_model.") + n.substr(6);
}

json hf_synth_config(const ArchDesc& a, const ModelShape& s, HfLayout layout, int64_t vocab_size, int64_t n_tokens,
                     const char* torch_dtype) {
    const GgufHparams h = synth_hparams(a, s);
    json t = {
        {"architectures", {std::string(a.hf_classes[0])}}, {"attention_bias", false}, {"attention_dropout", 0.0},
        {"bos_token_id", 2}, {"eos_token_id", 1}, {"head_dim", h.head_dim}, {"hidden_act", "gelu"},
        {"hidden_activation", "gelu_pytorch_tanh"}, {"hidden_size", h.n_embd}, {"initializer_range", 0.02},
        {"intermediate_size", h.n_ff}, {"max_position_embeddings", h.n_ctx}, {"model_type", std::string(a.hf_model_types[0])},
        {"num_attention_heads", h.n_head}, {"num_hidden_layers", h.n_layer}, {"num_key_value_heads", h.n_head_kv},
        {"pad_token_id", 0}, {"rms_norm_eps", h.rms_eps}, {"rope_scaling", nullptr}, {"rope_theta", a.rope_base},
        {"torch_dtype", torch_dtype}, {"transformers_version", "4.38.0"}, {"use_cache", true}, {"vocab_size", vocab_size}};
    if (a.swa_period > 0) {
        t["sliding_window"] = h.window;
        t["sliding_window_pattern"] = a.swa_period;
        t["cache_implementation"] = "hybrid";
    }
    if (a.attn_softcap > 0) t["attn_logit_softcapping"] = a.attn_softcap;
    if (a.final_softcap > 0) t["final_logit_softcapping"] = a.final_softcap;
    if (a.big_model_layers > 0)
        t["query_pre_attn_scalar"] = h.n_layer == a.big_model_layers ? h.n_embd / h.n_head : h.head_dim;
    if (a.rope_base_swa > 0) t["rope_local_base_freq"] = a.rope_base_swa;
    if (h.rope_scale > 0) t["rope_scaling"] = {{"rope_type", "linear"}, {"factor", h.rope_scale}};
    if (layout == HfLayout::CausalLM) return t;

    for (const char* k : {"architectures", "bos_token_id", "eos_token_id", "pad_token_id", "torch_dtype",
                          "transformers_version", "use_cache", "initializer_range"})
        t.erase(k);
    if (layout == HfLayout::Multimodal) {
        // transformers 4.5x writes only what differs from Gemma3TextConfig's defaults, as in gemma-3-4b's config.
        const HfDefaults& d = a.hf;
        auto drop_if = [&](const char* k, const json& def) {
            if (t.contains(k) && t[k] == def) t.erase(k);
        };
        drop_if("num_attention_heads", d.num_attention_heads);
        drop_if("num_key_value_heads", d.num_key_value_heads);
        drop_if("head_dim", d.head_dim);
        drop_if("max_position_embeddings", d.max_position_embeddings);
        drop_if("vocab_size", d.vocab_size);
        drop_if("rms_norm_eps", d.rms_norm_eps);
        drop_if("rope_theta", a.rope_base);
        drop_if("rope_local_base_freq", a.rope_base_swa);
        drop_if("query_pre_attn_scalar", d.head_dim);
        drop_if("sliding_window_pattern", a.swa_period);
        for (const char* k : {"attention_bias", "attention_dropout", "hidden_act", "hidden_activation", "cache_implementation"})
            t.erase(k);
    } else {
        // transformers 5: per-layer types and RoPE parameters per attention kind.
        json lt = json::array();
        for (bool sl : default_sliding_layers(a, h.n_layer)) lt.push_back(sl ? "sliding_attention" : "full_attention");
        t["layer_types"] = lt;
        json full = {{"rope_type", "default"}, {"rope_theta", a.rope_base}};
        if (h.rope_scale > 0) full = {{"rope_type", "linear"}, {"factor", h.rope_scale}, {"rope_theta", a.rope_base}};
        t["rope_parameters"] = {{"full_attention", full},
                                {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", a.rope_base_swa}}}};
        for (const char* k : {"rope_theta", "rope_local_base_freq", "rope_scaling", "sliding_window_pattern"}) t.erase(k);
    }
    std::string_view top_type = a.hf_model_types.back();
    for (size_t i = 0; i < a.hf_classes.size() && i < a.hf_model_types.size(); ++i)
        if (a.hf_classes[i] == a.hf_multimodal_class) top_type = a.hf_model_types[i];
    return {{"architectures", {std::string(a.hf_multimodal_class)}}, {"boi_token_index", 255999}, {"eoi_token_index", 256000},
            {"eos_token_id", {1, 106}}, {"image_token_index", n_tokens}, {"initializer_range", 0.02},
            {"mm_tokens_per_image", 256}, {"model_type", std::string(top_type)}, {"text_config", t},
            {"torch_dtype", torch_dtype}, {"transformers_version", layout == HfLayout::Multimodal ? "4.50.0" : "5.0.0"},
            {"vision_config", {{"hidden_size", 32}, {"image_size", 56}, {"intermediate_size", 64},
                               {"model_type", "siglip_vision_model"}, {"num_attention_heads", 2}, {"num_hidden_layers", 1},
                               {"patch_size", 14}, {"vision_use_head", false}}}};
}

}  // namespace gemma
