// A small ECMAScript regex parser that emits grammar expressions over JSON-escaped string bodies.
#include "grammar/regex.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace gemma::grammar {
namespace {

ExprPtr range(uint8_t lo, uint8_t hi) { return bytes(ByteSet::range(lo, hi)); }
ExprPtr cont() { return range(0x80, 0xBF); }

// A set of characters: ASCII ones by byte, the non-ASCII ones all or none, plus listed non-ASCII literals.
struct CharSet {
    ByteSet ascii;
    bool non_ascii = false;
    std::vector<std::string> literals;  // non-ASCII characters as UTF-8
};

ByteSet ascii_class(char c) {
    ByteSet s;
    switch (c) {
        case 'd': s.add('0', '9'); break;
        case 'w': s.add('0', '9'); s.add('a', 'z'); s.add('A', 'Z'); s.add('_', '_'); break;
        case 's': s.add(' ', ' '); s.add('\t', '\r'); break;
        default: break;
    }
    return s;
}

ByteSet ascii_complement(const ByteSet& s) {
    ByteSet out;
    for (int b = 0; b < 128; ++b)
        if (!s.has(static_cast<uint8_t>(b))) out.add(static_cast<uint8_t>(b), static_cast<uint8_t>(b));
    return out;
}

void append_utf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
        *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        *out += static_cast<char>(0xC0 | (cp >> 6));
        *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *out += static_cast<char>(0xE0 | (cp >> 12));
        *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        *out += static_cast<char>(0xF0 | (cp >> 18));
        *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        *out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

ExprPtr chars_expr(const CharSet& cs) {
    std::vector<ExprPtr> alts = {json_chars(cs.ascii, cs.non_ascii)};
    if (!cs.non_ascii)
        for (const std::string& l : cs.literals) alts.push_back(lit(l));
    return alt(std::move(alts));
}

class Parser {
public:
    explicit Parser(std::string_view p) : p_(p) {}

    ExprPtr parse() {
        // Anchors belong to top-level alternatives: ^a|b$ is (^a)|(b$).
        std::vector<ExprPtr> alts;
        for (;;) {
            alts.push_back(top_alternative());
            if (at_end()) break;
            if (p_[i_] != '|') fail("unbalanced ')'");
            ++i_;
        }
        return alt(std::move(alts));
    }

private:
    [[noreturn]] void fail(const std::string& why) const {
        throw GrammarError("pattern '" + std::string(p_) + "': " + why + " (at offset " + std::to_string(i_) + ")");
    }
    bool at_end() const { return i_ >= p_.size(); }

    ExprPtr top_alternative() {
        const bool start_anchor = !at_end() && p_[i_] == '^';
        if (start_anchor) ++i_;
        std::vector<ExprPtr> items;
        if (!start_anchor) items.push_back(star(json_string_char()));
        bool end_anchor = false;
        while (!at_end() && p_[i_] != '|') {
            if (p_[i_] == '$') {
                ++i_;
                if (!at_end() && p_[i_] != '|') fail("'$' is only supported at the end");
                end_anchor = true;
                break;
            }
            if (p_[i_] == ')') fail("unbalanced ')'");
            items.push_back(quantified());
        }
        if (!end_anchor) items.push_back(star(json_string_char()));
        return seq(std::move(items));
    }

    ExprPtr alternation() {
        std::vector<ExprPtr> alts;
        for (;;) {
            std::vector<ExprPtr> items;
            while (!at_end() && p_[i_] != '|' && p_[i_] != ')') {
                if (p_[i_] == '^' || p_[i_] == '$') fail("anchors are only supported at the start and end");
                items.push_back(quantified());
            }
            alts.push_back(seq(std::move(items)));
            if (at_end() || p_[i_] != '|') break;
            ++i_;
        }
        return alt(std::move(alts));
    }

    int number() {
        if (at_end() || p_[i_] < '0' || p_[i_] > '9') fail("expected a number in {}");
        long v = 0;
        while (!at_end() && p_[i_] >= '0' && p_[i_] <= '9') {
            v = v * 10 + (p_[i_++] - '0');
            if (v > 100000) fail("repetition count too large");
        }
        return static_cast<int>(v);
    }

    ExprPtr quantified() {
        ExprPtr a = atom();
        if (at_end()) return a;
        int lo = -1, hi = -1;
        const char c = p_[i_];
        if (c == '*') lo = 0, hi = -1, ++i_;
        else if (c == '+') lo = 1, hi = -1, ++i_;
        else if (c == '?') lo = 0, hi = 1, ++i_;
        else if (c == '{') {
            ++i_;
            lo = number();
            hi = lo;
            if (!at_end() && p_[i_] == ',') {
                ++i_;
                hi = (!at_end() && p_[i_] == '}') ? -1 : number();
            }
            if (at_end() || p_[i_] != '}') fail("expected '}'");
            ++i_;
            if (hi >= 0 && hi < lo) fail("{n,m} with m < n");
            if (lo > 1000 || hi > 1000) fail("repetition counts above 1000 are not supported");
        } else {
            return a;
        }
        if (!at_end() && p_[i_] == '?') ++i_;  // lazy: same language
        if (!at_end() && (p_[i_] == '*' || p_[i_] == '+' || p_[i_] == '?' || p_[i_] == '{'))
            fail("a quantifier cannot follow a quantifier");
        return repeat(std::move(a), lo, hi);
    }

    // One character, UTF-8 encoded, from the pattern text.
    std::string raw_char() {
        const auto c = static_cast<unsigned char>(p_[i_]);
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (n == 0 || i_ + n > p_.size()) fail("the pattern is not valid UTF-8");
        std::string s(p_.substr(i_, n));
        i_ += n;
        return s;
    }

    uint32_t hex(size_t n) {
        if (i_ + n > p_.size()) fail("truncated hex escape");
        uint32_t v = 0;
        for (size_t k = 0; k < n; ++k) {
            const char h = p_[i_++];
            v <<= 4;
            if (h >= '0' && h <= '9') v |= static_cast<uint32_t>(h - '0');
            else if (h >= 'a' && h <= 'f') v |= static_cast<uint32_t>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') v |= static_cast<uint32_t>(h - 'A' + 10);
            else fail("bad hex digit in an escape");
        }
        return v;
    }

    // After a backslash: adds what it matches to *cs. Returns false for a class escape (\d ...) so
    // ranges can refuse it.
    bool escape(CharSet* cs) {
        if (at_end()) fail("the pattern ends with a backslash");
        const char c = p_[i_++];
        std::string one;
        switch (c) {
            case 'd': case 'w': case 's': cs->ascii.add(ascii_class(c)); return false;
            case 'D': case 'W':
                cs->ascii.add(ascii_complement(ascii_class(static_cast<char>(c + 32))));
                cs->non_ascii = true;
                return false;
            case 'S':
                // Only ASCII: \S excludes some non-ASCII spaces we do not list.
                cs->ascii.add(ascii_complement(ascii_class('s')));
                return false;
            case 'n': one = "\n"; break;
            case 't': one = "\t"; break;
            case 'r': one = "\r"; break;
            case 'f': one = "\f"; break;
            case 'v': one = "\v"; break;
            case '0': one = std::string(1, '\0'); break;
            case 'x': append_utf8(hex(2), &one); break;
            case 'u': {
                const uint32_t cp = hex(4);
                if (cp >= 0xD800 && cp <= 0xDFFF) fail("surrogate escapes are not supported");
                append_utf8(cp, &one);
                break;
            }
            case 'b': case 'B': fail("word boundaries (\\b, \\B) are not supported");
            case 'p': case 'P': fail("Unicode property classes (\\p{...}) are not supported");
            default:
                if (c >= '1' && c <= '9') fail("backreferences are not supported");
                if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) fail(std::string("unknown escape \\") + c);
                one = std::string(1, c);  // \. \/ \- \\ ...
        }
        add_char(one, cs);
        return true;
    }

    static void add_char(const std::string& ch, CharSet* cs) {
        if (ch.size() == 1) cs->ascii.add(static_cast<uint8_t>(ch[0]), static_cast<uint8_t>(ch[0]));
        else cs->literals.push_back(ch);
    }

    // One member of a [...] class into *cs; false for a class escape (\d ...), which cannot bound a range.
    bool class_member(CharSet* cs) {
        if (p_[i_] != '\\') {
            add_char(raw_char(), cs);
            return true;
        }
        ++i_;
        return escape(cs);
    }

    ExprPtr char_class() {
        CharSet cs;
        const bool negate = !at_end() && p_[i_] == '^';
        if (negate) ++i_;
        bool first = true;
        while (!at_end() && (p_[i_] != ']' || first)) {
            first = false;
            CharSet item;
            const bool single = class_member(&item);
            if (single && !at_end() && p_[i_] == '-' && i_ + 1 < p_.size() && p_[i_ + 1] != ']') {
                ++i_;
                CharSet hi;
                if (!class_member(&hi)) fail("a range cannot end in a class escape");
                if (!item.literals.empty() || !hi.literals.empty())
                    fail("ranges of non-ASCII characters are not supported");
                int a = -1, b = -1;
                for (int x = 0; x < 128; ++x) {
                    if (item.ascii.has(static_cast<uint8_t>(x))) a = x;
                    if (hi.ascii.has(static_cast<uint8_t>(x))) b = x;
                }
                if (a > b) fail("a range out of order");
                cs.ascii.add(static_cast<uint8_t>(a), static_cast<uint8_t>(b));
                continue;
            }
            cs.ascii.add(item.ascii);
            cs.non_ascii = cs.non_ascii || item.non_ascii;
            for (auto& l : item.literals) cs.literals.push_back(l);
        }
        if (at_end()) fail("unterminated character class");
        ++i_;
        if (negate) {
            if (!cs.literals.empty() || cs.non_ascii)
                fail("negated classes may only list ASCII characters");
            const bool space = cs.ascii.has(' ') && cs.ascii.has('\t');
            CharSet out;
            out.ascii = ascii_complement(cs.ascii);
            out.non_ascii = !space;  // [^\s] must not take non-ASCII spaces
            return chars_expr(out);
        }
        return chars_expr(cs);
    }

    ExprPtr atom() {
        const char c = p_[i_];
        if (c == '(') {
            if (++depth_ > 32) fail("groups nested more than 32 deep");
            ++i_;
            if (!at_end() && p_[i_] == '?') {
                if (i_ + 1 < p_.size() && p_[i_ + 1] == ':') {
                    i_ += 2;
                } else if (i_ + 1 < p_.size() && p_[i_ + 1] == '<' && i_ + 2 < p_.size() && p_[i_ + 2] != '=' &&
                           p_[i_ + 2] != '!') {
                    const size_t close = p_.find('>', i_);
                    if (close == std::string_view::npos) fail("unterminated group name");
                    i_ = close + 1;
                } else {
                    fail("lookaround assertions are not supported");
                }
            }
            ExprPtr inner = alternation();
            if (at_end() || p_[i_] != ')') fail("missing ')'");
            ++i_;
            --depth_;
            return inner;
        }
        if (c == '[') {
            ++i_;
            return char_class();
        }
        if (c == '.') {
            ++i_;
            ByteSet s = ascii_complement(ByteSet());
            s.remove('\n');
            s.remove('\r');
            return alt({json_chars(s, false), utf8_multibyte(true)});
        }
        if (c == '*' || c == '+' || c == '?' || c == '{') fail("nothing to repeat");
        if (c == '^' || c == '$') fail("anchors are only supported at the start and end");
        CharSet cs;
        if (c == '\\') {
            ++i_;
            escape(&cs);
        } else {
            add_char(raw_char(), &cs);
        }
        return chars_expr(cs);
    }

    std::string_view p_;
    size_t i_ = 0;
    int depth_ = 0;
};

}  // namespace

ExprPtr utf8_multibyte(bool no_line_separators) {
    std::vector<ExprPtr> three = {seq({lit("\xE0"), range(0xA0, 0xBF), cont()}),
                                  seq({range(0xE1, 0xE1), cont(), cont()}),
                                  seq({range(0xE3, 0xEC), cont(), cont()}),
                                  seq({lit("\xED"), range(0x80, 0x9F), cont()}),
                                  seq({range(0xEE, 0xEF), cont(), cont()})};
    if (no_line_separators) {
        ByteSet third = ByteSet::range(0x80, 0xBF);
        third.remove(0xA8);
        third.remove(0xA9);
        three.push_back(seq({lit("\xE2"), alt({seq({lit("\x80"), bytes(third)}), seq({range(0x81, 0xBF), cont()})})}));
    } else {
        three.push_back(seq({lit("\xE2"), cont(), cont()}));
    }
    return alt({seq({range(0xC2, 0xDF), cont()}), alt(std::move(three)),
                seq({lit("\xF0"), range(0x90, 0xBF), cont(), cont()}), seq({range(0xF1, 0xF3), cont(), cont(), cont()}),
                seq({lit("\xF4"), range(0x80, 0x8F), cont(), cont()})});
}

ExprPtr json_chars(const ByteSet& ascii, bool non_ascii) {
    ByteSet plain;
    std::vector<ExprPtr> alts;
    for (int b = 0; b < 128; ++b) {
        const auto c = static_cast<uint8_t>(b);
        if (!ascii.has(c)) continue;
        if (c == '"' || c == '\\' || c < 0x20) {
            const std::string esc = nlohmann::json(std::string(1, static_cast<char>(c))).dump();
            alts.push_back(lit(std::string_view(esc).substr(1, esc.size() - 2)));
        } else {
            plain.add(c, c);
        }
    }
    if (!plain.empty()) alts.insert(alts.begin(), bytes(plain));
    if (non_ascii) alts.push_back(utf8_multibyte());
    if (alts.empty()) throw GrammarError("a character class that matches nothing");
    return alt(std::move(alts));
}

ExprPtr json_string_char() {
    ByteSet plain = ByteSet::range(0x20, 0x7F);
    plain.remove('"');
    plain.remove('\\');
    ByteSet hex;
    hex.add('0', '9');
    hex.add('a', 'f');
    hex.add('A', 'F');
    ByteSet hex_no_d = hex;
    hex_no_d.remove('d');
    hex_no_d.remove('D');
    const ExprPtr h = bytes(hex);
    // \uXXXX outside D800-DFFF: a lone surrogate half is not a character.
    const ExprPtr u = seq({lit("u"), alt({seq({bytes(hex_no_d), h, h, h}), seq({bytes([] {
                                                                                      ByteSet d;
                                                                                      d.add('d', 'd');
                                                                                      d.add('D', 'D');
                                                                                      return d;
                                                                                  }()),
                                                                                  range('0', '7'), h, h})})});
    ByteSet simple;
    for (const char c : std::string_view("\"\\/bfnrt")) simple.add(static_cast<uint8_t>(c), static_cast<uint8_t>(c));
    return alt({bytes(plain), utf8_multibyte(), seq({lit("\\"), alt({bytes(simple), u})})});
}

ExprPtr json_pattern(std::string_view pattern) { return Parser(pattern).parse(); }

}  // namespace gemma::grammar
