// Grammar source form: rules whose bodies are byte-level regular expressions that may call other rules.
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace gemma::grammar {

// A grammar that cannot be built (bad schema, bad pattern, too large). The message names the cause.
class GrammarError : public Error {
public:
    using Error::Error;
};

// A set of bytes.
struct ByteSet {
    std::array<uint64_t, 4> w{};
    ByteSet() = default;
    static ByteSet of(uint8_t b) { return range(b, b); }
    static ByteSet range(uint8_t lo, uint8_t hi) {
        ByteSet s;
        s.add(lo, hi);
        return s;
    }
    void add(uint8_t lo, uint8_t hi) {
        for (int b = lo; b <= hi; ++b) w[static_cast<size_t>(b) >> 6] |= 1ull << (b & 63);
    }
    void add(const ByteSet& o) {
        for (size_t i = 0; i < 4; ++i) w[i] |= o.w[i];
    }
    void remove(uint8_t b) { w[b >> 6] &= ~(1ull << (b & 63)); }
    bool has(uint8_t b) const { return (w[b >> 6] >> (b & 63)) & 1; }
    bool empty() const { return (w[0] | w[1] | w[2] | w[3]) == 0; }
    bool operator==(const ByteSet& o) const = default;
};

struct Expr;
using ExprPtr = std::shared_ptr<const Expr>;

// A regular expression over bytes and rule calls.
struct Expr {
    enum class Kind { Bytes, Seq, Alt, Repeat, Ref };
    Kind kind = Kind::Seq;
    ByteSet bytes;               // Bytes
    std::vector<ExprPtr> items;  // Seq, Alt; Repeat: one item
    int min = 0, max = -1;       // Repeat; max < 0: unbounded
    int rule = -1;               // Ref
};

ExprPtr bytes(const ByteSet& s);
ExprPtr lit(std::string_view s);  // the exact bytes
ExprPtr seq(std::vector<ExprPtr> items);
ExprPtr alt(std::vector<ExprPtr> items);
ExprPtr repeat(ExprPtr e, int min, int max);
inline ExprPtr opt(ExprPtr e) { return repeat(std::move(e), 0, 1); }
inline ExprPtr star(ExprPtr e) { return repeat(std::move(e), 0, -1); }
ExprPtr ref(int rule);
inline ExprPtr empty() { return seq({}); }

// Rules by id; the root is what a whole generation must match.
class GrammarBuilder {
public:
    // Reserves a rule (so bodies can refer to it before it is defined, e.g. for recursion).
    int declare(std::string name);
    void define(int rule, ExprPtr body);
    int add(std::string name, ExprPtr body) {
        const int r = declare(std::move(name));
        define(r, std::move(body));
        return r;
    }
    void set_root(int rule) { root_ = rule; }

    int root() const { return root_; }
    size_t size() const { return names_.size(); }
    const std::string& name(int r) const { return names_[static_cast<size_t>(r)]; }
    const ExprPtr& body(int r) const { return bodies_[static_cast<size_t>(r)]; }

private:
    std::vector<std::string> names_;
    std::vector<ExprPtr> bodies_;
    int root_ = -1;
};

}  // namespace gemma::grammar
