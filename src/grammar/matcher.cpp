// Token masks from trie walks: cached per grammar state, completed per step by walks that need the stack below.
#include "grammar/matcher.h"

#include <bit>

namespace gemma::grammar {

size_t TokenMask::count() const {
    size_t n = 0;
    for (const uint64_t w : bits) n += static_cast<size_t>(std::popcount(w));
    return n;
}

CompiledGrammar::CompiledGrammar(std::shared_ptr<const Grammar> g, std::shared_ptr<const TokenTrie> trie)
    : g_(std::move(g)), trie_(std::move(trie)), plain_(plain_states(*g_)), entries_(g_->total_states()) {
    for (auto& e : entries_) e.store(nullptr, std::memory_order_relaxed);
}

CompiledGrammar::~CompiledGrammar() {
    for (auto& e : entries_) delete e.load(std::memory_order_relaxed);
}

const CompiledGrammar::Entry& CompiledGrammar::entry(int32_t rule, int32_t state) const {
    std::atomic<const Entry*>& slot = entries_[g_->state_index(rule, state)];
    if (const Entry* e = slot.load(std::memory_order_acquire)) return *e;
    // Computed outside any lock: two requests may both build it, the first one stored wins.
    auto* built = new Entry;
    Frames frames;
    TrieWalk walk{*this, frames};
    walk.ids = &built->ids;
    walk.escapes = &built->escapes;
    walk.run(1, static_cast<uint32_t>(trie_->nodes().size()), {Top{rule, state, kBottom}});
    // Dense when a list would be larger than the bitset.
    if (built->ids.size() * 32 > static_cast<size_t>(trie_->n_vocab())) {
        built->bits.assign((static_cast<size_t>(trie_->n_vocab()) + 63) / 64, 0);
        for (const TokenId id : built->ids) built->bits[static_cast<size_t>(id) >> 6] |= 1ull << (id & 63);
        built->ids.clear();
        built->ids.shrink_to_fit();
    }
    const Entry* expected = nullptr;
    if (!slot.compare_exchange_strong(expected, built, std::memory_order_acq_rel)) {
        delete built;
        return *expected;
    }
    n_built_.fetch_add(1, std::memory_order_relaxed);
    return *built;
}

void TrieWalk::accept(uint32_t node) {
    for (const TokenId id : cg.trie().tokens_at(node)) {
        if (bits) (*bits)[static_cast<size_t>(id) >> 6] |= 1ull << (id & 63);
        else ids->push_back(id);
    }
}

void TrieWalk::run(uint32_t first, uint32_t end, const std::vector<Top>& start) {
    const auto& nodes = cg.trie().nodes();
    if (first >= end) return;
    const Grammar& g = cg.grammar();
    const auto& plain = cg.plain();
    levels_.resize(static_cast<size_t>(cg.trie().max_depth()) + 1);
    levels_[nodes[first].depth - 1u].tops = start;
    for (uint32_t i = first; i < end;) {
        const TokenTrie::Node& n = nodes[i];
        const std::vector<Top>& in = levels_[n.depth - 1u].tops;
        StackSet& out = levels_[n.depth];
        if (in.size() == 1) {
            // One stack, and a state with nothing to close: the common case inside a rule, no set work.
            const Top& t = in[0];
            const int32_t s = g.rule(t.rule).step(t.state, n.byte);
            if (s < 0) {
                i = n.skip;
                continue;
            }
            if (plain[static_cast<size_t>(t.rule)][static_cast<size_t>(s)]) {
                out.clear();
                out.tops.push_back(Top{t.rule, s, t.parent});
            } else {
                step_byte(g, frames, in, n.byte, &out, &seen_);
            }
        } else {
            step_byte(g, frames, in, n.byte, &out, &seen_);
        }
        if (out.escape && escapes) escapes->push_back(i);
        if (n.tok_begin != n.tok_end && out.alive()) accept(i);
        i = out.tops.empty() ? n.skip : i + 1;
    }
}

Matcher::Matcher(std::shared_ptr<const CompiledGrammar> cg) : cg_(std::move(cg)), state_(cg_->grammar()) {}

void Matcher::fill_mask(TokenMask* mask) {
    const TokenTrie& trie = cg_->trie();
    mask->reset(trie.n_vocab());
    if (ended_) return;
    Frames& frames = state_.frames();
    TrieWalk walk{*cg_, frames};
    walk.bits = &mask->bits;
    // Copied: the walks below may add frames, never tops.
    const std::vector<Top> tops = state_.stacks().tops;
    for (const Top& t : tops) {
        const CompiledGrammar::Entry& e = cg_->entry(t.rule, t.state);
        if (!e.bits.empty())
            for (size_t w = 0; w < e.bits.size(); ++w) mask->bits[w] |= e.bits[w];
        for (const TokenId id : e.ids) mask->set(id);
        if (e.escapes.empty()) continue;
        // The tokens that finish this frame part-way: continue them with the stack below.
        below_.clear();
        seen_.clear();
        if (t.parent == kEmpty) below_.complete = true;
        else close_top(cg_->grammar(), frames, frames.top_of(t.parent), &below_, &seen_);
        if (!below_.alive()) continue;
        for (const uint32_t node : e.escapes) {
            for (const TokenId id : trie.tokens_at(node)) mask->set(id);
            if (!below_.tops.empty()) walk.run(node + 1, trie.nodes()[node].skip, below_.tops);
        }
    }
    if (state_.complete())
        for (const TokenId id : trie.eog()) mask->set(id);
}

bool Matcher::accept(TokenId id) {
    if (ended_ || id < 0 || id >= cg_->trie().n_vocab()) return false;
    if (cg_->trie().is_eog(id)) {
        if (!state_.complete()) return false;
        ended_ = true;
        return true;
    }
    const std::string_view piece = cg_->trie().piece(id);
    return !piece.empty() && state_.advance(piece);
}

}  // namespace gemma::grammar
