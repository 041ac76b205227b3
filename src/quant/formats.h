// Per-type reference dequantizers and quantizers (bit-exact with ggml's reference), registered in types.cpp.
#pragma once
#include <cstddef>
#include <cstdint>

namespace gemma {

#define GEMMA_DECLARE_FORMAT(t)                                                              \
    void dequantize_row_##t(const void* src, float* dst, int64_t n);                        \
    size_t quantize_##t(const float* src, void* dst, int64_t nrows, int64_t n_per_row,      \
                        const float* imatrix);

// float types (float_types.cpp)
GEMMA_DECLARE_FORMAT(f32)
GEMMA_DECLARE_FORMAT(f16)
GEMMA_DECLARE_FORMAT(bf16)
// legacy 32-element blocks (legacy.cpp)
GEMMA_DECLARE_FORMAT(q4_0)
GEMMA_DECLARE_FORMAT(q4_1)
GEMMA_DECLARE_FORMAT(q5_0)
GEMMA_DECLARE_FORMAT(q5_1)
GEMMA_DECLARE_FORMAT(q8_0)
GEMMA_DECLARE_FORMAT(q8_1)
// k-quants (kquants*.cpp)
GEMMA_DECLARE_FORMAT(q2_K)
GEMMA_DECLARE_FORMAT(q3_K)
GEMMA_DECLARE_FORMAT(q4_K)
GEMMA_DECLARE_FORMAT(q5_K)
GEMMA_DECLARE_FORMAT(q6_K)
GEMMA_DECLARE_FORMAT(q8_K)
// non-linear / lattice types (iq4.cpp, iq3.cpp, iq2.cpp)
GEMMA_DECLARE_FORMAT(iq4_nl)
GEMMA_DECLARE_FORMAT(iq4_xs)
GEMMA_DECLARE_FORMAT(iq3_xxs)
GEMMA_DECLARE_FORMAT(iq3_s)
GEMMA_DECLARE_FORMAT(iq2_s)
void dequantize_row_iq2_xxs(const void* src, float* dst, int64_t n);
void dequantize_row_iq2_xs(const void* src, float* dst, int64_t n);

#undef GEMMA_DECLARE_FORMAT

// Reference Q8_K activation quantizer for one row (ggml's quantize_row_q8_K_ref; x86 uses it too).
void quantize_row_q8_K_ref(const float* x, void* dst, int64_t n);

}  // namespace gemma
