// SHA-256 (FIPS 180-4) for the SHA256SUMS file of a release: streaming hasher and whole-file helper.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace gemma {

class Sha256 {
public:
    Sha256() { reset(); }
    void reset();
    void update(const void* data, size_t n);
    void update(std::string_view s) { update(s.data(), s.size()); }
    // Finishes the hash (the object must be reset() before reuse).
    std::array<uint8_t, 32> digest();
    std::string hex_digest();  // 64 lowercase hex digits

private:
    void block(const uint8_t* p);
    uint32_t h_[8];
    uint8_t buf_[64];
    size_t buf_len_ = 0;
    uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view data);
// Hash of a whole file, read in large pieces; `progress(done, total)` is called after each piece when set.
// Throws gemma::Error if the file cannot be read.
std::string sha256_file(const std::string& path, const std::function<void(uint64_t, uint64_t)>& progress = {});

}  // namespace gemma
