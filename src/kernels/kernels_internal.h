// Internal to the kernels layer: the per-ISA function tables that dispatch.cpp fills once and routes through.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"
#include "quant/types.h"

namespace gemma::kernels::detail {

using ConvertFn = void (*)(const float* x, void* dst, int64_t n);
using VecDotFn = void (*)(int64_t n, float* s, const void* w, const void* a);
using GemmFn = void (*)(int64_t n, const void* W, size_t w_row_bytes, int64_t r0, int64_t r1, const void* act,
                        size_t act_row_bytes, int64_t n_tok, float* out, int64_t out_stride);
using PackFn = void (*)(int64_t n, const void* src, size_t row_bytes, void* dst);

struct KernelTable {
    ConvertFn convert[kTypeIdCount] = {};  // indexed by the activation type (Q8_0, Q8_1, Q8_K, F16, BF16, F32)
    VecDotFn vec_dot[kTypeIdCount] = {};   // indexed by the weight type
    GemmFn gemm[kTypeIdCount] = {};        // indexed by the weight type; null means "loop over vec_dot"
    PackFn pack[kTypeIdCount] = {};        // row-interleaved layout (packed.h); layout only, so Ref's for every ISA
    GemmFn gemm_packed[kTypeIdCount] = {}; // over packed groups; set exactly where pack is
};

// static: one private copy per TU, so no AVX2-compiled out-of-line copy can be shared with generic code.
static constexpr size_t idx(TypeId t) { return static_cast<size_t>(t); }

// Each ISA fills only what it implements; dispatch starts every ISA's table from a copy of Ref's,
// so a missing fast kernel silently falls back to the scalar one.
void fill_ref_convert(KernelTable& t);
void fill_ref_float(KernelTable& t);
void fill_ref_legacy(KernelTable& t);
void fill_ref_kquants(KernelTable& t);
void fill_ref_iq(KernelTable& t);
void fill_ref_packed(KernelTable& t);

// The live table of an ISA, writable: only tests use it, to check that a deliberately broken kernel is caught.
KernelTable& table_for_tests(Isa isa);

void fill_avx2_convert(KernelTable& t);
void fill_avx2_float(KernelTable& t);
void fill_avx2_legacy(KernelTable& t);
void fill_avx2_kquants(KernelTable& t);
void fill_avx2_iq(KernelTable& t);
void fill_avx2_packed(KernelTable& t);
void fill_vnni_packed(KernelTable& t);
void fill_avx512_packed(KernelTable& t);
void fill_avx512_packed_lowk(KernelTable& t);  // Q3_K, Q2_K; called by fill_avx512_packed
void fill_avx512_packed_iq(KernelTable& t);    // IQ4_XS; called by fill_avx512_packed
void fill_avx512_float(KernelTable& t);
void fill_avx512bf16_float(KernelTable& t);  // BF16 with vdpbf16ps; dispatch uses it where it gives fill_avx512_float's bits
void fill_avx512vbmi_iq3(KernelTable& t);    // IQ3_XXS / IQ3_S with in-register grid lookups
void fill_amx_packed(KernelTable& t);  // over a copy of the avx512 table: its kernels serve short calls

}  // namespace gemma::kernels::detail
