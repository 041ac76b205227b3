// The SIMD kernels that are not bit-identical to Ref (float weights; IQ3 on AVX512-VBMI) against scalar models of
// their own arithmetic, lane by lane: each must equal its model bit for bit, for single rows and whole batches.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "kernels/kernels.h"
#include "kernels/kernels_internal.h"
#include "quant/blocks.h"
#include "quant/iq_tables.h"
#include "quant/types.h"

namespace gemma::kernels {
namespace {

// The fixed horizontal sums of the kernels' vector accumulators: halves added lane by lane down to 4 lanes,
// then (0 + 2) + (1 + 3).
float hsum8(const float* v) {
    float s[4];
    for (int j = 0; j < 4; ++j) s[j] = v[j] + v[j + 4];
    const float lo = s[0] + s[2], hi = s[1] + s[3];
    return lo + hi;
}

float hsum16(const float* v) {
    float h[8];
    for (int j = 0; j < 8; ++j) h[j] = v[j] + v[j + 8];
    return hsum8(h);
}

float widen(TypeId t, const uint8_t* p, int64_t i) {
    if (t == TypeId::F32) {
        float f;
        std::memcpy(&f, p + 4 * i, 4);
        return f;
    }
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    return t == TypeId::F16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
}

// AVX2 float kernels: 8 lanes, lane l fuses w[i+l] * a[i+l] over whole groups of 8; after the horizontal sum, the
// tail's products are rounded and added one by one.
float float_lanes8(TypeId t, int64_t n, const uint8_t* w, const uint8_t* a) {
    float acc[8] = {};
    const int64_t n8 = n / 8 * 8;
    for (int64_t i = 0; i < n8; i += 8)
        for (int l = 0; l < 8; ++l) acc[l] = std::fma(widen(t, w, i + l), widen(t, a, i + l), acc[l]);
    float s = hsum8(acc);
    for (int64_t i = n8; i < n; ++i) {
        const float p = widen(t, w, i) * widen(t, a, i);
        s = s + p;
    }
    return s;
}

// AVX-512 float kernels: 16 lanes, the tail as one zero-padded step. F32/F16 steps are 16 elements, lane l taking
// element i+l; BF16 steps are 32, lane l fusing its odd element 2l+1 first, then its even one (vdpbf16ps's order).
float float_lanes16(TypeId t, int64_t n, const uint8_t* w, const uint8_t* a) {
    float acc[16] = {};
    auto at = [&](const uint8_t* p, int64_t i) { return i < n ? widen(t, p, i) : 0.0f; };
    if (t == TypeId::BF16) {
        for (int64_t i = 0; i < n; i += 32)
            for (int l = 0; l < 16; ++l) {
                acc[l] = std::fma(at(w, i + 2 * l + 1), at(a, i + 2 * l + 1), acc[l]);
                acc[l] = std::fma(at(w, i + 2 * l), at(a, i + 2 * l), acc[l]);
            }
    } else {
        for (int64_t i = 0; i < n; i += 16)
            for (int l = 0; l < 16; ++l) acc[l] = std::fma(at(w, i + l), at(a, i + l), acc[l]);
    }
    return hsum16(acc);
}

int lanes_of(Isa isa) { return isa == Isa::Avx512 || isa == Isa::Amx ? 16 : 8; }

std::vector<uint8_t> float_row(std::mt19937& rng, TypeId t, int64_t n, float scale) {
    std::normal_distribution<float> nd(0.0f, scale);
    const size_t es = t == TypeId::F32 ? 4 : 2;
    std::vector<uint8_t> v(static_cast<size_t>(n) * es);
    for (int64_t i = 0; i < n; ++i) {
        // Wide dynamic range: large products beside small ones make every rounding step count.
        const float x = nd(rng) * std::ldexp(1.0f, static_cast<int>(rng() % 9) - 4);
        if (t == TypeId::F32) std::memcpy(&v[4 * i], &x, 4);
        else {
            const uint16_t h = t == TypeId::F16 ? fp32_to_fp16(x) : fp32_to_bf16(x);
            std::memcpy(&v[2 * i], &h, 2);
        }
    }
    return v;
}

std::string where(Isa isa, TypeId t, int64_t n, int64_t r, int64_t tok) {
    return std::string(isa_name(isa)) + " " + type_name(t) + " n=" + std::to_string(n) + " row " + std::to_string(r) +
           " token " + std::to_string(tok);
}

TEST(LaneRefs, FloatKernelsEqualTheirLaneModelBitForBit) {
    const Isa saved = active_isa();
    std::mt19937 rng(31);
    for (Isa isa : kAllIsas) {
        if (isa == Isa::Ref || !set_isa(isa)) continue;
        for (TypeId t : {TypeId::F32, TypeId::F16, TypeId::BF16}) {
            const size_t es = t == TypeId::F32 ? 4 : 2;
            for (int64_t n : {1, 7, 16, 31, 33, 64, 255, 2048, 2051, 4113}) {
                const int64_t rows = 5, n_tok = 9;
                std::vector<uint8_t> w, a;
                for (int64_t r = 0; r < rows; ++r) {
                    const auto row = float_row(rng, t, n, 1.0f);
                    w.insert(w.end(), row.begin(), row.end());
                }
                for (int64_t k = 0; k < n_tok; ++k) {
                    const auto row = float_row(rng, t, n, 0.5f);
                    a.insert(a.end(), row.begin(), row.end());
                }
                const size_t rb = static_cast<size_t>(n) * es;
                // Rows split in two calls, as threads split them.
                std::vector<float> out(static_cast<size_t>(rows * n_tok), NAN);
                gemm(t, n, w.data(), rb, 0, 2, a.data(), rb, n_tok, out.data(), rows);
                gemm(t, n, w.data(), rb, 2, rows, a.data(), rb, n_tok, out.data(), rows);
                for (int64_t tok = 0; tok < n_tok; ++tok)
                    for (int64_t r = 0; r < rows; ++r) {
                        const uint8_t* wr = w.data() + r * rb;
                        const uint8_t* ar = a.data() + tok * rb;
                        const float want = lanes_of(isa) == 16 ? float_lanes16(t, n, wr, ar) : float_lanes8(t, n, wr, ar);
                        ASSERT_EQ(std::bit_cast<uint32_t>(out[static_cast<size_t>(tok * rows + r)]),
                                  std::bit_cast<uint32_t>(want))
                            << where(isa, t, n, r, tok) << " (gemm)";
                        float s = NAN;
                        vec_dot(t, n, &s, wr, ar);
                        ASSERT_EQ(std::bit_cast<uint32_t>(s), std::bit_cast<uint32_t>(want)) << where(isa, t, n, r, tok);
                    }
            }
        }
    }
    set_isa(saved);
}

// A super-block's 256 signed weights (grid byte and sign, as ggml's format defines them), its 8 odd sub-block
// scales and the float scale the kernel folds them into.
struct IqInts {
    int v[QK_K];
    int scale[8];
    float d;
};

IqInts ints_iq3_xxs(const block_iq3_xxs& b) {
    IqInts out{};
    for (int ib = 0; ib < 8; ++ib) {
        uint32_t aux;
        std::memcpy(&aux, b.qs + QK_K / 4 + 4 * ib, 4);
        out.scale[ib] = static_cast<int>(2 * (aux >> 28) + 1);
        for (int l = 0; l < 4; ++l) {
            const uint8_t signs = ksigns_iq2xs[(aux >> (7 * l)) & 127];
            for (int m = 0; m < 8; ++m) {
                const uint32_t g = iq3xxs_grid[b.qs[8 * ib + 2 * l + m / 4]];
                const int v = static_cast<uint8_t>(g >> (8 * (m % 4)));
                out.v[32 * ib + 8 * l + m] = (signs >> m) & 1 ? -v : v;
            }
        }
    }
    out.d = fp16_to_fp32(b.d) * 0.25f;  // the format's 1/4, a power of two
    return out;
}

IqInts ints_iq3_s(const block_iq3_s& b) {
    IqInts out{};
    for (int ib = 0; ib < 8; ++ib) {
        out.scale[ib] = 2 * ((b.scales[ib / 2] >> (4 * (ib % 2))) & 0xF) + 1;
        for (int k = 0; k < 8; ++k) {
            const uint32_t g = iq3s_grid[b.qs[8 * ib + k] | (((b.qh[ib] >> k) & 1) << 8)];
            for (int j = 0; j < 4; ++j) {
                const int e = 32 * ib + 4 * k + j, v = static_cast<uint8_t>(g >> (8 * j));
                out.v[e] = (b.signs[e / 8] >> (e % 8)) & 1 ? -v : v;
            }
        }
    }
    out.d = fp16_to_fp32(b.d);
    return out;
}

// The VBMI kernels: per super-block, 16 int32 lanes, lane j summing scale x weight x activation over elements
// 64p + 4j + i (p, i < 4) exactly; one fused multiply-add of each lane by d * d8 into 16 float lanes; hsum16.
template <typename Block>
float iq3_lanes16(IqInts (*ints)(const Block&), int64_t n, const uint8_t* w, const uint8_t* a) {
    float acc[16] = {};
    for (int64_t b = 0; b < n / QK_K; ++b) {
        Block x;
        block_q8_K y;
        std::memcpy(&x, w + b * sizeof x, sizeof x);
        std::memcpy(&y, a + b * sizeof y, sizeof y);
        const IqInts q = ints(x);
        const float dd = q.d * y.d;
        for (int j = 0; j < 16; ++j) {
            int32_t s = 0;
            for (int p = 0; p < 4; ++p)
                for (int i = 0; i < 4; ++i) {
                    const int e = 64 * p + 4 * j + i;
                    s += q.scale[e / 32] * q.v[e] * y.qs[e];
                }
            acc[j] = std::fma(static_cast<float>(s), dd, acc[j]);
        }
    }
    return hsum16(acc);
}

template <typename Block>
void check_iq3(const detail::KernelTable& tab, TypeId t, IqInts (*ints)(const Block&), const char* what) {
    std::mt19937 rng(17);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::uniform_real_distribution<float> ud(0.001f, 0.05f);
    for (int64_t n : {256, 768, 2048, 4096}) {
        const int64_t rows = 3, n_tok = 11, nb = n / QK_K;
        const size_t rb = static_cast<size_t>(nb) * sizeof(Block), arb = act_row_size(t, n);
        // Every grid index, sign and scale pattern: random bytes with finite fp16 scales.
        std::vector<uint8_t> w(rb * rows);
        for (auto& byte : w) byte = static_cast<uint8_t>(rng());
        for (int64_t b = 0; b < rows * nb; ++b) {
            const uint16_t h = fp32_to_fp16((rng() & 1) ? ud(rng) : -ud(rng));
            std::memcpy(w.data() + b * sizeof(Block), &h, 2);
        }
        std::vector<uint8_t> a(arb * n_tok);
        std::vector<float> x(static_cast<size_t>(n));
        for (int64_t k = 0; k < n_tok; ++k) {
            for (auto& v : x) v = nd(rng);
            convert_act_row(t, x.data(), a.data() + k * arb, n);
        }
        std::vector<float> out(static_cast<size_t>(rows * n_tok), NAN);
        tab.gemm[detail::idx(t)](n, w.data(), rb, 0, rows, a.data(), arb, n_tok, out.data(), rows);
        for (int64_t tok = 0; tok < n_tok; ++tok)
            for (int64_t r = 0; r < rows; ++r) {
                const uint8_t* wr = w.data() + r * rb;
                const uint8_t* ar = a.data() + tok * arb;
                const float want = iq3_lanes16(ints, n, wr, ar);
                const std::string at = std::string(what) + " " + type_name(t) + " n=" + std::to_string(n) + " row " +
                                       std::to_string(r) + " token " + std::to_string(tok);
                ASSERT_EQ(std::bit_cast<uint32_t>(out[static_cast<size_t>(tok * rows + r)]), std::bit_cast<uint32_t>(want))
                    << at << " (gemm)";
                float s = NAN;
                tab.vec_dot[detail::idx(t)](n, &s, wr, ar);
                ASSERT_EQ(std::bit_cast<uint32_t>(s), std::bit_cast<uint32_t>(want)) << at;
                // The model itself is anchored to Ref: the same products, summed in another order.
                float ref = NAN;
                detail::table_for_tests(Isa::Ref).vec_dot[detail::idx(t)](n, &ref, wr, ar);
                double mag = 0.0;
                for (int64_t b = 0; b < nb; ++b) {
                    Block xb;
                    block_q8_K yb;
                    std::memcpy(&xb, wr + b * sizeof xb, sizeof xb);
                    std::memcpy(&yb, ar + b * sizeof yb, sizeof yb);
                    const IqInts q = ints(xb);
                    for (int e = 0; e < QK_K; ++e)
                        mag += std::fabs(static_cast<double>(q.d) * yb.d * q.scale[e / 32] * q.v[e] * yb.qs[e]);
                }
                ASSERT_NEAR(want, ref, 2e-6 * mag + 1e-30) << at << " (model vs Ref)";
            }
    }
}

bool cpu_has_vbmi() { return isa_supported(Isa::Avx512) && __builtin_cpu_supports("avx512vbmi"); }

TEST(LaneRefs, Iq3VbmiKernelsEqualTheirLaneModelBitForBit) {
    if (!cpu_has_vbmi()) GTEST_SKIP() << "no AVX512-VBMI on this CPU";
    detail::KernelTable vbmi;
    detail::fill_avx512vbmi_iq3(vbmi);
    check_iq3(vbmi, TypeId::IQ3_XXS, ints_iq3_xxs, "vbmi");
    check_iq3(vbmi, TypeId::IQ3_S, ints_iq3_s, "vbmi");
}

// Where the CPU has VBMI, the AVX-512 levels use those kernels for IQ3 (the test above then covers them).
TEST(LaneRefs, Avx512LevelsUseTheVbmiIq3KernelsWhereTheCpuHasVbmi) {
    if (!cpu_has_vbmi()) GTEST_SKIP() << "no AVX512-VBMI on this CPU";
    detail::KernelTable vbmi;
    detail::fill_avx512vbmi_iq3(vbmi);
    for (Isa isa : {Isa::Avx512, Isa::Amx}) {
        if (!isa_supported(isa)) continue;
        const detail::KernelTable& used = detail::table_for_tests(isa);
        for (TypeId t : {TypeId::IQ3_XXS, TypeId::IQ3_S}) {
            EXPECT_EQ(used.vec_dot[detail::idx(t)], vbmi.vec_dot[detail::idx(t)]) << isa_name(isa) << " " << type_name(t);
            EXPECT_EQ(used.gemm[detail::idx(t)], vbmi.gemm[detail::idx(t)]) << isa_name(isa) << " " << type_name(t);
        }
    }
}

}  // namespace
}  // namespace gemma::kernels
