// TEMPORARY stubs: replaced by the real implementation.
#include "quant/formats.h"
#include "core/error.h"
namespace gemma {
void dequantize_row_iq4_nl(const void*, float*, int64_t) { throw_error("iq4_nl: not implemented"); }
size_t quantize_iq4_nl(const float*, void*, int64_t, int64_t, const float*) { throw_error("iq4_nl: not implemented"); }
void dequantize_row_iq4_xs(const void*, float*, int64_t) { throw_error("iq4_xs: not implemented"); }
size_t quantize_iq4_xs(const float*, void*, int64_t, int64_t, const float*) { throw_error("iq4_xs: not implemented"); }
}
