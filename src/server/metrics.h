// /metrics: request counters and latency histograms, rendered with the scheduler's gauges in Prometheus text format.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "server/scheduler.h"

namespace gemma::server {

// Cumulative histogram with fixed upper bounds (seconds), safe to observe from any thread.
class Histogram {
public:
    explicit Histogram(std::vector<double> bounds);
    void observe(double v);
    // "# HELP/# TYPE" and the _bucket/_sum/_count lines.
    void render(const std::string& name, const std::string& help, std::string* out) const;

private:
    std::vector<double> bounds_;
    mutable std::mutex mu_;
    std::vector<uint64_t> counts_;  // per bucket (not cumulative); last: +Inf
    double sum_ = 0;
    uint64_t n_ = 0;
};

class Metrics {
public:
    Metrics();
    // Every HTTP request once it is answered: route label (known routes, else "other") and status.
    void request(const std::string& path, int status);
    // A finished completion: time to first token and whole-request latency (seconds).
    void completion(double ttft_s, double latency_s);
    // Completion requests between submission and the end of their reply (graceful shutdown waits for 0).
    void begin_reply() { in_flight_.fetch_add(1, std::memory_order_acq_rel); }
    void end_reply() { in_flight_.fetch_sub(1, std::memory_order_acq_rel); }
    int in_flight() const { return in_flight_.load(std::memory_order_acquire); }
    // Prometheus text format; `sched` may be null (model still loading).
    std::string render(const Scheduler* sched, bool ready) const;

private:
    mutable std::mutex mu_;
    std::map<std::pair<std::string, int>, uint64_t> requests_;
    Histogram ttft_, latency_;
    std::atomic<int> in_flight_{0};
};

}  // namespace gemma::server
