// A compiled grammar: each rule a deterministic byte automaton whose edges may also call other rules.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "grammar/expr.h"

namespace gemma::grammar {

struct Call {
    int32_t rule;    // the rule called
    int32_t ret;     // the caller's state once the callee has matched
};

// One rule as a DFA over byte classes; calls are non-consuming edges taken by the parser's stack.
struct RuleDfa {
    std::string name;
    std::array<uint8_t, 256> byte_class{};
    int32_t n_classes = 0;
    std::vector<int32_t> next;            // [state * n_classes + class] -> state, -1: no edge
    std::vector<uint8_t> accepting;       // [state]
    std::vector<uint8_t> has_bytes;       // [state] some byte edge leaves it
    std::vector<uint32_t> call_begin;     // [state + 1] ranges into calls
    std::vector<Call> calls;
    int32_t n_states() const { return static_cast<int32_t>(accepting.size()); }
    int32_t step(int32_t state, uint8_t b) const {
        return next[static_cast<size_t>(state) * static_cast<size_t>(n_classes) + byte_class[b]];
    }
    // Accepting with nowhere to go: a caller returning here can drop its frame (tail call).
    bool final_only(int32_t state) const {
        return accepting[static_cast<size_t>(state)] && !has_bytes[static_cast<size_t>(state)] &&
               call_begin[static_cast<size_t>(state)] == call_begin[static_cast<size_t>(state) + 1];
    }
};

struct GrammarLimits {
    size_t max_nfa_states = 400000;   // all rules together, after bounded repetitions are unrolled
    size_t max_dfa_states = 200000;
};

class Grammar {
public:
    // Compiles every rule. Throws GrammarError for undefined rules, left recursion, a rule that matches
    // nothing, or a grammar beyond the limits.
    static Grammar compile(const GrammarBuilder& b, const GrammarLimits& lim = {});

    const std::vector<RuleDfa>& rules() const { return rules_; }
    const RuleDfa& rule(int32_t r) const { return rules_[static_cast<size_t>(r)]; }
    int32_t root() const { return root_; }
    // Index of (rule, state) among all states of all rules (cache keys).
    size_t state_index(int32_t r, int32_t s) const { return state_base_[static_cast<size_t>(r)] + static_cast<size_t>(s); }
    size_t total_states() const { return total_states_; }

    // Whole-string check (tests, `gemma run` validation): does the grammar match exactly these bytes?
    bool matches(std::string_view text) const;

private:
    std::vector<RuleDfa> rules_;
    std::vector<size_t> state_base_;
    size_t total_states_ = 0;
    int32_t root_ = -1;
};

}  // namespace gemma::grammar
