// The batched (scale, min) search: eight groups per call give the bits of eight make_qkx3_quants calls, on
// every path (AVX2 lanes where the CPU has them, the scalar loop), for ordinary and degenerate groups.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "quant/kquants_search.h"

namespace gemma {
namespace {

uint32_t fbits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

struct Case {
    std::vector<float> x, w;
};

// Eight groups of n: random normals of varied spread, with some groups made degenerate or awkward.
Case make_case(int n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_real_distribution<float> ud(0.0f, 2.0f);
    Case c{std::vector<float>(static_cast<size_t>(8 * n)), std::vector<float>(static_cast<size_t>(8 * n))};
    for (int g = 0; g < 8; ++g) {
        const float spread = std::pow(10.0f, static_cast<float>(static_cast<int>(rng() % 7)) - 4.0f);
        for (int i = 0; i < n; ++i) {
            c.x[static_cast<size_t>(g * n + i)] = spread * nd(rng);
            c.w[static_cast<size_t>(g * n + i)] = ud(rng);
        }
        float* x = c.x.data() + g * n;
        float* w = c.w.data() + g * n;
        switch (rng() % 10) {
            case 0: std::fill(x, x + n, 0.0f); break;                       // all zero: degenerate
            case 1: std::fill(x, x + n, 0.25f); break;                      // constant positive: min clamps to 0
            case 2: std::fill(x, x + n, -0.5f); break;                      // constant negative: degenerate
            case 3: for (int i = 0; i < n; ++i) x[i] = std::fabs(x[i]); break;  // no negative values
            case 4: std::fill(w, w + n, 0.0f); break;                       // no weight at all
            case 5: x[rng() % static_cast<unsigned>(n)] *= 1000.0f; break;  // one outlier
            default: break;
        }
    }
    return c;
}

void expect_same(int n, int nmax, const Case& c, const char* what,
                 void (*fn)(int, int, const float*, const float*, uint8_t*, float*, float*, float, float, int, bool)) {
    std::vector<uint8_t> L(static_cast<size_t>(8 * n)), Lw(static_cast<size_t>(8 * n));
    float s[8], m[8], sw[8], mw[8];
    uint8_t Laux[32];
    for (int g = 0; g < 8; ++g)
        s[g] = make_qkx3_quants(n, nmax, c.x.data() + g * n, c.w.data() + g * n, L.data() + g * n, &m[g], Laux, -0.9f,
                                0.05f, 36, false);
    fn(n, nmax, c.x.data(), c.w.data(), Lw.data(), sw, mw, -0.9f, 0.05f, 36, false);
    EXPECT_EQ(L, Lw) << what << " n " << n << " nmax " << nmax;
    for (int g = 0; g < 8; ++g) {
        EXPECT_EQ(fbits(s[g]), fbits(sw[g])) << what << " scale, group " << g << " n " << n << " nmax " << nmax;
        EXPECT_EQ(fbits(m[g]), fbits(mw[g])) << what << " min, group " << g << " n " << n << " nmax " << nmax;
    }
}

void avx2_path(int n, int nmax, const float* x, const float* w, uint8_t* L, float* s, float* m, float rmin,
               float rdelta, int nstep, bool use_mad) {
    detail::qkx_search_x8_avx2(n, nmax, x, w, L, s, m, rmin, rdelta, nstep, use_mad, true);
}

TEST(QkxSearch, EightGroupsAtOnceGiveTheBitsOfEightSearches) {
    const bool avx2 = __builtin_cpu_supports("avx2");
    for (const int n : {16, 32})
        for (const int nmax : {3, 15, 31})
            for (uint32_t seed = 1; seed <= 60; ++seed) {
                const Case c = make_case(n, seed * 7919u + static_cast<uint32_t>(n * 100 + nmax));
                expect_same(n, nmax, c, "dispatched", make_qkx3_quants_x8);
                expect_same(n, nmax, c, "scalar", detail::make_qkx3_quants_x8_scalar);
                if (avx2) expect_same(n, nmax, c, "avx2", avx2_path);
                if (HasFailure()) return;
            }
    if (!avx2) GTEST_SKIP() << "no AVX2 on this CPU: only the scalar path was checked";
}

TEST(QkxSearch, NonFiniteInputsTakeTheScalarOutcome) {
    if (!__builtin_cpu_supports("avx2")) GTEST_SKIP() << "no AVX2 on this CPU";
    Case c = make_case(32, 5);
    c.x[3] = std::numeric_limits<float>::infinity();
    c.x[40] = std::numeric_limits<float>::quiet_NaN();
    c.w[70] = std::numeric_limits<float>::quiet_NaN();
    expect_same(32, 15, c, "avx2 non-finite", avx2_path);
}

}  // namespace
}  // namespace gemma
