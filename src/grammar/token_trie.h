// The vocabulary as a byte trie of token pieces (preorder array), walked by the grammar to build token masks.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace gemma::grammar {

class TokenTrie {
public:
    // Pieces as the tokens print (SentencePiece's U+2581 as a space, byte tokens as their byte). Tokens
    // that print nothing (control, unknown, unused) are left out; end-of-generation tokens are kept apart.
    explicit TokenTrie(const Tokenizer& tok);
    // A toy vocabulary for tests: pieces by id ("" = never generated), and the end-of-generation ids.
    TokenTrie(const std::vector<std::string>& pieces, std::vector<TokenId> eog);

    struct Node {
        uint32_t skip;       // first node after this one's subtree
        uint32_t tok_begin;  // tokens whose piece ends here: token_ids()[tok_begin, tok_end)
        uint32_t tok_end;
        uint16_t depth;      // bytes from the root (the root is node 0, depth 0)
        uint8_t byte;        // the byte on the edge into this node
    };
    const std::vector<Node>& nodes() const { return nodes_; }
    std::span<const TokenId> tokens_at(uint32_t node) const {
        const Node& n = nodes_[node];
        return {token_ids_.data() + n.tok_begin, n.tok_end - n.tok_begin};
    }
    std::string_view piece(TokenId id) const { return pieces_[static_cast<size_t>(id)]; }
    int32_t n_vocab() const { return static_cast<int32_t>(pieces_.size()); }
    const std::vector<TokenId>& eog() const { return eog_; }
    bool is_eog(TokenId id) const;
    int max_depth() const { return max_depth_; }

private:
    void build();
    std::vector<std::string> pieces_;
    std::vector<TokenId> eog_;
    std::vector<Node> nodes_;
    std::vector<TokenId> token_ids_;
    int max_depth_ = 0;
};

}  // namespace gemma::grammar
