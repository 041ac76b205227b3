// Speculative decoding in `gemma serve`: every slot drafts with its own draft context, the step's one pass checks all
// slots' drafts, and greedy replies are exactly what a server without a draft gives (concurrent requests too).
#include <gtest/gtest.h>
#include <httplib.h>

#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "server/http_server.h"
#include "support/golden.h"

namespace gemma {
namespace {

using nlohmann::json;

struct Server {
    std::unique_ptr<server::HttpServer> srv;
    int port = 0;
    explicit Server(const std::string& draft) {
        server::ServerOptions o;
        o.port = 0;
        o.log_requests = false;
        o.sched.n_slots = 3;
        o.sched.n_threads = 1;
        o.sched.n_ctx = 256;
        o.draft_path = draft;
        o.sched.draft_params = DraftParams{4, 0, 0.0f};
        srv = std::make_unique<server::HttpServer>(o);
        port = srv->start();
        srv->load(test::golden("gemma3/tiny-g3-f32.gguf"));
    }
    json complete(const std::string& prompt) const {
        httplib::Client c("127.0.0.1", port);
        c.set_read_timeout(120, 0);
        const json body = {{"prompt", prompt}, {"max_tokens", 40}, {"temperature", 0}, {"repeat_penalty", 1.2}};
        const auto r = c.Post("/v1/completions", body.dump(), "application/json");
        EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no response");
        return r ? json::parse(r->body) : json();
    }
    std::string metrics() const {
        httplib::Client c("127.0.0.1", port);
        const auto r = c.Get("/metrics");
        return r ? r->body : "";
    }
};

TEST(ServerSpeculative, GreedyRepliesEqualPlainServingWithConcurrentSlots) {
    const Server plain(""), spec(test::golden("gemma3/q/tiny-g3-Q2_K.gguf"));
    const std::vector<std::string> prompts = {"Once upon a time", "The capital of France is", "def fib(n):"};
    std::vector<std::future<json>> want, got;
    for (const auto& p : prompts) {
        want.push_back(std::async(std::launch::async, [&plain, p] { return plain.complete(p); }));
        got.push_back(std::async(std::launch::async, [&spec, p] { return spec.complete(p); }));
    }
    int64_t drafted = 0;
    for (size_t i = 0; i < prompts.size(); ++i) {
        const json a = want[i].get(), b = got[i].get();
        ASSERT_TRUE(a.contains("choices") && b.contains("choices"));
        EXPECT_EQ(b["choices"][0]["text"], a["choices"][0]["text"]) << prompts[i];
        EXPECT_EQ(b["choices"][0]["finish_reason"], a["choices"][0]["finish_reason"]) << prompts[i];
        EXPECT_EQ(b["usage"]["completion_tokens"], a["usage"]["completion_tokens"]) << prompts[i];
        drafted += b["timings"].value("draft_n", int64_t{0});
        EXPECT_FALSE(a["timings"].contains("draft_n"));
    }
    EXPECT_GT(drafted, 0);
    EXPECT_NE(spec.metrics().find("gemma_draft_tokens_total"), std::string::npos);
}

TEST(ServerSpeculative, ADraftWithAnotherVocabularyIsRefused) {
    try {
        const Server bad(test::golden("tiny-7b/tiny-7b-f32.gguf"));
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("vocabulary"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace gemma
