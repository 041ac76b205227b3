// Test helpers for comparing our logits with llama.cpp's golden ones: readers, argmax, and the README's check.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gemma::test {

// Whitespace-separated token ids ("gen:" markers skipped).
std::vector<int32_t> read_ids(const std::string& path);
std::vector<float> read_floats(const std::string& path);
int64_t argmax(const float* x, int64_t n);
// Relative L2 within tol and the same argmax on at least min_same rows; prints one summary line, and on failure
// the rows and tokens that differ most.
void compare_logits(const std::string& what, const std::vector<float>& ours, const std::vector<float>& ref,
                    int64_t n_vocab, double tol, int64_t min_same);

}  // namespace gemma::test
