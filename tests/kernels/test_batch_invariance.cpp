// Batch invariance, which speculative decoding rests on: a (row, token) result never depends on how many tokens
// share the call, where the token sits in the batch, the thread count, or (whole groups) the row split.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/kernels_internal.h"
#include "model/context.h"
#include "model/model.h"
#include "ops/matmul.h"
#include "quant/types.h"
#include "support/golden.h"

namespace gemma {
namespace {

const TypeId kTypes[] = {TypeId::F32,  TypeId::F16,  TypeId::BF16, TypeId::Q4_0,   TypeId::Q4_1,   TypeId::Q5_0,
                         TypeId::Q5_1, TypeId::Q8_0, TypeId::Q2_K, TypeId::Q3_K,   TypeId::Q4_K,   TypeId::Q5_K,
                         TypeId::Q6_K, TypeId::IQ4_NL, TypeId::IQ4_XS, TypeId::IQ3_XXS, TypeId::IQ3_S, TypeId::IQ2_S};

struct IsaGuard {
    kernels::Isa saved = kernels::active_isa();
    ~IsaGuard() { kernels::set_isa(saved); }
};

std::vector<kernels::Isa> all_isas() {
    std::vector<kernels::Isa> v;
    for (kernels::Isa isa : kernels::kAllIsas)
        if (kernels::isa_supported(isa)) v.push_back(isa);  // an ISA the CPU lacks is skipped, not failed
    return v;
}

std::vector<float> normal(std::mt19937& rng, size_t n, float scale) {
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    return v;
}

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

// The matmul path the model uses (conversion, fixed row chunks, thread pool, plain or repacked rows) on `isa`:
// every token's outputs inside batches of 2..16 tokens, at every position, with 1-3 threads, must equal the
// token alone on one thread. Returns the first difference, or "" when there is none.
std::string batch_invariance_failure(TypeId wt, kernels::Isa isa, bool use_packed) {
    const TypeTraits& tt = type_traits(wt);
    std::mt19937 rng(1000 + static_cast<int>(wt));
    const int64_t n_in = 512, n_out = 40, max_tok = 16;
    const size_t rb = row_size(wt, n_in);
    std::vector<uint8_t> rows(rb * n_out);
    const auto wf = normal(rng, static_cast<size_t>(n_in * n_out), 0.05f);
    tt.quantize_rows(wf.data(), rows.data(), n_out, n_in, nullptr);
    if (use_packed) {
        std::vector<uint8_t> plain = rows;
        for (int64_t g = 0; g < n_out / kernels::kPackRows; ++g)
            kernels::pack_group(wt, n_in, plain.data() + g * kernels::kPackRows * rb, rb,
                                rows.data() + g * kernels::kPackRows * rb);
    }
    const auto x = normal(rng, static_cast<size_t>(n_in * max_tok), 1.0f);
    std::vector<uint8_t> scratch(ops::act_bytes(wt, n_in) * max_tok);
    ops::ThreadPool p1(1), p2(2), p3(3);
    ops::ThreadPool* pools[] = {&p1, &p2, &p3};
    IsaGuard guard;
    if (!kernels::set_isa(isa)) return "ISA not supported";
    const ops::Matrix w{wt, n_in, n_out, rows.data(), rb, use_packed};
    std::vector<float> alone(static_cast<size_t>(n_out * max_tok));
    for (int64_t t = 0; t < max_tok; ++t)
        ops::matmul(w, x.data() + t * n_in, n_in, 1, alone.data() + t * n_out, n_out, scratch.data(), p1);
    for (int64_t batch : {2, 3, 5, 8, 16}) {
        for (ops::ThreadPool* pool : pools) {
            std::vector<float> got(alone.size(), NAN);
            // Consecutive batches of `batch` tokens (the last one ragged): every token at some position.
            for (int64_t t0 = 0; t0 < max_tok; t0 += batch) {
                const int64_t nt = std::min(batch, max_tok - t0);
                ops::matmul(w, x.data() + t0 * n_in, n_in, nt, got.data() + t0 * n_out, n_out, scratch.data(), *pool);
            }
            for (int64_t t = 0; t < max_tok; ++t)
                if (!same_bits(got.data() + t * n_out, alone.data() + t * n_out, static_cast<size_t>(n_out)))
                    return std::string(type_name(wt)) + " " + kernels::isa_name(isa) +
                           (use_packed ? " packed" : " plain") + " batch " + std::to_string(batch) + " threads " +
                           std::to_string(pool->size()) + " token " + std::to_string(t);
        }
    }
    return "";
}

class WeightBatchInvariance : public ::testing::TestWithParam<TypeId> {};

TEST_P(WeightBatchInvariance, TokenAloneEqualsTokenInsideAnyBatch) {
    const TypeId wt = GetParam();
    for (kernels::Isa isa : all_isas()) {
        for (bool use_packed : {false, true}) {
            if (use_packed && !kernels::packable(wt, 512)) continue;
            EXPECT_EQ(batch_invariance_failure(wt, isa, use_packed), "");
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, WeightBatchInvariance, ::testing::ValuesIn(kTypes),
                         [](const auto& i) { return std::string(type_name(i.param)); });

// The check can fail: a kernel whose result for a token depends on how many tokens share the call (here the
// real kernel, with every output nudged by one ulp when there are several tokens, as a batch-dependent
// reduction order would) is caught, plain and packed.
kernels::detail::GemmFn g_real = nullptr;
void batch_dependent(int64_t n, const void* W, size_t wrb, int64_t r0, int64_t r1, const void* act, size_t arb,
                     int64_t n_tok, float* out, int64_t stride) {
    g_real(n, W, wrb, r0, r1, act, arb, n_tok, out, stride);
    if (n_tok > 1)
        for (int64_t r = r0; r < r1; ++r) out[r] = std::nextafter(out[r], INFINITY);
}

TEST(WeightBatchInvarianceCheck, CatchesAKernelThatDependsOnTheBatch) {
    for (kernels::Isa isa : all_isas())
        for (bool use_packed : {false, true}) {
            kernels::detail::KernelTable& t = kernels::detail::table_for_tests(isa);
            kernels::detail::GemmFn& slot = (use_packed ? t.gemm_packed : t.gemm)[kernels::detail::idx(TypeId::Q8_0)];
            if (slot == nullptr) continue;  // Ref's plain gemm is a vec_dot loop, batch-independent by construction
            g_real = slot;
            slot = batch_dependent;
            const std::string failure = batch_invariance_failure(TypeId::Q8_0, isa, use_packed);
            slot = g_real;
            EXPECT_NE(failure, "") << kernels::isa_name(isa) << (use_packed ? " packed" : " plain");
            EXPECT_EQ(batch_invariance_failure(TypeId::Q8_0, isa, use_packed), "");
        }
}

// The whole model: a prompt's logits are the same bits whether its tokens go through one at a time or in
// batches of 3, 5 or all of them, for a file of every ladder type (repacked, as loaded by default).
std::vector<float> prompt_logits(const Model& m, int64_t n_batch, ops::ThreadPool& pool) {
    const std::vector<int32_t> toks = {2, 106, 1000, 108, 473, 474, 475, 476, 477, 478, 479, 480, 600, 700, 800, 900};
    ContextParams p;
    p.n_ctx = 32;
    p.n_batch = n_batch;
    p.pool = &pool;
    Context ctx(m, p);
    std::vector<float> out(toks.size() * static_cast<size_t>(m.config().n_vocab));
    ctx.forward(toks, 0, static_cast<int32_t>(toks.size()), out.data());
    return out;
}

class LadderBatchInvariance : public ::testing::TestWithParam<std::string> {};

TEST_P(LadderBatchInvariance, LogitsDoNotDependOnTheBatchSize) {
    const auto m = Model::load(test::golden("tiny-7b/" + GetParam() + ".gguf"));
    ops::ThreadPool pool(2);
    const auto alone = prompt_logits(*m, 1, pool);
    for (int64_t n_batch : {3, 5, 512}) {
        const auto got = prompt_logits(*m, n_batch, pool);
        EXPECT_TRUE(same_bits(got.data(), alone.data(), alone.size())) << GetParam() << " n_batch " << n_batch;
    }
}

INSTANTIATE_TEST_SUITE_P(
    LadderFiles, LadderBatchInvariance,
    ::testing::Values("q/tiny-7b-F16", "q/tiny-7b-BF16", "q/tiny-7b-Q8_0", "q/tiny-7b-Q6_K", "q/tiny-7b-Q5_K_M",
                      "q/tiny-7b-Q5_1", "q/tiny-7b-Q5_0", "q/tiny-7b-Q4_K_M", "q/tiny-7b-Q4_1", "q/tiny-7b-Q4_0",
                      "q/tiny-7b-IQ4_NL", "q/tiny-7b-IQ4_XS", "q/tiny-7b-Q3_K_L", "q/tiny-7b-Q3_K_M",
                      "q/tiny-7b-Q3_K_S", "q/tiny-7b-IQ3_M", "q/tiny-7b-IQ3_S", "qi/tiny-7b-IQ3_XS",
                      "qi/tiny-7b-IQ3_XXS", "q/tiny-7b-Q2_K", "qi/tiny-7b-Q4_0", "qi/tiny-7b-Q5_0"),
    [](const auto& i) {
        std::string s = i.param;
        for (char& c : s) if (c == '/' || c == '-') c = '_';
        return s;
    });

}  // namespace
}  // namespace gemma
