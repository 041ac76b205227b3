// CPU feature checks shared by every run-time dispatch (the kernels' ISA tables, the quantizers' batched search).
#pragma once

#include <cpuid.h>

namespace gemma {

// F16C is read from CPUID (leaf 1, ECX bit 29) because clang 14's __builtin_cpu_supports has no "f16c".
inline bool cpu_has_f16c() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(1, &a, &b, &c, &d) != 0 && (c & (1u << 29)) != 0;
}

// The AVX2 translation units are compiled with -mavx2 -mfma -mf16c, so all three must be present to run them.
inline bool cpu_has_avx2() {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
}

}  // namespace gemma
