// SentencePiece vocabulary as stored in a GGUF file: token texts, scores, types, special ids, EOG set.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gemma {

class GgufFile;

using TokenId = int32_t;
constexpr TokenId kNoToken = -1;

// `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
enum class TokenType : int32_t {
    Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6,
};
const char* token_type_name(TokenType t);

class Vocab {
public:
    // Reads the tokenizer.* keys. Throws gemma::Error("<file>: <what is wrong>") on any bad input.
    static Vocab from_gguf(const GgufFile& f);
    // Convenience: open a GGUF (model or vocab-only) and read its vocabulary.
    static Vocab load(const std::string& path);

    // Build directly from arrays (tests, converters). `name` is used in error messages.
    struct Specials {
        TokenId bos = 1, eos = 2, unk = 0, pad = kNoToken, eot = kNoToken;  // llama.cpp's SPM defaults
        bool add_bos = true, add_eos = false, add_space_prefix = true;
    };
    static Vocab from_arrays(std::vector<std::string> texts, std::vector<float> scores, std::vector<TokenType> types,
                             const Specials& sp, const std::string& name);

    int32_t size() const { return static_cast<int32_t>(texts_.size()); }
    bool valid(TokenId id) const { return id >= 0 && id < size(); }
    const std::string& text(TokenId id) const { return texts_[static_cast<size_t>(id)]; }
    float score(TokenId id) const { return scores_[static_cast<size_t>(id)]; }
    TokenType type(TokenId id) const { return types_[static_cast<size_t>(id)]; }
    // CONTROL attribute: the type, or granted at load to stop tokens that look special (the `</s>` quirk).
    bool is_control(TokenId id) const { return control_[static_cast<size_t>(id)] != 0; }

    // Exact text lookup over all tokens; kNoToken when absent.
    TokenId find(std::string_view text) const { return find_hashed(text, hash(text)); }
    // Two-step lookup for batched callers: hash and prefetch a batch first, then probe; the table is
    // megabytes, so overlapping the cache misses is most of the lookup cost.
    static uint64_t hash(std::string_view text);
    void prefetch(uint64_t h) const { __builtin_prefetch(slots_.data() + (h & slot_mask_)); }
    TokenId find_hashed(std::string_view text, uint64_t h) const;
    // Lookup restricted to the pieces SentencePiece's BPE may merge into (NORMAL, USER_DEFINED, UNUSED):
    // control, unknown and byte tokens are never produced from plain text.
    TokenId find_piece(std::string_view text) const { return find_piece_hashed(text, hash(text)); }
    TokenId find_piece_hashed(std::string_view text, uint64_t h) const {
        const TokenId id = find_hashed(text, h);
        return id != kNoToken && mergeable(id) ? id : kNoToken;
    }
    bool mergeable(TokenId id) const {
        const TokenType t = type(id);
        return t == TokenType::Normal || t == TokenType::UserDefined || t == TokenType::Unused;
    }

    // Byte-fallback token for a raw byte (`<0xXX>`, else the 1-byte text itself, else unk).
    TokenId byte_token(uint8_t b) const { return byte_to_token_[b]; }
    // The byte a BYTE token stands for, or -1.
    int token_byte(TokenId id) const;

    TokenId bos() const { return sp_.bos; }
    TokenId eos() const { return sp_.eos; }
    TokenId unk() const { return sp_.unk; }
    TokenId pad() const { return sp_.pad; }
    TokenId eot() const { return sp_.eot; }
    bool add_bos() const { return sp_.add_bos; }
    bool add_eos() const { return sp_.add_eos; }
    bool add_space_prefix() const { return sp_.add_space_prefix; }

    // End-of-generation tokens: eos, eot and the tokens whose text is a known stop string.
    bool is_eog(TokenId id) const;
    const std::vector<TokenId>& eog() const { return eog_; }

    // Tokens that the pre-tokenizer splits out of text (CONTROL, USER_DEFINED, UNKNOWN attrs),
    // longest text first.
    const std::vector<TokenId>& special_tokens() const { return specials_; }

    const std::string& chat_template() const { return chat_template_; }
    // general.architecture of the file the vocabulary came from ("gemma3"); empty when unknown.
    const std::string& architecture() const { return architecture_; }
    const std::string& name() const { return name_; }

private:
    void build(const std::string& name);
    std::string name_;
    std::vector<std::string> texts_;
    std::vector<float> scores_;
    std::vector<TokenType> types_;
    std::vector<uint8_t> control_;
    Specials sp_;
    std::vector<TokenId> eog_;
    std::vector<TokenId> specials_;
    std::array<TokenId, 256> byte_to_token_{};
    std::string chat_template_;
    std::string architecture_;
    // Open-addressing table keyed by text: each slot is (high 32 hash bits << 32 | id). Ids, not views,
    // so copies of the Vocab stay valid.
    static constexpr uint64_t kEmptySlot = ~0ull;
    std::vector<uint64_t> slots_;
    uint64_t slot_mask_ = 0;
};

}  // namespace gemma
