// Subcommand registry: each cmd_<name>.cpp registers itself, so main.cpp never changes when one is added.
#pragma once
#include <string>
#include <vector>

namespace gemma::cli {

struct Command {
    const char* name;
    const char* summary;      // one line for `gemma --help`
    int (*run)(int argc, char** argv);  // argv[0] is "gemma <name>"
};

std::vector<Command>& registry();

struct Registrar {
    explicit Registrar(Command c) { registry().push_back(c); }
};

}  // namespace gemma::cli

#define GEMMA_REGISTER_COMMAND(id, name, summary, fn) \
    static ::gemma::cli::Registrar gemma_cmd_registrar_##id({name, summary, fn})
