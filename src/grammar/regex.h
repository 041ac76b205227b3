// JSON string bodies as grammar expressions: any character, a character set, and simple regular expressions.
#pragma once
#include <string_view>

#include "grammar/expr.h"

namespace gemma::grammar {

// A multi-byte UTF-8 character (well-formed, no surrogates); optionally without U+2028/U+2029.
ExprPtr utf8_multibyte(bool no_line_separators = false);
// One character of a JSON string's body as written: an unescaped character or an escape sequence
// (\uXXXX never a lone surrogate half).
ExprPtr json_string_char();
// Characters of `ascii` (plus every non-ASCII one when `non_ascii`) as a JSON string body writes them:
// quote, backslash and control characters escaped.
ExprPtr json_chars(const ByteSet& ascii, bool non_ascii);

// The body of a JSON string (without its quotes) whose decoded value matches an ECMAScript `pattern`
// (unanchored unless it starts with ^ / ends with $, as JSON Schema says). Supports literals, ., classes
// [...] with ASCII ranges, \d \w \s and their negations, groups, |, * + ? {n} {n,} {n,m}. Throws
// GrammarError naming what is not supported (backreferences, lookaround, \b, anchors in the middle, ...).
ExprPtr json_pattern(std::string_view pattern);

}  // namespace gemma::grammar
