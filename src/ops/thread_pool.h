// Persistent worker pool: parallel_for over fixed chunks, spinning between ops for low decode latency.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace gemma::ops {

// Workers pick chunks dynamically, but callers define what a chunk is, so results never depend on
// the thread count: the same chunk always computes the same thing, whichever thread runs it.
class ThreadPool {
public:
    // n_threads counts the calling thread too (n_threads - 1 workers are started). <= 0: all cores.
    explicit ThreadPool(int n_threads = 0);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return n_threads_; }

    // Calls fn(chunk, thread) for every chunk in [0, n_chunks); thread is in [0, size()) and identifies
    // per-thread scratch. Returns when all chunks are done. The first exception thrown by fn is
    // rethrown here (remaining chunks are skipped). Not reentrant: fn must not call parallel_for.
    // Allocates nothing, so it may be used in the decode loop.
    template <typename F>
    void parallel_for(int64_t n_chunks, F&& fn) {
        using Fn = std::remove_reference_t<F>;
        run(n_chunks, [](void* ctx, int64_t chunk, int thread) { (*static_cast<Fn*>(ctx))(chunk, thread); },
            const_cast<void*>(static_cast<const void*>(&fn)));
    }

    // Default thread count: the cores this process may run on.
    static int default_threads();

private:
    using CallFn = void (*)(void*, int64_t, int);
    void run(int64_t n_chunks, CallFn call, void* ctx);
    void worker_main(int thread);
    void work(int thread);

    int n_threads_ = 1;
    std::vector<std::thread> workers_;

    // The current job; published by bumping generation_.
    CallFn call_ = nullptr;
    void* ctx_ = nullptr;
    int64_t n_chunks_ = 0;
    alignas(64) std::atomic<int64_t> next_chunk_{0};
    alignas(64) std::atomic<uint64_t> generation_{0};
    alignas(64) std::atomic<int> remaining_{0};   // workers that have not finished the current job
    alignas(64) std::atomic<int> n_sleeping_{0};
    std::atomic<bool> failed_{false};
    std::atomic<bool> stop_{false};
    std::exception_ptr error_;
    std::mutex mutex_;
    std::condition_variable cv_;
};

}  // namespace gemma::ops
