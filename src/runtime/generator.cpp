// Generation loop: prefix-reusing prefill, sampling, EOG / stop-string / length / context stops, streaming.
#include "runtime/generator.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace gemma {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

bool raised(const std::atomic<bool>* flag) { return flag && flag->load(std::memory_order_relaxed); }

}  // namespace

const char* stop_reason_name(StopReason r) {
    switch (r) {
        case StopReason::None: return "none";
        case StopReason::Eog: return "eog";
        case StopReason::StopString: return "stop";
        case StopReason::MaxTokens: return "length";
        case StopReason::ContextFull: return "context_full";
        case StopReason::Cancelled: return "cancelled";
        case StopReason::Grammar: return "grammar";
    }
    return "?";
}

double GenerationTimings::prompt_tps() const {
    const int64_t n = n_prompt - n_reused;
    return prompt_ms > 0 ? 1e3 * static_cast<double>(n) / prompt_ms : 0.0;
}

double GenerationTimings::gen_tps() const { return gen_ms > 0 ? 1e3 * static_cast<double>(n_gen) / gen_ms : 0.0; }

std::string GenerationTimings::describe() const {
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "prompt:     %lld tokens (%lld reused from the cache), %.2f s, %.2f tokens/s\n"
                  "generation: %lld tokens, %.2f s, %.2f tokens/s (sampling %.1f ms)\n",
                  static_cast<long long>(n_prompt), static_cast<long long>(n_reused), prompt_ms / 1e3, prompt_tps(),
                  static_cast<long long>(n_gen), gen_ms / 1e3, gen_tps(), sample_ms);
    return buf;
}

size_t common_prefix(std::span<const TokenId> a, std::span<const TokenId> b) {
    const size_t n = std::min(a.size(), b.size());
    size_t i = 0;
    while (i < n && a[i] == b[i]) ++i;
    return i;
}

Generator::Generator(Context& ctx, const Tokenizer& tok)
    : ctx_(ctx), tok_(tok), sampler_(static_cast<int32_t>(ctx.config().n_vocab), SamplerParams{},
                                     static_cast<int32_t>(ctx.n_ctx())) {
    cached_.reserve(static_cast<size_t>(ctx.n_ctx()));
    if (tok.vocab().size() > ctx.config().n_vocab)
        throw_error("the tokenizer has " + std::to_string(tok.vocab().size()) + " tokens but the model only " +
                    std::to_string(ctx.config().n_vocab));
}

void Generator::clear() {
    cached_.clear();
    ctx_.kv_cache().clear();
}

const float* Generator::prefill(std::span<const TokenId> prompt, const std::atomic<bool>* cancel,
                                GenerationTimings* timings) {
    if (prompt.empty()) throw_error("the prompt is empty");
    const int64_t n_ctx = ctx_.n_ctx();
    if (static_cast<int64_t>(prompt.size()) > n_ctx)
        throw ContextFullError("the prompt is " + std::to_string(prompt.size()) + " tokens but the context holds " +
                               std::to_string(n_ctx) + " (use a larger context, or a shorter prompt or conversation)");
    // Someone else may have used the context since; only the slots it still holds can be trusted.
    if (static_cast<int64_t>(cached_.size()) > ctx_.n_past()) cached_.resize(static_cast<size_t>(ctx_.n_past()));
    size_t keep = common_prefix(cached_, prompt);
    if (keep == prompt.size()) --keep;  // the logits of the last token are needed again
    // A sliding-window cache far past the common prefix no longer holds what the prefix's next token sees.
    keep = static_cast<size_t>(ctx_.kv_cache().resume_point(static_cast<int64_t>(keep)));
    cached_.resize(keep);
    ctx_.kv_cache().set_n_past(static_cast<int64_t>(keep));
    if (timings) {
        timings->n_prompt = static_cast<int64_t>(prompt.size());
        timings->n_reused = static_cast<int64_t>(keep);
    }

    const auto t0 = Clock::now();
    const float* logits = nullptr;
    // Batches of n_batch, so a cancel request is honoured within one batch of a long prompt.
    const auto step = static_cast<size_t>(std::max<int64_t>(ctx_.n_batch(), 1));
    for (size_t i = keep; i < prompt.size(); i += step) {
        if (raised(cancel)) {
            logits = nullptr;
            break;
        }
        const auto chunk = prompt.subspan(i, std::min(step, prompt.size() - i));
        try {
            logits = ctx_.eval(chunk);
        } catch (...) {
            cached_.resize(std::min(cached_.size(), static_cast<size_t>(ctx_.n_past())));
            throw;
        }
        cached_.insert(cached_.end(), chunk.begin(), chunk.end());
    }
    if (timings) timings->prompt_ms = ms_since(t0);
    return logits;
}

size_t Generator::stop_hold(const std::vector<std::string>& stop) const {
    // Longest tail of pending_ that could still grow into a stop string.
    size_t hold = 0;
    const std::string_view text(pending_);
    for (const std::string& s : stop) {
        for (size_t len = std::min(s.size() - 1, text.size()); len > hold; --len) {
            if (text.substr(text.size() - len) == std::string_view(s).substr(0, len)) {
                hold = len;
                break;
            }
        }
    }
    return hold;
}

bool Generator::release(size_t n, TokenId token, float logprob, GenerationResult* result, const TokenCallback& cb) {
    const size_t old = result->text.size();
    result->text.append(pending_, 0, n);
    pending_.erase(0, n);
    if (!cb) return true;
    TokenEvent ev;
    ev.token = token;
    ev.text = std::string_view(result->text).substr(old);
    ev.logprob = logprob;
    if (token != kNoToken) ev.top = top_;
    return cb(ev);
}

GenerationResult Generator::generate(std::span<const TokenId> prompt, const GenerateParams& params,
                                     const TokenCallback& on_token) {
    GenerationResult result;
    for (const std::string& s : params.stop)
        if (s.empty()) throw_error("stop strings must not be empty");
    sampler_.reset(params.sampling);
    result.seed = sampler_.seed();
    pending_.clear();
    top_.clear();
    if (params.n_probs > 0) top_.reserve(static_cast<size_t>(params.n_probs));

    GenerationTimings& tm = result.timings;
    const float* logits = prefill(prompt, params.cancel, &tm);
    if (!logits) {
        result.stop_reason = StopReason::Cancelled;
        return result;
    }
    // The penalty window starts with the prompt, as in llama.cpp's server.
    const int32_t last_n = params.sampling.penalty_last_n < 0 ? static_cast<int32_t>(ctx_.n_ctx())
                                                              : params.sampling.penalty_last_n;
    const size_t first = prompt.size() - std::min(prompt.size(), static_cast<size_t>(last_n));
    for (size_t i = first; i < prompt.size(); ++i) sampler_.accept(prompt[i]);

    const Vocab& vocab = tok_.vocab();
    std::unique_ptr<grammar::Matcher> matcher;
    grammar::TokenMask mask;
    if (params.grammar) matcher = std::make_unique<grammar::Matcher>(params.grammar);
    const auto t0 = Clock::now();
    std::chrono::nanoseconds sample_time{0};
    StopReason reason = StopReason::None;
    for (;;) {
        if (params.max_tokens >= 0 && static_cast<int64_t>(result.tokens.size()) >= params.max_tokens) {
            reason = StopReason::MaxTokens;
            break;
        }
        if (raised(params.cancel)) {
            reason = StopReason::Cancelled;
            break;
        }
        const auto ts = Clock::now();
        if (matcher) matcher->fill_mask(&mask);
        const TokenId t = sampler_.sample(logits, matcher ? mask.bits.data() : nullptr);
        if (matcher && !matcher->accept(t)) throw_error("internal: the grammar rejected a token from its own mask");
        sampler_.accept(t);
        float logprob = 0.0f;
        if (params.n_probs > 0) logprob = sampler_.logprobs(logits, t, params.n_probs, params.logprob_source, &top_);
        sample_time += Clock::now() - ts;
        result.tokens.push_back(t);

        if ((!params.ignore_eog || matcher) && vocab.is_eog(t)) {
            reason = StopReason::Eog;
            break;
        }
        tok_.append_piece(t, params.special, &pending_);
        size_t stop_at = std::string::npos;
        for (const std::string& s : params.stop) {
            const size_t pos = pending_.find(s);
            if (pos < stop_at) {
                stop_at = pos;
                result.stop_string = s;
            }
        }
        if (stop_at != std::string::npos) {
            release(stop_at, t, logprob, &result, on_token);
            pending_.clear();
            reason = StopReason::StopString;
            break;
        }
        size_t n = pending_.size() - std::max(stop_hold(params.stop), utf8_incomplete_tail(pending_));
        // Never cut a character in two, even for a stop string that starts inside one.
        for (int back = 0; back < 3 && n > 0 && n < pending_.size() &&
                           (static_cast<unsigned char>(pending_[n]) & 0xC0) == 0x80; ++back)
            --n;
        if (!release(n, t, logprob, &result, on_token)) {
            reason = StopReason::Cancelled;
            break;
        }
        if (matcher && matcher->done()) {
            reason = StopReason::Grammar;
            break;
        }
        if (params.max_tokens >= 0 && static_cast<int64_t>(result.tokens.size()) >= params.max_tokens) {
            reason = StopReason::MaxTokens;  // the last token is not evaluated: nothing would use its logits
            break;
        }
        if (ctx_.n_past() >= ctx_.n_ctx()) {
            reason = StopReason::ContextFull;
            result.message = "context full: all " + std::to_string(ctx_.n_ctx()) +
                             " positions of the KV cache are used (use a larger context, or start over)";
            break;
        }
        logits = ctx_.decode(t);
        cached_.push_back(t);
    }
    // Whatever was held back can no longer become a stop string.
    if (reason != StopReason::StopString && !pending_.empty()) release(pending_.size(), kNoToken, 0.0f, &result, on_token);
    result.stop_reason = reason;
    tm.n_gen = static_cast<int64_t>(result.tokens.size());
    tm.gen_ms = ms_since(t0);
    tm.sample_ms = std::chrono::duration<double, std::milli>(sample_time).count();
    return result;
}

}  // namespace gemma
