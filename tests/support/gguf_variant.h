// Test helper: a copy of a GGUF file with keys, tensors or shapes changed, for bad-input and variant tests.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "gguf/gguf.h"

namespace gemma::test {

struct GgufEdit {
    using KvFn = std::function<void(GgufWriter&)>;
    using ShapeFn = std::function<void(const std::string&, std::vector<int64_t>&)>;
    using Added = std::vector<std::pair<std::string, std::vector<int64_t>>>;
    GgufEdit(KvFn k = nullptr, std::string drop = {}, ShapeFn s = nullptr, Added add = {})
        : kv(std::move(k)), drop_tensor(std::move(drop)), shape(std::move(s)), add_tensors(std::move(add)) {}

    KvFn kv;
    std::string drop_tensor;
    // Called with every tensor's name and shape; may change the shape (the data is cut or zero-padded).
    ShapeFn shape;
    // Extra tensors (name, F32 shape), zero-filled, after the source's.
    Added add_tensors;
};

// Writes the edited copy of `src` into this test's temporary directory and returns its path.
std::string write_gguf_variant(const std::string& src, const GgufEdit& e, const std::string& name = "variant.gguf");

}  // namespace gemma::test
