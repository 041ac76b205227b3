// Speculative decoding: a draft model with the same vocabulary proposes tokens; the target checks them all in one
// batched pass and keeps what its own decoding would have produced (greedy: exactly; sampling: in distribution).
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "model/context.h"
#include "runtime/sampler.h"
#include "tokenizer/vocab.h"

namespace gemma {

struct DraftParams {
    int32_t n_max = 16;    // most tokens drafted per step (llama.cpp's --draft-max)
    int32_t n_min = 0;     // fewer drafted tokens than this are not verified: the step decodes plainly (--draft-min)
    float p_min = 0.75f;   // drafting stops at a token the draft gives less probability than this (--draft-p-min)
    void validate() const;  // throws gemma::Error naming the option
};

// Throws gemma::Error unless the two vocabularies hold the same token texts in the same order (a draft must speak
// the target's tokens; equal counts are not enough).
void check_same_vocab(const Vocab& target, const Vocab& draft, const std::string& draft_name);

// The candidates a sampler drew from, with their probabilities (the proposal distribution q of one draft token).
struct TokenDist {
    std::vector<TokenCandidate> cand;
};

// Proposes continuations with a draft model over its own context, which it keeps holding the target's accepted
// tokens (only what changed since the last step is evaluated, rolled back past rejected drafts).
class Drafter {
public:
    Drafter(Context& draft, const DraftParams& params);

    // Sets the drafting distribution for a generation: `sampling` with its penalties off (greedy when temp <= 0),
    // seeded once from it, so successive drafts draw independent numbers (reseeding per step would make a draft
    // depend on the earlier steps' outcomes, which breaks the accept/reject rule's guarantee).
    void start(const SamplerParams& sampling);
    // Up to n_max tokens continuing `history` (every token the target has accepted, the last one possibly not yet
    // evaluated). Greedy: the draft's most likely token each time, stopping below p_min. Otherwise drawn from the
    // start()ed distribution, each draw's distribution kept in dists(). Fewer than n_min: none.
    std::span<const TokenId> propose(std::span<const TokenId> history, int32_t n_max);
    // The proposal distributions of the last propose() (sampled drafting only).
    std::span<const TokenDist> dists() const { return {q_.data(), out_.size()}; }
    const DraftParams& params() const { return params_; }
    Context& context() { return ctx_; }
    void clear();

private:
    Context& ctx_;
    DraftParams params_;
    Sampler sampler_;
    bool greedy_ = true;
    std::vector<TokenId> cached_;   // tokens whose K/V the draft cache holds, in order
    std::vector<TokenId> out_;
    std::vector<TokenDist> q_;
};

// Counters for the acceptance rate.
struct DraftStats {
    int64_t n_drafted = 0;   // draft tokens sent for verification
    int64_t n_accepted = 0;  // of those, kept
    int64_t n_steps = 0;     // verification passes
    double acceptance() const { return n_drafted ? static_cast<double>(n_accepted) / static_cast<double>(n_drafted) : 0; }
};

// The target's side of one step. rows holds its logits after each of [t, d_1 .. d_k] (k + 1 rows of n_vocab), where
// t is the token it had pending and d the drafts. Position by position, as plain decoding does (target.sample on the
// row, then target.accept of the token kept, so penalties see every earlier token): greedy keeps d_i while it equals
// the target's choice; sampling keeps d_i with probability min(1, p(d_i) / q_i(d_i)) and otherwise draws from
// max(0, p - q_i) renormalised, which makes every emitted token follow the target's own distribution p. The first
// token not kept ends the step; after k kept drafts one more is drawn from the last row. Appends the emitted tokens
// (the kept drafts, then one more) to `emitted` and returns how many drafts were kept. q holds each draft's proposal
// distribution (unused when greedy); `scratch` is n_vocab floats, zero on entry and on return.
int32_t verify_drafts(Sampler& target, const float* rows, int64_t n_vocab, std::span<const TokenId> drafts,
                      std::span<const TokenDist> q, std::mt19937& rng, std::vector<float>& scratch,
                      std::vector<TokenId>* emitted);

}  // namespace gemma
