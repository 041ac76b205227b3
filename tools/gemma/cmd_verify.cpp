// `gemma verify DIR`: audits a folder of ladder files and exits non-zero when something is wrong.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "command.h"
#include "runtime/verify.h"

namespace {

int run_verify(int argc, char** argv) {
    CLI::App app{"Audit a folder of GGUF ladder files (a `gemma release` folder or anyone's): SHA256SUMS match the "
                 "files; every GGUF parses and its tensors lie inside the file; architecture, vocabulary, chat "
                 "template and hyperparameters agree across files; each file's per-tensor types are exactly what "
                 "its quant type's mix gives (the type in the file name, which must agree with general.file_type); "
                 "the README.md card's rows match the files' names, quant methods and sizes. With --base and --text, "
                 "a short KL-divergence test of every file against the base, flagged when a file's result is out of "
                 "order with its neighbours by size. Prints a table; exits 1 when anything fails.",
                 "gemma verify"};
    app.footer("Examples:\n"
               "  gemma verify release/\n"
               "  gemma verify release/ --base release/gemma-7b.BF16.gguf --text wiki.test.raw --chunks 4\n");
    gemma::VerifyOptions o;
    app.add_option("dir", o.dir, "folder of GGUF files")->required();
    app.add_option("--base", o.base, "reference GGUF for the KL-divergence test (e.g. the BF16 file)");
    app.add_option("--text", o.text, "text for the KL-divergence test");
    app.add_option("--ctx", o.ctx, "tokens per chunk (default 256)")->check(CLI::PositiveNumber);
    app.add_option("--chunks", o.chunks, "chunks to evaluate (default 4; 0: all)")->check(CLI::NonNegativeNumber);
    app.add_option("--kld-tolerance", o.kld_tolerance,
                   "flag a file whose KLD is this many times worse (or better) than both neighbours by size (default 2)")
        ->check(CLI::Range(1.0, 1e9));
    app.add_option("-t,--threads", o.threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
    CLI11_PARSE(app, argc, argv);
    o.log = [](const std::string& s) {
        std::fprintf(stderr, "%s\n", s.c_str());
        std::fflush(stderr);
    };
    const gemma::VerifyReport r = gemma::verify_folder(o);
    std::fputs(gemma::render_verify_report(r).c_str(), stdout);
    return r.ok() ? 0 : 1;
}

}  // namespace

GEMMA_REGISTER_COMMAND(verify, "verify", "audit a folder of ladder files (checksums, structure, mixes, card, KLD)",
                       run_verify);
