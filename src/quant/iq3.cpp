// IQ3_XXS / IQ3_S: dequantizers and the quantizers llama-quantize runs (ggml's quantize_row_iq3_{xxs,s}_impl).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/iq_tables.h"
#include "quant/rounding.h"

namespace gemma {
namespace {

constexpr int kMaxQ = 8;  // levels 0..7, coordinates 2l+1
constexpr int kMaxNeighbours = 1024;  // the longest list in either grid is far shorter (asserted per search)

// The two variants differ only in these knobs (ggml shares one search for both grids).
struct Iq3Variant {
    int grid_size;
    bool even_signs;       // XXS stores 7 sign bits: force an even count of negatives per 8
    int is_range;          // scale trials is = -is_range..is_range
    bool start_on_grid;    // initial is_on_grid flags before the scale search
    bool requant_all;      // second pass over all groups (S) or only the off-grid ones (XXS)
};
constexpr Iq3Variant kXxs{256, true, 15, true, false};
constexpr Iq3Variant kS{512, false, 9, false, true};

// Among the listed neighbours, the first strict minimum of sum w_i*(scale*p_i - x_i)^2; writes its levels.
// GCC's -O2 leaves the distance loop scalar; vectorized lanes do the same operations in the same order, so
// the bytes stay. (Clang vectorizes at -O2 already and does not know the attribute.)
#if defined(__GNUC__) && !defined(__clang__)
#define GEMMA_VECTORIZE [[gnu::optimize("tree-vectorize")]]
#else
#define GEMMA_VECTORIZE
#endif

GEMMA_VECTORIZE int find_best_neighbour(const Iq3SearchGrid& g, uint32_t key, const float* xval, const float* waux, float scale,
                        int8_t* L) {
    // Two passes: every distance first (independent lanes, each summed in ggml's order, so the compiler can
    // vectorize across neighbours without changing a bit), then the first minimum in list order.
    const size_t b = g.nb_begin[key];
    const int n = static_cast<int>(g.nb_begin[key + 1] - b);
    GEMMA_ASSERT(n > 0 && n <= kMaxNeighbours);
    const float* c0 = g.nb_coord[0].data() + b;
    const float* c1 = g.nb_coord[1].data() + b;
    const float* c2 = g.nb_coord[2].data() + b;
    const float* c3 = g.nb_coord[3].data() + b;
    float d2[kMaxNeighbours];
    const float x0 = xval[0], x1 = xval[1], x2 = xval[2], x3 = xval[3];
    const float w0 = waux[0], w1 = waux[1], w2 = waux[2], w3 = waux[3];

    for (int j = 0; j < n; ++j) {
        const float e0 = scale * c0[j] - x0;
        const float e1 = scale * c1[j] - x1;
        const float e2 = scale * c2[j] - x2;
        const float e3 = scale * c3[j] - x3;
        float s = 0;
        s += w0 * e0 * e0;
        s += w1 * e1 * e1;
        s += w2 * e2 * e2;
        s += w3 * e3 * e3;
        d2[j] = s;
    }
    float best_d2 = FLT_MAX;
    int best = -1;
    for (int j = 0; j < n; ++j)
        if (d2[j] < best_d2) { best_d2 = d2[j]; best = j; }
    GEMMA_ASSERT(best >= 0);
    const uint32_t p = g.points[g.neighbours[b + static_cast<size_t>(best)]];
    for (int i = 0; i < 4; ++i) L[i] = static_cast<int8_t>((((p >> (8 * i)) & 0xFF) - 1) / 2);
    return g.neighbours[b + static_cast<size_t>(best)];
}

uint32_t group_key(const int8_t* L) {
    uint32_t u = 0;
    for (int i = 0; i < 4; ++i) u |= static_cast<uint32_t>(L[i]) << (3 * i);
    return u;
}

// Levels of one group of 4 at inverse scale id, before any grid snapping.
uint32_t levels_key(const float* xval, float id, int8_t* L) {
    for (int i = 0; i < 4; ++i) {
        const int l = nearest_int(0.5f * (id * xval[i] - 1));
        L[i] = static_cast<int8_t>(std::max(0, std::min(kMaxQ - 1, l)));
    }
    return group_key(L);
}

void weighted_sums(const float* weight, const float* xval, const int8_t* L, float& sumqx, float& sumq2) {
    sumqx = 0;
    sumq2 = 0;
    for (int i = 0; i < 32; ++i) {
        const float w = weight[i];
        const float q = static_cast<float>(2 * L[i] + 1);
        sumqx += w * xval[i] * q;
        sumq2 += w * q * q;
    }
}

// Result of quantizing one 32-element sub-block: levels on the grid, per-8 sign bytes, the scale.
struct SubBlock {
    bool skipped = false;  // all (near-)zero: nothing is stored for it
    float scale = 0;
    uint16_t grid_index[8] = {};
    uint8_t signs[4] = {};
};

SubBlock quantize_sub_block(const Iq3Variant& v, const Iq3SearchGrid& g, const float* xb, const float* weight) {
    SubBlock out;
    float xval[32], waux[32];
    int8_t L[32], Laux[32];
    bool on_grid[8], on_grid_aux[8];
    for (int i = 0; i < 32; ++i) waux[i] = std::sqrt(weight[i]);
    for (int k = 0; k < 4; ++k) {
        int nflip = 0;
        uint8_t s = 0;
        for (int i = 0; i < 8; ++i) {
            if (xb[8 * k + i] >= 0) {
                xval[8 * k + i] = xb[8 * k + i];
            } else {
                xval[8 * k + i] = -xb[8 * k + i];
                ++nflip;
                s = static_cast<uint8_t>(s | (1 << i));
            }
        }
        if (v.even_signs && nflip % 2) {
            // The implied 8th sign cannot express an odd count: flip the least important element instead,
            // which leaves a negative xval for the search to cope with.
            int imin = 0;
            float min = weight[8 * k] * xb[8 * k] * xb[8 * k];
            for (int i = 1; i < 8; ++i) {
                const float ax = weight[8 * k + i] * xb[8 * k + i] * xb[8 * k + i];
                if (ax < min) { min = ax; imin = i; }
            }
            xval[8 * k + imin] = -xval[8 * k + imin];
            s = static_cast<uint8_t>(s ^ (1 << imin));
        }
        out.signs[k] = v.even_signs ? static_cast<uint8_t>(s & 127) : s;
    }
    float max = xval[0];
    for (int i = 1; i < 32; ++i) max = max > xval[i] ? max : xval[i];
    const bool negligible = v.even_signs ? max < 1e-8f : !max;
    if (negligible) {
        out.skipped = true;
        return out;
    }
    std::memset(L, 0, sizeof(L));
    float best = 0;
    float scale = max / (2 * kMaxQ - 1);
    std::fill(on_grid, on_grid + 8, v.start_on_grid);
    for (int is = -v.is_range; is <= v.is_range; ++is) {
        const float id = (2 * kMaxQ - 1 + is * 0.2f) / max;
        const float this_scale = 1 / id;
        for (int k = 0; k < 8; ++k) {
            const uint32_t u = levels_key(xval + 4 * k, id, Laux + 4 * k);
            on_grid_aux[k] = g.map[u] >= 0;
            if (!on_grid_aux[k]) find_best_neighbour(g, u, xval + 4 * k, waux + 4 * k, this_scale, Laux + 4 * k);
        }
        float sumqx, sumq2;
        weighted_sums(weight, xval, Laux, sumqx, sumq2);
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            scale = sumqx / sumq2;
            best = scale * sumqx;
            std::copy(Laux, Laux + 32, L);
            std::copy(on_grid_aux, on_grid_aux + 8, on_grid);
        }
    }
    const bool any_off = std::find(on_grid, on_grid + 8, false) != on_grid + 8;
    if (any_off && scale > 0) {
        const float id = 1 / scale;
        for (int k = 0; k < 8; ++k) {
            if (!v.requant_all && on_grid[k]) continue;
            int8_t Lk[4];
            const uint32_t u = levels_key(xval + 4 * k, id, Lk);
            if (g.map[u] >= 0) std::copy(Lk, Lk + 4, L + 4 * k);
            else find_best_neighbour(g, u, xval + 4 * k, waux + 4 * k, scale, L + 4 * k);
        }
        float sumqx, sumq2;
        weighted_sums(weight, xval, L, sumqx, sumq2);
        if (sumq2 > 0) scale = sumqx / sumq2;
    }
    if (scale < 0) {
        // Scales are stored unsigned: move the sign into the sign bits.
        scale = -scale;
        for (int k = 0; k < 4; ++k) out.signs[k] = v.even_signs ? static_cast<uint8_t>(~out.signs[k] & 127)
                                                                : static_cast<uint8_t>(~out.signs[k]);
    }
    for (int k = 0; k < 8; ++k) {
        const int idx = g.map[group_key(L + 4 * k)];
        GEMMA_ASSERT(idx >= 0);
        out.grid_index[k] = static_cast<uint16_t>(idx);
    }
    out.scale = scale;
    return out;
}

// Per 32-sub-block weights: x^2 without an imatrix, else qw*sqrt(sigma2 + x^2) with sigma2 over the super-block.
void sub_block_weights(const float* xbl, const float* qw_bl, int ib, float sigma2, float* weight) {
    const float* xb = xbl + 32 * ib;
    if (qw_bl) {
        for (int i = 0; i < 32; ++i) weight[i] = qw_bl[32 * ib + i] * std::sqrt(sigma2 + xb[i] * xb[i]);
    } else {
        for (int i = 0; i < 32; ++i) weight[i] = xb[i] * xb[i];
    }
}

float super_block_sigma2(const float* xbl) {
    float sumx2 = 0;
    for (int i = 0; i < QK_K; ++i) sumx2 += xbl[i] * xbl[i];
    return 2 * sumx2 / QK_K;
}

int sub_scale(float id, float scale) {
    return std::max(0, std::min(15, nearest_int(0.5f * (id * scale - 1))));
}

void quantize_block_iq3_xxs(const Iq3SearchGrid& g, const float* xbl, const float* qw_bl, block_iq3_xxs* y) {
    std::memset(y, 0, sizeof(*y));
    uint32_t aux[8] = {};
    float scales[8];
    float weight[32];
    float max_scale = 0;
    const float sigma2 = super_block_sigma2(xbl);
    for (int ib = 0; ib < 8; ++ib) {
        sub_block_weights(xbl, qw_bl, ib, sigma2, weight);
        const SubBlock sb = quantize_sub_block(kXxs, g, xbl + 32 * ib, weight);
        scales[ib] = sb.scale;
        if (sb.skipped) continue;
        for (int k = 0; k < 8; ++k) y->qs[8 * ib + k] = static_cast<uint8_t>(sb.grid_index[k]);
        aux[ib] = sb.signs[0] | (sb.signs[1] << 7) | (sb.signs[2] << 14) | (static_cast<uint32_t>(sb.signs[3]) << 21);
        max_scale = max_scale > sb.scale ? max_scale : sb.scale;  // ggml's MAX, also for -0.0f
    }
    if (!max_scale) {
        std::memset(y, 0, sizeof(*y));
        return;
    }
    const float d = max_scale / 31;
    y->d = fp32_to_fp16(d * 1.0125f);
    const float id = 1 / d;  // unfudged
    for (int ib = 0; ib < 8; ++ib) aux[ib] |= static_cast<uint32_t>(sub_scale(id, scales[ib])) << 28;
    std::memcpy(y->qs + QK_K / 4, aux, sizeof(aux));
}

void quantize_block_iq3_s(const Iq3SearchGrid& g, const float* xbl, const float* qw_bl, block_iq3_s* y) {
    std::memset(y, 0, sizeof(*y));
    float scales[8];
    float weight[32];
    float max_scale = 0;
    const float sigma2 = super_block_sigma2(xbl);
    // ggml advances its qs/signs write cursors only for stored sub-blocks, so an all-zero sub-block
    // shifts every later one down a slot (qh is indexed correctly). Byte-compatibility needs the same.
    int slot = 0;
    for (int ib = 0; ib < 8; ++ib) {
        sub_block_weights(xbl, qw_bl, ib, sigma2, weight);
        const SubBlock sb = quantize_sub_block(kS, g, xbl + 32 * ib, weight);
        scales[ib] = sb.scale;
        if (sb.skipped) continue;
        for (int k = 0; k < 8; ++k) {
            y->qs[8 * slot + k] = static_cast<uint8_t>(sb.grid_index[k] & 255);
            y->qh[ib] = static_cast<uint8_t>(y->qh[ib] | ((sb.grid_index[k] >> 8) << k));
        }
        for (int k = 0; k < 4; ++k) y->signs[4 * slot + k] = sb.signs[k];
        ++slot;
        max_scale = max_scale > sb.scale ? max_scale : sb.scale;  // ggml's MAX, also for -0.0f
    }
    // Unlike XXS, the grid bytes written above survive an all-zero scale (only d and scales stay 0).
    if (!max_scale) return;
    const float d = max_scale / 31;
    y->d = fp32_to_fp16(d * 1.033f);
    const float id = 1 / d;
    for (int ib = 0; ib < 8; ib += 2)
        y->scales[ib / 2] = static_cast<uint8_t>(sub_scale(id, scales[ib]) | (sub_scale(id, scales[ib + 1]) << 4));
}

}  // namespace

void dequantize_row_iq3_xxs(const void* src, float* dst, int64_t n) {
    GEMMA_ASSERT(n % QK_K == 0);
    const auto* x = static_cast<const block_iq3_xxs*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        const uint8_t* qs = x[i].qs;
        for (int ib = 0; ib < 8; ++ib) {
            uint32_t aux;
            std::memcpy(&aux, x[i].qs + QK_K / 4 + 4 * ib, 4);
            const float db = d * (0.5f + (aux >> 28)) * 0.5f;
            for (int l = 0; l < 4; ++l) {
                const uint8_t signs = ksigns_iq2xs[(aux >> (7 * l)) & 127];
                const uint32_t g1 = iq3xxs_grid[qs[2 * l]], g2 = iq3xxs_grid[qs[2 * l + 1]];
                for (int j = 0; j < 4; ++j) {
                    dst[j] = db * static_cast<float>((g1 >> (8 * j)) & 0xFF) * (signs & kmask_iq2xs[j] ? -1.f : 1.f);
                    dst[j + 4] = db * static_cast<float>((g2 >> (8 * j)) & 0xFF) * (signs & kmask_iq2xs[j + 4] ? -1.f : 1.f);
                }
                dst += 8;
            }
            qs += 8;
        }
    }
}

void dequantize_row_iq3_s(const void* src, float* dst, int64_t n) {
    GEMMA_ASSERT(n % QK_K == 0);
    const auto* x = static_cast<const block_iq3_s*>(src);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float d = fp16_to_fp32(x[i].d);
        for (int ib = 0; ib < 8; ++ib) {
            const int ls = (x[i].scales[ib / 2] >> (4 * (ib % 2))) & 0xF;
            const float db = d * (1 + 2 * ls);
            const uint8_t* qs = x[i].qs + 8 * ib;
            const uint8_t* signs = x[i].signs + 4 * ib;
            for (int k = 0; k < 8; ++k) {
                const uint32_t g = iq3s_grid[qs[k] | (((x[i].qh[ib] >> k) & 1) << 8)];
                const uint8_t sg = signs[k / 2];
                for (int j = 0; j < 4; ++j) {
                    const int bit = 4 * (k % 2) + j;
                    dst[4 * k + j] = db * static_cast<float>((g >> (8 * j)) & 0xFF) * (sg & kmask_iq2xs[bit] ? -1.f : 1.f);
                }
            }
            dst += 32;
        }
    }
}

size_t quantize_iq3_xxs(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix) {
    GEMMA_ASSERT(n_per_row % QK_K == 0);
    const Iq3SearchGrid& g = iq3_search_grid(256);
    const int64_t nb = n_per_row / QK_K;
    auto* y = static_cast<block_iq3_xxs*>(dst);
    for (int64_t r = 0; r < nrows; ++r)
        for (int64_t b = 0; b < nb; ++b)
            quantize_block_iq3_xxs(g, src + r * n_per_row + b * QK_K, imatrix ? imatrix + b * QK_K : nullptr,
                                   &y[r * nb + b]);
    return static_cast<size_t>(nrows * nb) * sizeof(block_iq3_xxs);
}

size_t quantize_iq3_s(const float* src, void* dst, int64_t nrows, int64_t n_per_row, const float* imatrix) {
    GEMMA_ASSERT(n_per_row % QK_K == 0);
    const Iq3SearchGrid& g = iq3_search_grid(512);
    const int64_t nb = n_per_row / QK_K;
    auto* y = static_cast<block_iq3_s*>(dst);
    for (int64_t r = 0; r < nrows; ++r)
        for (int64_t b = 0; b < nb; ++b)
            quantize_block_iq3_s(g, src + r * n_per_row + b * QK_K, imatrix ? imatrix + b * QK_K : nullptr,
                                 &y[r * nb + b]);
    return static_cast<size_t>(nrows * nb) * sizeof(block_iq3_s);
}

}  // namespace gemma
