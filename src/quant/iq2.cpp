// IQ2_XXS / IQ2_XS / IQ2_S dequantization and the IQ2_S reference quantizer (bit-exact with ggml).
#include "quant/iq2.h"

#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <mutex>

#include "core/error.h"
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/iq2_tables.h"
#include "quant/iq_tables.h"
#include "quant/rounding.h"

namespace gemma {
namespace {

// Byte k of a grid entry is element k, as ggml reads it (little-endian hosts, like every target we build).
inline const uint8_t* grid_bytes(const uint64_t* grid, int index) {
    return reinterpret_cast<const uint8_t*>(grid + index);
}

// Same expression shape as ggml: (db * grid byte) * (+-1).
inline float signed_value(float db, uint8_t g, uint8_t signs, int j) {
    return db * static_cast<float>(g) * (signs & kmask_iq2xs[j] ? -1.f : 1.f);
}

}  // namespace

void dequantize_row_iq2_xxs(const void* src, float* y, int64_t n) {
    GEMMA_ASSERT(n % QK_K == 0);
    const auto* x = static_cast<const block_iq2_xxs*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        for (int ib32 = 0; ib32 < QK_K / 32; ++ib32) {
            uint32_t aux32[2];
            std::memcpy(aux32, x[i].qs + 4 * ib32, sizeof(aux32));
            const float db = d * (0.5f + static_cast<float>(aux32[1] >> 28)) * 0.25f;
            for (int l = 0; l < 4; ++l) {
                const uint8_t* g = grid_bytes(iq2xxs_grid, static_cast<int>((aux32[0] >> (8 * l)) & 0xFF));
                const uint8_t signs = ksigns_iq2xs[(aux32[1] >> (7 * l)) & 127];
                for (int j = 0; j < 8; ++j) y[j] = signed_value(db, g[j], signs, j);
                y += 8;
            }
        }
    }
}

void dequantize_row_iq2_xs(const void* src, float* y, int64_t n) {
    GEMMA_ASSERT(n % QK_K == 0);
    const auto* x = static_cast<const block_iq2_xs*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        for (int ib32 = 0; ib32 < QK_K / 32; ++ib32) {
            const float db[2] = {d * (0.5f + static_cast<float>(x[i].scales[ib32] & 0xF)) * 0.25f,
                                 d * (0.5f + static_cast<float>(x[i].scales[ib32] >> 4)) * 0.25f};
            for (int l = 0; l < 4; ++l) {
                const uint16_t q = x[i].qs[4 * ib32 + l];
                const uint8_t* g = grid_bytes(iq2xs_grid, q & 511);
                const uint8_t signs = ksigns_iq2xs[q >> 9];
                for (int j = 0; j < 8; ++j) y[j] = signed_value(db[l / 2], g[j], signs, j);
                y += 8;
            }
        }
    }
}

void dequantize_row_iq2_s(const void* src, float* y, int64_t n) {
    GEMMA_ASSERT(n % QK_K == 0);
    const auto* x = static_cast<const block_iq2_s*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        const uint8_t* qs = x[i].qs;
        const uint8_t* signs = x[i].qs + QK_K / 8;  // explicit sign bytes follow the 32 index bytes
        for (int ib32 = 0; ib32 < QK_K / 32; ++ib32) {
            const float db[2] = {d * (0.5f + static_cast<float>(x[i].scales[ib32] & 0xF)) * 0.25f,
                                 d * (0.5f + static_cast<float>(x[i].scales[ib32] >> 4)) * 0.25f};
            for (int l = 0; l < 4; ++l) {
                const int index = qs[l] | ((x[i].qh[ib32] << (8 - 2 * l)) & 0x300);
                const uint8_t* g = grid_bytes(iq2s_grid, index);
                for (int j = 0; j < 8; ++j) y[j] = signed_value(db[l / 2], g[j], signs[l], j);
                y += 8;
            }
            qs += 4;
            signs += 4;
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Lattice construction (iq2xs_init_impl)

Iq2Lattice build_iq2_lattice(const uint64_t* grid, int grid_size, int nwant) {
    Iq2Lattice lat;
    lat.grid_size = grid_size;
    lat.pos.resize(static_cast<size_t>(grid_size));
    lat.map.assign(Iq2Lattice::kMapSize, -1);
    for (int g = 0; g < grid_size; ++g) {
        for (int k = 0; k < 8; ++k)
            lat.pos[static_cast<size_t>(g)][static_cast<size_t>(k)] =
                static_cast<int8_t>(2 * iq2_level(static_cast<uint8_t>(grid[g] >> (8 * k))) + 1);
        lat.map[iq2_grid_key(grid[g])] = g;
    }

    // ggml qsorts (d2, j) pairs (a total order) and keeps the leading ones whose d2 is among the nwant
    // smallest distinct values. d2 is a small integer, so walking the distinct values in increasing order
    // and the indices in increasing order within each gives the same list without sorting.
    constexpr int kMaxD2 = 8 * 6 * 6;  // coordinates are odd numbers in 1..7
    std::vector<int> dist(static_cast<size_t>(grid_size));
    for (int key = 0; key < Iq2Lattice::kMapSize; ++key) {
        if (lat.map[static_cast<size_t>(key)] >= 0) continue;
        int8_t p[8];
        bool has_level3 = false;
        for (int k = 0; k < 8; ++k) {
            const int l = (key >> (2 * k)) & 3;
            has_level3 |= l == 3;
            p[k] = static_cast<int8_t>(2 * l + 1);
        }
        if (has_level3) {  // ggml builds lists for these too, but nothing ever reads them
            lat.map[static_cast<size_t>(key)] = Iq2Lattice::kUnused;
            continue;
        }
        for (int j = 0; j < grid_size; ++j) {
            int d2 = 0;
            for (int k = 0; k < 8; ++k) {
                const int diff = lat.pos[static_cast<size_t>(j)][static_cast<size_t>(k)] - p[k];
                d2 += diff * diff;
            }
            dist[static_cast<size_t>(j)] = d2;
        }
        bool present[kMaxD2 + 1] = {};
        for (int d2 : dist) present[d2] = true;
        const size_t start = lat.neighbours.size();
        lat.map[static_cast<size_t>(key)] = -static_cast<int32_t>(start) - 1;
        lat.neighbours.push_back(0);
        int nhave = 0;
        for (int d2 = 0; d2 <= kMaxD2 && nhave < nwant; ++d2) {
            if (!present[d2]) continue;
            ++nhave;
            for (int j = 0; j < grid_size; ++j)
                if (dist[static_cast<size_t>(j)] == d2) lat.neighbours.push_back(static_cast<uint16_t>(j));
        }
        lat.neighbours[start] = static_cast<uint16_t>(lat.neighbours.size() - start - 1);
    }
    return lat;
}

const Iq2Lattice& iq2s_lattice() {
    static std::once_flag once;
    static Iq2Lattice lattice;
    std::call_once(once, [] { lattice = build_iq2_lattice(iq2s_grid, 1024, 1); });
    return lattice;
}

// ---------------------------------------------------------------------------------------------------
// IQ2_S quantizer (quantize_row_iq2_s_impl). Every float expression keeps ggml's order of operations.

namespace {

constexpr float kGroupMaxEpsIq2S = 1e-8f;
constexpr int kMaxQ = 3;

// iq2_find_best_neighbour: the listed grid point closest to xval at `scale` under `weight`;
// first strict minimum wins. Writes the point's levels to L and returns its index.
int find_best_neighbour(const Iq2Lattice& lat, const uint16_t* nb, const float* xval, const float* weight,
                        float scale, int8_t* L) {
    const int count = nb[0];
    GEMMA_ASSERT(count > 0);
    float best_d2 = FLT_MAX;
    int grid_index = -1;
    for (int j = 1; j <= count; ++j) {
        const auto& pg = lat.pos[nb[j]];
        float d2 = 0;
        for (int i = 0; i < 8; ++i) {
            const float q = pg[static_cast<size_t>(i)];
            const float diff = scale * q - xval[i];
            d2 += weight[i] * diff * diff;
        }
        if (d2 < best_d2) {
            best_d2 = d2;
            grid_index = nb[j];
        }
    }
    // ggml aborts here too; only non-finite input (inf/NaN weights) can get here.
    if (grid_index < 0) throw_error("iq2_s: cannot quantize a block with non-finite values");
    const auto& pg = lat.pos[static_cast<size_t>(grid_index)];
    for (int i = 0; i < 8; ++i) L[i] = static_cast<int8_t>((pg[static_cast<size_t>(i)] - 1) / 2);
    return grid_index;
}

// Levels of 8 values at inverse scale id, clamped to the grid's 0..2; returns their key.
inline int quantize_group(const float* xval, float id, int8_t* L) {
    int key = 0;
    for (int i = 0; i < 8; ++i) {
        const int l = nearest_int(0.5f * (id * xval[i] - 1));
        L[i] = static_cast<int8_t>(std::max(0, std::min(kMaxQ - 1, l)));
        key |= L[i] << (2 * i);
    }
    return key;
}

// Snap a group onto the grid: keep it when its key is a grid point, else take the best neighbour.
// Returns whether it was already on the grid.
inline bool snap_group(const Iq2Lattice& lat, int key, const float* xval, const float* waux, float scale,
                       int8_t* L) {
    const int32_t m = lat.map[static_cast<size_t>(key)];
    if (m >= 0) return true;
    find_best_neighbour(lat, lat.neighbours_of(m), xval, waux, scale, L);
    return false;
}

inline void weighted_sums(const float* weight, const float* xval, const int8_t* L, float& sumqx, float& sumq2) {
    sumqx = 0;
    sumq2 = 0;
    for (int i = 0; i < 16; ++i) {
        const float w = weight[i];
        const float q = static_cast<float>(2 * L[i] + 1);
        sumqx += w * xval[i] * q;
        sumq2 += w * q * q;
    }
}

void quantize_block_iq2_s(const Iq2Lattice& lat, const float* xbl, const float* qw_block, block_iq2_s& y) {
    std::memset(&y, 0, sizeof(y));
    float scales[QK_K / 16];
    float weight[16], xval[16], waux[16];
    int8_t L[16], Laux[16];
    bool is_on_grid[2], is_on_grid_aux[2];
    uint8_t block_signs[2];
    float max_scale = 0;

    float sumx2 = 0;
    for (int i = 0; i < QK_K; ++i) sumx2 += xbl[i] * xbl[i];
    const float sigma2 = 2 * sumx2 / QK_K;

    for (int ib = 0; ib < QK_K / 16; ++ib) {
        const float* xb = xbl + 16 * ib;
        if (qw_block) {
            const float* qw = qw_block + 16 * ib;
            for (int i = 0; i < 16; ++i) weight[i] = qw[i] * std::sqrt(sigma2 + xb[i] * xb[i]);
        } else {
            for (int i = 0; i < 16; ++i) weight[i] = 0.25f * sigma2 + xb[i] * xb[i];
        }
        for (int i = 0; i < 16; ++i) waux[i] = std::sqrt(weight[i]);
        for (int k = 0; k < 2; ++k) {
            uint8_t s = 0;
            for (int i = 0; i < 8; ++i) {
                if (xb[8 * k + i] >= 0) {
                    xval[8 * k + i] = xb[8 * k + i];
                } else {
                    xval[8 * k + i] = -xb[8 * k + i];
                    s = static_cast<uint8_t>(s | (1 << i));
                }
            }
            block_signs[k] = s;
        }
        float max = xval[0];
        for (int i = 1; i < 16; ++i) max = max > xval[i] ? max : xval[i];  // ggml's MAX macro
        std::memset(L, 0, sizeof(L));
        if (max < kGroupMaxEpsIq2S) {
            // Nothing is written for this sub-block: its indices and signs stay 0 from the memset.
            scales[ib] = 0;
            continue;
        }

        float best = 0;
        float scale = max / (2 * kMaxQ - 1);
        is_on_grid[0] = is_on_grid[1] = true;
        for (int is = -9; is <= 9; ++is) {
            const float id = (2 * kMaxQ - 1 + static_cast<float>(is) * 0.1f) / max;
            const float this_scale = 1 / id;
            for (int k = 0; k < 2; ++k) {
                const int key = quantize_group(xval + 8 * k, id, Laux + 8 * k);
                is_on_grid_aux[k] = snap_group(lat, key, xval + 8 * k, waux + 8 * k, this_scale, Laux + 8 * k);
            }
            float sumqx, sumq2;
            weighted_sums(weight, xval, Laux, sumqx, sumq2);
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                scale = sumqx / sumq2;
                best = scale * sumqx;
                std::memcpy(L, Laux, sizeof(L));
                is_on_grid[0] = is_on_grid_aux[0];
                is_on_grid[1] = is_on_grid_aux[1];
            }
        }
        if ((!is_on_grid[0] || !is_on_grid[1]) && scale > 0) {
            // Requantize only the groups that had to be moved to a neighbour, now at the final scale.
            const float id = 1 / scale;
            for (int k = 0; k < 2; ++k) {
                if (is_on_grid[k]) continue;
                const int key = quantize_group(xval + 8 * k, id, L + 8 * k);
                snap_group(lat, key, xval + 8 * k, waux + 8 * k, scale, L + 8 * k);
            }
            float sumqx, sumq2;
            weighted_sums(weight, xval, L, sumqx, sumq2);
            if (sumq2 > 0) scale = sumqx / sumq2;
        }
        if (scale < 0) {  // cannot happen with non-negative xval, kept because ggml has it
            scale = -scale;
            block_signs[0] = static_cast<uint8_t>(~block_signs[0]);
            block_signs[1] = static_cast<uint8_t>(~block_signs[1]);
        }
        for (int k = 0; k < 2; ++k) {
            int key = 0;
            for (int i = 0; i < 8; ++i) key |= L[8 * k + i] << (2 * i);
            const int32_t grid_index = lat.map[static_cast<size_t>(key)];
            GEMMA_ASSERT(grid_index >= 0);
            const int i8 = 2 * ib + k;
            y.qs[i8] = static_cast<uint8_t>(grid_index & 255);
            y.qh[i8 / 4] = static_cast<uint8_t>(y.qh[i8 / 4] | ((grid_index >> 8) << (2 * (i8 % 4))));
            y.qs[QK_K / 8 + i8] = block_signs[k];
        }
        scales[ib] = scale;
        max_scale = max_scale > scale ? max_scale : scale;
    }

    if (!max_scale) return;  // d and scales stay 0; the indices and signs written above are kept

    const float d = max_scale / 31;
    y.d = fp32_to_fp16(d * 0.9875f);
    const float id = 1 / d;
    for (int ib = 0; ib < QK_K / 16; ++ib) {
        int l = nearest_int(0.5f * (id * scales[ib] - 1));
        l = std::max(0, std::min(15, l));
        if (ib % 2 == 0) y.scales[ib / 2] = static_cast<uint8_t>(l);
        else y.scales[ib / 2] = static_cast<uint8_t>(y.scales[ib / 2] | (l << 4));
    }
}

}  // namespace

// ggml's quantize_iq2_s: rows are independent; the imatrix (if any) is indexed by column and shared
// by every row. Without an imatrix ggml does not assert but weights by 0.25*sigma2 + x^2.
size_t quantize_iq2_s(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix) {
    GEMMA_ASSERT(n_per_row % QK_K == 0);
    const Iq2Lattice& lat = iq2s_lattice();
    const int64_t nblock = n_per_row / QK_K;
    auto* y = static_cast<block_iq2_s*>(dst);
    for (int64_t row = 0; row < nrows; ++row) {
        for (int64_t ibl = 0; ibl < nblock; ++ibl) {
            const float* qw = imatrix ? imatrix + QK_K * ibl : nullptr;
            quantize_block_iq2_s(lat, src + row * n_per_row + QK_K * ibl, qw, y[row * nblock + ibl]);
        }
    }
    return static_cast<size_t>(nrows * nblock) * sizeof(block_iq2_s);
}

}  // namespace gemma
