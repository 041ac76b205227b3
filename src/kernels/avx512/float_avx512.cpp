// AVX-512 dot/gemm kernels for F32, F16 and BF16 weights (16 f32 lanes per FMA); F16 prompt batches widen the
// activations once per chunk so each step converts only the weights.
#include "kernels/avx512/float_tile.h"  // first: it includes <immintrin.h>

#include <cstdlib>
#include <new>

#include "kernels/kernels_internal.h"

namespace gemma::kernels::detail {
namespace {

using namespace avx512;

using KF16 = FloatKernel<Same<OpF16>, 4, 4>;
using KF16Wide = FloatKernel<F16xF32, 4, 6>;

// Activation rows of f16 widened to f32, exactly; the tail is converted under a mask.
void widen_f16_rows(int64_t n, const uint8_t* act, size_t arb, int64_t n_tok, float* dst) {
    for (int64_t t = 0; t < n_tok; ++t) {
        const auto* src = reinterpret_cast<const uint16_t*>(act + static_cast<size_t>(t) * arb);
        float* d = dst + t * n;
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(d + i, OpF16::load(src + i));
        if (i < n) {
            const int rem = static_cast<int>(n - i);
            _mm512_mask_storeu_ps(d + i, low_mask16(rem), OpF16::load_tail(src + i, rem));
        }
    }
}

// A per-thread buffer of widened activations. Hand-rolled rather than a std::vector: a library template instantiated
// in this AVX-512 unit could be merged with generic code's copy and run on a CPU without AVX-512.
struct Scratch {
    float* p = nullptr;
    size_t cap = 0;
    ~Scratch() { std::free(p); }
    float* get(size_t n) {
        if (n > cap) {
            std::free(p);
            p = static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64));
            cap = p != nullptr ? n : 0;
            if (p == nullptr) throw std::bad_alloc();
        }
        return p;
    }
};

// Tokens are taken in chunks of about 1 MiB of widened activations (whole tiles) so the scratch stays small for
// the 7B feed-forward rows; the chunking, like the tile driver's blocking, never changes a pair's arithmetic.
void gemm_f16(int64_t n, const void* W, size_t wrb, int64_t r0, int64_t r1, const void* act, size_t arb,
              int64_t n_tok, float* out, int64_t stride) {
    if (n_tok == 1) {
        avx2::gemm_tiled<KF16>(n, W, wrb, r0, r1, act, arb, n_tok, out, stride);
        return;
    }
    constexpr int64_t T = KF16Wide::kMaxT;
    const int64_t chunk = avx2::max64(T, static_cast<int64_t>((size_t{1} << 20) / (static_cast<size_t>(n) * 4)) / T * T);
    thread_local Scratch wide;
    const auto* ab = static_cast<const uint8_t*>(act);
    for (int64_t t0 = 0; t0 < n_tok; t0 += chunk) {
        const int64_t nt = avx2::min64(chunk, n_tok - t0);
        float* buf = wide.get(static_cast<size_t>(nt * n));
        widen_f16_rows(n, ab + static_cast<size_t>(t0) * arb, arb, nt, buf);
        avx2::gemm_tiled<KF16Wide>(n, W, wrb, r0, r1, buf, static_cast<size_t>(n) * 4, nt, out + t0 * stride,
                                   stride);
    }
}

template <typename K>
void install(KernelTable& t, TypeId id) {
    t.vec_dot[idx(id)] = avx2::vec_dot_tiled<K>;
    t.gemm[idx(id)] = avx2::gemm_tiled<K>;
}

}  // namespace

void fill_avx512_float(KernelTable& t) {
    install<FloatKernel<Same<OpF32>, 4, 4>>(t, TypeId::F32);
    t.vec_dot[idx(TypeId::F16)] = avx2::vec_dot_tiled<KF16>;
    t.gemm[idx(TypeId::F16)] = gemm_f16;
    install<FloatKernel<Same<OpBF16>, 4, 4>>(t, TypeId::BF16);
}

}  // namespace gemma::kernels::detail
