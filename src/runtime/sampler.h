// Token sampler: llama.cpp's default chain (penalties, top-k, top-p, min-p, temperature, dist) and log-probs.
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/vocab.h"

namespace gemma {

// llama.cpp's common_params_sampling defaults (SPEC §9); same for the CLI and the server.
struct SamplerParams {
    static constexpr uint32_t kRandomSeed = 0xFFFFFFFFu;  // LLAMA_DEFAULT_SEED: draw a seed from the OS

    float temp = 0.80f;            // <= 0: greedy (first maximum after the other stages)
    int32_t top_k = 40;            // <= 0: off
    float top_p = 0.95f;           // >= 1: off
    float min_p = 0.05f;           // <= 0: off
    int32_t min_keep = 0;          // top-p / min-p never keep fewer candidates than this
    int32_t penalty_last_n = 64;   // window of recent tokens the penalties look at; 0: off, -1: whole context
    float penalty_repeat = 1.0f;   // 1: off
    float penalty_freq = 0.0f;
    float penalty_present = 0.0f;
    uint32_t seed = kRandomSeed;
    // Added to the logits before anything else (OpenAI logit_bias); -inf bans a token.
    std::vector<std::pair<TokenId, float>> logit_bias;

    // Throws gemma::Error naming the offending field for values llama.cpp would reject or misread.
    void validate(int32_t n_vocab) const;
    std::string describe() const;  // one line for logs: "temp 0.80, top_k 40, ..."
};

// One candidate of the working distribution, as llama_token_data.
struct TokenCandidate {
    TokenId id;
    float logit;
    float p;
};

struct TokenLogprob {
    TokenId id;
    float logprob;
};

// Which distribution logprobs() reports.
enum class LogprobSource {
    Model,         // log-softmax of the raw logits over the whole vocabulary (OpenAI, llama.cpp server default)
    PostSampling,  // the distribution the final draw used (after penalties, top-k/p, min-p, temperature)
};

// Samples one token per call from a logits row. Buffers are sized at construction, so sample(), accept()
// and logprobs() allocate nothing. Not thread-safe; one per sequence.
class Sampler {
public:
    // n_ctx resolves penalty_last_n = -1 (the whole context).
    explicit Sampler(int32_t n_vocab, const SamplerParams& params = {}, int32_t n_ctx = 4096);

    // New parameters and a fresh state (history cleared, RNG reseeded); reuses the buffers.
    void reset(const SamplerParams& params);
    void reset() { reset(params_); }
    const SamplerParams& params() const { return params_; }
    uint32_t seed() const { return seed_; }  // the seed in use (the drawn one when params.seed is random)

    // Adds a token to the penalty window. Call it for the prompt tokens and for every sampled token,
    // as llama.cpp's server does.
    void accept(TokenId id);
    void clear_history();

    // Runs the chain over logits[0..n_vocab) and draws a token. Does not accept() it. `allowed` (a bitset
    // of n_vocab bits, e.g. a grammar's token mask) is the chain's first step: only those tokens are
    // candidates. Throws gemma::Error when it allows none.
    TokenId sample(const float* logits, const uint64_t* allowed = nullptr);

    // The candidates that reached the final draw, with their probabilities (valid until the next sample()).
    std::span<const TokenCandidate> candidates() const { return {cand_.data(), n_cand_}; }

    // Log-prob of `chosen` and the n most likely tokens (most likely first, ties by smaller id), written
    // into out_top (resized to min(n, candidates)). Model: over `logits`, which must be the row just
    // sampled; PostSampling: over candidates(), tokens outside it get -inf.
    float logprobs(const float* logits, TokenId chosen, int32_t n, LogprobSource src,
                   std::vector<TokenLogprob>* out_top);

    // The individual stages, public so tests can check each one. They work on the candidate array
    // in place exactly like their llama.cpp counterparts and keep its `sorted` flag up to date.
    struct Candidates {
        TokenCandidate* data;
        size_t size;
        bool sorted;  // by logit, descending (ties: smaller id first)
    };
    static void apply_top_k(Candidates& c, int32_t k);
    static void apply_top_p(Candidates& c, float p, size_t min_keep);
    static void apply_min_p(Candidates& c, float p, size_t min_keep);
    static void apply_temp(Candidates& c, float temp);
    static void softmax(Candidates& c, bool sort);
    // Returns the chosen index into c; fills p of every candidate.
    static size_t draw(Candidates& c, std::mt19937& rng);

private:
    void apply_penalties(float* logits);
    bool load_candidates(const float* logits);  // returns whether the candidates come out sorted
    bool load_allowed(const float* logits, const uint64_t* allowed);  // the same over the allowed tokens only
    void bias_and_penalize(const float* logits);  // work_ = logits + logit_bias, penalized

    int32_t n_vocab_;
    SamplerParams params_;
    uint32_t seed_ = 0;
    std::mt19937 rng_;
    std::vector<float> work_;             // [n_vocab] logits after bias and penalties
    std::vector<TokenCandidate> cand_;    // [n_vocab] working candidate array
    size_t n_cand_ = 0;
    std::vector<TokenCandidate> top_scratch_;  // top-n selection of logprobs()
    int32_t n_ctx_;
    std::vector<TokenId> history_;        // ring buffer of the last penalty_last_n accepted tokens
    size_t hist_head_ = 0, hist_size_ = 0;
    std::vector<int32_t> counts_;         // [n_vocab] occurrences in the window; < 0 marks "penalized already"
};

// Log-softmax of `logits` at `id`: logit - max - log(sum exp(l - max)), summed in double.
float token_logprob(const float* logits, int32_t n_vocab, TokenId id);

}  // namespace gemma
