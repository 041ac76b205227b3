// Reads a Gemma checkpoint's config.json (any family of arch/) and maps HF tensor names/shapes to llama.cpp's GGUF ones.
#include "convert/hf_config.h"

#include <cmath>
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

// config.json's entries with a checker that names the file and the key in every error.
struct Reader {
    const json& j;
    const std::string& path;

    [[noreturn]] void fail(const std::string& why) const { throw_error(path + ": " + why); }
    const json* find(const char* key) const {
        return j.contains(key) && !j[key].is_null() ? &j[key] : nullptr;
    }
    // def 0: required.
    int64_t get_int(const char* key, int64_t def) const {
        const json* v = find(key);
        if (!v) {
            if (def == 0) fail(std::string("missing \"") + key + "\"");
            return def;
        }
        if (!v->is_number_integer()) fail(std::string("\"") + key + "\" is not an integer");
        const int64_t x = v->get<int64_t>();
        if (x <= 0 || x > (int64_t{1} << 31)) fail(std::string("\"") + key + "\" = " + std::to_string(x) + " is out of range");
        return x;
    }
    // def < 0: required; present values must be positive and finite.
    double get_pos(const json* v, const std::string& name, double def) const {
        if (!v) {
            if (def < 0) fail("missing \"" + name + "\"");
            return def;
        }
        if (!v->is_number() || !(v->get<double>() > 0) || !std::isfinite(v->get<double>()) || v->get<double>() > 1e15)
            fail("\"" + name + "\" is not a positive number");
        return v->get<double>();
    }
    double get_pos(const char* key, double def) const { return get_pos(find(key), key, def); }
};

// A rope_scaling / rope_parameters entry: its linear factor, 0 for none.
double linear_rope_factor(const Reader& r, const json& s, const std::string& name, const ArchDesc& a) {
    if (!s.is_object()) r.fail("\"" + name + "\" is not an object");
    const json* t = s.contains("rope_type") ? &s["rope_type"] : s.contains("type") ? &s["type"] : nullptr;
    const std::string type = t && t->is_string() ? t->get<std::string>() : "default";
    if (type == "default") return 0.0;
    if (type != "linear")
        r.fail("\"" + name + "\" type '" + type + "' is not supported (Gemma uses no RoPE scaling or linear scaling)");
    const double f = r.get_pos(s.contains("factor") ? &s["factor"] : nullptr, name + ".factor", -1.0);
    if (f == 1.0) return 0.0;
    if (!a.rope_scaling) r.fail(std::string(a.label) + " has no RoPE scaling, but \"" + name + "\" asks for linear x" + std::to_string(f));
    return f;
}

}  // namespace

HfConfig HfConfig::load(const std::string& dir) {
    HfConfig c;
    c.path = dir + "/config.json";
    const json top = read_json_file(c.path, true);
    const Reader t{top, c.path};
    if (!top.is_object()) t.fail("not a JSON object");

    if (top.contains("architectures")) {
        const json& a = top["architectures"];
        if (!a.is_array() || a.empty() || !a[0].is_string()) t.fail("\"architectures\" is not a list of names");
        c.architecture = a[0].get<std::string>();
        c.arch = find_arch_by_hf_class(c.architecture);
    } else if (top.contains("model_type") && top["model_type"].is_string()) {
        // Very old configs name only the model type.
        std::string_view cls;
        c.arch = find_arch_by_hf_model_type(top["model_type"].get<std::string>(), &cls);
        c.architecture = cls.empty() ? "model_type " + top["model_type"].get<std::string>() : std::string(cls);
    } else {
        t.fail("no \"architectures\" entry");
    }
    if (!c.arch)
        t.fail("architecture '" + c.architecture + "' is not supported (this converter handles " + supported_hf_classes() + ")");
    const ArchDesc& a = *c.arch;

    // A multimodal config keeps the text model's entries under text_config; llama.cpp merges them over the top level.
    json merged = top;
    if (top.contains("text_config") && !top["text_config"].is_null()) {
        if (!top["text_config"].is_object()) t.fail("\"text_config\" is not an object");
        c.multimodal = true;
        for (auto it = top["text_config"].begin(); it != top["text_config"].end(); ++it) merged[it.key()] = it.value();
    }
    const Reader r{merged, c.path};
    const HfDefaults& d = a.hf;
    c.hidden_size = r.get_int("hidden_size", 0);
    c.intermediate_size = r.get_int("intermediate_size", 0);
    c.num_attention_heads = r.get_int("num_attention_heads", d.num_attention_heads);
    c.num_hidden_layers = r.get_int("num_hidden_layers", 0);
    c.max_position_embeddings = r.get_int("max_position_embeddings", d.max_position_embeddings);
    c.num_key_value_heads = r.get_int("num_key_value_heads", d.num_key_value_heads ? d.num_key_value_heads : c.num_attention_heads);
    c.head_dim = r.get_int("head_dim", d.head_dim);
    c.vocab_size = r.get_int("vocab_size", d.vocab_size);
    c.rms_norm_eps = r.get_pos("rms_norm_eps", d.rms_norm_eps > 0 ? d.rms_norm_eps : -1.0);
    if (c.num_attention_heads % c.num_key_value_heads != 0)
        r.fail("num_attention_heads (" + std::to_string(c.num_attention_heads) + ") is not a multiple of num_key_value_heads (" +
               std::to_string(c.num_key_value_heads) + ")");
    if (c.num_hidden_layers > 4096) r.fail("\"num_hidden_layers\" = " + std::to_string(c.num_hidden_layers) + " is out of range");

    // RoPE: the older flat entries, or transformers 5's rope_parameters per layer type.
    const json* rp = r.find("rope_parameters");
    if (rp && !rp->is_object()) r.fail("\"rope_parameters\" is not an object");
    const json* rp_full = rp && rp->contains("full_attention") ? &(*rp)["full_attention"] : rp;
    const json* rp_slide = rp && rp->contains("sliding_attention") ? &(*rp)["sliding_attention"] : nullptr;
    auto theta_of = [&](const json* p) { return p && p->is_object() && p->contains("rope_theta") ? &(*p)["rope_theta"] : nullptr; };
    const json* theta = r.find("rope_theta");
    if (a.gguf_rope_base) c.rope_theta = r.get_pos(theta ? theta : theta_of(rp_full), "rope_theta", a.rope_base);
    if (a.rope_base_swa > 0) {
        const json* local = r.find("rope_local_base_freq");
        c.rope_local_base_freq = r.get_pos(local ? local : theta_of(rp_slide), "rope_local_base_freq", a.rope_base_swa);
    }
    if (const json* s = r.find("rope_scaling")) c.rope_scaling_factor = linear_rope_factor(r, *s, "rope_scaling", a);
    else if (rp_full) c.rope_scaling_factor = linear_rope_factor(r, *rp_full, "rope_parameters", a);

    if (a.swa_period > 0) {
        // Some early Gemma 2 configs call it sliding_window_size.
        const bool old_name = !r.find("sliding_window") && r.find("sliding_window_size");
        c.sliding_window = r.get_int(old_name ? "sliding_window_size" : "sliding_window", d.sliding_window);
        const size_t n = static_cast<size_t>(c.num_hidden_layers);
        if (const json* lt = r.find("layer_types")) {
            if (!lt->is_array() || lt->size() != n)
                r.fail("\"layer_types\" must list one entry per layer (" + std::to_string(n) + ")");
            for (const json& e : *lt) {
                const std::string s = e.is_string() ? e.get<std::string>() : "";
                if (s != "sliding_attention" && s != "full_attention")
                    r.fail("\"layer_types\" entry '" + e.dump() + "' is neither sliding_attention nor full_attention");
                c.sliding.push_back(s == "sliding_attention");
            }
        } else if (r.find("sliding_window_pattern")) {
            const int64_t p = r.get_int("sliding_window_pattern", 0);
            for (size_t il = 0; il < n; ++il) c.sliding.push_back(p > 1 && static_cast<int64_t>(il) % p < p - 1);
        } else {
            c.sliding = default_sliding_layers(a, c.num_hidden_layers);
        }
    }

    // Soft-caps: Gemma 2 always has both (HF's defaults 50 / 30); Gemma 3 only an optional final one.
    auto softcap = [&](const char* key, float family_default) -> double {
        const bool present = merged.contains(key);
        if (family_default > 0) {
            if (present && merged[key].is_null())
                r.fail(std::string("\"") + key + "\" is null: " + a.label + " without soft-capping cannot be written to a GGUF "
                       "(llama.cpp always applies it)");
            return r.get_pos(key, family_default);
        }
        return r.find(key) ? r.get_pos(key, 0.0) : 0.0;
    };
    c.attn_softcap = softcap("attn_logit_softcapping", a.attn_softcap);
    if (a.attn_softcap == 0 && c.attn_softcap > 0)
        r.fail(std::string(a.label) + " has no attention soft-capping, but \"attn_logit_softcapping\" is set");
    c.final_softcap = softcap("final_logit_softcapping", a.final_softcap);

    // A GGUF has no key for the query scale: llama.cpp derives it from the shape (SPEC-GEMMA2-3 §4).
    if (r.find("query_pre_attn_scalar")) {
        c.query_pre_attn_scalar = r.get_pos("query_pre_attn_scalar", 0.0);
        const bool big = a.big_model_layers > 0 && c.num_hidden_layers == a.big_model_layers;
        const int64_t implied = big ? c.hidden_size / c.num_attention_heads : c.head_dim;
        if (c.query_pre_attn_scalar != static_cast<double>(implied))
            c.warnings.push_back(c.path + ": query_pre_attn_scalar is " + std::to_string(c.query_pre_attn_scalar) +
                                 " but a GGUF of this shape is read with " + std::to_string(implied) +
                                 " (llama.cpp derives the query scale from the layer count and head sizes); the "
                                 "converted model will not match the original");
    }
    c.token_ids = token_ids_of(merged);
    return c;
}

TensorDims HfConfig::dims() const {
    return {hidden_size, num_attention_heads, num_key_value_heads, head_dim, intermediate_size, vocab_size};
}

GgufHparams HfConfig::gguf_hparams() const {
    GgufHparams h;
    h.n_ctx = max_position_embeddings;
    h.n_embd = hidden_size;
    h.n_layer = num_hidden_layers;
    h.n_ff = intermediate_size;
    h.n_head = num_attention_heads;
    h.n_head_kv = num_key_value_heads;
    h.head_dim = head_dim;
    h.rms_eps = rms_norm_eps;
    h.rope_base = rope_theta;
    h.rope_base_swa = rope_local_base_freq;
    h.rope_scale = rope_scaling_factor;
    h.window = sliding_window;
    h.sliding = sliding;
    h.attn_softcap = attn_softcap;
    h.final_softcap = final_softcap;
    return h;
}

std::map<std::string, int64_t> load_generation_token_ids(const std::string& dir) {
    return token_ids_of(read_json_file(dir + "/generation_config.json", false));
}

std::string text_tensor_name(const HfConfig& c, std::string_view n) {
    for (const HfRename& r : c.arch->hf_renames)
        if (n.substr(0, r.from.size()) == r.from) return std::string(r.to) + std::string(n.substr(r.from.size()));
    return std::string(n);
}

std::string_view other_tower_of(const HfConfig& c, std::string_view n) {
    for (std::string_view p : c.arch->hf_other_towers)
        if (n.substr(0, p.size()) == p) return p;
    return {};
}

namespace {

TensorMapping mapping_of(const HfConfig& c, const TensorDef& d, int64_t layer) {
    const TensorDims dims = c.dims();
    TensorMapping m{gguf_tensor_name(d, layer), {}, d.norm, &d};
    // PyTorch order is the reverse of ggml's: [out, in] for a matrix, [n] for a vector.
    if (d.ne1 != Dim::One) m.hf_shape.push_back(tensor_dim(d.ne1, dims));
    m.hf_shape.push_back(tensor_dim(d.ne0, dims));
    return m;
}

constexpr std::string_view kLayers = "model.layers.";

}  // namespace

std::optional<TensorMapping> map_gemma_tensor(const HfConfig& c, const std::string& hf_name) {
    const std::string n = text_tensor_name(c, hf_name);
    auto ends_with = [&](std::string_view s) { return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0; };
    // The tied output projection: llama.cpp's Gemma converters drop it (AutoAWQ exports it).
    if (n == "lm_head.weight") return std::nullopt;
    // Buffers the reference converter skips for every architecture.
    if (ends_with(".rotary_emb.inv_freq") || ends_with(".attention.masked_bias") || ends_with(".attention.bias"))
        return std::nullopt;

    for (const TensorDef& d : c.arch->tensors)
        if (!d.per_layer && !d.optional && n == d.hf) return mapping_of(c, d, -1);
    if (n.compare(0, kLayers.size(), kLayers) == 0) {
        size_t p = kLayers.size(), q = p;
        while (q < n.size() && n[q] >= '0' && n[q] <= '9') ++q;
        if (q > p && q < n.size() && n[q] == '.' && q - p < 9) {
            const int64_t bid = std::stoll(n.substr(p, q - p));
            if (bid >= c.num_hidden_layers)
                throw_error("tensor '" + hf_name + "': layer " + std::to_string(bid) + " but config.json has num_hidden_layers = " +
                            std::to_string(c.num_hidden_layers));
            const std::string_view suffix = std::string_view(n).substr(q + 1);
            for (const TensorDef& d : c.arch->tensors)
                if (d.per_layer && suffix == d.hf) return mapping_of(c, d, bid);
        }
    }
    throw_error("tensor '" + hf_name + "' is not part of a " + c.architecture + " checkpoint (cannot map it to a GGUF name)");
}

std::vector<std::string> gemma_hf_tensor_names(const HfConfig& c) {
    std::vector<std::string> v;
    for (const TensorDef& d : c.arch->tensors)
        if (!d.per_layer && !d.optional) v.push_back(d.hf);
    for (int64_t l = 0; l < c.num_hidden_layers; ++l)
        for (const TensorDef& d : c.arch->tensors)
            if (d.per_layer) v.push_back(std::string(kLayers) + std::to_string(l) + "." + d.hf);
    return v;
}

std::string shape_str(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

}  // namespace gemma
