// AMX-INT8 gemm over row-interleaved groups (kernels/packed.h) for prompts: tdpbssd gives each block's exact integer
// dots for 16 tokens x 16 rows (one op per 32-element block; the super-block types, their quants pre-multiplied by
// the integer sub-block scales, 64 elements per op), then AVX-512 applies AVX-512's own float steps per block
// (packed_avx512.cpp), so every result is Ref's bits and a token's logits never depend on its batch.
#include "kernels/avx512/packed_common.h"  // first: it includes <immintrin.h>

#include <cstddef>
#include <type_traits>
#include <vector>

#include "quant/iq_tables.h"

namespace gemma::kernels::detail {
namespace {

using namespace avx512;

// The avx512 table's packed kernels, which run what AMX does not: calls of fewer than a tile of tokens and the
// tokens left over after the last whole tile (same bits either way).
GemmFn g_fallback[kTypeIdCount] = {};

constexpr int64_t kTileTokens = 16;

// GCC's _tile_loadd and _tile_loadconfig tell the compiler nothing about the memory they read, so it could sink the
// stores that fill a weight tile (or the configuration) below them: every such load follows this barrier.
inline void memory_barrier() { __asm__ volatile("" ::: "memory"); }

// Palette 1, two shapes. Both: tmm0..tmm3 C, 16 tokens x 16 rows of int32; tmm4/tmm5 A, tmm6/tmm7 B. kCfg32 (one
// 32-element block per op): A 16 tokens x 32 activation bytes, B 8 x 64 bytes (the block's 32 quants of 16 rows, 4
// consecutive elements per row side by side). kCfg64 (the super-block types, 64 elements per op): all 16 x 64
// bytes. Several C tiles so later blocks' products run while an earlier result is stored and combined.
struct alignas(64) TileConfig {
    uint8_t palette = 1;
    uint8_t start_row = 0;
    uint8_t reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
};
constexpr int kCfg32 = 0, kCfg64 = 1;
constexpr TileConfig kConfigs[2] = {
    {1, 0, {}, {64, 64, 64, 64, 32, 32, 64, 64}, {16, 16, 16, 16, 16, 16, 8, 8}},
    {1, 0, {}, {64, 64, 64, 64, 64, 64, 64, 64}, {16, 16, 16, 16, 16, 16, 16, 16}},
};

// The tile registers' shapes are per thread state: each thread loads the shape its kernel needs before its first
// tile op, and again only when a kernel of the other shape runs.
inline void ensure_tile_config(int which) {
    thread_local int current = -1;
    if (current == which) return;
    memory_barrier();
    _tile_loadconfig(&kConfigs[which]);
    current = which;
}

// The weights of one block of a group pair, unpacked for tile B as signed bytes (offsets removed: the value the
// reference multiplies), with the rows' fp16 scales as floats.
struct alignas(64) Unpacked32 {
    int8_t q[8 * 64];
    float d[16];
    float m[16];  // the min types only
};

// Q4_0 / Q4_1 / Q5_0 / Q5_1 / IQ4_NL: nibbles (the fifth bit ORed in from packed.h's rearranged high-bit word),
// minus kOffset or through the code book; Q8_0 (kWords 8): the quants as they are.
template <typename G, typename A, int kOffset, bool kTable = false>
struct Unpack32 {
    using Group = G;
    using Act = A;
    static constexpr bool kMin = requires(const G& g) { g.m; };
    static void unpack(const G& g0, const G& g1, Unpacked32& u) {
        if constexpr (std::is_same_v<G, block_q8_0x8>) {  // 8 words, signed already
            for (int k = 0; k < 8; ++k) _mm512_store_si512(u.q + 64 * k, load2(g0.qs + 32 * k, g1.qs + 32 * k));
        } else {
            const __m512i m4 = _mm512_set1_epi8(0x0F), b4 = _mm512_set1_epi8(0x10), off = _mm512_set1_epi8(kOffset);
            __m512i hbits = _mm512_setzero_si512();
            if constexpr (requires { g0.qh; }) hbits = load2(g0.qh, g1.qh);
            for (int k = 0; k < 4; ++k) {
                const __m512i raw = load2(g0.qs + 32 * k, g1.qs + 32 * k);
                __m512i lo = _mm512_and_si512(raw, m4), hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
                if constexpr (requires { g0.qh; }) {
                    lo = or_and(lo, _mm512_srli_epi32(hbits, k), b4);
                    hi = or_and(hi, _mm512_slli_epi32(hbits, 4 - k), b4);
                }
                if constexpr (kTable) {
                    const __m512i table = _mm512_broadcast_i32x4(loadu128(kvalues_iq4nl));
                    lo = _mm512_shuffle_epi8(table, lo);
                    hi = _mm512_shuffle_epi8(table, hi);
                }
                _mm512_store_si512(u.q + 64 * k, _mm512_sub_epi8(lo, off));
                _mm512_store_si512(u.q + 64 * (4 + k), _mm512_sub_epi8(hi, off));
            }
        }
        _mm512_store_ps(u.d, fp16x16(g0.d, g1.d));
        if constexpr (kMin) _mm512_store_ps(u.m, fp16x16(g0.m, g1.m));
    }
};

// Per token and block: d_a (and s_a for the min types) as floats.
struct Aux32 {
    float d;
    float s;
};

// One 32-element block's products into C tile TC through tiles TA, TB (tile numbers are spliced into the
// instructions' text, so they must be literals: hence a macro).
#define GEMMA_AMX_BLOCK(TC, TA, TB, blk)                              \
    do {                                                              \
        _tile_zero(TC);                                               \
        _tile_loadd(TA, a + (blk) * sizeof(Act) + qs_at, arb);        \
        _tile_loadd(TB, u[blk].q, 64);                                \
        _tile_dpbssd(TC, TA, TB);                                     \
    } while (0)

template <typename U>
struct Amx32 {
    using Group = typename U::Group;
    using Act = typename U::Act;
    using Unpacked = Unpacked32;
    using Aux = Aux32;
    static constexpr int64_t kQK = 32;
    static constexpr int kConfig = kCfg32;
    static void unpack(const Group& g0, const Group& g1, Unpacked& u) { U::unpack(g0, g1, u); }
    static void prepare(const Act* a, int64_t nb, Aux* aux) {
        for (int64_t b = 0; b < nb; ++b) {
            aux[b].d = _cvtsh_ss(a[b].d);
            if constexpr (U::kMin) aux[b].s = _cvtsh_ss(a[b].s);
        }
    }

    // acc += the block's float step (packed_avx512.cpp's Packed32 order) for 16 tokens, from the stored C tile.
    GEMMA_ALWAYS_INLINE static void combine(const Unpacked& u, const int32_t (&c)[16][16], const Aux* aux, int64_t nb,
                                            int64_t b, __m512 (&acc)[16]) {
        const __m512 dw = _mm512_load_ps(u.d);
        #pragma GCC unroll 16
        for (int t = 0; t < 16; ++t)
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[t])),
                                     _mm512_mul_ps(dw, _mm512_set1_ps(aux[t * nb + b].d)), acc[t]);
        if constexpr (U::kMin) {
            const __m512 mw = _mm512_load_ps(u.m);
            #pragma GCC unroll 16
            for (int t = 0; t < 16; ++t) acc[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(aux[t * nb + b].s), acc[t]);
        }
    }

    // 16 tokens (a: the first one's row, rows arb apart) x the 16 rows of u, over every block.
    static void tile(int64_t nb, const Unpacked* u, const uint8_t* a, size_t arb, const Aux* aux, float* out,
                     int64_t stride, __mmask16 store) {
        constexpr size_t qs_at = offsetof(Act, qs);
        alignas(64) int32_t c[4][16][16];
        __m512 acc[16];
        #pragma GCC unroll 16
        for (int t = 0; t < 16; ++t) acc[t] = _mm512_setzero_ps();
        // Blocks in fours through four C tiles: the later blocks' products queue while the first result is read.
        int64_t b = 0;
        for (; b + 4 <= nb; b += 4) {
            GEMMA_AMX_BLOCK(0, 4, 6, b);
            GEMMA_AMX_BLOCK(1, 5, 7, b + 1);
            GEMMA_AMX_BLOCK(2, 4, 6, b + 2);
            GEMMA_AMX_BLOCK(3, 5, 7, b + 3);
            _tile_stored(0, c[0], 64);
            combine(u[b], c[0], aux, nb, b, acc);
            _tile_stored(1, c[1], 64);
            combine(u[b + 1], c[1], aux, nb, b + 1, acc);
            _tile_stored(2, c[2], 64);
            combine(u[b + 2], c[2], aux, nb, b + 2, acc);
            _tile_stored(3, c[3], 64);
            combine(u[b + 3], c[3], aux, nb, b + 3, acc);
        }
        for (; b < nb; ++b) {
            GEMMA_AMX_BLOCK(0, 4, 6, b);
            _tile_stored(0, c[0], 64);
            combine(u[b], c[0], aux, nb, b, acc);
        }
        store_tile(out, stride, store, acc);
    }
};

#undef GEMMA_AMX_BLOCK

// The super-block types (Q4_K, Q5_K, Q6_K, IQ4_XS). Their sub-block scales are integers, so unpacking multiplies each quant
// by its sub-block's scale, w = q * scale, and splits it as w = 2^S * hi + lo (lo in [0, 2^S), hi a signed byte).
// Two C tiles then sum hi . a and lo . a over the whole super-block, 64 elements per op, and 2^S * C_hi + C_lo is
// exactly the reference's isum = sum_j scale_j * (q . a over sub-block j): no per-sub-block store or multiply.
struct alignas(64) UnpackedK {
    int8_t hi[4 * 1024];  // B tiles p = 0..3 at 1024 p: elements 64p .. 64p + 63 of the 16 rows, 4 per row side by side
    int8_t lo[4 * 1024];
    int32_t mn[4][16];  // Q4_K / Q5_K: the mins of sub-blocks (2i, 2i+1) as int16 pairs, as packed_avx512.cpp
    float d[16];
    float dmin[16];
};

// Per token and super-block: d_a, and (Q4_K / Q5_K) the activation sums of sub-blocks (2i, 2i+1) as int16 pairs.
struct AuxK {
    float d;
    int32_t bs[4];
};

// 64 quant bytes (16 rows x 4, signed) times each row's int32 scale (|q * scale| < 2^15): the low S bits and the
// rest (arithmetic shift) of every product, as bytes in the quants' places.
template <int S>
GEMMA_ALWAYS_INLINE inline void scale_split(__m512i q, __m512i scale, int8_t* hi, int8_t* lo) {
    const __m512i s16 = _mm512_or_si512(_mm512_slli_epi32(scale, 16), _mm512_and_si512(scale, _mm512_set1_epi32(0xFFFF)));
    const __m512i pe = _mm512_mullo_epi16(_mm512_srai_epi16(_mm512_slli_epi16(q, 8), 8), s16);
    const __m512i po = _mm512_mullo_epi16(_mm512_srai_epi16(q, 8), s16);
    const __m512i mlo = _mm512_set1_epi16((1 << S) - 1), m8 = _mm512_set1_epi16(0xFF);
    _mm512_store_si512(lo, _mm512_or_si512(_mm512_and_si512(pe, mlo), _mm512_slli_epi16(_mm512_and_si512(po, mlo), 8)));
    _mm512_store_si512(hi, _mm512_or_si512(_mm512_and_si512(_mm512_srai_epi16(pe, S), m8),
                                           _mm512_slli_epi16(_mm512_srai_epi16(po, S), 8)));
}

// Q4_K / Q5_K quants (0..15 or 0..31, times a 6-bit scale: hi <= 61). qs word 8p + kk holds elements 4kk.. of
// sub-blocks 2p (low nibbles) and 2p + 1 (high): B row kk of each, sub-block j's 8 rows at 512 j of flat.
template <typename G>
struct K4Quants {
    using Group = G;
    static constexpr int kShift = 5;
    static constexpr bool kMin = true;
    static constexpr int kRowsPerSub = 8;
    static void quants(const G& g0, const G& g1, int8_t* flat, __m512i (&scale)[16], UnpackedK& u) {
        const __m512i m4 = _mm512_set1_epi8(0x0F), b4 = _mm512_set1_epi8(0x10);
        for (int p = 0; p < 4; ++p) {
            const __m128i hshift = _mm_cvtsi32_si128(2 * p);
            for (int kk = 0; kk < 8; ++kk) {
                const __m512i raw = load2(g0.qs + 32 * (8 * p + kk), g1.qs + 32 * (8 * p + kk));
                __m512i lo = _mm512_and_si512(raw, m4), hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
                if constexpr (requires { g0.qh; }) {
                    const __m512i h = _mm512_srl_epi16(load2(g0.qh + 32 * kk, g1.qh + 32 * kk), hshift);
                    lo = or_and(lo, _mm512_slli_epi16(h, 4), b4);
                    hi = or_and(hi, _mm512_slli_epi16(h, 3), b4);
                }
                _mm512_store_si512(flat + 512 * (2 * p) + 64 * kk, lo);
                _mm512_store_si512(flat + 512 * (2 * p + 1) + 64 * kk, hi);
            }
        }
        __m512i sc[2], mn[2];
        k4_scales_mins(load2(g0.sc, g1.sc), load2(g0.sc + 32, g1.sc + 32), load2(g0.sc + 64, g1.sc + 64), sc, mn);
        for (int j = 0; j < 8; ++j) scale[j] = shuffle_by(sc[j / 4], kPick.b32[j % 4]);
        for (int i = 0; i < 4; ++i)
            _mm512_store_si512(u.mn[i], shuffle_by(mn[i / 2], kPick.b16[2 * (i % 2)][2 * (i % 2) + 1]));
        _mm512_store_ps(u.dmin, fp16x16(g0.dmin, g1.dmin));
    }
};

// Q6_K quants as q - 32 (times an int8 scale: |hi| <= 64). Quant word j of half h (packed.h): runs m = 0..3 of 4
// elements at 128h + 32m + 4j, i.e. B row j % 4 of sub-block 8h + 2m + j / 4 (its 4 rows at 256 (8h + 2m + j/4)):
// low nibbles of ql word 16h + j (m = 0) and 16h + 8 + j (m = 1), their high nibbles (m = 2, 3), bits 2m, 2m + 1
// of qh word 8h + j.
struct Q6Quants {
    using Group = block_q6_Kx8;
    static constexpr int kShift = 6;
    static constexpr bool kMin = false;
    static constexpr int kRowsPerSub = 4;
    static void quants(const Group& g0, const Group& g1, int8_t* flat, __m512i (&scale)[16], UnpackedK&) {
        const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30), k32 = _mm512_set1_epi8(32);
        for (int h = 0; h < 2; ++h)
            for (int j = 0; j < 8; ++j) {
                const __m512i qh = load2(g0.qh + 32 * (8 * h + j), g1.qh + 32 * (8 * h + j));
                const __m512i l1 = load2(g0.ql + 32 * (16 * h + j), g1.ql + 32 * (16 * h + j));
                const __m512i l2 = load2(g0.ql + 32 * (16 * h + 8 + j), g1.ql + 32 * (16 * h + 8 + j));
                const __m512i v[4] = {
                    or_and(_mm512_and_si512(l1, m4), _mm512_slli_epi16(qh, 4), m30),
                    or_and(_mm512_and_si512(l2, m4), _mm512_slli_epi16(qh, 2), m30),
                    or_and(_mm512_and_si512(_mm512_srli_epi16(l1, 4), m4), qh, m30),
                    or_and(_mm512_and_si512(_mm512_srli_epi16(l2, 4), m4), _mm512_srli_epi16(qh, 2), m30)};
                for (int m = 0; m < 4; ++m)
                    _mm512_store_si512(flat + 256 * (8 * h + 2 * m + j / 4) + 64 * (j % 4), _mm512_sub_epi8(v[m], k32));
            }
        for (int i = 0; i < 16; ++i)
            scale[i] = _mm512_srai_epi32(shuffle_by(load2(g0.sc + 32 * (i / 4), g1.sc + 32 * (i / 4)), kPick.s32[i % 4]), 24);
    }
};

// IQ4_XS quants as their code book values (-127..113, times a 6-bit scale - 32: |hi| <= 64). qs word 4j + k holds
// elements 4k.. (low nibbles) and 16 + 4k.. (high) of sub-block j: B rows k and 4 + k of it. Scale j of a row: bits
// 4j..4j+3 of its sl word, the top 2 bits from bits 2j, 2j+1 of its sh.
struct Iq4XsQuants {
    using Group = block_iq4_xsx8;
    static constexpr int kShift = 6;
    static constexpr bool kMin = false;
    static constexpr int kRowsPerSub = 8;
    static void quants(const Group& g0, const Group& g1, int8_t* flat, __m512i (&scale)[16], UnpackedK&) {
        const __m512i m4 = _mm512_set1_epi8(0x0F), table = _mm512_broadcast_i32x4(loadu128(kvalues_iq4nl));
        for (int j = 0; j < 8; ++j)
            for (int k = 0; k < 4; ++k) {
                const __m512i raw = load2(g0.qs + 32 * (4 * j + k), g1.qs + 32 * (4 * j + k));
                _mm512_store_si512(flat + 512 * j + 64 * k, _mm512_shuffle_epi8(table, _mm512_and_si512(raw, m4)));
                _mm512_store_si512(flat + 512 * j + 64 * (4 + k),
                                   _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4)));
            }
        const __m512i sl = load2(g0.sl, g1.sl);
        const __m512i sh = _mm512_cvtepu16_epi32(_mm256_inserti128_si256(_mm256_castsi128_si256(loadu128(g0.sh)), loadu128(g1.sh), 1));
        for (int j = 0; j < 8; ++j) {
            const __m512i lo = _mm512_and_si512(_mm512_srl_epi32(sl, _mm_cvtsi32_si128(4 * j)), _mm512_set1_epi32(0xF));
            const __m512i hi = _mm512_and_si512(_mm512_srl_epi32(sh, _mm_cvtsi32_si128(2 * j)), _mm512_set1_epi32(3));
            scale[j] = _mm512_sub_epi32(_mm512_or_si512(lo, _mm512_slli_epi32(hi, 4)), _mm512_set1_epi32(32));
        }
    }
};

// One super-block's products into C tiles CH and CL through A tile TA (tile numbers are spliced into the
// instructions' text, so they must be literals: hence a macro).
#define GEMMA_AMX_SUPERBLOCK(CH, CL, TA, act, w)                  \
    do {                                                          \
        _tile_zero(CH);                                           \
        _tile_zero(CL);                                           \
        for (int p = 0; p < 4; ++p) {                             \
            _tile_loadd(TA, (act) + 64 * p, arb);                 \
            _tile_loadd(6, (w).hi + 1024 * p, 64);                \
            _tile_dpbssd(CH, TA, 6);                              \
            _tile_loadd(7, (w).lo + 1024 * p, 64);                \
            _tile_dpbssd(CL, TA, 7);                              \
        }                                                         \
    } while (0)

template <typename Q>
struct AmxK {
    using Group = typename Q::Group;
    using Act = block_q8_K;
    using Unpacked = UnpackedK;
    using Aux = AuxK;
    static constexpr int64_t kQK = 256;
    static constexpr int kConfig = kCfg64;

    static void unpack(const Group& g0, const Group& g1, Unpacked& u) {
        alignas(64) int8_t flat[4096];
        __m512i scale[16];
        Q::quants(g0, g1, flat, scale, u);
        // Flat's B row r (elements 4r.. of the 16 rows) is already where tile r / 16 wants it.
        for (int r = 0; r < 64; ++r)
            scale_split<Q::kShift>(_mm512_load_si512(flat + 64 * r), scale[r / Q::kRowsPerSub], u.hi + 64 * r, u.lo + 64 * r);
        _mm512_store_ps(u.d, fp16x16(g0.d, g1.d));
    }

    static void prepare(const Act* a, int64_t nb, Aux* aux) {
        for (int64_t b = 0; b < nb; ++b) {
            aux[b].d = a[b].d;
            if constexpr (Q::kMin)
                for (int i = 0; i < 4; ++i) {
                    const int lo = a[b].bsums[4 * i] + a[b].bsums[4 * i + 1];
                    const int hi = a[b].bsums[4 * i + 2] + a[b].bsums[4 * i + 3];
                    aux[b].bs[i] = static_cast<int32_t>((static_cast<uint32_t>(hi) << 16) | static_cast<uint16_t>(lo));
                }
        }
    }

    // isum = 2^S * C_hi + C_lo (and msum = sum_j min_j * bsum_j for Q4_K / Q5_K), then packed_avx512.cpp's float steps.
    GEMMA_ALWAYS_INLINE static void combine(const Unpacked& w, const int32_t (&c)[2][16][16], const Aux* aux, int64_t nb,
                                            int64_t b, __m512 (&acc)[16]) {
        const __m512 dw = _mm512_load_ps(w.d);
        #pragma GCC unroll 16
        for (int t = 0; t < 16; ++t) {
            const __m512i isum = _mm512_add_epi32(_mm512_slli_epi32(_mm512_load_si512(c[0][t]), Q::kShift),
                                                  _mm512_load_si512(c[1][t]));
            const __m512 da = _mm512_set1_ps(aux[t * nb + b].d);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw, da), acc[t]);
            if constexpr (Q::kMin) {
                __m512i msum = _mm512_setzero_si512();
                #pragma GCC unroll 4
                for (int i = 0; i < 4; ++i)
                    msum = _mm512_dpwssd_epi32(msum, _mm512_load_si512(w.mn[i]), _mm512_set1_epi32(aux[t * nb + b].bs[i]));
                acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum), _mm512_mul_ps(_mm512_load_ps(w.dmin), da), acc[t]);
            }
        }
    }

    static void tile(int64_t nb, const Unpacked* u, const uint8_t* a, size_t arb, const Aux* aux, float* out,
                     int64_t stride, __mmask16 store) {
        constexpr size_t qs_at = offsetof(Act, qs);
        alignas(64) int32_t c[2][2][16][16];
        __m512 acc[16];
        #pragma GCC unroll 16
        for (int t = 0; t < 16; ++t) acc[t] = _mm512_setzero_ps();
        // Super-blocks in pairs through two sets of C tiles: the second's products queue before the first is read.
        int64_t b = 0;
        for (; b + 2 <= nb; b += 2) {
            GEMMA_AMX_SUPERBLOCK(0, 1, 4, a + b * sizeof(Act) + qs_at, u[b]);
            GEMMA_AMX_SUPERBLOCK(2, 3, 5, a + (b + 1) * sizeof(Act) + qs_at, u[b + 1]);
            _tile_stored(0, c[0][0], 64);
            _tile_stored(1, c[0][1], 64);
            combine(u[b], c[0], aux, nb, b, acc);
            _tile_stored(2, c[1][0], 64);
            _tile_stored(3, c[1][1], 64);
            combine(u[b + 1], c[1], aux, nb, b + 1, acc);
        }
        if (b < nb) {
            GEMMA_AMX_SUPERBLOCK(0, 1, 4, a + b * sizeof(Act) + qs_at, u[b]);
            _tile_stored(0, c[0][0], 64);
            _tile_stored(1, c[0][1], 64);
            combine(u[b], c[0], aux, nb, b, acc);
        }
        store_tile(out, stride, store, acc);
    }
};
#undef GEMMA_AMX_SUPERBLOCK

// Activations of one token block stay in L2 while every group pair of the call runs over them.
constexpr size_t kAmxActBlockBytes = 512 * 1024;

// Whole 16-token tiles through AMX, group pairs (a lone last group as both halves, its copy not stored), each pair's
// weights unpacked once per token block into a per-thread buffer; the rest through the avx512 kernel.
template <typename K, TypeId kType>
void gemm_amx(int64_t n, const void* W, size_t wrb, int64_t r0, int64_t r1, const void* act, size_t arb,
              int64_t n_tok, float* out, int64_t stride) {
    const int64_t full = n_tok / kTileTokens * kTileTokens;
    const GemmFn rest = g_fallback[idx(kType)];
    if (full < n_tok) {
        rest(n, W, wrb, r0, r1, static_cast<const uint8_t*>(act) + static_cast<size_t>(full) * arb, arb, n_tok - full,
             out + full * stride, stride);
    }
    if (full == 0) return;
    ensure_tile_config(K::kConfig);
    using Group = typename K::Group;
    using Act = typename K::Act;
    const int64_t nb = n / K::kQK;
    const size_t grb = 8 * wrb;
    const auto* wb = static_cast<const uint8_t*>(W);
    const auto* ab = static_cast<const uint8_t*>(act);
    const int64_t block_toks = max64(kTileTokens, static_cast<int64_t>(kAmxActBlockBytes / arb) / kTileTokens * kTileTokens);
    thread_local std::vector<typename K::Unpacked> wbuf;
    thread_local std::vector<typename K::Aux> abuf;
    if (wbuf.size() < static_cast<size_t>(nb)) wbuf.resize(static_cast<size_t>(nb));
    const size_t aux_need = static_cast<size_t>(min64(block_toks, full) * nb);
    if (abuf.size() < aux_need) abuf.resize(aux_need);
    for (int64_t tb0 = 0; tb0 < full; tb0 += block_toks) {
        const int64_t tb1 = min64(full, tb0 + block_toks);
        for (int64_t t = tb0; t < tb1; ++t)
            K::prepare(reinterpret_cast<const Act*>(ab + static_cast<size_t>(t) * arb), nb, abuf.data() + (t - tb0) * nb);
        for (int64_t g = r0 / 8; g < r1 / 8; g += 2) {
            const bool pair = g + 1 < r1 / 8;
            const auto* g0 = reinterpret_cast<const Group*>(wb + static_cast<size_t>(g) * grb);
            const Group* g1 = pair ? g0 + nb : g0;
            for (int64_t b = 0; b < nb; ++b) K::unpack(g0[b], g1[b], wbuf[static_cast<size_t>(b)]);
            memory_barrier();
            for (int64_t t0 = tb0; t0 < tb1; t0 += kTileTokens)
                K::tile(nb, wbuf.data(), ab + static_cast<size_t>(t0) * arb, arb, abuf.data() + (t0 - tb0) * nb,
                        out + t0 * stride + g * 8, stride, pair ? __mmask16{0xFFFF} : __mmask16{0x00FF});
        }
    }
}

template <typename K, TypeId kType>
void install(KernelTable& t) {
    g_fallback[idx(kType)] = t.gemm_packed[idx(kType)];
    t.gemm_packed[idx(kType)] = gemm_amx<K, kType>;
}

}  // namespace

void fill_amx_packed(KernelTable& t) {
    install<AmxK<K4Quants<block_q4_Kx8>>, TypeId::Q4_K>(t);
    install<AmxK<K4Quants<block_q5_Kx8>>, TypeId::Q5_K>(t);
    install<AmxK<Q6Quants>, TypeId::Q6_K>(t);
    install<AmxK<Iq4XsQuants>, TypeId::IQ4_XS>(t);
    install<Amx32<Unpack32<block_q4_0x8, block_q8_0, 8>>, TypeId::Q4_0>(t);
    install<Amx32<Unpack32<block_q8_0x8, block_q8_0, 0>>, TypeId::Q8_0>(t);
    install<Amx32<Unpack32<block_q4_1x8, block_q8_1, 0>>, TypeId::Q4_1>(t);
    install<Amx32<Unpack32<block_q5_0x8, block_q8_0, 16>>, TypeId::Q5_0>(t);
    install<Amx32<Unpack32<block_q5_1x8, block_q8_1, 0>>, TypeId::Q5_1>(t);
    install<Amx32<Unpack32<block_iq4_nlx8, block_q8_0, 0, true>>, TypeId::IQ4_NL>(t);
}

}  // namespace gemma::kernels::detail
