// Test helpers for release tests: `gemma` started in the background, and a folder's published files.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gemma::test {

// Starts the gemma binary with `args` (stdout to /dev/null, stderr to `log`, "" for /dev/null); returns its pid.
pid_t spawn_gemma(std::vector<std::string> args, const std::string& log = "");
// The files of a folder that do not start with '.', with their bytes.
std::map<std::string, std::vector<uint8_t>> folder_files(const std::string& dir);

}  // namespace gemma::test
