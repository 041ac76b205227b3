// Background processes and folder snapshots for the release tests (see release_support.h).
#include "support/release_support.h"

#include <fcntl.h>
#include <spawn.h>

#include <filesystem>

#include "gemma_paths.h"
#include "support/golden.h"

extern char** environ;

namespace gemma::test {

pid_t spawn_gemma(std::vector<std::string> args, const std::string& log) {
    args.insert(args.begin(), GEMMA_BINARY);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, log.empty() ? "/dev/null" : log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = 0;
    if (posix_spawn(&pid, GEMMA_BINARY, &fa, nullptr, argv.data(), environ) != 0) pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

std::map<std::string, std::vector<uint8_t>> folder_files(const std::string& dir) {
    std::map<std::string, std::vector<uint8_t>> m;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        const std::string f = e.path().filename().string();
        if (f[0] != '.') m[f] = read_file_bytes(e.path().string());
    }
    return m;
}

}  // namespace gemma::test
