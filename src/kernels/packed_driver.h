// The cache-blocked walk over packed groups x tokens, shared by the SIMD packed kernels (avx2/packed_kernels.h,
// avx512/packed_avx512.cpp). Internal linkage: each ISA's TU compiles its own copy with its own flags.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>

#include <immintrin.h>

namespace gemma::kernels::detail {
namespace {

// A kernel K provides Group, Act, kQK (elements per block), kAux (int32 values per token and block),
// kMaxT (tokens per tile), kGroups (groups of 8 rows per tile: 1 or 2), prepare(act, nb, aux) and
//   template <int T> static void tile(int64_t nb, const Group* g, int64_t groups, const Act* const* a,
//                                     const int32_t* const* aux, float* out, int64_t stride, const uint8_t* pf_end);
// for `groups` (1 .. kGroups) consecutive groups starting at g. Where a group lands in a tile never changes its
// arithmetic, so neither the row split nor the token blocking changes a result. A tile whose weights come from
// DRAM (pf_end not null) calls prefetch_streams<Group, kGroups>(g, nb, b, pf_end) at each block b.
template <typename K>
using PackedTileFn = void (*)(int64_t, const typename K::Group*, int64_t, const typename K::Act* const*,
                              const int32_t* const*, float*, int64_t, const uint8_t*);

// How far ahead of each stream (a group's row of blocks) a tile reading from DRAM asks for its weights. Spread over
// the tile's blocks, a few lines per block, the requests overlap the arithmetic; the earlier scheme, the whole next
// tile requested in one burst before each tile ran, stalled on its own prefetches (more so the longer the rows).
// gemma_microbench decode_dram_packed, one thread, Zen 5, medians of 7: Q4_0 19-23 -> 24-29 GB/s at n = 2048,
// 17 -> 30 at n = 16384; Q6_K 15 -> 28 at n = 16384; Q8_0 18 -> 30-35 (4 KiB was at or near the best of 1-32 KiB).
constexpr size_t kPrefetchBytes = 4096;

// At block b of a tile whose kStreams group rows start at g (stream s at g + s * nb): the lines of the block
// kPrefetchBytes ahead in each stream; past the row's end, the same stream of the next tile (the groups right after
// this tile's), never at or past pf_end (the end of the caller's rows: what lies beyond is another thread's).
template <typename Group, int kStreams>
__attribute__((always_inline)) inline void prefetch_streams(const Group* g, int64_t nb, int64_t b, const uint8_t* pf_end) {
    constexpr int64_t kAhead = static_cast<int64_t>(kPrefetchBytes / sizeof(Group)) + 1;
    const int64_t d = b + kAhead;
    const auto* p = reinterpret_cast<const uint8_t*>(g + d + (d >= nb ? (kStreams - 1) * nb : 0));
    const size_t stream_bytes = static_cast<size_t>(nb) * sizeof(Group);
    #pragma GCC unroll 2
    for (int s = 0; s < kStreams; ++s, p += stream_bytes) {
        if (p >= pf_end) return;
        for (size_t o = 0; o < sizeof(Group); o += 64) _mm_prefetch(reinterpret_cast<const char*>(p + o), _MM_HINT_T0);
    }
}

template <typename K, int... Ts>
struct PackedTiles {
    PackedTileFn<K> fn[sizeof...(Ts)] = {&K::template tile<Ts + 1>...};
};

template <typename K, int... Ts>
constexpr PackedTiles<K, Ts...> make_packed_tiles(std::integer_sequence<int, Ts...>) { return {}; }

constexpr int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
constexpr int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// Per-token auxiliary values of one token block (activation sums, scales) live on the stack: kept under this.
constexpr int64_t kAuxSlots = 16384;
// A token block and a row block (per group of a tile) both stay in L2 while their tiles run.
constexpr size_t kActBlockBytes = 128 * 1024;
constexpr size_t kRowBlockBytesPerGroup = 128 * 1024;

template <typename K>
void gemm_packed_tiled(int64_t n, const void* W, size_t wrb, int64_t r0, int64_t r1, const void* act, size_t arb,
                       int64_t n_tok, float* out, int64_t stride) {
    static constexpr auto tiles = make_packed_tiles<K>(std::make_integer_sequence<int, K::kMaxT>{});
    constexpr int64_t T = K::kMaxT, G = K::kGroups;
    using Act = typename K::Act;
    const int64_t nb = n / K::kQK;
    const int64_t aux_per_tok = max64(1, nb * K::kAux);
    const size_t grb = 8 * wrb;  // bytes per group of 8 rows
    const auto* wb = static_cast<const uint8_t*>(W);
    const auto* ab = static_cast<const uint8_t*>(act);
    const int64_t block_groups = max64(G, static_cast<int64_t>(G * kRowBlockBytesPerGroup / grb) / G * G);
    int64_t block_toks = max64(T, static_cast<int64_t>(kActBlockBytes / arb) / T * T);
    block_toks = max64(1, min64(block_toks, kAuxSlots / aux_per_tok / T * T));
    int32_t aux[kAuxSlots];
    const int64_t g_begin = r0 / 8, g_end = r1 / 8;
    for (int64_t tb0 = 0; tb0 < n_tok; tb0 += block_toks) {
        const int64_t tb1 = min64(n_tok, tb0 + block_toks);
        for (int64_t t = tb0; t < tb1; ++t)
            K::prepare(reinterpret_cast<const Act*>(ab + static_cast<size_t>(t) * arb), nb, aux + (t - tb0) * aux_per_tok);
        for (int64_t gb0 = g_begin; gb0 < g_end; gb0 += block_groups) {
            const int64_t gb1 = min64(g_end, gb0 + block_groups);
            for (int64_t t0 = tb0; t0 < tb1; t0 += T) {
                const int64_t nt = min64(T, tb1 - t0);
                const Act* at[T];
                const int32_t* st[T];
                for (int64_t t = 0; t < nt; ++t) {
                    at[t] = reinterpret_cast<const Act*>(ab + static_cast<size_t>(t0 + t) * arb);
                    st[t] = aux + (t0 + t - tb0) * aux_per_tok;
                }
                // The first token tile over a row block streams its weights from DRAM (all of decode): its tiles
                // prefetch as they go; the first one's head, before any tile could ask for it, is requested here.
                const uint8_t* pf_end = t0 == tb0 ? wb + static_cast<size_t>(g_end) * grb : nullptr;
                if (pf_end && gb0 == g_begin)
                    for (int64_t s = 0; s < min64(G, gb1 - gb0); ++s)
                        for (size_t o = 0; o < (kPrefetchBytes < grb ? kPrefetchBytes : grb); o += 64)
                            _mm_prefetch(reinterpret_cast<const char*>(wb + static_cast<size_t>(gb0 + s) * grb + o), _MM_HINT_T0);
                for (int64_t g = gb0; g < gb1; g += G)
                    tiles.fn[nt - 1](nb, reinterpret_cast<const typename K::Group*>(wb + static_cast<size_t>(g) * grb),
                                     min64(G, gb1 - g), at, st, out + t0 * stride + g * 8, stride, pf_end);
            }
        }
    }
}

}  // namespace
}  // namespace gemma::kernels::detail
