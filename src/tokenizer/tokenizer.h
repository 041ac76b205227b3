// SentencePiece-BPE tokenizer (encode, decode, streaming decode) over a GGUF vocabulary.
#pragma once
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/vocab.h"

namespace gemma {

class Tokenizer {
public:
    explicit Tokenizer(Vocab vocab);
    static Tokenizer from_gguf(const GgufFile& f) { return Tokenizer(Vocab::from_gguf(f)); }
    static Tokenizer load(const std::string& path) { return Tokenizer(Vocab::load(path)); }

    const Vocab& vocab() const { return vocab_; }

    // llama.cpp's tokenize(text, add_special, parse_special), with SentencePiece's answer where the two
    // differ: the literal text "<unk>" is spelled out and a literal U+2581 is treated as a space.
    // add_special: BOS (and EOS) as the vocabulary asks. parse_special: control-token texts written in
    // `text` become those tokens; user-defined tokens (newline/space runs, HTML tags) are split out either way.
    std::vector<TokenId> encode(std::string_view text, bool add_special = true, bool parse_special = true) const;

    // The bytes a token stands for. Control/unknown tokens are empty unless `special`, which shows their text.
    // Throws gemma::Error for an id outside the vocabulary.
    std::string token_to_piece(TokenId id, bool special = false) const;
    void append_piece(TokenId id, bool special, std::string* out) const;

    // Concatenated pieces. remove_special drops a leading BOS (when the vocab adds one) and a trailing EOS
    // (when it adds one), so decode(encode(t), special=true, remove_special=true) == t.
    std::string decode(std::span<const TokenId> ids, bool special = false, bool remove_special = false) const;

private:
    struct Workspace;
    void encode_fragment(std::string_view frag, bool space_prefix, Workspace& ws, std::vector<TokenId>* out) const;
    TokenId match_special(std::string_view text, size_t pos, bool parse_special, size_t* len) const;
    Vocab vocab_;
    // Byte trie over the special tokens' texts: finds the longest one at a position in O(its length).
    struct TrieNode {
        TokenId token = kNoToken;
        uint32_t first_edge = 0, n_edges = 0;
    };
    struct TrieEdge {
        uint8_t byte;
        uint32_t child;
    };
    std::vector<TrieNode> trie_;
    std::vector<TrieEdge> edges_;
    std::vector<uint32_t> root_next_;  // 256 entries: the root's children by byte (0 = none)
};

// Turns a token stream into displayable text without splitting UTF-8 characters: bytes of a character
// that is still incomplete are held back until the token that completes it arrives.
class StreamDecoder {
public:
    explicit StreamDecoder(const Tokenizer& tok, bool special = false) : tok_(&tok), special_(special) {}
    // Text that is safe to show now (possibly empty).
    std::string push(TokenId id);
    // Whatever is still held back (an incomplete sequence at the end of the stream), then reset.
    std::string flush();
    size_t pending_bytes() const { return pending_.size(); }

private:
    const Tokenizer* tok_;
    bool special_;
    std::string pending_;
};

// UTF-8 helpers shared with the streaming paths (server, CLI).
// Length of the character starting at s[0]: the lead byte's length when all its continuation bytes are
// present and well-formed, otherwise the number of well-formed bytes (at least 1).
size_t utf8_char_len(std::string_view s);
// Bytes at the end of `s` that begin a well-formed but incomplete UTF-8 character (0..3).
size_t utf8_incomplete_tail(std::string_view s);
// A piece made printable on one line: \n \t \r \\ \' escaped, other control bytes and bytes of broken
// UTF-8 as \xNN; well-formed non-ASCII characters kept.
std::string escape_for_display(std::string_view s);

}  // namespace gemma
