// JSON Schema -> grammar of the JSON texts that validate against it (the subset structured outputs need).
#pragma once
#include <nlohmann/json.hpp>

#include "grammar/expr.h"

namespace gemma::grammar {

// Supported: type (or a list of types), properties, required, additionalProperties, items, minItems,
// maxItems, enum, const, anyOf, allOf of one schema, $ref to "#" or into $defs/definitions, string
// pattern (simple regexes), minLength, maxLength, integer minimum/maximum/exclusiveMinimum/
// exclusiveMaximum; annotations (title, description, default, examples, ...) are ignored. Any other
// keyword throws GrammarError naming it and where it is ("'oneOf' at #/properties/a is not supported").
// Properties are generated in the schema's order (pass an ordered_json to keep the client's order);
// with `properties` present, additional properties are never generated (still valid when allowed).
// Between tokens the output may have a space, or a newline and up to 20 spaces/tabs of indent; numbers
// have at most 16 digits per part; nesting is limited to 512 levels.
GrammarBuilder json_schema_grammar(const nlohmann::ordered_json& schema);

// Any JSON object (OpenAI's response_format {"type": "json_object"}).
GrammarBuilder json_object_grammar();

}  // namespace gemma::grammar
