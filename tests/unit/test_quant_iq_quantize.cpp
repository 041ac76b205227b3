// Unit tests of the IQ4_NL/IQ4_XS/IQ3_XXS/IQ3_S quantizers: round-trip error, edge rows and ggml's quirks, determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/fp16.h"
#include "quant/iq_tables.h"
#include "quant/types.h"

namespace gemma {
namespace {

const TypeId kIq[] = {TypeId::IQ4_NL, TypeId::IQ4_XS, TypeId::IQ3_XXS, TypeId::IQ3_S};

uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

std::vector<uint8_t> quantize(TypeId t, const std::vector<float>& x, int64_t nrows, const float* imatrix) {
    const auto& tr = type_traits(t);
    const int64_t n_per_row = static_cast<int64_t>(x.size()) / nrows;
    std::vector<uint8_t> q(row_size(t, n_per_row) * static_cast<size_t>(nrows));
    const size_t n = tr.quantize_rows(x.data(), q.data(), nrows, n_per_row, imatrix);
    EXPECT_EQ(n, q.size()) << tr.name;
    return q;
}

std::vector<float> dequantize(TypeId t, const std::vector<uint8_t>& q, size_t n) {
    std::vector<float> y(n);
    type_traits(t).dequantize_row(q.data(), y.data(), static_cast<int64_t>(n));
    return y;
}

double rel_err(const std::vector<float>& a, const std::vector<float>& ref) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        num += (static_cast<double>(a[i]) - ref[i]) * (static_cast<double>(a[i]) - ref[i]);
        den += static_cast<double>(ref[i]) * ref[i];
    }
    return std::sqrt(num / den);
}

std::vector<float> gaussian(size_t n, unsigned seed, float sigma = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, sigma);
    std::vector<float> x(n);
    for (auto& v : x) v = nd(rng);
    return x;
}

// Relative L2 error bounds on Gaussian rows (measured 0.075 / 0.076 / 0.212 / 0.164), with headroom.
double error_bound(TypeId t) {
    switch (t) {
        case TypeId::IQ4_NL: case TypeId::IQ4_XS: return 0.10;
        case TypeId::IQ3_XXS: return 0.26;
        default: return 0.21;
    }
}

class IqQuant : public ::testing::TestWithParam<TypeId> {};

TEST_P(IqQuant, RoundTripErrorWithoutImatrix) {
    const TypeId t = GetParam();
    const int64_t n_per_row = 1024, nrows = 8;
    const auto x = gaussian(static_cast<size_t>(n_per_row * nrows), 11);
    const auto q = quantize(t, x, nrows, nullptr);
    const double err = rel_err(dequantize(t, q, x.size()), x);
    EXPECT_LT(err, error_bound(t)) << type_name(t);
    EXPECT_GT(err, 0.0);
}

// An imatrix trades error on unimportant columns for error on important ones: the weighted error must not be
// worse than the one we get when the imatrix is ignored.
TEST_P(IqQuant, ImatrixLowersWeightedError) {
    const TypeId t = GetParam();
    const int64_t n_per_row = 1024, nrows = 16;
    const auto x = gaussian(static_cast<size_t>(n_per_row * nrows), 12);
    std::mt19937 rng(5);
    std::vector<float> imat(static_cast<size_t>(n_per_row));
    for (auto& v : imat) v = std::exp(std::uniform_real_distribution<float>(-4.0f, 4.0f)(rng));
    auto weighted = [&](const std::vector<float>& y) {
        double e = 0;
        for (size_t i = 0; i < x.size(); ++i) e += imat[i % static_cast<size_t>(n_per_row)] * (y[i] - x[i]) * (y[i] - x[i]);
        return e;
    };
    const auto yi = dequantize(t, quantize(t, x, nrows, imat.data()), x.size());
    const auto yn = dequantize(t, quantize(t, x, nrows, nullptr), x.size());
    EXPECT_LT(rel_err(yi, x), error_bound(t) * 1.5) << type_name(t);
    EXPECT_LT(weighted(yi), weighted(yn)) << type_name(t);
}

TEST_P(IqQuant, ZeroRowDequantizesToZero) {
    const TypeId t = GetParam();
    const std::vector<float> x(512, 0.0f);
    const auto q = quantize(t, x, 2, nullptr);
    for (float v : dequantize(t, q, x.size())) EXPECT_EQ(v, 0.0f);
}

TEST_P(IqQuant, ConstantRowIsCloseToConstant) {
    const TypeId t = GetParam();
    // The IQ3 grids hold no all-equal point other than level 0, so a constant lands on a neighbour (~16%);
    // IQ4_XS at c = 1e-3 has an fp16 super-scale in the subnormal range (~3%).
    const double bound = t == TypeId::IQ4_NL || t == TypeId::IQ4_XS ? 0.05 : 0.2;
    for (float c : {1.0f, -3.5f, 1e-3f}) {
        const std::vector<float> x(512, c);
        const auto y = dequantize(t, quantize(t, x, 1, nullptr), x.size());
        EXPECT_LT(rel_err(y, x), bound) << type_name(t) << " c=" << c;
    }
}

TEST_P(IqQuant, TinyValuesStayFinite) {
    const TypeId t = GetParam();
    const auto x = gaussian(512, 13, 1e-20f);
    const std::vector<float> imat(256, 1.0f);
    for (bool with_imatrix : {false, true}) {
        const auto q = quantize(t, x, 2, with_imatrix ? imat.data() : nullptr);
        for (float v : dequantize(t, q, x.size())) EXPECT_TRUE(std::isfinite(v));
    }
}

TEST_P(IqQuant, Deterministic) {
    const TypeId t = GetParam();
    const int64_t n_per_row = 512, nrows = 6;
    const auto x = gaussian(static_cast<size_t>(n_per_row * nrows), 14);
    const std::vector<float> imat(static_cast<size_t>(n_per_row), 0.5f);
    const auto all = quantize(t, x, nrows, imat.data());
    EXPECT_EQ(all, quantize(t, x, nrows, imat.data()));
    // Rows are independent: one call over all rows equals a call per row, also from several threads at once.
    const size_t rs = row_size(t, n_per_row);
    std::vector<std::vector<uint8_t>> per_row(static_cast<size_t>(nrows));
    std::vector<std::thread> th;
    for (int64_t r = 0; r < nrows; ++r) {
        th.emplace_back([&, r] {
            const std::vector<float> row(x.begin() + r * n_per_row, x.begin() + (r + 1) * n_per_row);
            per_row[static_cast<size_t>(r)] = quantize(t, row, 1, imat.data());
        });
    }
    for (auto& h : th) h.join();
    for (int64_t r = 0; r < nrows; ++r)
        EXPECT_EQ(0, std::memcmp(per_row[static_cast<size_t>(r)].data(), all.data() + static_cast<size_t>(r) * rs, rs));
}

INSTANTIATE_TEST_SUITE_P(Iq, IqQuant, ::testing::ValuesIn(kIq),
                         [](const auto& info) { return std::string(type_name(info.param)); });

// ---------------------------------------------------------------------------------------------------------
// Exact encodings and ggml quirks (SPEC §3.4, §3.5)

TEST(IqQuantExact, Iq4nlZeroBlockIsAll0x88) {
    const auto q = quantize(TypeId::IQ4_NL, std::vector<float>(32, 0.0f), 1, nullptr);
    EXPECT_EQ(rd16(q.data()), 0);
    for (int j = 0; j < 16; ++j) EXPECT_EQ(q[2 + static_cast<size_t>(j)], 0x88);
}

TEST(IqQuantExact, Iq4xsZeroBlockKeepsNegativeZeroScale) {
    const auto q = quantize(TypeId::IQ4_XS, std::vector<float>(256, 0.0f), 1, nullptr);
    EXPECT_EQ(rd16(q.data()), 0x8000);      // d = -0.0f / 32
    EXPECT_EQ(rd16(q.data() + 2), 0xAAAA);  // every sub-scale stored as 0 + 32
    for (int i = 0; i < 4; ++i) EXPECT_EQ(q[4 + static_cast<size_t>(i)], 0);
    for (int j = 0; j < 128; ++j) EXPECT_EQ(q[8 + static_cast<size_t>(j)], 0x88);
}

// A zero inside a non-zero block still maps to the code-book entry 1 (index 8).
TEST(IqQuantExact, Iq4nlZeroElementMapsToIndex8) {
    auto x = gaussian(32, 21);
    x[3] = 0.0f;
    x[20] = 0.0f;
    const auto q = quantize(TypeId::IQ4_NL, x, 1, nullptr);
    EXPECT_EQ(q[2 + 3] & 0xF, 8);
    EXPECT_EQ(q[2 + 4] >> 4, 8);
}

TEST(IqQuantExact, Iq4nlExactCodebookRowRoundTrips) {
    std::vector<float> x(32);
    for (int j = 0; j < 32; ++j) x[static_cast<size_t>(j)] = 0.25f * static_cast<float>(kvalues_iq4nl[j % 16]);
    const auto y = dequantize(TypeId::IQ4_NL, quantize(TypeId::IQ4_NL, x, 1, nullptr), 32);
    for (int j = 0; j < 32; ++j) EXPECT_EQ(y[static_cast<size_t>(j)], x[static_cast<size_t>(j)]) << j;
}

TEST(IqQuantExact, Iq3xxsZeroBlockIsAllZeroBytes) {
    auto x = gaussian(512, 22);
    std::fill(x.begin() + 256, x.end(), 0.0f);
    const auto q = quantize(TypeId::IQ3_XXS, x, 1, nullptr);
    for (size_t i = 98; i < 196; ++i) EXPECT_EQ(q[i], 0) << i;
}

// XXS can store only an even number of negative signs per 8 values: at most one value per group flips.
TEST(IqQuantExact, Iq3xxsFlipsAtMostOneSignPerGroup) {
    const auto x = gaussian(2048, 23);
    const auto y = dequantize(TypeId::IQ3_XXS, quantize(TypeId::IQ3_XXS, x, 1, nullptr), x.size());
    for (size_t g = 0; g < x.size() / 8; ++g) {
        int flips = 0;
        for (size_t i = 8 * g; i < 8 * g + 8; ++i) flips += (x[i] < 0) != (y[i] < 0);
        EXPECT_LE(flips, 1) << "group " << g;
    }
}

// ggml's IQ3_S writes qs/signs through cursors that an all-zero 32-run does not advance: later sub-blocks land
// one slot early (qh stays indexed by sub-block). Without an imatrix sub-blocks are searched independently,
// so the shifted bytes must equal the unshifted ones of a row whose zero run was replaced by data.
TEST(IqQuantExact, Iq3sZeroRunShiftsLaterSubBlocks) {
    auto filled = gaussian(256, 24);
    auto holed = filled;
    std::fill(holed.begin() + 32, holed.begin() + 64, 0.0f);  // sub-block 1
    const auto qf = quantize(TypeId::IQ3_S, filled, 1, nullptr);
    const auto qh = quantize(TypeId::IQ3_S, holed, 1, nullptr);
    const uint8_t* f_qs = qf.data() + 2; const uint8_t* h_qs = qh.data() + 2;
    const uint8_t* f_qh = qf.data() + 66; const uint8_t* h_qh = qh.data() + 66;
    const uint8_t* f_sg = qf.data() + 74; const uint8_t* h_sg = qh.data() + 74;
    for (int k = 0; k < 8; ++k) EXPECT_EQ(h_qs[k], f_qs[k]);
    for (int k = 0; k < 4; ++k) EXPECT_EQ(h_sg[k], f_sg[k]);
    EXPECT_EQ(h_qh[0], f_qh[0]);
    EXPECT_EQ(h_qh[1], 0);
    for (int ib = 2; ib < 8; ++ib) {
        for (int k = 0; k < 8; ++k) EXPECT_EQ(h_qs[8 * (ib - 1) + k], f_qs[8 * ib + k]) << ib;
        for (int k = 0; k < 4; ++k) EXPECT_EQ(h_sg[4 * (ib - 1) + k], f_sg[4 * ib + k]) << ib;
        EXPECT_EQ(h_qh[ib], f_qh[ib]) << ib;
    }
    for (int k = 56; k < 64; ++k) EXPECT_EQ(h_qs[k], 0);
    for (int k = 28; k < 32; ++k) EXPECT_EQ(h_sg[k], 0);
}

// With |x| ~ 1e-20 every weighted sum underflows, so all sub-scales come out 0: ggml then stores d = 0 and
// zero scales but keeps the grid indices and signs its sub-block loop wrote (IQ3_XXS zeroes everything).
TEST(IqQuantExact, Iq3sUnderflowKeepsIndicesAndSigns) {
    const auto x = gaussian(256, 25, 1e-20f);
    const auto q = quantize(TypeId::IQ3_S, x, 1, nullptr);
    EXPECT_EQ(rd16(q.data()), 0);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(q[106 + static_cast<size_t>(i)], 0);
    for (int g = 0; g < 32; ++g) {
        uint8_t s = 0;
        for (int i = 0; i < 8; ++i) s = static_cast<uint8_t>(s | ((x[static_cast<size_t>(8 * g + i)] < 0) << i));
        EXPECT_EQ(q[74 + static_cast<size_t>(g)], s) << g;
    }
    const auto qx = quantize(TypeId::IQ3_XXS, x, 1, nullptr);
    for (uint8_t c : qx) EXPECT_EQ(c, 0);
}

}  // namespace
}  // namespace gemma
