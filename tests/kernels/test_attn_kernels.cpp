// Attention kernels: every ISA bit-identical to the scalar reference; the reference against plain math.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "kernels/attn_kernels.h"
#include "kernels/kernels.h"

namespace gemma::kernels {
namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(AttnKernels, ExpIsCloseToExpfOverTheSoftmaxRange) {
    double worst = 0;
    for (float x = -87.0f; x <= 0.0f; x += 0.00731f) {
        const double want = std::exp(static_cast<double>(x));
        worst = std::max(worst, std::fabs(exp_f32(x) - want) / want);
    }
    EXPECT_LT(worst, 2.5e-7);  // 2 ulp
    EXPECT_EQ(exp_f32(0.0f), 1.0f);
    EXPECT_EQ(exp_f32(-100.0f), 0.0f);
    EXPECT_EQ(exp_f32(-std::numeric_limits<float>::infinity()), 0.0f);
    EXPECT_NEAR(exp_f32(10.0f), std::exp(10.0f), std::exp(10.0f) * 3e-7);
}

TEST(AttnKernels, EveryIsaMatchesTheReferenceBitForBit) {
    const std::vector<const detail::AttnKernels*> isas = isa_supported(Isa::Avx2)
        ? std::vector<const detail::AttnKernels*>{&detail::kAttnAvx2}
        : std::vector<const detail::AttnKernels*>{};
    if (isas.empty()) GTEST_SKIP() << "no SIMD ISA on this CPU";
    const detail::AttnKernels& ref = detail::kAttnRef;
    for (const detail::AttnKernels* k : isas) {
        for (const int64_t n : {0, 1, 7, 8, 9, 31, 64, 100, 517}) {
            // Scores spread wide enough that some exps fall below the range.
            const auto x = randn(static_cast<size_t>(n), 1 + static_cast<uint32_t>(n), 30.0f);
            auto a = x, b = x;
            const float m = ref.max_of(x.data(), n);
            EXPECT_EQ(k->max_of(x.data(), n), m) << n;
            const double sa = ref.exp_sub_sum(a.data(), n, m), sb = k->exp_sub_sum(b.data(), n, m);
            EXPECT_TRUE(same_bits(a, b)) << "exp, n " << n;
            EXPECT_EQ(std::memcmp(&sa, &sb, sizeof sa), 0) << "sum, n " << n;
            for (const bool r16 : {false, true}) {
                auto c = a, d = a;
                ref.scale_round(c.data(), n, 0.37f, r16);
                k->scale_round(d.data(), n, 0.37f, r16);
                EXPECT_TRUE(same_bits(c, d)) << "scale_round " << r16 << ", n " << n;
            }
            std::vector<uint16_t> h(static_cast<size_t>(n));
            for (int64_t i = 0; i < n; ++i) h[static_cast<size_t>(i)] = fp32_to_fp16(x[static_cast<size_t>(i)]);
            std::vector<float> fa(h.size()), fb(h.size());
            ref.f16_to_f32(h.data(), fa.data(), n);
            k->f16_to_f32(h.data(), fb.data(), n);
            EXPECT_TRUE(same_bits(fa, fb)) << "f16, n " << n;
        }
        for (const int64_t hd : {8, 40, 64, 100, 256}) {
            for (const int64_t n : {1, 5, 64}) {
                const auto p = randn(static_cast<size_t>(n), 7, 0.3f);
                const auto v = randn(static_cast<size_t>(n * (hd + 3)), 8, 1.0f);
                auto a = randn(static_cast<size_t>(hd), 9, 1.0f), b = a;
                ref.accumulate_v(a.data(), p.data(), v.data(), hd + 3, n, hd);
                k->accumulate_v(b.data(), p.data(), v.data(), hd + 3, n, hd);
                EXPECT_TRUE(same_bits(a, b)) << "accumulate_v, hd " << hd << ", n " << n;
            }
        }
    }
}

TEST(AttnKernels, ReferenceDoesWhatItSays) {
    const detail::AttnKernels& ref = detail::kAttnRef;
    std::vector<float> x = {1.0f, 3.0f, -2.0f, 0.5f, 3.0f, -40.0f, 2.0f, 1.0f, 0.0f};
    const float m = ref.max_of(x.data(), 9);
    EXPECT_EQ(m, 3.0f);
    double want = 0;
    for (float v : x) want += std::exp(static_cast<double>(v) - 3.0);
    EXPECT_NEAR(ref.exp_sub_sum(x.data(), 9, m), want, want * 1e-6);
    EXPECT_EQ(x[1], 1.0f);
    std::vector<float> y = {1.0f / 3.0f};
    ref.scale_round(y.data(), 1, 1.0f, true);
    EXPECT_EQ(y[0], fp16_to_fp32(fp32_to_fp16(1.0f / 3.0f)));
    EXPECT_NE(y[0], 1.0f / 3.0f);
    std::vector<float> acc = {1.0f, 2.0f}, p = {2.0f, 3.0f}, v = {1.0f, 1.0f, 0.0f, 10.0f, 10.0f, 0.0f};
    ref.accumulate_v(acc.data(), p.data(), v.data(), 3, 2, 2);
    EXPECT_EQ(acc[0], 1.0f + 2.0f + 30.0f);
    EXPECT_EQ(acc[1], 2.0f + 2.0f + 30.0f);
}

}  // namespace
}  // namespace gemma::kernels
