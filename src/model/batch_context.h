// Multi-sequence forward pass: tokens of several sequences, each with its own KV cache, share one pass over the weights.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "model/kv_cache.h"
#include "model/model.h"
#include "ops/attention.h"
#include "ops/thread_pool.h"

namespace gemma {

// Consecutive tokens of one sequence: tokens[i] goes to position pos0 + i of `kv`.
struct SeqChunk {
    KvCache* kv = nullptr;
    std::span<const int32_t> tokens;
    int32_t pos0 = 0;     // the cache must already hold positions [0, pos0)
    bool logits = false;  // return the logits after the chunk's last token
};

struct BatchContextParams {
    int64_t n_batch = 512;          // most tokens one forward() takes, all chunks together
    int64_t n_ctx = 4096;           // positions of the caches make_cache() creates
    TypeId kv_type = TypeId::F16;
    ops::ThreadPool* pool = nullptr;  // required; must outlive the context
};

// The server's continuous batching: the decode steps of all active sequences (and pieces of new prompts)
// go through the matmuls as the rows of one batch, while attention runs per sequence against its own
// cache. Every per-token computation is the same arithmetic as Context's (the gemm kernels compute each
// (row, token) pair independently of the other tokens), so a sequence's logits do not depend on what
// else shares its batch, and equal Context::forward's bit for bit.
class BatchContext {
public:
    BatchContext(const Model& model, const BatchContextParams& params);
    BatchContext(const BatchContext&) = delete;
    BatchContext& operator=(const BatchContext&) = delete;

    // A cache of this context's size and type.
    std::unique_ptr<KvCache> make_cache() const;

    // Evaluates all chunks (distinct caches, at most n_batch tokens in total) in one pass over the
    // weights. The k-th chunk that asks for logits gets them at logits[k * n_vocab ...]. Each cache's
    // n_past becomes at least pos0 + its chunk's length. Throws gemma::Error on bad ids or positions.
    void forward(std::span<const SeqChunk> chunks, float* logits);

    const ModelConfig& config() const { return model_.config(); }
    int64_t n_batch() const { return n_batch_; }
    int64_t n_ctx() const { return n_ctx_; }
    ops::ThreadPool& pool() { return *pool_; }

private:
    void run(int64_t n, int64_t n_out, float* logits);
    // Attention over rows [0, n): maximal runs of rows of one sequence go to ops::attention together.
    void attend(int64_t il, int64_t n, const int32_t* seq, const int32_t* pos);
    template <typename F> void for_tokens(int64_t n, F&& fn);

    const Model& model_;
    ops::ThreadPool* pool_;
    int64_t n_batch_, n_ctx_;
    TypeId kv_type_;
    ops::AttnShape shape_;
    ops::AttnScratch attn_scratch_;

    // Per batch row: its token, position, chunk index; out_rows_ lists the rows whose logits are wanted.
    std::vector<int32_t> tokens_, pos_, seq_, out_rows_, out_pos_, out_seq_;
    std::vector<KvCache*> caches_;  // per chunk
    std::vector<float> x_, h_, q_, k_, v_, attn_, gate_, up_, tmp_, rope_;
    std::vector<uint8_t> act_;
};

}  // namespace gemma
