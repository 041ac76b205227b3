// Matmul kernels: activation conversion to the paired type and dot products, per ISA, chosen at run time.
#pragma once
#include <cstddef>
#include <cstdint>

#include "quant/types.h"

namespace gemma::kernels {

enum class Isa { Ref, Avx2 };
// The ISA in use: the best the CPU supports, unless GEMMA_ISA=ref|avx2 says otherwise.
Isa active_isa();
// Force an ISA (tests compare every ISA the host supports against Ref). Returns false if unsupported.
bool set_isa(Isa isa);
bool isa_supported(Isa isa);
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

}  // namespace gemma::kernels
