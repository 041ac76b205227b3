// Inference state of one sequence: an engine (own or shared) and one KV cache; what the CLI runtime drives.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "model/engine.h"
#include "model/model.h"

namespace gemma {

struct ContextParams {
    int64_t n_ctx = 0;                 // positions; 0: the model's context length, capped by memory (default_n_ctx)
    int64_t n_batch = 512;             // tokens per pass over the weights; longer inputs are split
    TypeId kv_type = TypeId::F16;      // F16 (llama.cpp's default), F32 or Q8_0
    int n_threads = 0;                 // <= 0: all cores; ignored when `pool` is given
    ops::ThreadPool* pool = nullptr;   // share a pool between contexts (must outlive the context)
    bool flash_attn = false;           // flash-attention numerics (EngineParams::flash_attn)
};

class Context {
public:
    Context(const Model& model, const ContextParams& params = {});
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    // Evaluates tokens[i] at position pos0 + i (the cache must hold [0, pos0)). Writes the logits of the last
    // n_logits tokens to logits[k * n_vocab ...], in order. Throws gemma::Error on bad ids or positions.
    void forward(std::span<const int32_t> tokens, int32_t pos0, int32_t n_logits, float* logits);

    // Tokens at positions n_past, n_past+1, ...; returns the last token's logits (n_vocab floats,
    // valid until the next call) and advances n_past.
    const float* eval(std::span<const int32_t> tokens);
    // One token at position n_past (the decode step: allocates nothing).
    const float* decode(int32_t token) { return eval(std::span<const int32_t>(&token, 1)); }

    const Model& model() const { return model_; }
    const ModelConfig& config() const { return model_.config(); }
    Engine& engine() { return *engine_; }
    SeqCache& kv_cache() { return *cache_; }
    int64_t n_past() const { return cache_->n_past(); }
    int64_t n_ctx() const { return cache_->n_ctx(); }
    int64_t n_batch() const { return engine_->n_batch(); }
    ops::ThreadPool& pool() { return engine_->pool(); }
    void set_debug_hook(DebugHook hook) { engine_->set_debug_hook(std::move(hook)); }

private:
    const Model& model_;
    std::unique_ptr<Engine> engine_;
    std::unique_ptr<SeqCache> cache_;
    std::vector<float> logits_;  // [n_vocab] for eval()
};

}  // namespace gemma
