// Builds the `gemma info` description from metadata and tensor infos only (no tensor data is touched).
#include "gguf/describe.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

namespace gemma {

std::string card_size(uint64_t bytes) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
    std::string s = b;
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s + "GB";
}

nlohmann::json describe_gguf(const GgufFile& f, bool with_tensors) {
    using nlohmann::json;
    json d;
    d["file"] = f.path();
    d["file_size"] = f.file_size();
    d["gguf_version"] = f.version();
    d["alignment"] = f.alignment();
    const std::string arch = f.get_string("general.architecture", "");
    d["architecture"] = arch;
    if (const GgufValue* n = f.find("general.name"); n && n->type == GgufType::STRING) d["name"] = n->str;
    if (const GgufValue* ft = f.find("general.file_type"); ft && ft->is_integer()) d["file_type"] = f.get_uint("general.file_type");

    json hp = json::object();
    json meta = json::object();
    for (const auto& kv : f.kvs()) {
        const std::string& k = kv.key;
        if (!arch.empty() && k.rfind(arch + ".", 0) == 0) {
            const GgufValue& v = kv.value;
            const std::string short_k = k.substr(arch.size() + 1);
            if (v.is_integer()) hp[short_k] = f.get_uint(k);
            else if (v.type == GgufType::FLOAT32 || v.type == GgufType::FLOAT64) hp[short_k] = v.f64;
            else hp[short_k] = v.to_display();
        }
        if (k.rfind("tokenizer.ggml.tokens", 0) == 0 || k.rfind("tokenizer.ggml.scores", 0) == 0 ||
            k.rfind("tokenizer.ggml.token_type", 0) == 0 || k.rfind("tokenizer.ggml.merges", 0) == 0)
            continue;
        meta[k] = kv.value.to_display(4);
    }
    d["hyperparameters"] = hp;
    d["metadata"] = meta;

    json tok = json::object();
    if (const GgufValue* m = f.find("tokenizer.ggml.model")) tok["model"] = m->type == GgufType::STRING ? m->str : "?";
    if (const GgufValue* t = f.find("tokenizer.ggml.tokens"); t && t->is_array()) tok["n_tokens"] = t->count;
    for (const char* k : {"bos_token_id", "eos_token_id", "unknown_token_id", "padding_token_id", "eot_token_id"}) {
        const std::string key = std::string("tokenizer.ggml.") + k;
        if (const GgufValue* v = f.find(key); v && v->is_integer()) tok[k] = f.get_uint(key);
    }
    tok["has_chat_template"] = f.find("tokenizer.chat_template") != nullptr;
    d["tokenizer"] = tok;

    std::map<std::string, std::pair<uint64_t, uint64_t>> per_type;  // name -> (count, bytes)
    uint64_t total_bytes = 0, total_elems = 0;
    json tensors = json::array();
    for (const auto& t : f.tensors()) {
        total_bytes += t.nbytes;
        total_elems += static_cast<uint64_t>(t.n_elements());
        auto& pt = per_type[type_name(t.type)];
        pt.first += 1;
        pt.second += t.nbytes;
        if (with_tensors) {
            json shape = json::array();
            for (uint32_t i = 0; i < t.n_dims; ++i) shape.push_back(t.ne[i]);
            tensors.push_back({{"name", t.name}, {"shape", shape}, {"type", type_name(t.type)}, {"bytes", t.nbytes}});
        }
    }
    json types = json::object();
    for (const auto& [name, cb] : per_type) types[name] = {{"tensors", cb.first}, {"bytes", cb.second}};
    d["n_tensors"] = f.tensors().size();
    d["n_params"] = total_elems;
    d["tensor_bytes"] = total_bytes;
    d["bits_per_weight"] = total_elems ? 8.0 * static_cast<double>(total_bytes) / static_cast<double>(total_elems) : 0.0;
    d["types"] = types;
    if (with_tensors) d["tensors"] = tensors;
    return d;
}

std::string render_description(const nlohmann::json& d) {
    std::ostringstream os;
    char line[256];
    os << "file:          " << d["file"].get<std::string>() << "\n";
    os << "size:          " << d["file_size"].get<uint64_t>() << " bytes (" << card_size(d["file_size"].get<uint64_t>())
       << ")\n";
    os << "gguf version:  " << d["gguf_version"].get<uint32_t>() << ", alignment " << d["alignment"].get<uint64_t>() << "\n";
    os << "architecture:  " << d["architecture"].get<std::string>() << "\n";
    if (d.contains("name")) os << "name:          " << d["name"].get<std::string>() << "\n";
    if (d.contains("file_type")) os << "file type:     " << d["file_type"].get<uint64_t>() << "\n";
    std::snprintf(line, sizeof line, "parameters:    %.3f M, %.2f bits per weight\n",
                  d["n_params"].get<uint64_t>() / 1e6, d["bits_per_weight"].get<double>());
    os << line;
    os << "\nhyperparameters:\n";
    for (const auto& [k, v] : d["hyperparameters"].items()) os << "  " << k << " = " << v.dump() << "\n";
    os << "\ntokenizer:\n";
    for (const auto& [k, v] : d["tokenizer"].items()) os << "  " << k << " = " << v.dump() << "\n";
    os << "\nmetadata:\n";
    for (const auto& [k, v] : d["metadata"].items()) os << "  " << k << " = " << v.get<std::string>() << "\n";
    if (d.contains("tensors")) {
        os << "\ntensors:\n";
        for (const auto& t : d["tensors"]) {
            std::snprintf(line, sizeof line, "  %-32s %-22s %-8s %12llu\n", t["name"].get<std::string>().c_str(),
                          t["shape"].dump().c_str(), t["type"].get<std::string>().c_str(),
                          static_cast<unsigned long long>(t["bytes"].get<uint64_t>()));
            os << line;
        }
    }
    os << "\ntotals per type:\n";
    for (const auto& [k, v] : d["types"].items()) {
        std::snprintf(line, sizeof line, "  %-8s %5llu tensors %14llu bytes\n", k.c_str(),
                      static_cast<unsigned long long>(v["tensors"].get<uint64_t>()),
                      static_cast<unsigned long long>(v["bytes"].get<uint64_t>()));
        os << line;
    }
    return os.str();
}

}  // namespace gemma
