// Builds the piece trie in preorder from the sorted pieces (one pass, no pointers).
#include "grammar/token_trie.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"

namespace gemma::grammar {

TokenTrie::TokenTrie(const Tokenizer& tok) {
    const Vocab& v = tok.vocab();
    pieces_.resize(static_cast<size_t>(v.size()));
    for (TokenId id = 0; id < v.size(); ++id) {
        if (v.is_eog(id)) continue;
        pieces_[static_cast<size_t>(id)] = tok.token_to_piece(id);
    }
    eog_ = v.eog();
    build();
}

TokenTrie::TokenTrie(const std::vector<std::string>& pieces, std::vector<TokenId> eog)
    : pieces_(pieces), eog_(std::move(eog)) {
    for (const TokenId id : eog_) pieces_.at(static_cast<size_t>(id)).clear();
    build();
}

bool TokenTrie::is_eog(TokenId id) const { return std::find(eog_.begin(), eog_.end(), id) != eog_.end(); }

void TokenTrie::build() {
    std::vector<TokenId> order;
    for (size_t i = 0; i < pieces_.size(); ++i)
        if (!pieces_[i].empty()) order.push_back(static_cast<TokenId>(i));
    std::sort(order.begin(), order.end(), [&](TokenId a, TokenId b) {
        const std::string& pa = pieces_[static_cast<size_t>(a)];
        const std::string& pb = pieces_[static_cast<size_t>(b)];
        return pa != pb ? pa < pb : a < b;
    });
    nodes_.push_back(Node{0, 0, 0, 0, 0});
    std::vector<uint32_t> path = {0};  // path[d]: node at depth d on the current piece
    std::vector<uint32_t> open;        // nodes whose subtree is not closed yet
    std::string_view prev;
    for (const TokenId id : order) {
        const std::string_view s = pieces_[static_cast<size_t>(id)];
        size_t common = 0;
        while (common < s.size() && common < prev.size() && s[common] == prev[common]) ++common;
        path.resize(common + 1);
        for (size_t d = common + 1; d <= s.size(); ++d) {
            const auto idx = static_cast<uint32_t>(nodes_.size());
            while (!open.empty() && nodes_[open.back()].depth >= d) {
                nodes_[open.back()].skip = idx;
                open.pop_back();
            }
            const auto tb = static_cast<uint32_t>(token_ids_.size());
            nodes_.push_back(Node{0, tb, tb, static_cast<uint16_t>(std::min<size_t>(d, 65535)), static_cast<uint8_t>(s[d - 1])});
            open.push_back(idx);
            path.push_back(idx);
        }
        Node& end = nodes_[path[s.size()]];
        if (end.tok_begin == end.tok_end) end.tok_begin = end.tok_end = static_cast<uint32_t>(token_ids_.size());
        token_ids_.push_back(id);
        ++end.tok_end;
        max_depth_ = std::max(max_depth_, static_cast<int>(s.size()));
        prev = s;
    }
    for (const uint32_t i : open) nodes_[i].skip = static_cast<uint32_t>(nodes_.size());
    nodes_[0].skip = static_cast<uint32_t>(nodes_.size());
    if (max_depth_ > 65535) throw_error("a token piece is longer than 65535 bytes");
}

}  // namespace gemma::grammar
