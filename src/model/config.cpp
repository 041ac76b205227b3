// Reads and validates the Gemma config from GGUF metadata.
#include "model/config.h"

#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "gguf/gguf.h"

namespace gemma {

float ModelConfig::embd_scale() const { return std::sqrt(static_cast<float>(n_embd)); }

float ModelConfig::q_scale() const { return 1.0f / std::sqrt(static_cast<float>(head_dim)); }

std::string ModelConfig::describe() const {
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "%s: n_embd %lld, n_layer %lld, n_head %lld, n_head_kv %lld, head_dim %lld, n_ff %lld, "
                  "n_vocab %lld, n_ctx_train %lld, rms_eps %g, rope_base %g",
                  arch.c_str(), static_cast<long long>(n_embd), static_cast<long long>(n_layer),
                  static_cast<long long>(n_head), static_cast<long long>(n_head_kv),
                  static_cast<long long>(head_dim), static_cast<long long>(n_ff), static_cast<long long>(n_vocab),
                  static_cast<long long>(n_ctx_train), static_cast<double>(rms_eps),
                  static_cast<double>(rope_freq_base));
    return buf;
}

ModelConfig ModelConfig::from_gguf(const GgufFile& f) {
    ModelConfig c;
    const std::string& path = f.path();
    if (!f.find("general.architecture"))
        throw_error(path + ": missing metadata key 'general.architecture' (not a model file?)");
    c.arch = f.get_string("general.architecture");
    if (c.arch != "gemma") {
        throw_error(path + ": architecture '" + c.arch + "' is not supported (only 'gemma', i.e. Gemma 1/1.1" +
                    (c.arch.rfind("gemma", 0) == 0 ? "; later Gemma generations need their own model code)" : ")"));
    }
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
    c.rope_freq_base = static_cast<float>(f.get_float(a + "rope.freq_base", 10000.0));
    if (!(c.rope_freq_base > 0)) throw_error(path + ": metadata key '" + a + "rope.freq_base' must be positive");

    if (c.n_head % c.n_head_kv != 0)
        throw_error(path + ": head_count " + std::to_string(c.n_head) + " is not a multiple of head_count_kv " +
                    std::to_string(c.n_head_kv));
    if (c.head_dim_v != c.head_dim)
        throw_error(path + ": value_length " + std::to_string(c.head_dim_v) + " differs from key_length " +
                    std::to_string(c.head_dim) + " (not supported)");
    if (c.n_rot % 2 != 0 || c.n_rot > c.head_dim)
        throw_error(path + ": rope dimension count " + std::to_string(c.n_rot) + " must be even and <= key_length " +
                    std::to_string(c.head_dim));

    const GgufTensor* embd = f.find_tensor("token_embd.weight");
    if (!embd) throw_error(path + ": missing tensor 'token_embd.weight'");
    if (embd->n_dims != 2 || embd->ne[0] != c.n_embd)
        throw_error(path + ": tensor 'token_embd.weight' has shape " + embd->shape_string() + ", expected [" +
                    std::to_string(c.n_embd) + ", n_vocab]");
    c.n_vocab = embd->ne[1];
    return c;
}

}  // namespace gemma
