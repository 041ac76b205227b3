// Unit tests of the IQ2 grids, IQ2_XXS/XS/S dequantization and the IQ2_S quantizer.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/iq2.h"
#include "quant/iq2_tables.h"
#include "quant/types.h"

namespace gemma {
namespace {

// FNV-1a over the little-endian bytes of the keys: a fingerprint of ggml's kgrid_2bit_* tables.
uint64_t fnv_keys(const uint64_t* grid, int n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; ++i) {
        const uint16_t k = iq2_grid_key(grid[i]);
        for (uint8_t b : {static_cast<uint8_t>(k & 0xFF), static_cast<uint8_t>(k >> 8)}) {
            h ^= b;
            h *= 0x100000001b3ull;
        }
    }
    return h;
}

struct GridCase {
    const uint64_t* grid;
    int n;
    uint64_t key_sum;  // sum of ggml's kgrid entries
    uint64_t key_fnv;  // fingerprint of ggml's kgrid entries, in order
};

TEST(Iq2Grid, BytesAreLevelsAndKeysMatchGgmlCompactGrids) {
    // Sums and fingerprints computed from kgrid_2bit_256/512/1024 in ggml-quants.c (iq2xs_init_impl).
    const GridCase cases[] = {
        {iq2xxs_grid, 256, 3697703, 0x6fca17f5c451905dull},
        {iq2xs_grid, 512, 8004683, 0x29d6ac8e0e6b14e3ull},
        {iq2s_grid, 1024, 16519059, 0x641f9aa3fbd98694ull},
    };
    for (const auto& c : cases) {
        uint64_t sum = 0;
        for (int i = 0; i < c.n; ++i) {
            for (int k = 0; k < 8; ++k) {
                const uint8_t b = static_cast<uint8_t>(c.grid[i] >> (8 * k));
                EXPECT_TRUE(b == 0x08 || b == 0x19 || b == 0x2b) << "entry " << i;
            }
            sum += iq2_grid_key(c.grid[i]);
            // ggml's compact lists are strictly ascending, which also makes every point unique.
            if (i > 0) {
                EXPECT_LT(iq2_grid_key(c.grid[i - 1]), iq2_grid_key(c.grid[i])) << "entry " << i;
            }
        }
        EXPECT_EQ(sum, c.key_sum);
        EXPECT_EQ(fnv_keys(c.grid, c.n), c.key_fnv);
        EXPECT_EQ(iq2_grid_key(c.grid[0]), 0);
    }
    EXPECT_EQ(iq2_grid_key(iq2s_grid[1023]), 43690);  // all levels 2
    EXPECT_EQ(iq2_grid_key(iq2xxs_grid[255]), 43268);
}

int dist2(const std::array<int8_t, 8>& p, int key) {
    int d2 = 0;
    for (int k = 0; k < 8; ++k) {
        const int diff = p[static_cast<size_t>(k)] - (2 * ((key >> (2 * k)) & 3) + 1);
        d2 += diff * diff;
    }
    return d2;
}

TEST(Iq2Grid, Iq2sLatticeNeighboursAreAllNearestPointsInIndexOrder) {
    const Iq2Lattice& lat = iq2s_lattice();
    ASSERT_EQ(lat.grid_size, 1024);
    for (int g = 0; g < 1024; ++g) EXPECT_EQ(lat.map[iq2_grid_key(iq2s_grid[g])], g);
    int off_grid = 0;
    for (int key = 0; key < Iq2Lattice::kMapSize; ++key) {
        bool level3 = false;
        for (int k = 0; k < 8; ++k) level3 |= ((key >> (2 * k)) & 3) == 3;
        const int32_t m = lat.map[static_cast<size_t>(key)];
        if (level3) {
            EXPECT_EQ(m, Iq2Lattice::kUnused);
            continue;
        }
        if (m >= 0) continue;
        ++off_grid;
        const uint16_t* nb = lat.neighbours_of(m);
        int best = 1 << 30;
        for (int g = 0; g < 1024; ++g) best = std::min(best, dist2(lat.pos[static_cast<size_t>(g)], key));
        std::vector<int> expect;
        for (int g = 0; g < 1024; ++g)
            if (dist2(lat.pos[static_cast<size_t>(g)], key) == best) expect.push_back(g);
        ASSERT_EQ(nb[0], expect.size()) << "key " << key;
        for (size_t j = 0; j < expect.size(); ++j) EXPECT_EQ(nb[j + 1], expect[j]) << "key " << key;
    }
    EXPECT_EQ(off_grid, 6561 - 1024);
}

TEST(Iq2Grid, NwantTwoKeepsTheTwoNearestDistances) {
    const Iq2Lattice lat = build_iq2_lattice(iq2xxs_grid, 256, 2);
    const int key = 0x5555;  // all levels 1: (3,...,3), not in the 256 grid
    ASSERT_LT(lat.map[key], 0);
    const uint16_t* nb = lat.neighbours_of(lat.map[key]);
    std::vector<int> d;
    for (int g = 0; g < 256; ++g) d.push_back(dist2(lat.pos[static_cast<size_t>(g)], key));
    std::vector<int> sorted = d;
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    size_t expected = 0;
    for (int v : d) expected += v <= sorted[1];
    ASSERT_EQ(nb[0], expected);
    for (int j = 1; j < nb[0]; ++j) {
        const int a = d[nb[j]], b = d[nb[j + 1]];
        EXPECT_TRUE(a < b || (a == b && nb[j] < nb[j + 1]));
    }
}

// ---------------------------------------------------------------------------------------------------
// Dequantization against the layout written out element by element (SPEC §2.2).

uint8_t grid_byte(const uint64_t* grid, int index, int j) { return static_cast<uint8_t>(grid[index] >> (8 * j)); }
float sign_of(int bit) { return bit ? -1.f : 1.f; }
// 7 stored bits, 8th = parity so the count of negatives is even.
int sign8(int s7, int j) { return j < 7 ? (s7 >> j) & 1 : std::popcount(static_cast<unsigned>(s7)) & 1; }

template <typename Block>
std::vector<Block> random_blocks(int n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<Block> b(static_cast<size_t>(n));
    auto* bytes = reinterpret_cast<uint8_t*>(b.data());
    for (size_t i = 0; i < b.size() * sizeof(Block); ++i) bytes[i] = static_cast<uint8_t>(rng());
    for (auto& blk : b) blk.d = fp32_to_fp16(std::uniform_real_distribution<float>(-2.f, 2.f)(rng));
    return b;
}

TEST(Iq2Dequant, Iq2sMatchesElementFormula) {
    const auto blocks = random_blocks<block_iq2_s>(6, 11);
    std::vector<float> y(blocks.size() * QK_K);
    dequantize_row_iq2_s(blocks.data(), y.data(), static_cast<int64_t>(y.size()));
    for (size_t bi = 0; bi < blocks.size(); ++bi) {
        const auto& b = blocks[bi];
        const float d = fp16_to_fp32(b.d);
        for (int e = 0; e < QK_K; ++e) {
            const int ib = e / 32, g = (e % 32) / 8, j = e % 8, group = 4 * ib + g;
            const int index = b.qs[group] | (((b.qh[ib] >> (2 * g)) & 3) << 8);
            const int s = g < 2 ? b.scales[ib] & 0xF : b.scales[ib] >> 4;
            const float db = d * (0.5f + static_cast<float>(s)) * 0.25f;
            const float want = db * grid_byte(iq2s_grid, index, j) * sign_of((b.qs[32 + group] >> j) & 1);
            ASSERT_EQ(y[bi * QK_K + static_cast<size_t>(e)], want) << "block " << bi << " elem " << e;
        }
    }
}

TEST(Iq2Dequant, Iq2xxsMatchesElementFormula) {
    const auto blocks = random_blocks<block_iq2_xxs>(6, 12);
    std::vector<float> y(blocks.size() * QK_K);
    dequantize_row_iq2_xxs(blocks.data(), y.data(), static_cast<int64_t>(y.size()));
    for (size_t bi = 0; bi < blocks.size(); ++bi) {
        const auto& b = blocks[bi];
        const float d = fp16_to_fp32(b.d);
        for (int e = 0; e < QK_K; ++e) {
            const int ib = e / 32, g = (e % 32) / 8, j = e % 8;
            const uint32_t idx4 = b.qs[4 * ib] | static_cast<uint32_t>(b.qs[4 * ib + 1]) << 16;
            const uint32_t aux = b.qs[4 * ib + 2] | static_cast<uint32_t>(b.qs[4 * ib + 3]) << 16;
            const int index = static_cast<int>((idx4 >> (8 * g)) & 0xFF);
            const float db = d * (0.5f + static_cast<float>(aux >> 28)) * 0.25f;
            const int s7 = static_cast<int>((aux >> (7 * g)) & 127);
            const float want = db * grid_byte(iq2xxs_grid, index, j) * sign_of(sign8(s7, j));
            ASSERT_EQ(y[bi * QK_K + static_cast<size_t>(e)], want) << "block " << bi << " elem " << e;
        }
    }
}

TEST(Iq2Dequant, Iq2xsMatchesElementFormula) {
    const auto blocks = random_blocks<block_iq2_xs>(6, 13);
    std::vector<float> y(blocks.size() * QK_K);
    dequantize_row_iq2_xs(blocks.data(), y.data(), static_cast<int64_t>(y.size()));
    for (size_t bi = 0; bi < blocks.size(); ++bi) {
        const auto& b = blocks[bi];
        const float d = fp16_to_fp32(b.d);
        for (int e = 0; e < QK_K; ++e) {
            const int ib = e / 32, g = (e % 32) / 8, j = e % 8;
            const uint16_t q = b.qs[4 * ib + g];
            const int s = g < 2 ? b.scales[ib] & 0xF : b.scales[ib] >> 4;
            const float db = d * (0.5f + static_cast<float>(s)) * 0.25f;
            const float want = db * grid_byte(iq2xs_grid, q & 511, j) * sign_of(sign8(q >> 9, j));
            ASSERT_EQ(y[bi * QK_K + static_cast<size_t>(e)], want) << "block " << bi << " elem " << e;
        }
    }
}

TEST(Iq2Dequant, TraitsAreRegistered) {
    EXPECT_EQ(type_traits(TypeId::IQ2_S).dequantize_row, &dequantize_row_iq2_s);
    EXPECT_EQ(type_traits(TypeId::IQ2_S).quantize_rows, &quantize_iq2_s);
    EXPECT_EQ(type_traits(TypeId::IQ2_XXS).dequantize_row, &dequantize_row_iq2_xxs);
    EXPECT_EQ(type_traits(TypeId::IQ2_XS).dequantize_row, &dequantize_row_iq2_xs);
}

// ---------------------------------------------------------------------------------------------------
// IQ2_S quantizer

std::vector<float> random_row(size_t n, uint32_t seed, float scale = 1.f) {
    std::mt19937 rng(seed);
    std::student_t_distribution<float> t(5.f);
    std::vector<float> x(n);
    for (auto& v : x) v = scale * t(rng);
    return x;
}

std::vector<float> random_imatrix(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(0.05f, 4.f);
    std::vector<float> w(n);
    for (auto& v : w) v = u(rng) * u(rng);
    return w;
}

std::vector<uint8_t> quantize(const std::vector<float>& x, int64_t n_per_row, const float* imatrix) {
    const int64_t nrows = static_cast<int64_t>(x.size()) / n_per_row;
    std::vector<uint8_t> q(row_size(TypeId::IQ2_S, n_per_row) * static_cast<size_t>(nrows));
    EXPECT_EQ(quantize_iq2_s(x.data(), q.data(), nrows, n_per_row, imatrix), q.size());
    return q;
}

std::vector<float> dequantize(const std::vector<uint8_t>& q, size_t n) {
    std::vector<float> y(n);
    dequantize_row_iq2_s(q.data(), y.data(), static_cast<int64_t>(n));
    return y;
}

double rel_rmse(const std::vector<float>& x, const std::vector<float>& y) {
    double num = 0, den = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        num += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
        den += static_cast<double>(x[i]) * x[i];
    }
    return std::sqrt(num / den);
}

TEST(Iq2sQuantize, RoundTripErrorIsBounded) {
    const int64_t n_per_row = 512;
    const auto x = random_row(8 * n_per_row, 21);
    const auto w = random_imatrix(n_per_row, 22);
    const double err = rel_rmse(x, dequantize(quantize(x, n_per_row, w.data()), x.size()));
    // 2.56 bpw on heavy-tailed data: ggml gets about 0.3; a broken grid or sign path gives ~1.
    EXPECT_LT(err, 0.4) << err;
    const double err_plain = rel_rmse(x, dequantize(quantize(x, n_per_row, nullptr), x.size()));
    EXPECT_LT(err_plain, 0.4) << err_plain;
}

TEST(Iq2sQuantize, ImatrixLowersWeightedError) {
    // Columns with a large imatrix weight must come out more accurate than without the imatrix.
    const int64_t n_per_row = 256;
    const auto x = random_row(16 * n_per_row, 31);
    std::vector<float> w(n_per_row, 0.01f);
    for (int64_t i = 0; i < n_per_row; i += 4) w[static_cast<size_t>(i)] = 100.f;
    auto werr = [&](const std::vector<float>& y) {
        double e = 0;
        for (size_t i = 0; i < x.size(); ++i) e += w[i % n_per_row] * (x[i] - y[i]) * (x[i] - y[i]);
        return e;
    };
    const double with = werr(dequantize(quantize(x, n_per_row, w.data()), x.size()));
    const double without = werr(dequantize(quantize(x, n_per_row, nullptr), x.size()));
    EXPECT_LT(with, without);
}

TEST(Iq2sQuantize, SignsAndLargeValuesSurvive) {
    const auto x = random_row(256, 41, 3.f);
    const auto w = random_imatrix(256, 42);
    const auto y = dequantize(quantize(x, 256, w.data()), 256);
    float amax = 0;
    for (float v : x) amax = std::max(amax, std::fabs(v));
    for (size_t i = 0; i < x.size(); ++i)
        if (std::fabs(x[i]) > 0.5f * amax) {
            EXPECT_EQ(std::signbit(x[i]), std::signbit(y[i])) << i;
        }
}

TEST(Iq2sQuantize, ZeroAndTinyRowsEncodeAsZeroBlocks) {
    const auto w = random_imatrix(256, 51);
    for (float v : {0.f, -0.f, 1e-20f, -3e-9f}) {
        const std::vector<float> x(256, v);
        const auto q = quantize(x, 256, w.data());
        for (size_t i = 0; i < q.size(); ++i) EXPECT_EQ(q[i], 0) << "value " << v << " byte " << i;
        for (float y : dequantize(q, 256)) EXPECT_EQ(y, 0.f);
    }
}

TEST(Iq2sQuantize, ZeroSubBlocksStayZeroInsideANormalBlock) {
    auto x = random_row(256, 61);
    for (int i = 32; i < 64; ++i) x[static_cast<size_t>(i)] = 0.f;    // sub-blocks 2 and 3
    for (int i = 192; i < 208; ++i) x[static_cast<size_t>(i)] = 1e-12f;  // sub-block 12, below 1e-8
    const auto w = random_imatrix(256, 62);
    const auto q = quantize(x, 256, w.data());
    block_iq2_s b;
    std::memcpy(&b, q.data(), sizeof(b));
    EXPECT_NE(b.d, 0);
    for (int i8 : {4, 5, 6, 7, 24, 25}) {
        EXPECT_EQ(b.qs[i8], 0) << i8;
        EXPECT_EQ(b.qs[32 + i8], 0) << i8;
    }
    // An empty sub-block has scale 0, which maps to the lowest 4-bit level.
    EXPECT_EQ(b.scales[1], 0);
    EXPECT_EQ(b.scales[6] & 0xF, 0);
}

TEST(Iq2sQuantize, ConstantRowsQuantizeToOneMagnitude) {
    for (float v : {1.f, -0.25f, 1000.f}) {
        const std::vector<float> x(256, v);
        const auto y = dequantize(quantize(x, 256, nullptr), 256);
        for (float yi : y) {
            EXPECT_EQ(yi, y[0]);
            EXPECT_NEAR(yi, v, 0.2 * std::fabs(v));
        }
    }
}

TEST(Iq2sQuantize, RowsAreIndependentAndDeterministic) {
    const int64_t n_per_row = 512;
    const auto x = random_row(4 * n_per_row, 71);
    const auto w = random_imatrix(n_per_row, 72);
    const auto all = quantize(x, n_per_row, w.data());
    EXPECT_EQ(all, quantize(x, n_per_row, w.data()));
    const size_t rs = row_size(TypeId::IQ2_S, n_per_row);
    for (int r = 0; r < 4; ++r) {
        const std::vector<float> row(x.begin() + r * n_per_row, x.begin() + (r + 1) * n_per_row);
        const auto one = quantize(row, n_per_row, w.data());
        EXPECT_TRUE(std::equal(one.begin(), one.end(), all.begin() + static_cast<std::ptrdiff_t>(r * rs))) << r;
    }
}

TEST(Iq2sQuantize, ConcurrentCallersGetIdenticalBytes) {
    const auto x = random_row(1024, 81);
    const auto w = random_imatrix(256, 82);
    const auto expect = quantize(x, 256, w.data());
    std::vector<std::vector<uint8_t>> got(4);
    std::vector<std::thread> threads;
    for (auto& g : got) threads.emplace_back([&] { g = quantize(x, 256, w.data()); });
    for (auto& t : threads) t.join();
    for (const auto& g : got) EXPECT_EQ(g, expect);
}

}  // namespace
}  // namespace gemma
