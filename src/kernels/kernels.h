// Matmul kernels: activation conversion to the paired type and dot products, per ISA, chosen at run time.
#pragma once
#include <cstddef>
#include <cstdint>

#include "quant/types.h"

namespace gemma::kernels {

// Avx2Vnni is AVX2 plus AVX-VNNI (vpdpbusd on 256-bit vectors): the packed kernels use it, the rest is Avx2's.
// Avx512 (AVX512F+BW+VL+VNNI on an AVX2 CPU): packed kernels 16 rows wide with the EVEX vpdpbusd, float kernels
// on 512-bit vectors (still f32 FMAs: the same arithmetic on any AVX-512 CPU); the other types keep Avx2's kernels.
// Amx (Avx512 plus AMX-TILE and AMX-INT8, with the OS's permission): Avx512's table, except that the packed kernels
// of prompts (16 tokens or more) take each block's integer dots from AMX tiles; the float steps, so the bits, stay.
enum class Isa { Ref, Avx2, Avx2Vnni, Avx512, Amx };
// Every ISA, for callers that try each one the CPU supports (tests, benchmarks).
inline constexpr Isa kAllIsas[] = {Isa::Ref, Isa::Avx2, Isa::Avx2Vnni, Isa::Avx512, Isa::Amx};
// The ISA in use: the best the CPU supports, unless GEMMA_ISA=ref|avx2|avx2vnni|avx512|amx says otherwise.
Isa active_isa();
// Force an ISA (tests compare every ISA the host supports against Ref). Returns false if unsupported.
bool set_isa(Isa isa);
bool isa_supported(Isa isa);
// Whether this CPU has AVX512-BF16, which the AVX-512 level then uses for BF16 weights (vdpbf16ps, same bits).
bool avx512_bf16_supported();
const char* isa_name(Isa isa);

// Bytes of one activation row of n elements converted for weight type `wt` (i.e. in vec_dot_type(wt)).
size_t act_row_size(TypeId wt, int64_t n);
// Convert one row of f32 activations to the type llama.cpp pairs with weight type `wt`
// (Q8_0, Q8_1, Q8_K, F16, BF16 or F32), with the x86 semantics of llama.cpp's CPU backend.
void convert_act_row(TypeId wt, const float* x, void* dst, int64_t n);

// *s = dot(one weight row of type wt, one converted activation row), n elements, f32 result.
void vec_dot(TypeId wt, int64_t n, float* s, const void* w, const void* a);

// out[t * out_stride + r] = dot(W row r, act row t) for r in [r0, r1), t in [0, n_tok).
// W rows are w_row_bytes apart; converted activation rows are act_row_bytes apart.
// Results do not depend on how callers split [r0, r1) between threads.
void gemm(TypeId wt, int64_t n, const void* W, size_t w_row_bytes, int64_t r0, int64_t r1,
          const void* act, size_t act_row_bytes, int64_t n_tok, float* out, int64_t out_stride);

// Row-interleaved ("repacked") weights, as llama.cpp's CPU repack buffers and ik_llama.cpp's _R8 types:
// groups of kPackRows consecutive rows stored block by block interleaved (kernels/packed.h), so one
// instruction multiplies a block of all 8 rows. A group takes the bytes of its 8 plain rows, so group g
// starts at W + g * kPackRows * w_row_bytes.
inline constexpr int64_t kPackRows = 8;
// Longest packed row: the AVX2 driver keeps per-block activation sums of a few tokens on the stack.
inline constexpr int64_t kMaxPackedRow = 131072;
// Whether rows of n elements of type wt have a packed layout (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, Q4_K, Q5_K,
// Q6_K; n a whole number of blocks).
bool packable(TypeId wt, int64_t n);
// Interleaves the kPackRows rows at src (row_bytes apart, n elements each) into one group at dst.
void pack_group(TypeId wt, int64_t n, const void* src, size_t row_bytes, void* dst);
// gemm over packed weights; r0 and r1 must be multiples of kPackRows. Its arithmetic is its own (one exact
// integer dot per block, then one f32 fused multiply-add per block), the same bits on every ISA, for any
// n_tok and any row split; it equals vec_dot on the plain rows up to f32 rounding.
void gemm_packed(TypeId wt, int64_t n, const void* W, size_t w_row_bytes, int64_t r0, int64_t r1, const void* act,
                 size_t act_row_bytes, int64_t n_tok, float* out, int64_t out_stride);

}  // namespace gemma::kernels
