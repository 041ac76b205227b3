// Out-of-line error helpers so call sites stay small.
#include "core/error.h"

#include <cstdio>
#include <cstdlib>

namespace gemma {

void throw_error(const std::string& msg) { throw Error(msg); }

void assert_fail(const char* expr, const char* file, int line) {
    std::fprintf(stderr, "internal error: %s:%d: check failed: %s\n", file, line, expr);
    std::abort();
}

}  // namespace gemma
