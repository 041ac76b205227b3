// Shared by the e2e tests that drive a `gemma serve` child process: spawn, wait ready, signal, node/npm helpers.
#pragma once
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "convert/synth.h"
#include "gemma_paths.h"
#include "support/golden.h"

extern char** environ;

namespace gemma::test {

// The port of the server's "listening on http://HOST:PORT" line, or -1 before it is printed.
inline int listening_port(const std::string& log) {
    const std::string key = "listening on http://";
    const size_t at = log.find(key);
    if (at == std::string::npos) return -1;
    const size_t colon = log.find(':', at + key.size());
    if (colon == std::string::npos) return -1;
    size_t end = colon + 1;
    while (end < log.size() && log[end] >= '0' && log[end] <= '9') ++end;
    if (end == colon + 1 || end - colon - 1 > 5) return -1;
    return std::stoi(log.substr(colon + 1, end - colon - 1));
}

inline std::string slurp(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// `gemma serve` as a child process on a free port (--port 0; the port is read back from its log line).
class ServeProcess {
public:
    explicit ServeProcess(const std::vector<std::string>& args) {
        log_ = temp_dir() + "/serve.log";
        std::vector<std::string> argv_s = {GEMMA_BINARY, "serve"};
        argv_s.insert(argv_s.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : argv_s) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (posix_spawn(&pid_, GEMMA_BINARY, &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
        posix_spawn_file_actions_destroy(&fa);
    }
    ~ServeProcess() {
        if (pid_ <= 0) return;
        kill(pid_, SIGTERM);
        for (int i = 0; i < 100; ++i) {
            if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    // Waits for the listening line and then for /health to say ok; returns the port or -1.
    int wait_ready(std::chrono::seconds limit) {
        const auto end = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < end && pid_ > 0) {
            const std::string log = slurp(log_);
            if (port_ < 0) port_ = listening_port(log);
            if (port_ > 0) {
                httplib::Client c("127.0.0.1", port_);
                if (auto r = c.Get("/health"); r && r->status == 200) return port_;
            }
            if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return -1;
    }
    std::string log() const { return slurp(log_); }
    pid_t pid() const { return pid_; }
    void signal(int sig) const {
        if (pid_ > 0) kill(pid_, sig);
    }
    // The exit status once the process has ended within `limit`, else -1.
    int wait_exit(std::chrono::seconds limit) {
        const auto end = std::chrono::steady_clock::now() + limit;
        while (pid_ > 0 && std::chrono::steady_clock::now() < end) {
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return -1;
    }

private:
    pid_t pid_ = -1;
    int port_ = -1;
    std::string log_;
};

inline int run_shell(const std::string& cmd, std::string* out) {
    const std::string file = temp_dir() + "/out";
    const int rc = std::system(("(" + cmd + ") >" + file + " 2>&1").c_str());
    *out = slurp(file);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

// tests/server's npm packages (openai, puppeteer-core, ...), installed once from the lock file.
inline void ensure_node_modules(const std::string& dir) {
    std::string out;
    ASSERT_EQ(run_shell("node --version && npm --version", &out), 0)
        << "node and npm are needed for this test (scripts/setup.sh installs them): " << out;
    bool have = true;
    for (const char* m : {"openai", "puppeteer-core", "parse-prometheus-text-format", "ajv"})
        have = have && std::filesystem::exists(dir + "/node_modules/" + m + "/package.json");
    if (have) return;
    const int rc = run_shell("cd '" + dir + "' && npm ci --no-audit --no-fund --fetch-retries=2", &out);
    ASSERT_EQ(rc, 0) << "`npm ci` in tests/server failed: these tests need the npm registry once (then the "
                        "packages stay in tests/server/node_modules).\n"
                     << out;
}

// The tiny random-weight model with the first 1024 Gemma tokens, written once per test process.
inline const std::string& tiny_model() {
    static const std::string path = [] {
        SynthOptions o;
        o.output = temp_dir() + "/tiny.gguf";
        o.shape = "tiny";
        o.n_vocab = 1024;
        o.quiet = true;
        o.vocab_path = golden("vocab/gemma-vocab.gguf");
        synth_model(o);
        return o.output;
    }();
    return path;
}

}  // namespace gemma::test
