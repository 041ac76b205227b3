// Builds the tokenizer.ggml.* arrays and special ids from tokenizer.model / tokenizer.json + tokenizer_config.json.
#include "convert/hf_tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "convert/sentencepiece_model.h"
#include "core/error.h"

namespace gemma {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6;

bool is_file(const std::string& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec);
}

json parse_json(const std::string& path, bool drop_merges = false) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_error(path + ": cannot open");
    // tokenizer.json's merge list is most of the file (580k strings for Gemma) and the vocabulary does
    // not need it (see the score rule below): drop it while parsing instead of holding it as a DOM.
    json::parser_callback_t cb = [drop_merges](int depth, json::parse_event_t ev, json& parsed) {
        return !(drop_merges && ev == json::parse_event_t::key && depth == 2 && parsed == "merges");
    };
    try {
        return json::parse(in, cb);
    } catch (const json::exception& e) {
        throw_error(path + ": not valid JSON: " + e.what());
    }
}

bool is_byte_token(const std::string& t) {
    auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); };
    return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && hex(t[3]) && hex(t[4]) && t[5] == '>';
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
    return s;
}

// The text of a tokenizer_config "<x>_token" entry: a plain string or an AddedToken object.
bool token_content(const json& e, std::string* out) {
    if (e.is_string()) return *out = e.get<std::string>(), true;
    if (e.is_object() && e.contains("content") && e["content"].is_string()) return *out = e["content"].get<std::string>(), true;
    return false;
}

}  // namespace

nlohmann::json parse_tokenizer_json(const std::string& path) { return parse_json(path, true); }

bool token_looks_special(const std::string& t) {
    auto starts = [&](const char* s) { return t.rfind(s, 0) == 0; };
    auto ends = [&](const char* s) {
        const size_t l = std::char_traits<char>::length(s);
        return t.size() >= l && t.compare(t.size() - l, l, s) == 0;
    };
    if (t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]") return true;
    if (starts("<|") && ends("|>")) return true;
    if (starts("<\xEF\xBD\x9C") && ends("\xEF\xBD\x9C>")) return true;  // fullwidth bars (deepseek-coder)
    return starts("<unused") && ends(">");
}

HfVocab load_hf_vocab(const HfVocabSources& src) {
    const std::string spm_path = src.dir + "/tokenizer.model", tj_path = src.dir + "/tokenizer.json",
                      tc_path = src.dir + "/tokenizer_config.json";
    const bool have_spm = is_file(spm_path), have_tj = is_file(tj_path);
    if (!have_spm && !have_tj) throw_error(src.dir + ": no tokenizer.model or tokenizer.json (the vocabulary is required)");
    const json tj = have_tj ? parse_json(tj_path, true) : json();
    if (have_tj && !tj.is_object()) throw_error(tj_path + ": not a JSON object");
    const json tj_added = have_tj && tj.contains("added_tokens") && tj["added_tokens"].is_array() ? tj["added_tokens"] : json::array();
    // The reference converter reads the pieces from tokenizer.model whenever it exists.
    const std::vector<SpPiece> pieces = have_spm ? load_sentencepiece_model(spm_path) : std::vector<SpPiece>();

    int64_t n = src.vocab_size;
    if (src.size_from_tokenizer) {
        // The tokenizer's own size: Gemma 3's 262144 pieces, not the embedding's 262208 rows.
        int64_t own = static_cast<int64_t>(pieces.size());
        if (!have_spm && tj.contains("model") && tj["model"].is_object() && tj["model"].contains("vocab") &&
            tj["model"]["vocab"].is_object())
            for (auto it = tj["model"]["vocab"].begin(); it != tj["model"]["vocab"].end(); ++it)
                if (it.value().is_number_integer()) own = std::max(own, it.value().get<int64_t>() + 1);
        if (own > 0) n = std::min(n, own);
    }
    HfVocab v;
    // llama.cpp's starting point: every id a placeholder, so holes in a vocabulary stay well-formed.
    v.tokens.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v.tokens[static_cast<size_t>(i)] = "[PAD" + std::to_string(i) + "]";
    v.scores.assign(static_cast<size_t>(n), -10000.0f);
    v.types.assign(static_cast<size_t>(n), kUnused);

    if (have_spm) {
        v.source = spm_path;
        if (static_cast<int64_t>(pieces.size()) > n)
            throw_error(spm_path + ": " + std::to_string(pieces.size()) + " pieces but config.json vocab_size is " +
                        std::to_string(n));
        for (size_t i = 0; i < pieces.size(); ++i) {
            const SpPiece& p = pieces[i];
            v.tokens[i] = p.piece;
            v.scores[i] = p.score;
            // USER_DEFINED pieces become NORMAL here, as sentencepiece's Is* predicates leave them.
            v.types[i] = p.type == SpType::Unknown ? kUnknown : p.type == SpType::Control ? kControl
                       : p.type == SpType::Unused ? kUnused : p.type == SpType::Byte ? kByte : kNormal;
        }
    } else {
        v.source = tj_path;
        if (!tj.contains("model") || !tj["model"].is_object()) throw_error(tj_path + ": no \"model\" object");
        const json& m = tj["model"];
        const std::string type = m.value("type", "");
        if (type != "BPE")
            throw_error(tj_path + ": tokenizer model type '" + type + "' is not supported (Gemma's is BPE with byte fallback)");
        if (!m.contains("vocab") || !m["vocab"].is_object()) throw_error(tj_path + ": model.vocab is not an object");
        const std::string unk = m.contains("unk_token") && m["unk_token"].is_string() ? m["unk_token"].get<std::string>() : "";
        for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
            if (!it.value().is_number_integer()) throw_error(tj_path + ": vocab entry '" + it.key() + "' has no integer id");
            const int64_t id = it.value().get<int64_t>();
            if (id < 0 || id >= n)
                throw_error(tj_path + ": token id " + std::to_string(id) + " is outside config.json vocab_size " + std::to_string(n));
            const auto i = static_cast<size_t>(id);
            v.tokens[i] = it.key();
            // Scores from tokenizer.json alone. A SentencePiece BPE model is stored in descending score
            // order, and HF's converter emits the merges ordered by the merged piece's score, so -id
            // ranks every merge exactly as the merge list does: llama.cpp's highest-score-first SPM
            // merging then reproduces HF's lowest-rank-first BPE. (Gemma's one exception, the tab runs
            // 255969..255998, listed first among the merges but last by id, only ever merge with each
            // other, so the relative order against other merges cannot change a result.) Byte pieces
            // and <unk> keep score 0 as in the SentencePiece model; this is golden/vocab's rule too.
            if (is_byte_token(it.key())) {
                v.types[i] = kByte;
                v.scores[i] = 0.0f;
            } else if (!unk.empty() && it.key() == unk) {
                v.types[i] = kUnknown;
                v.scores[i] = 0.0f;
            } else {
                v.types[i] = kNormal;
                v.scores[i] = -static_cast<float>(id);
            }
        }
    }

    // added_tokens.json (rare for Gemma): plain user-defined tokens, as the reference converter types them.
    if (is_file(src.dir + "/added_tokens.json")) {
        const json at = parse_json(src.dir + "/added_tokens.json");
        if (at.is_object())
            for (auto it = at.begin(); it != at.end(); ++it) {
                if (!it.value().is_number_integer()) continue;
                const int64_t id = it.value().get<int64_t>();
                if (id < 0 || id >= n) {
                    v.warnings.push_back("added_tokens.json: ignoring token " + std::to_string(id) + " (out of range)");
                    continue;
                }
                v.tokens[static_cast<size_t>(id)] = it.key();
                v.scores[static_cast<size_t>(id)] = -1000.0f;
                v.types[static_cast<size_t>(id)] = kUserDefined;
            }
    }

    const json tc = is_file(tc_path) ? parse_json(tc_path) : json::object();
    if (!tc.is_object()) throw_error(tc_path + ": not a JSON object");
    // tokenizer_config.json's added_tokens_decoder; tokenizer.json's added_tokens list carries the same
    // records and stands in for it when converting from tokenizer.json with an older config.
    std::vector<std::pair<int64_t, json>> added;
    if (tc.contains("added_tokens_decoder") && tc["added_tokens_decoder"].is_object()) {
        for (auto it = tc["added_tokens_decoder"].begin(); it != tc["added_tokens_decoder"].end(); ++it) {
            int64_t id = -1;
            try {
                size_t used = 0;
                id = std::stoll(it.key(), &used);
                if (used != it.key().size()) id = -1;
            } catch (const std::exception&) {
            }
            if (id < 0) throw_error(tc_path + ": added_tokens_decoder key '" + it.key() + "' is not a token id");
            added.emplace_back(id, it.value());
        }
    } else if (!have_spm) {
        for (const json& a : tj_added)
            if (a.is_object() && a.contains("id") && a["id"].is_number_integer()) added.emplace_back(a["id"].get<int64_t>(), a);
    }
    for (const auto& [id, data] : added) {
        if (id >= n && src.size_from_tokenizer) {
            // Gemma 3's <image_soft_token> (262144) lies past the tokenizer, as llama.cpp finds too.
            v.warnings.push_back(tc_path + ": ignoring added token " + std::to_string(id) + " (outside the tokenizer's " +
                                 std::to_string(n) + " tokens)");
            continue;
        }
        if (id >= n)
            throw_error(tc_path + ": added token " + std::to_string(id) + " is outside config.json vocab_size " + std::to_string(n));
        const auto i = static_cast<size_t>(id);
        if (!data.is_object() || !data.contains("content") || !data["content"].is_string())
            throw_error(tc_path + ": added token " + std::to_string(id) + " has no \"content\" string");
        // Deliberate difference: llama.cpp retypes <unk> (special: true) as CONTROL with score -1000;
        // we keep the unknown piece UNKNOWN with its own score, as golden/vocab/gemma-vocab.gguf and
        // sentencepiece do. Both loaders treat the two alike for splitting and rendering.
        if (v.types[i] == kUnknown) continue;
        std::string content = data["content"].get<std::string>();
        if (v.types[i] != kUnused && v.tokens[i] != content)
            v.warnings.push_back("replacing token " + std::to_string(id) + ": '" + v.tokens[i] + "' -> '" + content + "'");
        const bool special = data.contains("special") && data["special"].is_boolean() && data["special"].get<bool>();
        if (special || token_looks_special(content)) {
            v.types[i] = kControl;
        } else {
            // llama.cpp matches user-defined tokens against raw text, so U+2581 is pre-normalized to ' '.
            content = replace_all(content, "\xE2\x96\x81", " ");
            v.types[i] = kUserDefined;
        }
        v.scores[i] = -1000.0f;
        v.tokens[i] = std::move(content);
    }

    // Special ids: gguf-py's SpecialVocab order and precedence (tokenizer_config text looked up in
    // tokenizer.json's added tokens first, then config.json ids; the first value found wins).
    static const std::pair<const char*, const char*> kTypes[] = {{"bos", "bos"}, {"eos", "eos"}, {"unk", "unknown"},
        {"sep", "seperator"}, {"pad", "padding"}, {"cls", "cls"}, {"mask", "mask"}};  // "seperator": gguf's spelling
    // Insertion order is kept (a Python dict's): for Gemma it is bos, eos, unk, pad.
    std::vector<std::pair<std::string, int64_t>> found;
    auto set_id = [&](const std::string& typ, int64_t id, const std::string& from) {
        for (const auto& f : found)
            if (f.first == typ) return;
        if (id < 0 || id >= n) {
            v.warnings.push_back(from + ": special token " + typ + " = " + std::to_string(id) + " is out of range, skipped");
            return;
        }
        found.emplace_back(typ, id);
    };
    for (const auto& [typ, key] : kTypes) {
        (void)key;
        const std::string t = typ;
        if (tc.contains("add_" + t + "_token") && tc["add_" + t + "_token"].is_boolean())
            v.add_flags.emplace_back(t, tc["add_" + t + "_token"].get<bool>());
        std::string content;
        if (!tc.contains(t + "_token") || !token_content(tc[t + "_token"], &content)) continue;
        if (have_tj) {
            for (const json& a : tj_added)
                if (a.is_object() && a.value("content", "") == content && a.contains("id") && a["id"].is_number_integer()) {
                    set_id(t, a["id"].get<int64_t>(), tc_path);
                    break;
                }
        } else {
            // Without tokenizer.json there is no added-token list to search; the vocabulary itself
            // holds the same text (an extension: the reference would fall back to config.json only).
            for (size_t i = 0; i < v.tokens.size(); ++i)
                if (v.tokens[i] == content) {
                    set_id(t, static_cast<int64_t>(i), tc_path);
                    break;
                }
        }
    }
    for (const auto& [typ, key] : kTypes) {
        (void)key;
        if (auto it = src.config_ids.find(typ); it != src.config_ids.end()) set_id(typ, it->second, "config.json");
    }
    // generation_config.json repeats these ids; it only fills gaps config.json leaves.
    for (const auto& [typ, key] : kTypes) {
        (void)key;
        if (auto it = src.generation_ids.find(typ); it != src.generation_ids.end())
            set_id(typ, it->second, "generation_config.json");
    }
    for (const auto& [typ, id] : found)
        for (const auto& [t, key] : kTypes)
            if (typ == t) v.special_ids.emplace_back(key, static_cast<uint32_t>(id));

    if (tc.contains("chat_template")) {
        const json& ct = tc["chat_template"];
        if (ct.is_string()) {
            v.has_chat_template = true;
            v.chat_template = ct.get<std::string>();
        } else if (ct.is_array()) {
            for (const json& e : ct)
                if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string()) {
                    v.has_chat_template = true;
                    v.chat_template = e["template"].get<std::string>();
                }
            if (ct.size() > 1) v.warnings.push_back(tc_path + ": only the default of several chat templates is kept");
        } else if (!ct.is_null()) {
            v.warnings.push_back(tc_path + ": chat_template has an unexpected type, ignored");
        }
    } else if (is_file(src.dir + "/chat_template.jinja")) {
        std::ifstream in(src.dir + "/chat_template.jinja", std::ios::binary);
        v.chat_template.assign(std::istreambuf_iterator<char>(in), {});
        v.has_chat_template = true;
    }
    return v;
}

}  // namespace gemma
