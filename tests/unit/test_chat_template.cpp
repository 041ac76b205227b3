// Chat formatting unit tests: system folding, role checks, trimming, BOS handling.
#include <gtest/gtest.h>

#include "core/error.h"
#include "runtime/chat_template.h"
#include "support/golden.h"

namespace {

using gemma::ChatMessage;
using gemma::ChatOptions;
using gemma::format_gemma_chat;

std::string error_of(const std::vector<ChatMessage>& m, const ChatOptions& o = {}) {
    try {
        format_gemma_chat(m, o);
    } catch (const gemma::Error& e) {
        return e.what();
    }
    return "";
}

TEST(ChatTemplate, SystemIsFoldedIntoFirstUserTurn) {
    const std::vector<ChatMessage> m = {{"system", "  Be brief. "}, {"user", "Hi\n"}, {"assistant", "Hello"}};
    ChatOptions o;
    o.add_generation_prompt = false;
    EXPECT_EQ(format_gemma_chat(m, o),
              "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n");
    // An empty system prompt adds nothing (llama.cpp's formatter does the same).
    EXPECT_EQ(format_gemma_chat({{"system", " "}, {"user", "Hi"}}),
              "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n");
}

TEST(ChatTemplate, RejectPolicyMatchesTheJinjaTemplate) {
    ChatOptions strict;
    strict.system = gemma::SystemPolicy::Reject;
    EXPECT_EQ(error_of({{"system", "x"}, {"user", "Hi"}}, strict), "System role not supported");
    EXPECT_EQ(error_of({{"user", "a"}, {"assistant", "b"}, {"system", "x"}}, strict), "System role not supported");
}

TEST(ChatTemplate, RoleErrors) {
    const std::string alt = "Conversation roles must alternate user/assistant/user/assistant/...";
    EXPECT_EQ(error_of({{"user", "a"}, {"user", "b"}}), alt);
    EXPECT_EQ(error_of({{"assistant", "a"}}), alt);
    EXPECT_EQ(error_of({{"system", "s"}, {"assistant", "a"}}), alt);
    EXPECT_EQ(error_of({{"user", "a"}, {"assistant", "b"}, {"assistant", "c"}}), alt);
    EXPECT_NE(error_of({{"user", "a"}, {"system", "b"}}).find("first message"), std::string::npos);
    EXPECT_NE(error_of({{"tool", "a"}}).find("'tool'"), std::string::npos);
    EXPECT_NE(error_of({}).find("at least one message"), std::string::npos);
    EXPECT_NE(error_of({{"system", "s"}}).find("followed by a user message"), std::string::npos);
}

TEST(ChatTemplate, ModelRoleAndOptions) {
    ChatOptions o;
    o.bos_text = "";
    EXPECT_EQ(format_gemma_chat({{"user", "a"}, {"model", "b"}}, o),
              "<start_of_turn>user\na<end_of_turn>\n<start_of_turn>model\nb<end_of_turn>\n<start_of_turn>model\n");
}

TEST(ChatTemplate, TrimIsPythonStrip) {
    EXPECT_EQ(gemma::trim_unicode_whitespace(" \t\n\r\v\fx y\n"), "x y");
    EXPECT_EQ(gemma::trim_unicode_whitespace("\xE3\x80\x80x\xC2\xA0"), "x");  // U+3000, U+00A0
    EXPECT_EQ(gemma::trim_unicode_whitespace("\xE2\x80\xA8x\xE2\x80\x89"), "x");  // U+2028, U+2009
    EXPECT_EQ(gemma::trim_unicode_whitespace("\xE2\x80\x8Bx"), "\xE2\x80\x8Bx");  // zero-width space is not space
    EXPECT_EQ(gemma::trim_unicode_whitespace("   "), "");
    EXPECT_EQ(gemma::trim_unicode_whitespace(""), "");
    EXPECT_EQ(gemma::trim_unicode_whitespace("x \x80"), "x \x80");  // broken UTF-8 is kept, not trimmed through
    EXPECT_EQ(gemma::trim_unicode_whitespace("\xC3 x"), "\xC3 x");
}

TEST(ChatTemplate, TokensHaveOneBos) {
    const auto tok = gemma::Tokenizer::load(gemma::test::golden("vocab/gemma-vocab.gguf"));
    const auto ids = gemma::tokenize_gemma_chat(tok, {{"user", "Hi"}});
    EXPECT_EQ(ids, (std::vector<gemma::TokenId>{2, 106, 1645, 108, 2151, 107, 108, 106, 2516, 108}));
}

}  // namespace
