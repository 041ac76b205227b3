// `gemma bench` as a library: prompt-processing and generation speed, and the machine's read bandwidth.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/model.h"
#include "ops/thread_pool.h"

namespace gemma {

struct BenchParams {
    int32_t n_prompt = 512;   // prompt-processing test: tokens evaluated as one prompt; 0 skips it
    int32_t n_gen = 128;      // generation test: tokens decoded one at a time; 0 skips it
    int32_t reps = 5;         // repetitions per test, after one warm-up
    int n_threads = 0;        // <= 0: all cores
    int64_t n_batch = 512;
    TypeId kv_type = TypeId::F16;
    bool flash_attn = false;
    int32_t depth = 0;        // both tests run after this many tokens already sit in the KV cache (llama-bench -d)
    // Buffer of the streaming-read test; it must dwarf the caches. 0 skips the test.
    size_t bandwidth_bytes = size_t{512} << 20;
    uint32_t seed = 1234;     // of the random token ids fed to the model
    std::function<void(const std::string&)> progress;  // one line per finished step (stderr in the CLI)
};

struct BenchStat {
    int32_t n_tokens = 0;
    double tokens_per_s = 0;  // mean over repetitions
    double sd = 0;            // sample standard deviation over repetitions
    std::vector<double> samples;
};

struct BenchResult {
    std::string model;            // the file name
    uint64_t size_bytes = 0;      // the file size
    uint64_t weight_bytes = 0;    // bytes of all tensors: what one generated token reads
    int threads = 0;
    int32_t depth = 0;
    uint64_t kv_bytes = 0;        // the KV cache the tests ran with (its size when full)
    BenchStat pp, tg;
    double read_bandwidth_gbs = 0;   // measured streaming read (GB/s = 1e9 bytes/s)
    uint64_t peak_rss_bytes = 0;     // the process's peak RSS after the tests, before the bandwidth test's buffer
    double tg_read_gbs() const { return static_cast<double>(weight_bytes) * tg.tokens_per_s / 1e9; }

    std::string to_json() const;   // {"model","size_bytes","threads","pp":{...},"tg":{...},"read_bandwidth_gbs",...}
    std::string to_table() const;  // human-readable lines
};

BenchResult run_bench(const Model& model, const BenchParams& params);

// Best of `passes` timed multi-threaded sequential reads of a `bytes`-byte buffer (touched once first), in GB/s.
double measure_read_bandwidth(ops::ThreadPool& pool, size_t bytes, int passes = 5);

// Mean and sample standard deviation (0 for fewer than two values).
void mean_sd(const std::vector<double>& v, double* mean, double* sd);

}  // namespace gemma
