// Generation session over one Context: prompt prefill with prefix reuse, decode loop, stops, streaming.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "model/context.h"
#include "runtime/sampler.h"
#include "runtime/speculative.h"
#include "tokenizer/tokenizer.h"

namespace gemma {

// A prompt that does not fit the KV cache. A separate type so callers (chat, server) can offer a way out.
class ContextFullError : public Error {
public:
    using Error::Error;
};

enum class StopReason {
    None,
    Eog,          // an end-of-generation token (<eos>, <end_of_turn>, the `</s>` quirk)
    StopString,   // one of GenerateParams::stop appeared in the text
    MaxTokens,    // GenerateParams::max_tokens reached
    ContextFull,  // the KV cache has no slot left for the next token
    Cancelled,    // the cancel flag was raised or the callback returned false
};
// "eog", "stop", "length", "context_full", "cancelled" (the server maps these to finish_reason).
const char* stop_reason_name(StopReason r);

struct GenerateParams {
    int32_t max_tokens = -1;          // < 0: no limit (EOG, a stop string or a full context end it)
    std::vector<std::string> stop;    // generation ends before any of these; their text is never emitted
    SamplerParams sampling;
    bool ignore_eog = false;          // sample past EOG tokens (benchmarks)
    bool special = false;             // render control tokens' text in the output
    int32_t n_probs = 0;              // > 0: log-prob of each token plus its n_probs most likely alternatives
    LogprobSource logprob_source = LogprobSource::Model;
    const std::atomic<bool>* cancel = nullptr;  // polled between prompt batches and between tokens
};

struct GenerationTimings {
    int64_t n_prompt = 0;       // prompt tokens
    int64_t n_reused = 0;       // of those, found in the KV cache and not evaluated again
    double prompt_ms = 0;       // evaluating the n_prompt - n_reused others
    int64_t n_gen = 0;          // tokens sampled
    double gen_ms = 0;          // sampling + decoding them
    double sample_ms = 0;       // part of gen_ms spent in the sampler
    double prompt_tps() const;  // evaluated prompt tokens per second
    double gen_tps() const;
    std::string describe() const;  // two lines for stderr
};

// One sampled token, as the callback sees it.
struct TokenEvent {
    TokenId token = kNoToken;   // kNoToken for the final flush of held-back text
    std::string_view text;      // text released now (may be empty, may include earlier tokens' held-back text)
    float logprob = 0.0f;       // with n_probs > 0
    std::span<const TokenLogprob> top;  // with n_probs > 0: most likely first
};
// Return false to stop generating (StopReason::Cancelled).
using TokenCallback = std::function<bool(const TokenEvent&)>;

struct GenerationResult {
    std::string text;              // everything released (what the callback saw, concatenated)
    std::vector<TokenId> tokens;   // every sampled token, including the EOG token that ended it
    StopReason stop_reason = StopReason::None;
    std::string stop_string;       // the stop string that matched
    std::string message;           // why it stopped, for ContextFull (a sentence for the user)
    uint32_t seed = 0;             // the sampler seed used (the drawn one when it was random)
    GenerationTimings timings;
    DraftStats draft;              // speculative decoding, since the drafter was set (zero without one)
};

// Owns the mapping "KV cache slot i holds token cached_tokens()[i]" for its Context, so each new prompt
// only evaluates what differs from the last one (multi-turn chat, server slots).
class Generator {
public:
    Generator(Context& ctx, const Tokenizer& tok);

    // Makes the KV cache hold exactly `prompt` and returns the logits after its last token (valid until
    // the next evaluation), or nullptr when `cancel` was raised between batches. The longest common
    // prefix with cached_tokens() is reused; the last prompt token is always evaluated again for its logits.
    // Throws ContextFullError when the prompt is longer than the context.
    const float* prefill(std::span<const TokenId> prompt, const std::atomic<bool>* cancel = nullptr,
                         GenerationTimings* timings = nullptr);

    GenerationResult generate(std::span<const TokenId> prompt, const GenerateParams& params,
                              const TokenCallback& on_token = {});

    // Speculative decoding: drafts from `drafter` (whose model must share the vocabulary; see check_same_vocab)
    // are checked in one target pass each step. Greedy output is token for token what plain decoding gives;
    // sampled output follows the same distribution. nullptr turns it off.
    void set_drafter(Drafter* drafter);

    // Forgets the cache (the next prompt is evaluated in full).
    void clear();
    std::span<const TokenId> cached_tokens() const { return cached_; }
    int64_t n_ctx() const { return ctx_.n_ctx(); }
    Context& context() { return ctx_; }
    const Tokenizer& tokenizer() const { return tok_; }

private:
    // Appends released text to result->text and reports it; returns the callback's answer.
    bool release(size_t n, TokenId token, float logprob, GenerationResult* result, const TokenCallback& cb);
    size_t stop_hold(const std::vector<std::string>& stop) const;

    Context& ctx_;
    const Tokenizer& tok_;
    Sampler sampler_;
    std::vector<TokenId> cached_;
    std::string pending_;               // decoded bytes not yet released (incomplete UTF-8, stop-string prefixes)
    std::vector<TokenLogprob> top_;     // scratch for n_probs
    Drafter* drafter_ = nullptr;
    DraftStats draft_stats_;
    std::vector<TokenId> draft_history_, batch_, emitted_;
    std::vector<float> rows_, verify_scratch_;  // target logits of a verification pass; verify_drafts' scratch
};

// Longest common prefix of two token sequences.
size_t common_prefix(std::span<const TokenId> a, std::span<const TokenId> b);

}  // namespace gemma
