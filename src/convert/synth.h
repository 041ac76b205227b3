// `gemma synth`: Gemma-architecture GGUFs with random weights and the real vocabulary, for tests, demos and benchmarks.
#pragma once
#include <cstdint>
#include <string>

#include "quant/types.h"

namespace gemma {

struct SynthShape {
    std::string name;
    int64_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
};

// "gemma-2b", "gemma-7b", "tiny" (the golden tiny-7b shape rules: head_dim*n_head != n_embd).
SynthShape synth_shape(const std::string& name);

struct SynthOptions {
    std::string output;
    std::string shape = "tiny";
    std::string vocab_path;      // GGUF with tokenizer.* keys (default: the golden Gemma vocabulary)
    int64_t n_vocab = 0;         // 0: the whole vocabulary; else its first n_vocab tokens
    uint64_t seed = 1;
    TypeId outtype = TypeId::F16;
    int threads = 0;
    bool quiet = false;
};

// Streams the file (bounded memory whatever the shape). Same seed -> same bytes, for any thread count.
void synth_model(const SynthOptions& opt);

}  // namespace gemma
