// Read-only memory mapping of a whole file (weights are used in place, never copied).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace gemma {

class MappedFile {
public:
    // Throws gemma::Error("<path>: <reason>") if the file cannot be opened or mapped.
    explicit MappedFile(const std::string& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }

private:
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

// Anonymous memory for big buffers written once and read often (repacked weights): page-aligned, backed by
// transparent huge pages where the kernel allows (512x fewer page faults, fewer TLB misses). Move-only.
class LargeBuffer {
public:
    LargeBuffer() = default;
    // Throws gemma::Error when the memory cannot be had.
    explicit LargeBuffer(size_t n);
    ~LargeBuffer();
    LargeBuffer(LargeBuffer&& o) noexcept : data_(o.data_), size_(o.size_) { o.data_ = nullptr; o.size_ = 0; }
    LargeBuffer& operator=(LargeBuffer&& o) noexcept;
    LargeBuffer(const LargeBuffer&) = delete;
    LargeBuffer& operator=(const LargeBuffer&) = delete;

    uint8_t* data() const { return data_; }
    size_t size() const { return size_; }

private:
    uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

// Drops this process's mapping of the whole pages inside [p, p + n) of a read-only file mapping (the page
// cache keeps them; a later access re-reads them from the file). For weights copied elsewhere at load, so
// the process does not count them twice.
void release_mapped_pages(const void* p, size_t n);

}  // namespace gemma
