// `gemma info FILE [--json]`: what a GGUF file holds, without loading its weights.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "command.h"
#include "gguf/describe.h"

namespace {

int run_info(int argc, char** argv) {
    CLI::App app{"Show a GGUF file's architecture, hyperparameters, tokenizer, tensors (name, shape, type, bytes), "
                 "totals per type, file size and bits per weight.",
                 "gemma info"};
    std::string path;
    bool json = false, no_tensors = false;
    app.add_option("file", path, "GGUF file")->required();
    app.add_flag("--json", json, "print one JSON object instead of text");
    app.add_flag("--no-tensors", no_tensors, "leave out the per-tensor list");
    CLI11_PARSE(app, argc, argv);
    auto f = gemma::GgufFile::open(path);
    const auto d = gemma::describe_gguf(*f, !no_tensors);
    if (json) std::printf("%s\n", d.dump(2).c_str());
    else std::fputs(gemma::render_description(d).c_str(), stdout);
    return 0;
}

}  // namespace

GEMMA_REGISTER_COMMAND(info, "info", "show what a GGUF file holds (metadata, tensors, sizes)", run_info);
