// The OpenAI wire format: request parsing and validation, response and stream-chunk building, error bodies.
#pragma once
#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/chat_template.h"
#include "runtime/sampler.h"
#include "server/task.h"
#include "tokenizer/tokenizer.h"

namespace gemma::server {

using nlohmann::json;

// An error as the API reports it: an HTTP status and OpenAI's {"error": {message, type, code, param}}.
struct ApiError : std::exception {
    int status = 400;
    std::string type;     // "invalid_request_error", "authentication_error", "not_found_error", ...
    std::string code;     // machine-readable: "invalid_json", "context_length_exceeded", ...
    std::string message;
    std::string param;    // the offending field, if any
    ApiError(int status, std::string type, std::string code, std::string message, std::string param = {});
    const char* what() const noexcept override { return message.c_str(); }
};
ApiError invalid_request(std::string message, std::string param = {}, std::string code = "invalid_value");
json error_body(const ApiError& e);

// Serializes with invalid UTF-8 replaced by U+FFFD (token pieces may split characters).
std::string dump(const json& j);
// One server-sent event: "data: <json>\n\n".
std::string sse_data(const json& j);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

// Parses a request body; 400 (invalid_json) when it is not JSON or not an object.
json parse_body(std::string_view body);

enum class Endpoint { Chat, Completion };

// What a request may ask for, from the model and the server's options.
struct SchemaLimits {
    int32_t n_vocab = 0;
    int64_t n_ctx = 0;            // positions per slot: longer prompts get 400
    SamplerParams defaults;       // the server's sampling defaults (its command line)
    int32_t max_top_logprobs = 20;
};

struct CompletionRequest {
    Endpoint kind = Endpoint::Chat;
    std::string model;                   // as sent; echoed back
    std::vector<ChatMessage> messages;   // chat
    std::string prompt;                  // completions, text form
    std::vector<TokenId> prompt_tokens;  // completions, token form
    bool prompt_is_tokens = false;
    bool stream = false;
    bool include_usage = false;          // stream_options.include_usage
    GenRequest gen;                      // everything but gen.prompt
};

// Validates types and ranges; unknown fields are ignored. Throws ApiError (400) naming the field.
CompletionRequest parse_completion_request(Endpoint kind, const json& body, const SchemaLimits& lim);
// The prompt tokens (chat: the Gemma template with the system message folded into the first user turn;
// completions: the raw text with BOS). Throws ApiError 400 for a conversation the template rejects,
// an empty prompt, token ids outside the vocabulary or a prompt longer than n_ctx.
std::vector<TokenId> prompt_tokens(const CompletionRequest& r, const Tokenizer& tok, const SchemaLimits& lim);

// Identity of one response: id ("chatcmpl-..." / "cmpl-..."), creation time, model name.
struct ResponseMeta {
    std::string id;
    int64_t created = 0;
    std::string model;
};
ResponseMeta make_meta(Endpoint kind, std::string model);

// "stop" or "length" (what OpenAI clients know).
std::string api_finish_reason(const TaskResult& r);
json usage_json(const TaskTimings& t);
json timings_json(const TaskTimings& t);
// chat: {"content": [{token, logprob, bytes, top_logprobs}], "refusal": null}
json chat_logprobs_json(const std::vector<TokenRecord>& toks);
// completions: {"tokens", "token_logprobs", "top_logprobs", "text_offset"}
json completion_logprobs_json(const std::vector<TokenRecord>& toks);

// The whole (non-streamed) response.
json response_json(const CompletionRequest& r, const ResponseMeta& m, const std::string& text,
                   const std::vector<TokenRecord>& toks, const TaskResult& res);
// A streamed chunk carrying text (and its tokens' logprobs). Chat's first chunk has role and empty content.
json chunk_json(const CompletionRequest& r, const ResponseMeta& m, const std::string& text,
                const std::vector<TokenRecord>& toks, bool first);
// The chunk that ends the choice: empty delta, finish_reason, and (llama-server's habit) usage and timings.
json final_chunk_json(const CompletionRequest& r, const ResponseMeta& m, const TaskResult& res);
// stream_options.include_usage: the extra chunk with no choices and the usage.
json usage_chunk_json(const CompletionRequest& r, const ResponseMeta& m, const TaskResult& res);

// llama-server's /tokenize and /detokenize.
json tokenize_json(const json& body, const Tokenizer& tok);
json detokenize_json(const json& body, const Tokenizer& tok);

// True when s is well-formed UTF-8.
bool valid_utf8(std::string_view s);

}  // namespace gemma::server
