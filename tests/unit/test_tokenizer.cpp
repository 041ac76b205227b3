// Tokenizer unit tests: vocab validation, parse_special, byte fallback, broken UTF-8, streaming decode.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <random>

#include "core/error.h"
#include "gguf/gguf.h"
#include "support/golden.h"
#include "tokenizer/tokenizer.h"

namespace {

using gemma::GgufValue;
using gemma::TokenId;
using gemma::TokenType;
using Ids = std::vector<TokenId>;

const gemma::Tokenizer& gemma_tok() {
    static const gemma::Tokenizer tok = gemma::Tokenizer::load(gemma::test::golden("vocab/gemma-vocab.gguf"));
    return tok;
}

// A GGUF with a 4-token vocabulary; `edit` changes the keys before writing. Returns its path.
std::string write_vocab(const std::function<void(gemma::GgufWriter&)>& edit) {
    static int n = 0;
    const std::string path = gemma::test::temp_dir() + "/vocab" + std::to_string(n++) + ".gguf";
    gemma::GgufWriter w(path);
    w.set("general.architecture", GgufValue::string("gemma"));
    w.set("tokenizer.ggml.model", GgufValue::string("llama"));
    w.set("tokenizer.ggml.tokens", GgufValue::string_array({"<unk>", "<s>", "</s>", "a"}));
    w.set("tokenizer.ggml.scores", GgufValue::f32_array({0, 0, 0, -1}));
    w.set("tokenizer.ggml.token_type", GgufValue::i32_array({2, 3, 3, 1}));
    edit(w);
    w.finish();
    return path;
}

// The error message loading `path` gives ("" when it loads).
std::string load_error(const std::string& path) {
    try {
        gemma::Vocab::load(path);
    } catch (const gemma::Error& e) {
        return e.what();
    }
    return "";
}

void expect_error(const std::function<void(gemma::GgufWriter&)>& edit, const std::vector<std::string>& parts) {
    const std::string path = write_vocab(edit);
    const std::string msg = load_error(path);
    ASSERT_FALSE(msg.empty()) << "expected an error mentioning " << parts[0];
    EXPECT_EQ(msg.rfind(path, 0), 0u) << "error should name the file: " << msg;
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
}

TEST(Vocab, MinimalFileLoadsWithLlamaDefaults) {
    const auto v = gemma::Vocab::load(write_vocab([](auto&) {}));
    EXPECT_EQ(v.size(), 4);
    EXPECT_EQ(v.bos(), 1);
    EXPECT_EQ(v.eos(), 2);
    EXPECT_EQ(v.unk(), 0);
    EXPECT_EQ(v.pad(), gemma::kNoToken);
    EXPECT_TRUE(v.add_bos());
    EXPECT_FALSE(v.add_eos());
    EXPECT_TRUE(v.add_space_prefix());
    EXPECT_EQ(v.find("a"), 3);
    EXPECT_EQ(v.find("b"), gemma::kNoToken);
    EXPECT_TRUE(v.is_eog(2));
}

TEST(Vocab, BadInputsGiveClearErrors) {
    expect_error([](auto& w) { w.remove("tokenizer.ggml.model"); }, {"tokenizer.ggml.model", "missing"});
    expect_error([](auto& w) { w.set("tokenizer.ggml.model", GgufValue::string("gpt2")); }, {"'gpt2'", "llama"});
    expect_error([](auto& w) { w.set("tokenizer.ggml.model", GgufValue::u32(1)); }, {"tokenizer.ggml.model", "string"});
    expect_error([](auto& w) { w.remove("tokenizer.ggml.tokens"); }, {"tokenizer.ggml.tokens", "missing"});
    expect_error([](auto& w) { w.remove("tokenizer.ggml.scores"); }, {"tokenizer.ggml.scores", "missing"});
    expect_error([](auto& w) { w.remove("tokenizer.ggml.token_type"); }, {"tokenizer.ggml.token_type", "missing"});
    expect_error([](auto& w) { w.set("tokenizer.ggml.scores", GgufValue::f32_array({0, 0, 0})); },
                 {"disagree in length", "tokens 4", "scores 3"});
    expect_error([](auto& w) { w.set("tokenizer.ggml.token_type", GgufValue::i32_array({2, 3, 3, 1, 1})); },
                 {"disagree in length", "token_type 5"});
    expect_error([](auto& w) { w.set("tokenizer.ggml.tokens", GgufValue::i32_array({1, 2, 3, 4})); },
                 {"tokenizer.ggml.tokens", "strings"});
    expect_error([](auto& w) { w.set("tokenizer.ggml.tokens", GgufValue::string("a")); },
                 {"tokenizer.ggml.tokens", "array"});
    expect_error([](auto& w) { w.set("tokenizer.ggml.scores", GgufValue::i32_array({0, 0, 0, 0})); },
                 {"tokenizer.ggml.scores", "float32"});
    expect_error([](auto& w) { w.set("tokenizer.ggml.token_type", GgufValue::f32_array({1, 1, 1, 1})); },
                 {"tokenizer.ggml.token_type", "int32"});
    expect_error([](auto& w) { w.set("tokenizer.ggml.token_type", GgufValue::i32_array({2, 3, 9, 1})); },
                 {"token_type[2] = 9"});
    expect_error([](auto& w) { w.set("tokenizer.ggml.tokens", GgufValue::string_array({})); }, {"empty"});
    expect_error([](auto& w) { w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(4)); },
                 {"tokenizer.ggml.bos_token_id", "outside the vocabulary"});
}

TEST(Vocab, OutOfRangePaddingIdMeansNone) {
    const auto v = gemma::Vocab::load(write_vocab([](auto& w) { w.set("tokenizer.ggml.padding_token_id", GgufValue::i32(-1)); }));
    EXPECT_EQ(v.pad(), gemma::kNoToken);
}

// Hand-built vocabularies pin down the merge order and the space prefix without the 256k-token fixture.
gemma::Tokenizer tiny(std::vector<std::string> texts, std::vector<float> scores, std::vector<TokenType> types,
                      bool space_prefix = false) {
    gemma::Vocab::Specials sp;
    sp.bos = 1;
    sp.eos = 2;
    sp.unk = 0;
    sp.add_space_prefix = space_prefix;
    return gemma::Tokenizer(gemma::Vocab::from_arrays(std::move(texts), std::move(scores), std::move(types), sp, "tiny"));
}

TEST(Tokenizer, EqualScoresMergeLeftmostFirst) {
    const auto tok = tiny({"<unk>", "<s>", "</s>", "a", "aa"}, {0, 0, 0, -1, -2},
                          {TokenType::Unknown, TokenType::Control, TokenType::Control, TokenType::Normal, TokenType::Normal});
    EXPECT_EQ(tok.encode("aaa", false), (Ids{4, 3}));
    EXPECT_EQ(tok.encode("aaaaa", false), (Ids{4, 4, 3}));
}

TEST(Tokenizer, HigherScoreMergesFirst) {
    // "ab" outranks "bc", so "abc" is ab+c even though bc is also a piece.
    const auto tok = tiny({"<unk>", "<s>", "</s>", "a", "b", "c", "ab", "bc"}, {0, 0, 0, -1, -1, -1, -5, -6},
                          {TokenType::Unknown, TokenType::Control, TokenType::Control, TokenType::Normal,
                           TokenType::Normal, TokenType::Normal, TokenType::Normal, TokenType::Normal});
    EXPECT_EQ(tok.encode("abc", false), (Ids{6, 5}));
    const auto tok2 = tiny({"<unk>", "<s>", "</s>", "a", "b", "c", "ab", "bc"}, {0, 0, 0, -1, -1, -1, -6, -5},
                           {TokenType::Unknown, TokenType::Control, TokenType::Control, TokenType::Normal,
                            TokenType::Normal, TokenType::Normal, TokenType::Normal, TokenType::Normal});
    EXPECT_EQ(tok2.encode("abc", false), (Ids{3, 7}));
}

TEST(Tokenizer, SpacePrefixWhenTheVocabAsks) {
    const auto tok = tiny({"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "\xE2\x96\x81" "a"}, {0, 0, 0, -1, -1, -2},
                          {TokenType::Unknown, TokenType::Control, TokenType::Control, TokenType::Normal,
                           TokenType::Normal, TokenType::Normal},
                          /*space_prefix=*/true);
    EXPECT_EQ(tok.encode("a", true), (Ids{1, 5}));
    EXPECT_EQ(tok.encode("a</s>a", false), (Ids{5, 2, 5}));
    EXPECT_EQ(tok.decode(tok.encode("a a")), "a a");
}

// The textbook O(n^2) BPE: merge the best-scoring adjacent pair (leftmost on ties) until none is a piece.
Ids naive_bpe(const gemma::Vocab& v, const std::string& text) {
    std::string s;
    for (char c : text) s += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);
    std::vector<std::string> syms;
    for (size_t i = 0; i < s.size();) {
        const size_t n = gemma::utf8_char_len(std::string_view(s).substr(i));
        syms.push_back(s.substr(i, n));
        i += n;
    }
    while (true) {
        int best = -1;
        float best_score = 0;
        for (size_t i = 0; i + 1 < syms.size(); ++i) {
            const TokenId id = v.find_piece(syms[i] + syms[i + 1]);
            if (id != gemma::kNoToken && (best < 0 || v.score(id) > best_score)) {
                best = static_cast<int>(i);
                best_score = v.score(id);
            }
        }
        if (best < 0) break;
        syms[best] += syms[best + 1];
        syms.erase(syms.begin() + best + 1);
    }
    Ids out;
    for (const auto& p : syms) {
        if (TokenId id = v.find_piece(p); id != gemma::kNoToken) out.push_back(id);
        else for (unsigned char c : p) out.push_back(v.byte_token(c));
    }
    return out;
}

TEST(Tokenizer, PriorityQueueMatchesNaiveBpeOnRandomVocabularies) {
    std::mt19937 rng(1234);
    const std::vector<std::string> alpha = {"a", "b", "c", "\xE2\x96\x81"};
    for (int trial = 0; trial < 20; ++trial) {
        std::vector<std::string> texts = {"<unk>", "<s>", "</s>"};
        std::vector<float> scores = {0, 0, 0};
        std::vector<TokenType> types = {TokenType::Unknown, TokenType::Control, TokenType::Control};
        for (int b = 0; b < 256; ++b) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "<0x%02X>", b);
            texts.push_back(hex);
            scores.push_back(0);
            types.push_back(TokenType::Byte);
        }
        // "c" is left out so byte fallback happens; few distinct scores so ties are common.
        for (const char* one : {"a", "b", "\xE2\x96\x81"}) {
            texts.push_back(one);
            scores.push_back(-100);
            types.push_back(TokenType::Normal);
        }
        for (int len = 2; len <= 4; ++len) {
            std::vector<std::string> all = {""};
            for (int k = 0; k < len; ++k) {
                std::vector<std::string> next;
                for (const auto& p : all)
                    for (const auto& c : alpha) next.push_back(p + c);
                all = next;
            }
            for (const auto& p : all) {
                if (rng() % 10 >= 4) continue;
                texts.push_back(p);
                scores.push_back(-static_cast<float>(rng() % 3));
                types.push_back(TokenType::Normal);
            }
        }
        const auto tok = tiny(texts, scores, types);
        for (int t = 0; t < 200; ++t) {
            std::string text;
            const int n = static_cast<int>(rng() % 40);
            for (int k = 0; k < n; ++k) text += "abc "[rng() % 4];
            ASSERT_EQ(tok.encode(text, false, false), naive_bpe(tok.vocab(), text)) << "trial " << trial << " text '" << text << "'";
            ASSERT_EQ(tok.decode(tok.encode(text, false, false)), text);
        }
    }
}

TEST(Tokenizer, RandomBytesRoundTrip) {
    const auto& tok = gemma_tok();
    std::mt19937 rng(99);
    const std::vector<std::string> bits = {"a", " ", "  ", "\n", "<", ">", "<start_of_turn>", "</s>", "<unk>", "\xC3",
                                           "\xA9", "\xE6\x97\xA5", "\xF0\x9F", "\x80", "\xFF", "\t", "ab", "<b>"};
    for (int t = 0; t < 2000; ++t) {
        std::string text;
        const int n = static_cast<int>(rng() % 24);
        for (int k = 0; k < n; ++k) text += bits[rng() % bits.size()];
        for (bool parse_special : {false, true}) {
            const Ids ids = tok.encode(text, true, parse_special);
            ASSERT_EQ(tok.decode(ids, true, true), text) << ::testing::PrintToString(text);
        }
    }
}

TEST(Tokenizer, MissingByteTokensFallBackToUnknown) {
    const auto tok = tiny({"<unk>", "<s>", "</s>", "a"}, {0, 0, 0, -1},
                          {TokenType::Unknown, TokenType::Control, TokenType::Control, TokenType::Normal});
    EXPECT_EQ(tok.encode("a\xC3\xA9", false), (Ids{3, 0, 0}));
}

TEST(Tokenizer, ParseSpecialOff) {
    const auto& tok = gemma_tok();
    EXPECT_EQ(tok.encode("<start_of_turn>", true, true), (Ids{2, 106}));
    const Ids plain = tok.encode("<start_of_turn>user", true, false);
    EXPECT_EQ(std::count(plain.begin(), plain.end(), 106), 0);
    EXPECT_EQ(std::count(plain.begin(), plain.end(), 2), 1);
    EXPECT_EQ(tok.decode(plain, false, true), "<start_of_turn>user");
    const Ids spelled = tok.encode("<bos><eos>", false, false);
    EXPECT_EQ(std::count(spelled.begin(), spelled.end(), 2) + std::count(spelled.begin(), spelled.end(), 1), 0);
    EXPECT_EQ(tok.decode(spelled), "<bos><eos>");
    // User-defined tokens (newline runs, space runs, HTML tags) split the text either way.
    EXPECT_EQ(tok.encode("\n\n<b>x</b>", false, false), tok.encode("\n\n<b>x</b>", false, true));
    EXPECT_EQ(tok.encode("\n\n", false, false), (Ids{109}));
    // "</s>" (id 213) is a stop token, so like llama.cpp it is split out only when parsing specials.
    EXPECT_EQ(tok.encode("</s>", false, true), (Ids{213}));
    EXPECT_EQ(tok.decode(tok.encode("</s>", false, false), true), "</s>");
    EXPECT_EQ(tok.decode(tok.encode("</s>", false, false), false), "</s>");
}

TEST(Tokenizer, UnknownTextIsSpelledOutLikeSentencePiece) {
    const auto& tok = gemma_tok();
    const Ids ids = tok.encode("<unk>", false, true);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), 3), 0);
    EXPECT_EQ(tok.decode(ids), "<unk>");
    EXPECT_EQ(tok.token_to_piece(3), "");
    EXPECT_EQ(tok.token_to_piece(3, true), "<unk>");
}

TEST(Tokenizer, LiteralSpaceMarkIsASpace) {
    const auto& tok = gemma_tok();
    EXPECT_EQ(tok.encode("Hello\xE2\x96\x81world"), tok.encode("Hello world"));
    EXPECT_EQ(tok.encode("\xE2\x96\x81\xE2\x96\x81", false), (Ids{139}));
    EXPECT_EQ(tok.encode("\xE2\x96\x81 ", false), (Ids{139}));
}

TEST(Tokenizer, ByteFallback) {
    const auto& tok = gemma_tok();
    // U+10FFFD (private use) is not a piece: one <0xXX> token per byte, uppercase hex.
    EXPECT_EQ(tok.encode("\xF4\x8F\xBF\xBD", false), (Ids{461, 360, 408, 406}));
    EXPECT_EQ(tok.vocab().text(461), "<0xF4>");
    EXPECT_EQ(tok.token_to_piece(461), "\xF4");
    EXPECT_EQ(tok.decode(Ids{461, 360, 408, 406}), "\xF4\x8F\xBF\xBD");
}

TEST(Tokenizer, BrokenUtf8RoundTrips) {
    const auto& tok = gemma_tok();
    const std::vector<std::string> inputs = {
        "\xFF", "\xFE\xFF", "abc\x80", "\x80" "abc", "ab\xC3", "ab\xE2\x96", "\xE2\x96", "\xF0\x9F\x98",
        "\xC3(", "x\xE2(y", "\xED\xA0\x80", "\xC0\xAF", "ok \xF8\x88\x80\x80\x80 ok", std::string("a\0b", 3),
    };
    for (const auto& in : inputs) {
        const Ids ids = tok.encode(in, false);
        EXPECT_EQ(tok.decode(ids), in) << "input bytes " << ::testing::PrintToString(in);
    }
    // A truncated character at the end becomes its bytes.
    EXPECT_EQ(tok.encode("ab\xC3", false).back(), tok.vocab().byte_token(0xC3));
    // A broken sequence does not swallow the ASCII after it: "(" is still its own piece.
    const Ids ids = tok.encode("\xC3(", false);
    ASSERT_EQ(ids.size(), 2u);
    EXPECT_EQ(ids[0], tok.vocab().byte_token(0xC3));
    EXPECT_EQ(ids[1], tok.vocab().find("("));
}

TEST(Tokenizer, Utf8Helpers) {
    EXPECT_EQ(gemma::utf8_char_len("a"), 1u);
    EXPECT_EQ(gemma::utf8_char_len("\xC3\xA9"), 2u);
    EXPECT_EQ(gemma::utf8_char_len("\xE2\x96\x81"), 3u);
    EXPECT_EQ(gemma::utf8_char_len("\xF0\x9F\x98\x80"), 4u);
    EXPECT_EQ(gemma::utf8_char_len("\xF0\x9F" "a"), 2u);
    EXPECT_EQ(gemma::utf8_char_len("\x80"), 1u);
    EXPECT_EQ(gemma::utf8_incomplete_tail(""), 0u);
    EXPECT_EQ(gemma::utf8_incomplete_tail("abc"), 0u);
    EXPECT_EQ(gemma::utf8_incomplete_tail("a\xC3"), 1u);
    EXPECT_EQ(gemma::utf8_incomplete_tail("a\xF0\x9F\x98"), 3u);
    EXPECT_EQ(gemma::utf8_incomplete_tail("a\xF0\x9F\x98\x80"), 0u);
    EXPECT_EQ(gemma::utf8_incomplete_tail("\x80\x80"), 0u);
    EXPECT_EQ(gemma::utf8_incomplete_tail("\xFF"), 0u);
    EXPECT_EQ(gemma::escape_for_display("a\n\t'\\\x01\xC3\xA9\xC3"), "a\\n\\t\\'\\\\\\x01\xC3\xA9\\xC3");
}

TEST(Tokenizer, DecodeSpecialAndControl) {
    const auto& tok = gemma_tok();
    const Ids ids{2, 106, 1645, 108, 2151, 107};
    EXPECT_EQ(tok.decode(ids), "user\nHi");
    EXPECT_EQ(tok.decode(ids, true), "<bos><start_of_turn>user\nHi<end_of_turn>");
    EXPECT_EQ(tok.decode(ids, true, true), "<start_of_turn>user\nHi<end_of_turn>");
    EXPECT_EQ(tok.token_to_piece(213), "");  // the "</s>" stop-token quirk renders like a control token
    EXPECT_EQ(tok.token_to_piece(213, true), "</s>");
    EXPECT_EQ(tok.token_to_piece(25957), " Hello");
    EXPECT_EQ(tok.token_to_piece(140), "   ");
    EXPECT_THROW(tok.token_to_piece(256000), gemma::Error);
    EXPECT_THROW(tok.token_to_piece(-1), gemma::Error);
}

TEST(StreamDecoder, HoldsBackIncompleteCharacters) {
    const auto& tok = gemma_tok();
    gemma::StreamDecoder dec(tok);
    const Ids bytes = tok.encode("\xF4\x8F\xBF\xBD", false);
    ASSERT_EQ(bytes.size(), 4u);
    EXPECT_EQ(dec.push(tok.vocab().find("Hello")), "Hello");
    EXPECT_EQ(dec.push(bytes[0]), "");
    EXPECT_EQ(dec.push(bytes[1]), "");
    EXPECT_EQ(dec.push(bytes[2]), "");
    EXPECT_EQ(dec.pending_bytes(), 3u);
    EXPECT_EQ(dec.push(bytes[3]), "\xF4\x8F\xBF\xBD");
    EXPECT_EQ(dec.push(2), "");  // control tokens are invisible without special
    EXPECT_EQ(dec.push(bytes[0]), "");
    EXPECT_EQ(dec.flush(), "\xF4");  // end of stream: whatever is left comes out
    EXPECT_EQ(dec.pending_bytes(), 0u);
}

TEST(StreamDecoder, DoesNotHoldInvalidBytes) {
    const auto& tok = gemma_tok();
    gemma::StreamDecoder dec(tok, /*special=*/true);
    EXPECT_EQ(dec.push(tok.vocab().byte_token(0xFF)), "\xFF");
    EXPECT_EQ(dec.push(tok.vocab().byte_token(0x80)), "\x80");
    // A lead byte followed by a non-continuation is released together with what broke it.
    EXPECT_EQ(dec.push(tok.vocab().byte_token(0xC3)), "");
    EXPECT_EQ(dec.push(tok.vocab().find("(")), "\xC3(");
    EXPECT_EQ(dec.push(107), "<end_of_turn>");
}

TEST(StreamDecoder, ConcatenationEqualsDecode) {
    const auto& tok = gemma_tok();
    const std::string text = "emoji 😀👍🏽 日本語 \xF4\x8F\xBF\xBD and bytes \xE2\x96 end";
    const Ids ids = tok.encode(text, false);
    gemma::StreamDecoder dec(tok);
    std::string all;
    for (TokenId id : ids) {
        const std::string part = dec.push(id);
        EXPECT_EQ(gemma::utf8_incomplete_tail(part), 0u);
        all += part;
    }
    all += dec.flush();
    EXPECT_EQ(all, text);
}

TEST(Tokenizer, LongInputsStayLinear) {
    const auto& tok = gemma_tok();
    // One 2 MB fragment with no spaces and one made of tiny fragments separated by special tokens.
    const std::string a(2'000'000, 'a');
    const Ids ids = tok.encode(a, false);
    EXPECT_EQ(tok.decode(ids), a);
    std::string mixed;
    for (int i = 0; i < 100'000; ++i) mixed += "x\n";
    EXPECT_EQ(tok.encode(mixed, false).size(), 200'000u);
}

}  // namespace
