// Microbenchmarks of the matmul kernels per weight type (plain and repacked layouts): decode-like row streaming and
// prompt-like gemm.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "kernels/kernels.h"
#include "quant/blocks.h"
#include "quant/types.h"

namespace {

using gemma::TypeId;
namespace kn = gemma::kernels;

const TypeId kTypes[] = {TypeId::F32,  TypeId::F16,  TypeId::BF16, TypeId::Q4_0,   TypeId::Q4_1,   TypeId::Q5_0,
                         TypeId::Q5_1, TypeId::Q8_0, TypeId::Q2_K, TypeId::Q3_K,   TypeId::Q4_K,   TypeId::Q5_K,
                         TypeId::Q6_K, TypeId::IQ4_NL, TypeId::IQ4_XS, TypeId::IQ3_XXS, TypeId::IQ3_S, TypeId::IQ2_S};

// Random quant bytes with sane fp16 scales: kernel speed does not depend on the values, and generating
// tens of MB through the real quantizers would dominate the run.
std::vector<uint8_t> random_weights(TypeId wt, int64_t n, int64_t rows) {
    const auto& tt = gemma::type_traits(wt);
    const size_t rb = gemma::row_size(wt, n);
    std::vector<uint8_t> w(rb * static_cast<size_t>(rows));
    std::mt19937 rng(42);
    if (!tt.quantized) {
        std::normal_distribution<float> nd(0.0f, 1.0f);
        std::vector<float> f(static_cast<size_t>(n));
        for (int64_t r = 0; r < rows; ++r) {
            for (auto& x : f) x = nd(rng);
            tt.quantize_rows(f.data(), w.data() + static_cast<size_t>(r) * rb, 1, n, nullptr);
        }
        return w;
    }
    for (size_t i = 0; i + 4 <= w.size(); i += 4) {
        const uint32_t v = rng();
        std::memcpy(&w[i], &v, 4);
    }
    int off[2] = {0, -1};
    switch (wt) {
        case TypeId::Q4_1: case TypeId::Q5_1: case TypeId::Q4_K: case TypeId::Q5_K: off[1] = 2; break;
        case TypeId::Q2_K: off[0] = 80; off[1] = 82; break;
        case TypeId::Q3_K: off[0] = 108; break;
        case TypeId::Q6_K: off[0] = 208; break;
        default: break;
    }
    const uint16_t h = gemma::fp32_to_fp16(0.01f);
    for (size_t b = 0; b < w.size(); b += static_cast<size_t>(tt.type_size))
        for (int o : off)
            if (o >= 0) std::memcpy(&w[b + static_cast<size_t>(o)], &h, 2);
    return w;
}

std::vector<uint8_t> random_acts(TypeId wt, int64_t n, int64_t n_tok) {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n));
    const size_t arb = kn::act_row_size(wt, n);
    std::vector<uint8_t> a(arb * static_cast<size_t>(n_tok));
    for (int64_t t = 0; t < n_tok; ++t) {
        for (auto& v : x) v = nd(rng);
        kn::convert_act_row(wt, x.data(), a.data() + static_cast<size_t>(t) * arb, n);
    }
    return a;
}

// The row-interleaved copy the model loader makes (ModelWeights::repack); rows a multiple of kPackRows.
std::vector<uint8_t> packed_copy(TypeId wt, int64_t n, const std::vector<uint8_t>& w) {
    const size_t group = static_cast<size_t>(kn::kPackRows) * gemma::row_size(wt, n);
    std::vector<uint8_t> p(w.size());
    for (size_t o = 0; o + group <= w.size(); o += group) kn::pack_group(wt, n, w.data() + o, gemma::row_size(wt, n), p.data() + o);
    return p;
}

bool select_isa(benchmark::State& state, kn::Isa isa) {
    if (!kn::set_isa(isa)) {
        state.SkipWithError("ISA not supported on this CPU");
        return false;
    }
    return true;
}

// Decode: one token against a weight matrix of `bytes` (64 MiB streams from DRAM, 256 KiB stays in L2).
void BM_Decode(benchmark::State& state, TypeId wt, kn::Isa isa, size_t bytes, bool packed) {
    if (!select_isa(state, isa)) return;
    const int64_t n = 2048;
    const size_t rb = gemma::row_size(wt, n);
    const int64_t rows = static_cast<int64_t>(bytes / rb / 16 * 16);
    const auto w = packed ? packed_copy(wt, n, random_weights(wt, n, rows)) : random_weights(wt, n, rows);
    const auto a = random_acts(wt, n, 1);
    std::vector<float> out(static_cast<size_t>(rows));
    const auto gemm = packed ? kn::gemm_packed : kn::gemm;
    for (auto _ : state) {
        gemm(wt, n, w.data(), rb, 0, rows, a.data(), kn::act_row_size(wt, n), 1, out.data(), rows);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * rows * static_cast<int64_t>(rb));
}

// The single-row entry point, on an L2-resident matrix (per-call overhead and one accumulator chain).
void BM_VecDot(benchmark::State& state, TypeId wt, kn::Isa isa) {
    if (!select_isa(state, isa)) return;
    const int64_t n = 2048;
    const size_t rb = gemma::row_size(wt, n);
    const int64_t rows = static_cast<int64_t>((256 * 1024) / rb);
    const auto w = random_weights(wt, n, rows);
    const auto a = random_acts(wt, n, 1);
    std::vector<float> out(static_cast<size_t>(rows));
    for (auto _ : state) {
        for (int64_t r = 0; r < rows; ++r) kn::vec_dot(wt, n, &out[r], w.data() + static_cast<size_t>(r) * rb, a.data());
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * rows * static_cast<int64_t>(rb));
}

// Prompt processing: 256 rows x n_tok tokens x 2048; items are multiply-adds.
void BM_Gemm(benchmark::State& state, TypeId wt, kn::Isa isa, bool packed) {
    if (!select_isa(state, isa)) return;
    const int64_t n = 2048, rows = 256, n_tok = state.range(0);
    const size_t rb = gemma::row_size(wt, n), arb = kn::act_row_size(wt, n);
    const auto w = packed ? packed_copy(wt, n, random_weights(wt, n, rows)) : random_weights(wt, n, rows);
    const auto a = random_acts(wt, n, n_tok);
    std::vector<float> out(static_cast<size_t>(rows * n_tok));
    const auto gemm = packed ? kn::gemm_packed : kn::gemm;
    for (auto _ : state) {
        gemm(wt, n, w.data(), rb, 0, rows, a.data(), arb, n_tok, out.data(), rows);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * rows * n_tok * n);
}

void BM_ConvertAct(benchmark::State& state, TypeId wt, kn::Isa isa) {
    if (!select_isa(state, isa)) return;
    const int64_t n = 2048;
    std::vector<float> x(static_cast<size_t>(n));
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (auto& v : x) v = nd(rng);
    std::vector<uint8_t> a(kn::act_row_size(wt, n));
    for (auto _ : state) {
        kn::convert_act_row(wt, x.data(), a.data(), n);
        benchmark::DoNotOptimize(a.data());
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * n);
}

const int kRegistered = [] {
    for (kn::Isa isa : {kn::Isa::Amx, kn::Isa::Avx512, kn::Isa::Avx2Vnni, kn::Isa::Avx2, kn::Isa::Ref}) {
        const std::string is = kn::isa_name(isa);
        const bool amx = isa == kn::Isa::Amx;
        for (TypeId wt : kTypes) {
            const std::string tn = gemma::type_name(wt);
            // The plain layout for every type, and the repacked one beside it where the loader repacks.
            for (bool packed : {false, true}) {
                if (packed && !kn::packable(wt, 2048)) continue;
                // AMX changes only the packed kernels' prompts (16 tokens or more): the rest would repeat avx512's.
                if (amx && !packed) continue;
                const std::string lay = packed ? "_packed/" : "/";
                if (!amx) {
                    benchmark::RegisterBenchmark(("decode_dram" + lay + is + "/" + tn).c_str(), BM_Decode, wt, isa,
                                                 size_t{64} << 20, packed);
                    benchmark::RegisterBenchmark(("decode_l2" + lay + is + "/" + tn).c_str(), BM_Decode, wt, isa,
                                                 size_t{256} << 10, packed);
                }
                auto* g = benchmark::RegisterBenchmark(("gemm" + lay + is + "/" + tn).c_str(), BM_Gemm, wt, isa, packed);
                g->Arg(8)->Arg(64);
                if (isa == kn::Isa::Ref) g->Iterations(1);
                else g->Arg(512);  // activations larger than L2: exercises the token blocking
            }
            if (!amx) benchmark::RegisterBenchmark(("vec_dot_l2/" + is + "/" + tn).c_str(), BM_VecDot, wt, isa);
        }
        if (amx) continue;
        for (TypeId wt : {TypeId::Q4_0, TypeId::Q4_1, TypeId::Q4_K, TypeId::F16, TypeId::BF16})
            benchmark::RegisterBenchmark(("convert_act/" + is + "/" + std::string(gemma::type_name(wt))).c_str(),
                                         BM_ConvertAct, wt, isa);
    }
    return 0;
}();

}  // namespace
