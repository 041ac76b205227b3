// Locks, manifest and atomic writes of a release folder (see release_state.h).
#include "runtime/release_state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "core/error.h"
#include "core/sha256.h"
#include "gguf/gguf.h"

namespace gemma {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kManifest = ".gemma-release.json";
constexpr const char* kLockDir = ".gemma-release.locks";

double bits_per_weight(const std::string& path) {
    const auto f = GgufFile::open(path);
    double bits = 0, n = 0;
    for (const GgufTensor& t : f->tensors()) {
        bits += 8.0 * static_cast<double>(t.nbytes);
        n += static_cast<double>(t.n_elements());
    }
    return n > 0 ? bits / n : 0;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

FileLock::FileLock(const fs::path& dir, const std::string& name) {
    std::error_code ec;
    fs::create_directories(dir / kLockDir, ec);
    path_ = (dir / kLockDir / (name + ".lock")).string();
    fd_ = ::open(path_.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (fd_ < 0) throw_error(path_ + ": cannot create the lock file: " + std::strerror(errno));
}

FileLock::~FileLock() { ::close(fd_); }

bool FileLock::try_lock() {
    if (held_) return true;
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return held_ = true;
    if (errno != EWOULDBLOCK) throw_error(path_ + ": cannot lock: " + std::strerror(errno));
    return false;
}

void FileLock::lock() {
    while (!held_) {
        if (::flock(fd_, LOCK_EX) == 0) held_ = true;
        else if (errno != EINTR) throw_error(path_ + ": cannot lock: " + std::strerror(errno));
    }
}

void FileLock::unlock() {
    if (held_) ::flock(fd_, LOCK_UN);
    held_ = false;
}

json Manifest::load() const {
    std::ifstream f(dir_ / kManifest);
    json j;
    if (f) j = json::parse(f, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("files") || !j["files"].is_object()) j = json{{"files", json::object()}};
    return j;
}

void Manifest::locked(const std::function<void()>& fn) const {
    FileLock l(dir_, "metadata");
    l.lock();
    fn();
}

std::optional<json> Manifest::get(const std::string& file) const {
    std::optional<json> out;
    locked([&] {
        const json j = load();
        if (j["files"].contains(file) && j["files"][file].is_object()) out = j["files"][file];
    });
    return out;
}

void Manifest::update(const std::string& file, const std::function<void(json&)>& fn) const {
    locked([&] {
        json j = load();
        json e = j["files"].contains(file) && j["files"][file].is_object() ? j["files"][file] : json::object();
        fn(e);
        if (e.is_null()) j["files"].erase(file);
        else j["files"][file] = e;
        write_text_atomically((dir_ / kManifest).string(), j.dump(1) + "\n");
    });
}

void Manifest::update_all(const std::function<void(json&)>& fn) const {
    locked([&] {
        json j = load();
        fn(j["files"]);
        write_text_atomically((dir_ / kManifest).string(), j.dump(1) + "\n");
    });
}

void write_atomically(const std::string& path, const std::function<void(std::FILE*)>& fill) {
    const std::string tmp = path + ".tmp-" + std::to_string(getpid());
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw_error(path + ": cannot create: " + std::strerror(errno));
    try {
        fill(f);
    } catch (...) {
        std::fclose(f);
        std::remove(tmp.c_str());
        throw;
    }
    const bool ok = std::fflush(f) == 0 && fsync(fileno(f)) == 0 && !std::ferror(f);
    if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw_error(path + ": write failed");
    }
}

void write_text_atomically(const std::string& path, const std::string& text) {
    write_atomically(path, [&](std::FILE* f) {
        if (std::fwrite(text.data(), 1, text.size(), f) != text.size()) throw_error(path + ": write failed");
    });
}

std::string copy_atomically(const std::string& src, const std::string& dst) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(src.c_str(), "rb"), std::fclose);
    if (!in) throw_error(src + ": cannot open");
    std::vector<char> buf(size_t{8} << 20);
    Sha256 h;
    write_atomically(dst, [&](std::FILE* out) {
        size_t n;
        while ((n = std::fread(buf.data(), 1, buf.size(), in.get())) > 0) {
            h.update(buf.data(), n);
            if (std::fwrite(buf.data(), 1, n, out) != n) throw_error(dst + ": write failed");
        }
        if (std::ferror(in.get())) throw_error(src + ": read error");
    });
    return h.hex_digest();
}

int64_t mtime_ns(const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) throw_error(p.string() + ": cannot stat");
    return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

void remove_temporaries_of(const fs::path& dir, const std::string& file, const std::function<void(const std::string&)>& say) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        const std::string f = e.path().filename().string();
        if (f.rfind(file + ".tmp", 0) != 0 || !e.is_regular_file()) continue;
        const std::string rest = f.substr(file.size());
        if (rest != ".tmp" && rest.rfind(".tmp-", 0) != 0) continue;
        if (say) say("removing an unfinished file of an interrupted run: " + f);
        fs::remove(e.path(), ec);
    }
}

FileState ReleaseFolder::state(const ReleaseStep& s) const {
    if (!fs::exists(path(s.file))) return FileState::Missing;
    const auto e = manifest_.get(s.file);
    return e && e->value("recipe", "") != s.recipe ? FileState::Stale : FileState::Complete;
}

FileLock& ReleaseFolder::lock_of(const std::string& file) {
    auto& l = locks_[file];
    if (!l) l = std::make_unique<FileLock>(dir_, file);
    return *l;
}

std::optional<bool> ReleaseFolder::claim(const ReleaseStep& s, bool wait) {
    FileLock& l = lock_of(s.file);
    if (!l.try_lock()) {
        if (!wait) return std::nullopt;
        say(s.file + ": another release is writing it; waiting");
        l.lock();
    }
    const FileState st = state(s);
    if (st == FileState::Complete) {
        locks_.erase(s.file);
        return false;
    }
    if (st == FileState::Stale) {
        say(s.file + ": made from different inputs last time; redoing it");
        fs::remove(path(s.file));
        manifest_.update(s.file, [](json& e) { e = nullptr; });
    }
    remove_temporaries_of(dir_, s.file, [&](const std::string& m) { say(m); });
    return true;
}

ReleaseFile ReleaseFolder::record(const ReleaseStep& s, bool kept, const std::string& sha) {
    const fs::path p = path(s.file);
    ReleaseFile rf;
    rf.file = s.file;
    rf.quant = s.quant;
    rf.size = fs::file_size(p);
    rf.kept = kept;
    const int64_t mtime = mtime_ns(p);
    const auto e = manifest_.get(s.file);
    if (sha.empty() && e && e->value("size", uint64_t{0}) == rf.size && e->value("mtime_ns", int64_t{0}) == mtime &&
        e->contains("sha256")) {
        rf.sha256 = (*e)["sha256"].get<std::string>();
        rf.bpw = e->value("bpw", 0.0);
        locks_.erase(s.file);
        return rf;
    }
    const auto t0 = std::chrono::steady_clock::now();
    rf.sha256 = sha.empty() ? sha256_file(p.string()) : sha;
    if (sha.empty() && rf.size > (uint64_t{256} << 20))
        say(s.file + ": hashed in " + std::to_string(static_cast<int>(seconds_since(t0))) + " s");
    rf.bpw = s.quant == "imatrix" ? 0.0 : bits_per_weight(p.string());
    manifest_.update_all([&](json& files) {
        files[s.file] = json{{"recipe", s.recipe}, {"size", rf.size}, {"mtime_ns", mtime}, {"sha256", rf.sha256}, {"bpw", rf.bpw}};
        files.erase(s.file + ".partial");
    });
    locks_.erase(s.file);
    return rf;
}

std::string ReleaseFolder::source_sha(const std::string& source) {
    const std::string key = ".source " + fs::absolute(source).lexically_normal().string();
    const uint64_t size = fs::file_size(source);
    const int64_t mtime = mtime_ns(source);
    if (const auto e = manifest_.get(key);
        e && e->value("size", uint64_t{0}) == size && e->value("mtime_ns", int64_t{0}) == mtime && e->contains("sha256"))
        return (*e)["sha256"].get<std::string>();
    const auto t0 = std::chrono::steady_clock::now();
    const std::string sha = sha256_file(source);
    say("hashed the source in " + std::to_string(static_cast<int>(seconds_since(t0))) + " s");
    manifest_.update(key, [&](json& n) { n = json{{"size", size}, {"mtime_ns", mtime}, {"sha256", sha}}; });
    return sha;
}

}  // namespace gemma
