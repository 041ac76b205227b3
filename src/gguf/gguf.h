// GGUF container: metadata values, a validating mmap reader, and a streaming writer.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "quant/types.h"

namespace gemma {

// Metadata value type ids (`enum gguf_type`).
enum class GgufType : int32_t {
    UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
    STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_type_name(GgufType t);
size_t gguf_scalar_size(GgufType t);  // 0 for STRING/ARRAY

// One metadata value. Scalars keep their exact type; arrays keep their element type.
struct GgufValue {
    GgufType type = GgufType::UINT32;
    // scalars (only the member matching `type` is meaningful)
    uint64_t u64 = 0;   // UINT8/16/32/64, BOOL
    int64_t i64 = 0;    // INT8/16/32/64
    double f64 = 0;     // FLOAT32/64
    std::string str;    // STRING
    // arrays
    GgufType elem_type = GgufType::UINT8;
    uint64_t count = 0;                  // number of elements
    std::vector<uint8_t> raw;            // numeric/bool elements, packed little-endian
    std::vector<std::string> strs;       // STRING elements
    std::vector<GgufValue> arrays;       // ARRAY elements (arrays of arrays)

    static GgufValue u32(uint32_t v);
    static GgufValue i32(int32_t v);
    static GgufValue u64v(uint64_t v);
    static GgufValue f32(float v);
    static GgufValue boolean(bool v);
    static GgufValue string(std::string v);
    static GgufValue string_array(std::vector<std::string> v);
    static GgufValue f32_array(const std::vector<float>& v);
    static GgufValue i32_array(const std::vector<int32_t>& v);

    bool is_integer() const;
    bool is_array() const { return type == GgufType::ARRAY; }
    // Typed element access for numeric arrays (bounds and type checked by the caller via count/elem_type).
    template <typename T> T elem(uint64_t i) const {
        T v; std::memcpy(&v, raw.data() + i * sizeof(T), sizeof(T)); return v;
    }
    std::string to_display(size_t max_elems = 8) const;  // short human-readable form for `gemma info`
};

// Same type and same value (arrays: same element type and elements).
bool gguf_values_equal(const GgufValue& a, const GgufValue& b);

struct GgufKv {
    std::string key;
    GgufValue value;
};

// A tensor as described in the file; `data` points into the mapping.
struct GgufTensor {
    std::string name;
    uint32_t n_dims = 0;
    int64_t ne[4] = {1, 1, 1, 1};   // ne[0] = row length (fastest)
    TypeId type = TypeId::F32;
    uint64_t offset = 0;            // relative to the data section
    uint64_t nbytes = 0;
    const uint8_t* data = nullptr;

    int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
    int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
    std::string shape_string() const;  // "[256, 1024]"
};

class MappedFile;

// Read-only GGUF file. Everything is validated in open(); afterwards all accessors are safe.
class GgufFile {
public:
    // Map and validate `path`. Throws gemma::Error("<path>: <reason>") on any problem.
    static std::unique_ptr<GgufFile> open(const std::string& path);
    // Parse a buffer the caller keeps alive (used by the fuzzer and tests). `name` is used in errors.
    static std::unique_ptr<GgufFile> from_memory(const uint8_t* data, size_t size, const std::string& name);
    ~GgufFile();

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint64_t file_size() const { return size_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }

    const std::vector<GgufKv>& kvs() const { return kvs_; }
    const GgufValue* find(std::string_view key) const;
    // Typed getters: throw gemma::Error naming the file and key when missing or of the wrong type.
    std::string get_string(std::string_view key) const;
    std::string get_string(std::string_view key, const std::string& def) const;
    uint64_t get_uint(std::string_view key) const;                 // any unsigned/signed integer type >= 0
    uint64_t get_uint(std::string_view key, uint64_t def) const;
    double get_float(std::string_view key) const;                  // FLOAT32/FLOAT64
    double get_float(std::string_view key, double def) const;
    bool get_bool(std::string_view key, bool def) const;

    const std::vector<GgufTensor>& tensors() const { return tensors_; }
    const GgufTensor* find_tensor(std::string_view name) const;
    const GgufTensor& tensor(std::string_view name) const;  // throws if missing

private:
    GgufFile() = default;
    void parse(const uint8_t* data, size_t size);
    std::string path_;
    std::unique_ptr<MappedFile> map_;
    uint32_t version_ = 0;
    uint64_t size_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<GgufKv> kvs_;
    std::vector<GgufTensor> tensors_;
};

// Streaming writer: metadata and tensor infos first, then tensor data one tensor at a time, in info order.
// Output goes to "<path>.tmp-<pid>" and is renamed to `path` only by finish(); a writer destroyed
// before finish() removes its temporary file, so no truncated file ever carries the final name.
class GgufWriter {
public:
    explicit GgufWriter(std::string path, uint32_t alignment = 32);
    ~GgufWriter();
    GgufWriter(const GgufWriter&) = delete;
    GgufWriter& operator=(const GgufWriter&) = delete;

    // Set (or replace in place) a key. Order of first insertion is kept.
    void set(const std::string& key, GgufValue v);
    // Remove a key if present.
    void remove(const std::string& key);
    // Move a key to the end (llama-quantize's gguf_set_val semantics: remove + append).
    void set_append(const std::string& key, GgufValue v);
    const std::vector<GgufKv>& kvs() const { return kvs_; }

    // Declare a tensor; shapes with trailing 1s are written with the smallest n_dims (>=1).
    void add_tensor(const std::string& name, TypeId type, std::vector<int64_t> ne);
    // Write header + infos; afterwards only write_tensor_data/finish are allowed.
    void write_header();
    // Append the next tensor's data; `bytes` must equal its declared size. May be called in pieces.
    void write_tensor_data(const void* data, size_t bytes);
    // Pad, flush, fsync, rename into place.
    void finish();
    // Sees every byte of the file as it is written, in order (to hash it without reading it back).
    void set_observer(std::function<void(const void*, size_t)> f) { observer_ = std::move(f); }
    uint64_t bytes_written() const { return pos_; }

    // Resumable writing (long jobs that may be killed): the temporary is "<path>.partial" and survives
    // the writer. Call before write_header()/resume().
    void set_resumable();
    const std::string& temporary_path() const { return tmp_path_; }
    // Flushes and fsyncs; afterwards the first `bytes` bytes (returned) hold the header and `tensors_done`
    // whole tensors. Only between tensors.
    uint64_t checkpoint(size_t* tensors_done);
    // Instead of write_header(): continues a temporary left by an earlier writer of the same header and
    // tensors that checkpointed (tensors_done, bytes); the observer is fed the kept bytes. Returns false
    // when the temporary is missing, shorter, or not that writer's (the observer may have seen part of
    // it: reset what it computes before write_header()).
    bool resume(size_t tensors_done, uint64_t bytes);

private:
    struct Info { std::string name; TypeId type; std::vector<int64_t> ne; uint64_t offset, nbytes; };
    void write_raw(const void* p, size_t n);
    std::vector<uint8_t> header_bytes() const;
    uint64_t tensor_start(size_t i) const;  // file offset of tensor i's data (the end of the data for i = count)
    std::string path_, tmp_path_;
    uint32_t alignment_;
    std::vector<GgufKv> kvs_;
    std::vector<Info> infos_;
    std::FILE* fp_ = nullptr;
    bool header_written_ = false, finished_ = false, resumable_ = false;
    size_t cur_tensor_ = 0;
    uint64_t cur_written_ = 0;
    uint64_t pos_ = 0;
    std::function<void(const void*, size_t)> observer_;
};

}  // namespace gemma
