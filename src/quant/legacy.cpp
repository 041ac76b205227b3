// TEMPORARY stubs: replaced by the real implementation.
#include "quant/formats.h"
#include "core/error.h"
namespace gemma {
void dequantize_row_q4_0(const void*, float*, int64_t) { throw_error("q4_0: not implemented"); }
size_t quantize_q4_0(const float*, void*, int64_t, int64_t, const float*) { throw_error("q4_0: not implemented"); }
void dequantize_row_q4_1(const void*, float*, int64_t) { throw_error("q4_1: not implemented"); }
size_t quantize_q4_1(const float*, void*, int64_t, int64_t, const float*) { throw_error("q4_1: not implemented"); }
void dequantize_row_q5_0(const void*, float*, int64_t) { throw_error("q5_0: not implemented"); }
size_t quantize_q5_0(const float*, void*, int64_t, int64_t, const float*) { throw_error("q5_0: not implemented"); }
void dequantize_row_q5_1(const void*, float*, int64_t) { throw_error("q5_1: not implemented"); }
size_t quantize_q5_1(const float*, void*, int64_t, int64_t, const float*) { throw_error("q5_1: not implemented"); }
void dequantize_row_q8_0(const void*, float*, int64_t) { throw_error("q8_0: not implemented"); }
size_t quantize_q8_0(const float*, void*, int64_t, int64_t, const float*) { throw_error("q8_0: not implemented"); }
void dequantize_row_q8_1(const void*, float*, int64_t) { throw_error("q8_1: not implemented"); }
size_t quantize_q8_1(const float*, void*, int64_t, int64_t, const float*) { throw_error("q8_1: not implemented"); }
}
