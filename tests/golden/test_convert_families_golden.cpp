// Golden: Gemma 2 and Gemma 3 checkpoints (sharded, multimodal-named) convert to golden/gemma2 and gemma3's keys,
// tensors and vocabularies, and the converted models give llama.cpp's logits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "arch/arch.h"
#include "convert/convert_hf.h"
#include "convert/hf_config.h"
#include "convert/hf_synth.h"
#include "convert/hf_synth_files.h"
#include "convert/safetensors.h"
#include "convert/synth.h"
#include "core/fp16.h"
#include "gguf/gguf.h"
#include "model/config.h"
#include "model/context.h"
#include "model/model.h"
#include "runtime/chat_template.h"
#include "support/golden.h"
#include "support/logits.h"

namespace gemma {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct Family {
    std::string dir, stem;  // "gemma2", "tiny-g2"
    std::string golden() const { return test::golden(dir + "/" + stem + "-f32.gguf"); }
};
const Family kG2{"gemma2", "tiny-g2"}, kG3{"gemma3", "tiny-g3"};

std::string convert(const std::string& dir, TypeId outtype, const std::string& name = "", ConvertStats* stats = nullptr) {
    ConvertOptions o;
    o.input_dir = dir;
    o.output = test::temp_dir() + "/" + fs::path(dir).filename().string() + ".gguf";
    o.outtype = outtype;
    o.name = name;
    o.quiet = true;
    const ConvertStats s = convert_hf(o);
    if (stats) *stats = s;
    return o.output;
}

bool same_value(const GgufValue& a, const GgufValue& b) {
    return a.type == b.type && a.u64 == b.u64 && a.i64 == b.i64 && a.f64 == b.f64 && a.str == b.str &&
           a.elem_type == b.elem_type && a.count == b.count && a.raw == b.raw && a.strs == b.strs;
}

// What convert_hf_to_gguf writes and a hand-made reference file leaves to the model card step.
const std::set<std::string> kConverterOnly = {"general.type", "general.size_label", "general.quantization_version"};

// Our file has exactly the reference's keys (and the `extra` ones), each of the same type; the listed
// prefixes must also have equal values, except the keys in `except`.
void expect_keys(const GgufFile& ours, const GgufFile& ref, const std::vector<std::string>& equal_prefixes,
                 const std::set<std::string>& except = {}, const std::set<std::string>& extra = kConverterOnly) {
    std::set<std::string> want = extra, got;
    for (const GgufKv& kv : ref.kvs()) {
        want.insert(kv.key);
        const GgufValue* v = ours.find(kv.key);
        if (!v) continue;
        EXPECT_EQ(v->type, kv.value.type) << kv.key;
        for (const std::string& p : equal_prefixes) {
            if (kv.key.rfind(p, 0) != 0 || except.count(kv.key)) continue;
            EXPECT_TRUE(same_value(*v, kv.value)) << kv.key << ": ours " << v->to_display() << ", reference "
                                                  << kv.value.to_display();
        }
    }
    for (const GgufKv& kv : ours.kvs()) got.insert(kv.key);
    EXPECT_EQ(got, want);
}

// The same tensor names and shapes as the reference, in any order; `embd` is our embedding's shape when the
// vocabulary differs from the reference's.
void expect_tensor_names(const GgufFile& ours, const GgufFile& ref, const std::string& embd = "") {
    std::map<std::string, std::string> a, b;
    for (const GgufTensor& t : ours.tensors()) a[t.name] = t.shape_string();
    for (const GgufTensor& t : ref.tensors()) b[t.name] = t.shape_string();
    if (!embd.empty()) b["token_embd.weight"] = embd;
    EXPECT_EQ(a, b);
}

// --- golden model -> Hugging Face checkpoint -> convert: the round trip must give llama.cpp's logits ---

// An HF checkpoint holding a golden F32 model: every tensor under its HF name (norms without the +1), F32, the
// config written by hand from the file's keys, tokenizer files from its vocabulary. `multimodal`: the
// Gemma3ForConditionalGeneration spelling with a text_config, extra embedding rows and a vision tensor.
std::string export_golden(const Family& f, int shards, bool multimodal) {
    const auto g = GgufFile::open(f.golden());
    const ArchDesc& a = *find_arch(g->get_string("general.architecture"));
    const std::string arch = a.gguf_arch, dir = test::temp_dir() + "/export-" + f.stem;
    fs::create_directories(dir);
    HfSynthOptions tok;
    tok.dir = dir;
    tok.vocab_gguf = f.golden();
    tok.layout = multimodal ? HfLayout::Multimodal : HfLayout::CausalLM;
    const int64_t n_tokens = write_hf_tokenizer_files(tok, a);
    const int64_t rows = n_tokens + (multimodal ? 64 : 0);

    auto key_u = [&](const char* k) { return static_cast<int64_t>(g->get_uint(arch + "." + k)); };
    auto key_f = [&](const char* k) { return g->get_float(arch + "." + k); };
    json t = {{"hidden_size", key_u("embedding_length")}, {"intermediate_size", key_u("feed_forward_length")},
              {"num_hidden_layers", key_u("block_count")}, {"num_attention_heads", key_u("attention.head_count")},
              {"num_key_value_heads", key_u("attention.head_count_kv")}, {"head_dim", key_u("attention.key_length")},
              {"max_position_embeddings", key_u("context_length")}, {"rms_norm_eps", 1e-6}, {"vocab_size", rows},
              {"sliding_window", key_u("attention.sliding_window")}, {"rope_theta", key_f("rope.freq_base")},
              {"query_pre_attn_scalar", key_u("attention.key_length")}};
    if (arch == "gemma2") {
        t["architectures"] = {"Gemma2ForCausalLM"};
        t["attn_logit_softcapping"] = key_f("attn_logit_softcapping");
        t["final_logit_softcapping"] = key_f("final_logit_softcapping");
    } else {
        t["rope_local_base_freq"] = key_f("rope.freq_base_swa");
        t["rope_scaling"] = {{"rope_type", "linear"}, {"factor", key_f("rope.scaling.factor")}};
        t["sliding_window_pattern"] = 6;
        t["final_logit_softcapping"] = nullptr;
        t["attn_logit_softcapping"] = nullptr;
    }
    json cfg = t;
    if (multimodal)
        cfg = {{"architectures", {"Gemma3ForConditionalGeneration"}}, {"model_type", "gemma3"}, {"text_config", t},
               {"eos_token_id", {1, 106}}, {"image_token_index", n_tokens}};
    else if (arch == "gemma3")
        cfg["architectures"] = {"Gemma3ForCausalLM"};
    write_text_file(dir + "/config.json", cfg.dump(2));

    // Tensors in name order, split into `shards` files.
    std::map<std::string, std::pair<const GgufTensor*, const TensorDef*>> by_hf;
    for (const GgufTensor& gt : g->tensors()) {
        int64_t layer = -1;
        const TensorDef* d = match_gguf_tensor(a, gt.name, &layer);
        EXPECT_TRUE(d) << gt.name;
        if (!d) continue;
        std::string hf = d->per_layer ? "model.layers." + std::to_string(layer) + "." + d->hf : std::string(d->hf);
        if (multimodal) hf = "language_model." + hf;
        by_hf[hf] = {&gt, d};
    }
    std::vector<std::string> names;
    for (const auto& [n, v] : by_hf) names.push_back(n);
    if (multimodal) names.push_back("vision_tower.vision_model.post_layernorm.weight");
    std::vector<std::unique_ptr<SafetensorsWriter>> w;
    json weight_map = json::object();
    for (int k = 0; k < shards; ++k) {
        char b[64];
        std::snprintf(b, sizeof b, "model-%05d-of-%05d.safetensors", k + 1, shards);
        w.push_back(std::make_unique<SafetensorsWriter>(dir + "/" + (shards == 1 ? std::string("model.safetensors") : b)));
    }
    auto shard = [&](size_t i) { return static_cast<int>(i * static_cast<size_t>(shards) / names.size()); };
    for (size_t i = 0; i < names.size(); ++i) {
        std::vector<int64_t> shape = {32};
        if (by_hf.count(names[i])) {
            const GgufTensor& gt = *by_hf[names[i]].first;
            shape.assign(1, gt.ne[0]);
            if (gt.n_dims == 2) shape.insert(shape.begin(), by_hf[names[i]].second->id == TensorId::TokenEmbd ? rows : gt.ne[1]);
        }
        w[shard(i)]->add_tensor(names[i], StDtype::F32, shape);
    }
    for (int k = 0; k < shards; ++k) w[k]->write_header();
    for (size_t i = 0; i < names.size(); ++i) {
        std::vector<float> data(32, 0.5f);
        if (by_hf.count(names[i])) {
            const auto& [gt, d] = by_hf[names[i]];
            const float* src = reinterpret_cast<const float*>(gt->data);
            data.assign(src, src + gt->n_elements());
            if (d->norm)
                for (float& x : data) x -= 1.0f;  // HF keeps Gemma's norm gains without the +1
            if (d->id == TensorId::TokenEmbd) data.resize(static_cast<size_t>(rows * gt->ne[0]), 7.0f);
        }
        w[shard(i)]->write_data(data.data(), data.size() * 4);
    }
    for (int k = 0; k < shards; ++k) w[k]->finish();
    if (shards > 1) {
        for (size_t i = 0; i < names.size(); ++i) {
            char b[64];
            std::snprintf(b, sizeof b, "model-%05d-of-%05d.safetensors", shard(i) + 1, shards);
            weight_map[names[i]] = b;
        }
        write_text_file(dir + "/model.safetensors.index.json", json({{"metadata", json::object()}, {"weight_map", weight_map}}).dump());
    }
    return dir;
}

ops::ThreadPool& pool() {
    static ops::ThreadPool p(2);
    return p;
}

void expect_golden_round_trip(const Family& f, int shards, bool multimodal) {
    ConvertStats st;
    const std::string out = convert(export_golden(f, shards, multimodal), TypeId::F32, "", &st);
    EXPECT_EQ(st.n_other_tower, multimodal ? 1u : 0u);
    const auto ours = GgufFile::open(out);
    const auto ref = GgufFile::open(f.golden());
    // Every model and tokenizer key equals the reference's (which carries a name of its own).
    expect_keys(*ours, *ref, {f.dir + ".", "tokenizer."});
    expect_tensor_names(*ours, *ref);
    for (const GgufTensor& r : ref->tensors()) {
        const GgufTensor& t = ours->tensor(r.name);
        ASSERT_EQ(t.type, TypeId::F32) << r.name;
        const float* a = reinterpret_cast<const float*>(t.data);
        const float* b = reinterpret_cast<const float*>(r.data);
        const bool norm = r.name.find("norm") != std::string::npos;
        for (int64_t i = 0; i < r.n_elements(); ++i) {
            // (w - 1) + 1 rounds twice in f32; everything else passes through unchanged.
            if (norm) ASSERT_NEAR(a[i], b[i], 1e-6 * std::fabs(b[i])) << r.name << "[" << i << "]";
            else ASSERT_EQ(a[i], b[i]) << r.name << "[" << i << "]";
        }
    }
    // The converted model is llama.cpp's model: its logits within the F32 tolerance, across the window too.
    const auto m = Model::load(out);
    for (const auto& [tokens_file, suffix, slack] :
         {std::tuple<const char*, const char*, int>{"tokens.txt", ".bin", 2}, {"tokens-long.txt", ".long.bin", 8}}) {
        const auto tokens = test::read_ids(test::golden(f.dir + "/logits/" + tokens_file));
        const auto want = test::read_floats(test::golden(f.dir + "/logits/" + f.stem + "-f32" + suffix));
        ContextParams p;
        p.n_ctx = static_cast<int64_t>(tokens.size());
        p.pool = &pool();
        Context ctx(*m, p);
        std::vector<float> got(tokens.size() * static_cast<size_t>(m->config().n_vocab));
        ctx.forward(tokens, 0, static_cast<int32_t>(tokens.size()), got.data());
        test::compare_logits("converted " + f.stem + (slack == 8 ? " long" : ""), got, want, m->config().n_vocab, 2e-3,
                             static_cast<int64_t>(tokens.size()) - slack);
    }
}

TEST(ConvertFamiliesGolden, Gemma2ShardedRoundTripGivesLlamaCppLogits) { expect_golden_round_trip(kG2, 3, false); }

TEST(ConvertFamiliesGolden, Gemma3MultimodalRoundTripGivesLlamaCppLogits) { expect_golden_round_trip(kG3, 1, true); }

// --- synth-hf checkpoints: real vocabularies, the converter's keys, and the result runs ---

std::string synth_hf(const std::string& shape, HfLayout layout, int shards, int64_t n_vocab = 0) {
    HfSynthOptions o;
    o.dir = test::temp_dir() + "/hf-" + shape + "-" + std::to_string(static_cast<int>(layout));
    o.shape = shape;
    o.layout = layout;
    o.shards = shards;
    o.n_vocab = n_vocab;
    o.quiet = true;
    write_hf_checkpoint(o);
    return o.dir;
}

// Each converted tensor is its source with norms + 1 (bf16 source, bf16 or f32 output); the embedding keeps the
// tokenizer's first rows.
void expect_tensors_from_source(const std::string& dir, const GgufFile& g) {
    const HfConfig cfg = HfConfig::load(dir);
    const SafetensorsSet src = SafetensorsSet::open_dir(dir);
    size_t checked = 0;
    for (const auto& f : src.files())
        for (const auto& [name, s] : f->tensors()) {
            if (!other_tower_of(cfg, name).empty()) continue;
            const TensorMapping m = *map_gemma_tensor(cfg, name);
            const GgufTensor& t = g.tensor(m.gguf_name);
            ++checked;
            if (m.is_norm) {
                ASSERT_EQ(t.type, TypeId::F32) << name;
                for (int64_t i = 0; i < s.n_elements(); ++i) {
                    uint16_t b;
                    std::memcpy(&b, s.data + 2 * i, 2);
                    ASSERT_EQ(reinterpret_cast<const float*>(t.data)[i], bf16_to_fp32(b) + 1.0f) << name << "[" << i << "]";
                }
            } else {
                ASSERT_EQ(t.type, TypeId::BF16) << name;
                ASSERT_LE(t.nbytes, s.nbytes) << name;
                EXPECT_EQ(std::memcmp(t.data, s.data, t.nbytes), 0) << name;
            }
        }
    EXPECT_EQ(checked, g.tensors().size());
}

void expect_runs(const std::string& gguf) {
    std::string out, err;
    ASSERT_EQ(test::run_gemma("run " + gguf + " -p \"Hello world\" -n 4 --temp 0 --ignore-eos", &out, &err), 0) << err;
    EXPECT_NE(err.find("generation: 4 tokens"), std::string::npos) << err;
}

TEST(ConvertFamiliesGolden, Gemma2SyntheticShardedCheckpoint) {
    const std::string dir = synth_hf("tiny-g2", HfLayout::CausalLM, 2);
    const auto g = GgufFile::open(convert(dir, TypeId::BF16));
    const auto ref = GgufFile::open(kG2.golden());
    // The golden model's soft-caps are small on purpose; synthetic checkpoints carry the real 50 / 30.
    expect_keys(*g, *ref, {"gemma2."}, {"gemma2.attn_logit_softcapping", "gemma2.final_logit_softcapping"});
    EXPECT_EQ(g->get_float("gemma2.attn_logit_softcapping"), 50.0);
    EXPECT_EQ(g->get_float("gemma2.final_logit_softcapping"), 30.0);
    // Gemma 2 has Gemma 1's vocabulary.
    const auto vocab = GgufFile::open(test::golden("vocab/gemma-vocab.gguf"));
    for (const char* k : {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type", "tokenizer.chat_template"})
        EXPECT_TRUE(same_value(*g->find(k), *vocab->find(k))) << k;
    EXPECT_EQ(g->find("tokenizer.ggml.eot_token_id"), nullptr);  // only Gemma 1's converter sets it
    expect_tensor_names(*g, *ref, "[256, 256000]");
    expect_tensors_from_source(dir, *g);
    const ModelConfig c = ModelConfig::from_gguf(*g);
    for (int il = 0; il < 4; ++il) EXPECT_EQ(c.layers[il].sliding, il % 2 == 0) << il;
    expect_runs(g->path());
}

TEST(ConvertFamiliesGolden, Gemma3SyntheticMultimodalCheckpoint) {
    const std::string dir = synth_hf("tiny-g3", HfLayout::Multimodal, 3);
    ConvertStats st;
    const auto g = GgufFile::open(convert(dir, TypeId::BF16, "", &st));
    EXPECT_EQ(st.n_other_tower, 5u);
    // Every gemma3.* key equals the golden tiny model's (same shape, window and RoPE settings); the vocabulary is
    // the whole Gemma 3 one, and the embedding keeps its 262144 rows of the checkpoint's 262208.
    expect_keys(*g, *GgufFile::open(kG3.golden()), {"gemma3."});
    const auto vocab = GgufFile::open(test::golden("gemma3/gemma3-vocab.gguf"));
    expect_keys(*g, *vocab, {"tokenizer."});
    EXPECT_EQ(HfConfig::load(dir).vocab_size, 262208);
    expect_tensor_names(*g, *GgufFile::open(kG3.golden()), "[256, 262144]");
    expect_tensors_from_source(dir, *g);
    const ModelConfig c = ModelConfig::from_gguf(*g);
    for (int il = 0; il < 6; ++il) {
        EXPECT_EQ(c.layers[il].sliding, il != 5) << il;
        EXPECT_EQ(c.layers[il].rope_freq_scale, il == 5 ? 0.125f : 1.0f) << il;
    }
    // Its chat prompts take Gemma 3's format (from the file's architecture and template).
    EXPECT_EQ(chat_format_of(Vocab::from_gguf(*g)), ChatFormat::Gemma3);
    // The command line says once that the vision tower is left out.
    std::string err;
    const std::string cli = test::temp_dir() + "/cli.gguf";
    ASSERT_EQ(test::run_gemma("convert " + dir + " " + cli + " -q", nullptr, &err), 0) << err;
    size_t lines = 0;
    for (size_t p = 0; (p = err.find("leaving out", p)) != std::string::npos; ++p) ++lines;
    EXPECT_EQ(lines, 1u) << err;
    EXPECT_NE(err.find("vision_tower.*"), std::string::npos) << err;
    expect_runs(g->path());
}

// The three ways to name a Gemma 3 text model give one GGUF.
TEST(ConvertFamiliesGolden, Gemma3LayoutsConvertToTheSameFile) {
    std::vector<uint8_t> first;
    for (HfLayout l : {HfLayout::CausalLM, HfLayout::Multimodal, HfLayout::MultimodalV5}) {
        const std::string out = convert(synth_hf("tiny-g3", l, 2, 1024), TypeId::BF16, "tiny-gemma3");
        const std::vector<uint8_t> bytes = test::read_file_bytes(out);
        if (first.empty()) first = bytes;
        else EXPECT_TRUE(bytes == first) << "layout " << static_cast<int>(l);
    }
}

// `synth` writes the golden models' keys and tensors (names, shapes, order) for the tiny shapes of both families.
TEST(ConvertFamiliesGolden, SynthMatchesGoldenLayout) {
    for (const Family& f : {kG2, kG3}) {
        SynthOptions o;
        o.output = test::temp_dir() + "/" + f.stem + ".gguf";
        o.shape = f.stem;
        o.n_vocab = 1024;
        o.outtype = TypeId::F32;
        o.quiet = true;
        synth_model(o);
        const auto g = GgufFile::open(o.output);
        const auto ref = GgufFile::open(f.golden());
        std::set<std::string> except;
        if (f.dir == "gemma2") except = {"gemma2.attn_logit_softcapping", "gemma2.final_logit_softcapping"};
        expect_keys(*g, *ref, {f.dir + ".", "tokenizer."}, except, {"general.type", "general.quantization_version"});
        ASSERT_EQ(g->tensors().size(), ref->tensors().size());
        for (size_t i = 0; i < ref->tensors().size(); ++i) {
            EXPECT_EQ(g->tensors()[i].name, ref->tensors()[i].name) << i;
            EXPECT_EQ(g->tensors()[i].shape_string(), ref->tensors()[i].shape_string()) << i;
            EXPECT_EQ(g->tensors()[i].type, ref->tensors()[i].type) << i;
        }
        expect_runs(o.output);
    }
}

}  // namespace
}  // namespace gemma
