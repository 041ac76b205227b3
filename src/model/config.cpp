// Reads and validates a Gemma config from GGUF metadata, per-layer attention and RoPE facts included.
#include "model/config.h"

#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "gguf/gguf.h"

namespace gemma {

float ModelConfig::embd_scale() const { return std::sqrt(static_cast<float>(n_embd)); }

bool ModelConfig::any_sliding() const {
    for (const LayerConfig& l : layers)
        if (l.sliding) return true;
    return false;
}

std::string ModelConfig::describe() const {
    char buf[512];
    int n_sliding = 0;
    for (const LayerConfig& l : layers) n_sliding += l.sliding;
    std::snprintf(buf, sizeof buf,
                  "%s: n_embd %lld, n_layer %lld, n_head %lld, n_head_kv %lld, head_dim %lld, n_ff %lld, "
                  "n_vocab %lld, n_ctx_train %lld, rms_eps %g, rope_base %g",
                  arch.c_str(), static_cast<long long>(n_embd), static_cast<long long>(n_layer),
                  static_cast<long long>(n_head), static_cast<long long>(n_head_kv),
                  static_cast<long long>(head_dim), static_cast<long long>(n_ff), static_cast<long long>(n_vocab),
                  static_cast<long long>(n_ctx_train), static_cast<double>(rms_eps),
                  static_cast<double>(rope_freq_base));
    std::string s = buf;
    if (n_sliding) {
        std::snprintf(buf, sizeof buf, ", %d of %lld layers sliding (window %lld, rope_base %g)", n_sliding,
                      static_cast<long long>(n_layer), static_cast<long long>(n_swa),
                      static_cast<double>(layers[0].sliding ? layers[0].rope_base : rope_freq_base));
        s += buf;
    }
    if (attn_softcap > 0 || final_softcap > 0) {
        std::snprintf(buf, sizeof buf, ", soft-caps %g / %g", static_cast<double>(attn_softcap),
                      static_cast<double>(final_softcap));
        s += buf;
    }
    return s;
}

namespace {

// Which layers slide: sliding_window_pattern as a period n (layer il slides iff il % n < n - 1) or as one
// bool per layer; absent: the family's period.
std::vector<bool> sliding_layers(const GgufFile& f, const std::string& key, int64_t n_layer, int def_period) {
    const std::string& path = f.path();
    std::vector<bool> out(static_cast<size_t>(n_layer), false);
    const GgufValue* v = f.find(key);
    int64_t period = def_period;
    if (v && v->is_array()) {
        if (v->count != static_cast<uint64_t>(n_layer))
            throw_error(path + ": metadata key '" + key + "' has " + std::to_string(v->count) + " entries for " +
                        std::to_string(n_layer) + " layers");
        for (uint64_t i = 0; i < v->count; ++i) {
            if (v->elem_type == GgufType::BOOL || v->elem_type == GgufType::UINT8 || v->elem_type == GgufType::INT8)
                out[i] = v->raw[i] != 0;
            else if (v->elem_type == GgufType::UINT32 || v->elem_type == GgufType::INT32)
                out[i] = v->elem<uint32_t>(i) != 0;
            else
                throw_error(path + ": metadata key '" + key + "' must be an array of bools");
        }
        return out;
    }
    if (v) {
        if (!v->is_integer()) throw_error(path + ": metadata key '" + key + "' must be an integer or a bool array");
        period = static_cast<int64_t>(f.get_uint(key));
        if (period > (int64_t{1} << 20)) throw_error(path + ": metadata key '" + key + "' has impossible value");
    }
    // A period of 0 or 1 means no sliding layers (llama.cpp's set_swa_pattern).
    for (int64_t il = 0; il < n_layer && period > 1; ++il) out[static_cast<size_t>(il)] = il % period < period - 1;
    return out;
}

}  // namespace

ModelConfig ModelConfig::from_gguf(const GgufFile& f) {
    ModelConfig c;
    const std::string& path = f.path();
    if (!f.find("general.architecture"))
        throw_error(path + ": missing metadata key 'general.architecture' (not a model file?)");
    c.arch = f.get_string("general.architecture");
    c.desc = find_arch(c.arch);
    if (!c.desc)
        throw_error(path + ": architecture '" + c.arch + "' is not supported (supported: " + supported_archs() + ")");
    const ArchDesc& d = *c.desc;
    c.name = f.get_string("general.name", "");
    const std::string a = c.arch + ".";
    auto req = [&](const char* key) -> int64_t {
        const std::string k = a + key;
        if (!f.find(k)) throw_error(path + ": missing metadata key '" + k + "'");
        const uint64_t v = f.get_uint(k);
        if (v == 0 || v > (uint64_t{1} << 31)) throw_error(path + ": metadata key '" + k + "' has impossible value " +
                                                             std::to_string(v));
        return static_cast<int64_t>(v);
    };
    auto opt = [&](const char* key, int64_t def) -> int64_t {
        const std::string k = a + key;
        if (!f.find(k)) return def;
        return req(key);
    };
    auto opt_float = [&](const char* key, double def, bool allow_zero) -> float {
        const std::string k = a + key;
        const double v = f.get_float(k, def);
        if (!std::isfinite(v) || v < 0 || (!allow_zero && v == 0) || v > 1e12)
            throw_error(path + ": metadata key '" + k + "' has impossible value " + std::to_string(v));
        return static_cast<float>(v);
    };
    c.n_ctx_train = req("context_length");
    c.n_embd = req("embedding_length");
    c.n_layer = req("block_count");
    c.n_ff = req("feed_forward_length");
    c.n_head = req("attention.head_count");
    c.n_head_kv = opt("attention.head_count_kv", c.n_head);
    if (c.n_embd % c.n_head != 0 && !f.find(a + "attention.key_length"))
        throw_error(path + ": missing metadata key '" + a + "attention.key_length' (n_embd is not a multiple of n_head)");
    c.head_dim = opt("attention.key_length", c.n_embd / c.n_head);
    c.head_dim_v = opt("attention.value_length", c.head_dim);
    c.n_rot = opt("rope.dimension_count", c.head_dim);
    {
        const std::string k = a + "attention.layer_norm_rms_epsilon";
        if (!f.find(k)) throw_error(path + ": missing metadata key '" + k + "'");
        const double eps = f.get_float(k);
        if (!(eps > 0 && eps < 1)) throw_error(path + ": metadata key '" + k + "' has impossible value " + std::to_string(eps));
        c.rms_eps = static_cast<float>(eps);
    }
    c.rope_freq_base = opt_float("rope.freq_base", d.rope_base, false);
    const float base_swa = opt_float("rope.freq_base_swa", d.rope_base_swa > 0 ? d.rope_base_swa : c.rope_freq_base, false);
    // Linear RoPE scaling (Gemma 3 4B+): global layers only; the old key name is still read, as llama.cpp does.
    const std::string scaling = f.get_string(a + "rope.scaling.type", "");
    if (!scaling.empty() && scaling != "linear" && scaling != "none")
        throw_error(path + ": RoPE scaling type '" + scaling + "' is not supported (only linear)");
    float factor = opt_float("rope.scaling.factor", 0.0, true);
    if (factor == 0.0f) factor = opt_float("rope.scale_linear", 0.0, true);
    const float freq_scale = (scaling == "none" || factor == 0.0f) ? 1.0f : 1.0f / factor;

    c.n_swa = d.window;
    if (f.find(a + "attention.sliding_window")) c.n_swa = static_cast<int64_t>(f.get_uint(a + "attention.sliding_window"));
    if (c.n_swa < 0 || c.n_swa > (int64_t{1} << 31))
        throw_error(path + ": metadata key '" + a + "attention.sliding_window' has impossible value");
    const std::vector<bool> slides = sliding_layers(f, a + "attention.sliding_window_pattern", c.n_layer, d.swa_period);
    c.layers.resize(static_cast<size_t>(c.n_layer));
    for (int64_t il = 0; il < c.n_layer; ++il) {
        LayerConfig& l = c.layers[static_cast<size_t>(il)];
        l.sliding = c.n_swa > 0 && slides[static_cast<size_t>(il)];
        l.window = l.sliding ? c.n_swa : 0;
        l.rope_base = l.sliding ? base_swa : c.rope_freq_base;
        l.rope_freq_scale = l.sliding ? 1.0f : freq_scale;
    }
    c.attn_softcap = d.attn_softcap > 0 ? opt_float("attn_logit_softcapping", d.attn_softcap, true) : 0.0f;
    c.final_softcap = opt_float("final_logit_softcapping", d.final_softcap, true);
    if (d.attn_softcap == 0 && f.find(a + "attn_logit_softcapping"))
        throw_error(path + ": " + d.label + " has no attention soft-capping, but the file sets '" + a +
                    "attn_logit_softcapping'");

    if (c.n_head % c.n_head_kv != 0)
        throw_error(path + ": head_count " + std::to_string(c.n_head) + " is not a multiple of head_count_kv " +
                    std::to_string(c.n_head_kv));
    if (c.head_dim_v != c.head_dim)
        throw_error(path + ": value_length " + std::to_string(c.head_dim_v) + " differs from key_length " +
                    std::to_string(c.head_dim) + " (not supported)");
    if (c.n_rot % 2 != 0 || c.n_rot > c.head_dim)
        throw_error(path + ": rope dimension count " + std::to_string(c.n_rot) + " must be even and <= key_length " +
                    std::to_string(c.head_dim));
    // llama.cpp recognises the 27B sizes by their layer count and scales queries by 1/sqrt(n_embd / n_head)
    // (integer division, as there) instead of 1/sqrt(head_dim).
    const bool big = d.big_model_layers > 0 && c.n_layer == d.big_model_layers;
    c.attn_scale = 1.0f / std::sqrt(static_cast<float>(big ? c.n_embd / c.n_head : c.head_dim));

    const GgufTensor* embd = f.find_tensor("token_embd.weight");
    if (!embd) throw_error(path + ": missing tensor 'token_embd.weight'");
    if (embd->n_dims != 2 || embd->ne[0] != c.n_embd)
        throw_error(path + ": tensor 'token_embd.weight' has shape " + embd->shape_string() + ", expected [" +
                    std::to_string(c.n_embd) + ", n_vocab]");
    c.n_vocab = embd->ne[1];
    return c;
}

}  // namespace gemma
