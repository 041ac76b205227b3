// Context command-line options (size, batch, threads, KV cache type, attention numerics), declared once for every
// command that runs a model on a context.
#pragma once
#include <cstdint>
#include <string>

#include "core/error.h"
#include "model/context.h"
#include "runtime/speculative.h"

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

struct DraftOptions {
    std::string model;  // empty: no speculative decoding
    DraftParams params;
};

template <typename App>
void add_draft_options(App& app, DraftOptions& o) {
    const char* g = "Speculative decoding";
    app.add_option("--draft,--model-draft", o.model,
                   "a smaller model with the same vocabulary (a smaller family member, or a lower rung of the same "
                   "ladder) drafts tokens that the model checks in one pass; greedy output is unchanged, sampled "
                   "output keeps its distribution")
        ->group(g);
    app.add_option("--draft-max", o.params.n_max, "most tokens drafted per step")->capture_default_str()->group(g);
    app.add_option("--draft-min", o.params.n_min, "fewer drafted tokens than this are not checked (plain decoding)")
        ->capture_default_str()->group(g);
    app.add_option("--draft-p-min", o.params.p_min,
                   "stop drafting at a token the draft gives less probability than this")
        ->capture_default_str()->group(g);
}

// The draft model, its context (sharing the target's threads and size) and the drafter.
struct LoadedDraft {
    std::unique_ptr<Model> model;
    std::unique_ptr<Context> ctx;
    std::unique_ptr<Drafter> drafter;
};

// Loads o.model for `target` (throws gemma::Error naming the file when its vocabulary differs); nothing when unset.
LoadedDraft load_draft(const DraftOptions& o, Context& target, const Vocab& target_vocab);

}  // namespace gemma
