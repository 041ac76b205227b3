// The server's schema layer without sockets: request validation, prompt building, response shapes, stop-string text.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "server/openai_schema.h"
#include "server/output_text.h"
#include "support/golden.h"

namespace gemma::server {
namespace {

const Tokenizer& tok() {
    static const Tokenizer t = Tokenizer::load(test::golden("vocab/gemma-vocab.gguf"));
    return t;
}

SchemaLimits limits() {
    SchemaLimits l;
    l.n_vocab = tok().vocab().size();
    l.n_ctx = 64;
    return l;
}

json chat(json extra = json::object()) {
    json b = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "Hello"}}}}};
    b.update(extra);
    return b;
}

ApiError error_of(Endpoint kind, const json& body) {
    try {
        const CompletionRequest r = parse_completion_request(kind, body, limits());
        prompt_tokens(r, tok(), limits());
    } catch (const ApiError& e) {
        return e;
    }
    ADD_FAILURE() << "no error for " << body.dump();
    return ApiError(0, "", "", "");
}

TEST(OpenAISchema, ParsesChatFieldsOverTheDefaults) {
    SchemaLimits l = limits();
    l.defaults.top_k = 40;
    const json body = chat({{"max_tokens", 12}, {"temperature", 0.5}, {"top_p", 0.9}, {"min_p", 0.1}, {"seed", 7},
                            {"presence_penalty", 0.5}, {"frequency_penalty", -0.5}, {"repeat_penalty", 1.1},
                            {"stop", "END"}, {"stream", true}, {"stream_options", {{"include_usage", true}}},
                            {"logprobs", true}, {"top_logprobs", 3}, {"logit_bias", {{"100", -100}, {"5", 2.5}}},
                            {"some_unknown_field", {1, 2, 3}}});
    const CompletionRequest r = parse_completion_request(Endpoint::Chat, body, l);
    EXPECT_EQ(r.model, "m");
    EXPECT_TRUE(r.stream);
    EXPECT_TRUE(r.include_usage);
    EXPECT_EQ(r.gen.max_tokens, 12);
    EXPECT_FLOAT_EQ(r.gen.sampling.temp, 0.5f);
    EXPECT_FLOAT_EQ(r.gen.sampling.top_p, 0.9f);
    EXPECT_FLOAT_EQ(r.gen.sampling.min_p, 0.1f);
    EXPECT_EQ(r.gen.sampling.top_k, 40);  // untouched: the server default
    EXPECT_EQ(r.gen.sampling.seed, 7u);
    EXPECT_FLOAT_EQ(r.gen.sampling.penalty_present, 0.5f);
    EXPECT_FLOAT_EQ(r.gen.sampling.penalty_freq, -0.5f);
    EXPECT_FLOAT_EQ(r.gen.sampling.penalty_repeat, 1.1f);
    EXPECT_EQ(r.gen.stop, std::vector<std::string>{"END"});
    EXPECT_TRUE(r.gen.logprobs);
    EXPECT_EQ(r.gen.top_logprobs, 3);
    ASSERT_EQ(r.gen.sampling.logit_bias.size(), 2u);
    EXPECT_TRUE(std::isinf(r.gen.sampling.logit_bias[0].second));  // -100 bans
    EXPECT_FLOAT_EQ(r.gen.sampling.logit_bias[1].second, 2.5f);
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_EQ(r.messages[0].content, "Hello");
}

TEST(OpenAISchema, NullMeansUnsetAndSeedMinusOneIsRandom) {
    const CompletionRequest r = parse_completion_request(
        Endpoint::Chat, chat({{"temperature", nullptr}, {"stop", nullptr}, {"seed", -1}, {"max_tokens", nullptr}}),
        limits());
    EXPECT_FLOAT_EQ(r.gen.sampling.temp, SamplerParams{}.temp);
    EXPECT_TRUE(r.gen.stop.empty());
    EXPECT_EQ(r.gen.sampling.seed, SamplerParams::kRandomSeed);
    EXPECT_EQ(r.gen.max_tokens, -1);
}

TEST(OpenAISchema, ContentPartsSystemFoldingAndTemplate) {
    const json body = {{"messages",
                        {{{"role", "system"}, {"content", "Be brief."}},
                         {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "Hi "}}, {{"type", "text"}, {"text", "there"}}}}}}}};
    const CompletionRequest r = parse_completion_request(Endpoint::Chat, body, limits());
    EXPECT_EQ(r.messages[1].content, "Hi there");
    const std::vector<TokenId> ids = prompt_tokens(r, tok(), limits());
    EXPECT_EQ(tok().decode(ids, true),
              "<bos><start_of_turn>user\nBe brief.\n\nHi there<end_of_turn>\n<start_of_turn>model\n");
}

TEST(OpenAISchema, CompletionPromptForms) {
    CompletionRequest r = parse_completion_request(Endpoint::Completion, {{"prompt", "Hello"}}, limits());
    EXPECT_EQ(prompt_tokens(r, tok(), limits()), tok().encode("Hello", true, true));
    r = parse_completion_request(Endpoint::Completion, {{"prompt", {"Hello"}}}, limits());
    EXPECT_EQ(r.prompt, "Hello");
    r = parse_completion_request(Endpoint::Completion, {{"prompt", {2, 9259}}}, limits());
    EXPECT_EQ(prompt_tokens(r, tok(), limits()), (std::vector<TokenId>{2, 9259}));
    r = parse_completion_request(Endpoint::Completion, {{"prompt", "x"}, {"logprobs", 4}}, limits());
    EXPECT_TRUE(r.gen.logprobs);
    EXPECT_EQ(r.gen.top_logprobs, 4);
}

TEST(OpenAISchema, RejectsWithStatusTypeCodeAndParam) {
    ApiError e = error_of(Endpoint::Chat, chat({{"max_tokens", "ten"}}));
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.type, "invalid_request_error");
    EXPECT_EQ(e.code, "invalid_type");
    EXPECT_EQ(e.param, "max_tokens");
    EXPECT_EQ(error_of(Endpoint::Chat, chat({{"max_tokens", 1.5}})).param, "max_tokens");
    EXPECT_EQ(error_of(Endpoint::Chat, chat({{"max_tokens", -2}})).param, "max_tokens");
    EXPECT_EQ(error_of(Endpoint::Chat, chat({{"temperature", "1"}})).param, "temperature");
    EXPECT_EQ(error_of(Endpoint::Chat, chat({{"temperature", -1}})).param, "temperature");
    EXPECT_EQ(error_of(Endpoint::Chat, chat({{"top_p", 1.5}})).param, "top_p");
    EXPECT_EQ(error_of(Endpoint::Chat, chat({{"stream", "yes"}})).param, "stream");
    EXPECT_EQ(error_of(Endpoint::Chat, chat({{"stop", {"a", 3}}})).param, "stop");
    EXPECT_EQ(error_of(Endpoint::Chat, chat({{"logit_bias", {{"abc", 1}}}})).param, "logit_bias");
    EXPECT_EQ(error_of(Endpoint::Chat, chat({{"logit_bias", {{"999999999", 1}}}})).param, "logit_bias");
    EXPECT_EQ(error_of(Endpoint::Chat, chat({{"n", 3}})).code, "unsupported_value");
    EXPECT_EQ(error_of(Endpoint::Chat, chat({{"top_logprobs", 50}})).param, "top_logprobs");
    EXPECT_EQ(error_of(Endpoint::Chat, {{"model", "m"}}).code, "missing_required_parameter");
    EXPECT_EQ(error_of(Endpoint::Chat, {{"messages", json::array()}}).code, "empty_array");
    EXPECT_EQ(error_of(Endpoint::Chat, {{"messages", {{{"content", "x"}}}}}).param, "messages[0].role");
    EXPECT_EQ(error_of(Endpoint::Chat, {{"messages", {{{"role", "user"}, {"content", 5}}}}}).param,
              "messages[0].content");
    EXPECT_EQ(error_of(Endpoint::Chat, {{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}}})
                  .param,
              "messages[0].content");
    EXPECT_EQ(error_of(Endpoint::Chat, {{"messages", {{{"role", "user"}, {"content", "a"}},
                                                      {{"role", "user"}, {"content", "b"}}}}})
                  .param,
              "messages");
    EXPECT_EQ(error_of(Endpoint::Completion, {{"prompt", 5}}).param, "prompt");
    EXPECT_EQ(error_of(Endpoint::Completion, {{"prompt", {"a", "b"}}}).code, "unsupported_value");
    EXPECT_EQ(error_of(Endpoint::Completion, {{"prompt", {1, 99999999}}}).param, "prompt");
    EXPECT_EQ(error_of(Endpoint::Completion, {{"prompt", "x"}, {"echo", true}}).param, "echo");
    std::string lng;
    for (int i = 0; i < 80; ++i) lng += "word ";
    e = error_of(Endpoint::Completion, {{"prompt", lng}});
    EXPECT_EQ(e.code, "context_length_exceeded");
    EXPECT_NE(e.message.find("maximum context length is 64 tokens"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find(std::to_string(tok().encode(lng, true, true).size()) + " tokens."), std::string::npos)
        << e.message;
}

TEST(OpenAISchema, HugeMaxTokensIsAcceptedAndClampedLater) {
    const CompletionRequest r =
        parse_completion_request(Endpoint::Chat, chat({{"max_tokens", 18446744073709551615ull}}), limits());
    EXPECT_EQ(r.gen.max_tokens, std::numeric_limits<int32_t>::max());
}

TEST(OpenAISchema, BodyAndErrorShapes) {
    EXPECT_THROW(parse_body("{\"a\":"), ApiError);
    EXPECT_THROW(parse_body("[1]"), ApiError);
    EXPECT_TRUE(parse_body("{\"a\":1}").is_object());
    const json e = error_body(invalid_request("bad thing", "top_p"));
    EXPECT_EQ(e["error"]["message"], "bad thing");
    EXPECT_EQ(e["error"]["type"], "invalid_request_error");
    EXPECT_EQ(e["error"]["code"], "invalid_value");
    EXPECT_EQ(e["error"]["param"], "top_p");
    // Broken UTF-8 from a token piece is replaced, never an exception.
    EXPECT_EQ(dump(json{{"t", std::string("a\xE2\x82")}}), "{\"t\":\"a\xEF\xBF\xBD\"}");
    EXPECT_EQ(sse_data(json{{"x", 1}}), "data: {\"x\":1}\n\n");
}

TEST(OpenAISchema, ResponsesChunksUsageAndLogprobs) {
    CompletionRequest r = parse_completion_request(Endpoint::Chat, chat({{"logprobs", true}}), limits());
    const ResponseMeta m = make_meta(Endpoint::Chat, "tiny");
    EXPECT_EQ(m.id.rfind("chatcmpl-", 0), 0u);
    TaskResult res;
    res.finish_reason = "length";
    res.timings.n_prompt = 10;
    res.timings.n_cached = 4;
    res.timings.n_gen = 2;
    res.timings.gen_ms = 100;
    std::vector<TokenRecord> toks(2);
    toks[0] = {5, "Hi", -0.5f, {{5, "Hi", -0.5f}, {6, "Yo", -1.5f}}, 0};
    toks[1] = {7, "\xC3", -INFINITY, {}, 2};
    const json j = response_json(r, m, "Hi", toks, res);
    EXPECT_EQ(j["object"], "chat.completion");
    EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(j["usage"], json({{"prompt_tokens", 10}, {"completion_tokens", 2}, {"total_tokens", 12},
                                {"prompt_tokens_details", {{"cached_tokens", 4}}}}));
    EXPECT_EQ(j["timings"]["prompt_n"], 6);
    EXPECT_DOUBLE_EQ(j["timings"]["predicted_per_second"].get<double>(), 20.0);
    const json& lp = j["choices"][0]["logprobs"]["content"];
    EXPECT_EQ(lp[0]["token"], "Hi");
    EXPECT_EQ(lp[0]["bytes"], json({72, 105}));
    EXPECT_EQ(lp[0]["top_logprobs"][1]["token"], "Yo");
    EXPECT_EQ(lp[1]["logprob"], -9999.0);
    EXPECT_EQ(lp[1]["bytes"], json({0xC3}));
    EXPECT_NO_THROW(dump(j));

    r.include_usage = true;
    EXPECT_EQ(chunk_json(r, m, "", {}, true)["choices"][0]["delta"]["role"], "assistant");
    EXPECT_TRUE(chunk_json(r, m, "x", {}, false)["usage"].is_null());
    EXPECT_TRUE(final_chunk_json(r, m, res)["usage"].is_null());
    EXPECT_EQ(usage_chunk_json(r, m, res)["usage"]["completion_tokens"], 2);
    EXPECT_TRUE(usage_chunk_json(r, m, res)["choices"].empty());

    CompletionRequest c = parse_completion_request(Endpoint::Completion, {{"prompt", "x"}, {"logprobs", 1}}, limits());
    const json cj = response_json(c, make_meta(Endpoint::Completion, "tiny"), "Hi\xC3", toks, res);
    EXPECT_EQ(cj["object"], "text_completion");
    EXPECT_EQ(cj["choices"][0]["logprobs"]["text_offset"], json({0, 2}));
    EXPECT_EQ(cj["choices"][0]["logprobs"]["top_logprobs"][0]["Yo"], -1.5);
    EXPECT_EQ(final_chunk_json(c, m, res)["usage"]["total_tokens"], 12);
}

TEST(OpenAISchema, TokenizeDetokenize) {
    const json t = tokenize_json({{"content", "Hello world"}, {"add_special", true}}, tok());
    EXPECT_EQ(t["tokens"][0], tok().vocab().bos());
    const json p = tokenize_json({{"content", "Hello"}, {"with_pieces", true}}, tok());
    EXPECT_TRUE(p["tokens"][0]["piece"].is_string());
    EXPECT_EQ(p["tokens"][0]["id"], tok().encode("Hello", false, true)[0]);
    EXPECT_EQ(detokenize_json({{"tokens", t["tokens"]}}, tok())["content"], "<bos>Hello world");
    EXPECT_THROW(detokenize_json({{"tokens", {-1}}}, tok()), ApiError);
    EXPECT_THROW(tokenize_json({{"content", 1}}, tok()), ApiError);
}

TokenRecord rec(const std::string& piece, TokenId id = 1000) {
    TokenRecord r;
    r.id = id;
    r.piece = piece;
    return r;
}

TEST(OutputText, StopStringAcrossTokensIsNeverReleased) {
    OutputText o({"STOP"});
    Released r;
    EXPECT_FALSE(o.push(rec("Hello S"), &r));
    EXPECT_EQ(r.text, "Hello ");  // "S" could begin the stop
    EXPECT_TRUE(r.tokens.empty());  // its token still has a byte held back
    EXPECT_FALSE(o.push(rec("TO"), &r));
    EXPECT_EQ(r.text, "Hello ");
    EXPECT_TRUE(o.push(rec("Px"), &r));
    EXPECT_EQ(r.text, "Hello ");
    EXPECT_EQ(o.stop_matched(), "STOP");
    ASSERT_EQ(r.tokens.size(), 1u);  // "Hello S" contributed visible bytes; "TO" and "Px" did not
    EXPECT_EQ(r.tokens[0].piece, "Hello S");
    Released after;
    o.flush(&after);
    EXPECT_TRUE(after.empty());
}

TEST(OutputText, HeldTextIsReleasedWhenItCannotBeAStop) {
    OutputText o({"STOP", "xyz"});
    Released r;
    o.push(rec("aS"), &r);
    o.push(rec("T"), &r);
    EXPECT_EQ(r.text, "a");
    o.push(rec("ar"), &r);
    EXPECT_EQ(r.text, "aSTar");
    ASSERT_EQ(r.tokens.size(), 3u);
    EXPECT_EQ(r.tokens[2].text_offset, 3u);
    o.push(rec("x"), &r);
    o.flush(&r);
    EXPECT_EQ(r.text, "aSTarx");
    EXPECT_EQ(r.tokens.size(), 4u);
}

TEST(OutputText, Utf8CharactersAreNeverSplit) {
    OutputText o;
    Released r;
    o.push(rec("a\xE2\x82"), &r);  // "€" = E2 82 AC, split over two tokens
    EXPECT_EQ(r.text, "a");
    o.push(rec("\xAC!"), &r);
    EXPECT_EQ(r.text, "a\xE2\x82\xAC!");
    EXPECT_EQ(r.tokens.size(), 2u);
}

TEST(OutputText, EmptyPiecesAndStopAtTheStart) {
    OutputText o({"ab"});
    Released r;
    o.push(rec(""), &r);  // a control token: no text, released at once
    EXPECT_EQ(r.tokens.size(), 1u);
    EXPECT_TRUE(o.push(rec("ab"), &r));
    EXPECT_EQ(r.text, "");
    EXPECT_EQ(r.tokens.size(), 1u);
}

}  // namespace
}  // namespace gemma::server
