// Thread pool implementation: generation-tagged chunk counter, spin-then-sleep idle wait.
#include "ops/thread_pool.h"

#include <sched.h>

#include <chrono>

#include "core/error.h"

namespace gemma::ops {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// How long an idle worker keeps spinning before it sleeps. Decode issues a parallel_for every few
// tens of microseconds, so a worker that slept between them would pay a futex wake-up each time.
constexpr auto kSpinBudget = std::chrono::microseconds(2000);

inline uint64_t gen_of(uint64_t s) { return s >> 32; }
inline int64_t chunk_of(uint64_t s) { return static_cast<int64_t>(s & 0xFFFFFFFFu); }

}  // namespace

int ThreadPool::default_threads() {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    const unsigned hc = std::thread::hardware_concurrency();
    return hc > 0 ? static_cast<int>(hc) : 1;
}

ThreadPool::ThreadPool(int n_threads) {
    n_threads_ = n_threads > 0 ? n_threads : default_threads();
    workers_.reserve(static_cast<size_t>(n_threads_ - 1));
    for (int t = 1; t < n_threads_; ++t) workers_.emplace_back([this, t] { worker_main(t); });
}

ThreadPool::~ThreadPool() {
    stop_.store(true, std::memory_order_seq_cst);
    // A new generation with no chunks wakes everyone; they see stop_ and leave.
    state_.store((gen_of(state_.load()) + 1) << 32, std::memory_order_seq_cst);
    { std::lock_guard<std::mutex> lock(mutex_); }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
}

void ThreadPool::work(uint64_t gen, int thread, bool is_caller) {
    Slot& slot = slots_[gen & 1];
    uint64_t s = state_.load(std::memory_order_acquire);
    for (;;) {
        if (gen_of(s) != gen) return;
        const int64_t n = slot.n_chunks.load(std::memory_order_relaxed);
        const int64_t c = chunk_of(s);
        if (c >= n) return;
        // The caller owns the current generation, so a plain increment is safe for it.
        if (is_caller) {
            s = state_.fetch_add(1, std::memory_order_acq_rel);
            if (chunk_of(s) >= n) return;
        } else if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
            continue;
        }
        if (!slot.failed.load(std::memory_order_relaxed)) {
            try {
                slot.call.load(std::memory_order_relaxed)(slot.ctx.load(std::memory_order_relaxed), chunk_of(s), thread);
            } catch (...) {
                if (!slot.failed.exchange(true)) slot.error = std::current_exception();
            }
        }
        slot.done.fetch_add(1, std::memory_order_acq_rel);
        s = state_.load(std::memory_order_acquire);
    }
}

void ThreadPool::worker_main(int thread) {
    uint64_t seen = 0;
    for (;;) {
        uint64_t s = state_.load(std::memory_order_acquire);
        if (gen_of(s) == seen) {
            const auto start = std::chrono::steady_clock::now();
            for (int i = 0;; ++i) {
                cpu_relax();
                s = state_.load(std::memory_order_acquire);
                if (gen_of(s) != seen) break;
                if ((i & 255) == 255 && std::chrono::steady_clock::now() - start > kSpinBudget) break;
            }
        }
        if (gen_of(s) == seen) {
            // seq_cst pairs with run(): either run() sees us sleeping and notifies, or we see its store.
            n_sleeping_.fetch_add(1, std::memory_order_seq_cst);
            std::unique_lock<std::mutex> lock(mutex_);
            cv_.wait(lock, [&] { return gen_of(state_.load(std::memory_order_seq_cst)) != seen; });
            n_sleeping_.fetch_sub(1, std::memory_order_relaxed);
            s = state_.load(std::memory_order_acquire);
        }
        if (stop_.load(std::memory_order_acquire)) return;
        seen = gen_of(s);
        work(seen, thread, false);
    }
}

void ThreadPool::run(int64_t n_chunks, CallFn call, void* ctx) {
    if (n_chunks <= 0) return;
    if (n_threads_ == 1 || n_chunks == 1) {
        for (int64_t c = 0; c < n_chunks; ++c) call(ctx, c, 0);
        return;
    }
    GEMMA_ASSERT(n_chunks < (int64_t{1} << 31));
    const uint64_t gen = gen_of(state_.load(std::memory_order_relaxed)) + 1;
    Slot& slot = slots_[gen & 1];
    slot.call.store(call, std::memory_order_relaxed);
    slot.ctx.store(ctx, std::memory_order_relaxed);
    slot.n_chunks.store(n_chunks, std::memory_order_relaxed);
    slot.done.store(0, std::memory_order_relaxed);
    slot.failed.store(false, std::memory_order_relaxed);
    slot.error = nullptr;
    state_.store(gen << 32, std::memory_order_seq_cst);  // publishes the job
    if (n_sleeping_.load(std::memory_order_seq_cst) > 0) {
        { std::lock_guard<std::mutex> lock(mutex_); }
        cv_.notify_all();
    }
    work(gen, 0, true);
    // Only chunks some thread claimed are outstanding; wait for those.
    for (int i = 0; slot.done.load(std::memory_order_acquire) != n_chunks; ++i) {
        cpu_relax();
        if (i > 20000) sched_yield();
    }
    if (slot.failed.load(std::memory_order_relaxed)) std::rethrow_exception(slot.error);
}

}  // namespace gemma::ops
