// The engine's multi-sequence batches (the server's continuous batching) give bit-identical logits to Context,
// whatever shares the batch.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "convert/synth.h"
#include "core/error.h"
#include "model/engine.h"
#include "model/context.h"
#include "model/model.h"
#include "quant/quantize_model.h"
#include "support/golden.h"

namespace gemma {
namespace {

constexpr int64_t kCtx = 64;

std::string tiny_path(const std::string& quant) {
    static std::string f16 = [] {
        SynthOptions o;
        o.output = test::temp_dir() + "/tiny.gguf";
        o.shape = "tiny";
        o.n_vocab = 1024;
        o.quiet = true;
        o.vocab_path = test::golden("vocab/gemma-vocab.gguf");
        synth_model(o);
        return o.output;
    }();
    if (quant.empty()) return f16;
    QuantizeOptions q;
    q.input = f16;
    q.output = test::temp_dir() + "/tiny-" + quant + ".gguf";
    q.ftype = quant == "Q4_0" ? Ftype::Q4_0 : Ftype::Q4_K_M;
    q.quiet = true;
    quantize_model(q);
    return q.output;
}

ops::ThreadPool& pool() {
    static ops::ThreadPool p(2);
    return p;
}

// Three sequences: prompts of different lengths, then a few decode steps of fixed tokens.
const std::vector<std::vector<int32_t>> kPrompts = {{2, 600, 601, 602, 603, 604, 605}, {2, 700, 701, 702, 703},
                                                    {2, 800, 801}};
// Enough decode steps that every sequence passes the golden Gemma 2/3 models' 16-token sliding window.
const std::vector<int32_t> kDecode = {900, 901, 902, 903, 904, 905, 906, 907, 908, 909, 910, 911, 912, 913, 914, 915, 916, 917};

// Logits of every step (prompt end, then each decode token) per sequence, through Context alone.
std::vector<std::vector<float>> reference(const Model& m, TypeId kv) {
    const auto V = static_cast<size_t>(m.config().n_vocab);
    std::vector<std::vector<float>> out(kPrompts.size());
    for (size_t s = 0; s < kPrompts.size(); ++s) {
        ContextParams p;
        p.n_ctx = kCtx;
        p.kv_type = kv;
        p.pool = &pool();
        Context ctx(m, p);
        const float* l = ctx.eval(kPrompts[s]);
        out[s].insert(out[s].end(), l, l + V);
        for (const int32_t t : kDecode) {
            l = ctx.decode(t);
            out[s].insert(out[s].end(), l, l + V);
        }
    }
    return out;
}

void check_model(const std::string& path, TypeId kv) {
    const auto model = Model::load(path);
    const auto V = static_cast<size_t>(model->config().n_vocab);
    const auto want = reference(*model, kv);

    EngineParams bp;
    bp.n_batch = 16;
    bp.kv_type = kv;
    bp.pool = &pool();
    const auto bc = make_cpu_engine(*model, bp);
    std::vector<std::unique_ptr<SeqCache>> caches;
    for (size_t s = 0; s < kPrompts.size(); ++s) caches.push_back(bc->make_cache(kCtx));
    std::vector<std::vector<float>> got(kPrompts.size());
    std::vector<float> logits(kPrompts.size() * V);

    // Staggered like a server: sequence 0's prompt alone; then its first decode with sequence 1's prompt
    // in two pieces; then decodes of 0 and 1 with sequence 2's prompt; then decodes of all three.
    std::vector<size_t> n_dec(kPrompts.size(), 0), prefilled(kPrompts.size(), 0);
    auto step = [&](std::vector<std::pair<size_t, size_t>> plan) {  // (sequence, prompt tokens to add; 0 = decode)
        std::vector<SeqChunk> chunks;
        std::vector<size_t> outs;
        for (auto [s, m] : plan) {
            const auto& pr = kPrompts[s];
            if (m == 0) {
                chunks.push_back({caches[s].get(), std::span<const int32_t>(&kDecode[n_dec[s]], 1),
                                  static_cast<int32_t>(pr.size() + n_dec[s]), 1});
                ++n_dec[s];
                outs.push_back(s);
            } else {
                const bool last = prefilled[s] + m == pr.size();
                chunks.push_back({caches[s].get(), std::span<const int32_t>(pr).subspan(prefilled[s], m),
                                  static_cast<int32_t>(prefilled[s]), last ? 1 : 0});
                prefilled[s] += m;
                if (last) outs.push_back(s);
            }
        }
        bc->forward(chunks, logits.data());
        for (size_t k = 0; k < outs.size(); ++k)
            got[outs[k]].insert(got[outs[k]].end(), logits.begin() + static_cast<ptrdiff_t>(k * V),
                                logits.begin() + static_cast<ptrdiff_t>((k + 1) * V));
    };
    step({{0, 7}});
    step({{0, 0}, {1, 3}});
    step({{0, 0}, {1, 2}});
    step({{0, 0}, {1, 0}, {2, 3}});
    step({{2, 0}, {0, 0}, {1, 0}});
    step({{1, 0}, {2, 0}});
    step({{2, 0}, {1, 0}});
    while (n_dec[0] < kDecode.size()) step({{0, 0}, {1, 0}, {2, 0}});
    step({{2, 0}});
    for (size_t s = 0; s < kPrompts.size(); ++s) {
        ASSERT_EQ(got[s].size(), want[s].size()) << "sequence " << s;
        EXPECT_EQ(std::memcmp(got[s].data(), want[s].data(), got[s].size() * sizeof(float)), 0)
            << path << " sequence " << s << ": batched logits differ from Context's";
    }
}

TEST(ServerBatch, BatchedLogitsEqualContextF16Weights) { check_model(tiny_path(""), TypeId::F16); }
TEST(ServerBatch, BatchedLogitsEqualContextQ4_0) { check_model(tiny_path("Q4_0"), TypeId::F16); }
TEST(ServerBatch, BatchedLogitsEqualContextQ4_K_MAndQ8Cache) { check_model(tiny_path("Q4_K_M"), TypeId::Q8_0); }

TEST(ServerBatch, BatchedLogitsEqualContextGemma2And3) {
    check_model(test::golden("gemma2/q/tiny-g2-Q4_K_M.gguf"), TypeId::F16);
    check_model(test::golden("gemma3/tiny-g3-f32.gguf"), TypeId::F16);
}

TEST(ServerBatch, RejectsBadBatches) {
    const auto model = Model::load(tiny_path(""));
    EngineParams bp;
    bp.n_batch = 4;
    bp.kv_type = TypeId::F32;
    bp.pool = &pool();
    const auto bc = make_cpu_engine(*model, bp);
    auto kv = bc->make_cache(kCtx);
    std::vector<float> logits(2 * static_cast<size_t>(model->config().n_vocab));
    const std::vector<int32_t> five = {2, 3, 4, 5, 6}, bad = {2, 99999};
    EXPECT_THROW(bc->forward(std::vector<SeqChunk>{{kv.get(), five, 0, 6}}, logits.data()), Error);  // > its tokens
    EXPECT_THROW(bc->forward(std::vector<SeqChunk>{{kv.get(), bad, 0, 1}}, logits.data()), Error);   // bad id
    EXPECT_THROW(bc->forward(std::vector<SeqChunk>{{kv.get(), std::span<const int32_t>(five).first(2), 3, 1}},
                             logits.data()),
                 Error);  // a gap after the cached positions
    EXPECT_THROW(bc->forward(std::vector<SeqChunk>{{kv.get(), std::span<const int32_t>(five).first(1), 0, 1},
                                                   {kv.get(), std::span<const int32_t>(five).first(1), 1, 1}},
                             logits.data()),
                 Error);  // one cache twice
    auto other = make_cpu_engine(*model, EngineParams{2, TypeId::F32, 0, &pool()})->make_cache(kCtx);
    EXPECT_THROW(bc->forward(std::vector<SeqChunk>{{other.get(), five, 0, 1}}, logits.data()), Error);  // a cache made for smaller passes
    EXPECT_EQ(kv->n_past(), 0);  // nothing was written by a rejected call
    // More tokens than n_batch are split into passes; the last two rows' logits come back in order.
    bc->forward(std::vector<SeqChunk>{{kv.get(), five, 0, 2}}, logits.data());
    EXPECT_EQ(kv->n_past(), 5);
}

}  // namespace
}  // namespace gemma
