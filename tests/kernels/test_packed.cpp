// Packed (row-interleaved) weights: the layout holds the plain rows' values, every ISA gives Ref's bits, and
// the result equals vec_dot on the plain rows up to f32 rounding, for any token count and row split.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "kernels/kernels.h"
#include "quant/blocks.h"
#include "quant/types.h"

namespace gemma::kernels {
namespace {

struct IsaGuard {
    Isa saved = active_isa();
    ~IsaGuard() { set_isa(saved); }
};

std::vector<Isa> all_isas() {
    std::vector<Isa> v;
    for (Isa isa : kAllIsas)
        if (isa_supported(isa)) v.push_back(isa);  // an ISA the CPU lacks is skipped, not failed
    return v;
}

// Random blocks: every quant byte pattern (Q8_0's -128 included), finite fp16 scales of both signs.
// extreme: every quant at its largest magnitude, the case that would overflow 16-bit partial sums.
std::vector<uint8_t> weight_rows(std::mt19937& rng, TypeId wt, int64_t rows, int64_t n, bool extreme) {
    const size_t bs = static_cast<size_t>(type_traits(wt).type_size);
    std::vector<uint8_t> w(static_cast<size_t>(rows) * row_size(wt, n));
    for (auto& b : w) b = extreme ? (wt == TypeId::Q8_0 ? 0x80 : 0xFF) : static_cast<uint8_t>(rng());
    std::uniform_real_distribution<float> ud(0.001f, 0.05f);
    // Where each block keeps its fp16 scales: d and dmin (K types) or d and m (Q4_1, Q5_1) lead; Q6_K's d trails.
    std::vector<int> offsets{0};
    if (wt == TypeId::Q4_K || wt == TypeId::Q5_K || wt == TypeId::Q4_1 || wt == TypeId::Q5_1) offsets = {0, 2};
    if (wt == TypeId::Q6_K) offsets = {208};
    if (wt == TypeId::Q3_K) offsets = {108};
    if (wt == TypeId::Q2_K) offsets = {80, 82};
    for (size_t o = 0; o < w.size(); o += bs)
        for (int off : offsets) {
            const uint16_t h = fp32_to_fp16((rng() & 1) ? ud(rng) : -ud(rng));
            std::memcpy(w.data() + o + off, &h, 2);
        }
    return w;
}

std::vector<uint8_t> act_rows(std::mt19937& rng, TypeId wt, int64_t n_tok, int64_t n, bool extreme) {
    const size_t arb = act_row_size(wt, n);
    std::vector<uint8_t> a(static_cast<size_t>(n_tok) * arb);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n));
    for (int64_t t = 0; t < n_tok; ++t) {
        for (int64_t i = 0; i < n; ++i)
            x[static_cast<size_t>(i)] = extreme ? (t % 2 ? -1.0f : 1.0f) : nd(rng) * (i % 37 == 0 ? 50.0f : 1.0f);
        convert_act_row(wt, x.data(), a.data() + static_cast<size_t>(t) * arb, n);
    }
    return a;
}

std::vector<uint8_t> pack_all(TypeId wt, int64_t n, const std::vector<uint8_t>& w, int64_t rows) {
    const size_t rb = row_size(wt, n);
    std::vector<uint8_t> p(w.size());
    for (int64_t g = 0; g < rows / kPackRows; ++g)
        pack_group(wt, n, w.data() + g * kPackRows * rb, rb, p.data() + g * kPackRows * rb);
    return p;
}

// sum_i |w_i a_i| over the dequantized rows: the scale of the rounding the f32 steps may add.
double magnitude(TypeId wt, int64_t n, const uint8_t* w, const uint8_t* a) {
    std::vector<float> wf(static_cast<size_t>(n)), af(static_cast<size_t>(n));
    type_traits(wt).dequantize_row(w, wf.data(), n);
    type_traits(type_traits(wt).vec_dot_type).dequantize_row(a, af.data(), n);
    double m = 0.0;
    for (int64_t i = 0; i < n; ++i) m += std::fabs(static_cast<double>(wf[i]) * af[i]);
    return m;
}

class Packed : public ::testing::TestWithParam<TypeId> {};

TEST_P(Packed, EveryIsaMatchesRefBitsAndVecDotClosely) {
    const TypeId wt = GetParam();
    std::mt19937 rng(31 + static_cast<int>(wt));
    // 3 groups (AVX-512 and AMX pair two: a pair and a lone group); 37 tokens: two of AMX's 16-token tiles and 5
    // left to AVX-512, whose 8-token tiles it fills four times, leaving 5.
    const int64_t rows = 24, n_tok = 37;
    // Block multiples: one, odd counts (the Q4_0 offset sums go 8 blocks at a time), a realistic row.
    const int64_t bs = type_traits(wt).block_size;
    // The K types' min term rounds two larger terms before they cancel, as in tests/kernels/test_kernels.cpp.
    const double rel = wt == TypeId::Q4_K || wt == TypeId::Q5_K || wt == TypeId::Q2_K ? 2e-5 : 2e-6;
    for (int64_t n : {bs, 3 * bs, 11 * bs, 2048 / bs * bs * (bs == 32 ? 1 : 2)}) {
        for (bool extreme : {false, true}) {
            const size_t rb = row_size(wt, n), arb = act_row_size(wt, n);
            const auto w = weight_rows(rng, wt, rows, n, extreme);
            const auto a = act_rows(rng, wt, n_tok, n, extreme);
            const auto p = pack_all(wt, n, w, rows);
            std::vector<float> ref(static_cast<size_t>(rows * n_tok));
            {
                IsaGuard g;
                ASSERT_TRUE(set_isa(Isa::Ref));
                gemm_packed(wt, n, p.data(), rb, 0, rows, a.data(), arb, n_tok, ref.data(), rows);
                for (int64_t t = 0; t < n_tok; ++t)
                    for (int64_t r = 0; r < rows; ++r) {
                        float plain = NAN;
                        vec_dot(wt, n, &plain, w.data() + r * rb, a.data() + t * arb);
                        const double tol = rel * magnitude(wt, n, w.data() + r * rb, a.data() + t * arb) + 1e-30;
                        ASSERT_NEAR(ref[static_cast<size_t>(t * rows + r)], plain, tol)
                            << type_name(wt) << " n=" << n << " r=" << r << " t=" << t << " extreme=" << extreme;
                    }
            }
            for (Isa isa : all_isas()) {
                IsaGuard g;
                ASSERT_TRUE(set_isa(isa));
                // Whole batch; a row split at a group boundary; every token alone; every tile width.
                std::vector<float> full(ref.size(), -1.0f), split(ref.size(), -1.0f), single(ref.size(), -1.0f);
                gemm_packed(wt, n, p.data(), rb, 0, rows, a.data(), arb, n_tok, full.data(), rows);
                gemm_packed(wt, n, p.data(), rb, 0, 8, a.data(), arb, n_tok, split.data(), rows);
                gemm_packed(wt, n, p.data(), rb, 8, rows, a.data(), arb, n_tok, split.data(), rows);
                for (int64_t t = 0; t < n_tok; ++t)
                    gemm_packed(wt, n, p.data(), rb, 0, rows, a.data() + t * arb, arb, 1, single.data() + t * rows, rows);
                for (size_t i = 0; i < ref.size(); ++i) {
                    ASSERT_EQ(f32_bits(full[i]), f32_bits(ref[i])) << isa_name(isa) << " n=" << n << " i=" << i;
                    ASSERT_EQ(f32_bits(split[i]), f32_bits(ref[i])) << isa_name(isa) << " split i=" << i;
                    ASSERT_EQ(f32_bits(single[i]), f32_bits(ref[i])) << isa_name(isa) << " single token i=" << i;
                }
            }
        }
    }
}

TEST_P(Packed, IsPackable) {
    const TypeId wt = GetParam();
    const int64_t bs = type_traits(wt).block_size;
    EXPECT_TRUE(packable(wt, bs));
    EXPECT_TRUE(packable(wt, kMaxPackedRow));
    EXPECT_FALSE(packable(wt, 0));
    EXPECT_FALSE(packable(wt, bs + bs / 2));
    EXPECT_FALSE(packable(wt, kMaxPackedRow + 32));
}

INSTANTIATE_TEST_SUITE_P(Types, Packed,
                         ::testing::Values(TypeId::Q4_0, TypeId::Q8_0, TypeId::Q4_1, TypeId::Q5_0, TypeId::Q5_1,
                                           TypeId::IQ4_NL, TypeId::Q4_K, TypeId::Q5_K, TypeId::Q6_K, TypeId::Q3_K,
                                           TypeId::Q2_K, TypeId::IQ4_XS),
                         [](const auto& i) { return std::string(type_name(i.param)); });

TEST(PackedLayout, OnlyWhereAKernelExists) {
    for (TypeId t : {TypeId::F32, TypeId::F16, TypeId::IQ2_S, TypeId::IQ2_XXS})
        EXPECT_FALSE(packable(t, 4096)) << type_name(t);
}

}  // namespace
}  // namespace gemma::kernels
