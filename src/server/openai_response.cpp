// Response side of the OpenAI format: completions, stream chunks, usage, logprobs, timings; /tokenize, /detokenize.
#include "server/openai_schema.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "core/error.h"

namespace gemma::server {
namespace {

bool is_chat(const CompletionRequest& r) { return r.kind == Endpoint::Chat; }

// JSON has no -inf; OpenAI reports "practically impossible" as -9999.
double finite_logprob(float lp) { return std::isfinite(lp) ? static_cast<double>(lp) : -9999.0; }

json bytes_json(const std::string& s) {
    json b = json::array();
    for (const char c : s) b.push_back(static_cast<int>(static_cast<unsigned char>(c)));
    return b;
}

json base(const CompletionRequest& r, const ResponseMeta& m, bool chunk) {
    return json{{"id", m.id},
                {"object", is_chat(r) ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
                {"created", m.created},
                {"model", m.model},
                {"system_fingerprint", "gemma-gguf"}};
}

json choice_logprobs(const CompletionRequest& r, const std::vector<TokenRecord>& toks) {
    if (!r.gen.logprobs) return nullptr;
    return is_chat(r) ? chat_logprobs_json(toks) : completion_logprobs_json(toks);
}

}  // namespace

bool valid_utf8(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        size_t need = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
        if (need == 0 || utf8_char_len(s.substr(i)) != need) return false;
        i += need;
    }
    return true;
}

ResponseMeta make_meta(Endpoint kind, std::string model) {
    static thread_local std::mt19937_64 rng(std::random_device{}());
    char hex[25];
    std::snprintf(hex, sizeof hex, "%016llx%08x", static_cast<unsigned long long>(rng()),
                  static_cast<unsigned>(rng() & 0xFFFFFFFFu));
    ResponseMeta m;
    m.id = std::string(kind == Endpoint::Chat ? "chatcmpl-" : "cmpl-") + hex;
    m.created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                    .count();
    m.model = std::move(model);
    return m;
}

std::string api_finish_reason(const TaskResult& r) { return r.finish_reason == "length" ? "length" : "stop"; }

json usage_json(const TaskTimings& t) {
    return json{{"prompt_tokens", t.n_prompt},
                {"completion_tokens", t.n_gen},
                {"total_tokens", t.n_prompt + t.n_gen},
                {"prompt_tokens_details", {{"cached_tokens", t.n_cached}}}};
}

json timings_json(const TaskTimings& t) {
    const int64_t n_eval = t.n_prompt - t.n_cached;
    auto per_tok = [](double ms, int64_t n) { return n > 0 ? ms / static_cast<double>(n) : 0.0; };
    auto per_sec = [](double ms, int64_t n) { return ms > 0 ? 1e3 * static_cast<double>(n) / ms : 0.0; };
    json j{{"cache_n", t.n_cached},
                {"prompt_n", n_eval},
                {"prompt_ms", t.prompt_ms},
                {"prompt_per_token_ms", per_tok(t.prompt_ms, n_eval)},
                {"prompt_per_second", per_sec(t.prompt_ms, n_eval)},
                {"predicted_n", t.n_gen},
                {"predicted_ms", t.gen_ms},
                {"predicted_per_token_ms", per_tok(t.gen_ms, t.n_gen)},
                {"predicted_per_second", per_sec(t.gen_ms, t.n_gen)},
                {"queue_ms", t.queue_ms}};
    // llama-server's names for the speculative-decoding counts, present only when a draft model runs.
    if (t.n_drafted > 0) {
        j["draft_n"] = t.n_drafted;
        j["draft_n_accepted"] = t.n_draft_accepted;
    }
    return j;
}

json chat_logprobs_json(const std::vector<TokenRecord>& toks) {
    json content = json::array();
    for (const TokenRecord& t : toks) {
        json top = json::array();
        for (const TopLogprob& a : t.top)
            top.push_back({{"token", a.piece}, {"logprob", finite_logprob(a.logprob)}, {"bytes", bytes_json(a.piece)}});
        content.push_back({{"token", t.piece},
                           {"logprob", finite_logprob(t.logprob)},
                           {"bytes", bytes_json(t.piece)},
                           {"top_logprobs", top}});
    }
    return json{{"content", content}, {"refusal", nullptr}};
}

json completion_logprobs_json(const std::vector<TokenRecord>& toks) {
    json tokens = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
    for (const TokenRecord& t : toks) {
        tokens.push_back(t.piece);
        lps.push_back(finite_logprob(t.logprob));
        json top = json::object();
        for (const TopLogprob& a : t.top)
            if (!top.contains(a.piece)) top[a.piece] = finite_logprob(a.logprob);  // most likely spelling wins
        tops.push_back(top);
        offsets.push_back(t.text_offset);
    }
    return json{{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json response_json(const CompletionRequest& r, const ResponseMeta& m, const std::string& text,
                   const std::vector<TokenRecord>& toks, const TaskResult& res) {
    json j = base(r, m, false);
    json choice = {{"index", 0}, {"logprobs", choice_logprobs(r, toks)}, {"finish_reason", api_finish_reason(res)}};
    if (is_chat(r)) choice["message"] = {{"role", "assistant"}, {"content", text}};
    else choice["text"] = text;
    j["choices"] = json::array({choice});
    j["usage"] = usage_json(res.timings);
    j["timings"] = timings_json(res.timings);
    return j;
}

json chunk_json(const CompletionRequest& r, const ResponseMeta& m, const std::string& text,
                const std::vector<TokenRecord>& toks, bool first) {
    json j = base(r, m, true);
    json choice = {{"index", 0}, {"logprobs", toks.empty() ? json() : choice_logprobs(r, toks)}, {"finish_reason", nullptr}};
    if (is_chat(r)) {
        json delta = {{"content", text}};
        if (first) delta["role"] = "assistant";
        choice["delta"] = delta;
    } else {
        choice["text"] = text;
    }
    j["choices"] = json::array({choice});
    if (r.include_usage) j["usage"] = nullptr;  // OpenAI: null in every chunk but the usage chunk
    return j;
}

json final_chunk_json(const CompletionRequest& r, const ResponseMeta& m, const TaskResult& res) {
    json j = base(r, m, true);
    json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", api_finish_reason(res)}};
    if (is_chat(r)) choice["delta"] = json::object();
    else choice["text"] = "";
    j["choices"] = json::array({choice});
    // With include_usage the usage travels in its own chunk, as OpenAI sends it.
    j["usage"] = r.include_usage ? json() : usage_json(res.timings);
    j["timings"] = timings_json(res.timings);
    return j;
}

json usage_chunk_json(const CompletionRequest& r, const ResponseMeta& m, const TaskResult& res) {
    json j = base(r, m, true);
    j["choices"] = json::array();
    j["usage"] = usage_json(res.timings);
    return j;
}

json tokenize_json(const json& body, const Tokenizer& tok) {
    const auto it = body.find("content");
    if (it == body.end() || !it->is_string())
        throw invalid_request("'content' must be a string", "content", "invalid_type");
    auto flag = [&](const char* name, bool dflt) {
        const auto f = body.find(name);
        if (f == body.end() || f->is_null()) return dflt;
        if (!f->is_boolean()) throw invalid_request(std::string("'") + name + "' must be a boolean", name, "invalid_type");
        return f->get<bool>();
    };
    const bool add_special = flag("add_special", false), parse_special = flag("parse_special", true);
    const bool with_pieces = flag("with_pieces", false);
    const std::vector<TokenId> ids = tok.encode(it->get<std::string>(), add_special, parse_special);
    json tokens = json::array();
    for (const TokenId id : ids) {
        if (!with_pieces) {
            tokens.push_back(id);
            continue;
        }
        // llama-server: the piece as a string when it is valid UTF-8, else its bytes.
        const std::string piece = tok.token_to_piece(id, true);
        tokens.push_back({{"id", id}, {"piece", valid_utf8(piece) ? json(piece) : bytes_json(piece)}});
    }
    return json{{"tokens", tokens}};
}

json detokenize_json(const json& body, const Tokenizer& tok) {
    const auto it = body.find("tokens");
    if (it == body.end() || !it->is_array()) throw invalid_request("'tokens' must be an array of token ids", "tokens", "invalid_type");
    std::vector<TokenId> ids;
    for (const json& t : *it) {
        if (!t.is_number_integer()) throw invalid_request("'tokens' must be an array of token ids", "tokens", "invalid_type");
        const int64_t id = t.get<int64_t>();
        if (id < 0 || id >= tok.vocab().size())
            throw invalid_request("token id " + std::to_string(id) + " is outside the vocabulary of " +
                                      std::to_string(tok.vocab().size()),
                                  "tokens");
        ids.push_back(static_cast<TokenId>(id));
    }
    return json{{"content", tok.decode(ids, /*special=*/true)}};
}

}  // namespace gemma::server
