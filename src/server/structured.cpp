// Validates response_format, compiles its grammar once per distinct schema, and shares the vocabulary trie.
#include "server/structured.h"

#include <utility>
#include <vector>

#include "grammar/json_schema.h"
#include "server/openai_schema.h"

namespace gemma::server {

using ojson = nlohmann::ordered_json;

namespace {

// Nesting depth without recursion (a hostile body may nest a million levels; dump() would recurse).
bool deeper_than(const ojson& j, size_t limit) {
    std::vector<std::pair<const ojson*, size_t>> todo = {{&j, 1}};
    while (!todo.empty()) {
        const auto [v, d] = todo.back();
        todo.pop_back();
        if (d > limit) return true;
        if (v->is_structured())
            for (const auto& c : *v) todo.push_back({&c, d + 1});
    }
    return false;
}

}  // namespace

GrammarCache::GrammarCache(std::shared_ptr<const Tokenizer> tok, size_t capacity)
    : tok_(std::move(tok)), capacity_(capacity) {}

std::shared_ptr<const grammar::TokenTrie> GrammarCache::trie() {
    // Built on the first structured request: a 256k vocabulary takes about a second.
    std::lock_guard<std::mutex> lk(mu_);
    if (!trie_) trie_ = std::make_shared<const grammar::TokenTrie>(*tok_);
    return trie_;
}

std::shared_ptr<const grammar::CompiledGrammar> GrammarCache::for_body(std::string_view raw_body) {
    if (raw_body.find("response_format") == std::string_view::npos) return nullptr;
    const ojson body = ojson::parse(raw_body.begin(), raw_body.end(), nullptr, /*allow_exceptions=*/false);
    const auto rf = body.find("response_format");
    if (rf == body.end() || rf->is_null()) return nullptr;
    const std::string p = "response_format";
    if (!rf->is_object()) throw invalid_request("'response_format' must be an object", p, "invalid_type");
    const auto type = rf->find("type");
    if (type == rf->end() || !type->is_string())
        throw invalid_request("'response_format.type' must be \"text\", \"json_object\" or \"json_schema\"", p + ".type");
    const std::string t = type->get<std::string>();
    if (t == "text") return nullptr;
    if (t == "json_object") return for_schema(nullptr);
    if (t != "json_schema")
        throw invalid_request("unsupported response_format.type '" + t + "' (expected text, json_object or json_schema)",
                              p + ".type", "unsupported_value");
    const auto js = rf->find("json_schema");
    if (js == rf->end() || !js->is_object())
        throw invalid_request("'response_format.json_schema' must be an object with 'name' and 'schema'", p + ".json_schema");
    const auto name = js->find("name");
    if (name == js->end() || !name->is_string() || name->get<std::string>().empty())
        throw invalid_request("'response_format.json_schema.name' must be a non-empty string", p + ".json_schema.name");
    if (const auto strict = js->find("strict"); strict != js->end() && !strict->is_boolean() && !strict->is_null())
        throw invalid_request("'response_format.json_schema.strict' must be a boolean", p + ".json_schema.strict");
    const auto schema = js->find("schema");
    if (schema == js->end() || schema->is_null()) return for_schema(nullptr);
    return for_schema(&*schema);
}

std::shared_ptr<const grammar::CompiledGrammar> GrammarCache::for_schema(const ojson* schema) {
    if (schema && deeper_than(*schema, 200))
        throw invalid_request("response_format: the JSON schema is nested more than 200 levels deep",
                              "response_format.json_schema.schema", "unsupported_schema");
    const std::string key = schema ? schema->dump() : std::string("json_object");
    {
        std::lock_guard<std::mutex> lk(mu_);
        if (auto it = items_.find(key); it != items_.end()) {
            lru_.splice(lru_.begin(), lru_, it->second.pos);
            return it->second.g;
        }
    }
    std::shared_ptr<const grammar::Grammar> g;
    try {
        g = std::make_shared<const grammar::Grammar>(
            grammar::Grammar::compile(schema ? grammar::json_schema_grammar(*schema) : grammar::json_object_grammar()));
    } catch (const grammar::GrammarError& e) {
        throw invalid_request(std::string("response_format: ") + e.what(), "response_format.json_schema.schema",
                              "unsupported_schema");
    }
    auto cg = std::make_shared<const grammar::CompiledGrammar>(std::move(g), trie());
    std::lock_guard<std::mutex> lk(mu_);
    if (auto it = items_.find(key); it != items_.end()) return it->second.g;  // compiled meanwhile
    lru_.push_front(key);
    items_.emplace(key, Item{cg, lru_.begin()});
    while (items_.size() > capacity_) {
        items_.erase(lru_.back());
        lru_.pop_back();
    }
    return cg;
}

}  // namespace gemma::server
