// Stack closure and byte steps of the grammar parser, and the persistent parse state.
#include "grammar/parse_state.h"

#include <algorithm>

namespace gemma::grammar {

int32_t Frames::push(int32_t rule, int32_t state, int32_t parent) {
    const int32_t depth = parent >= 0 ? nodes_[static_cast<size_t>(parent)].depth + 1 : 1;
    if (depth > kMaxDepth) return kTooDeep;
    const uint64_t h = (static_cast<uint64_t>(static_cast<uint32_t>(rule)) * 0x9E3779B97F4A7C15ull) ^
                       (static_cast<uint64_t>(static_cast<uint32_t>(state)) * 0xC2B2AE3D27D4EB4Full) ^
                       static_cast<uint64_t>(static_cast<uint32_t>(parent));
    std::vector<int32_t>& bucket = index_[h];
    for (const int32_t id : bucket) {
        const Node& n = nodes_[static_cast<size_t>(id)];
        if (n.rule == rule && n.state == state && n.parent == parent) return id;
    }
    const auto id = static_cast<int32_t>(nodes_.size());
    nodes_.push_back(Node{rule, state, parent, depth});
    bucket.push_back(id);
    return id;
}

std::vector<std::vector<uint8_t>> plain_states(const Grammar& g) {
    std::vector<std::vector<uint8_t>> out;
    for (const RuleDfa& d : g.rules()) {
        std::vector<uint8_t> p(static_cast<size_t>(d.n_states()));
        for (int32_t s = 0; s < d.n_states(); ++s) {
            const auto i = static_cast<size_t>(s);
            p[i] = d.has_bytes[i] && !d.accepting[i] && d.call_begin[i] == d.call_begin[i + 1];
        }
        out.push_back(std::move(p));
    }
    return out;
}

void close_top(const Grammar& g, Frames& fr, Top t, StackSet* out, std::vector<Top>* seen) {
    // Worklist, not recursion: a pop chain is as long as the stack.
    thread_local std::vector<Top> work;
    work.clear();
    work.push_back(t);
    while (!work.empty()) {
        const Top c = work.back();
        work.pop_back();
        if (std::find(seen->begin(), seen->end(), c) != seen->end()) continue;
        seen->push_back(c);
        const RuleDfa& d = g.rule(c.rule);
        const auto s = static_cast<size_t>(c.state);
        if (d.has_bytes[s]) out->tops.push_back(c);
        for (uint32_t k = d.call_begin[s]; k < d.call_begin[s + 1]; ++k) {
            const Call& call = d.calls[k];
            const int32_t below = d.final_only(call.ret) ? c.parent : fr.push(c.rule, call.ret, c.parent);
            if (below == kTooDeep) continue;
            work.push_back(Top{call.rule, 0, below});
        }
        if (d.accepting[s]) {
            if (c.parent == kBottom) out->escape = true;
            else if (c.parent == kEmpty) out->complete = true;
            else work.push_back(fr.top_of(c.parent));
        }
    }
}

void step_byte(const Grammar& g, Frames& fr, const std::vector<Top>& in, uint8_t b, StackSet* out,
               std::vector<Top>* seen) {
    out->clear();
    seen->clear();
    for (const Top& t : in) {
        const int32_t s = g.rule(t.rule).step(t.state, b);
        if (s >= 0) close_top(g, fr, Top{t.rule, s, t.parent}, out, seen);
    }
}

ParseState::ParseState(const Grammar& g) : g_(&g) {
    close_top(g, frames_, Top{g.root(), 0, kEmpty}, &set_, &seen_);
}

bool ParseState::advance(std::string_view bytes) {
    if (bytes.empty()) return true;
    cur_ = set_.tops;
    for (size_t i = 0; i < bytes.size(); ++i) {
        step_byte(*g_, frames_, cur_, static_cast<uint8_t>(bytes[i]), &tmp_, &seen_);
        if (!tmp_.alive() || (tmp_.tops.empty() && i + 1 < bytes.size())) return false;
        cur_ = tmp_.tops;
    }
    std::swap(set_, tmp_);
    if (frames_.size() > 4096) compact();
    return true;
}

// Keeps only the frames the live stacks use (byte walks and rejected tokens leave others behind).
void ParseState::compact() {
    Frames fresh;
    std::unordered_map<int32_t, int32_t> moved;
    auto copy = [&](auto&& self, int32_t id) -> int32_t {
        if (id < 0) return id;
        if (auto it = moved.find(id); it != moved.end()) return it->second;
        const Top n = frames_.top_of(id);
        const int32_t nid = fresh.push(n.rule, n.state, self(self, n.parent));
        moved.emplace(id, nid);
        return nid;
    };
    for (Top& t : set_.tops) t.parent = copy(copy, t.parent);
    frames_ = std::move(fresh);
}

bool Grammar::matches(std::string_view text) const {
    ParseState st(*this);
    return st.advance(text) && st.complete();
}

}  // namespace gemma::grammar
