// Test helpers for comparing our logits with llama.cpp's golden ones: readers, argmax, and the README's check.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gemma {
class Model;
namespace ops {
class ThreadPool;
}
}  // namespace gemma

namespace gemma::test {

// Logits of rows [first, n) of `tokens` evaluated in one forward call at positions 0..n-1.
std::vector<float> model_logits(const Model& m, const std::vector<int32_t>& tokens, int32_t first, ops::ThreadPool& pool);

// The golden README's relative-L2 tolerance for a file labelled "f32", "F16", "BF16" or a quantized type: for
// quantized files max(3e-2, 0.25 x the reference's own distance to the F32 reference logits).
double golden_tolerance(const std::string& label, const std::vector<float>& ref, const std::vector<float>& ref_f32);

// Whitespace-separated token ids ("gen:" markers skipped).
std::vector<int32_t> read_ids(const std::string& path);
std::vector<float> read_floats(const std::string& path);
int64_t argmax(const float* x, int64_t n);
// Relative L2 within tol and the same argmax on at least min_same rows; prints one summary line, and on failure
// the rows and tokens that differ most.
void compare_logits(const std::string& what, const std::vector<float>& ours, const std::vector<float>& ref,
                    int64_t n_vocab, double tol, int64_t min_same);

}  // namespace gemma::test
