// Lookup tables of the IQ4/IQ3 formats (ggml-common.h constants) and the IQ3 quantizer's derived search grids.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace gemma {

// Non-linear 4-bit code book shared by IQ4_NL and IQ4_XS.
inline constexpr int8_t kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                             1,    13,   25,  38,  53,  69,  89,  113};

inline constexpr uint8_t kmask_iq2xs[8] = {1, 2, 4, 8, 16, 32, 64, 128};

namespace detail {
struct SignTable { uint8_t v[128]; };
// Entry i stores 7 explicit sign bits plus an 8th that makes the count of negatives even.
constexpr SignTable make_ksigns() {
    SignTable t{};
    for (int i = 0; i < 128; ++i) {
        int pop = 0;
        for (int b = 0; b < 7; ++b) pop += (i >> b) & 1;
        t.v[i] = static_cast<uint8_t>(i | ((pop & 1) << 7));
    }
    return t;
}
inline constexpr SignTable kSignTable = make_ksigns();
}  // namespace detail

inline constexpr const uint8_t (&ksigns_iq2xs)[128] = detail::kSignTable.v;

// Dequantization grids: each uint32 packs 4 unsigned magnitudes, byte k = element k.
extern const uint32_t iq3xxs_grid[256];  // bytes in {4,12,20,28,36,44,52,62}
extern const uint32_t iq3s_grid[512];    // bytes in {1,3,...,15}

// The quantizer's view of an IQ3 grid (ggml's iq3xs_init_impl): points have coordinates 2*l+1 with
// l in 0..7, a 12-bit key u = sum l_i << 3i, and every off-grid key has a precomputed neighbour list.
struct Iq3SearchGrid {
    int size = 0;                       // 256 or 512
    std::vector<uint16_t> kgrid;        // key of grid point k (sorted ascending)
    std::vector<uint32_t> points;       // grid point k: byte i = 2*l_i + 1
    std::vector<int32_t> map;           // key -> grid index, or -1 when off-grid (4096 entries)
    std::vector<uint32_t> nb_begin;     // key -> first neighbour in `neighbours` (4097 entries)
    std::vector<uint16_t> neighbours;   // grid indices, per key sorted by (distance, index)
    // The neighbours' point coordinates (2*l_i + 1) as floats, one array per coordinate, aligned with
    // `neighbours`: the distance loop then runs over contiguous floats and vectorizes across neighbours.
    std::vector<float> nb_coord[4];

    std::span<const uint16_t> neighbours_of(uint32_t key) const {
        return {neighbours.data() + nb_begin[key], nb_begin[key + 1] - nb_begin[key]};
    }
};

// Built once on first use (thread-safe); grid_size must be 256 (IQ3_XXS) or 512 (IQ3_S).
const Iq3SearchGrid& iq3_search_grid(int grid_size);

}  // namespace gemma
