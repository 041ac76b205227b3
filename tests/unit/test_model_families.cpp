// Gemma 2 and 3 configs and loading: per-layer windows, RoPE bases and scales, soft-caps, the 27B attention scale,
// llama.cpp's defaults for absent keys, and clear errors for files that are not what their architecture says.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/error.h"
#include "gguf/gguf.h"
#include "model/config.h"
#include "model/model.h"
#include "support/gguf_variant.h"
#include "support/golden.h"

namespace gemma {
namespace {

std::string g2() { return test::golden("gemma2/tiny-g2-f32.gguf"); }
std::string g3() { return test::golden("gemma3/tiny-g3-f32.gguf"); }

ModelConfig config_of(const std::string& src, const test::GgufEdit& e) {
    const auto f = GgufFile::open(test::write_gguf_variant(src, e));
    return ModelConfig::from_gguf(*f);
}

std::string load_error(const std::string& src, const test::GgufEdit& e) {
    try {
        Model::load(test::write_gguf_variant(src, e));
    } catch (const Error& err) {
        return err.what();
    }
    return "(loaded without error)";
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(ModelFamilies, Gemma2Config) {
    const auto m = Model::load(g2());
    const ModelConfig& c = m->config();
    EXPECT_EQ(c.family(), Family::Gemma2);
    ASSERT_EQ(c.layers.size(), 4u);
    for (int il = 0; il < 4; ++il) {
        EXPECT_EQ(c.layers[il].sliding, il % 2 == 0) << il;  // the default period 2: even layers slide
        EXPECT_EQ(c.layers[il].window, il % 2 == 0 ? 16 : 0) << il;
        EXPECT_EQ(c.layers[il].rope_base, 10000.0f);
        EXPECT_EQ(c.layers[il].rope_freq_scale, 1.0f);
    }
    EXPECT_EQ(c.attn_softcap, 3.0f);
    EXPECT_EQ(c.final_softcap, 2.0f);
    EXPECT_EQ(c.attn_scale, 1.0f / std::sqrt(64.0f));
    EXPECT_NE(m->weights().layers[1].post_attn_norm, nullptr);
    EXPECT_NE(m->weights().layers[1].post_ffw_norm, nullptr);
    EXPECT_EQ(m->weights().layers[1].attn_q_norm, nullptr);
}

TEST(ModelFamilies, Gemma3Config) {
    const auto m = Model::load(g3());
    const ModelConfig& c = m->config();
    EXPECT_EQ(c.family(), Family::Gemma3);
    ASSERT_EQ(c.layers.size(), 6u);
    for (int il = 0; il < 6; ++il) {
        const bool global = il == 5;  // the default period 6
        EXPECT_EQ(c.layers[il].sliding, !global) << il;
        EXPECT_EQ(c.layers[il].rope_base, global ? 1e6f : 10000.0f) << il;
        EXPECT_EQ(c.layers[il].rope_freq_scale, global ? 0.125f : 1.0f) << il;  // linear x8 on global layers only
    }
    EXPECT_EQ(c.attn_softcap, 0.0f);
    EXPECT_EQ(c.final_softcap, 0.0f);
    EXPECT_NE(m->weights().layers[0].attn_q_norm, nullptr);
    EXPECT_NE(m->weights().layers[0].attn_k_norm, nullptr);
}

TEST(ModelFamilies, AbsentKeysTakeLlamaCppDefaults) {
    // Gemma 2 without window or soft-cap keys: window 4096 and caps 50 / 30.
    ModelConfig c = config_of(g2(), {[](GgufWriter& w) {
        w.remove("gemma2.attention.sliding_window");
        w.remove("gemma2.attn_logit_softcapping");
        w.remove("gemma2.final_logit_softcapping");
    }});
    EXPECT_EQ(c.n_swa, 4096);
    EXPECT_EQ(c.layers[0].window, 4096);
    EXPECT_EQ(c.attn_softcap, 50.0f);
    EXPECT_EQ(c.final_softcap, 30.0f);
    // Gemma 3 without a window: every layer global; without the SWA base: 10000; without scaling: none.
    c = config_of(g3(), {[](GgufWriter& w) {
        w.remove("gemma3.attention.sliding_window");
        w.remove("gemma3.rope.freq_base_swa");
        w.remove("gemma3.rope.scaling.type");
        w.remove("gemma3.rope.scaling.factor");
    }});
    for (const LayerConfig& l : c.layers) {
        EXPECT_FALSE(l.sliding);
        EXPECT_EQ(l.rope_freq_scale, 1.0f);
    }
    c = config_of(g3(), {[](GgufWriter& w) { w.remove("gemma3.rope.freq_base_swa"); }});
    EXPECT_EQ(c.layers[0].rope_base, 10000.0f);
}

TEST(ModelFamilies, SlidingPatternAsPeriodOrArray) {
    ModelConfig c = config_of(g3(), {[](GgufWriter& w) { w.set("gemma3.attention.sliding_window_pattern", GgufValue::u32(3)); }});
    for (int il = 0; il < 6; ++il) EXPECT_EQ(c.layers[il].sliding, il % 3 < 2) << il;
    c = config_of(g3(), {[](GgufWriter& w) {
        GgufValue v;
        v.type = GgufType::ARRAY;
        v.elem_type = GgufType::BOOL;
        v.count = 6;
        v.raw = {1, 0, 0, 1, 1, 0};
        w.set("gemma3.attention.sliding_window_pattern", v);
    }});
    const bool want[6] = {true, false, false, true, true, false};
    for (int il = 0; il < 6; ++il) EXPECT_EQ(c.layers[il].sliding, want[il]) << il;
}

TEST(ModelFamilies, LargestSizesUseTheQueryPreAttentionScalar) {
    // llama.cpp recognises the 27B sizes by their layer count: 46 (Gemma 2) and 62 (Gemma 3).
    for (const auto& [src, key, n] : {std::tuple<std::string, const char*, uint32_t>{g2(), "gemma2.block_count", 46},
                                      {g3(), "gemma3.block_count", 62}}) {
        const ModelConfig c = config_of(src, {[&](GgufWriter& w) {
            w.set(key, GgufValue::u32(n));
            w.set(std::string(key).substr(0, 7) + "embedding_length", GgufValue::u32(256));
        }});
        EXPECT_EQ(c.attn_scale, 1.0f / std::sqrt(static_cast<float>(256 / 4))) << key;  // n_embd / n_head = 64
        const ModelConfig d = config_of(src, {[&](GgufWriter& w) {
            w.set(key, GgufValue::u32(n));
            w.set(std::string(key).substr(0, 7) + "attention.key_length", GgufValue::u32(128));
            w.set(std::string(key).substr(0, 7) + "attention.value_length", GgufValue::u32(128));
        }});
        EXPECT_EQ(d.attn_scale, 1.0f / 8.0f) << key << ": n_embd / n_head, not head_dim 128";
    }
}

TEST(ModelFamilies, LoadErrorsNameWhatIsWrong) {
    std::string msg = load_error(g3(), {nullptr, "blk.2.attn_q_norm.weight", nullptr, {}});
    EXPECT_TRUE(has(msg, "missing tensor 'blk.2.attn_q_norm.weight'") && has(msg, "[64]")) << msg;
    msg = load_error(g2(), {nullptr, "", [](const std::string& n, std::vector<int64_t>& s) {
                                if (n == "blk.1.post_ffw_norm.weight") s = {128};
                            }, {}});
    EXPECT_TRUE(has(msg, "'blk.1.post_ffw_norm.weight'") && has(msg, "expected [256]")) << msg;
    // A Gemma 3 tensor in a file that says Gemma 2.
    msg = load_error(g2(), {nullptr, "", nullptr, {{"blk.0.attn_q_norm.weight", {64}}}});
    EXPECT_TRUE(has(msg, "'blk.0.attn_q_norm.weight' is not part of a Gemma 2 model")) << msg;
    msg = load_error(g3(), {[](GgufWriter& w) { w.set("gemma3.rope.scaling.type", GgufValue::string("yarn")); }});
    EXPECT_TRUE(has(msg, "RoPE scaling type 'yarn' is not supported")) << msg;
    msg = load_error(g3(), {[](GgufWriter& w) {
        GgufValue v;
        v.type = GgufType::ARRAY;
        v.elem_type = GgufType::BOOL;
        v.count = 2;
        v.raw = {1, 0};
        w.set("gemma3.attention.sliding_window_pattern", v);
    }});
    EXPECT_TRUE(has(msg, "sliding_window_pattern' has 2 entries for 6 layers")) << msg;
    msg = load_error(g3(), {[](GgufWriter& w) { w.set("gemma3.attn_logit_softcapping", GgufValue::f32(50)); }});
    EXPECT_TRUE(has(msg, "no attention soft-capping")) << msg;
    msg = load_error(g2(), {[](GgufWriter& w) { w.set("general.architecture", GgufValue::string("gemma4")); }});
    EXPECT_TRUE(has(msg, "architecture 'gemma4' is not supported (supported: gemma, gemma2, gemma3)")) << msg;
}

}  // namespace
}  // namespace gemma
