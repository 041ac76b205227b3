// Benchmark driver: llama-bench's pp/tg tests on our Context, plus a streaming-read bandwidth probe.
#include "runtime/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include <sys/resource.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/error.h"
#include "model/context.h"

namespace gemma {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Read before the bandwidth test allocates its buffer, so the figure is what the model and its tests took.
uint64_t peak_rss_bytes() {
    rusage u{};
    return getrusage(RUSAGE_SELF, &u) == 0 ? static_cast<uint64_t>(u.ru_maxrss) * 1024 : 0;  // Linux: KiB
}

// Sum of 64-bit lanes over [p, p + n), n a multiple of 64: the result is kept so the loads cannot be
// optimized away. Four independent accumulators keep several loads in flight; that, not the adds, streams.
uint64_t sum_bytes(const uint8_t* p, size_t n) {
#if defined(__SSE2__)
    __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
    for (const uint8_t* end = p + n; p < end; p += 64) {
        a0 = _mm_add_epi64(a0, _mm_load_si128(reinterpret_cast<const __m128i*>(p)));
        a1 = _mm_add_epi64(a1, _mm_load_si128(reinterpret_cast<const __m128i*>(p + 16)));
        a2 = _mm_add_epi64(a2, _mm_load_si128(reinterpret_cast<const __m128i*>(p + 32)));
        a3 = _mm_add_epi64(a3, _mm_load_si128(reinterpret_cast<const __m128i*>(p + 48)));
    }
    const __m128i s = _mm_add_epi64(_mm_add_epi64(a0, a1), _mm_add_epi64(a2, a3));
    uint64_t lanes[2];
    _mm_storeu_si128(reinterpret_cast<__m128i*>(lanes), s);
    return lanes[0] + lanes[1];
#else
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, w[4];
    for (const uint8_t* end = p + n; p < end; p += 32) {
        std::memcpy(w, p, 32);
        a0 += w[0], a1 += w[1], a2 += w[2], a3 += w[3];
    }
    return a0 + a1 + a2 + a3;
#endif
}

struct AlignedFree {
    void operator()(uint8_t* p) const { std::free(p); }
};

}  // namespace

void mean_sd(const std::vector<double>& v, double* mean, double* sd) {
    *mean = *sd = 0;
    if (v.empty()) return;
    double s = 0;
    for (double x : v) s += x;
    *mean = s / static_cast<double>(v.size());
    if (v.size() < 2) return;
    double q = 0;
    for (double x : v) q += (x - *mean) * (x - *mean);
    *sd = std::sqrt(q / static_cast<double>(v.size() - 1));
}

double measure_read_bandwidth(ops::ThreadPool& pool, size_t bytes, int passes) {
    constexpr size_t kChunk = size_t{4} << 20;  // big enough for the prefetchers, small enough to balance threads
    bytes = std::max(kChunk, bytes / kChunk * kChunk);
    std::unique_ptr<uint8_t, AlignedFree> buf(static_cast<uint8_t*>(std::aligned_alloc(64, bytes)));
    if (!buf) throw_error("bench: cannot allocate " + std::to_string(bytes >> 20) + " MiB for the bandwidth test");
    const auto n_chunks = static_cast<int64_t>(bytes / kChunk);
    // Written by the pool so each page is faulted in (and placed) before any timing.
    pool.parallel_for(n_chunks, [&](int64_t c, int) {
        std::memset(buf.get() + static_cast<size_t>(c) * kChunk, static_cast<int>(c & 0x7F), kChunk);
    });
    std::vector<uint64_t> sink(static_cast<size_t>(pool.size()), 0);
    double best = 0;
    for (int pass = 0; pass < std::max(passes, 1); ++pass) {
        const auto t0 = Clock::now();
        pool.parallel_for(n_chunks, [&](int64_t c, int thread) {
            sink[static_cast<size_t>(thread)] += sum_bytes(buf.get() + static_cast<size_t>(c) * kChunk, kChunk);
        });
        best = std::max(best, static_cast<double>(bytes) / seconds_since(t0) / 1e9);
    }
    volatile uint64_t keep = 0;
    for (uint64_t s : sink) keep = keep + s;
    (void)keep;
    return best;
}

BenchResult run_bench(const Model& model, const BenchParams& p) {
    if (p.n_prompt < 0 || p.n_gen < 0 || p.depth < 0) throw_error("bench: token counts must be >= 0");
    if (p.n_prompt == 0 && p.n_gen == 0) throw_error("bench: nothing to measure (both -p and -n are 0)");
    if (p.reps < 1) throw_error("bench: repetitions must be >= 1");
    auto say = [&](const std::string& s) { if (p.progress) p.progress(s); };

    BenchResult r;
    const GgufFile& f = model.gguf();
    r.model = std::filesystem::path(f.path()).filename().string();
    r.size_bytes = f.file_size();
    for (const GgufTensor& t : f.tensors()) r.weight_bytes += t.nbytes;

    ops::ThreadPool pool(p.n_threads);
    r.threads = pool.size();
    ContextParams cp;
    cp.n_ctx = std::max<int64_t>({static_cast<int64_t>(p.depth) + std::max(p.n_prompt, p.n_gen), 32});
    cp.n_batch = p.n_batch;
    cp.kv_type = p.kv_type;
    cp.flash_attn = p.flash_attn;
    cp.pool = &pool;
    Context ctx(model, cp);
    r.depth = p.depth;
    r.kv_bytes = ctx.kv_cache().bytes();

    const int32_t n_vocab = static_cast<int32_t>(model.config().n_vocab);
    std::mt19937 rng(p.seed);
    std::uniform_int_distribution<int32_t> pick(0, n_vocab - 1);
    std::vector<int32_t> tokens(static_cast<size_t>(std::max({p.n_prompt, p.n_gen, p.depth})));
    for (auto& t : tokens) t = pick(rng);
    // Each repetition starts from `depth` tokens in the cache: filled once, then reused by rolling back (filled
    // again only when a sliding-window ring no longer holds what position `depth` sees).
    bool filled = false;
    auto start_at_depth = [&] {
        if (p.depth == 0) {
            ctx.kv_cache().clear();
            return;
        }
        if (filled && ctx.kv_cache().resume_point(p.depth) == p.depth) {
            ctx.kv_cache().set_n_past(p.depth);
            return;
        }
        ctx.kv_cache().clear();
        const auto t0 = Clock::now();
        for (int64_t i = 0; i < p.depth; i += p.n_batch)
            ctx.eval(std::span<const int32_t>(tokens.data() + i, static_cast<size_t>(std::min<int64_t>(p.n_batch, p.depth - i))));
        filled = true;
        char buf[96];
        std::snprintf(buf, sizeof buf, "filled the cache to depth %d in %.1f s", p.depth, seconds_since(t0));
        say(buf);
    };

    // Warm-up: pages the weights in and wakes the threads; a short prompt and one decode step suffice.
    {
        const size_t n_warm = std::min<size_t>(tokens.size(), 16);
        ctx.kv_cache().clear();
        ctx.eval(std::span<const int32_t>(tokens.data(), n_warm));
        ctx.decode(tokens[0]);
        say("warm-up done");
    }
    if (p.n_prompt > 0) {
        r.pp.n_tokens = p.n_prompt;
        for (int rep = 0; rep < p.reps; ++rep) {
            start_at_depth();
            const auto t0 = Clock::now();
            ctx.eval(std::span<const int32_t>(tokens.data(), static_cast<size_t>(p.n_prompt)));
            r.pp.samples.push_back(p.n_prompt / seconds_since(t0));
            char buf[96];
            std::snprintf(buf, sizeof buf, "pp%d rep %d: %.2f tokens/s", p.n_prompt, rep + 1, r.pp.samples.back());
            say(buf);
        }
        mean_sd(r.pp.samples, &r.pp.tokens_per_s, &r.pp.sd);
    }
    if (p.n_gen > 0) {
        r.tg.n_tokens = p.n_gen;
        for (int rep = 0; rep < p.reps; ++rep) {
            start_at_depth();  // as llama-bench: from an empty cache, or one `depth` tokens deep
            const auto t0 = Clock::now();
            for (int32_t i = 0; i < p.n_gen; ++i) ctx.decode(tokens[static_cast<size_t>(i)]);
            r.tg.samples.push_back(p.n_gen / seconds_since(t0));
            char buf[96];
            std::snprintf(buf, sizeof buf, "tg%d rep %d: %.2f tokens/s", p.n_gen, rep + 1, r.tg.samples.back());
            say(buf);
        }
        mean_sd(r.tg.samples, &r.tg.tokens_per_s, &r.tg.sd);
    }
    r.peak_rss_bytes = peak_rss_bytes();
    if (p.bandwidth_bytes > 0) {
        r.read_bandwidth_gbs = measure_read_bandwidth(pool, p.bandwidth_bytes);
        char buf[96];
        std::snprintf(buf, sizeof buf, "streaming read: %.1f GB/s", r.read_bandwidth_gbs);
        say(buf);
    }
    return r;
}

std::string BenchResult::to_json() const {
    auto stat = [](const BenchStat& s) {
        return nlohmann::json{{"n_tokens", s.n_tokens}, {"tokens_per_s", s.tokens_per_s}, {"sd", s.sd},
                              {"samples", s.samples}};
    };
    nlohmann::json j{{"model", model},
                     {"size_bytes", size_bytes},
                     {"threads", threads},
                     {"depth", depth},
                     {"kv_bytes", kv_bytes},
                     {"peak_rss_bytes", peak_rss_bytes},
                     {"pp", stat(pp)},
                     {"tg", stat(tg)},
                     {"read_bandwidth_gbs", read_bandwidth_gbs},
                     {"weight_bytes", weight_bytes},
                     {"tg_read_gbs", tg_read_gbs()}};
    return j.dump();
}

std::string BenchResult::to_table() const {
    std::string out;
    char buf[256];
    std::snprintf(buf, sizeof buf, "model       %s (%.2f GiB file, %.2f GiB of weights), %d threads\n", model.c_str(),
                  static_cast<double>(size_bytes) / (1 << 30), static_cast<double>(weight_bytes) / (1 << 30), threads);
    out += buf;
    const std::string deep = depth > 0 ? " (both tests start " + std::to_string(depth) + " tokens deep)" : "";
    std::snprintf(buf, sizeof buf, "KV cache    %.1f MiB%s\n", static_cast<double>(kv_bytes) / (1 << 20), deep.c_str());
    out += buf;
    if (peak_rss_bytes > 0) {
        std::snprintf(buf, sizeof buf, "peak RSS    %.2f GiB (weights, KV cache and buffers)\n",
                      static_cast<double>(peak_rss_bytes) / (1 << 30));
        out += buf;
    }
    if (pp.n_tokens > 0) {
        const std::string name = "pp" + std::to_string(pp.n_tokens) + (depth > 0 ? "@d" + std::to_string(depth) : "");
        std::snprintf(buf, sizeof buf, "%-10s  %9.2f ± %.2f tokens/s\n", name.c_str(), pp.tokens_per_s, pp.sd);
        out += buf;
    }
    if (tg.n_tokens > 0) {
        const std::string name = "tg" + std::to_string(tg.n_tokens) + (depth > 0 ? "@d" + std::to_string(depth) : "");
        std::snprintf(buf, sizeof buf, "%-10s  %9.2f ± %.2f tokens/s   reads %.1f GB/s of weights", name.c_str(),
                      tg.tokens_per_s, tg.sd, tg_read_gbs());
        out += buf;
        if (read_bandwidth_gbs > 0) {
            std::snprintf(buf, sizeof buf, " (%.0f%% of the measured %.1f GB/s)", 100.0 * tg_read_gbs() / read_bandwidth_gbs,
                          read_bandwidth_gbs);
            out += buf;
        }
        out += '\n';
    } else if (read_bandwidth_gbs > 0) {
        std::snprintf(buf, sizeof buf, "streaming read  %.1f GB/s\n", read_bandwidth_gbs);
        out += buf;
    }
    return out;
}

}  // namespace gemma
