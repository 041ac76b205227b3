// Speculative decoding through the Generator on golden tiny models: greedy output is token for token plain greedy's
// (draft = the target itself, accepting everything, or a lower rung of its ladder), across the sliding window and
// with penalties; sampled output has plain sampling's distribution (a two-sample test).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/context.h"
#include "model/model.h"
#include "runtime/generator.h"
#include "runtime/speculative.h"
#include "support/golden.h"
#include "tokenizer/tokenizer.h"

namespace gemma {
namespace {

// One thread: these models are tiny, and a second spinning worker only costs time on a loaded machine.
ops::ThreadPool& pool() {
    static ops::ThreadPool p(1);
    return p;
}

struct Loaded {
    std::unique_ptr<Model> model;
    std::unique_ptr<Tokenizer> tok;
    explicit Loaded(const std::string& rel)
        : model(Model::load(test::golden(rel))), tok(std::make_unique<Tokenizer>(Tokenizer::from_gguf(model->gguf()))) {}
};

std::unique_ptr<Context> context(const Model& m) {
    ContextParams p;
    p.n_ctx = 256;
    p.pool = &pool();
    return std::make_unique<Context>(m, p);
}

GenerateParams params(float temp, uint32_t seed, int32_t n) {
    GenerateParams g;
    g.max_tokens = n;
    g.ignore_eog = true;
    g.sampling.temp = temp;
    g.sampling.top_k = 0;
    g.sampling.top_p = 1.0f;
    g.sampling.min_p = 0.0f;
    g.sampling.seed = seed;
    return g;
}

std::vector<TokenId> prompt(const Tokenizer& tok) { return tok.encode("Once upon a time, in a land far away,", true, true); }

// Plain and speculative greedy runs of n tokens; returns the speculative run's stats.
DraftStats expect_same_greedy(const std::string& target_rel, const std::string& draft_rel, const GenerateParams& g,
                              DraftParams dp = {}) {
    const Loaded target(target_rel), draft(draft_rel);
    check_same_vocab(target.tok->vocab(), draft.tok->vocab(), draft_rel);
    auto ctx = context(*target.model);
    Generator plain(*ctx, *target.tok);
    const GenerationResult want = plain.generate(prompt(*target.tok), g);

    auto ctx2 = context(*target.model);
    auto dctx = context(*draft.model);
    Drafter drafter(*dctx, dp);
    Generator spec(*ctx2, *target.tok);
    spec.set_drafter(&drafter);
    const GenerationResult got = spec.generate(prompt(*target.tok), g);
    EXPECT_EQ(got.tokens, want.tokens) << target_rel << " drafted by " << draft_rel;
    EXPECT_EQ(got.text, want.text);
    EXPECT_GT(got.draft.n_steps, 0) << "no drafts were verified";
    // The next prompt in the same generator reuses the cache as plain decoding would.
    const GenerationResult again = spec.generate(prompt(*target.tok), g);
    EXPECT_EQ(again.tokens, want.tokens);
    return got.draft;
}

TEST(SpeculativeDecoding, DraftingWithTheTargetItselfAcceptsEverything) {
    GenerateParams g = params(0.0f, 1, 40);
    const DraftStats s = expect_same_greedy("gemma3/tiny-g3-f32.gguf", "gemma3/tiny-g3-f32.gguf", g, {8, 0, 0.0f});
    EXPECT_EQ(s.n_accepted, s.n_drafted);
    EXPECT_GT(s.n_drafted, 20);
}

TEST(SpeculativeDecoding, GreedyEqualsPlainWithALowerRungDraft) {
    // Gemma 3 (sliding window 16, so 40 tokens cross it) and Gemma 1; a repetition penalty must be applied per
    // position during verification, exactly as in plain decoding.
    GenerateParams g = params(0.0f, 1, 40);
    g.sampling.penalty_repeat = 1.3f;
    const DraftStats s = expect_same_greedy("gemma3/tiny-g3-f32.gguf", "gemma3/q/tiny-g3-Q2_K.gguf", g, {6, 0, 0.0f});
    EXPECT_LT(s.n_accepted, s.n_drafted);  // a real draft is sometimes wrong, and the output is still exact
    expect_same_greedy("tiny-7b/tiny-7b-f32.gguf", "tiny-7b/q/tiny-7b-Q4_0.gguf", params(0.0f, 1, 24), {4, 2, 0.0f});
}

TEST(SpeculativeDecoding, AMismatchedVocabularyIsRefused) {
    const Loaded g1("tiny-7b/tiny-7b-f32.gguf"), g3("gemma3/tiny-g3-f32.gguf");
    EXPECT_THROW(check_same_vocab(g1.tok->vocab(), g3.tok->vocab(), "tiny-g3-f32.gguf"), Error);
}

// The distribution of the 3rd sampled token (the 1st comes from the prompt's logits either way; the 3rd is reached
// through a kept first draft or a correction, a second draft or the bonus row) is the same with and without a draft:
// a two-sample chi-square over the tokens seen often enough. One token per run keeps the samples independent.
TEST(SpeculativeDecoding, SampledOutputHasPlainSamplingsDistribution) {
    const Loaded target("gemma3/tiny-g3-f32.gguf"), draft("gemma3/q/tiny-g3-Q2_K.gguf");
    auto ctx = context(*target.model), ctx2 = context(*target.model), dctx = context(*draft.model);
    Generator plain(*ctx, *target.tok), spec(*ctx2, *target.tok);
    Drafter drafter(*dctx, {3, 0, 0.0f});
    spec.set_drafter(&drafter);
    const auto pr = prompt(*target.tok);
    std::map<TokenId, std::array<int64_t, 2>> counts;
    const int n = 1200;
    for (int i = 0; i < n; ++i) {
        const GenerateParams g = params(0.7f, 1000 + static_cast<uint32_t>(i), 3);
        const auto a = plain.generate(pr, g).tokens, b = spec.generate(pr, g).tokens;
        ASSERT_EQ(a.size(), 3u);
        ASSERT_EQ(b.size(), 3u);
        ++counts[a[2]][0];
        ++counts[b[2]][1];
    }
    EXPECT_GT(spec.generate(pr, params(0.7f, 1, 3)).draft.n_drafted, 0);
    // Bins of at least 16 observations; the rest pooled into one.
    std::vector<std::array<double, 2>> bins(1, {0, 0});
    for (const auto& [tok, c] : counts) {
        if (c[0] + c[1] >= 16) bins.push_back({static_cast<double>(c[0]), static_cast<double>(c[1])});
        else bins[0] = {bins[0][0] + static_cast<double>(c[0]), bins[0][1] + static_cast<double>(c[1])};
    }
    double chi2 = 0;
    for (const auto& b : bins) {
        const double e = (b[0] + b[1]) / 2;
        if (e > 0) chi2 += (b[0] - e) * (b[0] - e) / e + (b[1] - e) * (b[1] - e) / e;
    }
    const double dof = static_cast<double>(bins.size() - 1);
    ASSERT_GE(dof, 5) << "the target's distribution is too flat for this test";
    // Mean dof, sd sqrt(2 dof): six sd above is far beyond chance, well below what a wrong rule produces.
    EXPECT_LT(chi2, dof + 6 * std::sqrt(2 * dof)) << bins.size() << " bins";
}

}  // namespace
}  // namespace gemma
