// The batched (scale, min) searches: eight groups per call give the bits of eight make_qkx2/3_quants calls, on
// every path (AVX2 lanes where the CPU has them, the scalar loop), for ordinary and degenerate groups.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/cpu.h"
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

// The two searches' parameters as the quantizers call them.
struct Variant {
    bool qkx3;  // qkx3's degenerate test (max <= min), else qkx2's (max == min)
    float rmin, rdelta;
    int nstep;
    bool use_mad;
};
constexpr Variant kVariants[] = {{true, -0.9f, 0.05f, 36, false}, {false, -1.0f, 0.1f, 20, false},
                                 {false, -0.5f, 0.1f, 15, true}, {false, -0.5f, 0.1f, 0, true}};

using X8 = void (*)(const Variant&, int, int, const float*, const float*, uint8_t*, float*, float*);

void dispatched(const Variant& v, int n, int nmax, const float* x, const float* w, uint8_t* L, float* s, float* m) {
    (v.qkx3 ? make_qkx3_quants_x8 : make_qkx2_quants_x8)(n, nmax, x, w, L, s, m, v.rmin, v.rdelta, v.nstep, v.use_mad);
}
void scalar(const Variant& v, int n, int nmax, const float* x, const float* w, uint8_t* L, float* s, float* m) {
    detail::qkx_search_x8_scalar(n, nmax, x, w, L, s, m, v.rmin, v.rdelta, v.nstep, v.use_mad, v.qkx3);
}
void avx2(const Variant& v, int n, int nmax, const float* x, const float* w, uint8_t* L, float* s, float* m) {
    detail::qkx_search_x8_avx2(n, nmax, x, w, L, s, m, v.rmin, v.rdelta, v.nstep, v.use_mad, v.qkx3);
}

void expect_same(const Variant& v, int n, int nmax, const Case& c, const char* what, X8 fn) {
    std::vector<uint8_t> L(static_cast<size_t>(8 * n)), Lw(static_cast<size_t>(8 * n));
    float s[8], m[8], sw[8], mw[8];
    uint8_t Laux[32];
    for (int g = 0; g < 8; ++g)
        s[g] = (v.qkx3 ? make_qkx3_quants : make_qkx2_quants)(n, nmax, c.x.data() + g * n, c.w.data() + g * n,
                                                            L.data() + g * n, &m[g], Laux, v.rmin, v.rdelta, v.nstep,
                                                            v.use_mad);
    fn(v, n, nmax, c.x.data(), c.w.data(), Lw.data(), sw, mw);
    const std::string where = std::string(what) + (v.qkx3 ? " qkx3" : " qkx2") + " nstep " + std::to_string(v.nstep) +
                              " n " + std::to_string(n) + " nmax " + std::to_string(nmax);
    EXPECT_EQ(L, Lw) << where;
    for (int g = 0; g < 8; ++g) {
        EXPECT_EQ(fbits(s[g]), fbits(sw[g])) << where << " scale, group " << g;
        EXPECT_EQ(fbits(m[g]), fbits(mw[g])) << where << " min, group " << g;
    }
}

TEST(QkxSearch, EightGroupsAtOnceGiveTheBitsOfEightSearches) {
    const bool has_avx2 = cpu_has_avx2();
    for (const Variant& v : kVariants)
        for (const int n : {16, 32})
            for (const int nmax : {3, 15, 31})
                for (uint32_t seed = 1; seed <= 40; ++seed) {
                    const Case c = make_case(n, seed * 7919u + static_cast<uint32_t>(n * 100 + nmax));
                    expect_same(v, n, nmax, c, "dispatched", dispatched);
                    expect_same(v, n, nmax, c, "scalar", scalar);
                    if (has_avx2) expect_same(v, n, nmax, c, "avx2", avx2);
                    if (HasFailure()) return;
                }
    if (!has_avx2) GTEST_SKIP() << "no AVX2 on this CPU: only the scalar path was checked";
}

TEST(QkxSearch, NonFiniteInputsTakeTheScalarOutcome) {
    if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
    Case c = make_case(32, 5);
    c.x[3] = std::numeric_limits<float>::infinity();
    c.x[40] = std::numeric_limits<float>::quiet_NaN();
    c.w[70] = std::numeric_limits<float>::quiet_NaN();
    for (const Variant& v : kVariants) expect_same(v, 32, 15, c, "avx2 non-finite", avx2);
}

}  // namespace
}  // namespace gemma
