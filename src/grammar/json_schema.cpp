// The schema compiler: each schema node becomes an expression; $ref targets, array items and generic values become rules.
#include "grammar/json_schema.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "grammar/regex.h"

namespace gemma::grammar {
namespace {

using ojson = nlohmann::ordered_json;

constexpr int kMaxIndent = 20;       // whitespace between tokens: a space, or one newline and an indent (llama.cpp's rule)
constexpr int kMaxRepeat = 1000;     // maxLength / maxItems we unroll
constexpr int kNumberDigits = 16;
constexpr int kMaxSchemaDepth = 64;    // digits of an unconstrained number's integer and fraction parts

ExprPtr digit() { return bytes(ByteSet::range('0', '9')); }
// Enough to pretty-print, never a run of blank lines: models (random ones especially) love whitespace tokens.
ExprPtr ws() {
    ByteSet indent;
    indent.add(' ', ' ');
    indent.add('\t', '\t');
    return opt(alt({lit(" "), seq({lit("\n"), repeat(bytes(indent), 0, kMaxIndent)})}));
}
ExprPtr sep() { return seq({ws(), lit(","), ws()}); }

// Decimal strings a <= b of the same length, every digit string between them.
ExprPtr same_length_range(const std::string& a, const std::string& b) {
    if (a.empty()) return empty();
    if (a == b) return lit(a);
    if (a[0] == b[0]) return seq({lit(a.substr(0, 1)), same_length_range(a.substr(1), b.substr(1))});
    const size_t n = a.size() - 1;
    std::vector<ExprPtr> alts;
    char lo = a[0], hi = b[0];
    if (a.find_first_not_of('0', 1) != std::string::npos) {
        alts.push_back(seq({lit(a.substr(0, 1)), same_length_range(a.substr(1), std::string(n, '9'))}));
        ++lo;
    }
    if (b.find_first_not_of('9', 1) != std::string::npos) {
        alts.push_back(seq({lit(b.substr(0, 1)), same_length_range(std::string(n, '0'), b.substr(1))}));
        --hi;
    }
    if (lo <= hi) alts.push_back(seq({bytes(ByteSet::range(static_cast<uint8_t>(lo), static_cast<uint8_t>(hi))),
                                     repeat(digit(), static_cast<int>(n), static_cast<int>(n))}));
    return alt(std::move(alts));
}

// Non-negative integers in [lo, hi] (hi absent: up to 19 digits) written without leading zeros.
ExprPtr natural_range(uint64_t lo, std::optional<uint64_t> hi) {
    constexpr uint64_t kMax19 = 9999999999999999999ull;
    const uint64_t top = hi ? std::min(*hi, kMax19) : kMax19;
    std::vector<ExprPtr> alts;
    uint64_t pow10 = 1;  // 10^(len-1)
    for (int len = 1; len <= 19; ++len, pow10 *= 10) {
        const uint64_t first = len == 1 ? 0 : pow10, last = len == 19 ? kMax19 : pow10 * 10 - 1;
        const uint64_t a = std::max(lo, first), b = std::min(top, last);
        if (a <= b) alts.push_back(same_length_range(std::to_string(a), std::to_string(b)));
    }
    if (alts.empty()) throw GrammarError("internal: empty integer range");
    return alt(std::move(alts));
}

ExprPtr integer_range(std::optional<int64_t> lo, std::optional<int64_t> hi) {
    auto mag = [](int64_t v) { return v < 0 ? static_cast<uint64_t>(-(v + 1)) + 1 : static_cast<uint64_t>(v); };
    std::vector<ExprPtr> alts;
    if (!lo || *lo < 0) {  // negative numbers -m, m in [max(1, -hi), -lo]
        const uint64_t m_lo = hi && *hi < 0 ? mag(*hi) : 1;
        std::optional<uint64_t> m_hi;
        if (lo) m_hi = mag(*lo);
        alts.push_back(seq({lit("-"), natural_range(m_lo, m_hi)}));
    }
    if (!hi || *hi >= 0) {
        std::optional<uint64_t> h;
        if (hi) h = static_cast<uint64_t>(*hi);
        alts.push_back(natural_range(lo && *lo > 0 ? static_cast<uint64_t>(*lo) : 0, h));
    }
    return alt(std::move(alts));
}

class Compiler {
public:
    explicit Compiler(const ojson& root) : root_(root) {}

    GrammarBuilder build() {
        const int r = b_.declare("root");
        refs_["#"] = r;
        b_.define(r, value(root_, "#"));
        b_.set_root(r);
        return std::move(b_);
    }

    GrammarBuilder build_any_object() {
        b_.set_root(b_.add("root", ref(prim("object"))));
        return std::move(b_);
    }

private:
    [[noreturn]] static void fail(const std::string& path, const std::string& why) {
        throw GrammarError("JSON schema at " + path + ": " + why);
    }

    // The shared rules of plain JSON, made on first use.
    int prim(const std::string& name) {
        if (auto it = prims_.find(name); it != prims_.end()) return it->second;
        const int r = b_.declare(name);
        prims_[name] = r;
        ExprPtr body;
        if (name == "string") {
            body = seq({lit("\""), star(json_string_char()), lit("\"")});
        } else if (name == "number" || name == "integer") {
            std::vector<ExprPtr> parts = {opt(lit("-")), alt({lit("0"), seq({bytes(ByteSet::range('1', '9')),
                                                                            repeat(digit(), 0, kNumberDigits - 1)})})};
            if (name == "number") {
                ByteSet e, sign;
                e.add('e', 'e');
                e.add('E', 'E');
                sign.add('+', '+');
                sign.add('-', '-');
                parts.push_back(opt(seq({lit("."), repeat(digit(), 1, kNumberDigits)})));
                parts.push_back(opt(seq({bytes(e), opt(bytes(sign)), repeat(digit(), 1, 3)})));
            }
            body = seq(std::move(parts));
        } else if (name == "value") {
            body = alt({ref(prim("object")), ref(prim("array")), ref(prim("string")), ref(prim("number")),
                        lit("true"), lit("false"), lit("null")});
        } else if (name == "object") {
            body = map_object(ref(prim("value")));
        } else if (name == "array") {
            const ExprPtr v = ref(prim("value"));
            body = seq({lit("["), ws(), opt(seq({v, star(seq({sep(), v})), ws()})), lit("]")});
        }
        b_.define(r, body);
        return r;
    }

    ExprPtr map_object(const ExprPtr& v) {
        const ExprPtr kv = seq({ref(prim("string")), ws(), lit(":"), ws(), v});
        return seq({lit("{"), ws(), opt(seq({kv, star(seq({sep(), kv})), ws()})), lit("}")});
    }

    static bool is_annotation(const std::string& k) {
        static const std::set<std::string> a = {"$schema", "$id", "$comment", "title", "description", "default",
                                                "examples", "deprecated", "readOnly", "writeOnly", "$defs",
                                                "definitions"};
        return a.count(k) > 0;
    }

    static void check_keywords(const ojson& s, const std::string& path) {
        static const std::set<std::string> known = {
            "type", "enum", "const", "anyOf", "allOf", "$ref", "properties", "required", "additionalProperties",
            "items", "minItems", "maxItems", "uniqueItems", "pattern", "minLength", "maxLength", "minimum",
            "maximum", "exclusiveMinimum", "exclusiveMaximum"};
        for (const auto& [k, v] : s.items()) {
            if (is_annotation(k) || known.count(k)) continue;
            fail(path, "the keyword '" + k + "' is not supported");
        }
        if (const auto it = s.find("uniqueItems"); it != s.end() && *it != false)
            fail(path, "'uniqueItems': true is not supported");
    }

    // Keywords other than annotations and `allowed`.
    static void only(const ojson& s, const std::string& path, const std::set<std::string>& allowed, const char* what) {
        for (const auto& [k, v] : s.items())
            if (!is_annotation(k) && !allowed.count(k)) fail(path, "'" + k + "' beside '" + what + "' is not supported");
    }

    int count(const ojson& s, const char* key, const std::string& path, int dflt) {
        const auto it = s.find(key);
        if (it == s.end()) return dflt;
        if (!it->is_number_integer() || it->get<int64_t>() < 0)
            fail(path, std::string("'") + key + "' must be a non-negative integer");
        if (it->get<int64_t>() > kMaxRepeat)
            fail(path, std::string("'") + key + "' above " + std::to_string(kMaxRepeat) + " is not supported");
        return static_cast<int>(it->get<int64_t>());
    }

    int resolve(const std::string& pointer, const std::string& path) {
        if (auto it = refs_.find(pointer); it != refs_.end()) return it->second;
        if (pointer.rfind("#/", 0) != 0) fail(path, "'$ref' must point into this schema (\"#\" or \"#/$defs/...\"), got '" + pointer + "'");
        const ojson* cur = &root_;
        size_t pos = 2;
        while (pos <= pointer.size()) {
            size_t end = pointer.find('/', pos);
            if (end == std::string::npos) end = pointer.size();
            std::string seg = pointer.substr(pos, end - pos);
            for (size_t k; (k = seg.find("~1")) != std::string::npos;) seg.replace(k, 2, "/");
            for (size_t k; (k = seg.find("~0")) != std::string::npos;) seg.replace(k, 2, "~");
            if (cur->is_object() && cur->contains(seg)) cur = &(*cur)[seg];
            else if (cur->is_array() && !seg.empty() && seg.find_first_not_of("0123456789") == std::string::npos &&
                     std::stoul(seg) < cur->size())
                cur = &(*cur)[std::stoul(seg)];
            else fail(path, "'$ref' target '" + pointer + "' does not exist");
            pos = end + 1;
        }
        const int r = b_.declare("ref " + pointer);
        refs_[pointer] = r;
        b_.define(r, value(*cur, pointer));
        return r;
    }

    ExprPtr value(const ojson& s, const std::string& path) {
        // Each level is a C++ frame here and in the NFA builder: a hostile schema must not exhaust the stack.
        struct Depth {
            int& d;
            explicit Depth(int& x) : d(++x) {}
            ~Depth() { --d; }
        } depth(depth_);
        if (depth_ > kMaxSchemaDepth) fail(path, "the schema is nested more than " + std::to_string(kMaxSchemaDepth) + " levels deep");
        if (s.is_boolean()) {
            if (!s.get<bool>()) fail(path, "the schema `false` admits no value");
            return ref(prim("value"));
        }
        if (!s.is_object()) fail(path, "a schema must be an object or a boolean");
        check_keywords(s, path);
        if (const auto it = s.find("$ref"); it != s.end()) {
            only(s, path, {"$ref"}, "$ref");
            if (!it->is_string()) fail(path, "'$ref' must be a string");
            return ref(resolve(it->get<std::string>(), path));
        }
        if (const auto it = s.find("anyOf"); it != s.end()) {
            only(s, path, {"anyOf"}, "anyOf");
            if (!it->is_array() || it->empty()) fail(path, "'anyOf' must be a non-empty array");
            std::vector<ExprPtr> alts;
            for (size_t i = 0; i < it->size(); ++i) alts.push_back(value((*it)[i], path + "/anyOf/" + std::to_string(i)));
            return alt(std::move(alts));
        }
        if (const auto it = s.find("allOf"); it != s.end()) {
            only(s, path, {"allOf"}, "allOf");
            if (!it->is_array() || it->size() != 1) fail(path, "'allOf' is only supported with exactly one schema");
            return value((*it)[0], path + "/allOf/0");
        }
        if (const auto it = s.find("const"); it != s.end()) {
            if (!type_allows(s, *it)) fail(path, "'const' does not have the schema's type");
            return lit(it->dump());
        }
        if (const auto it = s.find("enum"); it != s.end()) {
            if (!it->is_array() || it->empty()) fail(path, "'enum' must be a non-empty array");
            std::vector<ExprPtr> alts;
            for (const ojson& v : *it)
                if (type_allows(s, v)) alts.push_back(lit(v.dump()));
            if (alts.empty()) fail(path, "no value of 'enum' has the schema's type");
            return alt(std::move(alts));
        }
        std::vector<std::string> types;
        if (const auto it = s.find("type"); it != s.end()) {
            if (it->is_string()) types.push_back(it->get<std::string>());
            else if (it->is_array() && !it->empty())
                for (const ojson& t : *it) {
                    if (!t.is_string()) fail(path, "'type' must be a string or an array of strings");
                    types.push_back(t.get<std::string>());
                }
            else fail(path, "'type' must be a string or an array of strings");
        } else {
            // No type: what the keywords imply, else any value.
            auto has = [&](std::initializer_list<const char*> ks) {
                for (const char* k : ks)
                    if (s.contains(k)) return true;
                return false;
            };
            if (has({"properties", "required", "additionalProperties"})) types.push_back("object");
            if (has({"items", "minItems", "maxItems"})) types.push_back("array");
            if (has({"pattern", "minLength", "maxLength"})) types.push_back("string");
            if (has({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})) types.push_back("integer");
            if (types.empty()) return ref(prim("value"));
        }
        std::vector<ExprPtr> alts;
        for (const std::string& t : types) alts.push_back(typed(s, t, path));
        return alt(std::move(alts));
    }

    // enum/const values must also have the schema's type, if it names one.
    static bool type_allows(const ojson& s, const ojson& v) {
        const auto it = s.find("type");
        if (it == s.end()) return true;
        auto one = [&](const std::string& t) {
            if (t == "integer") return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
            if (t == "number") return v.is_number();
            if (t == "string") return v.is_string();
            if (t == "boolean") return v.is_boolean();
            if (t == "null") return v.is_null();
            if (t == "object") return v.is_object();
            if (t == "array") return v.is_array();
            return false;
        };
        if (it->is_string()) return one(it->get<std::string>());
        if (it->is_array())
            for (const ojson& t : *it)
                if (t.is_string() && one(t.get<std::string>())) return true;
        return false;
    }

    std::optional<int64_t> bound(const ojson& s, const char* key, bool lower, bool exclusive, const std::string& path) {
        const auto it = s.find(key);
        if (it == s.end()) return std::nullopt;
        if (!it->is_number()) fail(path, std::string("'") + key + "' must be a number");
        const double v = it->get<double>();
        if (!(std::fabs(v) < 9.2e18)) fail(path, std::string("'") + key + "' is outside the 64-bit integer range");
        double r = lower ? (exclusive ? std::floor(v) + 1 : std::ceil(v)) : (exclusive ? std::ceil(v) - 1 : std::floor(v));
        return static_cast<int64_t>(r);
    }

    ExprPtr typed(const ojson& s, const std::string& t, const std::string& path) {
        if (t == "string") {
            const auto pat = s.find("pattern");
            if (pat != s.end()) {
                if (s.contains("minLength") || s.contains("maxLength"))
                    fail(path, "'pattern' together with 'minLength'/'maxLength' is not supported");
                if (!pat->is_string()) fail(path, "'pattern' must be a string");
                try {
                    return seq({lit("\""), json_pattern(pat->get<std::string>()), lit("\"")});
                } catch (const GrammarError& e) {
                    fail(path, e.what());
                }
            }
            if (!s.contains("minLength") && !s.contains("maxLength")) return ref(prim("string"));
            const int lo = count(s, "minLength", path, 0), hi = count(s, "maxLength", path, -1);
            if (hi >= 0 && hi < lo) fail(path, "'maxLength' is below 'minLength'");
            return seq({lit("\""), repeat(json_string_char(), lo, hi), lit("\"")});
        }
        if (t == "integer") {
            std::optional<int64_t> lo = bound(s, "minimum", true, false, path), hi = bound(s, "maximum", false, false, path);
            if (auto x = bound(s, "exclusiveMinimum", true, true, path)) lo = lo ? std::max(*lo, *x) : *x;
            if (auto x = bound(s, "exclusiveMaximum", false, true, path)) hi = hi ? std::min(*hi, *x) : *x;
            if (lo && hi && *lo > *hi) fail(path, "no integer lies between the minimum and the maximum");
            if (!lo && !hi) return ref(prim("integer"));
            return integer_range(lo, hi);
        }
        if (t == "number") {
            for (const char* k : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
                if (s.contains(k)) fail(path, std::string("'") + k + "' is only supported with \"type\": \"integer\"");
            return ref(prim("number"));
        }
        if (t == "boolean") return alt({lit("true"), lit("false")});
        if (t == "null") return lit("null");
        if (t == "object") return object(s, path);
        if (t == "array") return array(s, path);
        fail(path, "unknown type '" + t + "'");
    }

    ExprPtr object(const ojson& s, const std::string& path) {
        struct Entry {
            std::string key;
            const ojson* schema;
            bool required;
        };
        static const ojson any = true;
        std::vector<Entry> entries;
        std::set<std::string> required;
        if (const auto it = s.find("required"); it != s.end()) {
            if (!it->is_array()) fail(path, "'required' must be an array of strings");
            for (const ojson& k : *it) {
                if (!k.is_string()) fail(path, "'required' must be an array of strings");
                required.insert(k.get<std::string>());
            }
        }
        if (const auto it = s.find("properties"); it != s.end()) {
            if (!it->is_object()) fail(path, "'properties' must be an object");
            for (const auto& [k, v] : it->items()) entries.push_back(Entry{k, &v, required.count(k) > 0});
        }
        for (const std::string& k : required) {
            bool listed = false;
            for (const Entry& e : entries) listed = listed || e.key == k;
            if (!listed) entries.push_back(Entry{k, &any, true});
        }
        const auto add = s.find("additionalProperties");
        if (add != s.end() && !add->is_boolean() && !add->is_object())
            fail(path, "'additionalProperties' must be a boolean or a schema");
        if (entries.empty()) {
            if (add != s.end() && *add == false) return seq({lit("{"), ws(), lit("}")});
            if (add == s.end() || *add == true) return ref(prim("object"));
            const int v = b_.declare("values of " + path);
            b_.define(v, value(*add, path + "/additionalProperties"));
            return map_object(ref(v));
        }
        std::vector<ExprPtr> kv;
        for (const Entry& e : entries)
            kv.push_back(seq({lit(ojson(e.key).dump()), ws(), lit(":"), ws(),
                              value(*e.schema, path + "/properties/" + e.key)}));
        bool all_required = true;
        for (const Entry& e : entries) all_required = all_required && e.required;
        if (all_required) {
            std::vector<ExprPtr> items = {lit("{"), ws(), kv[0]};
            for (size_t i = 1; i < kv.size(); ++i) {
                items.push_back(sep());
                items.push_back(kv[i]);
            }
            items.push_back(ws());
            items.push_back(lit("}"));
            return seq(std::move(items));
        }
        // Optional properties in order: after the first one written, each later one is ", key: value"
        // (optional or not), a chain of rules ending in tail calls; the first one written may be any
        // property up to the first required one.
        const size_t n = entries.size();
        std::vector<int> rest(n + 1, -1);  // rest[k]: the properties k.. after something was written
        for (size_t k = n; k-- > 1;) {
            rest[k] = b_.declare("properties " + std::to_string(k) + ".. of " + path);
            ExprPtr item = seq({sep(), kv[k]});
            if (!entries[k].required) item = opt(item);
            b_.define(rest[k], k + 1 < n ? seq({item, ref(rest[k + 1])}) : item);
        }
        std::vector<ExprPtr> first;
        size_t k = 0;
        for (; k < n; ++k) {
            first.push_back(k + 1 < n ? seq({kv[k], ref(rest[k + 1])}) : kv[k]);
            if (entries[k].required) break;
        }
        if (k == n) first.push_back(empty());  // nothing required: {} is valid
        return seq({lit("{"), ws(), alt(std::move(first)), ws(), lit("}")});
    }

    ExprPtr array(const ojson& s, const std::string& path) {
        const int lo = count(s, "minItems", path, 0), hi = count(s, "maxItems", path, -1);
        if (hi >= 0 && hi < lo) fail(path, "'maxItems' is below 'minItems'");
        if (hi == 0) return seq({lit("["), ws(), lit("]")});
        ExprPtr item;
        if (const auto it = s.find("items"); it != s.end()) {
            const int r = b_.declare("items of " + path);
            b_.define(r, value(*it, path + "/items"));
            item = ref(r);
        } else {
            item = ref(prim("value"));
        }
        const ExprPtr more = repeat(seq({sep(), item}), lo > 0 ? lo - 1 : 0, hi < 0 ? -1 : hi - 1);
        const ExprPtr body = seq({item, more, ws()});
        return seq({lit("["), ws(), lo > 0 ? body : opt(body), lit("]")});
    }

    const ojson& root_;
    int depth_ = 0;
    GrammarBuilder b_;
    std::map<std::string, int> prims_;
    std::map<std::string, int> refs_;
};

}  // namespace

GrammarBuilder json_schema_grammar(const nlohmann::ordered_json& schema) { return Compiler(schema).build(); }

GrammarBuilder json_object_grammar() {
    static const nlohmann::ordered_json none;
    return Compiler(none).build_any_object();
}

}  // namespace gemma::grammar
