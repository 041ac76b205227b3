// Perplexity building blocks: chunk planning and its errors, BOS per chunk, the log-softmax and the running sums.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "runtime/perplexity.h"

namespace gemma {
namespace {

TEST(PerplexityUnit, ChunkPlanFollowsLlama) {
    EXPECT_EQ(plan_chunks(1000, 128, -1, 8192, 4).n_chunks, 7);  // whole chunks only
    EXPECT_EQ(plan_chunks(1000, 128, 3, 8192, 4).n_chunks, 3);
    EXPECT_EQ(plan_chunks(1000, 128, 50, 8192, 4).n_chunks, 7);
    EXPECT_EQ(plan_chunks(256, 128, 0, 8192, 4).n_chunks, 2);   // exactly 2*ctx tokens is enough
    EXPECT_THROW(plan_chunks(255, 128, 0, 8192, 4), Error);     // llama: "you need at least 2*n_ctx tokens"
    EXPECT_THROW(plan_chunks(100000, 3, 0, 8192, 4), Error);
    EXPECT_THROW(plan_chunks(100000, 8193, 0, 8192, 4), Error);
    try {
        plan_chunks(100, 64, 0, 8192, 4);
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("needs at least 128"), std::string::npos) << e.what();
    }
}

TEST(PerplexityUnit, EveryChunkStartsWithBos) {
    std::vector<int32_t> toks(300);
    for (size_t i = 0; i < toks.size(); ++i) toks[i] = static_cast<int32_t>(100 + i);
    const ChunkPlan p = plan_chunks(toks.size(), 100, 0, 8192, 4);
    ASSERT_EQ(p.n_chunks, 3);
    const auto c1 = chunk_tokens(toks, p, 1, 2, true);
    ASSERT_EQ(c1.size(), 100u);
    EXPECT_EQ(c1[0], 2);
    EXPECT_EQ(c1[1], 201);
    EXPECT_EQ(c1[99], 299);
    EXPECT_EQ(chunk_tokens(toks, p, 2, 2, false)[0], 300);
}

TEST(PerplexityUnit, TokenNllIsMinusLogSoftmax) {
    const float logits[3] = {0.0f, std::log(3.0f), -1000.0f};
    EXPECT_NEAR(token_nll(logits, 3, 1), std::log(4.0 / 3.0), 1e-6);
    EXPECT_NEAR(token_nll(logits, 3, 0), std::log(4.0), 1e-6);
    // Shift invariance: large logits do not overflow.
    const float big[2] = {1000.0f, 1000.0f};
    EXPECT_NEAR(token_nll(big, 2, 0), std::log(2.0), 1e-6);
}

TEST(PerplexityUnit, RunningSumsAndLlamaUncertainty) {
    NllSum s;
    EXPECT_EQ(s.ppl(), 0.0);
    s.add(1.0);
    s.add(3.0);
    EXPECT_NEAR(s.ppl(), std::exp(2.0), 1e-12);
    // llama: sqrt((mean(nll^2) - mean(nll)^2) / (count - 1)) * ppl
    EXPECT_NEAR(s.ppl_err(), std::sqrt((5.0 - 4.0) / 1.0) * std::exp(2.0), 1e-12);
}

}  // namespace
}  // namespace gemma
