// Multi-turn Gemma chat over a Generator: the conversation, its prompt, and KV-cache reuse between turns.
#pragma once
#include <string>
#include <vector>

#include "runtime/chat_template.h"
#include "runtime/generator.h"

namespace gemma {

class ChatSession {
public:
    // `system` (may be empty) is folded into the first user turn, as the model's format does (chat_format_of).
    ChatSession(Generator& gen, std::string system = {});

    // Adds the user turn, generates the model's turn and records it (even a partial, cancelled one, so
    // the next turn sees what the user saw). Only the tokens after the part of the conversation still in
    // the KV cache are evaluated. Throws ContextFullError, leaving the conversation as it was, when
    // the conversation no longer fits.
    GenerationResult reply(const std::string& user, const GenerateParams& params, const TokenCallback& on_token = {});

    // Starts a new conversation (the system text stays) and empties the KV cache.
    void clear();
    const std::vector<ChatMessage>& messages() const { return messages_; }
    Generator& generator() { return gen_; }

private:
    Generator& gen_;
    std::string system_;
    std::vector<ChatMessage> messages_;
};

// A warning for the user when the file's tokenizer.chat_template is not Gemma's turn format (the family's
// format is used regardless); empty when it is Gemma's or absent.
std::string chat_template_warning(const Vocab& vocab);

}  // namespace gemma
