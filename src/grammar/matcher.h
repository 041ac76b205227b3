// Grammar-constrained decoding: per-step masks of the tokens the grammar allows, and the parse as tokens are accepted.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "grammar/parse_state.h"
#include "grammar/token_trie.h"

namespace gemma::grammar {

// One bit per vocabulary entry.
struct TokenMask {
    std::vector<uint64_t> bits;
    void reset(int32_t n_vocab) { bits.assign((static_cast<size_t>(n_vocab) + 63) / 64, 0); }
    void set(TokenId id) { bits[static_cast<size_t>(id) >> 6] |= 1ull << (id & 63); }
    bool test(TokenId id) const { return (bits[static_cast<size_t>(id) >> 6] >> (id & 63)) & 1; }
    size_t count() const;
};

// A grammar joined with a vocabulary, plus what is known about each grammar state: the tokens it accepts
// without leaving its rule (the same whatever is below on the stack) and the trie nodes where the rule
// can end inside a token (those need the stack below). Filled lazily; shared by concurrent requests.
class CompiledGrammar {
public:
    CompiledGrammar(std::shared_ptr<const Grammar> g, std::shared_ptr<const TokenTrie> trie);
    ~CompiledGrammar();

    struct Entry {
        std::vector<uint64_t> bits;       // dense form (many tokens), else
        std::vector<TokenId> ids;         // sparse form
        std::vector<uint32_t> escapes;    // trie nodes where the rule's frame can end
    };
    const Entry& entry(int32_t rule, int32_t state) const;

    const Grammar& grammar() const { return *g_; }
    const TokenTrie& trie() const { return *trie_; }
    const std::vector<std::vector<uint8_t>>& plain() const { return plain_; }
    size_t entries_built() const { return n_built_.load(std::memory_order_relaxed); }

private:
    std::shared_ptr<const Grammar> g_;
    std::shared_ptr<const TokenTrie> trie_;
    std::vector<std::vector<uint8_t>> plain_;
    mutable std::vector<std::atomic<const Entry*>> entries_;
    mutable std::atomic<size_t> n_built_{0};
};

// Walks trie nodes [first, end) from a closed stack set at depth(first) - 1, marking accepted tokens and
// recording escapes. Shared by the cache (relative to kBottom) and the matcher (real stacks).
struct TrieWalk {
    TrieWalk(const CompiledGrammar& g, Frames& f) : cg(g), frames(f) {}
    const CompiledGrammar& cg;
    Frames& frames;
    std::vector<uint64_t>* bits = nullptr;     // accepted tokens go here, or
    std::vector<TokenId>* ids = nullptr;       // here
    std::vector<uint32_t>* escapes = nullptr;  // escape nodes (cache walks)
    void run(uint32_t first, uint32_t end, const std::vector<Top>& start);

private:
    void accept(uint32_t node);
    std::vector<StackSet> levels_;
    std::vector<Top> seen_;
};

// One generation's parse: the mask for the next token, then accept() of the token chosen.
class Matcher {
public:
    explicit Matcher(std::shared_ptr<const CompiledGrammar> cg);
    // The tokens the grammar allows next; end-of-generation tokens once the grammar has fully matched.
    void fill_mask(TokenMask* mask);
    // Feeds a sampled token. False when the grammar does not allow it (nothing changes).
    bool accept(TokenId id);
    // The grammar has matched and nothing more can follow (or an end-of-generation token was accepted).
    bool done() const { return ended_ || (state_.complete() && !state_.can_read()); }
    bool complete() const { return ended_ || state_.complete(); }

private:
    std::shared_ptr<const CompiledGrammar> cg_;
    ParseState state_;
    bool ended_ = false;
    StackSet below_;
    std::vector<Top> seen_;
};

}  // namespace gemma::grammar
