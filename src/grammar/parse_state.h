// The grammar's pushdown parser: stacks of rule frames (shared, hash-consed), their closure and byte steps.
#pragma once
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "grammar/grammar.h"

namespace gemma::grammar {

constexpr int32_t kEmpty = -1;    // no frame below: popping it means the whole grammar has matched
constexpr int32_t kBottom = -2;   // walks relative to one frame: popping it "escapes" to an unknown caller
constexpr int32_t kTooDeep = -3;  // push refused (nesting limit)

// The top frame of a stack, by value: the rule, its DFA state, and the frames below it.
struct Top {
    int32_t rule = 0, state = 0, parent = kEmpty;
    bool operator==(const Top&) const = default;
};

// Frames below the tops, hash-consed so equal stacks share one id (set dedup is a compare of Tops).
class Frames {
public:
    static constexpr int32_t kMaxDepth = 512;  // nesting beyond this is not generated
    int32_t push(int32_t rule, int32_t state, int32_t parent);
    Top top_of(int32_t id) const {
        const Node& n = nodes_[static_cast<size_t>(id)];
        return Top{n.rule, n.state, n.parent};
    }
    size_t size() const { return nodes_.size(); }
    void clear() {
        nodes_.clear();
        index_.clear();
    }

private:
    struct Node {
        int32_t rule, state, parent, depth;
    };
    std::vector<Node> nodes_;
    std::unordered_map<uint64_t, std::vector<int32_t>> index_;  // hash -> ids
};

// A closed set of stacks: tops that can read a byte, and whether the grammar (or the bottom frame) can end here.
struct StackSet {
    std::vector<Top> tops;
    bool complete = false;  // some stack is empty: the whole grammar has matched
    bool escape = false;    // some stack popped its kBottom frame
    void clear() {
        tops.clear();
        complete = escape = false;
    }
    bool alive() const { return !tops.empty() || complete; }
};

// Per-rule "plain" states (bytes only, not accepting, no calls): a byte step there needs no closure.
std::vector<std::vector<uint8_t>> plain_states(const Grammar& g);

// Adds the closure of t (calls pushed, finished frames popped) to *out; `seen` holds tops already closed.
void close_top(const Grammar& g, Frames& fr, Top t, StackSet* out, std::vector<Top>* seen);
// out = closure of the byte step of every top in `in` (only their byte edges).
void step_byte(const Grammar& g, Frames& fr, const std::vector<Top>& in, uint8_t b, StackSet* out,
               std::vector<Top>* seen);

// A parser position that lives across tokens.
class ParseState {
public:
    explicit ParseState(const Grammar& g);
    // Reads bytes; returns false (and changes nothing) when the grammar cannot read them.
    bool advance(std::string_view bytes);
    const StackSet& stacks() const { return set_; }
    Frames& frames() { return frames_; }
    bool complete() const { return set_.complete; }
    bool can_read() const { return !set_.tops.empty(); }

private:
    void compact();
    const Grammar* g_;
    Frames frames_;
    StackSet set_, tmp_;
    std::vector<Top> cur_, seen_;
};

}  // namespace gemma::grammar
