// Context: one sequence over the engine seam, and the default context length.
#include "model/context.h"

#include <algorithm>

#include "core/error.h"

namespace gemma {

Context::Context(const Model& model, const ContextParams& params) : model_(model) {
    EngineParams ep;
    ep.n_batch = params.n_batch;
    ep.kv_type = params.kv_type;
    ep.n_threads = params.n_threads;
    ep.pool = params.pool;
    ep.flash_attn = params.flash_attn;
    engine_ = make_cpu_engine(model, ep);
    const int64_t n_ctx = params.n_ctx > 0 ? params.n_ctx : default_n_ctx(*engine_);
    cache_ = engine_->make_cache(n_ctx);
    logits_.resize(static_cast<size_t>(model.config().n_vocab));
}

Context::~Context() = default;

void Context::forward(std::span<const int32_t> tokens, int32_t pos0, int32_t n_logits, float* logits) {
    const SeqChunk chunk{cache_.get(), tokens, pos0, n_logits};
    engine_->forward(std::span<const SeqChunk>(&chunk, 1), logits);
}

const float* Context::eval(std::span<const int32_t> tokens) {
    if (tokens.empty()) throw_error("eval: no tokens");
    const int64_t n = static_cast<int64_t>(tokens.size());
    const int64_t start = cache_->n_past();
    if (start + n > cache_->n_ctx())
        throw_error("context full: " + std::to_string(start) + " + " + std::to_string(n) + " tokens exceed " +
                    std::to_string(cache_->n_ctx()));
    forward(tokens, static_cast<int32_t>(start), 1, logits_.data());
    return logits_.data();
}

}  // namespace gemma
