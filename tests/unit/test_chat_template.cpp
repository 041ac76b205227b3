// Chat formatting unit tests: system folding, role checks, trimming, BOS handling.
#include <gtest/gtest.h>

#include "arch/arch.h"
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

ChatOptions gemma3_opts() {
    ChatOptions o;
    o.format = gemma::ChatFormat::Gemma3;
    return o;
}

TEST(ChatTemplate, Gemma3KeepsTheSystemTextVerbatim) {
    ChatOptions o = gemma3_opts();
    o.add_generation_prompt = false;
    EXPECT_EQ(format_gemma_chat({{"system", "  Be brief. "}, {"user", " Hi\n"}, {"assistant", "Hello"}}, o),
              "<bos><start_of_turn>user\n  Be brief. \n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n");
    // The template adds the blank line even after an empty system text; the Gemma 1/2 fold drops it.
    EXPECT_EQ(format_gemma_chat({{"system", ""}, {"user", "Hi"}}, o), "<bos><start_of_turn>user\n\n\nHi<end_of_turn>\n");
    EXPECT_EQ(format_gemma_chat({{"system", ""}, {"user", "Hi"}}),
              "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n");
    // Gemma 3's template never rejects a leading system message, whatever the policy says.
    o.system = gemma::SystemPolicy::Reject;
    EXPECT_EQ(error_of({{"system", "x"}, {"user", "Hi"}}, o), "");
}

TEST(ChatTemplate, Gemma3RoleErrors) {
    const ChatOptions o = gemma3_opts();
    const std::string alt = "Conversation roles must alternate user/assistant/user/assistant/...";
    EXPECT_EQ(error_of({{"user", "a"}, {"user", "b"}}, o), alt);
    EXPECT_EQ(error_of({{"assistant", "a"}, {"user", "b"}}, o), alt);
    EXPECT_EQ(error_of({{"system", "s"}, {"assistant", "a"}}, o), alt);
    EXPECT_NE(error_of({{"user", "a"}, {"system", "b"}}, o).find("first message"), std::string::npos);
    EXPECT_NE(error_of({{"system", "s"}}, o).find("followed by a user message"), std::string::npos);
    EXPECT_NE(error_of({{"tool", "a"}}, o).find("'tool'"), std::string::npos);
}

TEST(ChatTemplate, FormatFollowsGemmaTemplatesThenTheFamily) {
    using gemma::ChatFormat;
    using gemma::Family;
    const gemma::ArchDesc* g1 = &gemma::arch_desc(Family::Gemma1);
    const gemma::ArchDesc* g2 = &gemma::arch_desc(Family::Gemma2);
    const gemma::ArchDesc* g3 = &gemma::arch_desc(Family::Gemma3);
    const std::string t12 = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
                            "supported') }}{% endif %}... '<start_of_turn>' + role ...";
    const std::string t3 = "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%} ... '<start_of_turn>'";
    const std::string chatml = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>{% endfor %}";
    // No template, or one that is not Gemma's (a fine-tune's ChatML): the family decides.
    for (const std::string& t : {std::string(), chatml}) {
        EXPECT_EQ(gemma::chat_format_for(g1, t), ChatFormat::Gemma);
        EXPECT_EQ(gemma::chat_format_for(g2, t), ChatFormat::Gemma);
        EXPECT_EQ(gemma::chat_format_for(g3, t), ChatFormat::Gemma3);
        EXPECT_EQ(gemma::chat_format_for(nullptr, t), ChatFormat::Gemma);
    }
    // A Gemma template is followed whatever the family says.
    EXPECT_EQ(gemma::chat_format_for(g3, t12), ChatFormat::Gemma);
    EXPECT_EQ(gemma::chat_format_for(g2, t3), ChatFormat::Gemma3);
    EXPECT_EQ(gemma::chat_format_for(nullptr, t3), ChatFormat::Gemma3);
    // A Gemma-like template without either mark: the family.
    EXPECT_EQ(gemma::chat_format_for(g3, "<start_of_turn>{{ role }}"), ChatFormat::Gemma3);
    EXPECT_EQ(gemma::chat_format_for(g2, "<start_of_turn>{{ role }}"), ChatFormat::Gemma);
}

TEST(ChatTemplate, FormatOfGoldenFiles) {
    for (const auto& [file, want] : {std::pair{"gemma2/tiny-g2-f32.gguf", gemma::ChatFormat::Gemma},
                                     std::pair{"gemma3/tiny-g3-f32.gguf", gemma::ChatFormat::Gemma3},
                                     std::pair{"vocab/gemma-vocab.gguf", gemma::ChatFormat::Gemma}}) {
        const auto v = gemma::Vocab::load(gemma::test::golden(file));
        EXPECT_EQ(gemma::chat_format_of(v), want) << file;
    }
}

TEST(ChatTemplate, ContentParts) {
    EXPECT_EQ(gemma::join_content_parts({{"text", " a "}, {"image", ""}, {"text", "\nb"}}), "a<start_of_image>b");
    EXPECT_EQ(gemma::join_content_parts({}), "");
    try {
        gemma::join_content_parts({{"audio", ""}});
        ADD_FAILURE() << "an audio part was accepted";
    } catch (const gemma::Error& e) {
        EXPECT_NE(std::string(e.what()).find("'audio'"), std::string::npos) << e.what();
    }
}

}  // namespace
