// Safetensors checkpoints: a validating mmap reader (one file or a sharded set) and a streaming writer.
#pragma once
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace gemma {

class MappedFile;

// The element types we convert; any other dtype string in a header is rejected with its name.
enum class StDtype { F32, F16, BF16 };
const char* st_dtype_name(StDtype t);  // "F32", "F16", "BF16" (as written in headers)
size_t st_dtype_size(StDtype t);

struct StTensor {
    std::string name;
    StDtype dtype = StDtype::F32;
    std::vector<int64_t> shape;      // row-major, outermost first (PyTorch order)
    const uint8_t* data = nullptr;   // into the mapping
    uint64_t nbytes = 0;
    uint64_t file_offset = 0;        // absolute offset in the file, for page release
    int64_t n_elements() const;
};

// One .safetensors file. open() validates everything (header length, JSON, dtypes, shapes, offsets
// inside the file, sizes matching shapes, no overlaps), so afterwards every tensor is safe to read.
class SafetensorsFile {
public:
    static std::unique_ptr<SafetensorsFile> open(const std::string& path);
    ~SafetensorsFile();

    const std::string& path() const { return path_; }
    // Sorted by name: the order Python's safetensors `keys()` yields, which fixes llama.cpp's tensor order.
    const std::map<std::string, StTensor>& tensors() const { return tensors_; }
    const StTensor* find(const std::string& name) const;
    // Drop the mapped pages of [p, p+n) from this process: the page cache keeps them, but they stop
    // counting as our resident memory, so converting a 17 GB checkpoint does not look like 17 GB RSS.
    void release(const uint8_t* p, size_t n) const;

private:
    SafetensorsFile() = default;
    std::string path_;
    std::unique_ptr<MappedFile> map_;
    std::map<std::string, StTensor> tensors_;
};

// A checkpoint directory's weights: model.safetensors, or the model-*.safetensors shards (checked
// against model.safetensors.index.json when present). Files are opened in sorted name order.
class SafetensorsSet {
public:
    static SafetensorsSet open_dir(const std::string& dir);
    const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
    // The owning file of a tensor (null if none).
    const SafetensorsFile* file_of(const std::string& name) const;
    const StTensor* find(const std::string& name) const;

private:
    std::vector<std::unique_ptr<SafetensorsFile>> files_;
    std::map<std::string, size_t> owner_;
};

// Streaming writer: declare every tensor, then write their bytes in declaration order.
// Writes to "<path>.tmp" and renames on finish(), like GgufWriter, so a failure leaves no file.
class SafetensorsWriter {
public:
    explicit SafetensorsWriter(std::string path);
    ~SafetensorsWriter();
    SafetensorsWriter(const SafetensorsWriter&) = delete;
    SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

    void add_tensor(const std::string& name, StDtype dtype, std::vector<int64_t> shape);
    void set_metadata(const std::string& key, const std::string& value);  // "__metadata__" (strings only)
    void write_header();
    void write_data(const void* p, size_t n);  // may be called in pieces
    void finish();

    struct Entry { std::string name; StDtype dtype; std::vector<int64_t> shape; uint64_t nbytes; };
    const std::vector<Entry>& entries() const { return entries_; }

private:
    std::string path_, tmp_path_;
    std::vector<Entry> entries_;
    std::vector<std::pair<std::string, std::string>> metadata_;
    std::FILE* fp_ = nullptr;
    uint64_t expected_ = 0, written_ = 0;
    bool finished_ = false;
};

}  // namespace gemma
