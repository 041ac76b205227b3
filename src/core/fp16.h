// Exact fp16/bf16 <-> f32 conversions matching ggml's software path (round-to-nearest-even).
#pragma once
#include <cstdint>
#include <cstring>

namespace gemma {

inline uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

// IEEE binary16 round-to-nearest-even; overflow -> inf; NaN -> quiet NaN keeping the sign (0x7E00).
inline uint16_t fp32_to_fp16(float f) {
    const uint32_t x = f32_bits(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t abs = x & 0x7FFFFFFFu;
    if (abs > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u);
    if (abs >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds to >= 65520 -> inf
    if (abs < 0x38800000u) {  // subnormal half (or zero): scale so the hardware add does the rounding
        const float v = bits_f32(abs) + 0.5f;  // 0.5 = 2^-1: ulp of half subnormal is 2^-24, shift exponent
        return static_cast<uint16_t>(sign | (f32_bits(v) - 0x3F000000u));
    }
    const uint32_t mant_odd = (abs >> 13) & 1u;
    uint32_t r = abs + 0xC8000FFFu + mant_odd;  // rebias exponent (-112<<23) and round half to even
    return static_cast<uint16_t>(sign | (r >> 13));
}

inline float fp16_to_fp32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1Fu;
    const uint32_t mant = h & 0x3FFu;
    if (exp == 0) {
        if (mant == 0) return bits_f32(sign);
        // subnormal: mant * 2^-24
        const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
        return (sign ? -v : v);
    }
    if (exp == 31) return bits_f32(sign | 0x7F800000u | (mant << 13));
    return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

// bf16: upper half of an f32, rounded to nearest even; NaN is quieted.
inline uint16_t fp32_to_bf16(float f) {
    const uint32_t u = f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
    return static_cast<uint16_t>((u + (0x7FFFu + ((u >> 16) & 1u))) >> 16);
}

inline float bf16_to_fp32(uint16_t h) { return bits_f32(static_cast<uint32_t>(h) << 16); }

}  // namespace gemma
