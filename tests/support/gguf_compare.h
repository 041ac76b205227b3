// Test helper: how two GGUF files differ (metadata values, tensor infos, tensor bytes), for release tests.
#pragma once
#include <set>
#include <string>

namespace gemma::test {

// "" when both files have the same keys with the same values (except `ignore_keys`) in the same order and
// the same tensors with the same bytes; otherwise the first difference, in words.
std::string gguf_difference(const std::string& a, const std::string& b, const std::set<std::string>& ignore_keys = {});
// "" when both files hold the same tensors (names, shapes, types, bytes); metadata is not compared.
std::string tensor_difference(const std::string& a, const std::string& b);

}  // namespace gemma::test
