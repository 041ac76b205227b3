// Context command-line options (size, batch, threads, KV cache type, attention numerics), declared once for every
// command that runs a model on a context.
#pragma once
#include <cstdint>
#include <string>

#include "core/error.h"
#include "model/context.h"

namespace gemma {

struct ContextOptions {
    int64_t n_ctx = 0;
    int64_t n_batch = 512;
    int threads = 0;
    std::string kv_type = "f16";
    bool flash_attn = false;

    // Throws gemma::Error naming the option for a KV type the cache cannot use.
    ContextParams params() const {
        ContextParams p;
        p.n_ctx = n_ctx;
        p.n_batch = n_batch;
        p.n_threads = threads;
        p.flash_attn = flash_attn;
        if (kv_type == "f16" || kv_type == "F16") p.kv_type = TypeId::F16;
        else if (kv_type == "f32" || kv_type == "F32") p.kv_type = TypeId::F32;
        else if (kv_type == "q8_0" || kv_type == "Q8_0") p.kv_type = TypeId::Q8_0;
        else throw_error("--kv-type: unknown KV cache type '" + kv_type + "' (use f16, f32 or q8_0)");
        return p;
    }
};

// Templated on the option parser (CLI::App) so the library itself does not depend on CLI11.
template <typename App>
void add_context_options(App& app, ContextOptions& o) {
    const char* g = "Context";
    app.add_option("-c,--ctx", o.n_ctx,
                   "context size in tokens (default: the model's training context, halved until the KV cache fits "
                   "in a quarter of the machine's memory)")
        ->group(g);
    app.add_option("-b,--batch", o.n_batch, "prompt tokens per pass over the weights")->capture_default_str()->group(g);
    app.add_option("-t,--threads", o.threads, "threads (default: all cores)")->group(g);
    app.add_option("--kv-type", o.kv_type, "KV cache type: f16 (llama.cpp's default), q8_0 (half the memory) or f32")
        ->capture_default_str()->group(g);
    app.add_flag("--flash-attn,--fa", o.flash_attn,
                 "flash-attention numerics: online softmax with f32 weights (as llama.cpp -fa); the default rounds "
                 "attention probabilities as llama.cpp does without it")
        ->group(g);
}

}  // namespace gemma
