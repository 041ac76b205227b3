// Microbenchmarks of the reference quantizers per type, with and without importance weights: ns per element, the
// figures behind estimated_ns_per_element (release --dry-run, progress ETA).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "quant/types.h"

namespace {

using gemma::TypeId;

void BM_quantize(benchmark::State& state, TypeId t, bool weighted) {
    constexpr int64_t n = 2048, rows = 8;  // one row batch of a real matrix's width
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 0.02f);
    std::uniform_real_distribution<float> ud(0.0f, 4.0f);
    std::vector<float> src(static_cast<size_t>(n * rows)), im(static_cast<size_t>(n));
    for (float& x : src) x = nd(rng);
    for (float& w : im) w = ud(rng);
    std::vector<uint8_t> dst(gemma::row_size(t, n) * static_cast<size_t>(rows));
    const auto& tt = gemma::type_traits(t);
    for (auto _ : state) {
        tt.quantize_rows(src.data(), dst.data(), rows, n, weighted ? im.data() : nullptr);
        benchmark::DoNotOptimize(dst.data());
    }
    state.counters["ns_per_element"] = benchmark::Counter(static_cast<double>(n * rows),
                                                          benchmark::Counter::kIsIterationInvariantRate |
                                                              benchmark::Counter::kInvert);
}

void register_all() {
    const TypeId types[] = {TypeId::Q8_0, TypeId::Q4_0, TypeId::Q4_1, TypeId::Q5_0, TypeId::Q5_1, TypeId::Q2_K,
                            TypeId::Q3_K, TypeId::Q4_K, TypeId::Q5_K, TypeId::Q6_K, TypeId::IQ4_NL, TypeId::IQ4_XS,
                            TypeId::IQ3_S, TypeId::IQ3_XXS};
    for (const TypeId t : types)
        for (const bool w : {false, true})
            benchmark::RegisterBenchmark((std::string("quantize/") + gemma::type_name(t) + (w ? "/imatrix" : "")).c_str(),
                                         BM_quantize, t, w)->Unit(benchmark::kMicrosecond);
}

const int kRegistered = (register_all(), 0);

}  // namespace
