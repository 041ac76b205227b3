// Sampler: every stage and the whole chain against plain re-implementations of llama.cpp's semantics.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <map>
#include <new>
#include <numeric>
#include <random>
#include <vector>

#include "core/error.h"
#include "runtime/sampler.h"

// The replacement pair below is malloc/free on both sides; GCC cannot see that through inlining.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// Counts heap allocations while armed, to check the per-token path allocates nothing.
namespace {
std::atomic<bool> g_count_allocs{false};
std::atomic<long> g_allocs{0};
}  // namespace

void* operator new(std::size_t n) {
    if (g_count_allocs.load(std::memory_order_relaxed)) g_allocs.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace gemma {
namespace {

// ---- The reference: straightforward, full sorts everywhere, written from SPEC §9. ----

struct Cand {
    TokenId id;
    float logit;
    float p;
};

bool ref_better(const Cand& a, const Cand& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); }

std::vector<Cand> ref_from(const std::vector<float>& logits) {
    std::vector<Cand> c;
    for (size_t i = 0; i < logits.size(); ++i) c.push_back({static_cast<TokenId>(i), logits[i], 0.0f});
    return c;
}

void ref_penalties(std::vector<float>& logits, const std::vector<TokenId>& window, float repeat, float freq,
                   float present) {
    std::map<TokenId, int> count;
    for (TokenId t : window) ++count[t];
    for (const auto& [id, n] : count) {
        float& l = logits[static_cast<size_t>(id)];
        l = l <= 0 ? l * repeat : l / repeat;
        l -= static_cast<float>(n) * freq + (n > 0 ? present : 0.0f);
    }
}

void ref_top_k(std::vector<Cand>& c, int k) {
    if (k <= 0) return;
    std::stable_sort(c.begin(), c.end(), ref_better);
    c.resize(std::min(c.size(), static_cast<size_t>(k)));
}

// Probabilities in the current order (float sum), then the nucleus in sorted order.
void ref_top_p(std::vector<Cand>& c, float p, size_t min_keep) {
    if (p >= 1.0f) return;
    float mx = -INFINITY;
    for (auto& x : c) mx = std::max(mx, x.logit);
    float sum = 0;
    for (auto& x : c) sum += (x.p = expf(x.logit - mx));
    for (auto& x : c) x.p /= sum;
    std::stable_sort(c.begin(), c.end(), ref_better);
    float cum = 0;
    for (size_t i = 0; i < c.size(); ++i) {
        cum += c[i].p;
        if (cum >= p && i + 1 >= min_keep) {
            c.resize(i + 1);
            return;
        }
    }
}

// Keeps logits >= max + ln(p), in the current order.
void ref_min_p(std::vector<Cand>& c, float p) {
    if (p <= 0) return;
    float mx = -INFINITY;
    for (auto& x : c) mx = std::max(mx, x.logit);
    std::vector<Cand> out;
    for (auto& x : c)
        if (x.logit >= mx + logf(p)) out.push_back(x);
    c = out;
}

TokenId ref_dist(std::vector<Cand>& c, std::mt19937& rng) {
    if (c.size() == 1) return c[0].id;
    float mx = -INFINITY;
    for (auto& x : c) mx = std::max(mx, x.logit);
    double sum = 0;
    std::vector<float> p;
    for (auto& x : c) {
        p.push_back(expf(x.logit - mx));
        sum += p.back();
    }
    const double r = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    double run = 0;
    for (size_t i = 0; i < c.size(); ++i) {
        run += p[i];
        if (run >= r * sum) return c[i].id;
    }
    return c.back().id;
}

std::vector<float> random_logits(size_t n, std::mt19937& rng, float scale = 4.0f) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

Sampler::Candidates view(std::vector<TokenCandidate>& c, bool sorted = false) { return {c.data(), c.size(), sorted}; }

std::vector<TokenCandidate> cands(const std::vector<float>& logits) {
    std::vector<TokenCandidate> c;
    for (size_t i = 0; i < logits.size(); ++i) c.push_back({static_cast<TokenId>(i), logits[i], 0.0f});
    return c;
}

void expect_same(const Sampler::Candidates& got, const std::vector<Cand>& want, const char* what) {
    ASSERT_EQ(got.size, want.size()) << what;
    for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(got.data[i].id, want[i].id) << what << " at " << i;
        EXPECT_EQ(got.data[i].logit, want[i].logit) << what << " at " << i;
    }
}

SamplerParams only(float temp) {
    SamplerParams p;
    p.temp = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 1;
    return p;
}

// ---- Stages ----

TEST(Sampler, TopKKeepsTheKLargestInOrder) {
    std::mt19937 rng(1);
    const auto logits = random_logits(5000, rng);
    for (int k : {1, 5, 40, 300, 4999, 5000, 7000}) {
        auto c = cands(logits);
        auto v = view(c);
        Sampler::apply_top_k(v, k);
        auto want = ref_from(logits);
        ref_top_k(want, k);
        expect_same(v, want, "top_k");
        EXPECT_TRUE(v.sorted);
    }
    auto c = cands(logits);
    auto v = view(c);
    Sampler::apply_top_k(v, 0);
    EXPECT_EQ(v.size, logits.size());
    EXPECT_FALSE(v.sorted);
}

TEST(Sampler, TopKInsideTheChainMatchesTheReference) {
    // The chain selects top-k straight from the row; candidates() shows what reached the draw.
    std::mt19937 rng(2);
    const auto logits = random_logits(32000, rng);
    for (int k : {1, 40, 1000}) {
        SamplerParams p = only(1.0f);
        p.top_k = k;
        Sampler s(32000, p);
        s.sample(logits.data());
        auto want = ref_from(logits);
        ref_top_k(want, k);
        ASSERT_EQ(s.candidates().size(), want.size());
        double sum = 0;
        for (size_t i = 0; i < want.size(); ++i) {
            EXPECT_EQ(s.candidates()[i].id, want[i].id);
            sum += s.candidates()[i].p;
        }
        EXPECT_NEAR(sum, 1.0, 1e-5);
    }
}

TEST(Sampler, TopKWithTiesPrefersTheSmallerId) {
    std::vector<float> logits(1000, 0.0f);
    logits[10] = logits[500] = logits[999] = 3.0f;
    SamplerParams p = only(1.0f);
    p.top_k = 2;
    Sampler s(1000, p);
    s.sample(logits.data());
    ASSERT_EQ(s.candidates().size(), 2u);
    EXPECT_EQ(s.candidates()[0].id, 10);
    EXPECT_EQ(s.candidates()[1].id, 500);
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
    std::mt19937 rng(3);
    const auto logits = random_logits(3000, rng, 2.0f);
    for (float p : {0.0f, 0.1f, 0.5f, 0.9f, 0.95f, 0.999f, 1.0f}) {
        for (size_t min_keep : {size_t{0}, size_t{50}}) {
            auto c = cands(logits);
            auto v = view(c);
            Sampler::apply_top_p(v, p, min_keep);
            auto want = ref_from(logits);
            ref_top_p(want, p, min_keep);
            expect_same(v, want, "top_p");
        }
    }
    // Already sorted input (after top-k): same answer, no re-sort needed.
    auto c = cands(logits);
    auto v = view(c);
    Sampler::apply_top_k(v, 100);
    Sampler::apply_top_p(v, 0.8f, 0);
    auto want = ref_from(logits);
    ref_top_k(want, 100);
    ref_top_p(want, 0.8f, 0);
    expect_same(v, want, "top_k + top_p");
}

TEST(Sampler, MinPKeepsLogitsAboveMaxPlusLogP) {
    std::mt19937 rng(4);
    const auto logits = random_logits(3000, rng);
    for (float p : {0.01f, 0.05f, 0.3f, 1.0f}) {
        auto c = cands(logits);
        auto v = view(c);
        Sampler::apply_min_p(v, p, 0);
        auto want = ref_from(logits);
        ref_min_p(want, p);
        expect_same(v, want, "min_p unsorted");  // order of the input kept
        auto cs = cands(logits);
        auto vs = view(cs);
        Sampler::apply_top_k(vs, 3000);
        Sampler::apply_min_p(vs, p, 0);
        auto ws = ref_from(logits);
        ref_top_k(ws, 3000);
        ref_min_p(ws, p);
        expect_same(vs, ws, "min_p sorted");
    }
    // min_keep wins over p: the sorted fallback keeps the min_keep best.
    auto c = cands(logits);
    auto v = view(c);
    Sampler::apply_min_p(v, 1.0f, 7);
    auto want = ref_from(logits);
    ref_top_k(want, 7);
    expect_same(v, want, "min_p min_keep");
}

TEST(Sampler, TemperatureDividesAndZeroLeavesTheFirstMaximum) {
    std::vector<float> logits{1.0f, 4.0f, -2.0f, 4.0f, 0.5f};
    auto c = cands(logits);
    auto v = view(c);
    Sampler::apply_temp(v, 0.5f);
    for (size_t i = 0; i < logits.size(); ++i) EXPECT_EQ(c[i].logit, logits[i] / 0.5f);
    c = cands(logits);
    v = view(c);
    Sampler::apply_temp(v, 0.0f);
    for (size_t i = 0; i < logits.size(); ++i) {
        EXPECT_EQ(c[i].logit, i == 1 ? 4.0f : -INFINITY) << i;
    }
}

TEST(Sampler, PenaltiesOverTheLastNWindow) {
    std::mt19937 rng(5);
    const size_t n = 200;
    const auto logits = random_logits(n, rng);
    SamplerParams p = only(1.0f);
    p.penalty_last_n = 4;
    p.penalty_repeat = 1.3f;
    p.penalty_freq = 0.25f;
    p.penalty_present = 0.5f;
    Sampler s(static_cast<int32_t>(n), p);
    const std::vector<TokenId> accepted{3, 7, 7, 9, 3, 150, 7};  // the window is the last 4: 9 3 150 7
    for (TokenId t : accepted) s.accept(t);
    s.sample(logits.data());
    auto want = logits;
    ref_penalties(want, {9, 3, 150, 7}, 1.3f, 0.25f, 0.5f);
    // With every other stage off, the draw's candidates are the penalized row in vocabulary order.
    ASSERT_EQ(s.candidates().size(), n);
    float mx = *std::max_element(want.begin(), want.end());
    double sum = 0;
    for (float l : want) sum += expf(l - mx);
    for (size_t i = 0; i < n; ++i) {
        EXPECT_EQ(s.candidates()[i].id, static_cast<TokenId>(i));
        EXPECT_NEAR(s.candidates()[i].p, expf(want[i] - mx) / sum, 1e-6) << i;
    }
}

TEST(Sampler, PenaltiesMultiplyNegativeLogits) {
    // A negative logit divided by the penalty would rise; llama.cpp multiplies it instead.
    std::vector<float> logits{-1.0f, -1.5f, -3.0f};
    SamplerParams p = only(0.0f);
    p.penalty_repeat = 2.0f;
    Sampler s(3, p);
    s.accept(0);
    EXPECT_EQ(s.sample(logits.data()), 1);  // token 0 fell to -2
}

// ---- The whole chain ----

TEST(Sampler, ChainMatchesTheReferenceDrawForDraw) {
    std::mt19937 rng(6);
    const size_t n = 4000;
    struct Case {
        int top_k;
        float top_p, min_p, temp, repeat, freq, present;
    };
    for (const Case& cs : {Case{40, 0.95f, 0.05f, 0.8f, 1.0f, 0.0f, 0.0f}, Case{0, 0.9f, 0.0f, 1.2f, 1.1f, 0.1f, 0.2f},
                           Case{0, 1.0f, 0.1f, 0.7f, 1.0f, 0.0f, 0.0f}, Case{5, 1.0f, 0.0f, 2.0f, 1.0f, 0.0f, 0.3f},
                           Case{0, 1.0f, 0.0f, 1.0f, 1.0f, 0.0f, 0.0f}}) {
        SamplerParams p;
        p.top_k = cs.top_k;
        p.top_p = cs.top_p;
        p.min_p = cs.min_p;
        p.temp = cs.temp;
        p.penalty_repeat = cs.repeat;
        p.penalty_freq = cs.freq;
        p.penalty_present = cs.present;
        p.penalty_last_n = 16;
        p.seed = 1234;
        Sampler s(static_cast<int32_t>(n), p);
        std::mt19937 ref_rng(1234);
        std::vector<TokenId> window;
        for (int step = 0; step < 60; ++step) {
            auto logits = random_logits(n, rng, 1.5f);
            auto pen = logits;
            ref_penalties(pen, window, cs.repeat, cs.freq, cs.present);
            auto c = ref_from(pen);
            ref_top_k(c, cs.top_k);
            ref_top_p(c, cs.top_p, 0);
            ref_min_p(c, cs.min_p);
            for (auto& x : c) x.logit /= cs.temp;
            const TokenId want = ref_dist(c, ref_rng);
            const TokenId got = s.sample(logits.data());
            ASSERT_EQ(got, want) << "case top_k " << cs.top_k << " top_p " << cs.top_p << ", step " << step;
            s.accept(got);
            window.push_back(got);
            if (window.size() > 16) window.erase(window.begin());
        }
    }
}

TEST(Sampler, GreedyIsTheFirstMaximumOfThePenalizedRow) {
    std::mt19937 rng(7);
    for (int i = 0; i < 20; ++i) {
        auto logits = random_logits(1000, rng);
        SamplerParams p;  // defaults, temperature 0
        p.temp = 0.0f;
        Sampler s(1000, p);
        EXPECT_EQ(s.sample(logits.data()), std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
    std::vector<float> tie{0.0f, 2.0f, 1.0f, 2.0f};
    Sampler s(4, only(-1.0f));
    EXPECT_EQ(s.sample(tie.data()), 1);
    SamplerParams p = only(0.0f);
    p.penalty_repeat = 4.0f;
    Sampler sp(4, p);
    sp.accept(1);
    sp.accept(3);
    EXPECT_EQ(sp.sample(tie.data()), 2);
}

TEST(Sampler, SameSeedSameTokens) {
    std::mt19937 rng(8);
    std::vector<std::vector<float>> rows;
    for (int i = 0; i < 50; ++i) rows.push_back(random_logits(2000, rng, 1.0f));
    auto run = [&](uint32_t seed) {
        SamplerParams p;
        p.seed = seed;
        Sampler s(2000, p);
        std::vector<TokenId> out;
        for (const auto& r : rows) {
            out.push_back(s.sample(r.data()));
            s.accept(out.back());
        }
        return out;
    };
    EXPECT_EQ(run(42), run(42));
    EXPECT_NE(run(42), run(43));
    // reset() restarts the same stream.
    SamplerParams p;
    p.seed = 42;
    Sampler s(2000, p);
    const TokenId first = s.sample(rows[0].data());
    s.sample(rows[1].data());
    s.reset();
    EXPECT_EQ(s.sample(rows[0].data()), first);
    // A random seed is drawn and reported.
    SamplerParams r;
    Sampler sr(2000, r);
    EXPECT_EQ(sr.params().seed, SamplerParams::kRandomSeed);
}

TEST(Sampler, LogitBiasComesFirst) {
    std::vector<float> logits{5.0f, 1.0f, 0.0f};
    SamplerParams p = only(0.0f);
    p.logit_bias = {{0, -INFINITY}, {2, 1.5f}};
    Sampler s(3, p);
    EXPECT_EQ(s.sample(logits.data()), 2);
}

TEST(Sampler, LogprobsOfTheModelDistribution) {
    std::mt19937 rng(9);
    const auto logits = random_logits(5000, rng);
    SamplerParams p;
    p.seed = 3;
    Sampler s(5000, p);
    const TokenId t = s.sample(logits.data());
    std::vector<TokenLogprob> top;
    const float lp = s.logprobs(logits.data(), t, 5, LogprobSource::Model, &top);
    const double mx = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (float l : logits) sum += std::exp(l - mx);
    EXPECT_NEAR(lp, logits[static_cast<size_t>(t)] - mx - std::log(sum), 1e-4);
    EXPECT_NEAR(lp, token_logprob(logits.data(), 5000, t), 1e-6);
    auto want = ref_from(logits);
    ref_top_k(want, 5);
    ASSERT_EQ(top.size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(top[i].id, want[i].id);
        EXPECT_NEAR(top[i].logprob, want[i].logit - mx - std::log(sum), 1e-4);
    }
    // Post-sampling: the draw's distribution; its probabilities sum to 1 and the chosen token is in it.
    const float plp = s.logprobs(logits.data(), t, 100, LogprobSource::PostSampling, &top);
    EXPECT_GT(plp, -INFINITY);
    EXPECT_LE(top.size(), 40u);
    double psum = 0;
    for (const auto& x : top) psum += std::exp(x.logprob);
    EXPECT_NEAR(psum, 1.0, 1e-4);
    for (size_t i = 1; i < top.size(); ++i) EXPECT_GE(top[i - 1].logprob, top[i].logprob);
}

TEST(Sampler, PerTokenPathAllocatesNothing) {
    std::mt19937 rng(10);
    const int32_t n = 32000;
    const auto logits = random_logits(static_cast<size_t>(n), rng);
    for (const SamplerParams& p : {SamplerParams{}, only(0.0f), only(1.0f)}) {
        SamplerParams q = p;
        q.seed = 5;
        q.penalty_repeat = 1.1f;
        Sampler s(n, q);
        std::vector<TokenLogprob> top;
        top.reserve(10);
        s.accept(1);
        g_allocs = 0;
        g_count_allocs = true;
        for (int i = 0; i < 20; ++i) {
            const TokenId t = s.sample(logits.data());
            s.accept(t);
            s.logprobs(logits.data(), t, 10, LogprobSource::PostSampling, &top);
        }
        g_count_allocs = false;
        EXPECT_EQ(g_allocs.load(), 0);
    }
}

TEST(Sampler, BadParametersAreRejectedWithTheirName) {
    auto msg = [](auto&& f) {
        try {
            f();
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    SamplerParams p;
    p.top_p = -0.5f;
    EXPECT_NE(msg([&] { Sampler s(10, p); }).find("top_p"), std::string::npos);
    p = {};
    p.penalty_repeat = 0.0f;
    EXPECT_NE(msg([&] { Sampler s(10, p); }).find("repeat_penalty"), std::string::npos);
    p = {};
    p.logit_bias = {{10, 1.0f}};
    EXPECT_NE(msg([&] { Sampler s(10, p); }).find("logit_bias"), std::string::npos);
    p = {};
    p.penalty_last_n = -2;
    EXPECT_NE(msg([&] { Sampler s(10, p); }).find("repeat_last_n"), std::string::npos);
    EXPECT_NE(msg([&] { Sampler s(10, {}); s.accept(10); }).find("out of range"), std::string::npos);
}

// A mask is the first step: sampling with it equals sampling a row where the other tokens can never
// reach top-k (far below every allowed logit), draw for draw.
TEST(Sampler, MaskComesFirstAndMatchesARowWithoutTheOthers) {
    std::mt19937 rng(77);
    const int32_t n = 3000;
    for (int round = 0; round < 20; ++round) {
        const auto logits = random_logits(static_cast<size_t>(n), rng, 2.0f);
        std::vector<uint64_t> mask((static_cast<size_t>(n) + 63) / 64, 0);
        std::vector<float> row(logits.size(), -1e30f);
        int allowed = 0;
        const int every = 1 + round % 7;
        for (int i = round % 5; i < n; i += every) {
            mask[static_cast<size_t>(i) / 64] |= 1ull << (i % 64);
            row[static_cast<size_t>(i)] = logits[static_cast<size_t>(i)];
            ++allowed;
        }
        SamplerParams p;
        p.seed = 1000 + static_cast<uint32_t>(round);
        p.top_k = std::min(40, allowed);
        p.temp = round % 4 == 0 ? 0.0f : 0.9f;
        p.penalty_repeat = 1.3f;
        Sampler masked(n, p), plain(n, p);
        for (int step = 0; step < 8; ++step) {
            const TokenId a = masked.sample(logits.data(), mask.data());
            const TokenId b = plain.sample(row.data());
            ASSERT_EQ(a, b) << "round " << round << " step " << step;
            ASSERT_TRUE((mask[static_cast<size_t>(a) / 64] >> (a % 64)) & 1);
            ASSERT_EQ(masked.candidates().size(), plain.candidates().size());
            masked.accept(a);
            plain.accept(b);
        }
    }
}

TEST(Sampler, MaskWinsOverBiasAndAnEmptyMaskIsAnError) {
    std::mt19937 rng(5);
    const auto logits = random_logits(200, rng);
    std::vector<uint64_t> mask(4, 0);
    mask[1] = 1ull << 3;  // only token 67
    SamplerParams p;
    p.logit_bias = {{67, -INFINITY}};
    for (const float temp : {0.0f, 0.8f}) {
        p.temp = temp;
        Sampler s(200, p);
        for (int i = 0; i < 5; ++i) EXPECT_EQ(s.sample(logits.data(), mask.data()), 67);
    }
    std::vector<uint64_t> none(4, 0);
    Sampler s(200, p);
    EXPECT_THROW(s.sample(logits.data(), none.data()), Error);
}

}  // namespace
}  // namespace gemma
