// One generation request travelling between an HTTP thread and the scheduler: parameters in, text and tokens out.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "grammar/matcher.h"
#include "runtime/sampler.h"
#include "server/output_text.h"

namespace gemma::server {

struct GenRequest {
    std::vector<TokenId> prompt;
    int32_t max_tokens = -1;        // < 0: until an end token, a stop string or a full context
    std::vector<std::string> stop;
    SamplerParams sampling;
    bool logprobs = false;          // report each token's log-prob
    int32_t top_logprobs = 0;       // ... and this many alternatives
    bool ignore_eos = false;
    std::shared_ptr<const grammar::CompiledGrammar> grammar;  // response_format: the reply must match it
};

// llama-server's "timings" numbers.
struct TaskTimings {
    int64_t n_prompt = 0;     // prompt tokens
    int64_t n_cached = 0;     // of those, reused from the slot's cache
    int64_t n_gen = 0;        // tokens generated
    double queue_ms = 0;      // waiting for a slot
    double prompt_ms = 0;     // slot assigned -> first token sampled
    double gen_ms = 0;        // first token -> last token
    int64_t n_drafted = 0;    // speculative decoding: drafted tokens checked, and kept
    int64_t n_draft_accepted = 0;
};

struct TaskResult {
    std::string finish_reason;  // "stop", "length"; "cancelled" or "error" when no client will read it
    std::string stop_string;    // the stop string that matched, if any
    std::string error;          // for "error"
    uint32_t seed = 0;
    int slot = -1;
    TaskTimings timings;
};

// Thread-safe mailbox: the scheduler appends released text/tokens and finally the result; the HTTP
// thread takes what arrived. Cancel is a flag the scheduler polls between steps.
class Task {
public:
    explicit Task(GenRequest req) : request(std::move(req)), submitted(std::chrono::steady_clock::now()) {}

    const GenRequest request;
    const std::chrono::steady_clock::time_point submitted;

    // Scheduler side.
    void emit(Released&& r) {
        if (r.empty()) return;
        {
            std::lock_guard<std::mutex> lk(mu_);
            box_.text += r.text;
            for (auto& t : r.tokens) box_.tokens.push_back(std::move(t));
        }
        cv_.notify_all();
    }
    void finish(TaskResult res) {
        {
            std::lock_guard<std::mutex> lk(mu_);
            result_ = std::move(res);
            done_ = true;
        }
        cv_.notify_all();
    }

    // HTTP side: waits up to `timeout` for news, moves it into *out; returns true once finished
    // (then *result is filled and nothing more will come).
    bool take(Released* out, TaskResult* result, std::chrono::milliseconds timeout) {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait_for(lk, timeout, [&] { return done_ || !box_.empty(); });
        out->text += box_.text;
        for (auto& t : box_.tokens) out->tokens.push_back(std::move(t));
        box_ = Released{};
        if (done_ && result) *result = result_;
        return done_;
    }
    bool finished() const {
        std::lock_guard<std::mutex> lk(mu_);
        return done_;
    }
    void cancel() { cancelled_.store(true, std::memory_order_relaxed); }
    bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    Released box_;
    TaskResult result_;
    bool done_ = false;
    std::atomic<bool> cancelled_{false};
};

}  // namespace gemma::server
