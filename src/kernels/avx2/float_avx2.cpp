// AVX2 dot/gemm kernels for F32, F16 and BF16 weights against activations of the same type.
#include "kernels/avx2/avx2_common.h"
#include "kernels/avx2/tile_driver.h"
#include "kernels/kernels_internal.h"

namespace gemma::kernels::detail {
namespace {

using namespace avx2;

struct F32 {
    using T = float;
    static __m256 load8(const T* p) { return _mm256_loadu_ps(p); }
    static float load1(const T* p) { return *p; }
};

struct F16 {
    using T = uint16_t;
    static __m256 load8(const T* p) { return _mm256_cvtph_ps(loadu128(p)); }
    static float load1(const T* p) { return fp16_to_f32(*p); }
};

struct BF16 {
    using T = uint16_t;
    static __m256 load8(const T* p) {
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(loadu128(p)), 16));
    }
    static float load1(const T* p) {
        const uint32_t u = static_cast<uint32_t>(*p) << 16;
        float f;
        std::memcpy(&f, &u, 4);
        return f;
    }
};

// Per (row, token): one 8-lane FMA accumulator over whole groups of 8, the fixed horizontal sum, then the
// ragged tail added in order. Rows are any length (attention multiplies by V^T rows of n_kv elements).
template <typename F>
struct FloatKernel {
    using T = typename F::T;
    static constexpr int kMaxR = 4;
    static constexpr int kMaxT = 2;

    template <int R, int TT>
    static void tile(int64_t n, const uint8_t* w, size_t wrb, const uint8_t* a, size_t arb, float* out,
                     int64_t stride, const uint8_t* pf_end) {
        const T* wr[R];
        const T* at[TT];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) wr[r] = reinterpret_cast<const T*>(w + r * wrb);
#pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) at[t] = reinterpret_cast<const T*>(a + t * arb);
        __m256 acc[R][TT];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
            for (int t = 0; t < TT; ++t) acc[r][t] = _mm256_setzero_ps();
        const int64_t n8 = n & ~int64_t{7};
        const size_t row_len = static_cast<size_t>(n) * sizeof(T);
        for (int64_t i = 0; i < n8; i += 8) {
            if (pf_end) prefetch_block_rows<R, 8 * sizeof(T)>(w, wrb, row_len, i / 8, pf_end);
            __m256 wv[R];
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) wv[r] = F::load8(wr[r] + i);
#pragma GCC unroll 8
            for (int t = 0; t < TT; ++t) {
                const __m256 av = F::load8(at[t] + i);
#pragma GCC unroll 8
                for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(wv[r], av, acc[r][t]);
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < TT; ++t)
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
                float s = hsum_ps(acc[r][t]);
                for (int64_t i = n8; i < n; ++i) s += F::load1(wr[r] + i) * F::load1(at[t] + i);
                out[t * stride + r] = s;
            }
    }
};

}  // namespace

void fill_avx2_float(KernelTable& t) {
    install_tiled<FloatKernel<F32>>(t, TypeId::F32);
    install_tiled<FloatKernel<F16>>(t, TypeId::F16);
    install_tiled<FloatKernel<BF16>>(t, TypeId::BF16);
}

}  // namespace gemma::kernels::detail
