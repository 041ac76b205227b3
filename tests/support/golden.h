// Test helpers: where the golden data lives (fails loudly when missing) and comparison metrics.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gemma::test {

// ../shared/golden relative to the project root, or $GEMMA_GOLDEN_DIR. Aborts the test run when missing.
const std::string& golden_dir();
std::string golden(const std::string& rel);  // golden_dir() + "/" + rel
// A fresh, empty temporary directory for this test (removed at exit).
std::string temp_dir();
std::vector<uint8_t> read_file_bytes(const std::string& path);
void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes);
// sqrt(sum (a-b)^2 / sum b^2)
double rel_l2(const float* a, const float* ref, size_t n);
// Run the gemma binary with arguments; returns exit code; captures stdout/stderr into the strings.
int run_gemma(const std::string& args, std::string* out = nullptr, std::string* err = nullptr);

}  // namespace gemma::test
