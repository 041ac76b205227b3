// Thread pool implementation: generation counter + spin-then-sleep wait, chunk counter, completion count.
#include "ops/thread_pool.h"

#include <sched.h>

#include <chrono>

namespace gemma::ops {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

// How long an idle worker keeps spinning before it sleeps. Decode issues a parallel_for every few
// tens of microseconds, so a worker that sleeps between them would pay a futex wake-up each time.
constexpr auto kSpinBudget = std::chrono::microseconds(2000);

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
    generation_.fetch_add(1, std::memory_order_seq_cst);
    {
        std::lock_guard<std::mutex> lock(mutex_);
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
}

void ThreadPool::work(int thread) {
    const int64_t n = n_chunks_;
    for (;;) {
        if (failed_.load(std::memory_order_relaxed)) break;
        const int64_t c = next_chunk_.fetch_add(1, std::memory_order_relaxed);
        if (c >= n) break;
        try {
            call_(ctx_, c, thread);
        } catch (...) {
            if (!failed_.exchange(true)) error_ = std::current_exception();
        }
    }
}

void ThreadPool::worker_main(int thread) {
    uint64_t seen = 0;
    for (;;) {
        // Wait for a new generation: spin first, then sleep on the condition variable.
        uint64_t g = generation_.load(std::memory_order_acquire);
        if (g == seen) {
            const auto start = std::chrono::steady_clock::now();
            for (int i = 0;; ++i) {
                cpu_relax();
                g = generation_.load(std::memory_order_acquire);
                if (g != seen) break;
                if ((i & 255) == 255 && std::chrono::steady_clock::now() - start > kSpinBudget) break;
            }
        }
        if (g == seen) {
            // seq_cst pairs with run(): either run() sees us sleeping and notifies, or we see its bump.
            n_sleeping_.fetch_add(1, std::memory_order_seq_cst);
            std::unique_lock<std::mutex> lock(mutex_);
            cv_.wait(lock, [&] { return generation_.load(std::memory_order_seq_cst) != seen; });
            n_sleeping_.fetch_sub(1, std::memory_order_relaxed);
            g = generation_.load(std::memory_order_acquire);
        }
        seen = g;
        if (stop_.load(std::memory_order_acquire)) return;
        work(thread);
        remaining_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

void ThreadPool::run(int64_t n_chunks, CallFn call, void* ctx) {
    if (n_chunks <= 0) return;
    if (n_threads_ == 1 || n_chunks == 1) {
        for (int64_t c = 0; c < n_chunks; ++c) call(ctx, c, 0);
        return;
    }
    call_ = call;
    ctx_ = ctx;
    n_chunks_ = n_chunks;
    next_chunk_.store(0, std::memory_order_relaxed);
    failed_.store(false, std::memory_order_relaxed);
    error_ = nullptr;
    remaining_.store(n_threads_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_seq_cst);  // publishes the job
    if (n_sleeping_.load(std::memory_order_seq_cst) > 0) {
        { std::lock_guard<std::mutex> lock(mutex_); }
        cv_.notify_all();
    }
    work(0);
    // Every worker must have seen this job before the next one may be published.
    for (int i = 0; remaining_.load(std::memory_order_acquire) != 0; ++i) {
        cpu_relax();
        if (i > 100000) sched_yield();
    }
    if (failed_.load(std::memory_order_relaxed)) std::rethrow_exception(error_);
}

}  // namespace gemma::ops
