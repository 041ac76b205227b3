// Prometheus text exposition (version 0.0.4) of the server's counters, gauges and histograms.
#include "server/metrics.h"

#include <cstdio>
#include <set>

namespace gemma::server {
namespace {

std::string num(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

void header(std::string* out, const std::string& name, const char* type, const std::string& help) {
    *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void sample(std::string* out, const std::string& name, double v) { *out += name + " " + num(v) + "\n"; }

const std::vector<double>& latency_bounds() {
    static const std::vector<double> b = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
    return b;
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
    size_t i = 0;
    while (i < bounds_.size() && v > bounds_[i]) ++i;
    std::lock_guard<std::mutex> lk(mu_);
    ++counts_[i];
    sum_ += v;
    ++n_;
}

void Histogram::render(const std::string& name, const std::string& help, std::string* out) const {
    header(out, name, "histogram", help);
    std::lock_guard<std::mutex> lk(mu_);
    uint64_t cum = 0;
    for (size_t i = 0; i < bounds_.size(); ++i) {
        cum += counts_[i];
        *out += name + "_bucket{le=\"" + num(bounds_[i]) + "\"} " + std::to_string(cum) + "\n";
    }
    *out += name + "_bucket{le=\"+Inf\"} " + std::to_string(n_) + "\n";
    sample(out, name + "_sum", sum_);
    *out += name + "_count " + std::to_string(n_) + "\n";
}

Metrics::Metrics() : ttft_(latency_bounds()), latency_(latency_bounds()) {}

void Metrics::request(const std::string& path, int status) {
    // Known routes only, so a scanner probing random paths cannot grow the label set.
    static const std::set<std::string> routes = {
        "/", "/health", "/v1/health", "/v1/models", "/models", "/props", "/slots", "/tokenize", "/detokenize",
        "/metrics", "/v1/chat/completions", "/chat/completions", "/v1/completions", "/completions"};
    const bool asset = path.rfind("/assets/", 0) == 0 && status != 404;
    const std::string route = routes.count(path) ? path : asset ? "/assets" : "other";
    std::lock_guard<std::mutex> lk(mu_);
    ++requests_[{route, status}];
}

void Metrics::completion(double ttft_s, double latency_s) {
    ttft_.observe(ttft_s);
    latency_.observe(latency_s);
}

std::string Metrics::render(const Scheduler* sched, bool ready) const {
    std::string out;
    header(&out, "gemma_requests_total", "counter", "HTTP requests answered, by route and status.");
    {
        std::lock_guard<std::mutex> lk(mu_);
        for (const auto& [key, n] : requests_)
            out += "gemma_requests_total{route=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
                   std::to_string(n) + "\n";
    }
    header(&out, "gemma_ready", "gauge", "1 once the model is loaded and requests are served.");
    sample(&out, "gemma_ready", ready ? 1 : 0);
    const SchedulerStats st = sched ? sched->stats() : SchedulerStats{};
    struct G {
        const char* name;
        const char* type;
        const char* help;
        double v;
    };
    const G gauges[] = {
        {"gemma_prompt_tokens_total", "counter", "Prompt tokens evaluated (not counting those reused from a slot's cache).",
         static_cast<double>(st.prompt_tokens)},
        {"gemma_generated_tokens_total", "counter", "Tokens generated.", static_cast<double>(st.generated_tokens)},
        {"gemma_tokens_per_second", "gauge", "Tokens generated per second over the last 10 seconds.", st.tokens_per_second},
        {"gemma_draft_tokens_total", "counter", "Speculative decoding: drafted tokens checked.",
         static_cast<double>(st.draft_tokens)},
        {"gemma_draft_accepted_total", "counter", "Speculative decoding: drafted tokens kept.",
         static_cast<double>(st.draft_accepted)},
        {"gemma_requests_in_flight", "gauge", "Completion requests queued or being answered.", static_cast<double>(in_flight())},
        {"gemma_queue_depth", "gauge", "Requests waiting for a slot.", static_cast<double>(st.queued)},
        {"gemma_slots_busy", "gauge", "Slots generating a reply.", static_cast<double>(st.busy_slots)},
        {"gemma_slots_total", "gauge", "Slots (--parallel).", sched ? static_cast<double>(sched->n_slots()) : 0.0},
        {"gemma_kv_cells_used", "gauge", "KV-cache positions holding a token, all slots together.",
         static_cast<double>(st.kv_cells_used)},
        {"gemma_kv_cells_total", "gauge", "KV-cache positions, all slots together.", static_cast<double>(st.kv_cells_total)},
    };
    for (const G& g : gauges) {
        header(&out, g.name, g.type, g.help);
        sample(&out, g.name, g.v);
    }
    ttft_.render("gemma_time_to_first_token_seconds", "From queueing the request to its first generated token.", &out);
    latency_.render("gemma_request_duration_seconds", "Completion requests, from arrival to the end of the reply.", &out);
    return out;
}

}  // namespace gemma::server
