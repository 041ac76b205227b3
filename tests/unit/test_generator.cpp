// Generator and ChatSession on a tiny synthesized model: stops, streaming, prefix reuse, context limits.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "convert/synth.h"
#include "model/context.h"
#include "model/model.h"
#include "runtime/chat_session.h"
#include "runtime/generator.h"
#include "support/golden.h"
#include "tokenizer/tokenizer.h"

namespace gemma {
namespace {

constexpr int32_t kVocab = 1024;
constexpr TokenId kFirstNormal = 473;  // ids below are specials, added tokens and byte tokens

struct Tiny {
    std::unique_ptr<Model> model;
    std::unique_ptr<Tokenizer> tok;
};

const Tiny& tiny() {
    static const Tiny t = [] {
        SynthOptions o;
        o.output = test::temp_dir() + "/tiny.gguf";
        o.shape = "tiny";
        o.n_vocab = kVocab;
        o.quiet = true;
        o.vocab_path = test::golden("vocab/gemma-vocab.gguf");  // the library has no default; the CLI does
        synth_model(o);
        Tiny r;
        r.model = Model::load(o.output);
        r.tok = std::make_unique<Tokenizer>(Tokenizer::from_gguf(r.model->gguf()));
        return r;
    }();
    return t;
}

ops::ThreadPool& pool() {
    static ops::ThreadPool p(2);
    return p;
}

std::unique_ptr<Context> make_ctx(int64_t n_ctx = 128, int64_t n_batch = 512) {
    ContextParams p;
    p.n_ctx = n_ctx;
    p.n_batch = n_batch;
    p.pool = &pool();
    p.kv_type = TypeId::F32;
    return std::make_unique<Context>(*tiny().model, p);
}

std::vector<TokenId> prompt_ids() { return tiny().tok->encode("The quick brown fox", true, true); }

// Sampling restricted to plain text pieces (no control, added or byte tokens), so the text is ASCII-ish
// and predictable per seed.
GenerateParams text_only(uint32_t seed, int32_t max_tokens) {
    GenerateParams g;
    g.max_tokens = max_tokens;
    g.sampling.temp = 1.0f;
    g.sampling.top_k = 0;
    g.sampling.top_p = 1.0f;
    g.sampling.min_p = 0.0f;
    g.sampling.seed = seed;
    for (TokenId t = 0; t < kFirstNormal; ++t) g.sampling.logit_bias.push_back({t, -INFINITY});
    return g;
}

struct Collected {
    std::string text;
    std::vector<std::string> pieces;
};

TokenCallback collect(Collected* c) {
    return [c](const TokenEvent& ev) {
        c->text += ev.text;
        c->pieces.emplace_back(ev.text);
        return true;
    };
}

TEST(Generator, MaxTokensAndStreamedTextAgree) {
    auto ctx = make_ctx();
    Generator gen(*ctx, *tiny().tok);
    Collected c;
    const auto prompt = prompt_ids();
    const GenerationResult r = gen.generate(prompt, text_only(1, 12), collect(&c));
    EXPECT_EQ(r.stop_reason, StopReason::MaxTokens);
    ASSERT_EQ(r.tokens.size(), 12u);
    EXPECT_EQ(c.text, r.text);
    EXPECT_EQ(r.text, tiny().tok->decode(r.tokens));
    // The last token is sampled but never evaluated: nothing would read its logits.
    EXPECT_EQ(gen.cached_tokens().size(), prompt.size() + 11);
    EXPECT_EQ(ctx->n_past(), static_cast<int64_t>(prompt.size() + 11));
    EXPECT_EQ(r.timings.n_prompt, static_cast<int64_t>(prompt.size()));
    EXPECT_EQ(r.timings.n_gen, 12);
    EXPECT_EQ(r.seed, 1u);
}

TEST(Generator, SameSeedSameText) {
    auto ctx = make_ctx();
    Generator gen(*ctx, *tiny().tok);
    const auto a = gen.generate(prompt_ids(), text_only(7, 16));
    const auto b = gen.generate(prompt_ids(), text_only(7, 16));
    const auto c = gen.generate(prompt_ids(), text_only(8, 16));
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(a.text, b.text);
    EXPECT_NE(a.tokens, c.tokens);
    // The second run found its prompt in the cache.
    EXPECT_EQ(b.timings.n_reused, static_cast<int64_t>(prompt_ids().size()) - 1);
}

TEST(Generator, StopStringAcrossTokenBoundaryIsNeverEmitted) {
    auto ctx = make_ctx();
    Generator gen(*ctx, *tiny().tok);
    const Tokenizer& tok = *tiny().tok;
    const auto free_run = gen.generate(prompt_ids(), text_only(3, 24));
    // A stop string made of the end of one piece and the start of the next.
    size_t boundary = 0;
    std::string stop;
    std::string so_far;
    for (size_t i = 0; i + 1 < free_run.tokens.size() && stop.empty(); ++i) {
        const std::string a = tok.token_to_piece(free_run.tokens[i]), b = tok.token_to_piece(free_run.tokens[i + 1]);
        so_far += a;
        if (i >= 3 && a.size() >= 2 && !b.empty()) {
            stop = a.substr(a.size() - 2) + b.substr(0, 1);
            boundary = so_far.size();
        }
    }
    ASSERT_FALSE(stop.empty()) << free_run.text;
    const size_t at = free_run.text.find(stop);
    ASSERT_LE(at, boundary - 2);

    GenerateParams g = text_only(3, 24);
    g.stop = {"never-matches-xyz", stop};
    Collected c;
    const auto r = gen.generate(prompt_ids(), g, collect(&c));
    EXPECT_EQ(r.stop_reason, StopReason::StopString);
    EXPECT_EQ(r.stop_string, stop);
    EXPECT_EQ(r.text, free_run.text.substr(0, at));
    EXPECT_EQ(c.text, r.text);
    EXPECT_EQ(c.text.find(stop), std::string::npos);
}

TEST(Generator, HeldBackTextIsReleasedWhenItCannotBeAStop) {
    auto ctx = make_ctx();
    Generator gen(*ctx, *tiny().tok);
    const auto free_run = gen.generate(prompt_ids(), text_only(5, 10));
    const std::string first = tiny().tok->token_to_piece(free_run.tokens[0]);
    ASSERT_FALSE(first.empty());
    // The first piece's last byte starts a stop string that never completes: that byte waits one token.
    GenerateParams g = text_only(5, 10);
    g.stop = {first.substr(first.size() - 1) + "\x01\x02"};
    Collected c;
    const auto r = gen.generate(prompt_ids(), g, collect(&c));
    EXPECT_EQ(r.stop_reason, StopReason::MaxTokens);
    EXPECT_EQ(r.text, free_run.text);
    EXPECT_EQ(c.text, free_run.text);
    ASSERT_GE(c.pieces.size(), 2u);
    EXPECT_EQ(c.pieces[0], first.substr(0, first.size() - 1));
    EXPECT_EQ(c.pieces[1].substr(0, 1), first.substr(first.size() - 1));
}

TEST(Generator, EndOfGenerationTokensStop) {
    auto ctx = make_ctx();
    Generator gen(*ctx, *tiny().tok);
    const Vocab& v = tiny().tok->vocab();
    const TokenId eot = v.find("<end_of_turn>"), strike = v.find("</s>");
    ASSERT_NE(eot, kNoToken);
    for (TokenId t : {v.eos(), eot, strike}) {
        ASSERT_TRUE(v.is_eog(t)) << t;
        GenerateParams g;
        g.max_tokens = 5;
        g.sampling.temp = 0.0f;
        g.sampling.logit_bias = {{t, 1000.0f}};
        const auto r = gen.generate(prompt_ids(), g);
        EXPECT_EQ(r.stop_reason, StopReason::Eog) << t;
        EXPECT_EQ(r.tokens, std::vector<TokenId>{t});
        EXPECT_EQ(r.text, "");
        g.ignore_eog = true;
        EXPECT_EQ(gen.generate(prompt_ids(), g).stop_reason, StopReason::MaxTokens);
    }
}

TEST(Generator, StreamedPiecesAreCompleteUtf8) {
    auto ctx = make_ctx();
    Generator gen(*ctx, *tiny().tok);
    const Vocab& v = tiny().tok->vocab();
    // Only the bytes of "é" (C3 A9) and "a": the random draw makes broken and split characters.
    GenerateParams g = text_only(11, 40);
    g.sampling.logit_bias.clear();
    for (TokenId t = 0; t < kVocab; ++t)
        if (t != v.byte_token(0xC3) && t != v.byte_token(0xA9) && t != v.byte_token('a'))
            g.sampling.logit_bias.push_back({t, -INFINITY});
    Collected c;
    const auto r = gen.generate(prompt_ids(), g, [&](const TokenEvent& ev) {
        if (ev.token != kNoToken) {
            EXPECT_EQ(utf8_incomplete_tail(ev.text), 0u) << "piece " << c.pieces.size();
        }
        c.text += ev.text;
        c.pieces.emplace_back(ev.text);
        return true;
    });
    EXPECT_EQ(c.text, r.text);
    EXPECT_EQ(r.text, tiny().tok->decode(r.tokens));
}

TEST(Generator, PrefixReuseGivesTheLogitsOfAFreshEvaluation) {
    const auto nv = static_cast<size_t>(kVocab);
    const Tokenizer& tok = *tiny().tok;
    const auto a = tok.encode("Hello there, how are you today?", true, true);
    const auto b = tok.encode("Hello there, how is the weather?", true, true);
    ASSERT_GT(common_prefix(a, b), 2u);

    auto fresh_ctx = make_ctx(128, 5);
    Generator fresh(*fresh_ctx, tok);
    const float* fresh_logits = fresh.prefill(b);
    const std::vector<float> want(fresh_logits, fresh_logits + nv);

    auto ctx = make_ctx(128, 5);
    Generator gen(*ctx, tok);
    gen.prefill(a);
    GenerationTimings tm;
    const float* got = gen.prefill(b, nullptr, &tm);
    EXPECT_EQ(tm.n_reused, static_cast<int64_t>(common_prefix(a, b)));
    EXPECT_EQ(std::vector<TokenId>(gen.cached_tokens().begin(), gen.cached_tokens().end()), b);
    EXPECT_LE(test::rel_l2(got, want.data(), nv), 1e-5);
    // The same prompt again: only its last token is evaluated.
    got = gen.prefill(b, nullptr, &tm);
    EXPECT_EQ(tm.n_reused, static_cast<int64_t>(b.size()) - 1);
    EXPECT_LE(test::rel_l2(got, want.data(), nv), 1e-5);
    // A prompt extending the cache (the next chat turn) evaluates only the extension.
    auto c = b;
    c.insert(c.end(), {kFirstNormal, kFirstNormal + 1});
    gen.prefill(c, nullptr, &tm);
    EXPECT_EQ(tm.n_reused, static_cast<int64_t>(b.size()));
    gen.clear();
    gen.prefill(b, nullptr, &tm);
    EXPECT_EQ(tm.n_reused, 0);
}

TEST(Generator, ContextFull) {
    auto ctx = make_ctx(32);
    Generator gen(*ctx, *tiny().tok);
    const auto prompt = prompt_ids();
    GenerateParams g = text_only(2, -1);
    const auto r = gen.generate(prompt, g);
    EXPECT_EQ(r.stop_reason, StopReason::ContextFull);
    EXPECT_NE(r.message.find("context full"), std::string::npos);
    EXPECT_EQ(r.tokens.size(), 32 - prompt.size() + 1);
    std::vector<TokenId> too_long(33, kFirstNormal);
    EXPECT_THROW(gen.generate(too_long, g), ContextFullError);
    EXPECT_THROW(gen.generate(std::vector<TokenId>{}, g), Error);
}

TEST(Generator, CancelFlagAndCallbackStop) {
    auto ctx = make_ctx();
    Generator gen(*ctx, *tiny().tok);
    std::atomic<bool> cancel{false};
    GenerateParams g = text_only(4, 50);
    g.cancel = &cancel;
    int n = 0;
    auto r = gen.generate(prompt_ids(), g, [&](const TokenEvent&) {
        if (++n == 3) cancel = true;
        return true;
    });
    EXPECT_EQ(r.stop_reason, StopReason::Cancelled);
    EXPECT_EQ(r.tokens.size(), 3u);
    cancel = false;
    n = 0;
    r = gen.generate(prompt_ids(), g, [&](const TokenEvent&) { return ++n < 5; });
    EXPECT_EQ(r.stop_reason, StopReason::Cancelled);
    EXPECT_EQ(r.tokens.size(), 5u);
    cancel = true;  // raised before the prompt: nothing is generated
    r = gen.generate(prompt_ids(), g);
    EXPECT_EQ(r.stop_reason, StopReason::Cancelled);
    EXPECT_TRUE(r.tokens.empty());
}

TEST(Generator, LogprobsPerToken) {
    auto ctx = make_ctx();
    Generator gen(*ctx, *tiny().tok);
    GenerateParams g = text_only(6, 4);
    g.n_probs = 3;
    int seen = 0;
    gen.generate(prompt_ids(), g, [&](const TokenEvent& ev) {
        if (ev.token == kNoToken) return true;
        ++seen;
        EXPECT_LE(ev.logprob, 0.0f);
        EXPECT_EQ(ev.top.size(), 3u);  // of the model's distribution, before the bias
        if (!ev.top.empty()) {
            EXPECT_GE(ev.top[0].logprob, ev.logprob);
        }
        for (size_t i = 1; i < ev.top.size(); ++i) EXPECT_GE(ev.top[i - 1].logprob, ev.top[i].logprob);
        return true;
    });
    EXPECT_EQ(seen, 4);
}

TEST(ChatSession, TurnsReuseTheCacheAndClearStartsOver) {
    auto ctx = make_ctx(512);
    Generator gen(*ctx, *tiny().tok);
    ChatSession chat(gen, "Be brief.");
    GenerateParams g = text_only(9, 6);
    const auto r1 = chat.reply("Hi!", g);
    EXPECT_EQ(r1.timings.n_reused, 0);
    ASSERT_EQ(chat.messages().size(), 3u);  // system, user, assistant
    EXPECT_EQ(chat.messages()[2].content, r1.text);
    const auto r2 = chat.reply("And then?", g);
    // Everything up to the first reply is still cached (the reply re-tokenizes the same way or nearly).
    EXPECT_GE(r2.timings.n_reused, r1.timings.n_prompt);
    EXPECT_EQ(chat.messages().size(), 5u);
    chat.clear();
    EXPECT_EQ(chat.messages().size(), 1u);
    const auto r3 = chat.reply("Hi!", g);
    EXPECT_EQ(r3.timings.n_reused, 0);
    EXPECT_EQ(r3.text, r1.text);
    // A conversation too long for the context leaves the history untouched.
    auto small = make_ctx(32);
    Generator g2(*small, *tiny().tok);
    ChatSession c2(g2);
    std::string long_text;
    for (int i = 0; i < 60; ++i) long_text += "a b ";
    EXPECT_THROW(c2.reply(long_text, g), ContextFullError);
    EXPECT_TRUE(c2.messages().empty());
}

}  // namespace
}  // namespace gemma
