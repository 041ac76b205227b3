// Batch invariance, every family: a token's logits are the same bits whether it is evaluated alone (decode steps),
// inside one batch, in split batches, through a sliding-window ring or a full cache, and on 1, 2 or 3 threads.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "model/context.h"
#include "model/model.h"
#include "support/golden.h"

namespace gemma {
namespace {

// A prompt longer than the golden Gemma 2/3 models' 16-token window and than a small batch's ring.
std::vector<int32_t> long_prompt() {
    std::vector<int32_t> v = {2};
    for (int i = 0; i < 99; ++i) v.push_back(200 + (i * 37) % 800);
    return v;
}

std::vector<float> logits_of(const Model& m, ops::ThreadPool& pool, int64_t n_batch, bool stepwise, bool flash) {
    ContextParams p;
    p.n_ctx = 256;
    p.n_batch = n_batch;
    p.pool = &pool;
    p.flash_attn = flash;
    Context ctx(m, p);
    const auto toks = long_prompt();
    const auto nv = static_cast<size_t>(m.config().n_vocab);
    std::vector<float> out(toks.size() * nv);
    if (stepwise) {
        for (size_t i = 0; i < toks.size(); ++i) {
            const float* l = ctx.decode(toks[i]);
            std::memcpy(out.data() + i * nv, l, nv * sizeof(float));
        }
    } else {
        ctx.forward(toks, 0, static_cast<int32_t>(toks.size()), out.data());
    }
    return out;
}

class BatchInvariance : public testing::TestWithParam<std::string> {};

TEST_P(BatchInvariance, SameBitsAloneInBatchesRingsAndThreads) {
    const auto m = Model::load(test::golden(GetParam()));
    ops::ThreadPool p1(1), p2(2), p3(3);
    for (const bool flash : {false, true}) {
        // One pass of 100 rows over a full cache is the reference.
        const auto ref = logits_of(*m, p2, 512, false, flash);
        const std::string what = GetParam() + (flash ? " flash" : "");
        auto same = [&](const std::vector<float>& got, const char* how) {
            ASSERT_EQ(got.size(), ref.size());
            EXPECT_EQ(0, std::memcmp(got.data(), ref.data(), ref.size() * sizeof(float))) << what << ": " << how;
        };
        // Decode steps through a small batch's engine: sliding layers keep a ring of 64 cells that wraps.
        same(logits_of(*m, p2, 8, true, flash), "one token at a time, ring of 64 cells");
        same(logits_of(*m, p2, 7, false, flash), "passes of 7 rows");
        same(logits_of(*m, p1, 512, false, flash), "1 thread");
        same(logits_of(*m, p3, 33, false, flash), "3 threads, passes of 33 rows");
    }
}

INSTANTIATE_TEST_SUITE_P(
    Families, BatchInvariance,
    testing::Values("tiny-7b/tiny-7b-f32.gguf", "tiny-7b/q/tiny-7b-Q4_K_M.gguf", "tiny-7b/q/tiny-7b-Q4_0.gguf",
                    "tiny-7b/q/tiny-7b-Q8_0.gguf", "gemma2/tiny-g2-f32.gguf", "gemma2/q/tiny-g2-Q4_K_M.gguf",
                    "gemma3/tiny-g3-f32.gguf", "gemma3/q/tiny-g3-Q6_K.gguf", "gemma3/qi/tiny-g3-IQ4_XS.gguf"),
    [](const testing::TestParamInfo<std::string>& i) {
        std::string s = i.param.substr(i.param.rfind('/') + 1);
        s = s.substr(0, s.size() - 5);
        for (char& ch : s)
            if (ch == '-') ch = '_';
        return s;
    });

}  // namespace
}  // namespace gemma
