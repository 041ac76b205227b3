// Chat turns: the whole conversation is re-tokenized each turn and the Generator reuses the cached prefix.
#include "runtime/chat_session.h"

#include <utility>

namespace gemma {

ChatSession::ChatSession(Generator& gen, std::string system) : gen_(gen), system_(std::move(system)) { clear(); }

void ChatSession::clear() {
    messages_.clear();
    if (!trim_unicode_whitespace(system_).empty()) messages_.push_back({"system", system_});
    gen_.clear();
}

GenerationResult ChatSession::reply(const std::string& user, const GenerateParams& params,
                                    const TokenCallback& on_token) {
    messages_.push_back({"user", user});
    GenerationResult r;
    try {
        // Re-tokenizing the whole conversation (rather than appending the new turn's tokens) keeps the
        // prompt identical to what a fresh start would see; the prefix match makes it cost only the new part.
        const std::vector<TokenId> prompt = tokenize_gemma_chat(gen_.tokenizer(), messages_);
        r = gen_.generate(prompt, params, on_token);
    } catch (...) {
        messages_.pop_back();
        throw;
    }
    messages_.push_back({"assistant", r.text});
    return r;
}

std::string chat_template_warning(const Vocab& vocab) {
    const std::string& t = vocab.chat_template();
    if (t.empty() || t.find("<start_of_turn>") != std::string::npos) return {};
    return std::string("the model's chat template is not Gemma's turn format; using ") +
           (chat_format_of(vocab) == ChatFormat::Gemma3 ? "Gemma 3's" : "Gemma's") + " format anyway";
}

}  // namespace gemma
