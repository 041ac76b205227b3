// `gemma synth`: Gemma-family GGUFs with random weights and the real vocabulary, for tests, demos and benchmarks.
#pragma once
#include <cstdint>
#include <string>

#include "arch/arch.h"
#include "convert/gguf_hparams.h"
#include "quant/types.h"

namespace gemma {

// A shape of any family by name (arch/: gemma-2b, gemma2-9b, gemma3-1b, tiny, tiny-g3, ...) and its family.
// Throws gemma::Error listing the known names.
const ModelShape& synth_shape(const std::string& name, const ArchDesc** arch = nullptr);

// The keys a synthetic model of this shape gets: the family's real settings (RoPE bases, soft-caps,
// default sliding pattern) with the shape's sizes, window and RoPE scaling.
GgufHparams synth_hparams(const ArchDesc& a, const ModelShape& s);

// The family's vocabulary for synthetic models: golden/<ArchDesc::synth_vocab> next to the project
// (or under $GEMMA_GOLDEN_DIR).
std::string default_synth_vocab(const ArchDesc& a);

struct SynthOptions {
    std::string output;
    std::string shape = "tiny";
    std::string vocab_path;      // GGUF with tokenizer.* keys; empty: default_synth_vocab of the shape's family
    int64_t n_vocab = 0;         // 0: the whole vocabulary; else its first n_vocab tokens
    uint64_t seed = 1;
    TypeId outtype = TypeId::F16;
    int threads = 0;
    bool quiet = false;
};

// Streams the file (bounded memory whatever the shape). Same seed -> same bytes, for any thread count.
void synth_model(const SynthOptions& opt);

}  // namespace gemma
