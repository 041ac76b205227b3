// HF Gemma 1/2/3 checkpoint -> GGUF: plan every tensor and key first (so bad input fails before writing), then stream.
#include "convert/convert_hf.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <vector>

#include "convert/gguf_hparams.h"
#include "convert/hf_config.h"
#include "convert/hf_tokenizer.h"
#include "core/error.h"
#include "core/fp16.h"
#include "gguf/gguf.h"

namespace gemma {

namespace {

struct PlannedTensor {
    std::string hf_name, gguf_name;
    const SafetensorsFile* file;
    const StTensor* src;
    TypeId out;
    bool is_norm;
    std::vector<int64_t> ne;  // ggml order: reversed HF shape
    int64_t n;                // elements written: the first n of the source
    bool is_embd = false;
};

float load_f32(const uint8_t* p, StDtype st) {
    if (st == StDtype::F32) {
        float f;
        std::memcpy(&f, p, 4);
        return f;
    }
    uint16_t h;
    std::memcpy(&h, p, 2);
    return st == StDtype::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
}

uint32_t ftype_of(TypeId t) { return t == TypeId::F32 ? 0 : t == TypeId::F16 ? 1 : 32; }


}  // namespace

uint64_t convert_elements(const uint8_t* src, StDtype st, int64_t n, bool add_one, TypeId out, uint8_t* dst) {
    const size_t in_sz = st_dtype_size(st);
    uint64_t overflow = 0;
    for (int64_t i = 0; i < n; ++i) {
        float f = load_f32(src + static_cast<size_t>(i) * in_sz, st);
        if (add_one) {
            f += 1.0f;
            // The reference widens bf16 to f32 before the +1, but keeps f16 tensors in f16, where
            // PyTorch rounds the sum back to half precision.
            if (st == StDtype::F16) f = fp16_to_fp32(fp32_to_fp16(f));
        }
        if (out == TypeId::F32) {
            std::memcpy(dst + static_cast<size_t>(i) * 4, &f, 4);
        } else {
            const uint16_t h = out == TypeId::F16 ? fp32_to_fp16(f) : fp32_to_bf16(f);
            if (out == TypeId::F16 && (h & 0x7FFFu) == 0x7C00u && std::isfinite(f)) ++overflow;
            std::memcpy(dst + static_cast<size_t>(i) * 2, &h, 2);
        }
    }
    return overflow;
}

std::string size_label(int64_t n) {
    // gguf-py's model_weight_count_rounded_notation(min_digits=2).
    double scaled;
    const char* suffix;
    if (n > 1e12) scaled = n * 1e-12, suffix = "T";
    else if (n > 1e9) scaled = n * 1e-9, suffix = "B";
    else if (n > 1e6) scaled = n * 1e-6, suffix = "M";
    else scaled = n * 1e-3, suffix = "K";
    std::string digits = std::to_string(static_cast<long long>(std::nearbyint(scaled)));
    digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
    const int fix = std::max(2 - static_cast<int>(digits.size()), 0);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f%s", fix, scaled, suffix);
    return buf;
}

ConvertStats convert_hf(const ConvertOptions& opt) {
    if (opt.outtype != TypeId::BF16 && opt.outtype != TypeId::F16 && opt.outtype != TypeId::F32)
        throw_error("convert: the output type must be bf16, f16 or f32");
    const HfConfig cfg = HfConfig::load(opt.input_dir);
    const ArchDesc& arch = *cfg.arch;
    for (const std::string& w : cfg.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    const SafetensorsSet set = SafetensorsSet::open_dir(opt.input_dir);

    // Tensor order is the reference's: shard files in name order, tensors in name order within each.
    std::vector<PlannedTensor> plan;
    ConvertStats stats;
    stats.arch = arch.gguf_arch;
    std::set<std::string> present;  // text-model names
    std::set<std::string> towers;   // prefixes of the left-out tensors
    for (const auto& f : set.files()) {
        for (const auto& [name, t] : f->tensors()) {
            if (std::string_view tower = other_tower_of(cfg, name); !tower.empty()) {
                ++stats.n_other_tower;
                towers.insert(std::string(tower) + "*");
                continue;
            }
            std::optional<TensorMapping> m;
            try {
                m = map_gemma_tensor(cfg, name);
            } catch (const Error& e) {
                throw_error(f->path() + ": " + e.what());
            }
            if (!m) {
                if (!opt.quiet) std::fprintf(stderr, "skipping %s (not written by llama.cpp's Gemma converter)\n", name.c_str());
                continue;
            }
            if (t.shape != m->hf_shape)
                throw_error(f->path() + ": tensor '" + name + "' has shape " + shape_str(t.shape) + " but " + cfg.path +
                            " implies " + shape_str(m->hf_shape));
            if (!present.insert(text_tensor_name(cfg, name)).second)
                throw_error(f->path() + ": tensor '" + name + "' appears twice (under two prefix spellings)");
            PlannedTensor p{name, m->gguf_name, f.get(), &t, opt.outtype, m->is_norm, {}, t.n_elements()};
            // Norms and any 1-D tensor stay F32: ggml's norm and add ops only take F32 there.
            if (m->is_norm || t.shape.size() <= 1) p.out = TypeId::F32;
            p.ne.assign(t.shape.rbegin(), t.shape.rend());
            if (m->def->id == TensorId::TokenEmbd) p.is_embd = true;
            plan.push_back(std::move(p));
        }
    }
    if (stats.n_other_tower) {
        std::string list;
        for (const std::string& t : towers) list += (list.empty() ? "" : ", ") + t;
        std::fprintf(stderr, "leaving out %zu tensors of the other towers (%s): the GGUF holds the text model only, as "
                     "llama.cpp writes it (the vision encoder goes to a separate mmproj file)\n", stats.n_other_tower,
                     list.c_str());
    }
    for (const std::string& name : gemma_hf_tensor_names(cfg))
        if (!present.count(name))
            throw_error(opt.input_dir + ": tensor '" + name + "' is missing from the checkpoint (a " + cfg.architecture +
                        " with " + std::to_string(cfg.num_hidden_layers) + " layers, as config.json says, has it)");

    HfVocabSources vs;
    vs.dir = opt.input_dir;
    vs.vocab_size = cfg.vocab_size;
    vs.size_from_tokenizer = arch.trim_vocab;
    vs.config_ids = cfg.token_ids;
    vs.generation_ids = load_generation_token_ids(opt.input_dir);
    HfVocab vocab = load_hf_vocab(vs);
    stats.vocab_source = vocab.source;
    for (const std::string& w : vocab.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    const auto n_vocab = static_cast<int64_t>(vocab.tokens.size());

    for (PlannedTensor& p : plan) {
        // Gemma 3's embedding has rows past the tokenizer's (262208 for 262144 tokens): llama.cpp keeps the
        // tokenizer's rows, the first ones.
        if (p.is_embd && p.ne[1] != n_vocab) {
            if (p.ne[1] < n_vocab)
                throw_error(p.file->path() + ": tensor '" + p.hf_name + "' has " + std::to_string(p.ne[1]) +
                            " rows but the tokenizer has " + std::to_string(n_vocab) + " tokens");
            if (!opt.quiet)
                std::fprintf(stderr, "token_embd.weight: keeping the tokenizer's %lld of %lld rows, as llama.cpp does\n",
                             static_cast<long long>(n_vocab), static_cast<long long>(p.ne[1]));
            p.ne[1] = n_vocab;
            p.n = p.ne[0] * n_vocab;
        }
        stats.n_params += p.n;
    }

    std::string name = opt.name;
    if (name.empty()) name = std::filesystem::absolute(opt.input_dir).lexically_normal().filename().string();
    if (name.empty()) name = std::filesystem::absolute(opt.input_dir).lexically_normal().parent_path().filename().string();

    // Keys in the order convert_hf_to_gguf.py adds them. Compared with golden/vocab/gemma-vocab.gguf
    // (a vocabulary-only file made by another tool) the deliberate differences are:
    //  - general.* and gemma.* come from this checkpoint (the fixture carries a 7B's), plus general.type
    //    and general.size_label, which the reference's model-card step writes (its name heuristics
    //    for basename/finetune/version are not reproduced; general.name is the directory's name);
    //  - tokenizer.ggml.eot_token_id = 107 is present: the reference sets it explicitly for Gemma,
    //    the fixture lacks it (llama.cpp finds <end_of_turn> by its text anyway);
    //  - chat_template comes before eot/add_space_prefix, where the reference's SpecialVocab puts it.
    // tokens, scores, token types and the bos/eos/unk/pad ids and add_bos/add_eos flags are equal.
    // Gemma 2 and 3 add their keys after general.file_type (gguf_hparams.cpp), in golden/gemma2 and gemma3's order.
    // Two deliberate differences there: Gemma 2 files carry gemma2.rope.freq_base (from rope_theta; llama.cpp's
    // Gemma 2 class leaves it to the loader's default, golden/gemma2's file has it), and a Gemma 3 lm_head.weight
    // is dropped like Gemma 1/2's (it is tied; llama.cpp would write it untrimmed as output.weight).
    GgufWriter w(opt.output);
    w.set("general.architecture", GgufValue::string(arch.gguf_arch));
    w.set("general.type", GgufValue::string("model"));
    w.set("general.name", GgufValue::string(name));
    w.set("general.size_label", GgufValue::string(size_label(stats.n_params)));
    write_gguf_hparams(w, arch, cfg.gguf_hparams(), ftype_of(opt.outtype));
    w.set("tokenizer.ggml.model", GgufValue::string("llama"));
    w.set("tokenizer.ggml.pre", GgufValue::string("default"));
    w.set("tokenizer.ggml.tokens", GgufValue::string_array(std::move(vocab.tokens)));
    w.set("tokenizer.ggml.scores", GgufValue::f32_array(vocab.scores));
    w.set("tokenizer.ggml.token_type", GgufValue::i32_array(vocab.types));
    for (const auto& [key, id] : vocab.special_ids) w.set("tokenizer.ggml." + key + "_token_id", GgufValue::u32(id));
    for (const auto& [key, on] : vocab.add_flags) w.set("tokenizer.ggml.add_" + key + "_token", GgufValue::boolean(on));
    if (vocab.has_chat_template) w.set("tokenizer.chat_template", GgufValue::string(vocab.chat_template));
    // Gemma 1's converter also sets FIM ids 67/69/68/70, which gguf-py drops for want of a writer.
    if (arch.gguf_eot_id >= 0 && n_vocab > arch.gguf_eot_id)
        w.set("tokenizer.ggml.eot_token_id", GgufValue::u32(static_cast<uint32_t>(arch.gguf_eot_id)));
    w.set("tokenizer.ggml.add_space_prefix", GgufValue::boolean(false));
    w.set("general.quantization_version", GgufValue::u32(2));
    for (const PlannedTensor& p : plan) w.add_tensor(p.gguf_name, p.out, p.ne);
    w.write_header();

    std::vector<uint8_t> buf;
    for (size_t ti = 0; ti < plan.size(); ++ti) {
        const PlannedTensor& p = plan[ti];
        const StTensor& t = *p.src;
        if (!opt.quiet)
            std::fprintf(stderr, "[%4zu/%4zu] %-28s %-4s -> %-4s %s\n", ti + 1, plan.size(), p.gguf_name.c_str(),
                         st_dtype_name(t.dtype), type_name(p.out), shape_str(p.ne).c_str());
        const int64_t n = p.n;
        const size_t in_sz = st_dtype_size(t.dtype), out_sz = p.out == TypeId::F32 ? 4 : 2;
        const bool same = !p.is_norm && ((t.dtype == StDtype::BF16 && p.out == TypeId::BF16) ||
                                         (t.dtype == StDtype::F16 && p.out == TypeId::F16) ||
                                         (t.dtype == StDtype::F32 && p.out == TypeId::F32));
        // Chunks of ~16 MB of input: large enough for sequential I/O, small enough that the only
        // large allocation is this one buffer whatever the checkpoint size.
        const int64_t chunk = std::max<int64_t>(1, (int64_t{16} << 20) / static_cast<int64_t>(in_sz));
        uint64_t overflow = 0;
        for (int64_t i0 = 0; i0 < n; i0 += chunk) {
            const int64_t k = std::min(chunk, n - i0);
            const uint8_t* s = t.data + static_cast<size_t>(i0) * in_sz;
            if (same) {
                w.write_tensor_data(s, static_cast<size_t>(k) * in_sz);  // bit-identical: straight from the mapping
            } else {
                buf.resize(static_cast<size_t>(k) * out_sz);
                overflow += convert_elements(s, t.dtype, k, p.is_norm, p.out, buf.data());
                w.write_tensor_data(buf.data(), buf.size());
            }
            p.file->release(s, static_cast<size_t>(k) * in_sz);
        }
        if (overflow) {
            std::fprintf(stderr, "warning: %s: %llu value(s) exceed the f16 range (65504) and were written as +-inf; "
                         "use --outtype bf16 or f32\n", p.hf_name.c_str(), static_cast<unsigned long long>(overflow));
            stats.f16_overflows += overflow;
        }
        p.file->release(t.data, t.nbytes);
    }
    std::vector<uint8_t>().swap(buf);
    w.finish();
    stats.n_tensors = plan.size();
    return stats;
}

}  // namespace gemma
