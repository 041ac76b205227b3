// response_format (json_object, json_schema) -> compiled grammars, cached by schema text for repeat requests.
#pragma once
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>

#include "grammar/matcher.h"
#include "tokenizer/tokenizer.h"

namespace gemma::server {

class GrammarCache {
public:
    explicit GrammarCache(std::shared_ptr<const Tokenizer> tok, size_t capacity = 32);

    // The grammar a request's response_format asks for (parsed from the raw body, so a schema keeps the
    // client's property order), or null for plain text. Throws ApiError 400 for a malformed
    // response_format or a schema feature that is not supported (the message names it).
    std::shared_ptr<const grammar::CompiledGrammar> for_body(std::string_view raw_body);
    // The same for a schema given directly (nullptr: any JSON object).
    std::shared_ptr<const grammar::CompiledGrammar> for_schema(const nlohmann::ordered_json* schema);

private:
    std::shared_ptr<const grammar::TokenTrie> trie();

    std::shared_ptr<const Tokenizer> tok_;
    size_t capacity_;
    std::mutex mu_;
    std::shared_ptr<const grammar::TokenTrie> trie_;
    std::list<std::string> lru_;  // most recent first
    struct Item {
        std::shared_ptr<const grammar::CompiledGrammar> g;
        std::list<std::string>::iterator pos;
    };
    std::unordered_map<std::string, Item> items_;
};

}  // namespace gemma::server
