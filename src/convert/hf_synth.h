// Synthetic Hugging Face Gemma checkpoints (random weights, real tokenizer files) for tests and benchmarks.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "convert/safetensors.h"
#include "convert/sentencepiece_model.h"

namespace gemma {

struct HfSynthOptions {
    std::string dir;                 // created if missing
    std::string shape = "tiny";      // a synth_shape() name: tiny, gemma-2b, gemma-7b
    int shards = 1;                  // 1: model.safetensors; n > 1: model-0000k-of-0000n.safetensors + index
    bool with_spm = false;           // also write a tokenizer.model built from the same vocabulary
    std::string vocab_dir;           // tokenizer.json + tokenizer_config.json to copy; empty: default_hf_vocab_dir()
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
