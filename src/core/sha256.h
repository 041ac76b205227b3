// SHA-256 for the SHA256SUMS file of a release: streaming hasher and whole-file helper (OpenSSL's
// implementation, which uses the CPU's SHA instructions: a release hashes tens of GB as it writes them).
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
    Sha256();
    ~Sha256();
    Sha256(Sha256&& o) noexcept : ctx_(o.ctx_) { o.ctx_ = nullptr; }
    Sha256& operator=(Sha256&& o) noexcept;
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    void reset();
    void update(const void* data, size_t n);
    void update(std::string_view s) { update(s.data(), s.size()); }
    // Finishes the hash (the object must be reset() before reuse).
    std::array<uint8_t, 32> digest();
    std::string hex_digest();  // 64 lowercase hex digits

private:
    void* ctx_ = nullptr;  // EVP_MD_CTX
};

std::string sha256_hex(std::string_view data);
// Hash of a whole file, read in large pieces; `progress(done, total)` is called after each piece when set.
// Throws gemma::Error if the file cannot be read.
std::string sha256_file(const std::string& path, const std::function<void(uint64_t, uint64_t)>& progress = {});

}  // namespace gemma
