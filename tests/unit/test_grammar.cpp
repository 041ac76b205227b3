// Grammar engine: rules and schemas accept/reject strings; token masks equal a brute-force check of every token.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "grammar/regex.h"
#include "support/golden.h"
#include "tokenizer/tokenizer.h"

namespace gemma::grammar {
namespace {

using ojson = nlohmann::ordered_json;

Grammar schema(const std::string& text) { return Grammar::compile(json_schema_grammar(ojson::parse(text))); }

// Every string in `yes` matches, none in `no` does.
void expect_language(const Grammar& g, const std::vector<std::string>& yes, const std::vector<std::string>& no) {
    for (const std::string& s : yes) EXPECT_TRUE(g.matches(s)) << "should accept: " << s;
    for (const std::string& s : no) EXPECT_FALSE(g.matches(s)) << "should reject: " << s;
}

std::string schema_error(const std::string& text) {
    try {
        schema(text);
    } catch (const GrammarError& e) {
        return e.what();
    }
    return "";
}

TEST(Grammar, RulesRepetitionAndRecursion) {
    GrammarBuilder b;
    // Balanced parentheses: recursion through a rule.
    const int p = b.declare("parens");
    b.define(p, star(seq({lit("("), ref(p), lit(")")})));
    b.set_root(p);
    expect_language(Grammar::compile(b), {"", "()", "(())()", "((()))"}, {"(", ")", "(()", "())", "x"});

    GrammarBuilder c;
    c.set_root(c.add("r", seq({repeat(lit("ab"), 2, 3), opt(lit("!"))})));
    expect_language(Grammar::compile(c), {"abab", "ababab", "abab!", "ababab!"}, {"ab", "abababab", "aba", "!"});
}

TEST(Grammar, BadGrammarsAreRefused) {
    GrammarBuilder left;
    const int r = left.declare("r");
    left.define(r, alt({seq({ref(r), lit("a")}), lit("b")}));
    left.set_root(r);
    EXPECT_THROW(Grammar::compile(left), GrammarError);

    GrammarBuilder undefined;
    undefined.set_root(undefined.declare("never"));
    EXPECT_THROW(Grammar::compile(undefined), GrammarError);

    GrammarBuilder nothing;  // only infinite derivations
    const int n = nothing.declare("n");
    nothing.define(n, seq({lit("a"), ref(n)}));
    nothing.set_root(n);
    EXPECT_THROW(Grammar::compile(nothing), GrammarError);

    GrammarBuilder huge;
    huge.set_root(huge.add("h", repeat(repeat(lit("x"), 0, 1000), 0, 1000)));
    EXPECT_THROW(Grammar::compile(huge), GrammarError);
}

TEST(JsonSchemaGrammar, Primitives) {
    expect_language(schema(R"({"type": "string"})"), {R"("")", R"("héllo")", R"("a\"b\\c\n\u00e9")", "\"\xF0\x9F\x98\x80\""},
                    {R"(")", R"("a)", "\"a\nb\"", R"("\x")", R"("\ud800")", "\"\xC3\"", "\"\xED\xA0\x80\"", "5"});
    expect_language(schema(R"({"type": "integer"})"), {"0", "-7", "123456"}, {"01", "1.5", "+1", "", "1e3", "--1"});
    expect_language(schema(R"({"type": "number"})"), {"0", "-0.5", "3.25e-7", "12E+3", "42"}, {".5", "1.", "01", "1e"});
    expect_language(schema(R"({"type": "boolean"})"), {"true", "false"}, {"True", "1", "null"});
    expect_language(schema(R"({"type": "null"})"), {"null"}, {"nul", "none"});
    expect_language(schema(R"({"type": ["string", "null"]})"), {"null", R"("x")"}, {"1"});
    expect_language(schema("{}"), {"1", R"({"a": [true, null, "x", -2.5]})", "[]"}, {"{", "[1,]", "tru"});
}

TEST(JsonSchemaGrammar, ObjectsRequiredOptionalAndAdditional) {
    const Grammar g = schema(R"({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"},
                                 "c": {"type": "boolean"}}, "required": ["b"], "additionalProperties": false})");
    expect_language(g, {R"({"b":"x"})", R"({"a":1,"b":"x"})", R"({"a": 1, "b": "x", "c": true})", R"({"b":"x","c":false})",
                        "{\n  \"a\": 1,\n  \"b\": \"y\"\n}"},
                    {"{}", R"({"a":1})", R"({"b":"x","a":1})", R"({"b":"x","d":1})", R"({"b":1})", R"({"b":"x",})",
                     R"({,"b":"x"})", "{\n\n\"b\":\"x\"}", R"({  "b":"x"})"});
    // Nothing required: the empty object and any ordered subset.
    expect_language(schema(R"({"properties": {"x": {"type": "null"}, "y": {"type": "null"}}})"),
                    {"{}", R"({"x":null})", R"({"y":null})", R"({"x":null,"y":null})"}, {R"({"y":null,"x":null})", R"({,})"});
    // A map: additionalProperties as a schema and no properties.
    expect_language(schema(R"({"type": "object", "additionalProperties": {"type": "integer"}})"),
                    {"{}", R"({"k":1,"other":2})"}, {R"({"k":"v"})"});
    expect_language(schema(R"({"type": "object", "additionalProperties": false})"), {"{}", "{ }"}, {R"({"a":1})"});
    // Required names without a property schema take any value.
    expect_language(schema(R"({"required": ["id"]})"), {R"({"id":[1]})", R"({"id":"x"})"}, {"{}"});
}

TEST(JsonSchemaGrammar, ArraysEnumsConstAnyOf) {
    expect_language(schema(R"({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3})"),
                    {"[1]", "[1,2]", "[1, 2, 3]"}, {"[]", "[1,2,3,4]", R"(["a"])", "[1,]"});
    expect_language(schema(R"({"type": "array", "maxItems": 0})"), {"[]"}, {"[1]"});
    expect_language(schema(R"({"enum": ["red", 1, null, {"a": [2]}]})"), {R"("red")", "1", "null", R"({"a":[2]})"},
                    {R"("blue")", "2", R"({"a":[3]})"});
    expect_language(schema(R"({"type": "string", "enum": ["a", 1]})"), {R"("a")"}, {"1"});
    expect_language(schema(R"({"const": "fixed"})"), {R"("fixed")"}, {R"("other")"});
    expect_language(schema(R"({"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "boolean"}}]})"),
                    {"5", "[true,false]"}, {R"("x")", "[1]"});
}

TEST(JsonSchemaGrammar, StringLengthsAndPatterns) {
    expect_language(schema(R"({"type": "string", "minLength": 2, "maxLength": 3})"), {R"("ab")", R"("a\nc")", R"("éé")"},
                    {R"("a")", R"("abcd")"});
    expect_language(schema(R"({"type": "string", "pattern": "^[a-z]+-\\d{2,3}$"})"), {R"("ab-12")", R"("x-123")"},
                    {R"("ab-1")", R"("AB-12")", R"("ab-1234")", R"(" ab-12")"});
    // Unanchored: the match may be anywhere.
    expect_language(schema(R"({"type": "string", "pattern": "cat"})"), {R"("cat")", R"("a cat!")"}, {R"("dog")"});
    expect_language(schema(R"({"type": "string", "pattern": "^(yes|no)?$"})"), {R"("")", R"("yes")", R"("no")"},
                    {R"("yesno")"});
    expect_language(schema(R"({"type": "string", "pattern": "^[^a-c]\\.[\\w\"]$"})"), {R"("x.y")", R"("é._")", R"("d.\"")"},
                    {R"("a.y")", R"("x.-")", R"("xy")"});
    for (const char* bad : {"(?=a)", "(a)\\1", "\\bword", "a^b", "[z-a]", "a{2,1}", "(ab", "\\p{L}"})
        EXPECT_THROW(json_pattern(bad), GrammarError) << bad;
}

TEST(JsonSchemaGrammar, IntegerRangesMatchArithmetic) {
    const std::vector<std::pair<std::string, std::pair<long, long>>> cases = {
        {R"({"type": "integer", "minimum": 7, "maximum": 123})", {7, 123}},
        {R"({"type": "integer", "minimum": -45, "maximum": 9})", {-45, 9}},
        {R"({"type": "integer", "minimum": -300, "maximum": -12})", {-300, -12}},
        {R"({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 1000})", {1, 999}},
        {R"({"type": "integer", "minimum": 0.5, "maximum": 99.9})", {1, 99}},
        {R"({"type": "integer", "minimum": 100, "maximum": 100})", {100, 100}},
    };
    for (const auto& [text, range] : cases) {
        const Grammar g = schema(text);
        for (long v = range.first - 150; v <= range.second + 150; ++v)
            EXPECT_EQ(g.matches(std::to_string(v)), v >= range.first && v <= range.second) << text << " value " << v;
        EXPECT_FALSE(g.matches("0" + std::to_string(range.second))) << "leading zero";
    }
    const Grammar open = schema(R"({"type": "integer", "minimum": 18})");
    expect_language(open, {"18", "19", "100", "99999999"}, {"17", "0", "-5", "018"});
    const Grammar neg = schema(R"({"type": "integer", "maximum": -2})");
    expect_language(neg, {"-2", "-10", "-123456"}, {"-1", "0", "5"});
}

TEST(JsonSchemaGrammar, RefsToDefsAndRecursion) {
    const Grammar g = schema(R"({"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
        "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}, "required": ["v"]}},
        "$ref": "#/$defs/node"})");
    expect_language(g, {R"({"v":1})", R"({"v":1,"kids":[{"v":2},{"v":3,"kids":[]}]})"}, {R"({"kids":[]})", R"({"v":1,"kids":[{}]})"});
    const Grammar root = schema(R"({"type": "array", "items": {"anyOf": [{"type": "integer"}, {"$ref": "#"}]}})");
    expect_language(root, {"[]", "[1,[2,[]]]"}, {"[[1],x]"});
}

TEST(JsonSchemaGrammar, UnsupportedFeaturesAreNamed) {
    EXPECT_NE(schema_error(R"({"oneOf": [{"type": "integer"}]})").find("'oneOf'"), std::string::npos);
    EXPECT_NE(schema_error(R"({"type": "object", "properties": {"a": {"type": "string", "format": "email"}}})")
                  .find("#/properties/a: the keyword 'format'"),
              std::string::npos);
    EXPECT_NE(schema_error(R"({"type": "number", "minimum": 0})").find("'minimum'"), std::string::npos);
    EXPECT_NE(schema_error(R"({"$ref": "#/$defs/missing"})").find("does not exist"), std::string::npos);
    EXPECT_NE(schema_error(R"({"$ref": "http://example.com/s.json"})").find("'$ref'"), std::string::npos);
    EXPECT_NE(schema_error(R"({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"})").find("#/$defs/a"),
              std::string::npos);
    EXPECT_NE(schema_error(R"s({"type": "string", "pattern": "(?!x)"})s").find("lookaround"), std::string::npos);
    EXPECT_NE(schema_error(R"({"type": "array", "uniqueItems": true})").find("uniqueItems"), std::string::npos);
    EXPECT_NE(schema_error(R"({"type": "integer", "minimum": 5, "maximum": 4})").find("no integer"), std::string::npos);
    EXPECT_NE(schema_error("false").find("admits no value"), std::string::npos);
    EXPECT_NE(schema_error(R"({"type": "strin"})").find("unknown type"), std::string::npos);
    EXPECT_NE(schema_error(R"({"type": "string", "maxLength": 100000})").find("maxLength"), std::string::npos);
    // Hostile nesting is refused before it can exhaust the stack.
    std::string deep;
    for (int i = 0; i < 100000; ++i) deep += R"({"type": "array", "items": )";
    deep += "{}";
    for (int i = 0; i < 100000; ++i) deep += "}";
    EXPECT_NE(schema_error(deep).find("nested more than 64"), std::string::npos);
    EXPECT_THROW(json_pattern(std::string(50000, '(') + std::string(50000, ')')), GrammarError);
}

// The reference mask: every token checked on its own by feeding its bytes to a copy of the parse.
std::vector<uint8_t> brute_mask(const TokenTrie& trie, const Grammar& g, const std::vector<std::string>& accepted) {
    std::vector<uint8_t> ok(static_cast<size_t>(trie.n_vocab()), 0);
    ParseState base(g);
    for (const std::string& p : accepted) EXPECT_TRUE(base.advance(p));
    for (TokenId id = 0; id < trie.n_vocab(); ++id) {
        if (trie.is_eog(id)) {
            ok[static_cast<size_t>(id)] = base.complete();
            continue;
        }
        const std::string_view piece = trie.piece(id);
        if (piece.empty()) continue;
        ParseState st = base;
        ok[static_cast<size_t>(id)] = st.advance(piece);
    }
    return ok;
}

// Random walks through the grammar: at every step the matcher's mask equals the brute-force one.
void check_masks(std::shared_ptr<const TokenTrie> trie, const Grammar& grammar, int walks, int steps, uint32_t seed) {
    auto g = std::make_shared<const Grammar>(grammar);
    auto cg = std::make_shared<const CompiledGrammar>(g, trie);
    std::mt19937 rng(seed);
    for (int w = 0; w < walks; ++w) {
        Matcher m(cg);
        std::vector<std::string> path;
        for (int step = 0; step < steps && !m.done(); ++step) {
            TokenMask mask;
            m.fill_mask(&mask);
            const std::vector<uint8_t> want = brute_mask(*trie, *g, path);
            std::vector<TokenId> allowed;
            for (TokenId id = 0; id < trie->n_vocab(); ++id) {
                ASSERT_EQ(mask.test(id), want[static_cast<size_t>(id)] != 0)
                    << "token " << id << " '" << trie->piece(id) << "' after '" << [&] {
                           std::string s;
                           for (auto& p : path) s += p;
                           return s;
                       }() << "'";
                if (mask.test(id)) allowed.push_back(id);
            }
            ASSERT_FALSE(allowed.empty()) << "dead end";
            // Prefer tokens that end the text now and then, so walks finish.
            const TokenId t = allowed[std::uniform_int_distribution<size_t>(0, allowed.size() - 1)(rng)];
            ASSERT_TRUE(m.accept(t));
            if (!trie->is_eog(t)) path.emplace_back(trie->piece(t));
        }
    }
}

std::shared_ptr<const TokenTrie> toy_vocab() {
    std::vector<std::string> pieces = {"", "<eos>"};  // 0: prints nothing, 1: end of generation
    for (int c = 0x20; c < 0x7F; ++c) pieces.emplace_back(1, static_cast<char>(c));
    for (const char* p : {"{\"", "\":", "\",", "\"}", "}}", ", \"", "true", "null", "false", "12", "ab", " \"", "\\\"",
                          "\\u00", "\xC3\xA9", "\xC3", "\xA9", "\"]", "],", "\n", "\n  ", "red", "\"red\"", "-1", "0.",
                          "e+", "[{", "}]", "\": \"", "\":[", "1,", "ab\"}", "\"x\":1}", "kids", "\"v\"", "\\n"})
        pieces.emplace_back(p);
    return std::make_shared<const TokenTrie>(pieces, std::vector<TokenId>{1});
}

TEST(GrammarMask, ToyVocabularyMatchesBruteForce) {
    const auto trie = toy_vocab();
    for (const char* s : {
             R"({"type": "object", "properties": {"name": {"type": "string", "maxLength": 6}, "n": {"type": "integer",
                "minimum": -5, "maximum": 120}, "ok": {"type": "boolean"}}, "required": ["name"]})",
             R"({"type": "array", "items": {"enum": ["red", "green", null, 12]}, "maxItems": 4})",
             R"({"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"}, "kids": {"type": "array",
                "items": {"$ref": "#/$defs/node"}, "maxItems": 2}}, "required": ["v"]}}, "$ref": "#/$defs/node"})",
             R"({"type": "string", "pattern": "^[a-e]+(,\\d)?$"})",
             R"({"type": "number"})"}) {
        SCOPED_TRACE(s);
        check_masks(trie, schema(s), 12, 40, 7);
    }
    check_masks(trie, Grammar::compile(json_object_grammar()), 12, 40, 9);
}

TEST(GrammarMask, EndOfGenerationOnlyWhenComplete) {
    const auto trie = toy_vocab();
    auto cg = std::make_shared<const CompiledGrammar>(std::make_shared<const Grammar>(schema(R"({"enum": [1, 12]})")), trie);
    Matcher m(cg);
    TokenMask mask;
    m.fill_mask(&mask);
    EXPECT_FALSE(mask.test(1));
    EXPECT_FALSE(m.accept(1));
    EXPECT_FALSE(m.accept(0));  // prints nothing: never allowed
    ASSERT_TRUE(m.accept(2 + ('1' - 0x20)));
    EXPECT_FALSE(m.done());     // "1" is complete, "12" could follow
    m.fill_mask(&mask);
    EXPECT_TRUE(mask.test(1));
    EXPECT_EQ(mask.count(), 2u);  // "2" and <eos>
    EXPECT_TRUE(m.accept(2 + ('2' - 0x20)));
    EXPECT_TRUE(m.done());
}

TEST(GrammarMask, GemmaVocabularyMatchesBruteForce) {
    // The real 256k-piece vocabulary: byte tokens, U+2581 spaces, user-defined whitespace runs.
    const Tokenizer tok = Tokenizer::load(test::golden("vocab/gemma-vocab.gguf"));
    const auto trie = std::make_shared<const TokenTrie>(tok);
    EXPECT_GT(trie->nodes().size(), 256000u);
    check_masks(trie, schema(R"({"type": "object", "properties": {"title": {"type": "string", "maxLength": 20},
                                 "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2},
                                 "year": {"type": "integer", "minimum": 1900, "maximum": 2100}},
                                 "required": ["title", "year"]})"),
                2, 8, 3);
}

}  // namespace
}  // namespace gemma::grammar
