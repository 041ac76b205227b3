// Row-interleaved ("repacked") block layouts: kPackRows weight rows stored block by block so one SIMD op serves 8 rows.
#pragma once
#include <cstdint>

#include "quant/blocks.h"
#include "quant/iq_tables.h"

namespace gemma::kernels::detail {

// The 32-bit word k of every row sits side by side: qs[32*k + 4*r + j] = byte 4*k + j of row r's block.
// A 256-bit load then holds 4 consecutive quant bytes of each of the 8 rows, which pairs with one
// activation word broadcast to all lanes; the lanes of the integer result are the rows.
// Every group struct takes exactly the bytes of 8 plain blocks, so a group sits where its 8 rows were.
#pragma pack(push, 1)
struct block_q4_0x8 { fp16_t d[8]; uint8_t qs[8 * QK4_0 / 2]; };  // nibble semantics of block_q4_0 kept
struct block_q8_0x8 { fp16_t d[8]; int8_t qs[8 * QK8_0]; };
struct block_iq4_nlx8 { fp16_t d[8]; uint8_t qs[8 * QK4_NL / 2]; };  // nibbles index kvalues_iq4nl
struct block_q4_1x8 { fp16_t d[8]; fp16_t m[8]; uint8_t qs[8 * QK4_1 / 2]; };
// Q5_0 / Q5_1: row r's 32 high bits are one word at qh[4r], rearranged so that a shift and a mask put the fifth
// bit of the 4 elements of quant word k at bit 4 of each byte: byte j of the word holds the high bit of element
// 4k+j at bit 4+k (the low nibbles' elements) and that of element 16+4k+j at bit k (the high nibbles').
struct block_q5_0x8 { fp16_t d[8]; uint8_t qh[8 * 4]; uint8_t qs[8 * QK5_0 / 2]; };
struct block_q5_1x8 { fp16_t d[8]; fp16_t m[8]; uint8_t qh[8 * 4]; uint8_t qs[8 * QK5_1 / 2]; };
// Q4_K: the same word interleave for qs (word k of a row: 4 bytes of sub-block pair k/8, low nibbles in
// sub-block 2(k/8), high in 2(k/8)+1), and the 12 scale bytes as 3 words, word w of row r at sc[4(8w + r)], so
// the 6-bit scales and mins of all 8 rows unpack with the same word operations that unpack one row.
struct block_q4_Kx8 { fp16_t d[8]; fp16_t dmin[8]; uint8_t sc[8 * K_SCALE_SIZE]; uint8_t qs[8 * QK_K / 2]; };
// Q5_K: Q4_K's layout plus the high bits, interleaved by words like qs (qh byte l holds bit j for element l of
// sub-block j).
struct block_q5_Kx8 {
    fp16_t d[8]; fp16_t dmin[8]; uint8_t sc[8 * K_SCALE_SIZE]; uint8_t qh[8 * QK_K / 8]; uint8_t qs[8 * QK_K / 2];
};
// Q6_K: the scales as 4 interleaved words (byte c of word w: sub-block 4w+c), then qh and ql interleaved by words.
// Quant word j of half h: ql words 16h+j (low nibbles: elements 128h+4j.., high: +64) and 16h+8+j (+32, +96),
// qh word 8h+j (2-bit pairs for the same four runs, low pair first).
struct block_q6_Kx8 { fp16_t d[8]; uint8_t sc[8 * QK_K / 16]; uint8_t qh[8 * QK_K / 4]; uint8_t ql[8 * QK_K / 2]; };
// Q3_K and Q2_K: qs interleaved by words: qs word k (k < 16) holds ggml's bytes 4k..4k+3, whose 2-bit field m
// (bits 2m, 2m+1) of byte j is element 128h + 32m + 4(k%8) + j, h = k/8. Shifted right by 2m' (m' < 2) and masked
// with 0x33, a word holds fields m' and m'+2 at bits 0-1 and 4-5: two element runs 64 apart, like a nibble pair.
// Q3_K's hmask word k (k < 8) holds bytes 4k..4k+3 of ggml's hmask with each byte's bits permuted so the high bits
// drop into those gaps: ggml's bit 4h + m (element 128h + 32m + 4k + j) sits at bit 2(1-h) + (m&1) + 4(m>>1), so
// one shift by m' - 2h brings fields m' and m'+2 of half h to bits 2 and 6.
// Q3_K's 12 scale bytes are 3 words as Q4_K's; Q2_K's 16 scale bytes 4 words (byte c of word w: sub-block 4w+c).
struct block_q3_Kx8 { fp16_t d[8]; uint8_t sc[8 * 12]; uint8_t hmask[8 * QK_K / 8]; uint8_t qs[8 * QK_K / 4]; };
struct block_q2_Kx8 { fp16_t d[8]; fp16_t dmin[8]; uint8_t sc[8 * QK_K / 16]; uint8_t qs[8 * QK_K / 4]; };
// IQ4_XS: row r's scales_h at sh[r] and its 4 scales_l bytes as the word at sl[4r], so sub-block j's 6-bit scale is
// bits 4j..4j+3 of the sl word and 2j, 2j+1 of sh in every lane alike; qs interleaved by words as IQ4_NL's (word k:
// sub-block k/4, low nibbles elements 32(k/4) + 4(k%4).., high nibbles 16 further; they index kvalues_iq4nl).
struct block_iq4_xsx8 { fp16_t d[8]; uint16_t sh[8]; uint8_t sl[8 * QK_K / 64]; uint8_t qs[8 * QK_K / 2]; };
#pragma pack(pop)
static_assert(sizeof(block_q4_0x8) == 8 * sizeof(block_q4_0));
static_assert(sizeof(block_q8_0x8) == 8 * sizeof(block_q8_0));
static_assert(sizeof(block_iq4_nlx8) == 8 * sizeof(block_iq4_nl));
static_assert(sizeof(block_q4_1x8) == 8 * sizeof(block_q4_1));
static_assert(sizeof(block_q5_0x8) == 8 * sizeof(block_q5_0));
static_assert(sizeof(block_q5_1x8) == 8 * sizeof(block_q5_1));
static_assert(sizeof(block_q4_Kx8) == 8 * sizeof(block_q4_K));
static_assert(sizeof(block_q5_Kx8) == 8 * sizeof(block_q5_K));
static_assert(sizeof(block_q6_Kx8) == 8 * sizeof(block_q6_K));
static_assert(sizeof(block_q3_Kx8) == 8 * sizeof(block_q3_K));
static_assert(sizeof(block_q2_Kx8) == 8 * sizeof(block_q2_K));
static_assert(sizeof(block_iq4_xsx8) == 8 * sizeof(block_iq4_xs));

// kvalues_iq4nl with 128 added: every entry fits a byte unsigned, the operand vpdpbusd takes (IQ4_NL, IQ4_XS).
struct BiasedIq4Values {
    uint8_t v[16] = {};
    constexpr BiasedIq4Values() {
        for (int i = 0; i < 16; ++i) v[i] = static_cast<uint8_t>(kvalues_iq4nl[i] + 128);
    }
};
inline constexpr BiasedIq4Values kIq4Biased{};

}  // namespace gemma::kernels::detail
