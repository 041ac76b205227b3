// CPU feature checks shared by every run-time dispatch (the kernels' ISA tables, the quantizers' batched search).
#pragma once

namespace gemma {

// The AVX2 translation units are compiled with -mavx2 -mfma -mf16c, so all three must be present to run them.
inline bool cpu_has_avx2() {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

}  // namespace gemma
