// Microbenchmarks of attention over a filled KV cache: one decoded token or a prompt piece at a given depth, for the
// gemma-2b head layout (8 query heads on 1 KV head of 256), both numerics and both cache types.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "ops/attention.h"
#include "ops/thread_pool.h"

namespace {

using gemma::TypeId;
namespace ops = gemma::ops;

void BM_attention(benchmark::State& state, TypeId kv, bool flash, int64_t n_tok) {
    const int64_t depth = state.range(0);
    const ops::AttnShape s{8, 1, 256};
    const int64_t kvd = s.n_head_kv * s.head_dim, qd = s.n_head * s.head_dim, n_pos = depth + n_tok;
    const int64_t cells = (n_pos + ops::kAttnTile - 1) / ops::kAttnTile * ops::kAttnTile;
    std::vector<uint8_t> kb(ops::kv_layer_bytes(kv, s, cells)), vb(kb.size());
    const ops::KvLayerView view{kv, kb.data(), vb.data(), cells};
    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<float> k(static_cast<size_t>(kvd)), v(k.size()), q(static_cast<size_t>(n_tok * qd));
    for (int32_t p = 0; p < n_pos; ++p) {
        for (auto& x : k) x = nd(rng);
        for (auto& x : v) x = nd(rng);
        ops::kv_store(view, s, p, k.data(), v.data());
    }
    for (auto& x : q) x = nd(rng) * 0.06f;
    std::vector<int32_t> pos(static_cast<size_t>(n_tok));
    for (int64_t t = 0; t < n_tok; ++t) pos[static_cast<size_t>(t)] = static_cast<int32_t>(depth + t);
    std::vector<float> out(q.size());
    ops::ThreadPool pool(2);
    ops::AttnScratch scratch;
    const ops::AttnParams ap{0, 0.0f, flash};
    for (auto _ : state) {
        ops::attention(view, s, ap, q.data(), qd, pos.data(), n_tok, out.data(), qd, scratch, pool);
        benchmark::DoNotOptimize(out.data());
    }
    // Keys and values read per call: what decode at depth is bound by.
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 * static_cast<int64_t>(kb.size()));
    state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(n_tok), benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK_CAPTURE(BM_attention, decode_f16, TypeId::F16, false, 1)->Arg(512)->Arg(4096)->UseRealTime();
BENCHMARK_CAPTURE(BM_attention, decode_f16_flash, TypeId::F16, true, 1)->Arg(4096)->UseRealTime();
BENCHMARK_CAPTURE(BM_attention, decode_q8_0, TypeId::Q8_0, false, 1)->Arg(4096)->UseRealTime();
BENCHMARK_CAPTURE(BM_attention, prompt64_f16, TypeId::F16, false, 64)->Arg(4096)->UseRealTime();
BENCHMARK_CAPTURE(BM_attention, prompt64_f16_flash, TypeId::F16, true, 64)->Arg(4096)->UseRealTime();

}  // namespace
