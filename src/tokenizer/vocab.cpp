// Loads and validates a SentencePiece vocabulary from GGUF metadata (llama.cpp's SPM loader semantics).
#include "tokenizer/vocab.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "gguf/gguf.h"

namespace gemma {
namespace {

uint64_t hash_text_impl(std::string_view s) {
    // Eight bytes per step (token texts average a few bytes), then Murmur3's finaliser: the low bits
    // pick the slot and the high bits are the tag, so both must be well mixed.
    const char* p = s.data();
    size_t n = s.size();
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
    while (n > 0) {
        uint64_t w = 0;
        const size_t k = n < 8 ? n : 8;
        std::memcpy(&w, p, k);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        p += k;
        n -= k;
    }
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

// Stop strings llama.cpp matches by token text when it builds the EOG set. "</s>" is why Gemma's
// HTML strike-through tag (id 213) ends generation in llama.cpp; we keep that for compatibility.
constexpr const char* kEogTexts[] = {"<end_of_turn>", "</s>",  "<|eot_id|>",      "<|im_end|>",
                                     "<|end|>",       "<EOT>", "<|endoftext|>",   "<|end_of_text|>"};
constexpr const char* kEotTexts[] = {"<end_of_turn>", "<|eot_id|>", "<|im_end|>", "<|end|>", "<EOT>"};

[[noreturn]] void fail(const std::string& name, const std::string& why) { throw_error(name + ": " + why); }

const GgufValue& need_array(const GgufFile& f, const char* key) {
    const GgufValue* v = f.find(key);
    if (!v) fail(f.path(), std::string("vocabulary key '") + key + "' is missing");
    if (!v->is_array())
        fail(f.path(), std::string("vocabulary key '") + key + "' must be an array, found " + gguf_type_name(v->type));
    return *v;
}

bool integer_type(GgufType t) {
    switch (t) {
        case GgufType::UINT8: case GgufType::INT8: case GgufType::UINT16: case GgufType::INT16:
        case GgufType::UINT32: case GgufType::INT32: case GgufType::UINT64: case GgufType::INT64: return true;
        default: return false;
    }
}

// Element i of an integer array widened to int64 (token types are int32 in practice, but any width is valid GGUF).
int64_t int_elem(const GgufValue& v, uint64_t i) {
    switch (v.elem_type) {
        case GgufType::UINT8: return v.elem<uint8_t>(i);
        case GgufType::INT8: return v.elem<int8_t>(i);
        case GgufType::UINT16: return v.elem<uint16_t>(i);
        case GgufType::INT16: return v.elem<int16_t>(i);
        case GgufType::UINT32: return v.elem<uint32_t>(i);
        case GgufType::INT32: return v.elem<int32_t>(i);
        case GgufType::UINT64: return static_cast<int64_t>(v.elem<uint64_t>(i));
        default: return v.elem<int64_t>(i);
    }
}

// A special id key: absent keeps the default; a negative value (some files write -1) means "none".
void read_special(const GgufFile& f, const char* key, TokenId* out, int64_t n_vocab, bool optional) {
    const GgufValue* v = f.find(key);
    if (!v) return;
    if (!v->is_integer()) fail(f.path(), std::string("'") + key + "' must be an integer, found " + gguf_type_name(v->type));
    const bool is_signed = v->type == GgufType::INT8 || v->type == GgufType::INT16 || v->type == GgufType::INT32 ||
                           v->type == GgufType::INT64;
    const int64_t id = is_signed ? v->i64 : (v->u64 > INT64_MAX ? INT64_MAX : static_cast<int64_t>(v->u64));
    if (id < 0 || id >= n_vocab) {
        // A missing padding token is harmless, so files that write an out-of-range pad id still load.
        if (optional) { *out = kNoToken; return; }
        fail(f.path(), std::string("'") + key + "' = " + std::to_string(id) + " is outside the vocabulary (size " +
                           std::to_string(n_vocab) + ")");
    }
    *out = static_cast<TokenId>(id);
}

}  // namespace

const char* token_type_name(TokenType t) {
    switch (t) {
        case TokenType::Undefined: return "UNDEFINED";
        case TokenType::Normal: return "NORMAL";
        case TokenType::Unknown: return "UNKNOWN";
        case TokenType::Control: return "CONTROL";
        case TokenType::UserDefined: return "USER_DEFINED";
        case TokenType::Unused: return "UNUSED";
        case TokenType::Byte: return "BYTE";
    }
    return "?";
}

Vocab Vocab::load(const std::string& path) { return from_gguf(*GgufFile::open(path)); }

Vocab Vocab::from_gguf(const GgufFile& f) {
    const std::string& name = f.path();
    const GgufValue* model = f.find("tokenizer.ggml.model");
    if (!model) fail(name, "no vocabulary: key 'tokenizer.ggml.model' is missing");
    if (model->type != GgufType::STRING)
        fail(name, std::string("'tokenizer.ggml.model' must be a string, found ") + gguf_type_name(model->type));
    if (model->str != "llama")
        fail(name, "tokenizer.ggml.model is '" + model->str +
                       "'; only 'llama' (SentencePiece) vocabularies are supported");

    const GgufValue& toks = need_array(f, "tokenizer.ggml.tokens");
    const GgufValue& scores = need_array(f, "tokenizer.ggml.scores");
    const GgufValue& types = need_array(f, "tokenizer.ggml.token_type");
    if (toks.elem_type != GgufType::STRING)
        fail(name, std::string("'tokenizer.ggml.tokens' must be an array of strings, found an array of ") +
                       gguf_type_name(toks.elem_type));
    if (scores.elem_type != GgufType::FLOAT32 && scores.elem_type != GgufType::FLOAT64)
        fail(name, std::string("'tokenizer.ggml.scores' must be an array of float32, found an array of ") +
                       gguf_type_name(scores.elem_type));
    if (!integer_type(types.elem_type))
        fail(name, std::string("'tokenizer.ggml.token_type' must be an array of int32, found an array of ") +
                       gguf_type_name(types.elem_type));
    const uint64_t n = toks.count;
    if (n == 0) fail(name, "'tokenizer.ggml.tokens' is empty");
    if (n > static_cast<uint64_t>(INT32_MAX)) fail(name, "vocabulary has more than 2^31 tokens");
    if (scores.count != n || types.count != n)
        fail(name, "vocabulary arrays disagree in length: tokens " + std::to_string(n) + ", scores " +
                       std::to_string(scores.count) + ", token_type " + std::to_string(types.count));

    std::vector<float> sc(n);
    std::vector<TokenType> ty(n);
    for (uint64_t i = 0; i < n; ++i) {
        sc[i] = scores.elem_type == GgufType::FLOAT32 ? scores.elem<float>(i)
                                                     : static_cast<float>(scores.elem<double>(i));
        const int64_t t = int_elem(types, i);
        if (t < 0 || t > 6)
            fail(name, "token_type[" + std::to_string(i) + "] = " + std::to_string(t) + " is not a valid token type");
        ty[i] = static_cast<TokenType>(t);
    }

    Specials sp;
    const int64_t nv = static_cast<int64_t>(n);
    // Defaults that do not fit this vocabulary mean "none" rather than an error: the file never named them.
    for (TokenId* d : {&sp.bos, &sp.eos, &sp.unk})
        if (*d >= nv) *d = kNoToken;
    read_special(f, "tokenizer.ggml.bos_token_id", &sp.bos, nv, false);
    read_special(f, "tokenizer.ggml.eos_token_id", &sp.eos, nv, false);
    read_special(f, "tokenizer.ggml.unknown_token_id", &sp.unk, nv, false);
    read_special(f, "tokenizer.ggml.padding_token_id", &sp.pad, nv, true);
    read_special(f, "tokenizer.ggml.eot_token_id", &sp.eot, nv, false);
    sp.add_bos = f.get_bool("tokenizer.ggml.add_bos_token", sp.add_bos);
    sp.add_eos = f.get_bool("tokenizer.ggml.add_eos_token", sp.add_eos);
    sp.add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix", sp.add_space_prefix);

    Vocab v;
    v.texts_ = toks.strs;
    v.scores_ = std::move(sc);
    v.types_ = std::move(ty);
    v.sp_ = sp;
    v.chat_template_ = f.get_string("tokenizer.chat_template", "");
    v.architecture_ = f.get_string("general.architecture", "");
    v.build(name);
    return v;
}

Vocab Vocab::from_arrays(std::vector<std::string> texts, std::vector<float> scores, std::vector<TokenType> types,
                         const Specials& sp, const std::string& name) {
    if (texts.empty()) fail(name, "vocabulary is empty");
    if (scores.size() != texts.size() || types.size() != texts.size())
        fail(name, "vocabulary arrays disagree in length: tokens " + std::to_string(texts.size()) + ", scores " +
                       std::to_string(scores.size()) + ", token_type " + std::to_string(types.size()));
    Vocab v;
    v.texts_ = std::move(texts);
    v.scores_ = std::move(scores);
    v.types_ = std::move(types);
    v.sp_ = sp;
    for (TokenId* id : {&v.sp_.bos, &v.sp_.eos, &v.sp_.unk, &v.sp_.pad, &v.sp_.eot})
        if (*id >= v.size() || *id < 0) *id = kNoToken;
    v.build(name);
    return v;
}

void Vocab::build(const std::string& name) {
    name_ = name;
    const size_t n = texts_.size();

    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, kEmptySlot);
    slot_mask_ = cap - 1;
    for (size_t i = 0; i < n; ++i) {
        if (texts_[i].empty()) continue;
        // Keep the first of duplicate texts so lookups are deterministic.
        if (find(texts_[i]) != kNoToken) continue;
        const uint64_t h = hash_text_impl(texts_[i]);
        uint64_t s = h & slot_mask_;
        while (slots_[s] != kEmptySlot) s = (s + 1) & slot_mask_;
        slots_[s] = (h & 0xFFFFFFFF00000000ull) | static_cast<uint32_t>(i);
    }

    control_.assign(n, 0);
    for (size_t i = 0; i < n; ++i) control_[i] = types_[i] == TokenType::Control;

    if (sp_.eot == kNoToken)
        for (const char* t : kEotTexts)
            if (TokenId id = find(t); id != kNoToken) { sp_.eot = id; break; }

    eog_.clear();
    auto add_eog = [&](TokenId id) {
        if (id != kNoToken && std::find(eog_.begin(), eog_.end(), id) == eog_.end()) eog_.push_back(id);
    };
    add_eog(sp_.eos);
    add_eog(sp_.eot);
    for (const char* t : kEogTexts) {
        const TokenId id = find(t);
        if (id == kNoToken) continue;
        add_eog(id);
        // llama.cpp gives stop tokens the CONTROL attribute: they render empty unless special output is
        // asked for, and parse_special=false no longer splits them out of text.
        control_[static_cast<size_t>(id)] = 1;
    }
    if (sp_.eot != kNoToken) control_[static_cast<size_t>(sp_.eot)] = 1;
    std::sort(eog_.begin(), eog_.end());

    specials_.clear();
    for (size_t i = 0; i < n; ++i) {
        const TokenType t = types_[i];
        if (texts_[i].empty()) continue;
        if (control_[i] || t == TokenType::UserDefined || t == TokenType::Unknown)
            specials_.push_back(static_cast<TokenId>(i));
    }
    // Longest first, ties by id (the order a stable sort of the ascending ids gives; std::stable_sort's
    // temporary buffer trips GCC 12's ASan new/free mismatch false positive).
    std::sort(specials_.begin(), specials_.end(), [&](TokenId a, TokenId b) {
        const size_t la = text(a).size(), lb = text(b).size();
        return la != lb ? la > lb : a < b;
    });

    for (int b = 0; b < 256; ++b) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "<0x%02X>", b);
        TokenId id = find(hex);
        if (id == kNoToken) {
            const char c = static_cast<char>(b);
            id = find(std::string_view(&c, 1));
        }
        byte_to_token_[static_cast<size_t>(b)] = id != kNoToken ? id : sp_.unk;
    }
}

uint64_t Vocab::hash(std::string_view text) { return hash_text_impl(text); }

TokenId Vocab::find_hashed(std::string_view s, uint64_t h) const {
    if (s.empty() || slots_.empty()) return kNoToken;
    const uint64_t tag = h & 0xFFFFFFFF00000000ull;
    for (uint64_t i = h & slot_mask_;; i = (i + 1) & slot_mask_) {
        const uint64_t slot = slots_[i];
        if (slot == kEmptySlot) return kNoToken;
        // The hash tag in the slot rejects almost every non-match without touching the token's string.
        if ((slot & 0xFFFFFFFF00000000ull) != tag) continue;
        const auto id = static_cast<TokenId>(static_cast<uint32_t>(slot));
        if (texts_[static_cast<size_t>(id)] == s) return id;
    }
}

int Vocab::token_byte(TokenId id) const {
    if (!valid(id) || type(id) != TokenType::Byte) return -1;
    const std::string& t = text(id);
    if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
        int v = 0;
        for (int k = 3; k < 5; ++k) {
            const char c = t[static_cast<size_t>(k)];
            const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                   : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0) return -1;
            v = v * 16 + d;
        }
        return v;
    }
    // Some vocabularies store a byte token as the raw byte itself.
    return t.size() == 1 ? static_cast<uint8_t>(t[0]) : -1;
}

bool Vocab::is_eog(TokenId id) const { return std::binary_search(eog_.begin(), eog_.end(), id); }

}  // namespace gemma
