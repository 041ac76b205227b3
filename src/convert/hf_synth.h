// Synthetic Hugging Face Gemma 1/2/3 checkpoints (random weights, real tokenizer files) for tests and benchmarks.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "convert/safetensors.h"
#include "convert/sentencepiece_model.h"

namespace gemma {

// How a checkpoint names its text model.
enum class HfLayout {
    CausalLM,      // {Gemma,Gemma2,Gemma3}ForCausalLM: model.* tensors, a flat config
    Multimodal,    // Gemma3ForConditionalGeneration as transformers 4.5x saves it: text_config with only the
                   // entries that differ from Gemma3TextConfig's defaults, language_model.model.* tensors, a
                   // small vision tower, vocab_size 64 rows past the tokenizer (262208 for 262144)
    MultimodalV5,  // the same as transformers 5 saves it: model.language_model.* tensors, layer_types and
                   // rope_parameters instead of sliding_window_pattern, rope_theta and rope_scaling
};

struct HfSynthOptions {
    std::string dir;                 // created if missing
    std::string shape = "tiny";      // a synth_shape() name of any family: tiny, gemma-2b, gemma2-2b, gemma3-1b, ...
    HfLayout layout = HfLayout::CausalLM;
    int shards = 1;                  // 1: model.safetensors; n > 1: model-0000k-of-0000n.safetensors + index
    bool with_spm = false;           // tokenizer files: also write a tokenizer.model built from the same vocabulary
    // Tokenizer source: a directory with tokenizer.json + tokenizer_config.json to copy, or a GGUF vocabulary
    // that becomes tokenizer.model + tokenizer_config.json (as Gemma 3 ships them). Neither: golden/vocab/hf
    // for the families with Gemma 1's vocabulary, else the family's vocabulary GGUF (default_synth_vocab).
    std::string vocab_dir;
    std::string vocab_gguf;
    int64_t n_vocab = 0;             // GGUF vocabularies only: keep the first n_vocab tokens (0: all)
    StDtype dtype = StDtype::BF16;
    uint64_t seed = 1;
    int threads = 0;                 // 0: all cores
    bool quiet = false;
};

// golden/vocab/hf next to the project (or $GEMMA_HF_VOCAB).
std::string default_hf_vocab_dir();

// Writes config.json, generation_config.json, the tokenizer files and the weights, streamed (bounded
// memory for any shape). Same options, same bytes.
void write_hf_checkpoint(const HfSynthOptions& opt);

// SentencePiece pieces equivalent to a Gemma tokenizer.json: byte pieces BYTE, the unk token UNKNOWN,
// special added tokens CONTROL, other added tokens USER_DEFINED (all score 0), every other piece
// NORMAL with score -id (ids are in score order in a SentencePiece BPE model).
std::vector<SpPiece> sentencepiece_pieces_from_hf(const std::string& vocab_dir);

}  // namespace gemma
