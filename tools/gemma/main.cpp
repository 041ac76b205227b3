// `gemma`: one binary, one subcommand per file; this file only dispatches and reports errors.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "command.h"
#include "core/error.h"

namespace gemma::cli {
std::vector<Command>& registry() {
    static std::vector<Command> r;
    return r;
}
}  // namespace gemma::cli

static void print_usage() {
    auto cmds = gemma::cli::registry();
    std::sort(cmds.begin(), cmds.end(), [](auto& a, auto& b) { return std::strcmp(a.name, b.name) < 0; });
    std::printf("gemma: convert, quantize and run Gemma models as GGUF files\n\n"
                "usage: gemma <command> [options]   (gemma <command> --help for details)\n\ncommands:\n");
    for (const auto& c : cmds) std::printf("  %-12s %s\n", c.name, c.summary);
}

int main(int argc, char** argv) {
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
        print_usage();
        return argc < 2 ? 1 : 0;
    }
    for (const auto& c : gemma::cli::registry()) {
        if (std::strcmp(c.name, argv[1]) != 0) continue;
        std::string self = std::string("gemma ") + c.name;
        argv[1] = self.data();
        try {
            return c.run(argc - 1, argv + 1);
        } catch (const gemma::Error& e) {
            std::fprintf(stderr, "error: %s\n", e.what());
            return 1;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "error: %s\n", e.what());
            return 1;
        }
    }
    std::fprintf(stderr, "error: unknown command '%s' (see gemma --help)\n", argv[1]);
    return 2;
}
