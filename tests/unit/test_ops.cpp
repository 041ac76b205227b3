// Ops layer: thread pool semantics, the exact f32 forms of norm/rope/gelu/softmax, matmul and attention vs naive code.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "core/fp16.h"
#include "ops/attention.h"
#include "ops/matmul.h"
#include "ops/ops.h"
#include "ops/thread_pool.h"

namespace gemma::ops {
namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

TEST(ThreadPool, EveryChunkExactlyOnce) {
    for (int n_threads : {1, 2, 3}) {
        ThreadPool pool(n_threads);
        EXPECT_EQ(pool.size(), n_threads);
        for (int64_t n : {0, 1, 2, 7, 64, 1000}) {
            for (int rep = 0; rep < 50; ++rep) {
                std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
                std::atomic<bool> bad_thread{false};
                pool.parallel_for(n, [&](int64_t c, int t) {
                    hits[static_cast<size_t>(c)].fetch_add(1);
                    if (t < 0 || t >= n_threads) bad_thread = true;
                });
                for (auto& h : hits) ASSERT_EQ(h.load(), 1) << "threads " << n_threads << " chunks " << n;
                ASSERT_FALSE(bad_thread);
            }
        }
    }
}

TEST(ThreadPool, ManyBackToBackJobs) {
    // Decode issues thousands of small jobs; a stale worker must never run a chunk of the wrong job.
    ThreadPool pool(2);
    std::vector<int64_t> sums(5000);
    for (size_t j = 0; j < sums.size(); ++j) {
        std::atomic<int64_t> s{0};
        const int64_t n = 1 + static_cast<int64_t>(j % 9);
        pool.parallel_for(n, [&](int64_t c, int) { s.fetch_add(c + 1 + static_cast<int64_t>(j) * 100); });
        sums[j] = s.load();
        ASSERT_EQ(sums[j], n * (n + 1) / 2 + n * static_cast<int64_t>(j) * 100) << j;
    }
}

TEST(ThreadPool, ExceptionsReachTheCallerAndPoolSurvives) {
    ThreadPool pool(2);
    EXPECT_THROW(pool.parallel_for(100, [](int64_t c, int) {
        if (c == 37) throw std::runtime_error("chunk 37");
    }), std::runtime_error);
    std::atomic<int> n{0};
    pool.parallel_for(10, [&](int64_t, int) { n++; });
    EXPECT_EQ(n.load(), 10);
}

TEST(ThreadPool, WakesAfterSleeping) {
    ThreadPool pool(2);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // past the spin budget: workers sleep
    std::atomic<int> n{0};
    pool.parallel_for(50, [&](int64_t, int) { n++; });
    EXPECT_EQ(n.load(), 50);
}

TEST(Ops, RmsNormExactForm) {
    const auto x = randn(3072, 1, 3.0f), w = randn(3072, 2);
    std::vector<float> y(x.size());
    rmsnorm(x.data(), w.data(), y.data(), 3072, 1e-6f);
    double sum = 0;
    for (float v : x) sum += static_cast<double>(v * v);
    const float scale = 1.0f / std::sqrt(static_cast<float>(sum / 3072) + 1e-6f);
    for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y[i], (x[i] * scale) * w[i]) << i;
    std::vector<float> z = x;
    rmsnorm(z.data(), w.data(), z.data(), 3072, 1e-6f);  // in place
    EXPECT_EQ(0, std::memcmp(z.data(), y.data(), y.size() * sizeof(float)));
}

TEST(Ops, RopeNeoxRepeatedMultiplication) {
    const int64_t hd = 128, nh = 3;
    const auto x = randn(static_cast<size_t>(hd * nh), 3);
    auto y = x;
    rope_neox(y.data(), nh, hd, hd, 0, 10000.0f);
    EXPECT_EQ(0, std::memcmp(x.data(), y.data(), x.size() * sizeof(float)));  // position 0 is the identity
    y = x;
    const int32_t pos = 77;
    rope_neox(y.data(), nh, hd, hd, pos, 10000.0f);
    const float theta_scale = std::pow(10000.0f, -2.0f / static_cast<float>(hd));
    for (int64_t h = 0; h < nh; ++h) {
        float theta = static_cast<float>(pos);
        for (int64_t i = 0; i < hd / 2; ++i) {
            const float c = std::cos(theta), s = std::sin(theta);
            const float x0 = x[h * hd + i], x1 = x[h * hd + i + hd / 2];
            ASSERT_EQ(y[h * hd + i], x0 * c - x1 * s);
            ASSERT_EQ(y[h * hd + i + hd / 2], x0 * s + x1 * c);
            theta *= theta_scale;
        }
    }
    // Relative positions: q at p+d against k at p scores the same for any p (to rounding).
    auto q = randn(hd, 4), k = randn(hd, 5);
    auto score = [&](int32_t pq, int32_t pk) {
        auto a = q, b = k;
        rope_neox(a.data(), 1, hd, hd, pq, 10000.0f);
        rope_neox(b.data(), 1, hd, hd, pk, 10000.0f);
        double s = 0;
        for (int64_t i = 0; i < hd; ++i) s += static_cast<double>(a[i]) * b[i];
        return s;
    };
    EXPECT_NEAR(score(10, 3), score(107, 100), 1e-3);
}

// Linear scaling (Gemma 3's global layers): the angle is freq_scale times the same repeated-product theta, so a
// scale of 1/8 at position 8p is not the unscaled rotation at p (the products differ), but it is close.
TEST(Ops, RopeNeoxLinearScaling) {
    const int64_t n = 64;
    std::vector<float> cs(n), ref(n), one(n);
    rope_neox_cache(800, n, 1e6f, 0.125f, cs.data());
    const float theta_scale = std::pow(1e6f, -2.0f / static_cast<float>(n));
    float theta = 800.0f;
    for (int64_t i = 0; i < n / 2; ++i) {
        ASSERT_EQ(cs[2 * i], std::cos(0.125f * theta)) << i;
        ASSERT_EQ(cs[2 * i + 1], std::sin(0.125f * theta)) << i;
        theta *= theta_scale;
    }
    rope_neox_cache(100, n, 1e6f, 1.0f, one.data());
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(cs[i], one[i], 1e-4) << i;
    rope_neox_cache(800, n, 1e6f, 1.0f, ref.data());
    EXPECT_NE(0, std::memcmp(cs.data(), ref.data(), cs.size() * sizeof(float)));
}

TEST(Ops, GegluThroughFp16Table) {
    const std::vector<float> g = {-12.0f, -10.0f, -1.234567f, 0.0f, 0.1f, 0.5f, 3.3333f, 9.99f, 10.0f, 25.0f};
    const std::vector<float> u(g.size(), 2.0f);
    std::vector<float> y(g.size());
    geglu(g.data(), u.data(), y.data(), static_cast<int64_t>(g.size()));
    for (size_t i = 0; i < g.size(); ++i) {
        float expect;
        if (g[i] <= -10.0f) expect = 0.0f;
        else if (g[i] >= 10.0f) expect = g[i] * 2.0f;
        else expect = fp16_to_fp32(fp32_to_fp16(gelu_f32(fp16_to_fp32(fp32_to_fp16(g[i]))))) * 2.0f;
        EXPECT_EQ(y[i], expect) << g[i];
        // And the table is the tanh-GELU to fp16 precision.
        if (g[i] > -10.0f && g[i] < 10.0f) {
            EXPECT_NEAR(y[i], 2.0f * gelu_f32(g[i]), 4e-3f * (1 + std::fabs(g[i])));
        }
    }
}

TEST(Ops, SoftmaxSumsToOne) {
    auto x = randn(333, 6, 4.0f);
    x[17] = 50.0f;
    softmax(x.data(), 333);
    double s = 0;
    for (float v : x) s += v;
    EXPECT_NEAR(s, 1.0, 1e-5);
    EXPECT_GT(x[17], 0.99f);
    float one = -3.0f;
    softmax(&one, 1);
    EXPECT_EQ(one, 1.0f);
}

// Naive matmul over dequantized weights, in double.
std::vector<double> naive(const Matrix& w, const std::vector<float>& x, int64_t n_tok) {
    std::vector<float> row(static_cast<size_t>(w.n_in));
    std::vector<double> out(static_cast<size_t>(n_tok * w.n_out));
    for (int64_t r = 0; r < w.n_out; ++r) {
        type_traits(w.type).dequantize_row(w.data + r * w.row_bytes, row.data(), w.n_in);
        for (int64_t t = 0; t < n_tok; ++t) {
            double s = 0;
            for (int64_t i = 0; i < w.n_in; ++i) s += static_cast<double>(row[i]) * x[t * w.n_in + i];
            out[t * w.n_out + r] = s;
        }
    }
    return out;
}

TEST(Matmul, MatchesNaiveAndIsThreadInvariant) {
    const int64_t n_in = 256, n_out = 200, n_tok = 5;
    const auto wf = randn(static_cast<size_t>(n_in * n_out), 7, 0.1f);
    const auto x = randn(static_cast<size_t>(n_in * n_tok), 8);
    ThreadPool p1(1), p2(2);
    for (TypeId t : {TypeId::F32, TypeId::F16, TypeId::Q8_0, TypeId::Q4_0}) {
        const auto& tr = type_traits(t);
        std::vector<uint8_t> wq(row_size(t, n_in) * n_out);
        tr.quantize_rows(wf.data(), wq.data(), n_out, n_in, nullptr);
        Matrix m{t, n_in, n_out, wq.data(), row_size(t, n_in)};
        std::vector<uint8_t> act(act_bytes(t, n_in) * n_tok);
        std::vector<float> o1(static_cast<size_t>(n_tok * n_out)), o2(o1.size());
        matmul(m, x.data(), n_in, n_tok, o1.data(), n_out, act.data(), p1);
        matmul(m, x.data(), n_in, n_tok, o2.data(), n_out, act.data(), p2);
        EXPECT_EQ(0, std::memcmp(o1.data(), o2.data(), o1.size() * sizeof(float))) << tr.name;
        const auto ref = naive(m, x, n_tok);
        double num = 0, den = 0;
        for (size_t i = 0; i < ref.size(); ++i) {
            num += (o1[i] - ref[i]) * (o1[i] - ref[i]);
            den += ref[i] * ref[i];
        }
        // Only the activation rounding (fp16 / q8_0) separates the kernel from the naive sum.
        EXPECT_LT(std::sqrt(num / den), t == TypeId::F32 ? 1e-6 : t == TypeId::F16 ? 1e-3 : 1e-2) << tr.name;
    }
}

TEST(Matmul, WideDecodeRowConvertedInSegmentsIsBitIdentical) {
    // One token with a row wider than the segment size is converted in parallel pieces.
    const int64_t n_in = 16384 + 256, n_out = 16;
    const auto wf = randn(static_cast<size_t>(n_in * n_out), 15, 0.05f);
    const auto x = randn(static_cast<size_t>(n_in), 16);
    ThreadPool p1(1), p2(2);
    for (TypeId t : {TypeId::F16, TypeId::Q8_0, TypeId::Q4_K, TypeId::Q4_1}) {
        std::vector<uint8_t> wq(row_size(t, n_in) * n_out);
        type_traits(t).quantize_rows(wf.data(), wq.data(), n_out, n_in, nullptr);
        Matrix m{t, n_in, n_out, wq.data(), row_size(t, n_in)};
        std::vector<uint8_t> a1(act_bytes(t, n_in)), a2(a1.size());
        std::vector<float> o1(n_out), o2(n_out);
        matmul(m, x.data(), n_in, 1, o1.data(), n_out, a1.data(), p1);
        matmul(m, x.data(), n_in, 1, o2.data(), n_out, a2.data(), p2);
        EXPECT_EQ(a1, a2) << type_name(t);
        EXPECT_EQ(o1, o2) << type_name(t);
    }
}

TEST(Matmul, SharedInputAcrossActivationTypes) {
    const int64_t n_in = 64, n_tok = 3;
    const auto x = randn(static_cast<size_t>(n_in * n_tok), 9);
    const auto w1 = randn(static_cast<size_t>(n_in * 48), 10), w2 = randn(static_cast<size_t>(n_in * 32), 11);
    std::vector<uint8_t> q1(row_size(TypeId::F16, n_in) * 48), q2(row_size(TypeId::Q8_0, n_in) * 32);
    type_traits(TypeId::F16).quantize_rows(w1.data(), q1.data(), 48, n_in, nullptr);
    type_traits(TypeId::Q8_0).quantize_rows(w2.data(), q2.data(), 32, n_in, nullptr);
    Matrix m1{TypeId::F16, n_in, 48, q1.data(), row_size(TypeId::F16, n_in)};
    Matrix m2{TypeId::Q8_0, n_in, 32, q2.data(), row_size(TypeId::Q8_0, n_in)};
    std::vector<uint8_t> act(std::max(act_bytes(TypeId::F16, n_in), act_bytes(TypeId::Q8_0, n_in)) * n_tok);
    ThreadPool pool(2);
    std::vector<float> a(n_tok * 48), b(n_tok * 32), a1(a.size()), b1(b.size());
    const MatmulOut outs[2] = {{&m1, a.data(), 48}, {&m2, b.data(), 32}};
    matmul(outs, x.data(), n_in, n_tok, act.data(), pool);
    matmul(m1, x.data(), n_in, n_tok, a1.data(), 48, act.data(), pool);
    matmul(m2, x.data(), n_in, n_tok, b1.data(), 32, act.data(), pool);
    EXPECT_EQ(a, a1);
    EXPECT_EQ(b, b1);
}

// Reference attention in double over the keys a token at `pos` sees, with q, k and v rounded as the cache type
// does, and the scores soft-capped when asked.
// Exact mode also rounds the probabilities as an F16 cache's V·p does; flash mode does not.
std::vector<double> naive_attention(TypeId kv, const AttnShape& s, const AttnParams& ap, const std::vector<float>& q,
                                    const std::vector<float>& k, const std::vector<float>& v, int32_t pos) {
    auto r = [&](float x) { return kv == TypeId::F16 ? fp16_to_fp32(fp32_to_fp16(x)) : x; };
    const int64_t hd = s.head_dim, kvd = s.n_head_kv * hd;
    const int32_t lo = ap.window > 0 ? std::max<int32_t>(0, pos - static_cast<int32_t>(ap.window) + 1) : 0;
    std::vector<double> out(static_cast<size_t>(s.n_head * hd));
    for (int64_t h = 0; h < s.n_head; ++h) {
        const int64_t g = h / (s.n_head / s.n_head_kv);
        std::vector<double> sc;
        double mx = -1e300;
        for (int32_t j = lo; j <= pos; ++j) {
            double d = 0;
            for (int64_t i = 0; i < hd; ++i) d += static_cast<double>(r(q[h * hd + i])) * r(k[j * kvd + g * hd + i]);
            if (ap.softcap > 0) d = std::tanh(d / ap.softcap) * ap.softcap;
            sc.push_back(d);
            mx = std::max(mx, d);
        }
        double sum = 0;
        for (double& x : sc) sum += (x = std::exp(x - mx));
        for (int32_t j = lo; j <= pos; ++j) {
            double pj = sc[static_cast<size_t>(j - lo)] / sum;
            if (!ap.flash) pj = r(static_cast<float>(pj));
            for (int64_t i = 0; i < hd; ++i) out[h * hd + i] += pj * r(v[j * kvd + g * hd + i]);
        }
    }
    return out;
}

// A cache of n_cells cells filled with positions [0, n_pos) in order (a ring keeps the most recent ones).
struct TestCache {
    std::vector<uint8_t> kb, vb;
    KvLayerView view;
    TestCache(TypeId kv, const AttnShape& s, int64_t n_cells, const std::vector<float>& k, const std::vector<float>& v,
              int64_t n_pos)
        : kb(kv_layer_bytes(kv, s, n_cells)), vb(kv_layer_bytes(kv, s, n_cells)), view{kv, kb.data(), vb.data(), n_cells} {
        const int64_t kvd = s.n_head_kv * s.head_dim;
        for (int32_t t = 0; t < n_pos; ++t) kv_store(view, s, t, k.data() + t * kvd, v.data() + t * kvd);
    }
};

TEST(Attention, MatchesNaiveForEveryCacheTypeGqaRatioWindowAndSoftcap) {
    ThreadPool pool(2);
    for (auto [nh, nkv] : std::vector<std::pair<int64_t, int64_t>>{{4, 4}, {4, 2}, {12, 1}}) {
        for (TypeId kv : {TypeId::F32, TypeId::F16, TypeId::Q8_0}) {
            for (const AttnParams ap : {AttnParams{0, 0.0f, false}, AttnParams{5, 0.0f, false},
                                        AttnParams{7, 1.5f, false}, AttnParams{0, 0.0f, true}, AttnParams{7, 1.5f, true}}) {
                const AttnShape s{nh, nkv, 64};
                const int64_t n_tok = 19, kvd = nkv * 64, qd = nh * 64;
                const auto q = randn(static_cast<size_t>(n_tok * qd), 12, 0.3f);
                const auto k = randn(static_cast<size_t>(n_tok * kvd), 13);
                const auto v = randn(static_cast<size_t>(n_tok * kvd), 14);
                TestCache cache(kv, s, kAttnTile, k, v, n_tok);
                std::vector<int32_t> pos(static_cast<size_t>(n_tok));
                for (int32_t t = 0; t < n_tok; ++t) pos[static_cast<size_t>(t)] = t;
                AttnScratch scratch;
                std::vector<float> out(static_cast<size_t>(n_tok * qd));
                attention(cache.view, s, ap, q.data(), qd, pos.data(), n_tok, out.data(), qd, scratch, pool);
                for (int32_t t = 0; t < n_tok; ++t) {
                    std::vector<float> qt(q.begin() + t * qd, q.begin() + (t + 1) * qd);
                    const auto ref = naive_attention(kv, s, ap, qt, k, v, t);
                    double num = 0, den = 0;
                    for (int64_t i = 0; i < qd; ++i) {
                        num += (out[t * qd + i] - ref[i]) * (out[t * qd + i] - ref[i]);
                        den += ref[i] * ref[i];
                    }
                    // Exact mode rounds each probability to fp16 from f32 arithmetic, the reference from double: a
                    // value at a rounding boundary may go one ulp (2^-11) the other way, worth up to ~1e-4 here.
                    const double tol = kv == TypeId::Q8_0 ? 2e-2 : (kv == TypeId::F16 && !ap.flash) ? 2e-4 : 1e-5;
                    EXPECT_LT(std::sqrt(num / den), tol)
                        << type_name(kv) << " heads " << nh << "/" << nkv << " window " << ap.window << " flash "
                        << ap.flash << " token " << t;
                }
            }
        }
    }
}

// Positions across several segments: the result of a token is the same bits alone, inside any batch, with the
// segments folded in one work item or spread over items, and read from a ring instead of a full cache.
TEST(Attention, BitIdenticalWhateverTheBatchSplitOrCacheLayout) {
    ThreadPool pool(2);
    for (const bool flash : {false, true}) {
    for (TypeId kv : {TypeId::F16, TypeId::Q8_0}) {
        for (const int64_t window : {int64_t{0}, int64_t{300}}) {
            const AttnShape s{8, 2, 64};
            const int64_t n_pos = 1200, kvd = s.n_head_kv * 64, qd = s.n_head * 64;
            const auto q = randn(static_cast<size_t>(n_pos * qd), 22, 0.3f);
            const auto k = randn(static_cast<size_t>(n_pos * kvd), 23);
            const auto v = randn(static_cast<size_t>(n_pos * kvd), 24);
            const TestCache full(kv, s, 1280, k, v, n_pos);
            std::vector<int32_t> pos(static_cast<size_t>(n_pos));
            for (int32_t t = 0; t < n_pos; ++t) pos[static_cast<size_t>(t)] = t;
            AttnScratch scratch;
            const AttnParams ap{window, 0.0f, flash, 1};
            // The last 40 query rows, as one batch.
            const int64_t t0 = n_pos - 40, nq = 40;
            std::vector<float> batch(static_cast<size_t>(nq * qd));
            attention(full.view, s, ap, q.data() + t0 * qd, qd, pos.data() + t0, nq, batch.data(), qd, scratch, pool);
            auto same_rows = [&](const std::vector<float>& got, int64_t first, int64_t n, const char* what) {
                EXPECT_EQ(std::memcmp(got.data(), batch.data() + (first - t0) * qd, static_cast<size_t>(n * qd) * 4), 0)
                    << what << " " << type_name(kv) << " window " << window << " flash " << flash;
            };
            for (const int mode : {1, 2}) {
                const AttnParams am{window, 0.0f, flash, mode};
                for (const int64_t split : {int64_t{1}, int64_t{3}, int64_t{13}}) {
                    for (int64_t a = t0; a < n_pos; a += split) {
                        const int64_t n = std::min(split, n_pos - a);
                        std::vector<float> got(static_cast<size_t>(n * qd));
                        attention(full.view, s, am, q.data() + a * qd, qd, pos.data() + a, n, got.data(), qd, scratch,
                                  pool);
                        same_rows(got, a, n, mode == 1 ? "folded in one item" : "segments as items");
                    }
                }
            }
            if (window > 0) {
                // A ring of window + 64 cells holds everything the last 40 rows see (the older cells are overwritten).
                const TestCache ring(kv, s, 384, k, v, n_pos);
                std::vector<float> got(static_cast<size_t>(nq * qd));
                attention(ring.view, s, ap, q.data() + t0 * qd, qd, pos.data() + t0, nq, got.data(), qd, scratch, pool);
                same_rows(got, t0, nq, "ring");
            }
        }
    }
    }
}

}  // namespace
}  // namespace gemma::ops
