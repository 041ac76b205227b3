// `gemma serve` over real HTTP (in-process server, httplib client): routes, streaming, concurrency, disconnects, bad input.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "convert/synth.h"
#include "server/http_server.h"
#include "support/golden.h"

namespace gemma {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

struct Tiny {
    std::shared_ptr<const Model> model;
    std::shared_ptr<const Tokenizer> tok;
    std::string path;
};

const Tiny& tiny() {
    static const Tiny t = [] {
        SynthOptions o;
        o.output = test::temp_dir() + "/tiny.gguf";
        o.shape = "tiny";
        o.n_vocab = 1024;
        o.quiet = true;
        o.vocab_path = test::golden("vocab/gemma-vocab.gguf");
        synth_model(o);
        Tiny r;
        r.model = Model::load(o.output);
        r.tok = std::make_shared<const Tokenizer>(Tokenizer::from_gguf(r.model->gguf()));
        r.path = o.output;
        return r;
    }();
    return t;
}

// A server on a free port serving the tiny model; options tweaked per test.
struct Live {
    std::unique_ptr<server::HttpServer> srv;
    int port = 0;
    explicit Live(server::ServerOptions o = {}, bool attach = true) {
        o.port = 0;
        o.log_requests = false;
        if (o.sched.n_threads == 0) o.sched.n_threads = 2;
        if (o.sched.n_ctx == 0) o.sched.n_ctx = 256;
        o.sched.kv_type = TypeId::F32;
        srv = std::make_unique<server::HttpServer>(o);
        port = srv->start();
        if (attach) srv->attach(tiny().model, tiny().tok, tiny().path);
    }
    std::unique_ptr<httplib::Client> client() const {
        auto c = std::make_unique<httplib::Client>("127.0.0.1", port);
        c->set_read_timeout(120, 0);
        return c;
    }
    httplib::Result post(const std::string& path, const json& body, const httplib::Headers& h = {}) const {
        return client()->Post(path.c_str(), h, body.dump(), "application/json");
    }
    httplib::Result get(const std::string& path) const { return client()->Get(path.c_str()); }
};

server::ServerOptions opts(int slots, int queue = 8, int64_t ctx = 256) {
    server::ServerOptions o;
    o.sched.n_slots = slots;
    o.sched.max_queue = queue;
    o.sched.n_ctx = ctx;
    return o;
}

// Text-only sampling (ids below 473 are control, added and byte tokens) so texts are plain and long.
json text_only() {
    json b = json::object();
    for (int id = 0; id < 473; ++id) b[std::to_string(id)] = -100;
    return b;
}

json chat_body(const std::string& user, int max_tokens, int seed) {
    return json{{"messages", {{{"role", "user"}, {"content", user}}}},
                {"max_tokens", max_tokens},
                {"seed", seed},
                {"temperature", 1.0},
                {"logit_bias", text_only()}};
}

struct StreamResult {
    int status = 0;
    std::string text;
    std::string finish;
    int completion_tokens = -1;
    std::vector<json> events;
    bool done = false;
};

// Streams a request, parsing server-sent events; `keep_going(events so far)` false aborts (disconnects).
StreamResult stream(const Live& live, const std::string& path, json body,
                    const std::function<bool(const StreamResult&)>& keep_going = {}) {
    body["stream"] = true;
    StreamResult r;
    std::string buf;
    httplib::Request req;
    req.method = "POST";
    req.path = path;
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
        buf.append(d, n);
        for (size_t e; (e = buf.find("\n\n")) != std::string::npos;) {
            const std::string ev = buf.substr(0, e);
            buf.erase(0, e + 2);
            if (ev.rfind("data: ", 0) != 0) continue;
            const std::string data = ev.substr(6);
            if (data == "[DONE]") {
                r.done = true;
                continue;
            }
            const json j = json::parse(data);
            r.events.push_back(j);
            if (j.contains("choices") && !j["choices"].empty()) {
                const json& c = j["choices"][0];
                if (c.contains("delta") && c["delta"].contains("content")) r.text += c["delta"]["content"].get<std::string>();
                if (c.contains("text")) r.text += c["text"].get<std::string>();
                if (!c["finish_reason"].is_null()) r.finish = c["finish_reason"];
            }
            if (j.contains("usage") && j["usage"].is_object()) r.completion_tokens = j["usage"]["completion_tokens"];
        }
        return !keep_going || keep_going(r);
    };
    auto c = live.client();
    const auto res = c->send(req);
    r.status = res ? res->status : -1;
    return r;
}

json body_of(const httplib::Result& r) { return json::parse(r->body); }

void expect_error(const httplib::Result& r, int status, const std::string& type, const std::string& what = {}) {
    ASSERT_TRUE(r) << "no response";
    EXPECT_EQ(r->status, status) << r->body;
    const json j = json::parse(r->body);
    ASSERT_TRUE(j.contains("error")) << r->body;
    EXPECT_EQ(j["error"]["type"], type) << r->body;
    EXPECT_TRUE(j["error"]["message"].is_string());
    if (!what.empty()) {
        EXPECT_NE(r->body.find(what), std::string::npos) << r->body;
    }
}

TEST(ServerHttp, HealthSaysLoadingUntilTheModelIsAttached) {
    Live live(opts(1), /*attach=*/false);
    auto r = live.get("/health");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
    EXPECT_EQ(body_of(r)["status"], "loading");
    expect_error(live.post("/v1/chat/completions", chat_body("hi", 2, 1)), 503, "unavailable_error");
    live.srv->attach(tiny().model, tiny().tok, tiny().path);
    r = live.get("/health");
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(body_of(r)["status"], "ok");
}

TEST(ServerHttp, ModelsPropsSlotsTokenize) {
    Live live(opts(3));
    json j = body_of(live.get("/v1/models"));
    EXPECT_EQ(j["object"], "list");
    EXPECT_EQ(j["data"][0]["id"], "tiny.gguf");
    j = body_of(live.get("/props"));
    EXPECT_EQ(j["n_ctx"], 256);
    EXPECT_EQ(j["default_generation_settings"]["n_ctx"], 256);
    EXPECT_EQ(j["total_slots"], 3);
    EXPECT_EQ(j["idle_slots"], 3);
    EXPECT_TRUE(j["chat_template"].is_string());
    j = body_of(live.get("/slots"));
    ASSERT_EQ(j.size(), 3u);
    EXPECT_EQ(j[1]["is_processing"], false);

    j = body_of(live.post("/tokenize", {{"content", "Hello world"}, {"add_special", true}}));
    const std::vector<int> ids = j["tokens"];
    const std::vector<TokenId> want = tiny().tok->encode("Hello world", true, true);
    EXPECT_EQ(ids, std::vector<int>(want.begin(), want.end()));
    j = body_of(live.post("/tokenize", {{"content", "Hi"}, {"with_pieces", true}}));
    EXPECT_TRUE(j["tokens"][0].contains("piece"));
    j = body_of(live.post("/detokenize", {{"tokens", ids}}));
    EXPECT_EQ(j["content"], "<bos>Hello world");
    expect_error(live.post("/tokenize", {{"content", 5}}), 400, "invalid_request_error");
    expect_error(live.post("/detokenize", {{"tokens", {1, 99999}}}), 400, "invalid_request_error");
}

TEST(ServerHttp, ChatAndCompletionShapesStreamedAndNot) {
    Live live(opts(2));
    const json req = chat_body("Tell me a story", 10, 42);
    auto r = live.post("/v1/chat/completions", req);
    ASSERT_EQ(r->status, 200) << r->body;
    const json j = body_of(r);
    EXPECT_EQ(j["object"], "chat.completion");
    EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
    EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(j["usage"]["completion_tokens"], 10);
    EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 5);
    EXPECT_EQ(j["timings"]["predicted_n"], 10);
    const std::string text = j["choices"][0]["message"]["content"];
    EXPECT_FALSE(text.empty());

    json sreq = req;
    sreq["stream_options"] = {{"include_usage", true}};
    const StreamResult s = stream(live, "/v1/chat/completions", sreq);
    EXPECT_EQ(s.status, 200);
    EXPECT_TRUE(s.done);
    EXPECT_EQ(s.text, text);
    EXPECT_EQ(s.finish, "length");
    EXPECT_EQ(s.completion_tokens, 10);
    ASSERT_GE(s.events.size(), 3u);
    EXPECT_EQ(s.events.front()["choices"][0]["delta"]["role"], "assistant");
    EXPECT_EQ(s.events.front()["object"], "chat.completion.chunk");
    EXPECT_TRUE(s.events.back()["choices"].empty());  // the include_usage chunk

    const json creq = {{"prompt", "Once upon a time"}, {"max_tokens", 6}, {"seed", 1}, {"logprobs", 2},
                       {"logit_bias", text_only()}};
    r = live.post("/v1/completions", creq);
    ASSERT_EQ(r->status, 200) << r->body;
    const json c = body_of(r);
    EXPECT_EQ(c["object"], "text_completion");
    EXPECT_EQ(c["choices"][0]["logprobs"]["tokens"].size(), 6u);
    EXPECT_EQ(c["choices"][0]["logprobs"]["text_offset"][0], 0);
    const StreamResult cs = stream(live, "/v1/completions", creq);
    EXPECT_EQ(cs.text, c["choices"][0]["text"]);
    EXPECT_EQ(cs.completion_tokens, 6);  // without include_usage it rides on the final chunk
}

TEST(ServerHttp, EightConcurrentStreamsEqualTheirSoloRuns) {
    // Small passes: prompts (~40 tokens) are split over several passes, next to other slots' decode steps.
    server::ServerOptions o = opts(4, 8);
    o.sched.n_batch = 16;
    Live live(o);
    std::vector<json> reqs;
    for (int i = 0; i < 8; ++i)
        reqs.push_back(chat_body("Story number " + std::to_string(i) + " begins on a dark and stormy night", 16, 100 + i));
    std::vector<StreamResult> solo;
    for (const json& q : reqs) solo.push_back(stream(live, "/v1/chat/completions", q));
    std::vector<StreamResult> together(reqs.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < reqs.size(); ++i)
        threads.emplace_back([&, i] { together[i] = stream(live, "/v1/chat/completions", reqs[i]); });
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < reqs.size(); ++i) {
        EXPECT_EQ(together[i].status, 200);
        EXPECT_TRUE(together[i].done) << i;
        EXPECT_EQ(together[i].completion_tokens, 16) << i;
        EXPECT_EQ(together[i].text, solo[i].text) << "request " << i << " changed when batched with others";
    }
}

TEST(ServerHttp, DisconnectMidStreamFreesTheSlot) {
    Live live(opts(1, 4, 4096));
    const auto t0 = std::chrono::steady_clock::now();
    // Unbounded: only the disconnect can end it before 4096 tokens.
    const StreamResult s = stream(live, "/v1/chat/completions", chat_body("Go on forever", -1, 9),
                                  [](const StreamResult& r) { return r.events.size() < 4; });
    EXPECT_FALSE(s.done);
    bool idle = false;
    for (int i = 0; i < 100 && !idle; ++i) {
        idle = body_of(live.get("/slots"))[0]["is_processing"] == false;
        if (!idle) std::this_thread::sleep_for(50ms);
    }
    EXPECT_TRUE(idle) << "the slot is still busy after the client left";
    EXPECT_EQ(body_of(live.get("/props"))["idle_slots"], 1);
    // The only slot serves the next request at once.
    auto r = live.post("/v1/chat/completions", chat_body("Next", 3, 1));
    ASSERT_EQ(r->status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s);
}

TEST(ServerHttp, ClientGivingUpOnANonStreamedReplyFreesTheSlot) {
    Live live(opts(1, 4, 4096));
    auto c = live.client();
    c->set_read_timeout(0, 300000);  // leaves while the (unbounded) generation runs
    const auto r = c->Post("/v1/chat/completions", chat_body("Go on forever", -1, 9).dump(), "application/json");
    EXPECT_FALSE(r);
    c.reset();
    bool idle = false;
    for (int i = 0; i < 100 && !idle; ++i) {
        idle = body_of(live.get("/slots"))[0]["is_processing"] == false;
        if (!idle) std::this_thread::sleep_for(50ms);
    }
    EXPECT_TRUE(idle) << "the slot is still busy after the client left";
    EXPECT_LT(body_of(live.get("/slots"))[0]["n_cached"].get<int>(), 4000);
    EXPECT_EQ(live.post("/v1/chat/completions", chat_body("Next", 3, 1))->status, 200);
}

TEST(ServerHttp, BadInputGetsItsStatusAndTheServerKeepsServing) {
    server::ServerOptions o = opts(2, 8, 64);
    o.max_body_bytes = 64 * 1024;
    Live live(o);
    const std::string chat = "/v1/chat/completions";
    auto raw = live.client()->Post(chat.c_str(), "{\"messages\": [", "application/json");
    expect_error(raw, 400, "invalid_request_error", "invalid_json");
    expect_error(live.post(chat, json::array({1, 2})), 400, "invalid_request_error", "JSON object");
    json b = chat_body("hi", 4, 1);
    b["max_tokens"] = "four";
    expect_error(live.post(chat, b), 400, "invalid_request_error", "max_tokens");
    b = chat_body("hi", 4, 1);
    b["temperature"] = "hot";
    expect_error(live.post(chat, b), 400, "invalid_request_error", "temperature");
    b = chat_body("hi", 4, 1);
    b["stop"] = 5;
    expect_error(live.post(chat, b), 400, "invalid_request_error", "stop");
    b = chat_body("hi", 4, 1);
    b["messages"] = "hello";
    expect_error(live.post(chat, b), 400, "invalid_request_error", "messages");
    b["messages"] = json::array();
    expect_error(live.post(chat, b), 400, "invalid_request_error", "at least one message");
    b["messages"] = {{{"role", "assistant"}, {"content", "a"}}, {{"role", "assistant"}, {"content", "b"}}};
    expect_error(live.post(chat, b), 400, "invalid_request_error", "alternate");
    b["messages"] = {{{"role", "tool"}, {"content", "a"}}};
    expect_error(live.post(chat, b), 400, "invalid_request_error", "role");
    b = chat_body("hi", 4, 1);
    b["n"] = 2;
    expect_error(live.post(chat, b), 400, "invalid_request_error", "n = 1");
    expect_error(live.post("/v1/completions", json{{"max_tokens", 3}}), 400, "invalid_request_error", "prompt");

    // Over-long prompt: 400 naming both numbers.
    std::string lng;
    for (int i = 0; i < 100; ++i) lng += "word ";
    expect_error(live.post(chat, chat_body(lng, 4, 1)), 400, "invalid_request_error", "maximum context length is 64");
    // Huge max_tokens is clamped to the context: the reply ends with "length" when the slot is full.
    b = chat_body("hi", 4, 1);
    b["max_tokens"] = 1000000000;
    auto r = live.post(chat, b);
    ASSERT_EQ(r->status, 200) << r->body;
    json j = body_of(r);
    EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    // Every position holds a token, plus the last sampled one, which never needs a position.
    EXPECT_EQ(j["usage"]["total_tokens"], 65);
    // Unknown fields are ignored.
    b = chat_body("hi", 2, 1);
    b["frobnicate"] = {{"x", 1}};
    EXPECT_EQ(live.post(chat, b)->status, 200);

    // Whatever the Content-Type says (curl -d sends form-urlencoded), a JSON body is read as JSON.
    const std::string big = chat_body(std::string(20000, 'a'), 1, 1).dump();
    EXPECT_EQ(live.client()->Post(chat.c_str(), big, "application/x-www-form-urlencoded")->status, 400);  // too long
    b = chat_body("hi", 1, 1);
    b["user"] = std::string(20000, 'u');  // past httplib's 8 KiB form limit; an ignored field
    EXPECT_EQ(live.client()->Post(chat.c_str(), b.dump(), "application/x-www-form-urlencoded")->status, 200);
    expect_error(live.get("/v1/nothing-here"), 404, "not_found_error");
    expect_error(live.post("/v1/chat/completions", chat_body(std::string(100 * 1024, 'a'), 2, 1)), 413,
                 "invalid_request_error");
    EXPECT_EQ(live.post(chat, chat_body("still there?", 2, 1))->status, 200);
}

TEST(ServerHttp, ApiKey) {
    server::ServerOptions o = opts(1);
    o.api_key = "secret";
    Live live(o);
    expect_error(live.get("/v1/models"), 401, "authentication_error", "Missing API key");
    expect_error(live.post("/v1/chat/completions", chat_body("hi", 2, 1), {{"Authorization", "Bearer nope"}}), 401,
                 "authentication_error", "Incorrect API key");
    EXPECT_EQ(live.post("/v1/chat/completions", chat_body("hi", 2, 1), {{"Authorization", "Bearer secret"}})->status, 200);
    EXPECT_EQ(live.get("/health")->status, 200);  // load balancers poll it without the key
}

TEST(ServerHttp, FullQueueGets503) {
    Live live(opts(1, 1, 4096));
    std::atomic<bool> release{false};
    auto hold = [&] {
        stream(live, "/v1/chat/completions", chat_body("Hold the slot", -1, 3),
               [&](const StreamResult&) { return !release.load(); });
    };
    std::thread a(hold), b(hold);  // one runs, one waits in the queue
    json props;
    for (int i = 0; i < 200; ++i) {
        props = body_of(live.get("/props"));
        if (props["idle_slots"] == 0 && props["queued"] == 1) break;
        std::this_thread::sleep_for(25ms);
    }
    EXPECT_EQ(props["queued"], 1);
    expect_error(live.post("/v1/chat/completions", chat_body("one more", 2, 1)), 503, "server_error", "busy");
    release = true;
    a.join();
    b.join();
    EXPECT_EQ(live.post("/v1/chat/completions", chat_body("one more", 2, 1))->status, 200);
}

TEST(ServerHttp, NextChatTurnReusesTheSlotCache) {
    Live live(opts(2));
    json first = chat_body("Hello there", 8, 5);
    json r1 = body_of(live.post("/v1/chat/completions", first));
    const int n1 = r1["usage"]["prompt_tokens"];
    json second = first;
    second["messages"].push_back({{"role", "assistant"}, {"content", r1["choices"][0]["message"]["content"]}});
    second["messages"].push_back({{"role", "user"}, {"content", "And then?"}});
    json r2 = body_of(live.post("/v1/chat/completions", second));
    EXPECT_GE(r2["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), n1 - 1);
    EXPECT_EQ(r2["timings"]["cache_n"], r2["usage"]["prompt_tokens_details"]["cached_tokens"]);
}

}  // namespace
}  // namespace gemma
