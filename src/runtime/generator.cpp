// Generation loop: prefix-reusing prefill, sampling, EOG / stop-string / length / context stops, streaming.
#include "runtime/generator.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <random>

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
    if (drafter_) drafter_->clear();
}

void Generator::set_drafter(Drafter* drafter) {
    drafter_ = drafter;
    draft_stats_ = {};
    if (drafter && drafter->context().n_ctx() < ctx_.n_ctx())
        throw_error("the draft context holds " + std::to_string(drafter->context().n_ctx()) +
                    " positions, fewer than the target's " + std::to_string(ctx_.n_ctx()));
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
    const auto t0 = Clock::now();
    std::chrono::nanoseconds sample_time{0};
    auto at_limit = [&] {
        return params.max_tokens >= 0 && static_cast<int64_t>(result.tokens.size()) >= params.max_tokens;
    };
    // Reports one chosen token (already sampled and accepted; `row` is the logits it was chosen from); anything
    // but None ends the generation.
    auto emit = [&](TokenId t, const float* row) -> StopReason {
        float logprob = 0.0f;
        if (params.n_probs > 0) {
            const auto ts = Clock::now();
            logprob = sampler_.logprobs(row, t, params.n_probs, params.logprob_source, &top_);
            sample_time += Clock::now() - ts;
        }
        result.tokens.push_back(t);
        if (!params.ignore_eog && vocab.is_eog(t)) return StopReason::Eog;
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
            return StopReason::StopString;
        }
        size_t n = pending_.size() - std::max(stop_hold(params.stop), utf8_incomplete_tail(pending_));
        // Never cut a character in two, even for a stop string that starts inside one.
        for (int back = 0; back < 3 && n > 0 && n < pending_.size() &&
                           (static_cast<unsigned char>(pending_[n]) & 0xC0) == 0x80; ++back)
            --n;
        if (!release(n, t, logprob, &result, on_token)) return StopReason::Cancelled;
        // The last token is not evaluated: nothing would use its logits.
        return at_limit() ? StopReason::MaxTokens : StopReason::None;
    };
    // Drafting needs the target's rows for every drafted position, and post-sampling log-probs would need the
    // sampler's state per row: those runs decode plainly.
    const bool drafting = drafter_ && !(params.n_probs > 0 && params.logprob_source == LogprobSource::PostSampling);
    std::mt19937 verify_rng(result.seed ^ 0x9E3779B9u);
    if (drafting) {
        SamplerParams dsp = params.sampling;
        dsp.seed = result.seed;  // the seed in use, so a seeded run drafts the same way every time
        drafter_->start(dsp);
    }
    StopReason reason = StopReason::None;
    TokenId next = kNoToken;  // chosen and reported, not yet evaluated
    while (reason == StopReason::None) {
        if (next == kNoToken) {
            if (at_limit()) {
                reason = StopReason::MaxTokens;
                break;
            }
            const auto ts = Clock::now();
            next = sampler_.sample(logits);
            sampler_.accept(next);
            sample_time += Clock::now() - ts;
            if ((reason = emit(next, logits)) != StopReason::None) break;
        }
        if (raised(params.cancel)) {
            reason = StopReason::Cancelled;
            break;
        }
        if (ctx_.n_past() >= ctx_.n_ctx()) {
            reason = StopReason::ContextFull;
            result.message = "context full: all " + std::to_string(ctx_.n_ctx()) +
                             " positions of the KV cache are used (use a larger context, or start over)";
            break;
        }
        if (drafting) {
            // Drafts for the tokens after `next`: at most what the token limit and the context leave room for.
            int64_t room = ctx_.n_ctx() - ctx_.n_past() - 1;
            if (params.max_tokens >= 0) room = std::min<int64_t>(room, params.max_tokens - static_cast<int64_t>(result.tokens.size()));
            std::vector<TokenId>& hist = draft_history_;
            hist.assign(cached_.begin(), cached_.end());
            hist.push_back(next);
            const std::span<const TokenId> drafts =
                room > 0 ? drafter_->propose(hist, static_cast<int32_t>(std::min<int64_t>(room, INT32_MAX)))
                         : std::span<const TokenId>();
            if (!drafts.empty()) {
                // One pass over the target's weights checks every draft; rejected ones are rolled back.
                batch_.assign(1, next);
                batch_.insert(batch_.end(), drafts.begin(), drafts.end());
                const auto nv = static_cast<size_t>(ctx_.config().n_vocab);
                rows_.resize(batch_.size() * nv);
                verify_scratch_.resize(nv, 0.0f);
                ctx_.forward(batch_, static_cast<int32_t>(ctx_.n_past()), static_cast<int32_t>(batch_.size()), rows_.data());
                emitted_.clear();
                const auto ts = Clock::now();
                const int32_t kept = verify_drafts(sampler_, rows_.data(), static_cast<int64_t>(nv), drafts,
                                                   drafter_->dists(), verify_rng, verify_scratch_, &emitted_);
                sample_time += Clock::now() - ts;
                draft_stats_.n_steps += 1;
                draft_stats_.n_drafted += static_cast<int64_t>(drafts.size());
                draft_stats_.n_accepted += kept;
                cached_.insert(cached_.end(), batch_.begin(), batch_.begin() + 1 + kept);
                ctx_.kv_cache().set_n_past(static_cast<int64_t>(cached_.size()));
                next = kNoToken;
                for (size_t i = 0; i < emitted_.size() && reason == StopReason::None; ++i)
                    reason = emit(emitted_[i], rows_.data() + i * nv);
                if (reason == StopReason::None) next = emitted_.back();
                continue;
            }
        }
        logits = ctx_.decode(next);
        cached_.push_back(next);
        next = kNoToken;
    }
    // Whatever was held back can no longer become a stop string.
    if (reason != StopReason::StopString && !pending_.empty()) release(pending_.size(), kNoToken, 0.0f, &result, on_token);
    result.stop_reason = reason;
    tm.n_gen = static_cast<int64_t>(result.tokens.size());
    tm.gen_ms = ms_since(t0);
    tm.sample_ms = std::chrono::duration<double, std::milli>(sample_time).count();
    result.draft = draft_stats_;
    return result;
}

}  // namespace gemma
