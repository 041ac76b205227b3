// AVX2 activation converters (Q8_0, Q8_1, Q8_K, F16, BF16), bit-identical to the scalar ones in ref/.
#include "kernels/avx2/avx2_common.h"
#include "kernels/kernels_internal.h"
#include "quant/blocks.h"

namespace gemma::kernels::detail {
namespace {

using namespace avx2;

inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

inline float hmax_ps(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

// 32 int32 lanes (4 vectors) -> 32 int8 in element order (packs interleave 128-bit lanes; the permute undoes it).
inline __m256i pack_32(__m256i i0, __m256i i1, __m256i i2, __m256i i3) {
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

inline uint16_t f32_to_fp16_bits(float f) {
    return static_cast<uint16_t>(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0));
}

// llama.cpp's AVX2 quantize_row_q8_0/q8_1: id = 127/max, products rounded half to even.
template <bool kWithSum>
void q8_x86_block(const float* x, uint16_t* d_out, uint16_t* s_out, int8_t* qs) {
    __m256 v[4];
    for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(x + 8 * k);
    const __m256 m = _mm256_max_ps(_mm256_max_ps(abs_ps(v[0]), abs_ps(v[1])), _mm256_max_ps(abs_ps(v[2]), abs_ps(v[3])));
    const float amax = hmax_ps(m);
    const float d = amax / 127.f;
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    const __m256 mul = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; ++k)
        q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), pack_32(q[0], q[1], q[2], q[3]));
    const uint16_t dh = f32_to_fp16_bits(d);
    std::memcpy(d_out, &dh, 2);
    if constexpr (kWithSum) {
        const int sum = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
        const uint16_t sh = f32_to_fp16_bits(d * static_cast<float>(sum));
        std::memcpy(s_out, &sh, 2);
    }
}

void convert_q8_0_avx2(const float* x, void* dst, int64_t n) {
    auto* y = static_cast<block_q8_0*>(dst);
    for (int64_t i = 0; i < n / QK8_0; ++i) q8_x86_block<false>(x + i * QK8_0, &y[i].d, nullptr, y[i].qs);
}

void convert_q8_1_avx2(const float* x, void* dst, int64_t n) {
    auto* y = static_cast<block_q8_1*>(dst);
    for (int64_t i = 0; i < n / QK8_1; ++i) q8_x86_block<true>(x + i * QK8_1, &y[i].d, &y[i].s, y[i].qs);
}

// quantize_row_q8_K_ref vectorized: same max (the first element of largest magnitude, with its sign),
// same iscale = -127/max, same round-half-even of iscale*x, same d = 1/iscale.
void convert_q8_K_avx2(const float* x, void* dst, int64_t n) {
    auto* y = static_cast<block_q8_K*>(dst);
    for (int64_t i = 0; i < n / QK_K; ++i, x += QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < QK_K; k += 8) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + k)));
        const float amax = hmax_ps(m);
        if (amax == 0.0f) {
            std::memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        int first = 0;
        while (!(x[first] == amax || x[first] == -amax)) ++first;
        const float iscale = -127.f / x[first];
        const __m256 mul = _mm256_set1_ps(iscale);
        const __m256i m127 = _mm256_set1_epi32(127);
        for (int k = 0; k < QK_K; k += 32) {
            __m256i q[4];
            for (int c = 0; c < 4; ++c) {
                const __m256 p = _mm256_mul_ps(_mm256_loadu_ps(x + k + 8 * c), mul);
                q[c] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_round_ps(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)), m127);
            }
            const __m256i packed = pack_32(q[0], q[1], q[2], q[3]);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + k), packed);
            // Sums of 16 signed bytes via SAD on the bytes biased by 128: each 64-bit lane sums 8 bytes.
            const __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(packed, _mm256_set1_epi8(static_cast<char>(0x80))),
                                                _mm256_setzero_si256());
            alignas(32) int64_t s8[4];
            _mm256_store_si256(reinterpret_cast<__m256i*>(s8), sad);
            y[i].bsums[k / 16] = static_cast<int16_t>(s8[0] + s8[1] - 16 * 128);
            y[i].bsums[k / 16 + 1] = static_cast<int16_t>(s8[2] + s8[3] - 16 * 128);
        }
        y[i].d = 1 / iscale;
    }
}

// Hardware RNE; matches fp32_to_fp16 for every non-NaN input (NaN payloads may differ).
void convert_f16_avx2(const float* x, void* dst, int64_t n) {
    auto* h = static_cast<uint8_t*>(dst);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(h + 2 * i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) {
        const uint16_t v = f32_to_fp16_bits(x[i]);
        std::memcpy(h + 2 * i, &v, 2);
    }
}

inline uint16_t bf16_scalar(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
    return static_cast<uint16_t>((u + (0x7FFFu + ((u >> 16) & 1u))) >> 16);
}

// The same integer round-to-nearest-even as fp32_to_bf16, NaNs quieted the same way.
void convert_bf16_avx2(const float* x, void* dst, int64_t n) {
    auto* h = static_cast<uint8_t*>(dst);
    int64_t i = 0;
    const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF), inf = _mm256_set1_epi32(0x7F800000);
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7FFF), quiet = _mm256_set1_epi32(0x40);
    for (; i + 16 <= n; i += 16) {
        __m256i r[2];
        for (int c = 0; c < 2; ++c) {
            const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i + 8 * c));
            const __m256i hi = _mm256_srli_epi32(u, 16);
            const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(bias, _mm256_and_si256(hi, one))), 16);
            const __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
            r[c] = _mm256_blendv_epi8(rounded, _mm256_or_si256(hi, quiet), is_nan);
        }
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), 0xD8);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + 2 * i), packed);
    }
    for (; i < n; ++i) {
        const uint16_t v = bf16_scalar(x[i]);
        std::memcpy(h + 2 * i, &v, 2);
    }
}

}  // namespace

void fill_avx2_convert(KernelTable& t) {
    t.convert[idx(TypeId::Q8_0)] = convert_q8_0_avx2;
    t.convert[idx(TypeId::Q8_1)] = convert_q8_1_avx2;
    t.convert[idx(TypeId::Q8_K)] = convert_q8_K_avx2;
    t.convert[idx(TypeId::F16)] = convert_f16_avx2;
    t.convert[idx(TypeId::BF16)] = convert_bf16_avx2;
}

}  // namespace gemma::kernels::detail
