// Gemma 2/3 config.json reading (text_config, defaults, layer types, RoPE, soft-caps), tensor-name mapping, the
// hyper-parameter keys as llama.cpp's loader reads them back, and a clear error for every bad config.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "arch/arch.h"
#include "convert/convert_hf.h"
#include "convert/gguf_hparams.h"
#include "convert/hf_config.h"
#include "convert/hf_synth.h"
#include "convert/safetensors.h"
#include "convert/synth.h"
#include "core/error.h"
#include "gguf/gguf.h"
#include "model/config.h"
#include "support/golden.h"

namespace gemma {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A gemma-3-1b-it style config.json and a gemma-3-4b-it style one (text_config with only non-defaults).
json gemma3_1b() {
    return {{"architectures", {"Gemma3ForCausalLM"}}, {"attn_logit_softcapping", nullptr}, {"bos_token_id", 2},
            {"eos_token_id", {1, 106}}, {"final_logit_softcapping", nullptr}, {"head_dim", 256}, {"hidden_size", 1152},
            {"intermediate_size", 6912}, {"max_position_embeddings", 32768}, {"model_type", "gemma3_text"},
            {"num_attention_heads", 4}, {"num_hidden_layers", 26}, {"num_key_value_heads", 1}, {"pad_token_id", 0},
            {"query_pre_attn_scalar", 256}, {"rms_norm_eps", 1e-06}, {"rope_local_base_freq", 10000},
            {"rope_scaling", nullptr}, {"rope_theta", 1000000}, {"sliding_window", 512}, {"sliding_window_pattern", 6},
            {"vocab_size", 262144}};
}
json gemma3_4b() {
    return {{"architectures", {"Gemma3ForConditionalGeneration"}}, {"eos_token_id", {1, 106}}, {"model_type", "gemma3"},
            {"image_token_index", 262144}, {"mm_tokens_per_image", 256},
            {"text_config", {{"hidden_size", 2560}, {"intermediate_size", 10240}, {"model_type", "gemma3_text"},
                             {"num_hidden_layers", 34}, {"rope_scaling", {{"factor", 8.0}, {"rope_type", "linear"}}},
                             {"sliding_window", 1024}}},
            {"vision_config", {{"hidden_size", 1152}, {"model_type", "siglip_vision_model"}}}};
}
json gemma2_2b() {
    return {{"architectures", {"Gemma2ForCausalLM"}}, {"attn_logit_softcapping", 50.0}, {"final_logit_softcapping", 30.0},
            {"head_dim", 256}, {"hidden_size", 2304}, {"intermediate_size", 9216}, {"max_position_embeddings", 8192},
            {"model_type", "gemma2"}, {"num_attention_heads", 8}, {"num_hidden_layers", 26}, {"num_key_value_heads", 4},
            {"query_pre_attn_scalar", 256}, {"rms_norm_eps", 1e-06}, {"rope_theta", 10000.0}, {"sliding_window", 4096},
            {"vocab_size", 256000}};
}

HfConfig load(const json& cfg) {
    const std::string d = test::temp_dir() + "/cfg";
    fs::create_directories(d);
    std::ofstream(d + "/config.json") << cfg.dump();
    return HfConfig::load(d);
}

std::string load_error(const json& cfg) {
    try {
        load(cfg);
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

json edit(json j, const std::function<void(json&)>& f) {
    f(j);
    return j;
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(ConvertFamilies, Gemma3MultimodalConfigTakesTextConfigAndDefaults) {
    const HfConfig c = load(gemma3_4b());
    EXPECT_EQ(c.arch->family, Family::Gemma3);
    EXPECT_TRUE(c.multimodal);
    EXPECT_EQ(c.hidden_size, 2560);
    EXPECT_EQ(c.num_hidden_layers, 34);
    // Gemma3TextConfig's defaults fill what the published config leaves out.
    EXPECT_EQ(c.num_attention_heads, 8);
    EXPECT_EQ(c.num_key_value_heads, 4);
    EXPECT_EQ(c.head_dim, 256);
    EXPECT_EQ(c.max_position_embeddings, 131072);
    EXPECT_EQ(c.vocab_size, 262208);
    EXPECT_EQ(c.rms_norm_eps, 1e-6);
    EXPECT_EQ(c.rope_theta, 1e6);
    EXPECT_EQ(c.rope_local_base_freq, 10000.0);
    EXPECT_EQ(c.rope_scaling_factor, 8.0);
    EXPECT_EQ(c.sliding_window, 1024);
    ASSERT_EQ(c.sliding.size(), 34u);
    for (size_t il = 0; il < 34; ++il) EXPECT_EQ(c.sliding[il], il % 6 != 5) << il;
    EXPECT_TRUE(c.warnings.empty());
    // Top-level ids are lists here: ignored, the tokenizer files name the specials.
    EXPECT_FALSE(c.token_ids.count("eos"));
}

TEST(ConvertFamilies, Gemma3TransformersV5Config) {
    json t = gemma3_4b()["text_config"];
    t.erase("rope_scaling");
    t["layer_types"] = json::array();
    for (int il = 0; il < 34; ++il) t["layer_types"].push_back(il % 3 == 2 ? "full_attention" : "sliding_attention");
    t["rope_parameters"] = {{"full_attention", {{"rope_type", "linear"}, {"factor", 4.0}, {"rope_theta", 500000.0}}},
                            {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 20000.0}}}};
    const HfConfig c = load(edit(gemma3_4b(), [&](json& j) { j["text_config"] = t; }));
    EXPECT_EQ(c.rope_theta, 500000.0);
    EXPECT_EQ(c.rope_local_base_freq, 20000.0);
    EXPECT_EQ(c.rope_scaling_factor, 4.0);
    for (size_t il = 0; il < 34; ++il) EXPECT_EQ(c.sliding[il], il % 3 != 2) << il;
}

TEST(ConvertFamilies, Gemma2AndOldConfigs) {
    HfConfig c = load(gemma2_2b());
    EXPECT_EQ(c.arch->family, Family::Gemma2);
    EXPECT_EQ(c.attn_softcap, 50.0);
    EXPECT_EQ(c.final_softcap, 30.0);
    EXPECT_EQ(c.sliding_window, 4096);
    for (size_t il = 0; il < 26; ++il) EXPECT_EQ(c.sliding[il], il % 2 == 0) << il;
    // Absent caps take HF's defaults; configs without "architectures" name the model type; an early name of the window.
    c = load(edit(gemma2_2b(), [](json& j) {
        j.erase("attn_logit_softcapping");
        j.erase("final_logit_softcapping");
        j.erase("architectures");
        j["sliding_window_size"] = 2048;
        j.erase("sliding_window");
    }));
    EXPECT_EQ(c.architecture, "Gemma2ForCausalLM");
    EXPECT_EQ(c.attn_softcap, 50.0);
    EXPECT_EQ(c.final_softcap, 30.0);
    EXPECT_EQ(c.sliding_window, 2048);
}

TEST(ConvertFamilies, QueryScaleTheGgufCannotCarryIsAWarning) {
    EXPECT_TRUE(load(gemma3_1b()).warnings.empty());
    const HfConfig c = load(edit(gemma3_1b(), [](json& j) { j["query_pre_attn_scalar"] = 144; }));
    ASSERT_EQ(c.warnings.size(), 1u);
    EXPECT_TRUE(has(c.warnings[0], "query_pre_attn_scalar")) << c.warnings[0];
    // The 27B rule: 62 layers, 5376 / 32 = 168.
    EXPECT_TRUE(load(edit(gemma3_1b(), [](json& j) {
                    j["num_hidden_layers"] = 62;
                    j["hidden_size"] = 5376;
                    j["num_attention_heads"] = 32;
                    j["num_key_value_heads"] = 16;
                    j["head_dim"] = 128;
                    j["query_pre_attn_scalar"] = 168;
                })).warnings.empty());
}

TEST(ConvertFamilies, BadConfigsNameTheKey) {
    auto g3 = [](const std::function<void(json&)>& f) { return load_error(edit(gemma3_1b(), f)); };
    auto g2 = [](const std::function<void(json&)>& f) { return load_error(edit(gemma2_2b(), f)); };
    const std::string unsupported = load_error(edit(gemma2_2b(), [](json& j) { j["architectures"] = {"Gemma3nForCausalLM"}; }));
    EXPECT_TRUE(has(unsupported, "Gemma3nForCausalLM") && has(unsupported, "Gemma3ForConditionalGeneration")) << unsupported;
    EXPECT_TRUE(has(g3([](json& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 8.0}}; }), "'yarn'"));
    EXPECT_TRUE(has(g3([](json& j) { j["rope_scaling"] = {{"rope_type", "linear"}}; }), "rope_scaling.factor"));
    EXPECT_TRUE(has(g3([](json& j) { j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", -2}}; }), "positive"));
    EXPECT_TRUE(has(g2([](json& j) { j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}}; }), "Gemma 2 has no RoPE scaling"));
    EXPECT_TRUE(has(g3([](json& j) { j["layer_types"] = {"sliding_attention"}; }), "one entry per layer"));
    EXPECT_TRUE(has(g3([](json& j) {
                        j["layer_types"] = json::array();
                        for (int i = 0; i < 26; ++i) j["layer_types"].push_back(i ? "full_attention" : "chunked_attention");
                    }),
                    "chunked_attention"));
    EXPECT_TRUE(has(g3([](json& j) { j["sliding_window_pattern"] = 0; }), "sliding_window_pattern"));
    EXPECT_TRUE(has(g3([](json& j) { j["sliding_window"] = -1; }), "sliding_window"));
    EXPECT_TRUE(has(g3([](json& j) { j["attn_logit_softcapping"] = 50.0; }), "no attention soft-capping"));
    EXPECT_TRUE(has(g2([](json& j) { j["attn_logit_softcapping"] = nullptr; }), "\"attn_logit_softcapping\" is null"));
    EXPECT_TRUE(has(g2([](json& j) { j["final_logit_softcapping"] = "30"; }), "final_logit_softcapping"));
    EXPECT_TRUE(has(g3([](json& j) { j.erase("hidden_size"); }), "missing \"hidden_size\""));
    EXPECT_TRUE(has(g3([](json& j) { j["rope_theta"] = 0; }), "rope_theta"));
    EXPECT_TRUE(has(g3([](json& j) { j["rope_parameters"] = 5; }), "rope_parameters"));
    EXPECT_TRUE(has(load_error(edit(gemma3_4b(), [](json& j) { j["text_config"] = "x"; })), "text_config"));
    EXPECT_TRUE(has(load_error(edit(gemma3_4b(), [](json& j) { j["text_config"]["num_key_value_heads"] = 3; })), "multiple"));
    // Every message names the file.
    EXPECT_TRUE(has(g3([](json& j) { j["sliding_window"] = 0; }), "config.json"));
}

TEST(ConvertFamilies, TensorNamesOfEachFamily) {
    const HfConfig g2 = load(gemma2_2b()), g3 = load(gemma3_4b());
    // The same HF name is the post-attention norm in Gemma 2/3 but the pre-FFN norm in Gemma 1.
    EXPECT_EQ(map_gemma_tensor(g2, "model.layers.3.post_attention_layernorm.weight")->gguf_name, "blk.3.post_attention_norm.weight");
    EXPECT_EQ(map_gemma_tensor(g2, "model.layers.3.pre_feedforward_layernorm.weight")->gguf_name, "blk.3.ffn_norm.weight");
    EXPECT_EQ(map_gemma_tensor(g2, "model.layers.3.post_feedforward_layernorm.weight")->gguf_name, "blk.3.post_ffw_norm.weight");
    // Both multimodal spellings, QK-norm, the tied output dropped, the vision tower recognised.
    const auto qn = map_gemma_tensor(g3, "language_model.model.layers.0.self_attn.q_norm.weight");
    EXPECT_EQ(qn->gguf_name, "blk.0.attn_q_norm.weight");
    EXPECT_EQ(qn->hf_shape, (std::vector<int64_t>{256}));
    EXPECT_TRUE(qn->is_norm);
    const auto emb = map_gemma_tensor(g3, "model.language_model.embed_tokens.weight");
    EXPECT_EQ(emb->gguf_name, "token_embd.weight");
    EXPECT_EQ(emb->hf_shape, (std::vector<int64_t>{262208, 2560}));
    EXPECT_EQ(map_gemma_tensor(g3, "model.language_model.layers.33.mlp.down_proj.weight")->hf_shape,
              (std::vector<int64_t>{2560, 10240}));
    EXPECT_FALSE(map_gemma_tensor(g3, "language_model.lm_head.weight"));
    EXPECT_EQ(other_tower_of(g3, "vision_tower.vision_model.post_layernorm.weight"), "vision_tower.");
    EXPECT_EQ(other_tower_of(g3, "model.multi_modal_projector.mm_input_projection_weight"), "model.multi_modal_projector.");
    EXPECT_EQ(other_tower_of(g2, "vision_tower.x"), "");  // Gemma 2 has no other towers: such a name is an error
    EXPECT_THROW(map_gemma_tensor(g2, "vision_tower.x"), Error);
    EXPECT_THROW(map_gemma_tensor(g2, "model.layers.0.self_attn.q_norm.weight"), Error);
    EXPECT_THROW(map_gemma_tensor(g3, "language_model.model.layers.34.mlp.up_proj.weight"), Error);
    // 13 tensors a layer (Gemma 2: 11), 2 global.
    EXPECT_EQ(gemma_hf_tensor_names(g3).size(), 2u + 13u * 34u);
    EXPECT_EQ(gemma_hf_tensor_names(g2).size(), 2u + 11u * 26u);
}

// Keys written by write_gguf_hparams, read back by the model's config reader (llama.cpp's rules).
ModelConfig written(const ArchDesc& a, const GgufHparams& h) {
    const std::string p = test::temp_dir() + "/h.gguf";
    {
        GgufWriter w(p);
        w.set("general.architecture", GgufValue::string(a.gguf_arch));
        write_gguf_hparams(w, a, h, 0);
        w.add_tensor("token_embd.weight", TypeId::F32, {h.n_embd, 2});
        w.write_header();
        std::vector<float> z(static_cast<size_t>(h.n_embd * 2));
        w.write_tensor_data(z.data(), z.size() * 4);
        w.finish();
    }
    return ModelConfig::from_gguf(*GgufFile::open(p));
}

TEST(ConvertFamilies, HparamKeysReadBackAsWritten) {
    const ArchDesc& g2 = arch_desc(Family::Gemma2);
    const ArchDesc& g3 = arch_desc(Family::Gemma3);
    GgufHparams h = synth_hparams(g3, synth_shape("tiny-g3"));
    // The default pattern is not written; another one is, one bool per layer.
    ModelConfig c = written(g3, h);
    for (int il = 0; il < 6; ++il) EXPECT_EQ(c.layers[il].sliding, il != 5) << il;
    h.sliding = {true, false, true, false, true, false};
    c = written(g3, h);
    for (int il = 0; il < 6; ++il) EXPECT_EQ(c.layers[il].sliding, il % 2 == 0) << il;
    EXPECT_EQ(c.n_swa, 16);
    // No sliding layer: Gemma 3 writes no window; Gemma 2 must say so, or its loader assumes 4096 on even layers.
    h.sliding.assign(6, false);
    c = written(g3, h);
    EXPECT_FALSE(c.any_sliding());
    GgufHparams h2 = synth_hparams(g2, synth_shape("tiny-g2"));
    h2.sliding.assign(4, false);
    c = written(g2, h2);
    EXPECT_FALSE(c.any_sliding());
    EXPECT_EQ(c.attn_softcap, 50.0f);
    // A config with sliding_window_pattern 1 converts to all-global layers.
    const HfConfig one = load(edit(gemma3_1b(), [](json& j) { j["sliding_window_pattern"] = 1; }));
    EXPECT_FALSE(written(g3, one.gguf_hparams()).any_sliding());
}

TEST(ConvertFamilies, ShapesAndTheirErrors) {
    const ArchDesc* a = nullptr;
    EXPECT_EQ(synth_shape("gemma3-4b", &a).rope_scale, 8.0f);
    EXPECT_EQ(a->family, Family::Gemma3);
    EXPECT_EQ(synth_shape("gemma2-9b", &a).n_embd, 3584);
    EXPECT_EQ(a->family, Family::Gemma2);
    EXPECT_EQ(synth_shape("gemma-2b", &a).n_layer, 18);
    EXPECT_EQ(a->family, Family::Gemma1);
    for (const char* s : {"gemma2-2b", "gemma3-270m", "gemma3-1b", "tiny-g2"}) EXPECT_NO_THROW(synth_shape(s)) << s;
    try {
        synth_shape("gemma4-1b");
        ADD_FAILURE() << "unknown shape accepted";
    } catch (const Error& e) {
        EXPECT_TRUE(has(e.what(), "gemma3-270m")) << e.what();
    }
    HfSynthOptions o;
    o.dir = test::temp_dir() + "/bad";
    o.quiet = true;
    o.shape = "tiny-g2";
    o.layout = HfLayout::Multimodal;
    EXPECT_THROW(write_hf_checkpoint(o), Error);  // Gemma 2 has no multimodal checkpoints
    o.layout = HfLayout::CausalLM;
    o.n_vocab = 100;
    EXPECT_THROW(write_hf_checkpoint(o), Error);  // --n-vocab needs a GGUF vocabulary
    o.shape = "tiny-g3";
    o.n_vocab = 1024;
    o.shards = 500;
    EXPECT_THROW(write_hf_checkpoint(o), Error);
}

// A Gemma 3 multimodal-named checkpoint (1024 tokens), and copies of it with one file changed.
const std::string& g3_checkpoint() {
    static const std::string dir = [] {
        HfSynthOptions o;
        o.dir = test::temp_dir() + "/g3";
        o.shape = "tiny-g3";
        o.layout = HfLayout::Multimodal;
        o.n_vocab = 1024;
        o.quiet = true;
        write_hf_checkpoint(o);
        return o.dir;
    }();
    return dir;
}

std::string g3_variant(const std::string& replaced) {
    const std::string d = test::temp_dir() + "/v";
    fs::create_directories(d);
    for (const auto& e : fs::directory_iterator(g3_checkpoint()))
        if (e.path().filename() != replaced) fs::create_symlink(e.path(), d + "/" + e.path().filename().string());
    return d;
}

// The checkpoint's weights without `drop`, plus `extra` as a copy of `of`.
std::string g3_with_weights(const std::string& drop, const std::string& extra = "", const std::string& of = "") {
    const std::string d = g3_variant("model.safetensors");
    const SafetensorsSet src = SafetensorsSet::open_dir(g3_checkpoint());
    SafetensorsWriter w(d + "/model.safetensors");
    std::vector<const StTensor*> kept;
    for (const auto& [name, t] : src.files()[0]->tensors())
        if (name != drop) kept.push_back(&t);
    if (!extra.empty()) kept.push_back(src.find(of));
    for (size_t i = 0; i < kept.size(); ++i)
        w.add_tensor(i + 1 == kept.size() && !extra.empty() ? extra : kept[i]->name, kept[i]->dtype, kept[i]->shape);
    w.write_header();
    for (const StTensor* t : kept) w.write_data(t->data, t->nbytes);
    w.finish();
    return d;
}

std::string convert_error(const std::string& dir) {
    const std::string out = test::temp_dir();
    ConvertOptions o;
    o.input_dir = dir;
    o.output = out + "/x.gguf";
    o.quiet = true;
    try {
        convert_hf(o);
    } catch (const Error& e) {
        EXPECT_TRUE(fs::is_empty(out)) << "an output file was left behind";
        return e.what();
    }
    return "(no error)";
}

TEST(ConvertFamilies, BadGemma3CheckpointsFailClearly) {
    EXPECT_TRUE(has(convert_error(g3_with_weights("language_model.model.layers.2.self_attn.q_norm.weight")),
                    "'model.layers.2.self_attn.q_norm.weight' is missing"));
    const std::string twice = convert_error(g3_with_weights("", "model.language_model.norm.weight", "language_model.model.norm.weight"));
    EXPECT_TRUE(has(twice, "model.language_model.norm.weight") && has(twice, "twice")) << twice;
    // A tokenizer larger than the embedding.
    const std::string d = g3_variant("tokenizer.model");
    HfSynthOptions big;
    big.dir = test::temp_dir() + "/big";
    big.shape = "tiny-g3";
    big.n_vocab = 2048;
    big.quiet = true;
    write_hf_checkpoint(big);
    fs::copy_file(big.dir + "/tokenizer.model", d + "/tokenizer.model");
    const std::string e = convert_error(d);
    EXPECT_TRUE(has(e, "2048 pieces") && has(e, "1088")) << e;
    // The checkpoint itself converts, without the vision tensors.
    ConvertOptions o;
    o.input_dir = g3_checkpoint();
    o.output = test::temp_dir() + "/ok.gguf";
    o.quiet = true;
    const ConvertStats st = convert_hf(o);
    EXPECT_EQ(st.arch, "gemma3");
    EXPECT_EQ(st.n_other_tower, 5u);
    EXPECT_EQ(GgufFile::open(o.output)->tensor("token_embd.weight").shape_string(), "[256, 1024]");
}

}  // namespace
}  // namespace gemma
