// The IQ2 lattice grids (ggml-common.h) and the compact key that ggml's quantizer indexes them by.
#pragma once
#include <cstdint>

namespace gemma {

// Each entry holds 8 unsigned magnitudes, byte k = element k, every byte one of 0x08, 0x19, 0x2b.
extern const uint64_t iq2xxs_grid[256];
extern const uint64_t iq2xs_grid[512];
extern const uint64_t iq2s_grid[1024];

// Level 0..2 of a grid byte (8 -> 0, 25 -> 1, 43 -> 2); ggml's quantizer works with positions 2*level+1.
constexpr int iq2_level(uint8_t byte) { return byte == 0x08 ? 0 : byte == 0x19 ? 1 : 2; }

// ggml's compact grids (kgrid_2bit_256/512/1024 in iq2xs_init_impl) are exactly these keys, in grid
// order: sum of level_k << 2k. Deriving them keeps a single copy of the numbers.
constexpr uint16_t iq2_grid_key(uint64_t entry) {
    uint16_t key = 0;
    for (int k = 0; k < 8; ++k)
        key = static_cast<uint16_t>(key | iq2_level(static_cast<uint8_t>(entry >> (8 * k))) << (2 * k));
    return key;
}

}  // namespace gemma
