// ggml's rounding helper used by every reference quantizer (round half to even via the 1.5*2^23 trick).
#pragma once
#include <cstdint>
#include <cstring>

namespace gemma {

// Valid for |f| <= 4194303; exactly what ggml's nearest_int computes (no FMA, float add).
inline int nearest_int(float fval) {
    const float v = fval + 12582912.f;  // the float add does the rounding (no fast-math in this project)
    int32_t i;
    std::memcpy(&i, &v, sizeof(i));
    return (i & 0x007fffff) - 0x00400000;
}

}  // namespace gemma
