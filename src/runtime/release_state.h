// A release folder's shared state: per-file locks, the manifest (recipes, hashes, evaluations) and atomic
// writes, so several `gemma release` processes (on one machine or several sharing storage) can fill one folder.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "runtime/release_card.h"

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

// One output of a release: its file name, how the card names its method, and what it is made from.
struct ReleaseStep {
    std::string file, quant, recipe;
};

enum class FileState { Missing, Stale, Complete };

// The folder as this process sees it: which files are complete, which it may make, their records.
class ReleaseFolder {
public:
    ReleaseFolder(std::filesystem::path dir, std::function<void(const std::string&)> log)
        : dir_(std::move(dir)), manifest_(dir_), log_(std::move(log)) {}

    void say(const std::string& s) const {
        if (log_) log_(s);
    }
    std::string path(const std::string& file) const { return (dir_ / file).string(); }
    const std::filesystem::path& dir() const { return dir_; }
    const Manifest& manifest() const { return manifest_; }

    // Files carry their final name only once complete (writers rename finished files), so a file without a
    // manifest entry is adopted; one the manifest says was made from other inputs is stale.
    FileState state(const ReleaseStep& s) const;
    // Takes the lock of `s` (waiting for another process when `wait`; nullopt when not waiting and it is
    // taken) and returns whether this process must make the file: false when it is complete. Clears a
    // stale file and a killed writer's temporaries.
    std::optional<bool> claim(const ReleaseStep& s, bool wait);
    // The file's record for the card, kept in the manifest (hashing the file only when the manifest has
    // no hash of exactly this file); `sha` is the hash computed while writing it, when it was just made.
    // Releases the file's lock.
    ReleaseFile record(const ReleaseStep& s, bool kept, const std::string& sha = "");
    // The source's SHA-256, remembered in the manifest by path, size and modification time.
    std::string source_sha(const std::string& source);

private:
    FileLock& lock_of(const std::string& file);
    std::filesystem::path dir_;
    Manifest manifest_;
    std::function<void(const std::string&)> log_;
    std::map<std::string, std::unique_ptr<FileLock>> locks_;
};

}  // namespace gemma
