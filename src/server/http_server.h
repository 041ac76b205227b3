// `gemma serve`'s HTTP server: OpenAI-compatible and llama-server routes over cpp-httplib, backed by the Scheduler.
#pragma once
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "model/model.h"
#include "runtime/sampler.h"
#include "server/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace gemma::server {

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 8080;                      // 0: any free port (start() returns it)
    std::string api_key;                  // non-empty: every route but /health needs "Authorization: Bearer <key>"
    size_t max_body_bytes = 8u << 20;     // larger request bodies get 413
    int http_threads = 0;                 // 0: enough for every slot, the queue and a few quick requests
    std::string alias;                    // model id in responses; default: the file's name
    SchedulerParams sched;
    std::string draft_path;               // speculative decoding: a draft model with the same vocabulary
    SamplerParams defaults;               // sampling defaults for fields a request leaves out
    bool log_requests = true;             // one line per request on stderr
    bool log_json = false;                // ... as one JSON object per line (--log-format json)
};

class HttpServer {
public:
    explicit HttpServer(ServerOptions opts);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds and serves from background threads; until a model is attached /health answers 503
    // {"status":"loading"} and the API routes 503. Returns the bound port. Throws gemma::Error.
    int start();
    // Loads the model and its tokenizer from a GGUF file and starts serving it.
    void load(const std::string& model_path);
    // Serves an already loaded model (tests share one between servers).
    void attach(std::shared_ptr<const Model> model, std::shared_ptr<const Tokenizer> tok, const std::string& path);
    // Stops accepting, finishes the listener, cancels what is in flight. Safe to call from any thread.
    void stop();
    // Graceful stop: new requests get 503 at once, requests in flight (queued or generating) finish for
    // up to `timeout`, then stop(). Returns whether everything finished in time.
    bool shutdown(std::chrono::milliseconds timeout);
    // Blocks until the listener has stopped.
    void wait();

    int port() const;
    // Null until a model is attached.
    Scheduler* scheduler();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace gemma::server
