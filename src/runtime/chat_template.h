// Gemma chat prompt: turns {role, content} messages into the -it models' turn format and tokens.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace gemma {

struct ChatMessage {
    std::string role;     // "user", "assistant" (or "model"), "system"
    std::string content;
};

enum class SystemPolicy {
    Fold,    // llama.cpp's built-in Gemma formatter: a leading system message becomes "system\n\nuser" in turn 1
    Reject,  // the Jinja template shipped with the model: raise "System role not supported"
};

struct ChatOptions {
    bool add_generation_prompt = true;  // end with "<start_of_turn>model\n" so the model answers next
    SystemPolicy system = SystemPolicy::Fold;
    // Written first, like the template's {{ bos_token }}. Empty leaves BOS to the tokenizer's add_special.
    std::string bos_text = "<bos>";
};

// The prompt text, e.g. "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n".
// Throws gemma::Error with the template's own messages ("System role not supported",
// "Conversation roles must alternate user/assistant/user/assistant/...") for conversations it rejects.
std::string format_gemma_chat(const std::vector<ChatMessage>& messages, const ChatOptions& opts = {});

// format_gemma_chat with the vocabulary's BOS text, tokenized with control tokens parsed (as llama.cpp's
// server and CLI do) and BOS taken from the text, so it appears exactly once.
std::vector<TokenId> tokenize_gemma_chat(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                         ChatOptions opts = {});

// Python's str.strip() (what Jinja's `trim` filter calls): strips Unicode whitespace from both ends.
std::string_view trim_unicode_whitespace(std::string_view s);

}  // namespace gemma
