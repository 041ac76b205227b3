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
    // rethrown here (remaining chunks are skipped). Not reentrant (fn must not call parallel_for) and
    // one caller at a time: contexts sharing a pool must not run forward passes concurrently.
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
    // Claims and runs chunks of the job published as generation `gen` until none is left or the job
    // was replaced.
    void work(uint64_t gen, int thread, bool is_caller);

    int n_threads_ = 1;
    std::vector<std::thread> workers_;

    // Two job slots, used alternately by successive generations: a worker still holding a stale
    // generation can only read the slot of a job that has not finished, so it never sees torn fields.
    struct alignas(64) Slot {
        // Atomics (relaxed) only because a stale worker may read them while they are rewritten; it
        // then fails its claim and never uses what it read.
        std::atomic<CallFn> call{nullptr};
        std::atomic<void*> ctx{nullptr};
        std::atomic<int64_t> n_chunks{0};
        std::atomic<int64_t> done{0};   // chunks finished (run or skipped after an error)
        std::atomic<bool> failed{false};
        std::exception_ptr error;
    };
    Slot slots_[2];
    // (generation << 32) | next chunk. Claiming a chunk is a CAS on the whole word, so a worker that
    // read an old generation can never take a chunk of a newer job. Only the caller waits, and only
    // for chunks that were actually claimed: a sleeping or descheduled idle worker never stalls it.
    alignas(64) std::atomic<uint64_t> state_{0};
    alignas(64) std::atomic<int> n_sleeping_{0};
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::condition_variable cv_;
};

}  // namespace gemma::ops
