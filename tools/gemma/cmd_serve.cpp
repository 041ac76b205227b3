// `gemma serve MODEL`: an OpenAI-compatible HTTP server with continuous batching over N slots.
#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "command.h"
#include "core/error.h"
#include "runtime/context_options.h"
#include "runtime/sampling_options.h"
#include "server/http_server.h"

namespace {

int run_serve(int argc, char** argv) {
    CLI::App app{"Serve a Gemma GGUF model over HTTP with the OpenAI API (/v1/chat/completions, /v1/completions, "
                 "/v1/models; response_format json_object and json_schema for structured output) and "
                 "llama-server's /health, /props, /slots, /tokenize, /detokenize, plus a chat page at / and "
                 "Prometheus metrics at /metrics. Requests share each pass over the weights (continuous batching "
                 "over --parallel slots).",
                 "gemma serve"};
    app.footer("Example: gemma serve gemma-2b-it-Q4_0.gguf --port 8080 --parallel 4\n"
               "A prompt longer than --ctx gets 400; max_tokens beyond what fits is clamped (the reply ends with\n"
               "finish_reason \"length\" when the slot's context is full). A full queue gets 503.\n"
               "Open http://127.0.0.1:8080/ in a browser to chat. SIGTERM or Ctrl-C: new requests get 503, running\n"
               "ones finish (at most --shutdown-timeout seconds), then the server exits; a second signal exits at once.");
    gemma::server::ServerOptions o;
    std::string model, kv_type = "f16";
    size_t max_body_mib = 8;
    bool quiet = false;
    std::string log_format = "text";
    double shutdown_timeout = 30;
    app.add_option("model", model, "GGUF model file")->required()->check(CLI::ExistingFile);
    app.add_option("--host", o.host, "address to listen on (default 127.0.0.1: this machine only)")->capture_default_str();
    app.add_option("--port", o.port, "port (0: any free port)")->capture_default_str();
    app.add_option("--api-key", o.api_key, "require 'Authorization: Bearer KEY' on every route but /health");
    app.add_option("--parallel,--np", o.sched.n_slots, "slots: requests generated at the same time")
        ->capture_default_str()->check(CLI::Range(1, 256));
    app.add_option("-c,--ctx", o.sched.n_ctx,
                   "context positions per slot (0: the model's training context, halved until every slot's KV "
                   "cache fits in a quarter of the machine's memory)")
        ->capture_default_str();
    app.add_option("-b,--batch", o.sched.n_batch, "tokens per pass over the weights (decode steps + prompt pieces)")
        ->capture_default_str()->check(CLI::Range(1, 1 << 16));
    app.add_option("--queue", o.sched.max_queue, "requests that may wait for a slot; beyond that: 503")
        ->capture_default_str()->check(CLI::Range(0, 1 << 16));
    app.add_option("-t,--threads", o.sched.n_threads, "compute threads (default: all cores)");
    app.add_option("--kv-type", kv_type, "KV cache type: f16, f32 or q8_0")
        ->capture_default_str()->check(CLI::IsMember({"f16", "f32", "q8_0"}));
    app.add_option("--alias", o.alias, "model id reported by /v1/models and in replies (default: the file name)");
    app.add_option("--max-body", max_body_mib, "largest request body in MiB (beyond: 413)")->capture_default_str();
    app.add_option("--http-threads", o.http_threads, "HTTP worker threads (default: slots + queue + 8)");
    app.add_flag("-q,--quiet", quiet, "no per-request log lines");
    app.add_option("--log-format", log_format, "per-request log lines on stderr: text, or json (one object per line)")
        ->capture_default_str()->check(CLI::IsMember({"text", "json"}));
    app.add_option("--shutdown-timeout", shutdown_timeout,
                   "seconds running requests may take to finish after SIGTERM/SIGINT before they are cut")
        ->capture_default_str()->check(CLI::Range(0.0, 86400.0));
    gemma::add_sampling_options(app, o.defaults);
    gemma::DraftOptions dopt;
    gemma::add_draft_options(app, dopt);
    CLI11_PARSE(app, argc, argv);
    dopt.params.validate();
    o.draft_path = dopt.model;
    o.sched.draft_params = dopt.params;
    o.sched.kv_type = kv_type == "f32" ? gemma::TypeId::F32 : kv_type == "q8_0" ? gemma::TypeId::Q8_0 : gemma::TypeId::F16;
    o.max_body_bytes = max_body_mib << 20;
    o.log_requests = !quiet;
    o.log_json = log_format == "json";

    // SIGINT/SIGTERM are taken by one thread (blocked everywhere else, including httplib's workers,
    // which inherit this mask), which then shuts the server down in order.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

    gemma::server::HttpServer server(o);
    const int port = server.start();
    std::fprintf(stderr, "gemma serve: listening on http://%s:%d (loading %s)\n", o.host.c_str(), port, model.c_str());
    std::thread([&server, sigs, shutdown_timeout] {
        int sig = 0;
        sigwait(&sigs, &sig);
        std::fprintf(stderr, "gemma serve: signal %d: finishing running requests (at most %.0f s; signal again to stop now)\n",
                     sig, shutdown_timeout);
        // A second signal cuts the wait short.
        std::thread([&server, sigs] {
            int again = 0;
            sigwait(&sigs, &again);
            std::fprintf(stderr, "gemma serve: signal %d again, stopping now\n", again);
            server.stop();
        }).detach();
        const bool drained = server.shutdown(std::chrono::milliseconds(static_cast<long long>(shutdown_timeout * 1e3)));
        std::fprintf(stderr, "gemma serve: %s\n", drained ? "all requests finished, exiting" : "shutdown timeout, requests cut");
    }).detach();

    server.load(model);
    const gemma::server::Scheduler* s = server.scheduler();
    std::fprintf(stderr, "gemma serve: ready: %d slots of %lld positions (KV cache %.1f MiB)%s%s\n", s->n_slots(),
                 static_cast<long long>(s->n_ctx()), static_cast<double>(s->kv_bytes()) / 1048576.0,
                 dopt.model.empty() ? "" : ", drafting with ", dopt.model.c_str());
    if (!o.api_key.empty()) std::fprintf(stderr, "gemma serve: API key required\n");
    server.wait();
    return 0;
}

}  // namespace

GEMMA_REGISTER_COMMAND(serve, "serve", "serve a model over HTTP with the OpenAI API (continuous batching)", run_serve);
