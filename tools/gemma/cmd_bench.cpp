// `gemma bench MODEL [-p 512] [-n 128] [-t N] [-r REPS] [--json]`: prompt and generation speed, bandwidth use.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <string>

#include "command.h"
#include "core/error.h"
#include "model/model.h"
#include "quant/types.h"
#include "runtime/bench.h"

namespace {

int run_bench_cmd(int argc, char** argv) {
    CLI::App app{"Measure a model's speed like llama-bench: prompt processing (pp: N tokens evaluated as one "
                 "prompt) and generation (tg: N tokens decoded one by one from an empty cache), each as mean ± "
                 "standard deviation over repetitions after a warm-up, on random token ids. Generation reads every "
                 "weight once per token, so weight bytes × tokens/s is the read bandwidth it achieves; the bench "
                 "also measures the machine's streaming read bandwidth to compare against.",
                 "gemma bench"};
    std::string model_path, kv_type = "f16";
    gemma::BenchParams p;
    bool json = false, no_bandwidth = false, no_repack = false;
    app.add_option("model", model_path, "GGUF model file")->required();
    app.add_option("-p,--n-prompt", p.n_prompt, "prompt tokens (0 skips the test)")->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    app.add_option("-n,--n-gen", p.n_gen, "generated tokens (0 skips the test)")->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    app.add_option("-r,--reps", p.reps, "repetitions of each test")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("-t,--threads", p.n_threads, "threads (default: all cores)");
    app.add_option("-b,--batch", p.n_batch, "prompt tokens per pass over the weights")->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--kv-type", kv_type, "KV cache type: f16, f32 or q8_0")->capture_default_str();
    app.add_option("-d,--depth", p.depth, "run both tests this many tokens deep into the context (llama-bench -d)")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_flag("--flash-attn,--fa", p.flash_attn, "flash-attention numerics (see gemma run --help)");
    app.add_flag("--no-bandwidth", no_bandwidth, "skip the streaming-read bandwidth test");
    app.add_flag("--no-repack", no_repack,
                 "use Q4_0 / Q8_0 / Q4_K / Q5_K weights in place instead of repacked into 8-row groups (slower; for comparison; "
                 "GEMMA_NO_REPACK=1 does this for every command)");
    app.add_flag("--json", json, "print one JSON object on stdout instead of the table");
    app.footer("Examples:\n"
               "  gemma bench gemma-2b-Q4_0.gguf                  # pp512 and tg128, 5 repetitions\n"
               "  gemma bench model.gguf -p 128 -n 32 -r 3 -t 2\n"
               "  gemma bench model.gguf -p 0 -n 64 --json        # generation only, machine-readable\n"
               "  gemma bench model.gguf -d 4096 --kv-type q8_0   # both tests 4096 tokens deep, 8-bit KV cache\n"
               "JSON: {\"model\",\"size_bytes\",\"threads\",\"depth\",\"kv_bytes\",\"pp\":{\"n_tokens\",\"tokens_per_s\",\"sd\",\"samples\"},\n"
               "       \"tg\":{...},\"read_bandwidth_gbs\",\"weight_bytes\",\"tg_read_gbs\"}");
    CLI11_PARSE(app, argc, argv);

    const auto kvt = gemma::type_from_name(kv_type);
    if (!kvt) gemma::throw_error("--kv-type: unknown type '" + kv_type + "' (f16, f32 or q8_0)");
    p.kv_type = *kvt;
    if (no_bandwidth) p.bandwidth_bytes = 0;
    p.progress = [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); };

    gemma::LoadOptions lo;
    lo.repack = !no_repack;
    const auto t_load = std::chrono::steady_clock::now();
    const auto model = gemma::Model::load(model_path, lo);
    std::fprintf(stderr, "loaded in %.2f s\n",
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count());
    std::fprintf(stderr, "%s\n", model->config().describe().c_str());
    const gemma::BenchResult r = gemma::run_bench(*model, p);
    const std::string out = json ? r.to_json() + "\n" : r.to_table();
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

}  // namespace

GEMMA_REGISTER_COMMAND(bench, "bench", "measure prompt and generation speed (tokens/s) and memory bandwidth", run_bench_cmd);
