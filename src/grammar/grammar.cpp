// Rule bodies -> Thompson NFAs -> DFAs over byte classes (calls kept as edges), with the grammar's sanity checks.
#include "grammar/grammar.h"

#include <algorithm>
#include <functional>
#include <map>
#include <unordered_map>

namespace gemma::grammar {

ExprPtr bytes(const ByteSet& s) {
    auto e = std::make_shared<Expr>();
    e->kind = Expr::Kind::Bytes;
    e->bytes = s;
    return e;
}

ExprPtr lit(std::string_view s) {
    std::vector<ExprPtr> items;
    for (const char c : s) items.push_back(bytes(ByteSet::of(static_cast<uint8_t>(c))));
    return items.size() == 1 ? items[0] : seq(std::move(items));
}

ExprPtr seq(std::vector<ExprPtr> items) {
    auto e = std::make_shared<Expr>();
    e->kind = Expr::Kind::Seq;
    e->items = std::move(items);
    return e;
}

ExprPtr alt(std::vector<ExprPtr> items) {
    if (items.size() == 1) return items[0];
    auto e = std::make_shared<Expr>();
    e->kind = Expr::Kind::Alt;
    e->items = std::move(items);
    return e;
}

ExprPtr repeat(ExprPtr item, int min, int max) {
    auto e = std::make_shared<Expr>();
    e->kind = Expr::Kind::Repeat;
    e->items = {std::move(item)};
    e->min = min;
    e->max = max;
    return e;
}

ExprPtr ref(int rule) {
    auto e = std::make_shared<Expr>();
    e->kind = Expr::Kind::Ref;
    e->rule = rule;
    return e;
}

int GrammarBuilder::declare(std::string name) {
    names_.push_back(std::move(name));
    bodies_.push_back(nullptr);
    return static_cast<int>(names_.size()) - 1;
}

void GrammarBuilder::define(int rule, ExprPtr body) { bodies_.at(static_cast<size_t>(rule)) = std::move(body); }

namespace {

// Thompson NFA of one rule: each state has epsilon edges and at most one labelled edge.
struct Nfa {
    struct State {
        std::vector<int32_t> eps;
        int32_t label_set = -1;   // index into sets (a byte edge)
        int32_t call = -1;        // a call edge to this rule
        int32_t to = -1;          // target of the labelled edge
    };
    std::vector<State> states;
    std::vector<ByteSet> sets;
    size_t* budget;               // NFA states left for the whole grammar
    const std::string* rule_name;

    int32_t add() {
        if (*budget == 0)
            throw GrammarError("the grammar is too large (rule '" + *rule_name +
                               "'): bounded repetitions such as maxLength, maxItems or {n,m} unroll to too many states");
        --*budget;
        states.emplace_back();
        return static_cast<int32_t>(states.size()) - 1;
    }
    // Builds e from state `from`; returns the state where it ends.
    int32_t build(const Expr& e, int32_t from) {
        switch (e.kind) {
            case Expr::Kind::Bytes: {
                const int32_t to = add();
                states[static_cast<size_t>(from)].label_set = static_cast<int32_t>(sets.size());
                sets.push_back(e.bytes);
                states[static_cast<size_t>(from)].to = to;
                // A state carries one labelled edge: later edges start from a fresh state.
                return to;
            }
            case Expr::Kind::Ref: {
                const int32_t to = add();
                states[static_cast<size_t>(from)].call = e.rule;
                states[static_cast<size_t>(from)].to = to;
                return to;
            }
            case Expr::Kind::Seq: {
                int32_t cur = from;
                for (const ExprPtr& it : e.items) cur = build(*it, fresh(cur));
                return cur;
            }
            case Expr::Kind::Alt: {
                const int32_t end = add();
                for (const ExprPtr& it : e.items) {
                    const int32_t s = add();
                    states[static_cast<size_t>(from)].eps.push_back(s);
                    const int32_t t = build(*it, s);
                    states[static_cast<size_t>(t)].eps.push_back(end);
                }
                return end;
            }
            case Expr::Kind::Repeat: {
                const Expr& item = *e.items[0];
                int32_t cur = from;
                for (int i = 0; i < e.min; ++i) cur = build(item, fresh(cur));
                if (e.max < 0) {
                    const int32_t loop = fresh(cur), end = add();
                    const int32_t body_start = add();
                    states[static_cast<size_t>(loop)].eps.push_back(body_start);
                    states[static_cast<size_t>(loop)].eps.push_back(end);
                    const int32_t t = build(item, body_start);
                    states[static_cast<size_t>(t)].eps.push_back(loop);
                    return end;
                }
                const int32_t end = add();
                for (int i = e.min; i < e.max; ++i) {
                    states[static_cast<size_t>(cur)].eps.push_back(end);
                    cur = build(item, fresh(cur));
                }
                states[static_cast<size_t>(cur)].eps.push_back(end);
                return end;
            }
        }
        return from;
    }
    // A state free to carry a labelled edge: `s` itself, or a new one reached by epsilon.
    int32_t fresh(int32_t s) {
        if (states[static_cast<size_t>(s)].to < 0) return s;
        const int32_t n = add();
        states[static_cast<size_t>(s)].eps.push_back(n);
        return n;
    }
};

void closure(const Nfa& nfa, std::vector<int32_t>* set) {
    std::vector<int32_t> todo(set->begin(), set->end());
    std::vector<uint8_t> seen(nfa.states.size(), 0);
    for (const int32_t s : *set) seen[static_cast<size_t>(s)] = 1;
    while (!todo.empty()) {
        const int32_t s = todo.back();
        todo.pop_back();
        for (const int32_t t : nfa.states[static_cast<size_t>(s)].eps)
            if (!seen[static_cast<size_t>(t)]) {
                seen[static_cast<size_t>(t)] = 1;
                set->push_back(t);
                todo.push_back(t);
            }
    }
    std::sort(set->begin(), set->end());
}

struct VecHash {
    size_t operator()(const std::vector<int32_t>& v) const {
        uint64_t h = 1469598103934665603ull;
        for (const int32_t x : v) h = (h ^ static_cast<uint32_t>(x)) * 1099511628211ull;
        return static_cast<size_t>(h);
    }
};

RuleDfa determinize(const Nfa& nfa, int32_t start, int32_t final_state, const std::string& name, size_t* dfa_budget) {
    RuleDfa d;
    d.name = name;
    // Byte classes: bytes that no labelled set tells apart share a class.
    std::array<uint16_t, 256> cls{};
    int n_cls = 1;
    std::vector<ByteSet> distinct;
    for (const ByteSet& s : nfa.sets)
        if (std::find(distinct.begin(), distinct.end(), s) == distinct.end()) distinct.push_back(s);
    for (const ByteSet& s : distinct) {
        std::map<std::pair<uint16_t, bool>, uint16_t> remap;
        for (int b = 0; b < 256; ++b) {
            const auto key = std::make_pair(cls[static_cast<size_t>(b)], s.has(static_cast<uint8_t>(b)));
            auto it = remap.find(key);
            if (it == remap.end()) it = remap.emplace(key, static_cast<uint16_t>(remap.size())).first;
            cls[static_cast<size_t>(b)] = it->second;
        }
        n_cls = static_cast<int>(remap.size());
    }
    if (n_cls > 256) throw GrammarError("internal: too many byte classes");
    d.n_classes = n_cls;
    std::vector<int> rep(static_cast<size_t>(n_cls), -1);
    for (int b = 0; b < 256; ++b) {
        d.byte_class[static_cast<size_t>(b)] = static_cast<uint8_t>(cls[static_cast<size_t>(b)]);
        if (rep[cls[static_cast<size_t>(b)]] < 0) rep[cls[static_cast<size_t>(b)]] = b;
    }

    std::unordered_map<std::vector<int32_t>, int32_t, VecHash> ids;
    std::vector<std::vector<int32_t>> sets;
    auto intern = [&](std::vector<int32_t> set) {
        auto it = ids.find(set);
        if (it != ids.end()) return it->second;
        if (*dfa_budget == 0) throw GrammarError("the grammar is too large (rule '" + name + "'): too many automaton states");
        --*dfa_budget;
        const auto id = static_cast<int32_t>(sets.size());
        ids.emplace(set, id);
        sets.push_back(std::move(set));
        return id;
    };
    std::vector<int32_t> s0 = {start};
    closure(nfa, &s0);
    intern(std::move(s0));
    for (size_t i = 0; i < sets.size(); ++i) {
        const std::vector<int32_t> cur = sets[i];  // copy: `sets` grows below
        d.accepting.push_back(std::binary_search(cur.begin(), cur.end(), final_state));
        bool any_byte = false;
        for (int c = 0; c < n_cls; ++c) {
            std::vector<int32_t> tgt;
            const auto b = static_cast<uint8_t>(rep[static_cast<size_t>(c)]);
            for (const int32_t s : cur) {
                const Nfa::State& st = nfa.states[static_cast<size_t>(s)];
                if (st.label_set >= 0 && nfa.sets[static_cast<size_t>(st.label_set)].has(b)) tgt.push_back(st.to);
            }
            int32_t t = -1;
            if (!tgt.empty()) {
                std::sort(tgt.begin(), tgt.end());
                tgt.erase(std::unique(tgt.begin(), tgt.end()), tgt.end());
                closure(nfa, &tgt);
                t = intern(std::move(tgt));
                any_byte = true;
            }
            d.next.push_back(t);
        }
        d.has_bytes.push_back(any_byte);
        std::map<int32_t, std::vector<int32_t>> by_rule;
        for (const int32_t s : cur) {
            const Nfa::State& st = nfa.states[static_cast<size_t>(s)];
            if (st.call >= 0) by_rule[st.call].push_back(st.to);
        }
        d.call_begin.push_back(static_cast<uint32_t>(d.calls.size()));
        for (auto& [r, tgt] : by_rule) {
            std::sort(tgt.begin(), tgt.end());
            tgt.erase(std::unique(tgt.begin(), tgt.end()), tgt.end());
            closure(nfa, &tgt);
            d.calls.push_back(Call{r, intern(std::move(tgt))});
        }
    }
    d.call_begin.push_back(static_cast<uint32_t>(d.calls.size()));
    return d;
}

// States of d that can reach acceptance using byte edges (when `bytes`) and calls of rules marked in `ok_rule`.
std::vector<uint8_t> finishing_states(const RuleDfa& d, const std::vector<uint8_t>& ok_rule, bool bytes) {
    const auto ns = static_cast<size_t>(d.n_states());
    std::vector<std::vector<int32_t>> rev(ns);
    for (size_t s = 0; s < ns; ++s) {
        if (bytes)
            for (int c = 0; c < d.n_classes; ++c)
                if (const int32_t t = d.next[s * static_cast<size_t>(d.n_classes) + static_cast<size_t>(c)]; t >= 0)
                    rev[static_cast<size_t>(t)].push_back(static_cast<int32_t>(s));
        for (uint32_t k = d.call_begin[s]; k < d.call_begin[s + 1]; ++k)
            if (ok_rule[static_cast<size_t>(d.calls[k].rule)]) rev[static_cast<size_t>(d.calls[k].ret)].push_back(static_cast<int32_t>(s));
    }
    std::vector<uint8_t> ok(ns, 0);
    std::vector<int32_t> todo;
    for (size_t s = 0; s < ns; ++s)
        if (d.accepting[s]) {
            ok[s] = 1;
            todo.push_back(static_cast<int32_t>(s));
        }
    while (!todo.empty()) {
        const int32_t t = todo.back();
        todo.pop_back();
        for (const int32_t s : rev[static_cast<size_t>(t)])
            if (!ok[static_cast<size_t>(s)]) {
                ok[static_cast<size_t>(s)] = 1;
                todo.push_back(s);
            }
    }
    return ok;
}

// Rules that match the empty string (only calls of nullable rules) and rules that match anything at all.
std::vector<uint8_t> rule_fixpoint(const std::vector<RuleDfa>& rules, bool bytes) {
    std::vector<uint8_t> out(rules.size(), 0);
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t r = 0; r < rules.size(); ++r)
            if (!out[r] && finishing_states(rules[r], out, bytes)[0]) out[r] = changed = 1;
    }
    return out;
}

}  // namespace

Grammar Grammar::compile(const GrammarBuilder& b, const GrammarLimits& lim) {
    if (b.root() < 0 || static_cast<size_t>(b.root()) >= b.size()) throw GrammarError("the grammar has no root rule");
    Grammar g;
    g.root_ = b.root();
    size_t nfa_budget = lim.max_nfa_states, dfa_budget = lim.max_dfa_states;
    for (size_t r = 0; r < b.size(); ++r) {
        if (!b.body(static_cast<int>(r))) throw GrammarError("rule '" + b.name(static_cast<int>(r)) + "' is never defined");
        Nfa nfa;
        nfa.budget = &nfa_budget;
        nfa.rule_name = &b.name(static_cast<int>(r));
        const int32_t start = nfa.add();
        const int32_t end = nfa.build(*b.body(static_cast<int>(r)), start);
        for (const auto& st : nfa.states)
            if (st.call >= 0 && static_cast<size_t>(st.call) >= b.size())
                throw GrammarError("rule '" + b.name(static_cast<int>(r)) + "' calls an unknown rule");
        g.rules_.push_back(determinize(nfa, start, end, b.name(static_cast<int>(r)), &dfa_budget));
    }
    const std::vector<uint8_t> nullable = rule_fixpoint(g.rules_, false), productive = rule_fixpoint(g.rules_, true);
    // The last one defined is the innermost: the one to name.
    for (size_t r = g.rules_.size(); r-- > 0;)
        if (!productive[r])
            throw GrammarError("rule '" + g.rules_[r].name + "' matches nothing (e.g. a `false` schema or a $ref cycle)");
    // Left recursion (a rule reaching a call of itself without consuming a byte) would make the parser loop.
    const size_t n = g.rules_.size();
    std::vector<std::vector<int32_t>> first_calls(n);
    for (size_t r = 0; r < n; ++r) {
        const RuleDfa& d = g.rules_[r];
        std::vector<uint8_t> seen(static_cast<size_t>(d.n_states()), 0);
        std::vector<int32_t> todo = {0};
        seen[0] = 1;
        while (!todo.empty()) {
            const int32_t s = todo.back();
            todo.pop_back();
            for (uint32_t k = d.call_begin[static_cast<size_t>(s)]; k < d.call_begin[static_cast<size_t>(s) + 1]; ++k) {
                first_calls[r].push_back(d.calls[k].rule);
                const int32_t t = d.calls[k].ret;
                if (nullable[static_cast<size_t>(d.calls[k].rule)] && !seen[static_cast<size_t>(t)]) {
                    seen[static_cast<size_t>(t)] = 1;
                    todo.push_back(t);
                }
            }
        }
    }
    std::vector<uint8_t> mark(n, 0);  // 1: on the DFS path, 2: done
    std::function<void(size_t)> visit = [&](size_t r) {
        mark[r] = 1;
        for (const int32_t c : first_calls[r]) {
            if (mark[static_cast<size_t>(c)] == 1)
                throw GrammarError("rule '" + g.rules_[r].name + "' can call '" + g.rules_[static_cast<size_t>(c)].name +
                                   "' again before reading anything (left recursion, e.g. a $ref cycle)");
            if (mark[static_cast<size_t>(c)] == 0) visit(static_cast<size_t>(c));
        }
        mark[r] = 2;
    };
    for (size_t r = 0; r < n; ++r)
        if (mark[r] == 0) visit(r);
    for (const RuleDfa& d : g.rules_) {
        g.state_base_.push_back(g.total_states_);
        g.total_states_ += static_cast<size_t>(d.n_states());
    }
    return g;
}

}  // namespace gemma::grammar
