// The AVX2 gemm driver: walks [r0,r1) x tokens in R x T micro-tiles of a kernel's compile-time tile template.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>

#include <immintrin.h>

#include "kernels/kernels_internal.h"

namespace gemma::kernels::avx2 {
namespace {

// Local min/max rather than std:: templates, whose out-of-line copies could be shared with non-AVX2 code.
constexpr int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
constexpr int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// A kernel K provides kMaxR, kMaxT and
//   template <int R, int T> static void tile(int64_t n, const uint8_t* w, size_t wrb, const uint8_t* a,
//                                            size_t arb, float* out, int64_t stride, const uint8_t* pf_end);
// computing out[t*stride + r] for an R x T tile. Each (row, token) result must come from the same
// arithmetic whatever R and T are (one accumulator per pair, same block order, same final reduction):
// that is what makes gemm equal to vec_dot and independent of how rows are split between threads.
// pf_end is not null when the tile's rows come from DRAM: the kernel then calls prefetch_rows (or
// prefetch_block_rows) as it passes its rows, and never asks for anything at or past pf_end.
using TileFn = void (*)(int64_t, const uint8_t*, size_t, const uint8_t*, size_t, float*, int64_t, const uint8_t*);

template <typename K, int R, int T>
void tile_entry(int64_t n, const uint8_t* w, size_t wrb, const uint8_t* a, size_t arb, float* out, int64_t stride,
                const uint8_t* pf_end) {
    K::template tile<R, T>(n, w, wrb, a, arb, out, stride, pf_end);
}

// How far ahead of a tile's rows a kernel reading them from DRAM asks for weights, in all: each of R rows gets
// 1/R of it, spread over the row a line at a time, so the requests overlap the arithmetic (see
// kernels/packed_driver.h: a burst per tile stalled on itself). 2 KiB per row of the 4-row float tiles was the best
// of 1, 2 and 4; one-row tiles (super-blocks, IQ3) want the whole 8 KiB ahead of their single stream.
constexpr size_t kTilePrefetchBytes = 8192;

// For a tile of R rows at w (row r at w + r * wrb, row_len bytes each) that has read up to byte `off` of every row:
// the line kTilePrefetchBytes / R further on in each row, past a row's end the same row of the next tile, never at or
// past pf_end.
template <int R>
__attribute__((always_inline)) inline void prefetch_rows(const uint8_t* w, size_t wrb, size_t row_len, size_t off,
                                                         const uint8_t* pf_end) {
    size_t at = off + kTilePrefetchBytes / R;
    if (at >= row_len) at += static_cast<size_t>(R) * wrb - row_len;
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        const uint8_t* p = w + static_cast<size_t>(r) * wrb + at;
        if (p >= pf_end) return;
        _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
    }
}

template <typename K, int R, int... Ts>
constexpr void fill_tile_row(TileFn* row, std::integer_sequence<int, Ts...>) {
    ((row[Ts] = &tile_entry<K, R, Ts + 1>), ...);
}

template <typename K, int... Rs>
constexpr void fill_tiles(TileFn (*tab)[K::kMaxT], std::integer_sequence<int, Rs...>) {
    (fill_tile_row<K, Rs + 1>(tab[Rs], std::make_integer_sequence<int, K::kMaxT>{}), ...);
}

template <typename K>
struct TileTable {
    TileFn fn[K::kMaxR][K::kMaxT] = {};
    constexpr TileTable() { fill_tiles<K>(fn, std::make_integer_sequence<int, K::kMaxR>{}); }
};

// Cache blocking for prompt processing: a block of converted activations (token rows) and a block of weight
// rows both stay in L2 (512 KiB per core here) while every micro-tile of the pair runs; for a single token
// this is just a pass over the rows. The blocking only reorders tiles, never the arithmetic of a pair.
constexpr size_t kActBlockBytes = 128 * 1024;
constexpr size_t kRowBlockBytes = 128 * 1024;

// For kernels that walk their rows in blocks (or SIMD steps) of kBlock bytes: called at block b, prefetch_rows once
// per 64 bytes of progress (a block shorter than a line calls it where it crosses into the next line).
template <int R, size_t kBlock>
__attribute__((always_inline)) inline void prefetch_block_rows(const uint8_t* w, size_t wrb, size_t row_len, int64_t b,
                                                               const uint8_t* pf_end) {
    const size_t off = static_cast<size_t>(b) * kBlock;
    if constexpr (kBlock < 64) {
        const size_t line = (off + kBlock) / 64 * 64;
        if (line > off) prefetch_rows<R>(w, wrb, row_len, line, pf_end);
    } else {
        for (size_t o = 0; o < kBlock; o += 64) prefetch_rows<R>(w, wrb, row_len, off + o, pf_end);
    }
}

template <typename K>
void gemm_tiled(int64_t n, const void* W, size_t wrb, int64_t r0, int64_t r1, const void* act, size_t arb,
                int64_t n_tok, float* out, int64_t stride) {
    static constexpr TileTable<K> table{};
    constexpr int64_t R = K::kMaxR, T = K::kMaxT;
    const auto* wb = static_cast<const uint8_t*>(W);
    const auto* ab = static_cast<const uint8_t*>(act);
    const int64_t block_rows = max64(R, static_cast<int64_t>(kRowBlockBytes / (wrb > 0 ? wrb : 1)) / R * R);
    const int64_t block_toks = max64(T, static_cast<int64_t>(kActBlockBytes / (arb > 0 ? arb : 1)) / T * T);
    for (int64_t tb0 = 0; tb0 < n_tok; tb0 += block_toks) {
        const int64_t tb1 = min64(n_tok, tb0 + block_toks);
        for (int64_t rb0 = r0; rb0 < r1; rb0 += block_rows) {
            const int64_t rb1 = min64(r1, rb0 + block_rows);
            for (int64_t t0 = tb0; t0 < tb1; t0 += T) {
                const int64_t nt = min64(T, tb1 - t0);
                for (int64_t r = rb0; r < rb1; r += R) {
                    const int64_t nr = min64(R, rb1 - r);
                    // The first token group over a row block streams its weights from DRAM (all of decode): the
                    // tiles prefetch as they go, and the head of the first one is asked for here.
                    const uint8_t* pf_end = t0 == tb0 ? wb + static_cast<size_t>(r1) * wrb : nullptr;
                    if (pf_end && r == r0)
                        for (int64_t q = 0; q < nr; ++q)
                            for (size_t o = 0; o < kTilePrefetchBytes / static_cast<size_t>(R) && o < wrb; o += 64)
                                _mm_prefetch(reinterpret_cast<const char*>(wb + static_cast<size_t>(r + q) * wrb + o), _MM_HINT_T0);
                    table.fn[nr - 1][nt - 1](n, wb + static_cast<size_t>(r) * wrb, wrb,
                                             ab + static_cast<size_t>(t0) * arb, arb, out + t0 * stride + r, stride,
                                             pf_end);
                }
            }
        }
    }
}

template <typename K>
void vec_dot_tiled(int64_t n, float* s, const void* w, const void* a) {
    K::template tile<1, 1>(n, static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(a), 0, s, 0, nullptr);
}

// Registers kernel K for weight type `id`: vec_dot is its 1x1 tile, gemm the tiled walk.
template <typename K>
void install_tiled(detail::KernelTable& t, TypeId id) {
    t.vec_dot[detail::idx(id)] = vec_dot_tiled<K>;
    t.gemm[detail::idx(id)] = gemm_tiled<K>;
}

}  // namespace
}  // namespace gemma::kernels::avx2
