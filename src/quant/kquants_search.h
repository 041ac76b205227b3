// The scale/min search routines shared by the legacy-imatrix and k-quant quantizers (ggml's make_*_quants).
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/error.h"

namespace gemma {

// ggml's GROUP_MAX_EPS: below this a group counts as all zero.
inline constexpr float kGroupMaxEps = 1e-15f;

// Symmetric search; L gets values biased by nmax (0..2*nmax-1). qw may be null (weights by rmse_type).
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, int rmse_type, const float* qw);
// Q3_K reference search (weights x^2); L biased by nmax.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L, bool do_rmse);
// Asymmetric (scale, min) search; *the_min receives -min (>= 0). Laux is scratch of n bytes.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad);
// As make_qkx2_quants, but null weights mean x^2 and a degenerate range is max <= min.
float make_qkx3_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad);
// Eight independent searches over consecutive groups of n <= 32 values: group g is x[g*n..], weights[g*n..],
// L[g*n..]; scales[g] and the_mins[g] get its results. Same bytes as eight make_qkx2/3_quants calls; one group
// per SIMD lane where the CPU has AVX2.
void make_qkx2_quants_x8(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* scales,
                         float* the_mins, float rmin, float rdelta, int nstep, bool use_mad);
void make_qkx3_quants_x8(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* scales,
                         float* the_mins, float rmin, float rdelta, int nstep, bool use_mad);
// Quantizes non-negative values (sub-block scales or mins) to 0..nmax with weights.
float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* quant_weights);

namespace detail {
// The eight-lane search (quant/avx2/qkx_avx2.cpp); call only where the CPU has AVX2.
void qkx_search_x8_avx2(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* scales,
                        float* the_mins, float rmin, float rdelta, int nstep, bool use_mad, bool degenerate_le);
// The plain path of the x8 searches (eight scalar searches; qkx3's degenerate test when degenerate_le), for tests.
void qkx_search_x8_scalar(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* scales,
                          float* the_mins, float rmin, float rdelta, int nstep, bool use_mad, bool degenerate_le);
}  // namespace detail

// Applies block_fn(x, y) to every super-block of every row; block_fn sees the row start too so the
// imatrix paths can find their weights (imatrix[column]). Returns bytes written.
template <typename Block, int kBlockElems, typename BlockFn>
size_t quantize_superblock_rows(const float* src, void* dst, int64_t nrows, int64_t n_per_row, BlockFn block_fn) {
    GEMMA_ASSERT(n_per_row % kBlockElems == 0);
    const int64_t nb = n_per_row / kBlockElems;
    auto* out = static_cast<Block*>(dst);
    for (int64_t r = 0; r < nrows; ++r)
        for (int64_t i = 0; i < nb; ++i) block_fn(src + r * n_per_row + i * kBlockElems, out + r * nb + i, i * kBlockElems);
    return static_cast<size_t>(nrows * nb) * sizeof(Block);
}

}  // namespace gemma
