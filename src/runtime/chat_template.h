// Gemma chat prompt: turns {role, content} messages into the -it models' turn format and tokens.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace gemma {

struct ArchDesc;

struct ChatMessage {
    std::string role;     // "user", "assistant" (or "model"), "system"
    std::string content;
};

// One part of an OpenAI / Hugging Face content list: {"type": "text", "text": ...} or {"type": "image"}.
struct ChatContentPart {
    std::string type;
    std::string text;
};

// Every Gemma family uses the same turns (`<start_of_turn>{user|model}\n` + content | trim + `<end_of_turn>\n`);
// they differ in what becomes of a leading system message.
enum class ChatFormat : uint8_t {
    Auto,    // tokenize_gemma_chat: the model's format (chat_format_of); format_gemma_chat: Gemma
    Gemma,   // Gemma 1 and 2: the template rejects a system role; llama.cpp folds it, trimmed, into turn 1
    Gemma3,  // Gemma 3: the template itself prefixes turn 1 with the system text, verbatim, and a blank line
};

enum class SystemPolicy {
    Fold,    // llama.cpp's built-in Gemma formatter: a leading system message becomes "system\n\nuser" in turn 1
    Reject,  // the Jinja template shipped with Gemma 1/2: raise "System role not supported" (Gemma 3 folds anyway)
};

struct ChatOptions {
    bool add_generation_prompt = true;  // end with "<start_of_turn>model\n" so the model answers next
    SystemPolicy system = SystemPolicy::Fold;
    ChatFormat format = ChatFormat::Auto;
    // Written first, like the template's {{ bos_token }}. Empty leaves BOS to the tokenizer's add_special.
    std::string bos_text = "<bos>";
};

// The prompt text, e.g. "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n".
// Throws gemma::Error with the template's own messages ("System role not supported",
// "Conversation roles must alternate user/assistant/user/assistant/...") for conversations it rejects.
std::string format_gemma_chat(const std::vector<ChatMessage>& messages, const ChatOptions& opts = {});

// format_gemma_chat with the vocabulary's BOS text and, for ChatFormat::Auto, the model's format, tokenized
// with control tokens parsed (as llama.cpp's server and CLI do) and BOS taken from the text, so it appears
// exactly once.
std::vector<TokenId> tokenize_gemma_chat(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                         ChatOptions opts = {});

// The format of a model: its chat template's own rule when the template is one of Gemma's (a Gemma 3
// template in a file of another family is followed, and the reverse), else its family's (`arch`, which may
// be null). So a missing, foreign or edited template still gives the family's turns.
ChatFormat chat_format_for(const ArchDesc* arch, std::string_view chat_template);
ChatFormat chat_format_of(const Vocab& vocab);  // by the file's general.architecture and tokenizer.chat_template

// The content of a message given as parts, as Gemma 3's template renders it: each text part trimmed,
// images as <start_of_image>. Throws gemma::Error for another part type.
std::string join_content_parts(const std::vector<ChatContentPart>& parts);

// Python's str.strip() (what Jinja's `trim` filter calls): strips Unicode whitespace from both ends.
std::string_view trim_unicode_whitespace(std::string_view s);

}  // namespace gemma
