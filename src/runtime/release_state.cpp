// Locks, manifest and atomic writes of a release folder (see release_state.h).
#include "runtime/release_state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "core/error.h"
#include "core/sha256.h"

namespace gemma {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kManifest = ".gemma-release.json";
constexpr const char* kLockDir = ".gemma-release.locks";

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

}  // namespace gemma
