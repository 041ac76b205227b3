// Shared between the server's route files: the loaded backend and the per-request log note.
#pragma once
#include <httplib.h>

#include <memory>
#include <string>

#include "model/model.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/openai_schema.h"
#include "server/scheduler.h"
#include "server/structured.h"
#include "tokenizer/tokenizer.h"

namespace gemma::server {

// Everything a request needs once the model is loaded; immutable after construction.
struct Backend {
    std::shared_ptr<const Model> model;
    std::shared_ptr<const Model> draft;  // speculative decoding's draft model, if any (the scheduler uses it)
    std::shared_ptr<const Tokenizer> tok;
    std::unique_ptr<Scheduler> sched;
    std::string model_path;
    std::string model_id;     // what /v1/models lists and responses echo
    SchemaLimits limits;
    std::unique_ptr<GrammarCache> grammars;
    Metrics* metrics = nullptr;
};

// The request log line is written by httplib's logger, on the thread that served the request; routes
// add their details here on that same thread: a note for the text line, fields for the JSON one.
struct RequestLog {
    std::string note;
    json fields = json::object();
};
RequestLog& request_log();
// Seconds since the current request arrived (same thread).
double request_elapsed_s();

// Sends an ApiError as OpenAI's error body.
void send_error(httplib::Response& res, const ApiError& e);

// POST /v1/chat/completions and /v1/completions, streamed or not.
void handle_completion(const Backend& be, Endpoint kind, const std::string& body, httplib::Response& res);

}  // namespace gemma::server
