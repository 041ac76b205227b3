// Test helpers shared by every test file.
#include "support/golden.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include "gemma_paths.h"

namespace gemma::test {

const std::string& golden_dir() {
    static const std::string dir = [] {
        const char* env = std::getenv("GEMMA_GOLDEN_DIR");
        std::string d = env && *env ? env : std::string(GEMMA_SOURCE_DIR) + "/../shared/golden";
        if (!std::filesystem::is_directory(d)) {
            std::fprintf(stderr, "FATAL: golden data not found at '%s' (set GEMMA_GOLDEN_DIR)\n", d.c_str());
            std::abort();
        }
        return d;
    }();
    return dir;
}

std::string golden(const std::string& rel) { return golden_dir() + "/" + rel; }

std::string temp_dir() {
    static int counter = 0;
    auto base = std::filesystem::temp_directory_path() /
                ("gemma-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(base);
    std::filesystem::create_directories(base);
    static std::vector<std::string> all;
    static struct Cleanup { ~Cleanup() { for (auto& d : all) std::filesystem::remove_all(d); } } cleanup;
    all.push_back(base.string());
    return base.string();
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

double rel_l2(const float* a, const float* ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; ++i) {
        const double d = static_cast<double>(a[i]) - ref[i];
        num += d * d;
        den += static_cast<double>(ref[i]) * ref[i];
    }
    return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

int run_gemma(const std::string& args, std::string* out, std::string* err) {
    const std::string dir = temp_dir();
    const std::string o = dir + "/stdout", e = dir + "/stderr";
    const std::string cmd = std::string(GEMMA_BINARY) + " " + args + " >" + o + " 2>" + e + " </dev/null";
    const int rc = std::system(cmd.c_str());
    auto slurp = [](const std::string& p) {
        std::ifstream f(p);
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
    };
    if (out) *out = slurp(o);
    if (err) *err = slurp(e);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

}  // namespace gemma::test
