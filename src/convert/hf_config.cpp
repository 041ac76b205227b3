// Reads a Gemma checkpoint's config.json and maps HF tensor names/shapes to llama.cpp's GGUF ones.
#include "convert/hf_config.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace gemma {

using json = nlohmann::json;

namespace {

json read_json_file(const std::string& path, bool required) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
        if (required) throw_error(path + ": missing (not a Hugging Face checkpoint directory?)");
        return json();
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_error(path + ": cannot open");
    try {
        return json::parse(in);
    } catch (const json::exception& e) {
        throw_error(path + ": not valid JSON: " + e.what());
    }
}

std::map<std::string, int64_t> token_ids_of(const json& j) {
    std::map<std::string, int64_t> ids;
    if (!j.is_object()) return ids;
    for (auto it = j.begin(); it != j.end(); ++it) {
        const std::string& k = it.key();
        // Lists (e.g. several eos ids) are ignored, as gguf-py's SpecialVocab ignores non-integers.
        if (k.size() > 9 && k.compare(k.size() - 9, 9, "_token_id") == 0 && it.value().is_number_integer())
            ids[k.substr(0, k.size() - 9)] = it.value().get<int64_t>();
    }
    return ids;
}

}  // namespace

HfConfig HfConfig::load(const std::string& dir) {
    HfConfig c;
    c.path = dir + "/config.json";
    const json j = read_json_file(c.path, true);
    auto fail = [&](const std::string& why) { throw_error(c.path + ": " + why); };
    if (!j.is_object()) fail("not a JSON object");

    if (j.contains("architectures")) {
        const json& a = j["architectures"];
        if (!a.is_array() || a.empty() || !a[0].is_string()) fail("\"architectures\" is not a list of names");
        c.architecture = a[0].get<std::string>();
    } else if (j.value("model_type", "") == "gemma") {
        c.architecture = "GemmaForCausalLM";  // very old configs name only the model type
    } else {
        fail("no \"architectures\" entry");
    }
    if (c.architecture != "GemmaForCausalLM")
        fail("architecture '" + c.architecture + "' is not supported (this converter handles GemmaForCausalLM: Gemma 1 / 1.1)");

    auto get_int = [&](const char* key, std::optional<int64_t> def) -> int64_t {
        if (!j.contains(key) || j[key].is_null()) {
            if (!def) fail(std::string("missing \"") + key + "\"");
            return *def;
        }
        if (!j[key].is_number_integer()) fail(std::string("\"") + key + "\" is not an integer");
        const int64_t v = j[key].get<int64_t>();
        if (v <= 0 || v > (int64_t{1} << 31)) fail(std::string("\"") + key + "\" = " + std::to_string(v) + " is out of range");
        return v;
    };
    c.hidden_size = get_int("hidden_size", std::nullopt);
    c.intermediate_size = get_int("intermediate_size", std::nullopt);
    c.num_attention_heads = get_int("num_attention_heads", std::nullopt);
    c.num_hidden_layers = get_int("num_hidden_layers", std::nullopt);
    c.max_position_embeddings = get_int("max_position_embeddings", std::nullopt);
    c.num_key_value_heads = get_int("num_key_value_heads", c.num_attention_heads);
    c.head_dim = get_int("head_dim", 256);
    c.vocab_size = get_int("vocab_size", 256000);
    if (!j.contains("rms_norm_eps")) fail("missing \"rms_norm_eps\"");
    if (!j["rms_norm_eps"].is_number() || !(j["rms_norm_eps"].get<double>() > 0)) fail("\"rms_norm_eps\" is not a positive number");
    c.rms_norm_eps = j["rms_norm_eps"].get<double>();
    if (c.num_attention_heads % c.num_key_value_heads != 0)
        fail("num_attention_heads (" + std::to_string(c.num_attention_heads) + ") is not a multiple of num_key_value_heads (" +
             std::to_string(c.num_key_value_heads) + ")");
    c.token_ids = token_ids_of(j);
    return c;
}

std::map<std::string, int64_t> load_generation_token_ids(const std::string& dir) {
    return token_ids_of(read_json_file(dir + "/generation_config.json", false));
}

std::optional<TensorMapping> map_gemma_tensor(const HfConfig& c, const std::string& n) {
    auto ends_with = [&](const char* s) {
        const size_t l = std::char_traits<char>::length(s);
        return n.size() >= l && n.compare(n.size() - l, l, s) == 0;
    };
    // The tied output projection: llama.cpp's Gemma converter drops it (AutoAWQ exports it).
    if (n == "lm_head.weight") return std::nullopt;
    // Buffers the reference converter skips for every architecture.
    if (ends_with(".rotary_emb.inv_freq") || ends_with(".attention.masked_bias") || ends_with(".attention.bias"))
        return std::nullopt;

    const int64_t H = c.hidden_size, Q = c.num_attention_heads * c.head_dim, KV = c.num_key_value_heads * c.head_dim,
                  FF = c.intermediate_size;
    if (n == "model.embed_tokens.weight") return TensorMapping{"token_embd.weight", {c.vocab_size, H}, false};
    if (n == "model.norm.weight") return TensorMapping{"output_norm.weight", {H}, true};

    static const std::string prefix = "model.layers.";
    if (n.rfind(prefix, 0) == 0) {
        size_t p = prefix.size(), q = p;
        while (q < n.size() && n[q] >= '0' && n[q] <= '9') ++q;
        if (q > p && q < n.size() && n[q] == '.' && q - p < 9) {
            const int64_t bid = std::stoll(n.substr(p, q - p));
            if (bid >= c.num_hidden_layers)
                throw_error("tensor '" + n + "': layer " + std::to_string(bid) + " but config.json has num_hidden_layers = " +
                            std::to_string(c.num_hidden_layers));
            const std::string suffix = n.substr(q + 1), blk = "blk." + std::to_string(bid) + ".";
            struct Row { const char* hf; const char* gg; int64_t d0, d1; bool norm; };
            const Row rows[] = {
                {"input_layernorm.weight", "attn_norm.weight", H, 0, true},
                {"self_attn.q_proj.weight", "attn_q.weight", Q, H, false},
                {"self_attn.k_proj.weight", "attn_k.weight", KV, H, false},
                {"self_attn.v_proj.weight", "attn_v.weight", KV, H, false},
                {"self_attn.o_proj.weight", "attn_output.weight", H, Q, false},
                {"post_attention_layernorm.weight", "ffn_norm.weight", H, 0, true},
                {"mlp.gate_proj.weight", "ffn_gate.weight", FF, H, false},
                {"mlp.up_proj.weight", "ffn_up.weight", FF, H, false},
                {"mlp.down_proj.weight", "ffn_down.weight", H, FF, false},
            };
            for (const Row& r : rows) {
                if (suffix != r.hf) continue;
                TensorMapping m{blk + r.gg, {r.d0}, r.norm};
                if (r.d1) m.hf_shape.push_back(r.d1);
                return m;
            }
        }
    }
    throw_error("tensor '" + n + "' is not part of a GemmaForCausalLM checkpoint (cannot map it to a GGUF name)");
}

std::vector<std::string> gemma_hf_tensor_names(const HfConfig& c) {
    std::vector<std::string> v = {"model.embed_tokens.weight", "model.norm.weight"};
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        for (const char* s : {"input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                              "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
                              "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"})
            v.push_back(p + s);
    }
    return v;
}

std::string shape_str(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

}  // namespace gemma
