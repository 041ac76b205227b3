// Perplexity and KL-divergence as llama-perplexity computes them, for several models evaluated side by side.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "model/model.h"
#include "ops/thread_pool.h"
#include "tokenizer/tokenizer.h"

namespace gemma {

// The whole file as text. Throws gemma::Error when it is missing, unreadable or empty; `what` names the
// option in the message ("-f", "--eval-text").
std::string read_eval_text(const std::string& path, const std::string& what);
// llama-perplexity's and llama-imatrix's tokenization: BOS when the vocabulary adds one; special-token
// texts inside the file stay plain text (common_tokenize's parse_special = false).
std::vector<int32_t> tokenize_eval_text(const Tokenizer& tok, const std::string& text);

// How a token stream is cut: chunks of `ctx` tokens from the start, each evaluated alone.
struct ChunkPlan {
    int ctx = 0;
    int n_chunks = 0;
};
// llama's rules plus ours: min_ctx <= ctx <= the model's training context, at least 2*ctx tokens;
// n_chunks = all whole chunks, or `chunks` of them when 0 < chunks. Throws gemma::Error otherwise.
ChunkPlan plan_chunks(size_t n_tokens, int ctx, int chunks, int64_t n_ctx_train, int min_ctx);

// The token ids of chunk `c`, with BOS replacing the first one (llama does this to every chunk).
std::vector<int32_t> chunk_tokens(std::span<const int32_t> tokens, const ChunkPlan& plan, int c, int32_t bos,
                                  bool add_bos);

// Throws gemma::Error unless both models have the same vocabulary (the same token texts in order).
void require_same_vocabulary(const Model& base, const std::string& base_name, const Model& model,
                             const std::string& model_name);

// -log p(tok) under softmax(logits), as llama's log_softmax computes it: float max, double sum of expf.
double token_nll(const float* logits, int64_t n_vocab, int32_t tok);

// Running negative log-likelihood, summed in double as llama-perplexity does.
struct NllSum {
    double nll = 0, nll2 = 0;
    int64_t count = 0;
    void add(double v) { nll += v; nll2 += v * v; ++count; }
    double ppl() const;
    double ppl_err() const;  // llama's "+/-": ppl * sqrt(var(nll) / (count - 1))
};

struct KlStats {
    double mean = 0, mean_err = 0;  // KL(base || model) per scored position, in nats
    double median = 0, p99 = 0, max = 0;
    double same_top_percent = 0, same_top_err = 0;  // positions where both argmaxes agree
    int64_t n = 0;
};

struct PerplexityResult {
    std::vector<double> running;  // perplexity after each chunk
    double ppl = 0, ppl_err = 0;
    int64_t n_scored = 0;
    bool has_kl = false;
    KlStats kl;
};

struct PerplexityParams {
    int ctx = 512;
    int chunks = -1;                // <= 0: every whole chunk of the text
    int threads = 0;                // <= 0: all cores (ignored when `pool` is set)
    ops::ThreadPool* pool = nullptr;
    int64_t n_batch = 512;          // tokens per forward pass (llama's n_ubatch)
    // After each chunk: its index (from 0), the chunk count, and the results so far (base first when
    // there is one, then the models in order; `running` is final for the chunks done).
    std::function<void(int, int, const std::vector<const PerplexityResult*>&)> on_chunk;
};

struct PerplexityRun {
    ChunkPlan plan;
    bool has_base = false;
    PerplexityResult base;                 // the base model's own perplexity, when a base was given
    std::vector<PerplexityResult> models;  // one per model, with KL statistics against the base
};

// Evaluates every model (and the base, when not null) chunk by chunk: the base's log-probabilities of a
// chunk are kept in memory while each model evaluates the same chunk, so no logits are written to disk
// and the base runs once. Scores the second half of each chunk, as llama-perplexity does. All models
// must share the base's vocabulary (checked). Throws gemma::Error for bad input.
PerplexityRun evaluate_perplexity(const Model* base, const std::vector<const Model*>& models,
                                  std::span<const int32_t> tokens, const PerplexityParams& p);

// One line per statistic, as llama-perplexity prints them (for the CLI and logs).
std::string format_kl_stats(const KlStats& s);

}  // namespace gemma
