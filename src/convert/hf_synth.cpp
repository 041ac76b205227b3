// Writes random-weight Gemma 1/2/3 checkpoints in the Hugging Face layouts, streamed shard by shard.
#include "convert/hf_synth.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "convert/hf_config.h"
#include "convert/hf_synth_files.h"
#include "convert/hf_tokenizer.h"
#include "convert/synth.h"
#include "core/error.h"
#include "core/fp16.h"
#include "gemma_paths.h"

namespace gemma {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

uint64_t splitmix(uint64_t& s) {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Roughly normal (sum of four uniforms): cheap enough for billions of values, and seeded per row so
// the bytes do not depend on the thread count.
void fill_row(float* dst, int64_t n, uint64_t seed, float stddev) {
    uint64_t s = seed;
    constexpr float k = 1.0f / 4294967296.0f;
    const float scale = stddev * std::sqrt(3.0f);
    for (int64_t i = 0; i < n; ++i) {
        const uint64_t a = splitmix(s), b = splitmix(s);
        const float u = static_cast<float>(a & 0xFFFFFFFFu) * k + static_cast<float>(a >> 32) * k +
                        static_cast<float>(b & 0xFFFFFFFFu) * k + static_cast<float>(b >> 32) * k - 2.0f;
        dst[i] = u * scale;
    }
}

struct SynthTensor {
    std::string name;
    std::vector<int64_t> shape;  // HF order
    float stddev;
    uint64_t nbytes;
};

}  // namespace

std::string default_hf_vocab_dir() {
    if (const char* e = std::getenv("GEMMA_HF_VOCAB"); e && *e) return e;
    return std::string(GEMMA_SOURCE_DIR) + "/../shared/golden/vocab/hf";
}

std::vector<SpPiece> sentencepiece_pieces_from_hf(const std::string& vocab_dir) {
    const std::string path = vocab_dir + "/tokenizer.json";
    const json tj = parse_tokenizer_json(path);
    if (!tj.contains("model") || !tj["model"].contains("vocab") || !tj["model"]["vocab"].is_object())
        throw_error(path + ": no model.vocab");
    const json& vocab = tj["model"]["vocab"];
    const std::string unk = tj["model"].value("unk_token", "");
    int64_t n = 0;
    for (auto it = vocab.begin(); it != vocab.end(); ++it) n = std::max(n, it.value().get<int64_t>() + 1);
    std::vector<SpPiece> pieces(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) pieces[static_cast<size_t>(i)] = {"[PAD" + std::to_string(i) + "]", 0.0f, SpType::Unused};
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        const int64_t id = it.value().get<int64_t>();
        const std::string& t = it.key();
        SpPiece& p = pieces[static_cast<size_t>(id)];
        p.piece = t;
        const bool byte = t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>';
        p.type = byte ? SpType::Byte : t == unk ? SpType::Unknown : SpType::Normal;
        p.score = p.type == SpType::Normal ? -static_cast<float>(id) : 0.0f;
    }
    if (tj.contains("added_tokens") && tj["added_tokens"].is_array())
        for (const json& a : tj["added_tokens"]) {
            const int64_t id = a.value("id", int64_t{-1});
            if (id < 0 || id >= n) continue;
            SpPiece& p = pieces[static_cast<size_t>(id)];
            if (p.type == SpType::Unknown) continue;
            p.type = a.value("special", false) ? SpType::Control : SpType::UserDefined;
            p.score = 0.0f;
        }
    return pieces;
}

void write_hf_checkpoint(const HfSynthOptions& opt) {
    const ArchDesc* ap = nullptr;
    const ModelShape& sh = synth_shape(opt.shape, &ap);
    const ArchDesc& a = *ap;
    if (opt.shards < 1 || opt.shards > 99) throw_error("synth-hf: --shards must be between 1 and 99");
    if (opt.layout != HfLayout::CausalLM && a.hf_multimodal_class.empty())
        throw_error(std::string("synth-hf: ") + a.label + " has no multimodal checkpoint layout (shape '" + sh.name + "')");

    std::error_code ec;
    fs::create_directories(opt.dir, ec);
    if (!fs::is_directory(opt.dir)) throw_error(opt.dir + ": cannot create directory");
    const int64_t n_tokens = write_hf_tokenizer_files(opt, a);
    // Multimodal Gemma 3 checkpoints have 64 embedding rows past the tokenizer (262208 for 262144).
    const int64_t n_vocab = opt.layout == HfLayout::CausalLM ? n_tokens : n_tokens + 64;
    const char* torch_dtype = opt.dtype == StDtype::BF16 ? "bfloat16" : opt.dtype == StDtype::F16 ? "float16" : "float32";
    write_text_file(opt.dir + "/config.json", hf_synth_config(a, sh, opt.layout, n_vocab, n_tokens, torch_dtype).dump(2) + "\n");
    write_text_file(opt.dir + "/generation_config.json",
                    json({{"_from_model_config", true}, {"bos_token_id", 2}, {"eos_token_id", 1}, {"pad_token_id", 0}}).dump(2) +
                        "\n");

    const TensorDims dims{sh.n_embd, sh.n_head, sh.n_head_kv, sh.head_dim, sh.n_ff, n_vocab};
    const size_t esz = st_dtype_size(opt.dtype);
    std::vector<SynthTensor> all;
    auto add = [&](std::string name, std::vector<int64_t> shape, float sd) {
        uint64_t nb = esz;
        for (int64_t d : shape) nb *= static_cast<uint64_t>(d);
        all.push_back({hf_layout_name(opt.layout, name), std::move(shape), sd, nb});
    };
    auto add_def = [&](const TensorDef& d, const std::string& name) {
        // PyTorch order; norm weights are stored without Gemma's +1, small around 0.
        std::vector<int64_t> shape;
        if (d.ne1 != Dim::One) shape.push_back(tensor_dim(d.ne1, dims));
        shape.push_back(tensor_dim(d.ne0, dims));
        add(name, shape, d.norm ? 0.1f : 1.0f / std::sqrt(static_cast<float>(tensor_dim(d.ne0, dims))));
    };
    // HF's state_dict order: the embedding, per layer the attention module, the MLP, then the layer's norms;
    // the final norm.
    add_def(*find_tensor_def(a, TensorId::TokenEmbd), find_tensor_def(a, TensorId::TokenEmbd)->hf);
    for (int64_t l = 0; l < sh.n_layer; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        for (const char* module : {"self_attn.", "mlp.", ""})
            for (const TensorDef& d : a.tensors) {
                const std::string_view hf = d.hf;
                const bool in_module = *module ? hf.rfind(module, 0) == 0
                                               : hf.rfind("self_attn.", 0) != 0 && hf.rfind("mlp.", 0) != 0;
                if (d.per_layer && in_module) add_def(d, p + d.hf);
            }
    }
    for (const TensorDef& d : a.tensors)
        if (!d.per_layer && !d.optional && d.id != TensorId::TokenEmbd) add_def(d, d.hf);
    if (opt.layout != HfLayout::CausalLM) {
        // A token vision tower (SigLIP names) for the converter to leave out.
        const std::string v = opt.layout == HfLayout::Multimodal ? "" : "model.";
        all.push_back({v + "vision_tower.vision_model.embeddings.patch_embedding.weight", {32, 3, 14, 14}, 0.05f, 32 * 3 * 14 * 14 * esz});
        all.push_back({v + "vision_tower.vision_model.embeddings.patch_embedding.bias", {32}, 0.05f, 32 * esz});
        all.push_back({v + "vision_tower.vision_model.post_layernorm.weight", {32}, 0.1f, 32 * esz});
        all.push_back({v + "multi_modal_projector.mm_input_projection_weight", {32, sh.n_embd}, 0.05f,
                       32 * static_cast<uint64_t>(sh.n_embd) * esz});
        all.push_back({v + "multi_modal_projector.mm_soft_emb_norm.weight", {32}, 0.1f, 32 * esz});
    }

    if (static_cast<size_t>(opt.shards) > all.size())
        throw_error("synth-hf: --shards " + std::to_string(opt.shards) + " is more than the " + std::to_string(all.size()) +
                    " tensors of shape '" + sh.name + "'");
    uint64_t total = 0;
    for (const auto& t : all) total += t.nbytes;
    // Contiguous groups of roughly equal size, like save_pretrained's max_shard_size split.
    std::vector<int> shard_of(all.size());
    {
        uint64_t cum = 0;
        for (size_t i = 0; i < all.size(); ++i) {
            shard_of[i] = std::min<int>(opt.shards - 1, static_cast<int>(cum * static_cast<uint64_t>(opt.shards) / total));
            // No empty shard: a huge embedding must not swallow a shard's share.
            if (i > 0) shard_of[i] = std::min(shard_of[i], shard_of[i - 1] + 1);
            shard_of[i] = std::max(shard_of[i], opt.shards - static_cast<int>(all.size() - i));
            cum += all[i].nbytes;
        }
    }
    auto shard_name = [&](int k) {
        if (opt.shards == 1) return std::string("model.safetensors");
        char b[64];
        std::snprintf(b, sizeof b, "model-%05d-of-%05d.safetensors", k + 1, opt.shards);
        return std::string(b);
    };

    const int n_threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    json weight_map = json::object();
    std::vector<float> f32;
    std::vector<uint8_t> out;
    for (int k = 0; k < opt.shards; ++k) {
        SafetensorsWriter w(opt.dir + "/" + shard_name(k));
        w.set_metadata("format", "pt");
        for (size_t i = 0; i < all.size(); ++i)
            if (shard_of[i] == k) {
                w.add_tensor(all[i].name, opt.dtype, all[i].shape);
                weight_map[all[i].name] = shard_name(k);
            }
        w.write_header();
        for (size_t i = 0; i < all.size(); ++i) {
            if (shard_of[i] != k) continue;
            const SynthTensor& t = all[i];
            const int64_t ne0 = t.shape.back();
            int64_t nrows = 1;
            for (size_t d = 0; d + 1 < t.shape.size(); ++d) nrows *= t.shape[d];
            if (!opt.quiet) std::fprintf(stderr, "[%s] %-44s %s\n", shard_name(k).c_str(), t.name.c_str(), shape_str(t.shape).c_str());
            const int64_t per_batch = std::max<int64_t>(1, (int64_t{4} << 20) / ne0);
            for (int64_t r0 = 0; r0 < nrows; r0 += per_batch) {
                const int64_t n = std::min(per_batch, nrows - r0);
                f32.resize(static_cast<size_t>(n * ne0));
                out.resize(static_cast<size_t>(n * ne0) * esz);
                const int nt = static_cast<int>(std::clamp<int64_t>(n_threads, 1, n));
                auto work = [&](int part) {
                    for (int64_t r = n * part / nt; r < n * (part + 1) / nt; ++r) {
                        const uint64_t seed = opt.seed * 0x100000001B3ull ^ (static_cast<uint64_t>(i) << 40) ^ static_cast<uint64_t>(r0 + r);
                        float* row = f32.data() + r * ne0;
                        fill_row(row, ne0, seed, t.stddev);
                        uint8_t* o = out.data() + static_cast<size_t>(r * ne0) * esz;
                        for (int64_t j = 0; j < ne0; ++j) {
                            if (opt.dtype == StDtype::F32) {
                                std::memcpy(o + j * 4, &row[j], 4);
                            } else {
                                const uint16_t h = opt.dtype == StDtype::BF16 ? fp32_to_bf16(row[j]) : fp32_to_fp16(row[j]);
                                std::memcpy(o + j * 2, &h, 2);
                            }
                        }
                    }
                };
                std::vector<std::thread> pool;
                for (int part = 1; part < nt; ++part) pool.emplace_back(work, part);
                work(0);
                for (auto& th : pool) th.join();
                w.write_data(out.data(), out.size());
            }
        }
        w.finish();
    }
    if (opt.shards > 1)
        write_text_file(opt.dir + "/model.safetensors.index.json",
                   json({{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}}).dump(2) + "\n");
}

}  // namespace gemma
