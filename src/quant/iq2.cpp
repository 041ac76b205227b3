// TEMPORARY stubs: replaced by the real implementation.
#include "quant/formats.h"
#include "core/error.h"
namespace gemma {
void dequantize_row_iq2_s(const void*, float*, int64_t) { throw_error("iq2_s: not implemented"); }
size_t quantize_iq2_s(const float*, void*, int64_t, int64_t, const float*) { throw_error("iq2_s: not implemented"); }
void dequantize_row_iq2_xxs(const void*, float*, int64_t) { throw_error("iq2_xxs: not implemented"); }
void dequantize_row_iq2_xs(const void*, float*, int64_t) { throw_error("iq2_xs: not implemented"); }
}
