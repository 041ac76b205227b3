// Model layer: thread-count invariance, batch vs KV-cache decoding, repacking, KV cache types, debug hook, load errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "quant/blocks.h"
#include "core/fp16.h"
#include "gguf/gguf.h"
#include "model/context.h"
#include "model/model.h"
#include "support/golden.h"
#include "support/gguf_variant.h"

namespace gemma {
namespace {

const std::string& f32_path() {
    static const std::string p = test::golden("tiny-7b/tiny-7b-f32.gguf");
    return p;
}

std::vector<int32_t> prompt() {
    return {2, 106, 1000, 108, 473, 474, 475, 476, 477, 478, 479, 480, 600, 700, 800, 900, 1000, 235, 300, 400};
}

// All rows of one forward call.
std::vector<float> batch_logits(const Model& m, const std::vector<int32_t>& toks, ops::ThreadPool& pool,
                                TypeId kv = TypeId::F16, int64_t n_batch = 512) {
    ContextParams p;
    p.n_ctx = 64;
    p.n_batch = n_batch;
    p.kv_type = kv;
    p.pool = &pool;
    Context ctx(m, p);
    std::vector<float> out(toks.size() * static_cast<size_t>(m.config().n_vocab));
    ctx.forward(toks, 0, static_cast<int32_t>(toks.size()), out.data());
    return out;
}

// The same rows, one decode step at a time through the KV cache.
std::vector<float> stepwise_logits(const Model& m, const std::vector<int32_t>& toks, ops::ThreadPool& pool) {
    ContextParams p;
    p.n_ctx = 64;
    p.pool = &pool;
    Context ctx(m, p);
    const auto nv = static_cast<size_t>(m.config().n_vocab);
    std::vector<float> out;
    for (int32_t t : toks) {
        const float* l = ctx.decode(t);
        out.insert(out.end(), l, l + nv);
    }
    EXPECT_EQ(ctx.n_past(), static_cast<int64_t>(toks.size()));
    return out;
}

TEST(Model, ConfigFromMetadata) {
    const auto m = Model::load(f32_path());
    const ModelConfig& c = m->config();
    EXPECT_EQ(c.arch, "gemma");
    EXPECT_EQ(c.n_embd, 256);
    EXPECT_EQ(c.n_layer, 2);
    EXPECT_EQ(c.n_head, 4);
    EXPECT_EQ(c.n_head_kv, 4);
    EXPECT_EQ(c.head_dim, 128);  // key_length, not n_embd / n_head
    EXPECT_EQ(c.n_ff, 1024);
    EXPECT_EQ(c.n_vocab, 1024);
    EXPECT_EQ(c.n_ctx_train, 8192);
    EXPECT_FLOAT_EQ(c.rms_eps, 1e-6f);
    EXPECT_EQ(m->weights().output.data, m->weights().token_embd.data);  // tied output
    // Weights are used in place inside the mapping.
    const GgufTensor& t = m->gguf().tensor("blk.1.ffn_down.weight");
    EXPECT_EQ(m->weights().layers[1].ffn_down.data, t.data);
}

TEST(Model, SameLogitsForOneTwoAndThreeThreads) {
    ops::ThreadPool p1(1), p2(2), p3(3);
    // Q4_0, Q8_0 and Q4_K_M run the repacked kernels: threads get whole 8-row groups, never split ones.
    for (const std::string& path : {f32_path(), test::golden("tiny-7b/q/tiny-7b-Q4_K_M.gguf"),
                                   test::golden("tiny-7b/q/tiny-7b-F16.gguf"), test::golden("tiny-7b/q/tiny-7b-Q4_0.gguf"),
                                   test::golden("tiny-7b/q/tiny-7b-Q8_0.gguf")}) {
        const auto m = Model::load(path);
        const auto a = batch_logits(*m, prompt(), p1);
        const auto b = batch_logits(*m, prompt(), p2);
        const auto c = batch_logits(*m, prompt(), p3);
        EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << path;
        EXPECT_EQ(0, std::memcmp(a.data(), c.data(), a.size() * sizeof(float))) << path;
        const auto s1 = stepwise_logits(*m, prompt(), p1);
        const auto s2 = stepwise_logits(*m, prompt(), p2);
        EXPECT_EQ(0, std::memcmp(s1.data(), s2.data(), s1.size() * sizeof(float))) << path;
    }
}

TEST(Model, BatchMatchesTokenByToken) {
    ops::ThreadPool pool(2);
    for (const auto& [path, tol] : std::vector<std::pair<std::string, double>>{
             {f32_path(), 1e-4}, {test::golden("tiny-7b/q/tiny-7b-Q4_K_M.gguf"), 3e-2},
             {test::golden("tiny-7b/q/tiny-7b-Q4_0.gguf"), 3e-2}}) {
        const auto m = Model::load(path);
        const auto batch = batch_logits(*m, prompt(), pool);
        const auto steps = stepwise_logits(*m, prompt(), pool);
        ASSERT_EQ(batch.size(), steps.size());
        const auto nv = static_cast<size_t>(m->config().n_vocab);
        for (size_t r = 0; r < prompt().size(); ++r)
            EXPECT_LE(test::rel_l2(steps.data() + r * nv, batch.data() + r * nv, nv), tol) << path << " position " << r;
        // Splitting the batch (n_batch 7: sub-batches of 7, 7, 6) attends across the split through the cache.
        const auto split = batch_logits(*m, prompt(), pool, TypeId::F16, 7);
        EXPECT_LE(test::rel_l2(split.data(), batch.data(), batch.size()), tol) << path;
    }
}

// Only whole 8-row groups of a packable type are repacked; the rest stay in place, and a repacked matrix
// gives what the plain one gives.
TEST(Model, RepackTakesWholeGroupsOfPackableTypes) {
    const int64_t n = 64;
    const size_t rb = row_size(TypeId::Q8_0, n);
    std::vector<uint8_t> rows(16 * rb);
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<uint8_t>(i * 37 + 11);
    for (size_t o = 0; o < rows.size(); o += sizeof(block_q8_0)) {
        const uint16_t d = fp32_to_fp16(0.01f);
        std::memcpy(&rows[o], &d, 2);
    }
    ModelWeights w;
    w.output = ops::Matrix{TypeId::Q8_0, n, 12, rows.data(), rb, false};  // 12 rows: not whole groups
    EXPECT_EQ(w.repack(), 0u);
    EXPECT_FALSE(w.output.packed);
    EXPECT_EQ(w.output.data, rows.data());
    w.output = ops::Matrix{TypeId::IQ2_S, 256, 8, rows.data(), row_size(TypeId::IQ2_S, 256), false};  // no layout
    EXPECT_EQ(w.repack(), 0u);
    const ops::Matrix plain{TypeId::Q8_0, n, 16, rows.data(), rb, false};
    w.output = plain;
    EXPECT_EQ(w.repack(), 16 * rb);
    ASSERT_TRUE(w.output.packed);
    EXPECT_NE(w.output.data, rows.data());
    EXPECT_EQ(w.repack(), 0u);  // already packed
    ops::ThreadPool pool(2);
    std::vector<float> x(static_cast<size_t>(n));
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i));
    std::vector<uint8_t> scratch(ops::act_bytes(TypeId::Q8_0, n));
    std::vector<float> a(16), b(16);
    ops::matmul(plain, x.data(), n, 1, a.data(), 16, scratch.data(), pool);
    ops::matmul(w.output, x.data(), n, 1, b.data(), 16, scratch.data(), pool);
    for (size_t r = 0; r < 16; ++r) EXPECT_NEAR(b[r], a[r], 1e-5 * (std::fabs(a[r]) + 1)) << r;
}

TEST(Model, KvCacheTypes) {
    ops::ThreadPool pool(2);
    const auto m = Model::load(f32_path());
    const auto f16 = batch_logits(*m, prompt(), pool, TypeId::F16);
    const auto f32 = batch_logits(*m, prompt(), pool, TypeId::F32);
    const auto q8 = batch_logits(*m, prompt(), pool, TypeId::Q8_0);
    // The fp16 cache is llama.cpp's default; the others are close to it, not equal.
    EXPECT_LE(test::rel_l2(f32.data(), f16.data(), f16.size()), 3e-3);
    EXPECT_LE(test::rel_l2(q8.data(), f16.data(), f16.size()), 3e-2);
    EXPECT_GT(test::rel_l2(q8.data(), f16.data(), f16.size()), 0.0);
    EXPECT_THROW(batch_logits(*m, prompt(), pool, TypeId::Q4_K), Error);
}

TEST(Model, DebugHookSeesNamedIntermediates) {
    const auto m = Model::load(f32_path());
    ContextParams p;
    p.n_ctx = 32;
    p.n_threads = 1;
    Context ctx(*m, p);
    std::map<std::string, int64_t> seen;
    ctx.set_debug_hook([&](std::string_view name, const float*, int64_t n_tok, int64_t row_len, int64_t) {
        seen[std::string(name)] = n_tok * row_len;
    });
    const std::vector<int32_t> toks = {2, 106, 1000};
    ctx.eval(toks);
    EXPECT_EQ(seen["inp_scaled"], 3 * 256);
    EXPECT_EQ(seen["blk.0.attn_norm"], 3 * 256);
    EXPECT_EQ(seen["blk.1.Qcur"], 3 * 512);
    EXPECT_EQ(seen["blk.1.Kcur"], 3 * 512);
    EXPECT_EQ(seen["blk.0.kqv_out"], 3 * 512);
    EXPECT_EQ(seen["blk.0.ffn_geglu"], 3 * 1024);
    EXPECT_EQ(seen["blk.0.l_out"], 3 * 256);
    // After its K/V store the last block runs on the output row alone.
    EXPECT_EQ(seen["blk.1.kqv_out"], 512);
    EXPECT_EQ(seen["blk.1.ffn_geglu"], 1024);
    EXPECT_EQ(seen["blk.1.l_out"], 256);
    EXPECT_EQ(seen["result_norm"], 256);           // only the last row is an output
    EXPECT_EQ(seen["result_output"], 1024);
}

TEST(Model, BadInputsGiveClearErrors) {
    const auto m = Model::load(f32_path());
    ContextParams p;
    p.n_ctx = 32;
    p.n_threads = 1;
    Context ctx(*m, p);
    float dummy[1024];
    const std::vector<int32_t> bad_tok = {2, 5000};
    try {
        ctx.forward(bad_tok, 0, 1, dummy);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("token id 5000"), std::string::npos) << e.what();
    }
    const std::vector<int32_t> ok = {2, 3};
    EXPECT_THROW(ctx.forward(ok, 31, 1, dummy), Error);  // past the context
    EXPECT_THROW(ctx.forward(ok, 5, 1, dummy), Error);   // positions the cache does not follow
    EXPECT_THROW(ctx.forward(ok, 0, 3, dummy), Error);   // more logit rows than tokens
    EXPECT_THROW(ctx.forward(ok, 0, -1, dummy), Error);
    std::vector<int32_t> many(40, 2);
    EXPECT_THROW(ctx.eval(many), Error);  // more than the context holds
}

// Writes a copy of the F32 model with metadata or tensors changed, for the load-error tests.
using Edit = test::GgufEdit;

std::string write_variant(const Edit& e) { return test::write_gguf_variant(f32_path(), e); }

Edit reshape(const std::string& name, std::vector<int64_t> ne) {
    Edit e;
    e.shape = [name, ne](const std::string& n, std::vector<int64_t>& s) {
        if (n == name) s = ne;
    };
    return e;
}

std::string load_error(const Edit& e) {
    const std::string path = write_variant(e);
    try {
        Model::load(path);
    } catch (const Error& err) {
        return err.what();
    }
    return "(loaded without error)";
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(Model, LoadErrorsNameWhatIsWrong) {
    std::string msg = load_error({nullptr, "blk.1.ffn_up.weight", nullptr});
    EXPECT_TRUE(has(msg, "missing tensor 'blk.1.ffn_up.weight'") && has(msg, "[256, 1024]")) << msg;

    msg = load_error(reshape("blk.0.attn_k.weight", {256, 256}));
    EXPECT_TRUE(has(msg, "'blk.0.attn_k.weight'") && has(msg, "[256, 256]") && has(msg, "expected [256, 512]")) << msg;

    msg = load_error(reshape("output_norm.weight", {128}));
    EXPECT_TRUE(has(msg, "'output_norm.weight'") && has(msg, "expected [256]")) << msg;

    msg = load_error({[](GgufWriter& w) { w.remove("gemma.block_count"); }, "", nullptr});
    EXPECT_TRUE(has(msg, "missing metadata key 'gemma.block_count'")) << msg;

    msg = load_error({[](GgufWriter& w) { w.remove("gemma.attention.layer_norm_rms_epsilon"); }, "", nullptr});
    EXPECT_TRUE(has(msg, "gemma.attention.layer_norm_rms_epsilon")) << msg;

    msg = load_error({[](GgufWriter& w) { w.set("general.architecture", GgufValue::string("llama")); }, "", nullptr});
    EXPECT_TRUE(has(msg, "architecture 'llama' is not supported")) << msg;

    msg = load_error({[](GgufWriter& w) { w.set("gemma.attention.head_count_kv", GgufValue::u32(3)); }, "", nullptr});
    EXPECT_TRUE(has(msg, "not a multiple of head_count_kv 3")) << msg;

    // One more layer than the file holds: the first missing block is named.
    msg = load_error({[](GgufWriter& w) { w.set("gemma.block_count", GgufValue::u32(3)); }, "", nullptr});
    EXPECT_TRUE(has(msg, "missing tensor 'blk.2.attn_norm.weight'")) << msg;
}

TEST(Model, GroupedQueryAttentionFromMetadata) {
    // The same weights read with 2 KV heads (GQA ratio 2) and 1 (MQA), attn_k/v cut to the matching
    // width: any ratio must load, and the cache must serve every query head of a group.
    for (uint32_t n_kv : {2u, 1u}) {
        Edit e;
        e.kv = [n_kv](GgufWriter& w) { w.set("gemma.attention.head_count_kv", GgufValue::u32(n_kv)); };
        e.shape = [n_kv](const std::string& n, std::vector<int64_t>& s) {
            if (n.find("attn_k.") != std::string::npos || n.find("attn_v.") != std::string::npos) s[1] = 128 * n_kv;
        };
        const auto m = Model::load(write_variant(e));
        EXPECT_EQ(m->config().n_gqa(), 4 / n_kv);
        ops::ThreadPool pool(2);
        const auto batch = batch_logits(*m, prompt(), pool);
        const auto steps = stepwise_logits(*m, prompt(), pool);
        EXPECT_LE(test::rel_l2(steps.data(), batch.data(), batch.size()), 1e-4) << n_kv;
        for (float x : batch) ASSERT_TRUE(std::isfinite(x));
    }
}

}  // namespace
}  // namespace gemma
