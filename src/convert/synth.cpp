// Random-weight Gemma 1/2/3 models written tensor by tensor from the arch/ tables, rows generated from per-row seeds (thread-count independent).
#include "convert/synth.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "core/error.h"
#include "gemma_paths.h"
#include "gguf/gguf.h"

namespace gemma {
namespace {

uint64_t splitmix(uint64_t& s) {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Roughly normal values (sum of four uniforms), cheap enough to fill 8.5B weights in minutes.
void fill_row(float* dst, int64_t n, uint64_t seed, float mean, float stddev) {
    uint64_t s = seed;
    constexpr float k = 1.0f / 4294967296.0f;
    const float scale = stddev * std::sqrt(3.0f);  // var of (sum of 4 U(0,1) - 2) is 1/3
    for (int64_t i = 0; i < n; ++i) {
        const uint64_t a = splitmix(s), b = splitmix(s);
        const float u = static_cast<float>(a & 0xFFFFFFFFu) * k + static_cast<float>(a >> 32) * k +
                        static_cast<float>(b & 0xFFFFFFFFu) * k + static_cast<float>(b >> 32) * k - 2.0f;
        dst[i] = mean + u * scale;
    }
}

struct TensorPlan {
    std::string name;
    std::vector<int64_t> ne;
    bool is_norm;
    float stddev;
};

}  // namespace

const ModelShape& synth_shape(const std::string& name, const ArchDesc** arch) {
    const ModelShape* s = find_shape(name, arch);
    if (!s) throw_error("unknown shape '" + name + "' (expected one of: " + shape_names() + ")");
    return *s;
}

GgufHparams synth_hparams(const ArchDesc& a, const ModelShape& s) {
    GgufHparams h;
    h.n_ctx = s.n_ctx;
    h.n_embd = s.n_embd;
    h.n_layer = s.n_layer;
    h.n_ff = s.n_ff;
    h.n_head = s.n_head;
    h.n_head_kv = s.n_head_kv;
    h.head_dim = s.head_dim;
    h.rms_eps = 1e-6;
    h.rope_base = a.rope_base;
    h.rope_base_swa = a.rope_base_swa;
    h.rope_scale = s.rope_scale;
    h.window = s.window;
    h.attn_softcap = a.attn_softcap;
    h.final_softcap = a.final_softcap;
    return h;
}

std::string default_synth_vocab(const ArchDesc& a) {
    const char* e = std::getenv("GEMMA_GOLDEN_DIR");
    return (e && *e ? std::string(e) : std::string(GEMMA_SOURCE_DIR) + "/../shared/golden") + "/" + a.synth_vocab;
}

void synth_model(const SynthOptions& opt) {
    const ArchDesc* ap = nullptr;
    const ModelShape& sh = synth_shape(opt.shape, &ap);
    const ArchDesc& a = *ap;
    if (opt.outtype != TypeId::F32 && opt.outtype != TypeId::F16 && opt.outtype != TypeId::BF16)
        throw_error("synth: --outtype must be f32, f16 or bf16");
    const std::string vocab_path = opt.vocab_path.empty() ? default_synth_vocab(a) : opt.vocab_path;
    auto vocab = GgufFile::open(vocab_path);
    const GgufValue* toks = vocab->find("tokenizer.ggml.tokens");
    if (!toks || !toks->is_array() || toks->elem_type != GgufType::STRING)
        throw_error(vocab_path + ": no tokenizer.ggml.tokens string array");
    const int64_t full_vocab = static_cast<int64_t>(toks->count);
    const int64_t n_vocab = opt.n_vocab > 0 ? std::min(opt.n_vocab, full_vocab) : full_vocab;
    if (n_vocab < 256 + 217) throw_error("synth: a vocabulary needs at least 473 tokens (specials and byte tokens)");

    GgufWriter w(opt.output);
    w.set("general.architecture", GgufValue::string(a.gguf_arch));
    w.set("general.type", GgufValue::string("model"));
    w.set("general.name", GgufValue::string(std::string("synthetic-") + sh.name));
    const uint32_t ftype = opt.outtype == TypeId::F32 ? 0 : opt.outtype == TypeId::F16 ? 1 : 32;
    write_gguf_hparams(w, a, synth_hparams(a, sh), ftype);
    w.set("general.quantization_version", GgufValue::u32(2));
    for (const auto& kv : vocab->kvs()) {
        if (kv.key.rfind("tokenizer.", 0) != 0) continue;
        GgufValue v = kv.value;
        if (v.is_array() && static_cast<int64_t>(v.count) == full_vocab && n_vocab < full_vocab) {
            v.count = static_cast<uint64_t>(n_vocab);
            if (v.elem_type == GgufType::STRING) v.strs.resize(static_cast<size_t>(n_vocab));
            else v.raw.resize(static_cast<size_t>(n_vocab) * gguf_scalar_size(v.elem_type));
        }
        w.set(kv.key, std::move(v));
    }

    // llama.cpp's order: the embedding, the blocks, then the other global tensors (output_norm).
    const TensorDims dims{sh.n_embd, sh.n_head, sh.n_head_kv, sh.head_dim, sh.n_ff, n_vocab};
    std::vector<TensorPlan> plan;
    auto add = [&](const TensorDef& d, int64_t layer) {
        std::vector<int64_t> ne = {tensor_dim(d.ne0, dims)};
        if (d.ne1 != Dim::One) ne.push_back(tensor_dim(d.ne1, dims));
        plan.push_back({gguf_tensor_name(d, layer), ne, d.norm, d.norm ? 0.1f : 1.0f / std::sqrt(static_cast<float>(ne[0]))});
    };
    add(*find_tensor_def(a, TensorId::TokenEmbd), -1);
    for (int64_t l = 0; l < sh.n_layer; ++l)
        for (const TensorDef& d : a.tensors)
            if (d.per_layer) add(d, l);
    for (const TensorDef& d : a.tensors)
        if (!d.per_layer && !d.optional && d.id != TensorId::TokenEmbd) add(d, -1);
    for (const auto& t : plan) w.add_tensor(t.name, t.is_norm ? TypeId::F32 : opt.outtype, t.ne);
    w.write_header();

    const int n_threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (size_t ti = 0; ti < plan.size(); ++ti) {
        const TensorPlan& t = plan[ti];
        const TypeId type = t.is_norm ? TypeId::F32 : opt.outtype;
        const TypeTraits& tt = type_traits(type);
        const int64_t ne0 = t.ne[0], nrows = t.ne.size() > 1 ? t.ne[1] : 1;
        if (!opt.quiet)
            std::fprintf(stderr, "[%4zu/%4zu] %-28s %s\n", ti + 1, plan.size(), t.name.c_str(), tt.name);
        const int64_t per_batch = std::max<int64_t>(1, (int64_t{4} << 20) / ne0);
        std::vector<float> f32(static_cast<size_t>(std::min(per_batch, nrows) * ne0));
        std::vector<uint8_t> out(static_cast<size_t>(std::min(per_batch, nrows)) * row_size(type, ne0));
        for (int64_t r0 = 0; r0 < nrows; r0 += per_batch) {
            const int64_t n = std::min(per_batch, nrows - r0);
            const int nt = static_cast<int>(std::clamp<int64_t>(n_threads, 1, n));
            auto work = [&](int k) {
                const int64_t a = n * k / nt, b = n * (k + 1) / nt;
                for (int64_t r = a; r < b; ++r) {
                    const uint64_t seed = opt.seed * 0x100000001B3ull ^ (static_cast<uint64_t>(ti) << 40) ^ static_cast<uint64_t>(r0 + r);
                    fill_row(f32.data() + r * ne0, ne0, seed, t.is_norm ? 1.0f : 0.0f, t.stddev);
                }
                if (b > a) tt.quantize_rows(f32.data() + a * ne0, out.data() + static_cast<size_t>(a) * row_size(type, ne0), b - a, ne0, nullptr);
            };
            std::vector<std::thread> pool;
            for (int k = 1; k < nt; ++k) pool.emplace_back(work, k);
            work(0);
            for (auto& th : pool) th.join();
            w.write_tensor_data(out.data(), static_cast<size_t>(n) * row_size(type, ne0));
        }
    }
    w.finish();
}

}  // namespace gemma
