// `gemma convert`: a Hugging Face Gemma 1/2/3 checkpoint to GGUF, as llama.cpp's convert_hf_to_gguf.py writes it.
#pragma once
#include <cstdint>
#include <string>

#include "convert/safetensors.h"
#include "quant/types.h"

namespace gemma {

struct ConvertOptions {
    std::string input_dir;
    std::string output;
    TypeId outtype = TypeId::BF16;  // BF16 (lossless for Gemma's bf16 weights), F16 or F32
    std::string name;               // general.name; empty: the checkpoint directory's name (the reference's fallback)
    bool quiet = false;             // no per-tensor progress lines (warnings are still printed)
};

struct ConvertStats {
    size_t n_tensors = 0;
    int64_t n_params = 0;
    uint64_t f16_overflows = 0;     // finite values that became +-inf in an F16 output
    std::string vocab_source;       // tokenizer.model or tokenizer.json
    std::string arch;               // general.architecture written ("gemma3")
    size_t n_other_tower = 0;       // tensors of a multimodal checkpoint's other towers, left out
};

// Streams the conversion (one tensor batch in memory at a time). Every input problem throws
// gemma::Error naming the file and the reason, before or while writing; the output only appears
// under its final name once complete.
ConvertStats convert_hf(const ConvertOptions& opt);

// Converts n source elements to `out` (F32, F16 or BF16), adding 1 first when `add_one` (norm
// weights) exactly as PyTorch does in the source dtype's arithmetic. Returns the number of finite
// values that overflowed to infinity.
uint64_t convert_elements(const uint8_t* src, StDtype st, int64_t n, bool add_one, TypeId out, uint8_t* dst);

// llama.cpp's general.size_label for a parameter count ("2.5B", "66M").
std::string size_label(int64_t n_params);

}  // namespace gemma
