// The serving loop: assign queued requests to slots, batch one step of every active slot, sample, stream out.
#include "server/scheduler.h"

#include <algorithm>

#include "core/error.h"
#include "runtime/generator.h"

namespace gemma::server {
namespace {

using Clock = std::chrono::steady_clock;
double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

Scheduler::Scheduler(const Model& model, const Tokenizer& tok, const SchedulerParams& params)
    : model_(model), tok_(tok), params_(params) {
    const ModelConfig& c = model.config();
    if (params.n_slots < 1) throw_error("--parallel must be at least 1");
    if (params.max_queue < 0) throw_error("the queue size must be >= 0");
    if (tok.vocab().size() > c.n_vocab)
        throw_error("the tokenizer has " + std::to_string(tok.vocab().size()) + " tokens but the model only " +
                    std::to_string(c.n_vocab));
    pool_ = std::make_unique<ops::ThreadPool>(params.n_threads);
    EngineParams bp;
    bp.n_batch = std::max<int64_t>(params.n_batch, params.n_slots);
    bp.kv_type = params.kv_type;
    bp.pool = pool_.get();
    ctx_ = make_cpu_engine(model, bp);
    n_ctx_ = params.n_ctx > 0 ? params.n_ctx : default_n_ctx(*ctx_, params.n_slots);
    slots_.resize(static_cast<size_t>(params.n_slots));
    info_.resize(slots_.size());
    running_.resize(slots_.size());
    for (size_t i = 0; i < slots_.size(); ++i) {
        Slot& s = slots_[i];
        s.id = static_cast<int>(i);
        s.kv = ctx_->make_cache(n_ctx_);
        n_ctx_ = s.kv->n_ctx();
        kv_bytes_ += s.kv->bytes();
        s.sampler = std::make_unique<Sampler>(static_cast<int32_t>(c.n_vocab), SamplerParams{},
                                              static_cast<int32_t>(n_ctx_));
        s.cached.reserve(static_cast<size_t>(n_ctx_));
        info_[i] = SlotInfo{s.id, false, 0, n_ctx_};
    }
    logits_.resize(slots_.size() * static_cast<size_t>(c.n_vocab));
    thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    for (Slot& s : slots_)
        if (s.task) finish(s, "cancelled");
    for (auto& t : queue_) t->finish(TaskResult{"cancelled", {}, {}, 0, -1, {}});
}

std::shared_ptr<Task> Scheduler::submit(GenRequest req) {
    auto task = std::make_shared<Task>(std::move(req));
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (n_active_ + static_cast<int>(queue_.size()) >= n_slots() + params_.max_queue) return nullptr;
        queue_.push_back(task);
    }
    cv_.notify_all();
    return task;
}

std::vector<SlotInfo> Scheduler::slots() const {
    std::lock_guard<std::mutex> lk(mu_);
    return info_;
}

void Scheduler::cancel_all() {
    {
        std::lock_guard<std::mutex> lk(mu_);
        for (auto& t : queue_) t->cancel();
        for (auto& t : running_)
            if (t) t->cancel();
    }
    cv_.notify_all();
}

int Scheduler::n_queued() const {
    std::lock_guard<std::mutex> lk(mu_);
    return static_cast<int>(queue_.size());
}

void Scheduler::loop() {
    for (;;) {
        {
            std::unique_lock<std::mutex> lk(mu_);
            cv_.wait(lk, [&] { return stop_ || !queue_.empty() || n_active_ > 0; });
            if (stop_) return;
            assign_locked();
        }
        step();
    }
}

void Scheduler::assign_locked() {
    while (!queue_.empty()) {
        std::shared_ptr<Task> task = queue_.front();
        if (task->cancelled()) {
            queue_.pop_front();
            task->finish(TaskResult{"cancelled", {}, {}, 0, -1, {}});
            continue;
        }
        // The free slot whose cache shares the longest prefix with the prompt: a multi-turn chat finds
        // its history there. Among equals, the one holding the least (its cache is worth the least).
        Slot* best = nullptr;
        size_t best_prefix = 0;
        for (Slot& s : slots_) {
            if (s.task) continue;
            const size_t p = common_prefix(s.cached, task->request.prompt);
            if (!best || p > best_prefix || (p == best_prefix && s.cached.size() < best->cached.size())) {
                best = &s;
                best_prefix = p;
            }
        }
        if (!best) return;
        queue_.pop_front();
        ++n_active_;
        info_[static_cast<size_t>(best->id)].busy = true;
        running_[static_cast<size_t>(best->id)] = task;
        start(*best, std::move(task));
    }
}

// Called with mu_ held (from assign_locked).
void Scheduler::start(Slot& s, std::shared_ptr<Task> task) {
    const GenRequest& req = task->request;
    s.task = std::move(task);
    s.t_start = Clock::now();
    s.tm = TaskTimings{};
    s.tm.queue_ms = ms_between(s.task->submitted, s.t_start);
    s.tm.n_prompt = static_cast<int64_t>(req.prompt.size());
    s.n_gen = 0;
    s.out = std::make_unique<OutputText>(req.stop);
    try {
        s.sampler->reset(req.sampling);
    } catch (const std::exception& e) {
        // Requests are validated before they are queued; this only guards the invariant.
        s.state = State::Prefill;
        finish(s, "error", e.what(), /*have_lock=*/true);
        return;
    }
    size_t keep = std::min(common_prefix(s.cached, req.prompt), static_cast<size_t>(s.kv->n_past()));
    if (keep == req.prompt.size()) --keep;  // the logits after the last prompt token are needed again
    // A sliding-window cache far past the common prefix no longer holds what the prefix's next token sees.
    keep = static_cast<size_t>(s.kv->resume_point(static_cast<int64_t>(keep)));
    s.cached.resize(keep);
    s.kv->set_n_past(static_cast<int64_t>(keep));
    s.n_prefilled = keep;
    s.tm.n_cached = static_cast<int64_t>(keep);
    s.state = State::Prefill;
    // The penalty window starts with the prompt, as in llama.cpp's server.
    const int32_t last_n =
        req.sampling.penalty_last_n < 0 ? static_cast<int32_t>(n_ctx_) : req.sampling.penalty_last_n;
    const size_t first = req.prompt.size() - std::min(req.prompt.size(), static_cast<size_t>(last_n));
    for (size_t i = first; i < req.prompt.size(); ++i) s.sampler->accept(req.prompt[i]);
    if (req.max_tokens == 0) finish(s, "length", {}, /*have_lock=*/true);
}

void Scheduler::step() {
    for (Slot& s : slots_)
        if (s.task && s.task->cancelled()) finish(s, "cancelled");

    // One token for every decoding slot first (their latency is what users see), then prompt pieces
    // in the order the requests started, as far as the batch allows.
    std::vector<SeqChunk> chunks;
    std::vector<Slot*> in_batch, outputs;
    chunks.reserve(slots_.size());
    int64_t budget = ctx_->n_batch();
    for (Slot& s : slots_) {
        if (s.state != State::Decode || !s.task) continue;
        chunks.push_back(SeqChunk{s.kv.get(), std::span<const int32_t>(&s.next, 1),
                                  static_cast<int32_t>(s.cached.size()), 1});
        in_batch.push_back(&s);
        --budget;
    }
    std::vector<Slot*> prefill;
    for (Slot& s : slots_)
        if (s.task && s.state == State::Prefill) prefill.push_back(&s);
    std::sort(prefill.begin(), prefill.end(), [](const Slot* a, const Slot* b) { return a->t_start < b->t_start; });
    for (Slot* s : prefill) {
        const auto& prompt = s->task->request.prompt;
        const size_t m = std::min(static_cast<size_t>(std::max<int64_t>(budget, 0)), prompt.size() - s->n_prefilled);
        if (m == 0) break;
        const bool last = s->n_prefilled + m == prompt.size();
        chunks.push_back(SeqChunk{s->kv.get(), std::span<const int32_t>(prompt).subspan(s->n_prefilled, m),
                                  static_cast<int32_t>(s->n_prefilled), last ? 1 : 0});
        in_batch.push_back(s);
        budget -= static_cast<int64_t>(m);
    }
    if (chunks.empty()) return;
    for (size_t i = 0; i < chunks.size(); ++i)
        if (chunks[i].n_logits > 0) outputs.push_back(in_batch[i]);

    try {
        ctx_->forward(chunks, logits_.data());
    } catch (const std::exception& e) {
        for (Slot* s : in_batch) {
            s->cached.clear();
            s->kv->clear();
            finish(*s, "error", e.what());
        }
        return;
    }
    for (size_t i = 0; i < chunks.size(); ++i) {
        Slot& s = *in_batch[i];
        s.cached.insert(s.cached.end(), chunks[i].tokens.begin(), chunks[i].tokens.end());
        if (s.state == State::Prefill) s.n_prefilled += chunks[i].tokens.size();
    }

    // Each slot samples from its own row with its own sampler, so the work splits by slot and the
    // result does not depend on the thread count.
    const auto n_vocab = static_cast<size_t>(ctx_->config().n_vocab);
    ctx_->pool().parallel_for(static_cast<int64_t>(outputs.size()), [&](int64_t k, int) {
        Slot& s = *outputs[static_cast<size_t>(k)];
        const float* row = logits_.data() + static_cast<size_t>(k) * n_vocab;
        s.sampled = s.sampler->sample(row);
        s.sampler->accept(s.sampled);
        const GenRequest& req = s.task->request;
        if (req.logprobs)
            s.logprob = s.sampler->logprobs(row, s.sampled, req.top_logprobs, LogprobSource::Model, &s.top);
    });
    for (Slot* s : outputs) after_sample(*s);
}

void Scheduler::after_sample(Slot& s) {
    const GenRequest& req = s.task->request;
    if (s.state == State::Prefill) {
        s.t_first = Clock::now();
        s.tm.prompt_ms = ms_between(s.t_start, s.t_first);
        s.state = State::Decode;
    }
    const TokenId t = s.sampled;
    ++s.n_gen;
    if (!req.ignore_eos && tok_.vocab().is_eog(t)) {
        finish(s, "stop");
        return;
    }
    TokenRecord rec;
    rec.id = t;
    rec.piece = tok_.token_to_piece(t);
    if (req.logprobs) {
        rec.logprob = s.logprob;
        rec.top.reserve(s.top.size());
        for (const TokenLogprob& a : s.top) rec.top.push_back(TopLogprob{a.id, tok_.token_to_piece(a.id), a.logprob});
    }
    Released r;
    const bool stopped = s.out->push(std::move(rec), &r);
    s.task->emit(std::move(r));
    if (stopped) {
        finish(s, "stop");
    } else if ((req.max_tokens >= 0 && s.n_gen >= req.max_tokens) ||
               static_cast<int64_t>(s.cached.size()) >= n_ctx_) {
        // A full context ends the request like max_tokens does: max_tokens is clamped to what fits.
        finish(s, "length");
    } else {
        s.next = t;
    }
}

void Scheduler::finish(Slot& s, const char* reason, const std::string& error, bool have_lock) {
    const auto now = Clock::now();
    TaskResult res;
    res.finish_reason = reason;
    res.error = error;
    res.seed = s.sampler->seed();
    res.slot = s.id;
    if (s.out) {
        Released r;
        s.out->flush(&r);
        s.task->emit(std::move(r));
        res.stop_string = s.out->stop_matched();
    }
    s.tm.n_gen = s.n_gen;
    if (s.state == State::Decode) s.tm.gen_ms = ms_between(s.t_first, now);
    else s.tm.prompt_ms = ms_between(s.t_start, now);
    res.timings = s.tm;
    s.task->finish(std::move(res));
    s.task.reset();
    s.out.reset();
    s.state = State::Idle;
    std::unique_lock<std::mutex> lk(mu_, std::defer_lock);
    if (!have_lock) lk.lock();
    --n_active_;
    running_[static_cast<size_t>(s.id)].reset();
    info_[static_cast<size_t>(s.id)] = SlotInfo{s.id, false, static_cast<int64_t>(s.cached.size()), n_ctx_};
}

}  // namespace gemma::server
