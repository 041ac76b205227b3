// AVX-512 gemm over row-interleaved groups (kernels/packed.h): two groups side by side fill a 512-bit vector, so each
// EVEX vpdpbusd multiplies 4 quants of 16 rows by one broadcast activation word. The layout is the one every ISA
// shares; only the pairing of groups is new. Integer block dots are exact and each row's float steps are Ref's,
// so the results are Ref's bits whether a group runs paired or alone (an odd group count's last group, or a call
// that starts mid-pair: pairs are counted from r0, and pairing never changes a lane's arithmetic).
#include "kernels/avx512/packed_common.h"  // first: it includes <immintrin.h>

namespace gemma::kernels::detail {
namespace {

using namespace avx512;

// s[b * stride] = -(2^shift * sum of block b's activations): the start of a block's accumulator for the types whose
// unsigned quants carry a bias (Q4_0: 8, Q5_0: 16; Q8_0 and IQ4_NL: 128, added so vpdpbusd can take them). Eight
// blocks at a time through a transposing hadd tree: this runs once per token in every call.
void neg_offsets(const block_q8_0* a, int64_t nb, int32_t* s, int64_t stride, int shift) {
    const __m256i ones8 = _mm256_set1_epi8(1);
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        __m256i v[8];
        #pragma GCC unroll 8
        for (int i = 0; i < 8; ++i) v[i] = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones8, loadu256(a[b + i].qs));
        const __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
        const __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
        // h0: blocks 0..3 (low 128: their lanes 0..3, high 128: lanes 4..7); h1: blocks 4..7.
        const __m256i tot = _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20), _mm256_permute2x128_si256(h0, h1, 0x31));
        int32_t tmp[8];
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(tmp),
                            _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_sll_epi32(tot, _mm_cvtsi32_si128(shift))));
        for (int i = 0; i < 8; ++i) s[(b + i) * stride] = tmp[i];
    }
    for (; b < nb; ++b) {
        int32_t sum = 0;
        for (int8_t q : a[b].qs) sum += q;
        s[b * stride] = -sum * (1 << shift);
    }
}

// The 32-element types. dots<T> adds each block's unsigned-quant x activation dots to i32 (a lane per row).
// Q4_0 / Q4_1 / Q5_0 / Q5_1: nibbles, the fifth bit ORed in from the rearranged high-bit word (packed.h);
// IQ4_NL (kTable): nibbles looked up in the biased code book.
template <typename G, typename A, int kShift, bool kTable = false>
struct NibbleDots {
    using Group = G;
    using Act = A;
    static constexpr int kBiasShift = kShift;  // -1: a min type (Q8_1 activations), no bias
    static constexpr bool kHigh = requires(const G& g) { g.qh; };

    template <int T>
    GEMMA_ALWAYS_INLINE static void dots(const G& g0, const G& g1, const A* const* a, int64_t b, __m512i (&i32)[T]) {
        const __m512i m4 = _mm512_set1_epi8(0x0F), b4 = _mm512_set1_epi8(0x10);
        __m512i hbits = _mm512_setzero_si512(), table = _mm512_setzero_si512();
        if constexpr (kHigh) hbits = load2(g0.qh, g1.qh);
        if constexpr (kTable) table = _mm512_broadcast_i32x4(loadu128(kIq4Biased.v));
        #pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
            const __m512i raw = load2(g0.qs + 32 * k, g1.qs + 32 * k);
            __m512i lo = _mm512_and_si512(raw, m4);                        // elements 4k..4k+3
            __m512i hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);  // elements 16+4k..
            if constexpr (kHigh) {
                lo = or_and(lo, _mm512_srli_epi32(hbits, k), b4);
                hi = or_and(hi, _mm512_slli_epi32(hbits, 4 - k), b4);
            }
            if constexpr (kTable) {
                lo = _mm512_shuffle_epi8(table, lo);
                hi = _mm512_shuffle_epi8(table, hi);
            }
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) {
                i32[t] = dpbusd(i32[t], lo, bcast_word(a[t][b].qs + 4 * k));
                i32[t] = dpbusd(i32[t], hi, bcast_word(a[t][b].qs + 16 + 4 * k));
            }
        }
    }
};

// Q8_0: the signed quants with their top bit flipped are q + 128, unsigned.
struct Q8Dots {
    using Group = block_q8_0x8;
    using Act = block_q8_0;
    static constexpr int kBiasShift = 7;

    template <int T>
    GEMMA_ALWAYS_INLINE static void dots(const Group& g0, const Group& g1, const Act* const* a, int64_t b,
                                         __m512i (&i32)[T]) {
        const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
        #pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) {
            const __m512i w = _mm512_xor_si512(load2(g0.qs + 32 * k, g1.qs + 32 * k), flip);
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) i32[t] = dpbusd(i32[t], w, bcast_word(a[t][b].qs + 4 * k));
        }
    }
};

// Per token and block: d_a as float bits, then the accumulator's start (-bias * sum a) or, for the min types,
// s_a as float bits. The tile: acc = fma(float(isum), d_w * d_a, acc), and fma(m_w, s_a, acc) for the min types.
template <typename D>
struct Packed32 {
    using Group = typename D::Group;
    using Act = typename D::Act;
    static constexpr bool kMin = D::kBiasShift < 0;
    static constexpr int64_t kQK = 32;
    static constexpr int64_t kGroups = 2;
    static constexpr int kAux = 2;
    static constexpr int kMaxT = 8;  // 2T live vectors per token plus the unpacked words: no spills at 8
    static void prepare(const Act* a, int64_t nb, int32_t* aux) {
        for (int64_t b = 0; b < nb; ++b) {
            aux[2 * b] = bits_from_f32(_cvtsh_ss(a[b].d));
            if constexpr (kMin) aux[2 * b + 1] = bits_from_f32(_cvtsh_ss(a[b].s));
        }
        if constexpr (!kMin) neg_offsets(a, nb, aux + 1, 2, D::kBiasShift);
    }

    template <int T>
    static void tile(int64_t nb, const Group* g0, int64_t groups, const Act* const* a, const int32_t* const* aux,
                     float* out, int64_t stride, const uint8_t* pf_end) {
        const Group* g1 = second_group(g0, groups, nb);
        const __mmask16 store = store_mask(groups);
        __m512 acc[T];
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
        for (int64_t b = 0; b < nb; ++b) {
            if (pf_end) prefetch_streams<Group, kGroups>(g0, nb, b, pf_end);
            __m512i i32[T];
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) i32[t] = kMin ? _mm512_setzero_si512() : _mm512_set1_epi32(aux[t][2 * b + 1]);
            D::template dots<T>(g0[b], g1[b], a, b, i32);
            const __m512 dw = fp16x16(g0[b].d, g1[b].d);
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t)
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i32[t]), _mm512_mul_ps(dw, bcast_f32(&aux[t][2 * b])), acc[t]);
            if constexpr (kMin) {
                const __m512 mw = fp16x16(g0[b].m, g1[b].m);
                #pragma GCC unroll 8
                for (int t = 0; t < T; ++t) acc[t] = _mm512_fmadd_ps(mw, bcast_f32(&aux[t][2 * b + 1]), acc[t]);
            }
        }
        store_tile(out, stride, store, acc);
    }
};

// Q4_K / Q5_K against Q8_K. The 16 rows' 6-bit scales and mins unpack from three interleaved words with ggml's word
// operations. Sub-block dots accumulate in int32 over chunks of words small enough that the partial sum fits an
// int16 (Q4_K: 4 words, 16 products of at most 15 * 128; Q5_K: 2 words, 31 * 128), so one vpdpwssd against the
// row's scale (zero-extended to int32: the high int16 multiplies zero) scales and adds it exactly. The min term
// is min_j * (activation sum of sub-block j), two sub-blocks per vpdpwssd against the prepared int16 sum pairs.
template <typename GroupT>
struct PackedK {
    static constexpr bool kHigh = requires(const GroupT& g) { g.qh; };
    static constexpr int kChunk = kHigh ? 2 : 4;
    using Group = GroupT;
    using Act = block_q8_K;
    static constexpr int64_t kQK = 256;
    static constexpr int64_t kGroups = 2;
    static constexpr int kAux = 5;   // prepare_sub_pairs
    static constexpr int kMaxT = 8;  // 4T live vectors per token: a few spills, still ahead of 4 and 6 (pp +15-25%)
    static void prepare(const Act* a, int64_t nb, int32_t* aux) { prepare_sub_pairs(a, nb, aux); }

    template <int T>
    static void tile(int64_t nb, const Group* g0, int64_t groups, const Act* const* a, const int32_t* const* aux,
                     float* out, int64_t stride, const uint8_t* pf_end) {
        const Group* g1 = second_group(g0, groups, nb);
        const __mmask16 store = store_mask(groups);
        __m512 acc[T];
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
        const __m512i m4 = _mm512_set1_epi8(0x0F), b4 = _mm512_set1_epi8(0x10);
        for (int64_t b = 0; b < nb; ++b) {
            if (pf_end) prefetch_streams<Group, kGroups>(g0, nb, b, pf_end);
            const Group& G0 = g0[b];
            const Group& G1 = g1[b];
            __m512i sc[2], mn[2];
            k4_scales_mins(load2(G0.sc, G1.sc), load2(G0.sc + 32, G1.sc + 32), load2(G0.sc + 64, G1.sc + 64), sc, mn);
            __m512i isum[T];
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) isum[t] = _mm512_setzero_si512();
            #pragma GCC unroll 1
            for (int p = 0; p < 4; ++p) {
                const __m512i svl = shuffle_by(sc[p / 2], kPick.b32[2 * (p % 2)]);
                const __m512i svh = shuffle_by(sc[p / 2], kPick.b32[2 * (p % 2) + 1]);
                const __m128i hshift = _mm_cvtsi32_si128(2 * p);
                __m512i slo[T], shi[T];
                #pragma GCC unroll 8
                for (int kk = 0; kk < 8; ++kk) {
                    const __m512i raw = load2(G0.qs + 32 * (8 * p + kk), G1.qs + 32 * (8 * p + kk));
                    __m512i lo = _mm512_and_si512(raw, m4);
                    __m512i hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
                    if constexpr (kHigh) {
                        // Bits 2p and 2p+1 of each qh byte to bit 4 (16-bit shifts: the mask keeps each byte's own).
                        const __m512i h = _mm512_srl_epi16(load2(G0.qh + 32 * kk, G1.qh + 32 * kk), hshift);
                        lo = or_and(lo, _mm512_slli_epi16(h, 4), b4);
                        hi = or_and(hi, _mm512_slli_epi16(h, 3), b4);
                    }
                    #pragma GCC unroll 8
                    for (int t = 0; t < T; ++t) {
                        const bool first = kk % kChunk == 0;
                        slo[t] = dpbusd(first ? _mm512_setzero_si512() : slo[t], lo, bcast_word(a[t][b].qs + 64 * p + 4 * kk));
                        shi[t] = dpbusd(first ? _mm512_setzero_si512() : shi[t], hi,
                                        bcast_word(a[t][b].qs + 64 * p + 32 + 4 * kk));
                    }
                    if (kk % kChunk == kChunk - 1) {
                        #pragma GCC unroll 8
                        for (int t = 0; t < T; ++t)
                            isum[t] = _mm512_dpwssd_epi32(_mm512_dpwssd_epi32(isum[t], slo[t], svl), shi[t], svh);
                    }
                }
            }
            // The min term after the quants: its sums are not live while they run.
            __m512i msum[T];
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) msum[t] = _mm512_setzero_si512();
            #pragma GCC unroll 4
            for (int i = 0; i < 4; ++i) {
                const __m512i mv = shuffle_by(mn[i / 2], kPick.b16[2 * (i % 2)][2 * (i % 2) + 1]);
                #pragma GCC unroll 8
                for (int t = 0; t < T; ++t) msum[t] = _mm512_dpwssd_epi32(msum[t], mv, _mm512_set1_epi32(aux[t][5 * b + 1 + i]));
            }
            const __m512 dw = fp16x16(G0.d, G1.d), dm = fp16x16(G0.dmin, G1.dmin);
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) {
                const __m512 da = bcast_f32(&aux[t][5 * b]);
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(dw, da), acc[t]);
                acc[t] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum[t]), _mm512_mul_ps(dm, da), acc[t]);
            }
        }
        store_tile(out, stride, store, acc);
    }
};

// Q6_K against Q8_K: unsigned 6-bit q (value q - 32). Per sub-block of 16, q . a in int32 (up to 16 * 63 * 128:
// too wide for vpdpwssd) times the rows' sign-extended int8 scale with vpmulld; the offset
// -32 * sum_i scale_i * bsum_i starts the sum, two sub-blocks per vpdpwssd against the prepared bsum pairs.
struct PackedQ6K {
    using Group = block_q6_Kx8;
    using Act = block_q8_K;
    static constexpr int64_t kQK = 256;
    static constexpr int64_t kGroups = 2;
    static constexpr int kAux = 9;  // d_a as float bits, then bsum pairs (4w, 4w+2) and (4w+1, 4w+3), w < 4
    static constexpr int kMaxT = 6;  // 4T live vectors per token; ahead of 4 and 8 (pp +10%)
    static void prepare(const Act* a, int64_t nb, int32_t* aux) { prepare_bsum_pairs(a, nb, aux); }

    template <int T>
    static void tile(int64_t nb, const Group* g0, int64_t groups, const Act* const* a, const int32_t* const* aux,
                     float* out, int64_t stride, const uint8_t* pf_end) {
        const Group* g1 = second_group(g0, groups, nb);
        const __mmask16 store = store_mask(groups);
        __m512 acc[T];
        #pragma GCC unroll 8
        for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
        const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
        for (int64_t b = 0; b < nb; ++b) {
            if (pf_end) prefetch_streams<Group, kGroups>(g0, nb, b, pf_end);
            const Group& G0 = g0[b];
            const Group& G1 = g1[b];
            __m512i isum[T];
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) isum[t] = _mm512_setzero_si512();
            #pragma GCC unroll 4
            for (int w = 0; w < 4; ++w) {
                const __m512i sw = load2(G0.sc + 32 * w, G1.sc + 32 * w);
                const __m512i even = _mm512_srai_epi16(_mm512_slli_epi16(sw, 8), 8), odd = _mm512_srai_epi16(sw, 8);
                #pragma GCC unroll 8
                for (int t = 0; t < T; ++t)
                    isum[t] = _mm512_dpwssd_epi32(_mm512_dpwssd_epi32(isum[t], even, _mm512_set1_epi32(aux[t][9 * b + 1 + 2 * w])),
                                                  odd, _mm512_set1_epi32(aux[t][9 * b + 2 + 2 * w]));
            }
            #pragma GCC unroll 8
            for (int t = 0; t < T; ++t) isum[t] = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(isum[t], 5));
            #pragma GCC unroll 1
            for (int h = 0; h < 2; ++h) {
                #pragma GCC unroll 1
                for (int jq = 0; jq < 2; ++jq) {
                    #pragma GCC unroll 2
                    for (int mp = 0; mp < 2; ++mp) {
                        // Sub-blocks ia (m = 2mp) and ib (m = 2mp + 1) over words j = 4jq..4jq+3.
                        const int ia = 8 * h + 4 * mp + jq, ib = ia + 2;
                        __m512i da[T], db[T];
                        #pragma GCC unroll 4
                        for (int jj = 0; jj < 4; ++jj) {
                            const int j = 4 * jq + jj;
                            const __m512i qh = load2(G0.qh + 32 * (8 * h + j), G1.qh + 32 * (8 * h + j));
                            __m512i l1 = load2(G0.ql + 32 * (16 * h + j), G1.ql + 32 * (16 * h + j));
                            __m512i l2 = load2(G0.ql + 32 * (16 * h + 8 + j), G1.ql + 32 * (16 * h + 8 + j));
                            __m512i ha, hb;
                            if (mp == 0) {
                                ha = _mm512_slli_epi16(qh, 4);
                                hb = _mm512_slli_epi16(qh, 2);
                            } else {
                                l1 = _mm512_srli_epi16(l1, 4);
                                l2 = _mm512_srli_epi16(l2, 4);
                                ha = qh;
                                hb = _mm512_srli_epi16(qh, 2);
                            }
                            // (l & 0x0F) | (h & 0x30): one vpternlogd after masking the high pair.
                            const __m512i qa = or_and(_mm512_and_si512(ha, m30), l1, m4);
                            const __m512i qb = or_and(_mm512_and_si512(hb, m30), l2, m4);
                            const int ea = 128 * h + 64 * mp + 4 * j;  // element of qa's first quant; qb's is +32
                            #pragma GCC unroll 8
                            for (int t = 0; t < T; ++t) {
                                const __m512i z = _mm512_setzero_si512();
                                da[t] = dpbusd(jj == 0 ? z : da[t], qa, bcast_word(a[t][b].qs + ea));
                                db[t] = dpbusd(jj == 0 ? z : db[t], qb, bcast_word(a[t][b].qs + ea + 32));
                            }
                        }
                        const __m512i sa = _mm512_srai_epi32(shuffle_by(load2(G0.sc + 32 * (ia / 4), G1.sc + 32 * (ia / 4)),
                                                                        kPick.s32[ia % 4]), 24);
                        const __m512i sb = _mm512_srai_epi32(shuffle_by(load2(G0.sc + 32 * (ib / 4), G1.sc + 32 * (ib / 4)),
                                                                        kPick.s32[ib % 4]), 24);
                        #pragma GCC unroll 8
                        for (int t = 0; t < T; ++t)
                            isum[t] = _mm512_add_epi32(isum[t], _mm512_add_epi32(_mm512_mullo_epi32(da[t], sa),
                                                                                 _mm512_mullo_epi32(db[t], sb)));
                    }
                }
            }
            const __m512 dw = fp16x16(G0.d, G1.d);
            superblock_fma(acc, isum, dw, aux, 9 * b);
        }
        store_tile(out, stride, store, acc);
    }
};

}  // namespace

void fill_avx512_packed(KernelTable& t) {
    t.gemm_packed[idx(TypeId::Q4_0)] = gemm_packed_tiled<Packed32<NibbleDots<block_q4_0x8, block_q8_0, 3>>>;
    t.gemm_packed[idx(TypeId::Q5_0)] = gemm_packed_tiled<Packed32<NibbleDots<block_q5_0x8, block_q8_0, 4>>>;
    t.gemm_packed[idx(TypeId::Q4_1)] = gemm_packed_tiled<Packed32<NibbleDots<block_q4_1x8, block_q8_1, -1>>>;
    t.gemm_packed[idx(TypeId::Q5_1)] = gemm_packed_tiled<Packed32<NibbleDots<block_q5_1x8, block_q8_1, -1>>>;
    t.gemm_packed[idx(TypeId::Q8_0)] = gemm_packed_tiled<Packed32<Q8Dots>>;
    t.gemm_packed[idx(TypeId::IQ4_NL)] = gemm_packed_tiled<Packed32<NibbleDots<block_iq4_nlx8, block_q8_0, 7, true>>>;
    t.gemm_packed[idx(TypeId::Q4_K)] = gemm_packed_tiled<PackedK<block_q4_Kx8>>;
    t.gemm_packed[idx(TypeId::Q5_K)] = gemm_packed_tiled<PackedK<block_q5_Kx8>>;
    t.gemm_packed[idx(TypeId::Q6_K)] = gemm_packed_tiled<PackedQ6K>;
    fill_avx512_packed_lowk(t);
    fill_avx512_packed_iq(t);
}

}  // namespace gemma::kernels::detail
