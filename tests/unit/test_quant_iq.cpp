// Unit tests of the IQ4/IQ3 lookup tables, the IQ3 search grids and the four IQ dequantizers.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "core/fp16.h"
#include "quant/iq_tables.h"
#include "quant/types.h"

namespace gemma {
namespace {

uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
float rdh(const uint8_t* p) { return fp16_to_fp32(rd16(p)); }
uint32_t rd32(const uint8_t* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24); }
uint32_t fbits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
uint8_t gbyte(uint32_t entry, int k) { return static_cast<uint8_t>((entry >> (8 * k)) & 0xFF); }

// ---------------------------------------------------------------------------------------------------------
// Tables

TEST(IqTables, Iq4nlValues) {
    const int expect[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    for (int i = 0; i < 16; ++i) EXPECT_EQ(kvalues_iq4nl[i], expect[i]);
}

TEST(IqTables, SignsHaveEvenParity) {
    for (int i = 0; i < 8; ++i) EXPECT_EQ(kmask_iq2xs[i], 1 << i);
    for (int i = 0; i < 128; ++i) {
        EXPECT_EQ(ksigns_iq2xs[i] & 127, i);
        EXPECT_EQ(std::popcount(static_cast<unsigned>(ksigns_iq2xs[i])) % 2, 0) << i;
    }
}

TEST(IqTables, Iq3xxsGridBytes) {
    const std::set<int> allowed = {4, 12, 20, 28, 36, 44, 52, 62};  // 62, not 60, for level 7
    std::set<uint32_t> seen;
    for (uint32_t e : iq3xxs_grid) {
        for (int k = 0; k < 4; ++k) EXPECT_TRUE(allowed.count(gbyte(e, k))) << std::hex << e;
        seen.insert(e);
    }
    EXPECT_EQ(seen.size(), 256u);
    EXPECT_EQ(iq3xxs_grid[0], 0x04040404u);
    EXPECT_EQ(iq3xxs_grid[255], 0x3e341c04u);
}

TEST(IqTables, Iq3sGridBytes) {
    std::set<uint32_t> seen;
    for (uint32_t e : iq3s_grid) {
        for (int k = 0; k < 4; ++k) {
            const int b = gbyte(e, k);
            EXPECT_TRUE(b % 2 == 1 && b >= 1 && b <= 15) << std::hex << e;
        }
        seen.insert(e);
    }
    EXPECT_EQ(seen.size(), 512u);
    EXPECT_EQ(iq3s_grid[0], 0x01010101u);
    EXPECT_EQ(iq3s_grid[511], 0x0f0f0101u);
}

// Spot values of ggml's compact kgrid_256 / kgrid_512, which the search grids derive from the dequant grids.
TEST(IqTables, SearchGridKeys) {
    const auto& g256 = iq3_search_grid(256);
    const auto& g512 = iq3_search_grid(512);
    ASSERT_EQ(g256.kgrid.size(), 256u);
    ASSERT_EQ(g512.kgrid.size(), 512u);
    EXPECT_TRUE(std::is_sorted(g256.kgrid.begin(), g256.kgrid.end()));
    EXPECT_TRUE(std::is_sorted(g512.kgrid.begin(), g512.kgrid.end()));
    EXPECT_TRUE(std::adjacent_find(g256.kgrid.begin(), g256.kgrid.end()) == g256.kgrid.end());
    EXPECT_TRUE(std::adjacent_find(g512.kgrid.begin(), g512.kgrid.end()) == g512.kgrid.end());
    const uint16_t head256[] = {0, 2, 4, 9, 11, 15, 16, 18, 25, 34, 59, 61};
    const uint16_t head512[] = {0, 1, 2, 5, 7, 8, 9, 10, 12, 14, 16, 17};
    for (size_t i = 0; i < std::size(head256); ++i) EXPECT_EQ(g256.kgrid[i], head256[i]);
    for (size_t i = 0; i < std::size(head512); ++i) EXPECT_EQ(g512.kgrid[i], head512[i]);
    EXPECT_EQ(g256.kgrid[255], 3992);
    EXPECT_EQ(g512.kgrid[511], 4032);
}

int key_dist2(uint32_t a, uint32_t b) {
    int d2 = 0;
    for (int i = 0; i < 4; ++i) {
        const int d = 2 * static_cast<int>((a >> (3 * i)) & 7) - 2 * static_cast<int>((b >> (3 * i)) & 7);
        d2 += d * d;
    }
    return d2;
}

// Brute-force re-derivation of the neighbour lists: every point at the nwant smallest distinct distances,
// ordered by (distance, grid index).
void check_search_grid(int size, int nwant) {
    const auto& g = iq3_search_grid(size);
    ASSERT_EQ(g.map.size(), 4096u);
    int on_grid = 0;
    for (uint32_t u = 0; u < 4096; ++u) {
        if (g.map[u] >= 0) {
            ++on_grid;
            EXPECT_EQ(g.kgrid[static_cast<size_t>(g.map[u])], u);
            EXPECT_TRUE(g.neighbours_of(u).empty());
            continue;
        }
        std::vector<std::pair<int, int>> all;
        for (int j = 0; j < size; ++j) all.emplace_back(key_dist2(g.kgrid[static_cast<size_t>(j)], u), j);
        std::sort(all.begin(), all.end());
        std::set<int> dists;
        std::vector<uint16_t> expect;
        for (const auto& [d2, j] : all) {
            dists.insert(d2);
            if (static_cast<int>(dists.size()) > nwant) break;
            expect.push_back(static_cast<uint16_t>(j));
        }
        const auto got = g.neighbours_of(u);
        ASSERT_EQ(std::vector<uint16_t>(got.begin(), got.end()), expect) << "key " << u;
    }
    EXPECT_EQ(on_grid, size);
    for (int k = 0; k < size; ++k) {  // quantizer points are the 2l+1 coordinates of the key
        for (int i = 0; i < 4; ++i)
            EXPECT_EQ(gbyte(g.points[static_cast<size_t>(k)], i), 2 * ((g.kgrid[static_cast<size_t>(k)] >> (3 * i)) & 7) + 1);
    }
}

TEST(IqTables, NeighbourLists256) { check_search_grid(256, 2); }
TEST(IqTables, NeighbourLists512) { check_search_grid(512, 3); }

TEST(IqTables, SearchGridBuiltOnceAcrossThreads) {
    std::vector<const Iq3SearchGrid*> seen(8);
    std::vector<std::thread> th;
    for (int t = 0; t < 8; ++t) th.emplace_back([&, t] { seen[static_cast<size_t>(t)] = &iq3_search_grid(t % 2 ? 512 : 256); });
    for (auto& t : th) t.join();
    for (int t = 0; t < 8; ++t) EXPECT_EQ(seen[static_cast<size_t>(t)], &iq3_search_grid(t % 2 ? 512 : 256));
}

// ---------------------------------------------------------------------------------------------------------
// Dequantization against the SPEC §2.1 byte offsets and §2.2 formulas, written independently here.

// Sign of element m (0..7) of a group from 7 stored bits; the 8th is implied by even parity.
bool xxs_negative(uint32_t bits7, int m) {
    if (m < 7) return (bits7 >> m) & 1;
    return std::popcount(bits7 & 127u) % 2 == 1;
}

float slow_element(TypeId t, const uint8_t* b, int e) {
    const int ib = e / 32, r = e % 32;
    switch (t) {
        case TypeId::IQ4_NL: {
            const int j = e % 16;
            const int nib = e >= 16 ? b[2 + j] >> 4 : b[2 + j] & 0xF;
            return rdh(b) * static_cast<float>(kvalues_iq4nl[nib]);
        }
        case TypeId::IQ4_XS: {
            const int ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((rd16(b + 2) >> (2 * ib)) & 3) << 4);
            const uint8_t q = b[8 + 16 * ib + r % 16];
            const int nib = r >= 16 ? q >> 4 : q & 0xF;
            const float dl = rdh(b) * static_cast<float>(ls - 32);
            return dl * static_cast<float>(kvalues_iq4nl[nib]);
        }
        case TypeId::IQ3_XXS: {
            const uint32_t aux = rd32(b + 2 + 64 + 4 * ib);
            const int l = r / 8, m = r % 8;
            const uint32_t entry = iq3xxs_grid[b[2 + 8 * ib + 2 * l + m / 4]];
            const float db = rdh(b) * (0.5f + static_cast<float>(aux >> 28)) * 0.5f;
            return db * static_cast<float>(gbyte(entry, m % 4)) * (xxs_negative((aux >> (7 * l)) & 127, m) ? -1.f : 1.f);
        }
        case TypeId::IQ3_S: {
            const int k = r / 4;
            const int idx = b[2 + 8 * ib + k] | (((b[66 + ib] >> k) & 1) << 8);
            const int ls = (b[106 + ib / 2] >> (4 * (ib % 2))) & 0xF;
            const bool neg = (b[74 + 4 * ib + r / 8] >> (r % 8)) & 1;
            const float db = rdh(b) * static_cast<float>(1 + 2 * ls);
            return db * static_cast<float>(gbyte(iq3s_grid[idx], r % 4)) * (neg ? -1.f : 1.f);
        }
        default: ADD_FAILURE() << "unexpected type"; return 0.0f;
    }
}

uint16_t random_finite_fp16(std::mt19937& rng) {
    uint16_t h = static_cast<uint16_t>(rng());
    if (((h >> 10) & 0x1F) == 0x1F) h = static_cast<uint16_t>(h & ~0x4000u);
    return h;
}

class IqDequant : public ::testing::TestWithParam<TypeId> {};

TEST_P(IqDequant, MatchesSlowFormulaOnRandomBlocks) {
    const TypeId t = GetParam();
    const auto& tr = type_traits(t);
    std::mt19937 rng(1234 + static_cast<int>(t));
    const int nblocks = 64;
    std::vector<uint8_t> q(static_cast<size_t>(tr.type_size * nblocks));
    for (auto& c : q) c = static_cast<uint8_t>(rng());
    for (int i = 0; i < nblocks; ++i) {
        const uint16_t h = random_finite_fp16(rng);
        std::memcpy(q.data() + static_cast<size_t>(i * tr.type_size), &h, 2);
    }
    std::vector<float> y(static_cast<size_t>(tr.block_size * nblocks));
    tr.dequantize_row(q.data(), y.data(), static_cast<int64_t>(y.size()));
    for (int i = 0; i < nblocks; ++i) {
        const uint8_t* b = q.data() + static_cast<size_t>(i * tr.type_size);
        for (int e = 0; e < tr.block_size; ++e) {
            const float want = slow_element(t, b, e);
            ASSERT_EQ(fbits(y[static_cast<size_t>(i * tr.block_size + e)]), fbits(want))
                << tr.name << " block " << i << " elem " << e;
        }
    }
}

TEST_P(IqDequant, BlockSizes) {
    const auto& tr = type_traits(GetParam());
    const int expect_bytes = GetParam() == TypeId::IQ4_NL ? 18 : GetParam() == TypeId::IQ4_XS ? 136
                           : GetParam() == TypeId::IQ3_XXS ? 98 : 110;
    EXPECT_EQ(tr.type_size, expect_bytes);
    EXPECT_EQ(tr.block_size, GetParam() == TypeId::IQ4_NL ? 32 : 256);
    EXPECT_NE(tr.quantize_rows, nullptr);
}

INSTANTIATE_TEST_SUITE_P(Iq, IqDequant,
                         ::testing::Values(TypeId::IQ4_NL, TypeId::IQ4_XS, TypeId::IQ3_XXS, TypeId::IQ3_S),
                         [](const auto& info) { return std::string(type_name(info.param)); });

// Hand-made blocks with known values.
TEST(IqDequantFixed, Iq3sUsesNinthIndexBitAndSigns) {
    uint8_t b[110] = {};
    const uint16_t one = fp32_to_fp16(1.0f);
    std::memcpy(b, &one, 2);
    b[2 + 3] = 0xFF;          // sub-block 0, group 3 -> index 255 | 256 = 511
    b[66] = 1 << 3;
    b[74 + 1] = 0x10;         // sub-block 0, elements 8..15: element 12 negative
    b[106] = 0x02;            // ls = 2 for sub-block 0 -> db = 5
    float y[256];
    type_traits(TypeId::IQ3_S).dequantize_row(b, y, 256);
    EXPECT_EQ(y[12], -5.0f * gbyte(iq3s_grid[511], 0));
    EXPECT_EQ(y[13], 5.0f * gbyte(iq3s_grid[511], 1));
    EXPECT_EQ(y[0], 5.0f * gbyte(iq3s_grid[0], 0));
    EXPECT_EQ(y[32], 1.0f);   // sub-block 1: ls = 0 -> db = 1, grid 0 = {1,1,1,1}
}

TEST(IqDequantFixed, Iq3xxsScaleAndImpliedSign) {
    uint8_t b[98] = {};
    const uint16_t two = fp32_to_fp16(2.0f);
    std::memcpy(b, &two, 2);
    const uint32_t aux = (3u << 28) | 1u;  // scale nibble 3, group 0: element 0 negative -> implied 8th too
    std::memcpy(b + 66, &aux, 4);
    float y[256];
    type_traits(TypeId::IQ3_XXS).dequantize_row(b, y, 256);
    const float db = 2.0f * 3.5f * 0.5f;
    EXPECT_EQ(y[0], -db * 4);
    EXPECT_EQ(y[1], db * 4);
    EXPECT_EQ(y[7], -db * 4);
    EXPECT_EQ(y[32], 2.0f * 0.5f * 0.5f * 4);
}

}  // namespace
}  // namespace gemma
