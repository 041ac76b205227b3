// Float-weight kernels: AVX512-BF16's vdpbf16ps kernel against the widening AVX-512 one, and F16 prompt batches
// (wide tiles) against the single-row kernel, over realistic rows and many tokens.
#include <gtest/gtest.h>

#include <bit>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "kernels/kernels.h"
#include "kernels/kernels_internal.h"

namespace gemma::kernels {
namespace {

std::vector<uint16_t> random_half(std::mt19937& rng, size_t count, bool bf16, float scale) {
    std::normal_distribution<float> nd(0.0f, scale);
    std::vector<uint16_t> v(count);
    for (auto& h : v) h = bf16 ? fp32_to_bf16(nd(rng)) : fp32_to_fp16(nd(rng));
    return v;
}

// Every (row, token) of an rows x n_tok gemm, through table `t`.
std::vector<float> gemm_with(const detail::KernelTable& t, TypeId wt, int64_t n, const std::vector<uint16_t>& w,
                             int64_t rows, const std::vector<uint16_t>& a, int64_t n_tok) {
    std::vector<float> out(static_cast<size_t>(rows * n_tok), -1.0f);
    t.gemm[detail::idx(wt)](n, w.data(), static_cast<size_t>(n) * 2, 0, rows, a.data(), static_cast<size_t>(n) * 2,
                            n_tok, out.data(), rows);
    return out;
}

// The AVX-512 level's BF16 kernel is vdpbf16ps's where the CPU has it and it passes dispatch's bit check: either
// way, its results must be the widening kernel's, bit for bit, so no result depends on AVX512-BF16.
TEST(FloatKernels, Avx512Bf16GivesTheWideningKernelsBits) {
    if (!isa_supported(Isa::Avx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
    detail::KernelTable plain;
    detail::fill_avx512_float(plain);
    const detail::KernelTable& used = detail::table_for_tests(Isa::Avx512);
    const size_t b = detail::idx(TypeId::BF16);
    if (avx512_bf16_supported() && used.gemm[b] == plain.gemm[b])
        std::printf("note: vdpbf16ps did not pass the bit check on this CPU; the widening kernel is used\n");
    std::mt19937 rng(99);
    for (int64_t n : {31, 32, 2048, 2081}) {
        const int64_t rows = 13, n_tok = 17;
        // Wide dynamic range: large products next to small ones make every rounding step count.
        const auto w = random_half(rng, static_cast<size_t>(rows * n), true, 30.0f);
        const auto a = random_half(rng, static_cast<size_t>(n_tok * n), true, 0.05f);
        const auto want = gemm_with(plain, TypeId::BF16, n, w, rows, a, n_tok);
        const auto got = gemm_with(used, TypeId::BF16, n, w, rows, a, n_tok);
        for (size_t i = 0; i < want.size(); ++i)
            ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i])) << "n=" << n << " i=" << i;
        float s = 0.0f;
        used.vec_dot[b](n, &s, w.data(), a.data());
        EXPECT_EQ(std::bit_cast<uint32_t>(s), std::bit_cast<uint32_t>(want[0])) << "n=" << n;
    }
}

// Where the CPU has AVX512-BF16, the instruction's kernel itself (as registered before the check) against the
// widening one: this is what the dispatch check samples, over random rows and tiles.
TEST(FloatKernels, Bf16DotInstructionMatchesTheWideningKernelHere) {
    if (!isa_supported(Isa::Avx512) || !avx512_bf16_supported()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
    detail::KernelTable plain, dot;
    detail::fill_avx512_float(plain);
    detail::fill_avx512bf16_float(dot);
    const size_t b = detail::idx(TypeId::BF16);
    if (detail::table_for_tests(Isa::Avx512).gemm[b] != dot.gemm[b])
        GTEST_SKIP() << "vdpbf16ps rounds differently on this CPU, so dispatch keeps the widening kernel";
    std::mt19937 rng(5);
    const int64_t n = 4096, rows = 8, n_tok = 11;
    const auto w = random_half(rng, static_cast<size_t>(rows * n), true, 3.0f);
    const auto a = random_half(rng, static_cast<size_t>(n_tok * n), true, 0.5f);
    const auto want = gemm_with(plain, TypeId::BF16, n, w, rows, a, n_tok);
    const auto got = gemm_with(dot, TypeId::BF16, n, w, rows, a, n_tok);
    for (size_t i = 0; i < want.size(); ++i)
        ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i])) << "i=" << i;
}

// Prompt batches of F16 weights run wide tiles (4 rows x 6 tokens on AVX-512) where one token runs 1x1: every
// pair must still equal the single-row dot, on every ISA the CPU has, whatever the token count.
TEST(FloatKernels, F16PromptBatchesEqualTheSingleRowDot) {
    std::mt19937 rng(7);
    const Isa saved = active_isa();
    for (Isa isa : kAllIsas) {
        if (!set_isa(isa)) continue;
        for (int64_t n : {7, 2048, 2051}) {
            const int64_t rows = 9;
            const size_t rb = static_cast<size_t>(n) * 2;
            const auto w = random_half(rng, static_cast<size_t>(rows * n), false, 0.5f);
            for (int64_t n_tok : {2, 6, 13, 300}) {
                const auto a = random_half(rng, static_cast<size_t>(n_tok * n), false, 1.0f);
                std::vector<float> out(static_cast<size_t>(rows * n_tok), -1.0f);
                gemm(TypeId::F16, n, w.data(), rb, 0, rows, a.data(), rb, n_tok, out.data(), rows);
                for (int64_t tok = 0; tok < n_tok; tok += 1 + n_tok / 7)
                    for (int64_t r = 0; r < rows; ++r) {
                        float s = 0.0f;
                        vec_dot(TypeId::F16, n, &s, w.data() + r * n, a.data() + tok * n);
                        ASSERT_EQ(std::bit_cast<uint32_t>(out[static_cast<size_t>(tok * rows + r)]),
                                  std::bit_cast<uint32_t>(s))
                            << isa_name(isa) << " n=" << n << " n_tok=" << n_tok << " r=" << r << " t=" << tok;
                    }
            }
        }
    }
    set_isa(saved);
}

}  // namespace
}  // namespace gemma::kernels
