// Golden tests: our tokenizer and chat formatting against SentencePiece / the HF template on the Gemma vocab.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "runtime/chat_template.h"
#include "support/golden.h"
#include "tokenizer/tokenizer.h"

namespace {

using gemma::TokenId;
using nlohmann::json;

const gemma::Tokenizer& gemma_tok() {
    static const gemma::Tokenizer tok = gemma::Tokenizer::load(gemma::test::golden("vocab/gemma-vocab.gguf"));
    return tok;
}

const gemma::Tokenizer& gemma3_tok() {
    static const gemma::Tokenizer tok = gemma::Tokenizer::load(gemma::test::golden("gemma3/gemma3-vocab.gguf"));
    return tok;
}

json load_json(const std::string& rel) {
    std::ifstream f(gemma::test::golden(rel));
    EXPECT_TRUE(f.good()) << "cannot open " << rel;
    return json::parse(f);
}

std::string show_ids(const std::vector<TokenId>& ids, size_t max = 64) {
    std::ostringstream os;
    os << "[";
    for (size_t i = 0; i < ids.size() && i < max; ++i) os << (i ? ", " : "") << ids[i];
    if (ids.size() > max) os << ", ... (" << ids.size() << " ids)";
    os << "]";
    return os.str();
}

// Where two id lists first differ, so a failure on the 7000-token license text is readable.
std::string first_diff(const std::vector<TokenId>& want, const std::vector<TokenId>& got) {
    size_t i = 0;
    while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
    std::ostringstream os;
    os << "first difference at index " << i << ": expected " << (i < want.size() ? std::to_string(want[i]) : "<end>")
       << ", got " << (i < got.size() ? std::to_string(got[i]) : "<end>");
    return os.str();
}

std::vector<gemma::ChatMessage> messages_of(const json& j) {
    std::vector<gemma::ChatMessage> m;
    for (const auto& x : j) {
        const json& c = x.at("content");
        std::string content;
        if (c.is_string()) {
            content = c.get<std::string>();
        } else {
            std::vector<gemma::ChatContentPart> parts;
            for (const json& p : c) parts.push_back({p.at("type").get<std::string>(), p.value("text", "")});
            content = gemma::join_content_parts(parts);
        }
        m.push_back({x.at("role").get<std::string>(), content});
    }
    return m;
}

TEST(TokenizerGolden, VocabMetadata) {
    const gemma::Vocab& v = gemma_tok().vocab();
    EXPECT_EQ(v.size(), 256000);
    EXPECT_EQ(v.bos(), 2);
    EXPECT_EQ(v.eos(), 1);
    EXPECT_EQ(v.unk(), 3);
    EXPECT_EQ(v.pad(), 0);
    EXPECT_EQ(v.eot(), 107);
    EXPECT_TRUE(v.add_bos());
    EXPECT_FALSE(v.add_eos());
    EXPECT_FALSE(v.add_space_prefix());
    EXPECT_EQ(v.eog(), (std::vector<TokenId>{1, 107, 213}));  // 213 is "</s>": llama.cpp's stop-text quirk
    EXPECT_EQ(v.byte_token(0x0A), 227);
    EXPECT_EQ(v.byte_token(0x09), 226);  // no <0x09> in Gemma's vocab: the tab piece stands in
    EXPECT_EQ(v.special_tokens().size(), 217u);  // as llama.cpp (<unk> is listed but never matched)
    EXPECT_FALSE(v.chat_template().empty());
}

void expect_cases_round_trip(const gemma::Tokenizer& tok, const std::string& cases_file) {
    const json cases = load_json(cases_file);
    ASSERT_GE(cases.size(), 100u);
    size_t enc_ok = 0, dec_ok = 0;
    std::string first_enc_fail, first_dec_fail;
    for (size_t c = 0; c < cases.size(); ++c) {
        const std::string text = cases[c].at("text").get<std::string>();
        const std::vector<TokenId> want = cases[c].at("ids").get<std::vector<TokenId>>();
        const std::vector<TokenId> got = tok.encode(text, true, true);
        if (got == want) ++enc_ok;
        else if (first_enc_fail.empty())
            first_enc_fail = "case " + std::to_string(c) + " text " + json(text).dump() + "\n  expected " +
                             show_ids(want) + "\n  got      " + show_ids(got) + "\n  " + first_diff(want, got);
        // Control tokens written in the text come back only with special=true.
        const std::string back = tok.decode(want, /*special=*/true, /*remove_special=*/true);
        if (back == text) ++dec_ok;
        else if (first_dec_fail.empty())
            first_dec_fail = "case " + std::to_string(c) + " text " + json(text).dump() + "\n  decoded " +
                             json(back).dump(-1, ' ', false, json::error_handler_t::replace);
    }
    EXPECT_EQ(enc_ok, cases.size()) << "encode: " << enc_ok << "/" << cases.size() << " match; " << first_enc_fail;
    EXPECT_EQ(dec_ok, cases.size()) << "decode: " << dec_ok << "/" << cases.size() << " match; " << first_dec_fail;
}

TEST(TokenizerGolden, CasesEncodeAndDecode) { expect_cases_round_trip(gemma_tok(), "tokenizer/cases.json"); }

// Gemma 3's 262144-token vocabulary (multi-space pieces, newline runs as user-defined tokens) through the
// same SentencePiece path.
TEST(TokenizerGolden, Gemma3CasesEncodeAndDecode) {
    expect_cases_round_trip(gemma3_tok(), "gemma3/tokenizer-cases.json");
}

TEST(TokenizerGolden, Gemma3VocabMetadata) {
    const gemma::Vocab& v = gemma3_tok().vocab();
    EXPECT_EQ(v.size(), 262144);
    EXPECT_EQ(v.bos(), 2);
    EXPECT_EQ(v.eos(), 1);
    EXPECT_EQ(v.unk(), 3);
    EXPECT_EQ(v.pad(), 0);
    EXPECT_EQ(v.eot(), 106);  // no eot key in the file: found by its text, <end_of_turn>
    EXPECT_EQ(v.text(105), "<start_of_turn>");
    EXPECT_TRUE(v.is_eog(1));
    EXPECT_TRUE(v.is_eog(106));
    EXPECT_FALSE(v.is_eog(105));
    EXPECT_TRUE(v.add_bos());
    EXPECT_FALSE(v.add_space_prefix());
    EXPECT_EQ(v.byte_token(0x00), 238);
    EXPECT_EQ(gemma3_tok().encode("\n\n", false), (std::vector<TokenId>{108}));
    EXPECT_EQ(gemma3_tok().encode("  ", false), (std::vector<TokenId>{138}));
}

// SentencePiece is the reference; the fast HF tokenizer's split of long space runs is recorded only
// for information, and we must not have drifted towards it.
TEST(TokenizerGolden, LongSpaceRunsFollowSentencePieceNotHfFast) {
    const json cases = load_json("tokenizer/cases.json");
    size_t seen = 0;
    for (const auto& c : cases) {
        if (!c.contains("hf_fast_ids")) continue;
        ++seen;
        const auto got = gemma_tok().encode(c.at("text").get<std::string>());
        EXPECT_EQ(got, c.at("ids").get<std::vector<TokenId>>());
        EXPECT_NE(got, c.at("hf_fast_ids").get<std::vector<TokenId>>());
    }
    EXPECT_GE(seen, 1u);
    // 34 spaces: the 31-space token then the 3-space token.
    EXPECT_EQ(gemma_tok().encode(std::string(34, ' '), false), (std::vector<TokenId>{168, 140}));
}

TEST(TokenizerGolden, LicenseTextIsFast) {
    const json cases = load_json("tokenizer/cases.json");
    std::string longest;
    for (const auto& c : cases)
        if (c.at("text").get<std::string>().size() > longest.size()) longest = c.at("text").get<std::string>();
    std::string big;
    for (int i = 0; i < 20; ++i) big += longest;
    const auto t0 = std::chrono::steady_clock::now();
    const auto ids = gemma_tok().encode(big);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("[ info ] encoded %zu bytes into %zu tokens in %.1f ms (%.1f MB/s)\n", big.size(), ids.size(),
                s * 1e3, big.size() / s / 1e6);
    EXPECT_LT(s, 5.0);  // ~700 KB: a quadratic merge loop would take minutes
}

TEST(ChatTemplateGolden, CasesBuildTextAndIds) {
    const json j = load_json("tokenizer/chat-template.json");
    const auto& cases = j.at("cases");
    ASSERT_FALSE(cases.empty());
    size_t ok = 0;
    for (size_t c = 0; c < cases.size(); ++c) {
        const auto msgs = messages_of(cases[c].at("messages"));
        gemma::ChatOptions opts;
        opts.add_generation_prompt = cases[c].at("add_generation_prompt").get<bool>();
        const std::string want_text = cases[c].at("text").get<std::string>();
        const auto want_ids = cases[c].at("ids").get<std::vector<TokenId>>();
        for (auto policy : {gemma::SystemPolicy::Fold, gemma::SystemPolicy::Reject}) {
            opts.system = policy;
            opts.format = gemma::ChatFormat::Auto;
            const std::string text = gemma::format_gemma_chat(msgs, opts);
            EXPECT_EQ(text, want_text) << "chat case " << c;
            const auto ids = gemma::tokenize_gemma_chat(gemma_tok(), msgs, opts);
            EXPECT_EQ(ids, want_ids) << "chat case " << c << "\n  expected " << show_ids(want_ids) << "\n  got      "
                                     << show_ids(ids) << "\n  " << first_diff(want_ids, ids);
            if (text == want_text && ids == want_ids) ++ok;
        }
    }
    EXPECT_EQ(ok, 2 * cases.size());
}

TEST(ChatTemplateGolden, RejectedConversations) {
    const json j = load_json("tokenizer/chat-template.json");
    const auto& rejected = j.at("rejected_by_template");
    ASSERT_FALSE(rejected.empty());
    for (size_t c = 0; c < rejected.size(); ++c) {
        const auto msgs = messages_of(rejected[c].at("messages"));
        const std::string want = rejected[c].at("error").get<std::string>();
        // The model's own template (Reject policy) must fail with the template's message.
        gemma::ChatOptions strict;
        strict.system = gemma::SystemPolicy::Reject;
        try {
            gemma::format_gemma_chat(msgs, strict);
            ADD_FAILURE() << "rejected case " << c << " was accepted; expected error: " << want;
        } catch (const gemma::Error& e) {
            EXPECT_EQ(std::string(e.what()), want) << "rejected case " << c;
        }
        // The default (llama.cpp) policy folds a leading system message into the first user turn;
        // everything else the template rejects stays rejected.
        const bool leading_system = msgs.front().role == "system";
        if (leading_system) {
            const std::string got = gemma::format_gemma_chat(msgs);
            std::string want_text = "<bos><start_of_turn>user\n" + msgs[0].content + "\n\n" + msgs[1].content +
                                    "<end_of_turn>\n<start_of_turn>model\n";
            EXPECT_EQ(got, want_text);
        } else {
            try {
                gemma::format_gemma_chat(msgs);
                ADD_FAILURE() << "rejected case " << c << " was accepted by the default policy";
            } catch (const gemma::Error& e) {
                EXPECT_EQ(std::string(e.what()), want) << "rejected case " << c;
            }
        }
    }
}

}  // namespace

namespace {

// Gemma 3's template (golden/gemma3/chat-template.json, rendered by Jinja2): the system text folded verbatim
// with a blank line, contents trimmed, content parts joined; ids through the Gemma 3 vocabulary.
TEST(ChatTemplateGolden, Gemma3CasesBuildTextAndIds) {
    const json j = load_json("gemma3/chat-template.json");
    const auto& cases = j.at("cases");
    ASSERT_GE(cases.size(), 10u);
    EXPECT_EQ(gemma::chat_format_of(gemma3_tok().vocab()), gemma::ChatFormat::Gemma3);
    size_t ok = 0, with_system = 0;
    for (size_t c = 0; c < cases.size(); ++c) {
        const auto msgs = messages_of(cases[c].at("messages"));
        with_system += msgs.front().role == "system";
        gemma::ChatOptions opts;
        opts.add_generation_prompt = cases[c].at("add_generation_prompt").get<bool>();
        const std::string want_text = cases[c].at("text").get<std::string>();
        const auto want_ids = cases[c].at("ids").get<std::vector<TokenId>>();
        opts.format = gemma::ChatFormat::Gemma3;
        const std::string text = gemma::format_gemma_chat(msgs, opts);
        EXPECT_EQ(text, want_text) << "chat case " << c;
        // The format comes from the vocabulary's file (arch gemma3, Gemma 3 template).
        opts.format = gemma::ChatFormat::Auto;
        const auto ids = gemma::tokenize_gemma_chat(gemma3_tok(), msgs, opts);
        EXPECT_EQ(ids, want_ids) << "chat case " << c << "\n  expected " << show_ids(want_ids) << "\n  got      "
                                 << show_ids(ids) << "\n  " << first_diff(want_ids, ids);
        if (text == want_text && ids == want_ids) ++ok;
    }
    EXPECT_EQ(ok, cases.size());
    EXPECT_GE(with_system, 2u);
}

TEST(ChatTemplateGolden, Gemma3RejectedConversations) {
    const json j = load_json("gemma3/chat-template.json");
    const auto& rejected = j.at("rejected_by_template");
    ASSERT_EQ(rejected.size(), 2u);
    for (size_t c = 0; c < rejected.size(); ++c) {
        const auto msgs = messages_of(rejected[c].at("messages"));
        const std::string want = rejected[c].at("error").get<std::string>();
        try {
            gemma::tokenize_gemma_chat(gemma3_tok(), msgs);
            ADD_FAILURE() << "rejected case " << c << " was accepted; expected error: " << want;
        } catch (const gemma::Error& e) {
            EXPECT_EQ(std::string(e.what()), want) << "rejected case " << c;
        }
    }
}

}  // namespace
