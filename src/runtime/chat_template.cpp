// Gemma chat formatting: the HF templates' turns and errors (Gemma 1/2 and Gemma 3), llama.cpp's system folding.
#include "runtime/chat_template.h"

#include <cstdint>

#include "arch/arch.h"
#include "core/error.h"

namespace gemma {
namespace {

// Python's str.isspace() set; the template trims with it, so matching it keeps our prompts byte-identical.
bool is_unicode_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

// Code point of the well-formed character at s[pos] with its length, or (0xFFFFFFFF, 1) for a broken one.
uint32_t decode_at(std::string_view s, size_t pos, size_t* len) {
    const size_t n = utf8_char_len(s.substr(pos));
    *len = n;
    const auto b0 = static_cast<unsigned char>(s[pos]);
    if (n == 1) return b0 < 0x80 ? b0 : 0xFFFFFFFFu;
    const size_t need = (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : 4;
    if (n != need) return 0xFFFFFFFFu;
    uint32_t c = b0 & (0x7F >> need);
    for (size_t k = 1; k < n; ++k) c = (c << 6) | (static_cast<unsigned char>(s[pos + k]) & 0x3F);
    return c;
}

[[noreturn]] void reject(const char* msg) { throw_error(msg); }

}  // namespace

std::string_view trim_unicode_whitespace(std::string_view s) {
    size_t b = 0;
    while (b < s.size()) {
        size_t len;
        if (!is_unicode_space(decode_at(s, b, &len))) break;
        b += len;
    }
    size_t e = s.size();
    while (e > b) {
        size_t start = e - 1;
        while (start > b && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80 && e - start < 4) --start;
        size_t len;
        const uint32_t c = decode_at(s, start, &len);
        if (start + len != e || !is_unicode_space(c)) break;
        e = start;
    }
    return s.substr(b, e - b);
}

std::string format_gemma_chat(const std::vector<ChatMessage>& messages, const ChatOptions& opts) {
    if (messages.empty()) throw_error("a chat needs at least one message");
    const bool gemma3 = opts.format == ChatFormat::Gemma3;
    size_t first = 0;
    std::string system;
    if (messages[0].role == "system") {
        // Gemma 3's template keeps the system text as written; llama.cpp's Gemma formatter trims it and
        // drops an empty one.
        if (gemma3) {
            system = messages[0].content + "\n\n";
        } else {
            if (opts.system == SystemPolicy::Reject) reject("System role not supported");
            system = std::string(trim_unicode_whitespace(messages[0].content));
            if (!system.empty()) system += "\n\n";
        }
        first = 1;
        if (messages.size() == 1) throw_error("a system message must be followed by a user message");
    }

    std::string out = opts.bos_text;
    for (size_t i = first; i < messages.size(); ++i) {
        const ChatMessage& m = messages[i];
        if (m.role == "system")
            reject(opts.system == SystemPolicy::Reject && !gemma3 ? "System role not supported"
                                                                  : "System role is only supported as the first message");
        const bool is_user = m.role == "user";
        if (!is_user && m.role != "assistant" && m.role != "model")
            throw_error("unsupported chat role '" + m.role + "' (expected user, assistant or system)");
        // Same parity rule as the template: user turns at even positions, model turns at odd ones.
        if (is_user != ((i - first) % 2 == 0)) reject("Conversation roles must alternate user/assistant/user/assistant/...");
        out += "<start_of_turn>";
        out += is_user ? "user" : "model";
        out += '\n';
        if (i == first) out += system;
        out += trim_unicode_whitespace(m.content);
        out += "<end_of_turn>\n";
    }
    if (opts.add_generation_prompt) out += "<start_of_turn>model\n";
    return out;
}

std::vector<TokenId> tokenize_gemma_chat(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                         ChatOptions opts) {
    const Vocab& v = tok.vocab();
    opts.bos_text = v.add_bos() && v.bos() != kNoToken ? v.text(v.bos()) : std::string();
    if (opts.format == ChatFormat::Auto) opts.format = chat_format_of(v);
    return tok.encode(format_gemma_chat(messages, opts), /*add_special=*/false, /*parse_special=*/true);
}

ChatFormat chat_format_for(const ArchDesc* arch, std::string_view t) {
    if (t.find("<start_of_turn>") != std::string_view::npos) {
        // The two Gemma templates' own marks: Gemma 3 builds a prefix for the first user turn, Gemma 1/2 raise.
        if (t.find("first_user_prefix") != std::string_view::npos) return ChatFormat::Gemma3;
        if (t.find("System role not supported") != std::string_view::npos) return ChatFormat::Gemma;
    }
    return arch && arch->chat_trims_content ? ChatFormat::Gemma3 : ChatFormat::Gemma;
}

ChatFormat chat_format_of(const Vocab& vocab) {
    return chat_format_for(find_arch(vocab.architecture()), vocab.chat_template());
}

std::string join_content_parts(const std::vector<ChatContentPart>& parts) {
    std::string out;
    for (const ChatContentPart& p : parts) {
        if (p.type == "text") out += trim_unicode_whitespace(p.text);
        else if (p.type == "image") out += "<start_of_image>";
        else throw_error("unsupported content part type '" + p.type + "' (expected text or image)");
    }
    return out;
}

}  // namespace gemma
