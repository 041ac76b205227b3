// Slots, a bounded queue and the continuous-batching loop: every active request advances in each pass over the weights.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "model/engine.h"
#include "model/model.h"
#include "ops/thread_pool.h"
#include "server/task.h"
#include "tokenizer/tokenizer.h"

namespace gemma::server {

struct SchedulerParams {
    int n_slots = 4;
    int64_t n_ctx = 0;          // positions per slot; 0: the model's context length, capped by memory
    // Tokens per pass: one per decoding slot, the rest for prompts. Small enough that a new prompt
    // does not stall the streams for long and that a cancel is honoured within one pass; the CPU
    // kernels gain nothing from bigger batches (their tiles are a few tokens wide).
    int64_t n_batch = 128;
    int max_queue = 64;         // requests waiting for a slot beyond the slots themselves
    int n_threads = 0;          // <= 0: all cores
    TypeId kv_type = TypeId::F16;
};

struct SlotInfo {
    int id = 0;
    bool busy = false;
    int64_t n_cached = 0;       // tokens in its KV cache
    int64_t n_ctx = 0;
};

class Scheduler {
public:
    Scheduler(const Model& model, const Tokenizer& tok, const SchedulerParams& params);
    ~Scheduler();  // stops the loop; unfinished tasks finish with "cancelled"
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // Queues a request (prompt already checked against n_ctx()). Returns nullptr when the slots and
    // the queue are all taken.
    std::shared_ptr<Task> submit(GenRequest req);

    // Cancels every queued and running request (server shutdown).
    void cancel_all();

    int64_t n_ctx() const { return n_ctx_; }
    size_t kv_bytes() const { return kv_bytes_; }  // all slots' caches when full
    int n_slots() const { return static_cast<int>(slots_.size()); }
    std::vector<SlotInfo> slots() const;
    int n_queued() const;

private:
    enum class State { Idle, Prefill, Decode };
    struct Slot {
        int id = 0;
        std::unique_ptr<SeqCache> kv;
        std::unique_ptr<Sampler> sampler;
        std::vector<TokenId> cached;   // the tokens whose K/V the cache holds, in order
        State state = State::Idle;
        std::shared_ptr<Task> task;
        std::unique_ptr<OutputText> out;
        size_t n_prefilled = 0;        // prompt tokens in the cache so far
        TokenId next = kNoToken;       // sampled, not yet evaluated
        int32_t n_gen = 0;
        TaskTimings tm;
        std::chrono::steady_clock::time_point t_start, t_first;
        // Filled by the parallel sampling step.
        TokenId sampled = kNoToken;
        float logprob = 0.0f;
        std::vector<TokenLogprob> top;
    };

    void loop();
    // Moves queued tasks into free slots (longest cached prefix first); called with mu_ held.
    void assign_locked();
    void start(Slot& s, std::shared_ptr<Task> task);
    void step();
    void after_sample(Slot& s);
    void finish(Slot& s, const char* reason, const std::string& error = {}, bool have_lock = false);

    const Model& model_;
    const Tokenizer& tok_;
    SchedulerParams params_;
    std::unique_ptr<ops::ThreadPool> pool_;
    std::unique_ptr<Engine> ctx_;
    int64_t n_ctx_ = 0;
    size_t kv_bytes_ = 0;
    std::vector<Slot> slots_;
    std::vector<float> logits_;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<Task>> queue_;
    int n_active_ = 0;                  // slots with a task (guarded by mu_)
    std::vector<std::shared_ptr<Task>> running_;  // per slot, for cancel_all (guarded by mu_)
    std::vector<SlotInfo> info_;        // snapshot for slots(), guarded by mu_
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace gemma::server
