// config.json and tokenizer files of synthetic Hugging Face checkpoints (hf_synth.cpp writes the weights).
#pragma once
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "arch/arch.h"
#include "convert/hf_synth.h"

namespace gemma {

// Writes the tokenizer files into opt.dir (copied HF files, or tokenizer.model + tokenizer_config.json from a
// GGUF vocabulary) and returns the tokenizer's size.
int64_t write_hf_tokenizer_files(const HfSynthOptions& opt, const ArchDesc& a);

// config.json of a checkpoint of this family and shape in the given layout, its embedding having
// vocab_size rows for a tokenizer of n_tokens.
nlohmann::json hf_synth_config(const ArchDesc& a, const ModelShape& s, HfLayout layout, int64_t vocab_size,
                               int64_t n_tokens, const char* torch_dtype);

// The tensor name a layout gives a text-model tensor ("model.norm.weight" -> "language_model.model.norm.weight").
std::string hf_layout_name(HfLayout layout, const std::string& text_name);

void write_text_file(const std::string& path, const std::string& text);

}  // namespace gemma
