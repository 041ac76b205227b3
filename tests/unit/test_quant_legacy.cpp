// Unit tests of the legacy 32-element quant types: format decoding, round-trip error, edge rows, stability.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "quant/formats.h"
#include "quant/types.h"

namespace gemma {
namespace {

const TypeId kLegacy[] = {TypeId::Q4_0, TypeId::Q4_1, TypeId::Q5_0, TypeId::Q5_1, TypeId::Q8_0, TypeId::Q8_1};

uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
float rdh(const uint8_t* p) { return fp16_to_fp32(rd16(p)); }
uint32_t rd32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24); }

// Element e of one block, written straight from the byte offsets of SPEC §2.1 and the formulas of §2.2
// (deliberately not sharing code or structs with the implementation).
float slow_element(TypeId t, const uint8_t* b, int e) {
    const int j = e % 16;
    const bool hi = e >= 16;
    auto nib = [&](const uint8_t* qs) { return hi ? qs[j] >> 4 : qs[j] & 0xF; };
    switch (t) {
        case TypeId::Q4_0: return static_cast<float>(nib(b + 2) - 8) * rdh(b);
        case TypeId::Q4_1: return static_cast<float>(nib(b + 4)) * rdh(b) + rdh(b + 2);
        case TypeId::Q5_0: {
            const int q = nib(b + 6) | static_cast<int>(((rd32(b + 2) >> e) & 1) << 4);
            return static_cast<float>(q - 16) * rdh(b);
        }
        case TypeId::Q5_1: {
            const int q = nib(b + 8) | static_cast<int>(((rd32(b + 4) >> e) & 1) << 4);
            return static_cast<float>(q) * rdh(b) + rdh(b + 2);
        }
        case TypeId::Q8_0: return static_cast<float>(static_cast<int8_t>(b[2 + e])) * rdh(b);
        case TypeId::Q8_1: return static_cast<float>(static_cast<int8_t>(b[4 + e])) * rdh(b);
        default: ADD_FAILURE() << "unexpected type"; return 0.0f;
    }
}

uint16_t random_finite_fp16(std::mt19937& rng) {
    uint16_t h = static_cast<uint16_t>(rng());
    if (((h >> 10) & 0x1F) == 0x1F) h = static_cast<uint16_t>(h & ~0x4000u);  // inf/NaN exponent -> finite
    return h;
}

uint32_t fbits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

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

double rel_rmse(const std::vector<float>& y, const std::vector<float>& x) {
    double num = 0, den = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        num += (static_cast<double>(y[i]) - x[i]) * (static_cast<double>(y[i]) - x[i]);
        den += static_cast<double>(x[i]) * x[i];
    }
    return std::sqrt(num / den);
}

std::vector<float> random_row(size_t n, bool student, uint32_t seed) {
    std::mt19937 rng(seed);
    std::student_t_distribution<double> st(4.0);
    std::normal_distribution<double> nd(0.0, 1.0);
    std::vector<float> x(n);
    for (auto& v : x) v = static_cast<float>(0.02 * (student ? st(rng) : nd(rng)));
    return x;
}

// A positive imatrix with a wide dynamic range, like real activation statistics.
std::vector<float> random_imatrix(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::lognormal_distribution<double> ln(0.0, 1.5);
    std::vector<float> w(n);
    for (auto& v : w) v = static_cast<float>(ln(rng));
    return w;
}

TEST(QuantLegacy, DequantizeMatchesFormatFormula) {
    std::mt19937 rng(123);
    for (TypeId t : kLegacy) {
        const auto& tr = type_traits(t);
        const int nblocks = 64;
        std::vector<uint8_t> blocks(static_cast<size_t>(tr.type_size) * nblocks);
        for (auto& b : blocks) b = static_cast<uint8_t>(rng());
        for (int i = 0; i < nblocks; ++i) {
            uint8_t* b = &blocks[static_cast<size_t>(i) * tr.type_size];
            const uint16_t d = random_finite_fp16(rng), m = random_finite_fp16(rng);
            std::memcpy(b, &d, 2);
            if (t != TypeId::Q4_0 && t != TypeId::Q5_0 && t != TypeId::Q8_0) std::memcpy(b + 2, &m, 2);
        }
        std::vector<float> y(static_cast<size_t>(32) * nblocks);
        tr.dequantize_row(blocks.data(), y.data(), static_cast<int64_t>(y.size()));
        for (int i = 0; i < nblocks; ++i)
            for (int e = 0; e < 32; ++e) {
                const float want = slow_element(t, &blocks[static_cast<size_t>(i) * tr.type_size], e);
                ASSERT_EQ(fbits(y[static_cast<size_t>(i) * 32 + e]), fbits(want))
                    << tr.name << " block " << i << " element " << e << ": " << y[i * 32 + e] << " vs " << want;
            }
    }
}

struct Bound {
    TypeId t;
    double gauss, student;  // max relative RMSE of a round trip
};
// Worst case over 20 seeds (both paths) was 0.088/0.081/0.044/0.038/0.0055 on gaussian rows and
// 0.128/0.100/0.068/0.047/0.0092 on Student-t rows; the bounds leave ~20% room.
const Bound kBounds[] = {
    {TypeId::Q4_0, 0.11, 0.155},  {TypeId::Q4_1, 0.10, 0.12},    {TypeId::Q5_0, 0.055, 0.085},
    {TypeId::Q5_1, 0.048, 0.058}, {TypeId::Q8_0, 0.0068, 0.011}, {TypeId::Q8_1, 0.0068, 0.011},
};

TEST(QuantLegacy, RoundTripErrorWithinBound) {
    const int64_t nrows = 8, n_per_row = 512;
    const auto im = random_imatrix(n_per_row, 99);
    for (const Bound& b : kBounds) {
        for (int student = 0; student < 2; ++student) {
            const auto x = random_row(static_cast<size_t>(nrows * n_per_row), student, 7 + student);
            for (int use_im = 0; use_im < 2; ++use_im) {
                const auto q = quantize(b.t, x, nrows, use_im ? im.data() : nullptr);
                const auto y = dequantize(b.t, q, x.size());
                const double err = rel_rmse(y, x);
                EXPECT_LT(err, student ? b.student : b.gauss)
                    << type_name(b.t) << (student ? " student-t" : " gaussian") << (use_im ? " imatrix" : "");
            }
        }
    }
}

// The imatrix path is a better fit in its own weighted metric than the plain one.
TEST(QuantLegacy, ImatrixReducesWeightedError) {
    const int64_t nrows = 16, n_per_row = 256;
    const auto x = random_row(static_cast<size_t>(nrows * n_per_row), true, 5);
    const auto im = random_imatrix(n_per_row, 6);
    for (TypeId t : {TypeId::Q4_0, TypeId::Q4_1, TypeId::Q5_0, TypeId::Q5_1}) {
        double e[2];
        for (int use_im = 0; use_im < 2; ++use_im) {
            const auto y = dequantize(t, quantize(t, x, nrows, use_im ? im.data() : nullptr), x.size());
            e[use_im] = 0;
            for (size_t i = 0; i < x.size(); ++i) e[use_im] += im[i % n_per_row] * (y[i] - x[i]) * (y[i] - x[i]);
        }
        EXPECT_LT(e[1], e[0]) << type_name(t);
    }
}

TEST(QuantLegacy, EdgeRows) {
    const int64_t n = 256;
    const auto im = random_imatrix(n, 3);
    std::vector<std::pair<std::string, std::vector<float>>> rows;
    rows.push_back({"zero", std::vector<float>(n, 0.0f)});
    rows.push_back({"constant", std::vector<float>(n, 0.37f)});
    rows.push_back({"negative constant", std::vector<float>(n, -1.5f)});
    std::vector<float> ties(n);
    for (int64_t i = 0; i < n; ++i) ties[i] = (i % 3 == 0) ? 1.0f : -1.0f;
    rows.push_back({"+-1 ties", ties});
    auto tiny = random_row(n, false, 11);
    for (auto& v : tiny) v *= 5e-19f;  // ~1e-20: fp16 scales underflow to zero
    rows.push_back({"tiny", tiny});
    auto holes = random_row(n, true, 12);
    for (int64_t i = 32; i < 96; ++i) holes[i] = 0.0f;   // two whole zero blocks
    for (int64_t i = 200; i < 216; ++i) holes[i] = 0.0f; // half a block
    rows.push_back({"zero blocks", holes});

    for (TypeId t : kLegacy) {
        for (const auto& [label, x] : rows) {
            for (int use_im = 0; use_im < 2; ++use_im) {
                SCOPED_TRACE(std::string(type_name(t)) + " " + label + (use_im ? " imatrix" : ""));
                const auto y = dequantize(t, quantize(t, x, 1, use_im ? im.data() : nullptr), x.size());
                float amax = 0;
                for (float v : x) amax = std::max(amax, std::fabs(v));
                for (int64_t i = 0; i < n; ++i) {
                    ASSERT_TRUE(std::isfinite(y[i])) << i;
                    // never worse than rounding everything to zero, by more than one level
                    ASSERT_LE(std::fabs(y[i] - x[i]), amax * 1.2f + 1e-30f) << i;
                }
                if (label == "zero") {
                    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[i], 0.0f) << i;
                }
                if (label == "zero blocks") {
                    for (int64_t i = 32; i < 96; ++i) ASSERT_EQ(y[i], 0.0f) << i;
                }
                if (label == "+-1 ties" && t != TypeId::Q4_0 && t != TypeId::Q5_0) {
                    // two distinct values per block are representable exactly by every type but the
                    // symmetric ones (whose grid is -8..7 / -16..15 with the max at the negative end)
                    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(y[i], x[i], 2e-3f) << i;
                }
            }
        }
    }
}

// Quantizing what we dequantized must give back the same bytes: every legacy reference path has
// this fixed point. (Not Q8_1: its s is fp16(d*sum) with the unrounded d, which the second pass
// recomputes from the rounded one. Not the imatrix paths: their weights depend on the values.)
TEST(QuantLegacy, RequantizeIsStable) {
    const int64_t nrows = 4, n_per_row = 256;
    for (TypeId t : {TypeId::Q8_0, TypeId::Q4_0, TypeId::Q4_1, TypeId::Q5_0, TypeId::Q5_1}) {
        for (int student = 0; student < 2; ++student) {
            const auto x = random_row(static_cast<size_t>(nrows * n_per_row), student, 21 + student);
            const auto q1 = quantize(t, x, nrows, nullptr);
            const auto q2 = quantize(t, dequantize(t, q1, x.size()), nrows, nullptr);
            EXPECT_TRUE(q1 == q2) << type_name(t) << (student ? " student-t" : " gaussian");
        }
    }
}

TEST(QuantLegacy, RowsAreIndependent) {
    const int64_t nrows = 5, n_per_row = 128;
    const auto x = random_row(static_cast<size_t>(nrows * n_per_row), true, 31);
    const auto im = random_imatrix(n_per_row, 32);
    for (TypeId t : kLegacy) {
        for (int use_im = 0; use_im < 2; ++use_im) {
            const float* w = use_im ? im.data() : nullptr;
            const auto all = quantize(t, x, nrows, w);
            const size_t rs = row_size(t, n_per_row);
            for (int64_t r = 0; r < nrows; ++r) {
                std::vector<float> row(x.begin() + r * n_per_row, x.begin() + (r + 1) * n_per_row);
                const auto one = quantize(t, row, 1, w);
                ASSERT_EQ(0, std::memcmp(one.data(), all.data() + r * rs, rs)) << type_name(t) << " row " << r;
            }
        }
    }
}

TEST(QuantLegacy, Q8_1SumField) {
    const auto x = random_row(256, true, 41);
    const auto q = quantize(TypeId::Q8_1, x, 1, nullptr);
    for (size_t b = 0; b < 8; ++b) {
        const uint8_t* blk = &q[b * 36];
        int sum = 0;
        for (int j = 0; j < 32; ++j) sum += static_cast<int8_t>(blk[4 + j]);
        // s = fp16(d_f32 * sum); d_f32 is not stored, so compare against the fp16 d within its rounding.
        EXPECT_NEAR(rdh(blk + 2), rdh(blk) * static_cast<float>(sum), std::fabs(rdh(blk + 2)) * 2e-3f + 1e-6f);
    }
}

// The imatrix is ignored by Q8_0 (as in ggml).
TEST(QuantLegacy, Q8_0IgnoresImatrix) {
    const auto x = random_row(512, true, 51);
    const auto im = random_imatrix(256, 52);
    EXPECT_TRUE(quantize(TypeId::Q8_0, x, 2, nullptr) == quantize(TypeId::Q8_0, x, 2, im.data()));
}

}  // namespace
}  // namespace gemma
