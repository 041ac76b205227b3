// Speculative decoding's verification rule: greedy keeps exactly the target's choices; sampling emits tokens with the
// target's own distribution whatever the draft proposes (a statistical test); vocabularies must match token by token.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "runtime/speculative.h"
#include "support/golden.h"

namespace gemma {
namespace {

constexpr int kVocab = 8;

SamplerParams pure(float temp) {
    SamplerParams p;
    p.temp = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 7;
    return p;
}

TEST(Speculative, GreedyKeepsDraftsWhileTheyEqualTheTargetsChoice) {
    Sampler target(kVocab, pure(0.0f));
    // Three rows whose maxima are tokens 3, 5, 1; a fourth for the bonus token (6).
    std::vector<float> rows(4 * kVocab, 0.0f);
    rows[0 * kVocab + 3] = rows[1 * kVocab + 5] = rows[2 * kVocab + 1] = rows[3 * kVocab + 6] = 2.0f;
    std::vector<float> scratch(kVocab, 0.0f);
    std::mt19937 rng(1);
    std::vector<TokenId> out;
    const std::vector<TokenId> all = {3, 5, 1};
    EXPECT_EQ(verify_drafts(target, rows.data(), kVocab, all, {}, rng, scratch, &out), 3);
    EXPECT_EQ(out, (std::vector<TokenId>{3, 5, 1, 6}));
    out.clear();
    const std::vector<TokenId> second_wrong = {3, 4, 1};
    EXPECT_EQ(verify_drafts(target, rows.data(), kVocab, second_wrong, {}, rng, scratch, &out), 1);
    EXPECT_EQ(out, (std::vector<TokenId>{3, 5}));  // the target's own token replaces the first wrong draft
}

TEST(Speculative, GreedyVerificationAppliesPenaltiesPositionByPosition) {
    // With a repetition penalty, the second position must see the first position's token as already used.
    SamplerParams sp = pure(0.0f);
    sp.penalty_repeat = 4.0f;
    Sampler target(kVocab, sp);
    std::vector<float> rows(3 * kVocab, 0.0f);
    rows[0 * kVocab + 2] = 3.0f;
    rows[1 * kVocab + 2] = 3.0f;  // penalised to 0.75 after token 2 was kept: token 4 (1.0) wins
    rows[1 * kVocab + 4] = 1.0f;
    std::vector<float> scratch(kVocab, 0.0f);
    std::mt19937 rng(1);
    std::vector<TokenId> out;
    const std::vector<TokenId> drafts = {2, 2};
    EXPECT_EQ(verify_drafts(target, rows.data(), kVocab, drafts, {}, rng, scratch, &out), 1);
    EXPECT_EQ(out, (std::vector<TokenId>{2, 4}));
}

// The first emitted token of a one-draft step, over many trials with the draft drawn from q, must follow p (the
// target's softmax), not q: a chi-square test at a level a correct rule fails once in a million.
TEST(Speculative, SampledVerificationFollowsTheTargetsDistribution) {
    const std::vector<float> target_logits = {1.0f, 0.2f, -0.5f, 2.0f, 0.0f, -1.0f, 1.5f, 0.3f};
    const std::vector<float> q_probs = {0.05f, 0.40f, 0.05f, 0.05f, 0.30f, 0.05f, 0.05f, 0.05f};  // a poor draft
    std::vector<double> p(kVocab);
    double z = 0;
    for (int i = 0; i < kVocab; ++i) z += (p[i] = std::exp(static_cast<double>(target_logits[i])));
    for (double& x : p) x /= z;
    TokenDist q;
    for (int i = 0; i < kVocab; ++i) q.cand.push_back({i, 0.0f, q_probs[i]});
    std::vector<float> rows(2 * kVocab);
    std::copy(target_logits.begin(), target_logits.end(), rows.begin());
    std::copy(target_logits.begin(), target_logits.end(), rows.begin() + kVocab);

    Sampler target(kVocab, pure(1.0f));
    std::mt19937 rng(12345);
    std::discrete_distribution<int> draw_q(q_probs.begin(), q_probs.end());
    std::vector<float> scratch(kVocab, 0.0f);
    std::vector<int64_t> counts(kVocab, 0);
    int64_t kept = 0;
    const int64_t n = 100000;
    std::vector<TokenId> out;
    for (int64_t t = 0; t < n; ++t) {
        const std::vector<TokenId> d = {draw_q(rng)};
        out.clear();
        kept += verify_drafts(target, rows.data(), kVocab, d, std::span<const TokenDist>(&q, 1), rng, scratch, &out);
        ++counts[static_cast<size_t>(out[0])];
        target.clear_history();
    }
    double chi2 = 0;
    for (int i = 0; i < kVocab; ++i) {
        const double e = p[i] * static_cast<double>(n);
        chi2 += (counts[i] - e) * (counts[i] - e) / e;
    }
    EXPECT_LT(chi2, 40.0) << "7 degrees of freedom; 40 is p < 1e-6";  // a wrong rule (emitting q) scores ~1e5
    // Acceptance is sum min(p, q) in expectation.
    double overlap = 0;
    for (int i = 0; i < kVocab; ++i) overlap += std::min(p[i], static_cast<double>(q_probs[i]));
    EXPECT_NEAR(static_cast<double>(kept) / n, overlap, 0.01);
    for (float s : scratch) EXPECT_EQ(s, 0.0f);
}

TEST(Speculative, VocabulariesMustMatchTokenByToken) {
    const Vocab g1 = Vocab::load(test::golden("vocab/gemma-vocab.gguf"));
    const Vocab g3 = Vocab::load(test::golden("gemma3/gemma3-vocab.gguf"));
    EXPECT_NO_THROW(check_same_vocab(g1, g1, "same.gguf"));
    try {
        check_same_vocab(g1, g3, "draft.gguf");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("draft.gguf"), std::string::npos) << e.what();
    }
    // Same size, one token different: still refused, naming the token.
    std::vector<std::string> texts;
    std::vector<float> scores;
    std::vector<TokenType> types;
    for (TokenId i = 0; i < 300; ++i) {
        texts.push_back(i < 256 ? g1.text(i) : "x" + std::to_string(i));
        scores.push_back(0.0f);
        types.push_back(TokenType::Normal);
    }
    const Vocab a = Vocab::from_arrays(texts, scores, types, {}, "a");
    texts[280] = "different";
    const Vocab b = Vocab::from_arrays(texts, scores, types, {}, "b");
    try {
        check_same_vocab(a, b, "b.gguf");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("token 280"), std::string::npos) << e.what();
    }
}

TEST(Speculative, DraftParamsAreChecked) {
    EXPECT_THROW((DraftParams{0, 0, 0.5f}.validate()), Error);
    EXPECT_THROW((DraftParams{4, 5, 0.5f}.validate()), Error);
    EXPECT_THROW((DraftParams{4, 0, 1.5f}.validate()), Error);
    EXPECT_NO_THROW((DraftParams{4, 2, 0.0f}.validate()));
}

}  // namespace
}  // namespace gemma
