// Kernel tests: every ISA the host supports against Ref, and Ref against a double-precision dequantized dot.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "kernels/kernels.h"
#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/types.h"

namespace gemma::kernels {
namespace {

// Every weight type with a dot product (the quant ladder plus the float types).
const TypeId kWeightTypes[] = {TypeId::F32,    TypeId::F16,    TypeId::BF16,    TypeId::Q4_0,  TypeId::Q4_1,
                               TypeId::Q5_0,   TypeId::Q5_1,   TypeId::Q8_0,    TypeId::Q2_K,  TypeId::Q3_K,
                               TypeId::Q4_K,   TypeId::Q5_K,   TypeId::Q6_K,    TypeId::IQ4_NL, TypeId::IQ4_XS,
                               TypeId::IQ3_XXS, TypeId::IQ3_S, TypeId::IQ2_S};

// Tolerances are relative to sum_i |w_i * a_i| (the size of the terms, so cancellation cannot hide errors).
struct Tolerance {
    double ref_vs_exact;  // Ref vec_dot vs a double-precision dot of the dequantized rows
    double isa_vs_ref;    // an ISA kernel vs Ref
};

// Ref vs exact: both see the same quants, so the gap is f32 rounding of per-block scales and of the sum over
// blocks (~1e-7 per block). An ISA kernel computes the same exact integer block sums and differs from Ref only
// in the f32 summation order. Types with a min term (d*q - dmin*m) round two larger terms before they cancel
// (10x looser). Float weights: Ref sums in double, SIMD in f32 lanes over up to ~2k elements.
constexpr Tolerance kTolPlain{2e-6, 2e-6};
constexpr Tolerance kTolWithMin{2e-5, 2e-5};
constexpr Tolerance kTolFloat{1e-6, 1e-5};

Tolerance tolerance(TypeId t) {
    switch (t) {
        case TypeId::F32: case TypeId::F16: case TypeId::BF16: return kTolFloat;
        case TypeId::Q4_1: case TypeId::Q5_1: case TypeId::Q2_K: case TypeId::Q4_K: case TypeId::Q5_K: return kTolWithMin;
        case TypeId::Q4_0: case TypeId::Q5_0: case TypeId::Q8_0: case TypeId::Q3_K: case TypeId::Q6_K:
        case TypeId::IQ4_NL: case TypeId::IQ4_XS: case TypeId::IQ3_XXS: case TypeId::IQ3_S: case TypeId::IQ2_S:
            return kTolPlain;
        default: ADD_FAILURE() << "no tolerance for " << type_name(t); return kTolPlain;
    }
}

// Restores the ISA a test started with.
struct IsaGuard {
    Isa saved = active_isa();
    ~IsaGuard() { set_isa(saved); }
};

std::vector<Isa> simd_isas() {
    std::vector<Isa> v;
    for (Isa isa : kAllIsas)
        if (isa != Isa::Ref && isa_supported(isa)) v.push_back(isa);  // an ISA the CPU lacks is skipped, not failed
    return v;
}

// Element counts: one block, odd block multiples, a realistic row. Float types also get ragged tails.
std::vector<int64_t> sizes_for(TypeId wt) {
    const int64_t bs = std::max<int64_t>(type_traits(wt).block_size, type_traits(type_traits(wt).vec_dot_type).block_size);
    if (bs == 1) return {1, 7, 8, 31, 33, 64, 127, 255, 257, 2048, 2051};
    if (bs == 32) return {32, 96, 224, 1056, 2048};
    return {256, 768, 2304, 4096};
}

// Smallest alignment a row of this type may have: float rows are read as float / uint16, blocks are packed.
size_t elem_align(TypeId t) { return type_traits(t).quantized ? 1 : static_cast<size_t>(type_traits(t).type_size); }

// A buffer whose data starts `misalign` bytes past a 64-byte boundary.
struct Buf {
    std::vector<uint8_t> raw;
    uint8_t* p = nullptr;
    Buf(size_t n, size_t misalign) : raw(n + 128) {
        auto base = reinterpret_cast<uintptr_t>(raw.data());
        p = raw.data() + ((64 - base % 64) % 64) + misalign;
    }
};

std::vector<float> random_floats(std::mt19937& rng, int64_t n, float scale) {
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = nd(rng);
    return v;
}

void put_fp16(uint8_t* p, float v) {
    const uint16_t h = fp32_to_fp16(v);
    std::memcpy(p, &h, 2);
}

// Random but valid weight bytes: every quant bit pattern (including extremes such as Q8_0's -128 or
// Q6_K's scale -128) with finite, moderate fp16 scales.
std::vector<uint8_t> random_weight_row(std::mt19937& rng, TypeId wt, int64_t n) {
    const TypeTraits& tt = type_traits(wt);
    std::vector<uint8_t> row(row_size(wt, n));
    if (!tt.quantized) {
        const auto f = random_floats(rng, n, 1.0f);
        tt.quantize_rows(f.data(), row.data(), 1, n, nullptr);
        return row;
    }
    for (auto& b : row) b = static_cast<uint8_t>(rng());
    std::uniform_real_distribution<float> ud(0.001f, 0.05f);
    std::vector<int> fp16_offsets;
    switch (wt) {
        case TypeId::Q4_1: case TypeId::Q5_1: case TypeId::Q4_K: case TypeId::Q5_K: fp16_offsets = {0, 2}; break;
        case TypeId::Q2_K: fp16_offsets = {80, 82}; break;
        case TypeId::Q3_K: fp16_offsets = {108}; break;
        case TypeId::Q6_K: fp16_offsets = {208}; break;
        default: fp16_offsets = {0}; break;
    }
    for (size_t b = 0; b < row.size(); b += static_cast<size_t>(tt.type_size))
        for (int off : fp16_offsets) put_fp16(row.data() + b + off, (rng() & 1) ? ud(rng) : -ud(rng));
    return row;
}

// The activation row as floats, decoded independently of the kernels.
std::vector<double> decode_act(TypeId at, const uint8_t* p, int64_t n) {
    std::vector<double> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        switch (at) {
            case TypeId::F32: { float f; std::memcpy(&f, p + 4 * i, 4); v[i] = f; break; }
            case TypeId::F16: { uint16_t h; std::memcpy(&h, p + 2 * i, 2); v[i] = fp16_to_fp32(h); break; }
            case TypeId::BF16: { uint16_t h; std::memcpy(&h, p + 2 * i, 2); v[i] = bf16_to_fp32(h); break; }
            case TypeId::Q8_0: case TypeId::Q8_1: {
                const size_t bsz = at == TypeId::Q8_0 ? sizeof(block_q8_0) : sizeof(block_q8_1);
                const uint8_t* b = p + static_cast<size_t>(i / 32) * bsz;
                uint16_t h; std::memcpy(&h, b, 2);
                const int8_t q = static_cast<int8_t>(b[bsz - 32 + i % 32]);
                v[i] = static_cast<double>(fp16_to_fp32(h)) * q;
                break;
            }
            case TypeId::Q8_K: {
                const auto* b = reinterpret_cast<const block_q8_K*>(p) + i / QK_K;
                float d; std::memcpy(&d, &b->d, 4);
                v[i] = static_cast<double>(d) * b->qs[i % QK_K];
                break;
            }
            default: ADD_FAILURE() << "unexpected activation type"; return v;
        }
    }
    return v;
}

// Calls a traits function that may still be a "not implemented" stub; false if it is.
template <typename Fn>
bool try_impl(Fn&& fn) {
    try {
        fn();
        return true;
    } catch (const Error& e) {
        if (std::string(e.what()).find("not implemented") == std::string::npos) throw;
        return false;
    }
}

std::vector<uint8_t> convert_act(Isa isa, TypeId wt, const float* x, int64_t n) {
    IsaGuard g;
    EXPECT_TRUE(set_isa(isa));
    std::vector<uint8_t> out(act_row_size(wt, n));
    convert_act_row(wt, x, out.data(), n);
    return out;
}

float dot_on(Isa isa, TypeId wt, int64_t n, const void* w, const void* a) {
    IsaGuard g;
    EXPECT_TRUE(set_isa(isa));
    float s = NAN;
    vec_dot(wt, n, &s, w, a);
    return s;
}

// Q8_1 stores s = fp16(d * sum q); the kernels use that rounded s for the weight offset m (Q4_1, Q5_1 keep
// m as the fp16 at byte 2), so the exact dot of dequantized values is off by sum m * (s - d * sum q).
double q8_1_sum_rounding(const uint8_t* w, int w_block_bytes, const uint8_t* a, int64_t n) {
    double c = 0.0;
    for (int64_t b = 0; b < n / 32; ++b) {
        uint16_t mh;
        std::memcpy(&mh, w + b * w_block_bytes + 2, 2);
        block_q8_1 y;
        std::memcpy(&y, a + b * sizeof(block_q8_1), sizeof y);
        int sum = 0;
        for (int8_t q : y.qs) sum += q;
        c += static_cast<double>(fp16_to_fp32(mh)) *
             (static_cast<double>(fp16_to_fp32(y.s)) - static_cast<double>(fp16_to_fp32(y.d)) * sum);
    }
    return c;
}

class KernelsByType : public ::testing::TestWithParam<TypeId> {};

std::string type_param_name(const ::testing::TestParamInfo<TypeId>& info) { return type_name(info.param); }

// Activations with realistic outliers (Gemma hidden states have a few large channels), and all-zero blocks.
std::vector<float> test_activations(std::mt19937& rng, int64_t n, int variant) {
    auto x = random_floats(rng, n, 1.0f);
    if (variant == 1) {
        for (int64_t i = 0; i < n; i += 37) x[i] *= 50.0f;
    } else if (variant == 2) {
        for (int64_t i = 0; i < std::min<int64_t>(n, 256); ++i) x[i] = 0.0f;  // a zero block (max = 0 path)
        for (int64_t i = 256; i < n; i += 3) x[i] = std::ldexp(x[i], static_cast<int>(rng() % 22) - 16);  // tiny to large, no fp16 overflow
    }
    return x;
}

TEST_P(KernelsByType, ConvertActBitIdenticalToRef) {
    const TypeId wt = GetParam();
    std::mt19937 rng(1234 + static_cast<int>(wt));
    for (Isa isa : simd_isas()) {
        for (int64_t n : sizes_for(wt)) {
            for (int variant = 0; variant < 3; ++variant) {
                const auto x = test_activations(rng, n, variant);
                Buf src(x.size() * 4, 4 * static_cast<size_t>(variant));  // float-aligned, not vector-aligned
                std::memcpy(src.p, x.data(), x.size() * 4);
                const auto* xs = reinterpret_cast<const float*>(src.p);
                const auto want = convert_act(Isa::Ref, wt, xs, n);
                IsaGuard g;
                ASSERT_TRUE(set_isa(isa));
                Buf dst(want.size(), elem_align(type_traits(wt).vec_dot_type) * (1 + variant));  // unaligned output
                convert_act_row(wt, xs, dst.p, n);
                for (size_t i = 0; i < want.size(); ++i)
                    ASSERT_EQ(want[i], dst.p[i]) << isa_name(isa) << " " << type_name(wt) << " n=" << n
                                                 << " variant=" << variant << " first differing byte " << i;
            }
        }
    }
}

TEST(Kernels, ConvertQ8KMatchesQuantReference) {
    std::mt19937 rng(77);
    const int64_t n = 1024;
    const auto x = test_activations(rng, n, 1);
    std::vector<uint8_t> want(row_size(TypeId::Q8_K, n));
    if (!try_impl([&] { quantize_row_q8_K_ref(x.data(), want.data(), n); }))
        GTEST_SKIP() << "quantize_row_q8_K_ref not implemented yet";
    const auto got = convert_act(Isa::Ref, TypeId::Q4_K, x.data(), n);
    EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size()));
}

TEST(Kernels, ConvertQ8_0UsesX86Rounding) {
    // 127/max scaling with ties to even: a block whose max is 127 scales by exactly 1, so 2.5 -> 2, 3.5 -> 4
    // and -0.5 -> 0 (ggml's scalar ref would round half away from zero).
    std::vector<float> x(32, 0.0f);
    x[0] = 127.0f; x[1] = 2.5f; x[2] = 3.5f; x[3] = -0.5f; x[4] = -1.5f;
    for (Isa isa : std::vector<Isa>{Isa::Ref, Isa::Avx2}) {
        if (!isa_supported(isa)) continue;
        const auto y = convert_act(isa, TypeId::Q8_0, x.data(), 32);
        block_q8_0 b;
        std::memcpy(&b, y.data(), sizeof b);
        EXPECT_EQ(b.qs[0], 127);
        EXPECT_EQ(b.qs[1], 2);
        EXPECT_EQ(b.qs[2], 4);
        EXPECT_EQ(b.qs[3], 0);
        EXPECT_EQ(b.qs[4], -2);
        EXPECT_EQ(fp16_to_fp32(b.d), 1.0f);
        const auto y1 = convert_act(isa, TypeId::Q4_1, x.data(), 32);
        block_q8_1 b1;
        std::memcpy(&b1, y1.data(), sizeof b1);
        EXPECT_EQ(fp16_to_fp32(b1.s), 127.0f + 2 + 4 + 0 - 2);
    }
}

TEST_P(KernelsByType, RefVecDotMatchesDoubleDequantDot) {
    const TypeId wt = GetParam();
    const TypeTraits& tt = type_traits(wt);
    std::mt19937 rng(99 + static_cast<int>(wt));
    for (int64_t n : sizes_for(wt)) {
        for (int variant = 0; variant < 3; ++variant) {
            const auto w = random_weight_row(rng, wt, n);
            std::vector<float> wf(static_cast<size_t>(n));
            if (!try_impl([&] { tt.dequantize_row(w.data(), wf.data(), n); }))
                GTEST_SKIP() << type_name(wt) << " dequantizer not implemented yet";
            const auto x = test_activations(rng, n, variant);
            const auto a = convert_act(Isa::Ref, wt, x.data(), n);
            const auto av = decode_act(tt.vec_dot_type, a.data(), n);
            double exact = 0.0, mag = 0.0;
            for (int64_t i = 0; i < n; ++i) {
                exact += static_cast<double>(wf[i]) * av[i];
                mag += std::fabs(static_cast<double>(wf[i]) * av[i]);
            }
            if (tt.vec_dot_type == TypeId::Q8_1) exact += q8_1_sum_rounding(w.data(), tt.type_size, a.data(), n);
            const float got = dot_on(Isa::Ref, wt, n, w.data(), a.data());
            const double tol = tolerance(wt).ref_vs_exact * mag + 1e-30;
            EXPECT_NEAR(got, exact, tol) << type_name(wt) << " n=" << n << " variant=" << variant << " mag=" << mag;
        }
    }
}

// A quantizer-made row (when the quantizer exists) dotted on every ISA agrees with Ref.
TEST_P(KernelsByType, QuantizedRowsAgreeAcrossIsas) {
    const TypeId wt = GetParam();
    const TypeTraits& tt = type_traits(wt);
    std::mt19937 rng(5 + static_cast<int>(wt));
    const int64_t n = 2048;
    const auto wf = random_floats(rng, n, 0.02f);
    std::vector<uint8_t> w(row_size(wt, n));
    if (!try_impl([&] { tt.quantize_rows(wf.data(), w.data(), 1, n, nullptr); }))
        GTEST_SKIP() << type_name(wt) << " quantizer not implemented yet";
    const auto x = test_activations(rng, n, 1);
    const auto a = convert_act(Isa::Ref, wt, x.data(), n);
    const float want = dot_on(Isa::Ref, wt, n, w.data(), a.data());
    double mag = 0.0;
    for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(wf[i]) * x[i]);
    // The quantized dot approximates the float one (a sanity check of the quantizer pairing, loose).
    double fdot = 0.0;
    for (int64_t i = 0; i < n; ++i) fdot += static_cast<double>(wf[i]) * x[i];
    EXPECT_NEAR(want, fdot, 0.25 * mag) << type_name(wt);
    for (Isa isa : simd_isas()) {
        const float got = dot_on(isa, wt, n, w.data(), a.data());
        EXPECT_NEAR(got, want, 2 * kTolFloat.isa_vs_ref * mag) << isa_name(isa) << " " << type_name(wt);
    }
}

TEST_P(KernelsByType, IsaVecDotMatchesRef) {
    const TypeId wt = GetParam();
    const TypeTraits& tt = type_traits(wt);
    std::mt19937 rng(4321 + static_cast<int>(wt));
    const double rel = tolerance(wt).isa_vs_ref;
    for (Isa isa : simd_isas()) {
        for (int64_t n : sizes_for(wt)) {
            for (int variant = 0; variant < 3; ++variant) {
                const auto w = random_weight_row(rng, wt, n);
                const auto x = test_activations(rng, n, variant);
                const auto a = convert_act(Isa::Ref, wt, x.data(), n);
                // Misaligned on purpose (to the element size for float rows, which are read as float / uint16).
                Buf wb(w.size(), elem_align(wt) * (1 + variant)), ab(a.size(), elem_align(tt.vec_dot_type) * (3 - variant));
                std::memcpy(wb.p, w.data(), w.size());
                std::memcpy(ab.p, a.data(), a.size());
                const float want = dot_on(Isa::Ref, wt, n, wb.p, ab.p);
                const float got = dot_on(isa, wt, n, wb.p, ab.p);
                // mag = sum |w_i a_i| over dequantized values; without a dequantizer, a coarse bound.
                std::vector<float> wf(static_cast<size_t>(n));
                double mag = 0.0;
                if (try_impl([&] { tt.dequantize_row(w.data(), wf.data(), n); })) {
                    const auto av = decode_act(tt.vec_dot_type, a.data(), n);
                    for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(wf[i]) * av[i]);
                } else {
                    mag = std::fabs(want) * 100.0 + 1e-3;
                }
                EXPECT_NEAR(got, want, rel * mag + 1e-30)
                    << isa_name(isa) << " " << type_name(wt) << " n=" << n << " variant=" << variant;
            }
        }
    }
}

TEST_P(KernelsByType, GemmEqualsVecDotAndIgnoresRowSplit) {
    const TypeId wt = GetParam();
    std::mt19937 rng(777 + static_cast<int>(wt));
    std::vector<Isa> isas = simd_isas();
    isas.insert(isas.begin(), Isa::Ref);
    const int64_t n = sizes_for(wt)[1];
    const int64_t rows = 11, max_tok = 11;  // past the widest tile (8 tokens) into a second one
    const size_t wrb = row_size(wt, n), arb = act_row_size(wt, n);
    Buf W(wrb * rows, 2 * elem_align(wt)), A(arb * max_tok, elem_align(type_traits(wt).vec_dot_type));
    for (int64_t r = 0; r < rows; ++r) {
        const auto w = random_weight_row(rng, wt, n);
        std::memcpy(W.p + r * wrb, w.data(), wrb);
    }
    for (int64_t t = 0; t < max_tok; ++t) {
        const auto x = test_activations(rng, n, static_cast<int>(t % 2));
        const auto a = convert_act(Isa::Ref, wt, x.data(), n);
        std::memcpy(A.p + t * arb, a.data(), arb);
    }
    for (Isa isa : isas) {
        IsaGuard g;
        ASSERT_TRUE(set_isa(isa));
        for (int64_t n_tok : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{7}, int64_t{9}, max_tok}) {
            const int64_t stride = rows + 3;
            std::vector<float> full(static_cast<size_t>(stride * n_tok), -1.0f), split = full;
            gemm(wt, n, W.p, wrb, 0, rows, A.p, arb, n_tok, full.data(), stride);
            // An uneven split into [0,3), [3,4), [4,rows): every row lands in a different tile position.
            for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, 3}, {3, 4}, {4, rows}})
                gemm(wt, n, W.p, wrb, r0, r1, A.p, arb, n_tok, split.data(), stride);
            for (int64_t t = 0; t < n_tok; ++t) {
                for (int64_t r = 0; r < rows; ++r) {
                    float s = NAN;
                    vec_dot(wt, n, &s, W.p + r * wrb, A.p + t * arb);
                    const size_t o = static_cast<size_t>(t * stride + r);
                    ASSERT_EQ(f32_bits(full[o]), f32_bits(s))
                        << isa_name(isa) << " " << type_name(wt) << " r=" << r << " t=" << t << " n_tok=" << n_tok;
                    ASSERT_EQ(f32_bits(split[o]), f32_bits(s)) << isa_name(isa) << " split r=" << r << " t=" << t;
                }
                for (int64_t r = rows; r < stride; ++r) ASSERT_EQ(full[static_cast<size_t>(t * stride + r)], -1.0f);
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, KernelsByType, ::testing::ValuesIn(kWeightTypes), type_param_name);

TEST(Kernels, IsaSelection) {
    IsaGuard g;
    EXPECT_TRUE(isa_supported(Isa::Ref));
    EXPECT_TRUE(set_isa(Isa::Ref));
    EXPECT_EQ(active_isa(), Isa::Ref);
    EXPECT_STREQ(isa_name(Isa::Ref), "ref");
    EXPECT_STREQ(isa_name(Isa::Avx2), "avx2");
    EXPECT_EQ(set_isa(Isa::Avx2), isa_supported(Isa::Avx2));
    EXPECT_STREQ(isa_name(Isa::Avx2Vnni), "avx2vnni");
    EXPECT_EQ(set_isa(Isa::Avx2Vnni), isa_supported(Isa::Avx2Vnni));
    if (isa_supported(Isa::Avx2Vnni)) {
        EXPECT_TRUE(isa_supported(Isa::Avx2));  // VNNI is an extension of it
    }
    EXPECT_STREQ(isa_name(Isa::Avx512), "avx512");
    EXPECT_EQ(set_isa(Isa::Avx512), isa_supported(Isa::Avx512));
    if (isa_supported(Isa::Avx512)) {
        EXPECT_TRUE(isa_supported(Isa::Avx2));  // it keeps AVX2's kernels for the types it does not cover
    }
    EXPECT_STREQ(isa_name(Isa::Amx), "amx");
    EXPECT_EQ(set_isa(Isa::Amx), isa_supported(Isa::Amx));
    if (isa_supported(Isa::Amx)) {
        EXPECT_TRUE(isa_supported(Isa::Avx512));  // short calls and every other kernel are AVX-512's
    }
    EXPECT_EQ(act_row_size(TypeId::Q4_K, 512), 2 * sizeof(block_q8_K));
    EXPECT_EQ(act_row_size(TypeId::Q4_0, 64), 2 * sizeof(block_q8_0));
    EXPECT_EQ(act_row_size(TypeId::F16, 10), 20u);
}

}  // namespace
}  // namespace gemma::kernels
