// The ggml tensor type ids and the one traits table that describes every type we read, write or compute with.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gemma {

// Ids are ggml's `enum ggml_type` (they are stored in GGUF files).
enum class TypeId : int32_t {
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
    IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
    I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
    TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};
inline constexpr int32_t kTypeIdCount = 43;  // GGML_TYPE_COUNT of the reference

// Dequantize `n` elements (a multiple of block_size) of one row.
using DequantizeRowFn = void (*)(const void* src, float* dst, int64_t n);
// The reference quantizer (what llama-quantize runs, ggml_quantize_chunk): nrows rows of n_per_row
// elements; `imatrix` (length n_per_row) may be null. Returns bytes written.
using QuantizeRowsFn = size_t (*)(const float* src, void* dst, int64_t nrows, int64_t n_per_row,
                                  const float* imatrix);

struct TypeTraits {
    TypeId id;
    const char* name;      // as llama.cpp prints it: "q4_K", "iq3_xxs", "f16"
    int32_t block_size;    // elements per block (1 for float types)
    int32_t type_size;     // bytes per block
    bool quantized;
    DequantizeRowFn dequantize_row;  // null where not supported
    QuantizeRowsFn quantize_rows;    // null where not supported (e.g. Q8_K: activations only)
    TypeId vec_dot_type;   // activation type llama.cpp's CPU matmul pairs with this weight type
};

// Traits of a known type id; null for unknown / removed / unsupported ids. Never throws.
const TypeTraits* find_type_traits(int32_t id);
// Traits of a type we know (asserts).
const TypeTraits& type_traits(TypeId id);
// Parse a type name ("q4_K", "Q4_K", "bf16"), case-insensitive.
std::optional<TypeId> type_from_name(std::string_view name);
const char* type_name(TypeId id);

// Bytes of a row of ne0 elements (ne0 must be a multiple of the block size).
size_t row_size(TypeId id, int64_t ne0);

}  // namespace gemma
