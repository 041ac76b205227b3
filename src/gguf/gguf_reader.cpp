// GGUF reader: validates every field of an untrusted file before anything is used (no OOB reads, no huge allocations).
#include <limits>
#include <unordered_set>

#include "core/error.h"
#include "core/mapped_file.h"
#include "gguf/gguf.h"

namespace gemma {
namespace {

constexpr uint64_t kMaxStringLen = 1ull << 30;   // llama.cpp's per-string limit
constexpr uint64_t kMaxArrayElems = 1ull << 30;  // llama.cpp's per-array limit
constexpr int kMaxArrayDepth = 8;                 // arrays of arrays: bounded recursion
constexpr uint32_t kMaxNameLen = 63;              // GGML_MAX_NAME - 1

// Bounds-checked little-endian cursor over the file bytes; every failure names the offset.
class Cursor {
public:
    Cursor(const uint8_t* p, size_t n, const std::string& name) : p_(p), n_(n), name_(name) {}

    [[noreturn]] void fail(const std::string& why) const {
        throw_error(name_ + ": invalid GGUF: " + why + " (at byte offset " + std::to_string(pos_) + ")");
    }
    size_t pos() const { return pos_; }
    size_t remaining() const { return n_ - pos_; }
    void need(uint64_t bytes, const char* what) const {
        if (bytes > remaining())
            fail(std::string("truncated file: ") + what + " needs " + std::to_string(bytes) + " bytes, " +
                 std::to_string(remaining()) + " left");
    }
    template <typename T> T read(const char* what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, p_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    std::string read_string(const char* what) {
        const uint64_t len = read<uint64_t>(what);
        if (len > kMaxStringLen) fail(std::string(what) + ": string length " + std::to_string(len) + " exceeds 1 GiB");
        need(len, what);
        std::string s(reinterpret_cast<const char*>(p_ + pos_), static_cast<size_t>(len));
        pos_ += static_cast<size_t>(len);
        return s;
    }
    const uint8_t* here() const { return p_ + pos_; }
    void skip(uint64_t n, const char* what) { need(n, what); pos_ += static_cast<size_t>(n); }

private:
    const uint8_t* p_;
    size_t n_;
    size_t pos_ = 0;
    const std::string& name_;
};

bool valid_gguf_type(int32_t t) { return t >= 0 && t <= 12; }

GgufValue read_value(Cursor& c, GgufType type, const std::string& key, int depth);

GgufValue read_array(Cursor& c, const std::string& key, int depth) {
    if (depth >= kMaxArrayDepth) c.fail("key '" + key + "': arrays nested deeper than " + std::to_string(kMaxArrayDepth));
    GgufValue v;
    v.type = GgufType::ARRAY;
    const int32_t et = c.read<int32_t>("array element type");
    if (!valid_gguf_type(et)) c.fail("key '" + key + "': unknown array element type " + std::to_string(et));
    v.elem_type = static_cast<GgufType>(et);
    v.count = c.read<uint64_t>("array length");
    if (v.count > kMaxArrayElems)
        c.fail("key '" + key + "': array length " + std::to_string(v.count) + " exceeds 2^30");
    const size_t es = gguf_scalar_size(v.elem_type);
    if (es > 0) {
        c.need(v.count * es, "array data");
        v.raw.assign(c.here(), c.here() + v.count * es);
        c.skip(v.count * es, "array data");
    } else if (v.elem_type == GgufType::STRING) {
        // Each string needs at least its 8-byte length: bound the count before reserving.
        c.need(v.count * 8, "string array");
        v.strs.reserve(static_cast<size_t>(v.count));
        for (uint64_t i = 0; i < v.count; ++i) v.strs.push_back(c.read_string("array string"));
    } else {
        c.need(v.count * 12, "array of arrays");
        for (uint64_t i = 0; i < v.count; ++i) v.arrays.push_back(read_array(c, key, depth + 1));
    }
    return v;
}

GgufValue read_value(Cursor& c, GgufType type, const std::string& key, int depth) {
    GgufValue v;
    v.type = type;
    switch (type) {
        case GgufType::UINT8: v.u64 = c.read<uint8_t>("value"); break;
        case GgufType::INT8: v.i64 = c.read<int8_t>("value"); break;
        case GgufType::UINT16: v.u64 = c.read<uint16_t>("value"); break;
        case GgufType::INT16: v.i64 = c.read<int16_t>("value"); break;
        case GgufType::UINT32: v.u64 = c.read<uint32_t>("value"); break;
        case GgufType::INT32: v.i64 = c.read<int32_t>("value"); break;
        case GgufType::FLOAT32: v.f64 = c.read<float>("value"); break;
        case GgufType::BOOL: v.u64 = c.read<uint8_t>("value") != 0; break;
        case GgufType::STRING: v.str = c.read_string("string value"); break;
        case GgufType::UINT64: v.u64 = c.read<uint64_t>("value"); break;
        case GgufType::INT64: v.i64 = c.read<int64_t>("value"); break;
        case GgufType::FLOAT64: v.f64 = c.read<double>("value"); break;
        case GgufType::ARRAY: return read_array(c, key, depth);
    }
    return v;
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

GgufFile::~GgufFile() = default;

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
    std::unique_ptr<GgufFile> f(new GgufFile());
    f->path_ = path;
    f->map_ = std::make_unique<MappedFile>(path);
    f->parse(f->map_->data(), f->map_->size());
    return f;
}

std::unique_ptr<GgufFile> GgufFile::from_memory(const uint8_t* data, size_t size, const std::string& name) {
    std::unique_ptr<GgufFile> f(new GgufFile());
    f->path_ = name;
    f->parse(data, size);
    return f;
}

void GgufFile::parse(const uint8_t* data, size_t size) {
    size_ = size;
    Cursor c(data, size, path_);
    if (size < 4) c.fail("file is " + std::to_string(size) + " bytes, too small to be GGUF");
    if (std::memcmp(data, "GGUF", 4) != 0) c.fail("bad magic (not a GGUF file)");
    c.skip(4, "magic");
    version_ = c.read<uint32_t>("version");
    if (version_ != 0 && (version_ & 0xFFFFu) == 0) c.fail("byte order mismatch (big-endian file?)");
    if (version_ == 1) c.fail("GGUF version 1 is no longer supported");
    if (version_ < 2 || version_ > 3) c.fail("unsupported GGUF version " + std::to_string(version_));
    const int64_t n_tensors = c.read<int64_t>("tensor count");
    const int64_t n_kv = c.read<int64_t>("metadata count");
    // Each record takes at least a few bytes, which bounds the counts by the file size (no huge allocations).
    if (n_tensors < 0 || static_cast<uint64_t>(n_tensors) > c.remaining() / 24)
        c.fail("tensor count " + std::to_string(n_tensors) + " is impossible for the file size");
    if (n_kv < 0 || static_cast<uint64_t>(n_kv) > c.remaining() / 13)
        c.fail("metadata count " + std::to_string(n_kv) + " is impossible for the file size");

    std::unordered_set<std::string> seen;
    for (int64_t i = 0; i < n_kv; ++i) {
        GgufKv kv;
        kv.key = c.read_string("metadata key");
        if (kv.key.empty()) c.fail("empty metadata key");
        if (!seen.insert(kv.key).second) c.fail("duplicate metadata key '" + kv.key + "'");
        const int32_t t = c.read<int32_t>("value type");
        if (!valid_gguf_type(t)) c.fail("key '" + kv.key + "': unknown value type " + std::to_string(t));
        kv.value = read_value(c, static_cast<GgufType>(t), kv.key, 0);
        kvs_.push_back(std::move(kv));
    }

    if (const GgufValue* a = find("general.alignment")) {
        if (a->type != GgufType::UINT32) c.fail("general.alignment must be uint32");
        if (a->u64 == 0 || (a->u64 & (a->u64 - 1)) != 0)
            c.fail("general.alignment " + std::to_string(a->u64) + " is not a power of two");
        alignment_ = a->u64;
    }

    seen.clear();
    for (int64_t i = 0; i < n_tensors; ++i) {
        GgufTensor t;
        t.name = c.read_string("tensor name");
        if (t.name.size() > kMaxNameLen) c.fail("tensor name '" + t.name.substr(0, 80) + "' longer than 63 bytes");
        if (!seen.insert(t.name).second) c.fail("duplicate tensor '" + t.name + "'");
        t.n_dims = c.read<uint32_t>("tensor n_dims");
        if (t.n_dims < 1 || t.n_dims > 4)
            c.fail("tensor '" + t.name + "': " + std::to_string(t.n_dims) + " dimensions (must be 1..4)");
        uint64_t nel = 1;
        for (uint32_t d = 0; d < t.n_dims; ++d) {
            t.ne[d] = c.read<int64_t>("tensor dimension");
            if (t.ne[d] < 0) c.fail("tensor '" + t.name + "': negative dimension");
            if (mul_overflows(nel, static_cast<uint64_t>(t.ne[d]), &nel) || nel > (uint64_t)std::numeric_limits<int64_t>::max())
                c.fail("tensor '" + t.name + "': element count overflows");
        }
        const int32_t type = c.read<int32_t>("tensor type");
        const TypeTraits* tt = find_type_traits(type);
        if (!tt) c.fail("tensor '" + t.name + "': unknown or unsupported tensor type id " + std::to_string(type));
        t.type = tt->id;
        if (t.ne[0] % tt->block_size != 0)
            c.fail("tensor '" + t.name + "': row length " + std::to_string(t.ne[0]) + " is not a multiple of the " +
                   tt->name + " block size " + std::to_string(tt->block_size));
        uint64_t nb = static_cast<uint64_t>(t.ne[0] / tt->block_size);
        if (mul_overflows(nb, static_cast<uint64_t>(tt->type_size), &nb) ||
            mul_overflows(nb, static_cast<uint64_t>(t.ne[1]), &nb) ||
            mul_overflows(nb, static_cast<uint64_t>(t.ne[2]), &nb) ||
            mul_overflows(nb, static_cast<uint64_t>(t.ne[3]), &nb))
            c.fail("tensor '" + t.name + "': byte size overflows");
        t.nbytes = nb;
        t.offset = c.read<uint64_t>("tensor offset");
        if (t.offset % alignment_ != 0)
            c.fail("tensor '" + t.name + "': offset " + std::to_string(t.offset) + " is not aligned to " +
                   std::to_string(alignment_));
        tensors_.push_back(std::move(t));
    }

    uint64_t data_off = c.pos();
    if (n_tensors > 0) data_off = (data_off + alignment_ - 1) / alignment_ * alignment_;
    if (data_off > size) {
        if (n_tensors > 0) c.fail("truncated file: tensor data section starts past the end of the file");
        data_off = size;
    }
    data_offset_ = data_off;
    const uint64_t data_size = size - data_off;
    for (auto& t : tensors_) {
        if (t.offset > data_size || t.nbytes > data_size - t.offset)
            throw_error(path_ + ": invalid GGUF: tensor '" + t.name + "' data [" + std::to_string(t.offset) + ", +" +
                        std::to_string(t.nbytes) + ") lies outside the file's data section of " +
                        std::to_string(data_size) + " bytes (truncated file?)");
        t.data = data + data_off + t.offset;
    }
}

const GgufValue* GgufFile::find(std::string_view key) const {
    for (const auto& kv : kvs_)
        if (kv.key == key) return &kv.value;
    return nullptr;
}

std::string GgufFile::get_string(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) throw_error(path_ + ": missing metadata key '" + std::string(key) + "'");
    if (v->type != GgufType::STRING)
        throw_error(path_ + ": metadata key '" + std::string(key) + "' is " + gguf_type_name(v->type) + ", expected string");
    return v->str;
}

std::string GgufFile::get_string(std::string_view key, const std::string& def) const {
    return find(key) ? get_string(key) : def;
}

uint64_t GgufFile::get_uint(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) throw_error(path_ + ": missing metadata key '" + std::string(key) + "'");
    if (!v->is_integer())
        throw_error(path_ + ": metadata key '" + std::string(key) + "' is " + gguf_type_name(v->type) + ", expected an integer");
    if (v->type == GgufType::INT8 || v->type == GgufType::INT16 || v->type == GgufType::INT32 || v->type == GgufType::INT64) {
        if (v->i64 < 0) throw_error(path_ + ": metadata key '" + std::string(key) + "' is negative");
        return static_cast<uint64_t>(v->i64);
    }
    return v->u64;
}

uint64_t GgufFile::get_uint(std::string_view key, uint64_t def) const { return find(key) ? get_uint(key) : def; }

double GgufFile::get_float(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) throw_error(path_ + ": missing metadata key '" + std::string(key) + "'");
    if (v->type != GgufType::FLOAT32 && v->type != GgufType::FLOAT64)
        throw_error(path_ + ": metadata key '" + std::string(key) + "' is " + gguf_type_name(v->type) + ", expected a float");
    return v->f64;
}

double GgufFile::get_float(std::string_view key, double def) const { return find(key) ? get_float(key) : def; }

bool GgufFile::get_bool(std::string_view key, bool def) const {
    const GgufValue* v = find(key);
    if (!v) return def;
    if (v->type != GgufType::BOOL)
        throw_error(path_ + ": metadata key '" + std::string(key) + "' is " + gguf_type_name(v->type) + ", expected bool");
    return v->u64 != 0;
}

const GgufTensor* GgufFile::find_tensor(std::string_view name) const {
    for (const auto& t : tensors_)
        if (t.name == name) return &t;
    return nullptr;
}

const GgufTensor& GgufFile::tensor(std::string_view name) const {
    const GgufTensor* t = find_tensor(name);
    if (!t) throw_error(path_ + ": missing tensor '" + std::string(name) + "'");
    return *t;
}

}  // namespace gemma
