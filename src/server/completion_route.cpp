// The completion routes: validate, tokenize, queue, then answer in one JSON body or as server-sent events.
#include <chrono>
#include <cstdio>

#include "server/http_internal.h"

namespace gemma::server {
namespace {

using namespace std::chrono_literals;

std::string describe(const TaskResult& r) {
    const TaskTimings& t = r.timings;
    char buf[256];
    std::snprintf(buf, sizeof buf, "slot %d, prompt %lld (%lld cached) %.0f ms, generated %lld %.1f tok/s, %s",
                  r.slot, static_cast<long long>(t.n_prompt), static_cast<long long>(t.n_cached), t.prompt_ms,
                  static_cast<long long>(t.n_gen), t.gen_ms > 0 ? 1e3 * static_cast<double>(t.n_gen) / t.gen_ms : 0.0,
                  r.finish_reason.c_str());
    return buf;
}

ApiError generation_error(const TaskResult& r) {
    return ApiError(500, "server_error", "generation_failed", "generation failed: " + r.error);
}

// State of one event stream, shared by httplib's provider and releaser callbacks.
struct Stream {
    std::shared_ptr<Task> task;
    CompletionRequest req;
    ResponseMeta meta;
    bool first = true;

    bool pump(httplib::DataSink& sink) {
        auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
        auto gone = [&] {
            // The client went away: its slot is freed at the scheduler's next step.
            task->cancel();
            request_log_note() = "client disconnected";
            return false;
        };
        if (first && req.kind == Endpoint::Chat && !write(sse_data(chunk_json(req, meta, "", {}, true)))) return gone();
        first = false;
        for (;;) {
            Released got;
            TaskResult res;
            const bool done = task->take(&got, &res, 250ms);
            if (!got.empty() && !write(sse_data(chunk_json(req, meta, got.text, got.tokens, false)))) return gone();
            if (done) {
                bool ok = true;
                if (res.finish_reason == "error") {
                    ok = write(sse_data(error_body(generation_error(res))));
                } else {
                    ok = write(sse_data(final_chunk_json(req, meta, res)));
                    if (ok && req.include_usage) ok = write(sse_data(usage_chunk_json(req, meta, res)));
                }
                if (!ok || !write(std::string(kSseDone))) return gone();
                sink.done();
                request_log_note() = describe(res);
                return true;
            }
            // Quiet while the prompt is processed: make sure someone is still listening.
            if (got.empty() && !sink.is_writable()) return gone();
        }
    }
};

}  // namespace

void handle_completion(const Backend& be, Endpoint kind, const httplib::Request& req, httplib::Response& res) {
    CompletionRequest r = parse_completion_request(kind, parse_body(req.body), be.limits);
    r.gen.prompt = prompt_tokens(r, *be.tok, be.limits);
    std::shared_ptr<Task> task = be.sched->submit(r.gen);
    if (!task)
        throw ApiError(503, "server_error", "server_overloaded",
                       "The server is busy: all " + std::to_string(be.sched->n_slots()) +
                           " slots and the request queue are taken. Retry later.");
    ResponseMeta meta = make_meta(kind, be.model_id);

    if (!r.stream) {
        Released all;
        TaskResult result;
        while (!task->take(&all, &result, 1000ms)) {
        }
        if (result.finish_reason == "error") throw generation_error(result);
        res.set_content(dump(response_json(r, meta, all.text, all.tokens, result)), "application/json");
        request_log_note() = describe(result);
        return;
    }
    auto st = std::make_shared<Stream>(Stream{task, std::move(r), std::move(meta)});
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream", [st](size_t, httplib::DataSink& sink) { return st->pump(sink); },
        [st](bool) {
            // Whatever ended the response (a write error, a closed socket, server shutdown), the task
            // must not keep its slot.
            if (!st->task->finished()) st->task->cancel();
        });
}

}  // namespace gemma::server
