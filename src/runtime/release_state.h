// A release folder's shared state: per-file locks, the manifest (recipes, hashes, evaluations) and atomic
// writes, so several `gemma release` processes (on one machine or several sharing storage) can fill one folder.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace gemma {

// An exclusive flock(2) on "<dir>/.gemma-release.locks/<name>.lock", released when destroyed or when the
// process dies (even by SIGKILL). One per output file: processes making different files never wait.
class FileLock {
public:
    FileLock(const std::filesystem::path& dir, const std::string& name);
    ~FileLock();
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;
    bool try_lock();  // false when another process holds it
    void lock();      // waits
    void unlock();
    bool held() const { return held_; }

private:
    std::string path_;
    int fd_ = -1;
    bool held_ = false;
};

// ".gemma-release.json": per file {recipe, size, mtime_ns, sha256, bpw, eval}. Every access re-reads the
// file under the folder's metadata lock, so entries written by other processes are seen and kept.
class Manifest {
public:
    explicit Manifest(std::filesystem::path dir) : dir_(std::move(dir)) {}
    std::optional<nlohmann::json> get(const std::string& file) const;
    // Applies `fn` to the entry of `file` (created empty when missing; erased when left null).
    void update(const std::string& file, const std::function<void(nlohmann::json&)>& fn) const;
    // Applies `fn` to the whole {file: entry} object at once (one write for many entries).
    void update_all(const std::function<void(nlohmann::json&)>& fn) const;
    // Runs `fn` holding the metadata lock (for SHA256SUMS, the card and shared temporaries).
    void locked(const std::function<void()>& fn) const;

private:
    nlohmann::json load() const;
    std::filesystem::path dir_;
};

// Writes through "<path>.tmp-<pid>", fsynced, then renamed: a reader never sees a partial file under `path`.
void write_atomically(const std::string& path, const std::function<void(std::FILE*)>& fill);
void write_text_atomically(const std::string& path, const std::string& text);
// Copies `src` to `dst` atomically; returns the SHA-256 of the bytes copied.
std::string copy_atomically(const std::string& src, const std::string& dst);

int64_t mtime_ns(const std::filesystem::path& p);
// Removes "<file>.tmp-*" and "<file>.tmp" left by a killed writer. Call holding the file's lock.
void remove_temporaries_of(const std::filesystem::path& dir, const std::string& file,
                           const std::function<void(const std::string&)>& say);

}  // namespace gemma
