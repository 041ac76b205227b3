// One error policy: input problems throw gemma::Error with a clear "what, where, why"; invariants use GEMMA_ASSERT.
#pragma once
#include <stdexcept>
#include <string>

namespace gemma {

// Thrown for bad user/file/network input. The message is complete and meant for the user.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

[[noreturn]] void throw_error(const std::string& msg);
[[noreturn]] void assert_fail(const char* expr, const char* file, int line);

}  // namespace gemma

// Always on (also in release builds): an internal invariant, not an input check.
#define GEMMA_ASSERT(cond) \
    do { if (!(cond)) ::gemma::assert_fail(#cond, __FILE__, __LINE__); } while (0)
