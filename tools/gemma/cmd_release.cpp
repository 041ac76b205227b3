// `gemma release SOURCE --out DIR`: the whole published ladder of a model, resumable, with checksums and a card.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "command.h"
#include "core/error.h"
#include "quant/ladder.h"
#include "runtime/release.h"

namespace {

int run_release(int argc, char** argv) {
    CLI::App app{"Make a release: the BF16 GGUF, an importance matrix, every ladder file (<name>.<QUANT>.gguf), "
                 "SHA256SUMS and a README.md model card. Rerunning skips every file already complete, so an "
                 "interrupted release resumes where it stopped.",
                 "gemma release"};
    std::string ladder;
    for (const auto& n : gemma::release_ladder_names()) ladder += " " + n;
    app.footer("Ladder (card order):" + ladder +
               "\nIQ3_XS (and IQ3_XXS) need --imatrix-text; without it they are skipped.\n\nExample:\n"
               "  gemma release gemma-7b-it.BF16.gguf --out release/ --name gemma-1.1-7b-it \\\n"
               "      --imatrix-text calibration.txt --eval-text wiki.test.raw --eval-chunks 16\n");
    gemma::ReleaseOptions o;
    std::string types = "all";
    app.add_option("source", o.source, "Hugging Face checkpoint directory (converted to BF16 first) or an F32/F16/BF16 GGUF")->required();
    app.add_option("--out", o.out_dir, "output directory")->required();
    app.add_option("--types", types, "all (default) or a comma-separated list, e.g. Q4_K_M,Q8_0");
    app.add_option("--name", o.name, "file name prefix (default: the model's general.name)");
    app.add_option("--imatrix-text", o.imatrix_text, "calibration text for the importance matrix");
    app.add_option("--imatrix-ctx", o.imatrix_ctx, "imatrix chunk size in tokens (default 512)");
    app.add_option("--imatrix-chunks", o.imatrix_chunks, "use at most N imatrix chunks (default: all)");
    app.add_option("--eval-text", o.eval_text, "text for KL-divergence, perplexity and speed columns of the card");
    app.add_option("--eval-ctx", o.eval_ctx, "evaluation chunk size in tokens (default 512)");
    app.add_option("--eval-chunks", o.eval_chunks, "use at most N evaluation chunks (default: all)");
    app.add_option("--gen-tokens", o.gen_tokens, "tokens decoded to measure generation speed (default 32)")
        ->check(CLI::PositiveNumber);
    app.add_option("-t,--threads", o.threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
    CLI11_PARSE(app, argc, argv);
    o.types = gemma::parse_release_types(types);
    o.log = [](const std::string& s) {
        std::fprintf(stderr, "%s\n", s.c_str());
        std::fflush(stderr);
    };
    const gemma::ReleaseResult r = gemma::make_release(o);
    for (const auto& f : r.files) std::printf("%s  %s\n", f.sha256.c_str(), f.file.c_str());
    for (const auto& n : r.notes) std::fprintf(stderr, "note: %s\n", n.c_str());
    return 0;
}

}  // namespace

GEMMA_REGISTER_COMMAND(release, "release", "make a whole published ladder (GGUFs, imatrix, SHA256SUMS, model card)",
                       run_release);
