// `gemma quantize` as a library call: a GGUF in, a ladder-type GGUF out, streamed tensor by tensor.
#pragma once
#include <cstdint>
#include <string>

#include "quant/ladder.h"

namespace gemma {

struct QuantizeOptions {
    std::string input;
    std::string output;
    Ftype ftype = Ftype::Q4_K_M;
    std::string imatrix_path;      // empty: none
    int threads = 0;               // 0: all hardware threads
    bool allow_requantize = false; // accept already-quantized inputs (quality loss)
    bool quiet = false;            // no per-tensor progress lines on stderr
};

struct QuantizeStats {
    int n_tensors = 0;
    uint64_t input_bytes = 0;   // tensor bytes read
    uint64_t output_bytes = 0;  // tensor bytes written
    double seconds = 0;
};

// Throws gemma::Error for bad input (unreadable file, requantization without permission, missing imatrix).
QuantizeStats quantize_model(const QuantizeOptions& opt);

}  // namespace gemma
