// Summary of a GGUF file (architecture, hyperparameters, tokenizer, tensors, sizes) for `gemma info`.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "gguf/gguf.h"

namespace gemma {

// Structured description; `with_tensors` adds the per-tensor list.
nlohmann::json describe_gguf(const GgufFile& f, bool with_tensors = true);
// Human-readable rendering of describe_gguf's output.
std::string render_description(const nlohmann::json& d);
// Bytes as published model cards show them: GiB with two decimals, trailing zeros dropped ("4.96GB", "4.7GB").
std::string card_size(uint64_t bytes);

}  // namespace gemma
