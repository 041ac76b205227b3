// The library's exp in scalar form (see kernels/attn_kernels.h): the operations the AVX2 kernel repeats lane by lane.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace gemma::kernels::exp_poly {

inline constexpr float kLog2e = 1.44269504088896341f;
inline constexpr float kLn2Hi = 0.693145751953125f;       // ln 2 with its low bits cleared: n * kLn2Hi is exact
inline constexpr float kLn2Lo = 1.42860682030941723e-6f;  // ln 2 - kLn2Hi
inline constexpr float kMinArg = -87.0f;                   // below: 0 (2^n would leave the normal range)
inline constexpr float kMaxArg = 88.0f;
// 1/k! for k = 7 .. 2: the Taylor polynomial of exp on |r| <= ln2/2 (truncation error < 1e-8 relative).
inline constexpr float kC[6] = {1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f};

// static: each TU keeps its own copy, so the FMA-compiled one in the AVX2 TU never serves generic code.
static inline float eval(float x) {
    if (!(x >= kMinArg)) return 0.0f;  // also NaN-free for -inf
    if (x > kMaxArg) x = kMaxArg;
    const float n = std::nearbyint(x * kLog2e);  // the default rounding mode: to nearest, ties to even
    float r = std::fma(n, -kLn2Hi, x);
    r = std::fma(n, -kLn2Lo, r);
    float p = kC[0];
    for (int k = 1; k < 6; ++k) p = std::fma(p, r, kC[k]);
    p = std::fma(p, r, 1.0f);
    p = std::fma(p, r, 1.0f);
    const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

}  // namespace gemma::kernels::exp_poly
