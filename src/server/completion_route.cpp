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

// State of one response, shared by httplib's provider and releaser callbacks. Both forms are written
// through a content provider so that a client that goes away is noticed (a failed write, or
// is_writable() while nothing is sent) and its slot freed at the scheduler's next step.
struct Reply {
    std::shared_ptr<Task> task;
    CompletionRequest req;
    ResponseMeta meta;
    Metrics* metrics = nullptr;
    bool first = true;
    Released all;  // non-streamed: everything so far

    bool gone() {
        task->cancel();
        request_log().note = "client disconnected";
        request_log().fields["finish_reason"] = "disconnected";
        return false;
    }

    bool pump(httplib::DataSink& sink) {
        auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
        if (first && req.stream && req.kind == Endpoint::Chat &&
            !write(sse_data(chunk_json(req, meta, "", {}, true))))
            return gone();
        first = false;
        for (;;) {
            Released got;
            TaskResult res;
            const bool done = task->take(req.stream ? &got : &all, &res, 250ms);
            if (!got.empty() && !write(sse_data(chunk_json(req, meta, got.text, got.tokens, false)))) return gone();
            if (done) {
                if (!finish(res, write)) return gone();
                sink.done();
                log(res);
                return true;
            }
            // Nothing to send (queued, prompt processing, or a non-streamed reply): is anyone listening?
            if (got.empty() && !sink.is_writable()) return gone();
        }
    }

    void log(const TaskResult& res) {
        const TaskTimings& t = res.timings;
        RequestLog& l = request_log();
        l.note = describe(res);
        l.fields.update(json{{"slot", res.slot},
                             {"prompt_tokens", t.n_prompt},
                             {"cached_tokens", t.n_cached},
                             {"completion_tokens", t.n_gen},
                             {"queue_ms", t.queue_ms},
                             {"prompt_ms", t.prompt_ms},
                             {"generation_ms", t.gen_ms},
                             {"tokens_per_second", t.gen_ms > 0 ? 1e3 * static_cast<double>(t.n_gen) / t.gen_ms : 0.0},
                             {"finish_reason", res.finish_reason},
                             {"structured", req.gen.grammar != nullptr}});
        if (!res.error.empty()) l.fields["error"] = res.error;
        if (metrics && t.n_gen > 0) metrics->completion((t.queue_ms + t.prompt_ms) / 1e3, request_elapsed_s());
    }

    template <typename W>
    bool finish(const TaskResult& res, W& write) {
        if (!req.stream) {
            // The status line is out already; a failure this late (an internal error, never bad input)
            // can only be reported in the body.
            return write(dump(res.finish_reason == "error" ? error_body(generation_error(res))
                                                           : response_json(req, meta, all.text, all.tokens, res)));
        }
        if (res.finish_reason == "error") return write(sse_data(error_body(generation_error(res)))) &&
                                                 write(std::string(kSseDone));
        return write(sse_data(final_chunk_json(req, meta, res))) &&
               (!req.include_usage || write(sse_data(usage_chunk_json(req, meta, res)))) &&
               write(std::string(kSseDone));
    }
};

}  // namespace

void handle_completion(const Backend& be, Endpoint kind, const std::string& body, httplib::Response& res) {
    CompletionRequest r = parse_completion_request(kind, parse_body(body), be.limits);
    r.gen.grammar = be.grammars->for_body(body);
    r.gen.prompt = prompt_tokens(r, *be.tok, be.limits);
    std::shared_ptr<Task> task = be.sched->submit(r.gen);
    if (!task)
        throw ApiError(503, "server_error", "server_overloaded",
                       "The server is busy: all " + std::to_string(be.sched->n_slots()) +
                           " slots and the request queue are taken. Retry later.");
    ResponseMeta meta = make_meta(kind, be.model_id);
    be.metrics->begin_reply();
    const bool sse = r.stream;
    auto st = std::make_shared<Reply>();
    st->task = std::move(task);
    st->req = std::move(r);
    st->meta = std::move(meta);
    st->metrics = be.metrics;
    if (sse) {
        res.set_header("Cache-Control", "no-cache");
        res.set_header("X-Accel-Buffering", "no");
    }
    res.set_chunked_content_provider(
        sse ? "text/event-stream" : "application/json",
        [st](size_t, httplib::DataSink& sink) { return st->pump(sink); },
        [st](bool) {
            // Whatever ended the response (a write error, a closed socket, server shutdown), the task
            // must not keep its slot.
            if (!st->task->finished()) st->task->cancel();
            if (st->metrics) st->metrics->end_reply();
        });
}

}  // namespace gemma::server
