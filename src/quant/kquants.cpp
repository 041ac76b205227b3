// TEMPORARY stubs: replaced by the real implementation.
#include "quant/formats.h"
#include "core/error.h"
namespace gemma {
void dequantize_row_q2_K(const void*, float*, int64_t) { throw_error("q2_K: not implemented"); }
size_t quantize_q2_K(const float*, void*, int64_t, int64_t, const float*) { throw_error("q2_K: not implemented"); }
void dequantize_row_q3_K(const void*, float*, int64_t) { throw_error("q3_K: not implemented"); }
size_t quantize_q3_K(const float*, void*, int64_t, int64_t, const float*) { throw_error("q3_K: not implemented"); }
void dequantize_row_q4_K(const void*, float*, int64_t) { throw_error("q4_K: not implemented"); }
size_t quantize_q4_K(const float*, void*, int64_t, int64_t, const float*) { throw_error("q4_K: not implemented"); }
void dequantize_row_q5_K(const void*, float*, int64_t) { throw_error("q5_K: not implemented"); }
size_t quantize_q5_K(const float*, void*, int64_t, int64_t, const float*) { throw_error("q5_K: not implemented"); }
void dequantize_row_q6_K(const void*, float*, int64_t) { throw_error("q6_K: not implemented"); }
size_t quantize_q6_K(const float*, void*, int64_t, int64_t, const float*) { throw_error("q6_K: not implemented"); }
void dequantize_row_q8_K(const void*, float*, int64_t) { throw_error("q8_K: not implemented"); }
size_t quantize_q8_K(const float*, void*, int64_t, int64_t, const float*) { throw_error("q8_K: not implemented"); }
void quantize_row_q8_K_ref(const float*, void*, int64_t) { throw_error("q8_K: not implemented"); }
}
