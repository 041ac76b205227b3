// Request side of the OpenAI format: JSON body -> validated CompletionRequest -> prompt tokens.
#include "server/openai_schema.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace gemma::server {
namespace {

const char* json_type_name(const json& v) {
    if (v.is_string()) return "a string";
    if (v.is_boolean()) return "a boolean";
    if (v.is_number()) return "a number";
    if (v.is_array()) return "an array";
    if (v.is_object()) return "an object";
    return "null";
}

[[noreturn]] void wrong_type(const std::string& name, const char* expected, const json& got) {
    throw ApiError(400, "invalid_request_error", "invalid_type",
                   "Invalid type for '" + name + "': expected " + expected + ", but got " + json_type_name(got) +
                       " instead.",
                   name);
}

// A present, non-null field (clients send null for "not set").
const json* field(const json& body, const char* name) {
    const auto it = body.find(name);
    return it == body.end() || it->is_null() ? nullptr : &*it;
}

bool get_bool(const json& body, const char* name, bool* out) {
    const json* v = field(body, name);
    if (!v) return false;
    if (!v->is_boolean()) wrong_type(name, "a boolean", *v);
    *out = v->get<bool>();
    return true;
}

bool get_float(const json& body, const char* name, float* out, double lo, double hi) {
    const json* v = field(body, name);
    if (!v) return false;
    if (!v->is_number()) wrong_type(name, "a number", *v);
    const double d = v->get<double>();
    if (!(d >= lo && d <= hi))
        throw invalid_request("'" + std::string(name) + "' must be between " + json(lo).dump() + " and " +
                                  json(hi).dump() + ", got " + json(d).dump() + ".",
                              name);
    *out = static_cast<float>(d);
    return true;
}

bool get_int(const json& body, const char* name, int64_t* out, int64_t lo, int64_t hi) {
    const json* v = field(body, name);
    if (!v) return false;
    if (v->is_number_unsigned()) {
        // Beyond int64: only ever meaningful as "very large".
        const uint64_t u = v->get<uint64_t>();
        *out = u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max()
                                                                                : static_cast<int64_t>(u);
    } else if (v->is_number_integer()) {
        *out = v->get<int64_t>();
    } else if (v->is_number_float() && std::floor(v->get<double>()) == v->get<double>() &&
               std::fabs(v->get<double>()) < 9e18) {
        *out = static_cast<int64_t>(v->get<double>());  // 5.0 from a client that has only doubles
    } else {
        wrong_type(name, "an integer", *v);
    }
    if (*out < lo || *out > hi)
        throw invalid_request("'" + std::string(name) + "' must be between " + std::to_string(lo) + " and " +
                                  std::to_string(hi) + ", got " + std::to_string(*out) + ".",
                              name);
    return true;
}

std::string message_content(const json& m, size_t i) {
    const std::string name = "messages[" + std::to_string(i) + "].content";
    const json* c = field(m, "content");
    if (!c) return {};
    if (c->is_string()) return c->get<std::string>();
    if (!c->is_array()) wrong_type(name, "a string or an array of content parts", *c);
    std::string text;
    for (const json& part : *c) {
        if (!part.is_object()) wrong_type(name, "an array of content parts", part);
        const json* type = field(part, "type");
        if (!type || !type->is_string() || type->get<std::string>() != "text")
            throw invalid_request("only text content parts are supported (" + name + ")", name);
        const json* t = field(part, "text");
        if (!t || !t->is_string()) wrong_type(name + ".text", "a string", t ? *t : json());
        text += t->get<std::string>();
    }
    return text;
}

std::vector<ChatMessage> parse_messages(const json& body) {
    const json* msgs = field(body, "messages");
    if (!msgs)
        throw ApiError(400, "invalid_request_error", "missing_required_parameter",
                       "Missing required parameter: 'messages'.", "messages");
    if (!msgs->is_array()) wrong_type("messages", "an array", *msgs);
    if (msgs->empty())
        throw invalid_request("'messages' must contain at least one message.", "messages", "empty_array");
    std::vector<ChatMessage> out;
    for (size_t i = 0; i < msgs->size(); ++i) {
        const json& m = (*msgs)[i];
        const std::string name = "messages[" + std::to_string(i) + "]";
        if (!m.is_object()) wrong_type(name, "an object", m);
        const json* role = field(m, "role");
        if (!role) throw invalid_request("Missing required parameter: '" + name + ".role'.", name + ".role");
        if (!role->is_string()) wrong_type(name + ".role", "a string", *role);
        std::string r = role->get<std::string>();
        if (r == "developer") r = "system";
        if (r == "model") r = "assistant";
        if (r != "system" && r != "user" && r != "assistant")
            throw invalid_request("unsupported role '" + r + "' in " + name + " (expected system, user or assistant)",
                                  name + ".role");
        out.push_back(ChatMessage{r, message_content(m, i)});
    }
    return out;
}

void parse_prompt(const json& body, CompletionRequest* r) {
    const json* p = field(body, "prompt");
    if (!p)
        throw ApiError(400, "invalid_request_error", "missing_required_parameter",
                       "Missing required parameter: 'prompt'.", "prompt");
    const json* v = p;
    // A list holding one prompt is the same prompt; several would mean several completions.
    if (p->is_array() && p->size() == 1 && ((*p)[0].is_string() || (*p)[0].is_array())) v = &(*p)[0];
    if (v->is_string()) {
        r->prompt = v->get<std::string>();
        return;
    }
    if (v->is_array() && !v->empty() && std::all_of(v->begin(), v->end(), [](const json& t) {
            return t.is_number_integer();
        })) {
        r->prompt_is_tokens = true;
        for (const json& t : *v) {
            const int64_t id = t.get<int64_t>();
            if (id < 0 || id > std::numeric_limits<int32_t>::max())
                throw invalid_request("token id " + std::to_string(id) + " in 'prompt' is out of range", "prompt");
            r->prompt_tokens.push_back(static_cast<TokenId>(id));
        }
        return;
    }
    if (v->is_array() && v->size() > 1 && std::all_of(v->begin(), v->end(), [](const json& t) { return t.is_string(); }))
        throw invalid_request("only one prompt per request is supported", "prompt", "unsupported_value");
    wrong_type("prompt", "a string, an array of token ids, or a list of one of those", *p);
}

}  // namespace

ApiError::ApiError(int status_, std::string type_, std::string code_, std::string message_, std::string param_)
    : status(status_), type(std::move(type_)), code(std::move(code_)), message(std::move(message_)),
      param(std::move(param_)) {}

ApiError invalid_request(std::string message, std::string param, std::string code) {
    return ApiError(400, "invalid_request_error", std::move(code), std::move(message), std::move(param));
}

json error_body(const ApiError& e) {
    json err = {{"message", e.message}, {"type", e.type}, {"code", e.code.empty() ? json() : json(e.code)}};
    err["param"] = e.param.empty() ? json() : json(e.param);
    return json{{"error", err}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sse_data(const json& j) { return "data: " + dump(j) + "\n\n"; }

json parse_body(std::string_view body) {
    json j;
    try {
        j = json::parse(body.begin(), body.end());
    } catch (const json::parse_error& e) {
        throw ApiError(400, "invalid_request_error", "invalid_json",
                       std::string("The request body is not valid JSON: ") + e.what());
    }
    if (!j.is_object())
        throw ApiError(400, "invalid_request_error", "invalid_json", "The request body must be a JSON object.");
    return j;
}

CompletionRequest parse_completion_request(Endpoint kind, const json& body, const SchemaLimits& lim) {
    CompletionRequest r;
    r.kind = kind;
    if (const json* m = field(body, "model")) {
        if (!m->is_string()) wrong_type("model", "a string", *m);
        r.model = m->get<std::string>();
    }
    if (kind == Endpoint::Chat) r.messages = parse_messages(body);
    else parse_prompt(body, &r);

    get_bool(body, "stream", &r.stream);
    if (const json* so = field(body, "stream_options")) {
        if (!so->is_object()) wrong_type("stream_options", "an object", *so);
        get_bool(*so, "include_usage", &r.include_usage);
    }
    int64_t n = 1;
    get_int(body, "n", &n, 1, 128);
    if (n != 1) throw invalid_request("only n = 1 is supported", "n", "unsupported_value");
    if (kind == Endpoint::Completion) {
        bool echo = false;
        get_bool(body, "echo", &echo);
        if (echo) throw invalid_request("echo is not supported", "echo", "unsupported_value");
    }

    GenRequest& g = r.gen;
    g.sampling = lim.defaults;
    int64_t v = 0;
    // max_tokens is clamped, never rejected, when it exceeds the context: the request ends with
    // finish_reason "length" when the slot's context is full (llama-server's behaviour).
    for (const char* name : {"max_tokens", "max_completion_tokens", "n_predict"})
        if (get_int(body, name, &v, -1, std::numeric_limits<int64_t>::max()))
            g.max_tokens = static_cast<int32_t>(std::min<int64_t>(v, std::numeric_limits<int32_t>::max()));
    SamplerParams& s = g.sampling;
    get_float(body, "temperature", &s.temp, 0.0, 1e6);
    get_float(body, "top_p", &s.top_p, 0.0, 1.0);
    get_float(body, "min_p", &s.min_p, 0.0, 1.0);
    if (get_int(body, "top_k", &v, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()))
        s.top_k = static_cast<int32_t>(v);
    get_float(body, "presence_penalty", &s.penalty_present, -2.0, 2.0);
    get_float(body, "frequency_penalty", &s.penalty_freq, -2.0, 2.0);
    get_float(body, "repeat_penalty", &s.penalty_repeat, 1e-6, 1e6);
    if (get_int(body, "repeat_last_n", &v, -1, std::numeric_limits<int32_t>::max())) s.penalty_last_n = static_cast<int32_t>(v);
    if (get_int(body, "seed", &v, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()))
        s.seed = v == -1 ? SamplerParams::kRandomSeed : static_cast<uint32_t>(static_cast<uint64_t>(v));
    if (const json* lb = field(body, "logit_bias")) {
        if (!lb->is_object()) wrong_type("logit_bias", "an object", *lb);
        for (const auto& [key, bias] : lb->items()) {
            size_t used = 0;
            long long id = -1;
            try {
                id = std::stoll(key, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used != key.size() || id < 0 || id >= lim.n_vocab)
                throw invalid_request("logit_bias key '" + key + "' is not a token id of this model (0.." +
                                          std::to_string(lim.n_vocab - 1) + ")",
                                      "logit_bias");
            if (!bias.is_number()) wrong_type("logit_bias[" + key + "]", "a number", bias);
            const double b = bias.get<double>();
            // OpenAI's -100 bans a token; anything at or below it does here too.
            s.logit_bias.push_back({static_cast<TokenId>(id), b <= -100.0 ? -INFINITY : static_cast<float>(b)});
        }
    }
    if (const json* st = field(body, "stop")) {
        if (st->is_string()) {
            g.stop.push_back(st->get<std::string>());
        } else if (st->is_array()) {
            if (st->size() > 16) throw invalid_request("at most 16 stop strings are supported", "stop");
            for (const json& e : *st) {
                if (!e.is_string()) wrong_type("stop", "a string or an array of strings", e);
                g.stop.push_back(e.get<std::string>());
            }
        } else {
            wrong_type("stop", "a string or an array of strings", *st);
        }
        std::erase_if(g.stop, [](const std::string& x) { return x.empty(); });
    }
    get_bool(body, "ignore_eos", &g.ignore_eos);
    if (kind == Endpoint::Chat) {
        get_bool(body, "logprobs", &g.logprobs);
        if (get_int(body, "top_logprobs", &v, 0, lim.max_top_logprobs)) g.top_logprobs = static_cast<int32_t>(v);
    } else if (const json* lp = field(body, "logprobs")) {
        // Legacy completions: an integer count of alternatives (true is accepted as 0).
        if (lp->is_boolean()) {
            g.logprobs = lp->get<bool>();
        } else {
            get_int(body, "logprobs", &v, 0, lim.max_top_logprobs);
            g.logprobs = true;
            g.top_logprobs = static_cast<int32_t>(v);
        }
    }
    try {
        s.validate(lim.n_vocab);
    } catch (const Error& e) {
        throw invalid_request(e.what());
    }
    return r;
}

std::vector<TokenId> prompt_tokens(const CompletionRequest& r, const Tokenizer& tok, const SchemaLimits& lim) {
    std::vector<TokenId> ids;
    if (r.kind == Endpoint::Chat) {
        try {
            ids = tokenize_gemma_chat(tok, r.messages);
        } catch (const Error& e) {
            throw invalid_request(e.what(), "messages");
        }
    } else if (r.prompt_is_tokens) {
        for (const TokenId id : r.prompt_tokens)
            if (id < 0 || id >= lim.n_vocab)
                throw invalid_request("token id " + std::to_string(id) + " in 'prompt' is outside the vocabulary of " +
                                          std::to_string(lim.n_vocab),
                                      "prompt");
        ids = r.prompt_tokens;
    } else {
        ids = tok.encode(r.prompt, /*add_special=*/true, /*parse_special=*/true);
    }
    if (ids.empty()) throw invalid_request("the prompt is empty", r.kind == Endpoint::Chat ? "messages" : "prompt");
    if (static_cast<int64_t>(ids.size()) > lim.n_ctx)
        throw ApiError(400, "invalid_request_error", "context_length_exceeded",
                       "This model's maximum context length is " + std::to_string(lim.n_ctx) +
                           " tokens. However, your " + (r.kind == Endpoint::Chat ? "messages" : "prompt") +
                           " resulted in " + std::to_string(ids.size()) + " tokens.",
                       r.kind == Endpoint::Chat ? "messages" : "prompt");
    return ids;
}

}  // namespace gemma::server
