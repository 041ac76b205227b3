// The search structures ggml's IQ2 quantizers build from a grid (iq2xs_init_impl), exposed for tests.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

namespace gemma {

struct Iq2Lattice {
    // Keys are sum of level_k << 2k with level 0..3; ggml sizes its map for the largest key + 2.
    static constexpr int kMapSize = 43692;

    int grid_size = 0;
    // Grid point g in the quantizer's coordinates: element k is 2*level_k + 1 (1, 3 or 5).
    std::vector<std::array<int8_t, 8>> pos;
    // key -> grid index when the key is a grid point, else -(1 + offset of its list in `neighbours`).
    // Keys with a level-3 element are never looked up (the quantizer clamps levels to 0..2) and hold kUnused.
    std::vector<int32_t> map;
    // For each off-grid key: the count n, then n grid indices in (distance, index) order.
    std::vector<uint16_t> neighbours;

    static constexpr int32_t kUnused = INT32_MIN;

    const uint16_t* neighbours_of(int32_t map_value) const {
        return neighbours.data() + (-map_value - 1);
    }
};

// Builds the lattice ggml builds for `grid` (a dequant grid from iq2_tables.h): the neighbours of an
// off-grid key are every grid point whose squared distance is among the `nwant` smallest distinct ones.
Iq2Lattice build_iq2_lattice(const uint64_t* grid, int grid_size, int nwant);

// The IQ2_S lattice (1024 points, nwant = 1), built once on first use; safe from any thread.
const Iq2Lattice& iq2s_lattice();

}  // namespace gemma
