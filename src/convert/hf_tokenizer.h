// The GGUF vocabulary of a Hugging Face Gemma checkpoint, built the way convert_hf_to_gguf.py builds it.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

namespace gemma {

struct HfVocab {
    std::string source;                      // the file the pieces came from (tokenizer.model or tokenizer.json)
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<int32_t> types;              // llama.cpp token types (1 normal .. 6 byte)
    // GGUF key suffix ("bos", "eos", "unknown", "padding", ...) -> id, in the order the converter writes them.
    std::vector<std::pair<std::string, uint32_t>> special_ids;
    std::vector<std::pair<std::string, bool>> add_flags;  // "bos"/"eos" -> tokenizer.ggml.add_<x>_token
    bool has_chat_template = false;
    std::string chat_template;
    std::vector<std::string> warnings;       // non-fatal oddities, printed by the command
};

struct HfVocabSources {
    std::string dir;
    int64_t vocab_size = 0;                         // config.json vocab_size: the arrays get exactly this length,
    bool size_from_tokenizer = false;               // or the tokenizer's own size (<= vocab_size; Gemma 3)
    std::map<std::string, int64_t> config_ids;      // config.json "<type>_token_id"
    std::map<std::string, int64_t> generation_ids;  // generation_config.json "<type>_token_id"
};

// Pieces from tokenizer.model when present (as llama.cpp does), else from tokenizer.json; then the
// added tokens of tokenizer_config.json, special ids, add_bos/add_eos and the chat template.
// Throws gemma::Error naming the file on a missing tokenizer or malformed input.
HfVocab load_hf_vocab(const HfVocabSources& src);

// tokenizer.json parsed without its merge list (most of the file, and never needed here).
nlohmann::json parse_tokenizer_json(const std::string& path);

// llama.cpp's `does_token_look_special` (added tokens some models forget to mark special).
bool token_looks_special(const std::string& text);

}  // namespace gemma
