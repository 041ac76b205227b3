// Safetensors reader (validated, mmap, sharded sets) and streaming writer.
#include "convert/safetensors.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/mapped_file.h"

namespace gemma {

namespace fs = std::filesystem;
using json = nlohmann::json;

const char* st_dtype_name(StDtype t) {
    switch (t) {
        case StDtype::F32: return "F32";
        case StDtype::F16: return "F16";
        case StDtype::BF16: return "BF16";
    }
    return "?";
}

size_t st_dtype_size(StDtype t) { return t == StDtype::F32 ? 4 : 2; }

int64_t StTensor::n_elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

namespace {

// "model-<digits>-of-<digits>.safetensors" -> the two digit strings (by hand: GCC 12's <regex> trips
// -Wmaybe-uninitialized inside libstdc++).
bool parse_shard_name(const std::string& name, std::string& first, std::string& count) {
    const std::string pre = "model-", mid = "-of-", suf = ".safetensors";
    if (name.size() <= pre.size() + mid.size() + suf.size() || name.compare(0, pre.size(), pre) != 0 ||
        name.compare(name.size() - suf.size(), suf.size(), suf) != 0)
        return false;
    const std::string core = name.substr(pre.size(), name.size() - pre.size() - suf.size());
    const size_t m = core.find(mid);
    if (m == std::string::npos) return false;
    first = core.substr(0, m);
    count = core.substr(m + mid.size());
    auto digits = [](const std::string& d) {
        return !d.empty() && std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    return digits(first) && digits(count);
}

// Every dtype the safetensors format defines, so an unsupported-but-valid one gets a precise message.
const std::set<std::string>& known_dtypes() {
    static const std::set<std::string> s = {"BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64", "F64",
                                            "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2",
                                            "C64", "F32", "F16", "BF16"};
    return s;
}

// Header JSON is capped by the reference implementation at 100 MB; anything larger is corrupt.
constexpr uint64_t kMaxHeader = 100u << 20;

uint64_t read_u64_le(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

}  // namespace

SafetensorsFile::~SafetensorsFile() = default;

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
    std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
    f->path_ = path;
    f->map_ = std::make_unique<MappedFile>(path);
    const uint8_t* base = f->map_->data();
    const uint64_t size = f->map_->size();
    auto fail = [&](const std::string& why) { throw_error(path + ": " + why); };
    if (size < 8) fail("truncated: " + std::to_string(size) + " bytes, too short for the 8-byte header length");
    const uint64_t hlen = read_u64_le(base);
    if (hlen > kMaxHeader) fail("header length " + std::to_string(hlen) + " is implausible (corrupt or not safetensors)");
    if (hlen > size - 8)
        fail("truncated header: it claims " + std::to_string(hlen) + " bytes but only " + std::to_string(size - 8) +
             " follow");
    const char* hp = reinterpret_cast<const char*>(base + 8);
    json header;
    try {
        header = json::parse(hp, hp + hlen);
    } catch (const json::exception& e) {
        fail(std::string("header is not valid JSON: ") + e.what());
    }
    if (!header.is_object()) fail("header is not a JSON object");

    const uint64_t data_start = 8 + hlen, data_size = size - data_start;
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string& name = it.key();
        if (name == "__metadata__") continue;
        const json& e = it.value();
        auto bad = [&](const std::string& why) { fail("tensor '" + name + "': " + why); };
        if (!e.is_object()) bad("header entry is not an object");
        if (!e.contains("dtype") || !e["dtype"].is_string()) bad("missing or non-string dtype");
        const std::string dt = e["dtype"].get<std::string>();
        StTensor t;
        t.name = name;
        if (dt == "F32") t.dtype = StDtype::F32;
        else if (dt == "F16") t.dtype = StDtype::F16;
        else if (dt == "BF16") t.dtype = StDtype::BF16;
        else if (known_dtypes().count(dt)) bad("dtype " + dt + " is not supported (expected BF16, F16 or F32)");
        else bad("unknown dtype '" + dt + "'");
        if (!e.contains("shape") || !e["shape"].is_array()) bad("missing shape");
        uint64_t numel = 1;
        for (const json& d : e["shape"]) {
            if (!d.is_number_integer() || d.get<int64_t>() < 0) bad("shape has a non-integer or negative dimension");
            const auto v = d.get<uint64_t>();
            if (v > (uint64_t{1} << 40) || (v && numel > (uint64_t{1} << 50) / v)) bad("shape is too large");
            numel *= v;
            t.shape.push_back(static_cast<int64_t>(v));
        }
        const json& off = e.contains("data_offsets") ? e["data_offsets"] : json();
        if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
            bad("data_offsets must be two non-negative integers");
        const auto b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
        if (en < b) bad("data_offsets end before they begin");
        if (en > data_size)
            bad("data [" + std::to_string(b) + ", " + std::to_string(en) + ") lies outside the file (the data section has " +
                std::to_string(data_size) + " bytes)");
        t.nbytes = en - b;
        if (t.nbytes != numel * st_dtype_size(t.dtype))
            bad("data_offsets span " + std::to_string(t.nbytes) + " bytes but the shape needs " +
                std::to_string(numel * st_dtype_size(t.dtype)));
        t.file_offset = data_start + b;
        t.data = base + t.file_offset;
        spans.emplace_back(b, en);
        f->tensors_.emplace(name, std::move(t));
    }
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size(); ++i)
        if (spans[i].first < spans[i - 1].second) fail("tensor data regions overlap");
    return f;
}

const StTensor* SafetensorsFile::find(const std::string& name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
}

void SafetensorsFile::release(const uint8_t* p, size_t n) const {
    if (!n) return;
    const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    uintptr_t a = reinterpret_cast<uintptr_t>(p), e = a + n;
    // Only whole pages inside the range: a shared edge page may still be needed by the next tensor,
    // and dropping it would merely re-fault it, never change the data (the mapping is read-only).
    a = (a + page - 1) & ~(page - 1);
    e &= ~(page - 1);
    if (e > a) ::madvise(reinterpret_cast<void*>(a), e - a, MADV_DONTNEED);
}

SafetensorsSet SafetensorsSet::open_dir(const std::string& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw_error(dir + ": not a directory");
    // llama.cpp's rule: every "model*.safetensors" in the directory, sorted by name.
    std::vector<std::string> parts;
    for (const auto& de : fs::directory_iterator(dir, ec)) {
        const std::string n = de.path().filename().string();
        if (n.rfind("model", 0) == 0 && n.size() > 12 && n.compare(n.size() - 12, 12, ".safetensors") == 0)
            parts.push_back(n);
    }
    std::sort(parts.begin(), parts.end());
    const std::string index_path = dir + "/model.safetensors.index.json";
    const bool has_index = fs::exists(index_path, ec);
    std::map<std::string, std::string> weight_map;
    if (has_index) {
        std::ifstream in(index_path);
        json idx;
        try {
            idx = json::parse(in);
        } catch (const json::exception& e) {
            throw_error(index_path + ": not valid JSON: " + e.what());
        }
        if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
            throw_error(index_path + ": no \"weight_map\" object");
        for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
            if (!it.value().is_string()) throw_error(index_path + ": weight_map entry '" + it.key() + "' is not a file name");
            weight_map[it.key()] = it.value().get<std::string>();
        }
        for (const auto& [name, file] : weight_map)
            if (!std::binary_search(parts.begin(), parts.end(), file))
                throw_error(index_path + ": tensor '" + name + "' is stored in '" + file + "', which is missing from " + dir);
    }
    if (parts.empty()) throw_error(dir + ": no model.safetensors or model-*-of-*.safetensors weights found");
    if (!has_index) {
        // Shards without their index: at least notice a missing "-0000k-of-0000n" file.
        std::string first, count;
        if (parse_shard_name(parts[0], first, count) && count.size() <= 9) {
            const int total = std::stoi(count);
            for (int k = 1; k <= total; ++k) {
                char want[64];
                std::snprintf(want, sizeof want, "model-%0*d-of-%s.safetensors", static_cast<int>(first.size()), k,
                              count.c_str());
                if (!std::binary_search(parts.begin(), parts.end(), std::string(want)))
                    throw_error(dir + ": shard '" + want + "' is missing");
            }
        }
    }
    SafetensorsSet set;
    for (const std::string& p : parts) {
        set.files_.push_back(SafetensorsFile::open(dir + "/" + p));
        const size_t fi = set.files_.size() - 1;
        for (const auto& [name, t] : set.files_.back()->tensors()) {
            (void)t;
            if (!set.owner_.emplace(name, fi).second)
                throw_error(dir + "/" + p + ": tensor '" + name + "' also appears in " +
                            set.files_[set.owner_[name]]->path());
        }
    }
    if (has_index) {
        for (const auto& [name, fi] : set.owner_) {
            auto it = weight_map.find(name);
            if (it == weight_map.end())
                throw_error(index_path + ": tensor '" + name + "' of " + set.files_[fi]->path() + " is not in the weight_map");
            if (dir + "/" + it->second != set.files_[fi]->path())
                throw_error(index_path + ": tensor '" + name + "' is listed in '" + it->second + "' but found in " +
                            set.files_[fi]->path());
        }
        for (const auto& [name, file] : weight_map)
            if (!set.owner_.count(name))
                throw_error(dir + "/" + file + ": tensor '" + name + "' listed in model.safetensors.index.json is missing");
    }
    return set;
}

const SafetensorsFile* SafetensorsSet::file_of(const std::string& name) const {
    auto it = owner_.find(name);
    return it == owner_.end() ? nullptr : files_[it->second].get();
}

const StTensor* SafetensorsSet::find(const std::string& name) const {
    const SafetensorsFile* f = file_of(name);
    return f ? f->find(name) : nullptr;
}

// ---------------------------------------------------------------------------------------------

SafetensorsWriter::SafetensorsWriter(std::string path) : path_(std::move(path)) {
    tmp_path_ = path_ + ".tmp-" + std::to_string(::getpid());
}

SafetensorsWriter::~SafetensorsWriter() {
    if (!fp_) return;  // never started, or finished
    std::fclose(fp_);
    std::remove(tmp_path_.c_str());
}

void SafetensorsWriter::add_tensor(const std::string& name, StDtype dtype, std::vector<int64_t> shape) {
    GEMMA_ASSERT(!fp_);
    uint64_t n = st_dtype_size(dtype);
    for (int64_t d : shape) n *= static_cast<uint64_t>(d);
    entries_.push_back({name, dtype, std::move(shape), n});
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
    metadata_.emplace_back(key, value);
}

void SafetensorsWriter::write_header() {
    GEMMA_ASSERT(!fp_);
    json h = json::object();
    if (!metadata_.empty()) {
        json m = json::object();
        for (const auto& [k, v] : metadata_) m[k] = v;
        h["__metadata__"] = m;
    }
    uint64_t off = 0;
    for (const Entry& e : entries_) {
        h[e.name] = {{"dtype", st_dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {off, off + e.nbytes}}};
        off += e.nbytes;
    }
    expected_ = off;
    std::string s = h.dump();
    s.resize((s.size() + 7) / 8 * 8, ' ');  // the reference pads the header to 8 bytes so data is aligned
    fp_ = std::fopen(tmp_path_.c_str(), "wb");
    if (!fp_) throw_error(tmp_path_ + ": cannot create: " + std::strerror(errno));
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(s.size()) >> (8 * i));
    if (std::fwrite(len, 1, 8, fp_) != 8 || std::fwrite(s.data(), 1, s.size(), fp_) != s.size())
        throw_error(tmp_path_ + ": write failed: " + std::strerror(errno));
}

void SafetensorsWriter::write_data(const void* p, size_t n) {
    GEMMA_ASSERT(fp_ && written_ + n <= expected_);
    if (n && std::fwrite(p, 1, n, fp_) != n) throw_error(tmp_path_ + ": write failed: " + std::strerror(errno));
    written_ += n;
}

void SafetensorsWriter::finish() {
    GEMMA_ASSERT(fp_ && written_ == expected_);
    const bool ok = std::fflush(fp_) == 0;
    std::fclose(fp_);
    fp_ = nullptr;
    if (!ok) {
        std::remove(tmp_path_.c_str());
        throw_error(tmp_path_ + ": flush failed: " + std::strerror(errno));
    }
    if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
        std::remove(tmp_path_.c_str());
        throw_error(path_ + ": cannot rename into place: " + std::strerror(errno));
    }
    finished_ = true;
}

}  // namespace gemma
