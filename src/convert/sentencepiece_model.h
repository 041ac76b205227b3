// SentencePiece tokenizer.model (a ModelProto protobuf): a small hand-written reader and writer.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gemma {

// sentencepiece_model.proto `SentencePiece.Type`; the numbers equal llama.cpp's token types.
enum class SpType : int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct SpPiece {
    std::string piece;
    float score = 0.0f;
    SpType type = SpType::Normal;
};

// ModelProto.pieces (field 1: {1 piece, 2 score, 3 type}); trainer/normalizer specs and every other
// field are skipped. Throws gemma::Error("<name>: <why>") on truncated or malformed input.
std::vector<SpPiece> parse_sentencepiece_model(const uint8_t* data, size_t size, const std::string& name);
std::vector<SpPiece> load_sentencepiece_model(const std::string& path);

// A ModelProto with these pieces, a BPE trainer_spec with byte fallback and an identity normalizer
// without a dummy prefix (Gemma's settings), so sentencepiece itself can load it too.
std::vector<uint8_t> serialize_sentencepiece_model(const std::vector<SpPiece>& pieces);

}  // namespace gemma
