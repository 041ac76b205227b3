// `gemma release SOURCE --out DIR`: the whole published ladder of a model, resumable, with checksums and a card.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <string>

#include "command.h"
#include "core/error.h"
#include "quant/ladder.h"
#include "runtime/release.h"

namespace {

// One progress line: rewritten in place on a terminal, printed every `interval` seconds otherwise (logs).
class ProgressLine {
public:
    explicit ProgressLine(double interval) : tty_(isatty(fileno(stderr)) != 0), interval_(interval) {}
    void log(const std::string& s) {
        clear();
        std::fprintf(stderr, "%s\n", s.c_str());
        std::fflush(stderr);
    }
    void update(const gemma::ReleaseProgress& p) {
        const auto now = std::chrono::steady_clock::now();
        const bool phase_changed = p.phase != phase_;
        if (!phase_changed && now - last_ < std::chrono::duration<double>(tty_ ? 0.25 : interval_)) return;
        last_ = now;
        phase_ = p.phase;
        const std::string line = gemma::format_release_progress(p);
        if (tty_) {
            std::fprintf(stderr, "\r\033[K%s", line.c_str());
            shown_ = true;
        } else {
            std::fprintf(stderr, "%s\n", line.c_str());
        }
        std::fflush(stderr);
    }
    void clear() {
        if (shown_) std::fprintf(stderr, "\r\033[K");
        shown_ = false;
    }

private:
    bool tty_;
    double interval_;
    bool shown_ = false;
    std::string phase_;
    std::chrono::steady_clock::time_point last_{};
};

int run_release(int argc, char** argv) {
    CLI::App app{"Make a release: the BF16 GGUF, an importance matrix, every ladder file (<name>.<QUANT>.gguf), "
                 "SHA256SUMS and a README.md model card. All missing ladder files are quantized in one pass over the "
                 "source that quantizes each distinct (tensor, type) once. Rerunning skips every file already "
                 "complete, so an interrupted release resumes; processes given disjoint --types can share one folder "
                 "(each file has its own lock), and a final plain run adds what is missing and writes the card.",
                 "gemma release"};
    std::string ladder;
    for (const auto& n : gemma::release_ladder_names()) ladder += " " + n;
    app.footer("Ladder (card order):" + ladder +
               "\nIQ3_XS (and IQ3_XXS) need an importance matrix (--imatrix or --imatrix-text); without one they "
               "are skipped.\n\nExamples:\n"
               "  gemma release gemma-7b-it.BF16.gguf --out release/ --name gemma-1.1-7b-it \\\n"
               "      --imatrix-text calibration.txt --eval-text wiki.test.raw --eval-chunks 16\n"
               "  # split over two machines sharing release/, then finish (card, SHA256SUMS):\n"
               "  gemma release SRC --out release/ --imatrix im.gguf --types Q2_K,IQ3_XS,IQ3_S,IQ3_M,Q3_K_S   # machine A\n"
               "  gemma release SRC --out release/ --imatrix im.gguf --types Q4_K_M,Q5_K_M,Q6_K,Q8_0         # machine B\n"
               "  gemma release SRC --out release/ --imatrix im.gguf\n");
    gemma::ReleaseOptions o;
    std::string types = "all";
    double interval = 30;
    app.add_option("source", o.source, "Hugging Face checkpoint directory (converted to BF16 first) or an F32/F16/BF16 GGUF")->required();
    app.add_option("--out", o.out_dir, "output directory")->required();
    app.add_option("--types", types, "all (default) or a comma-separated list, e.g. Q4_K_M,Q8_0");
    app.add_option("--name", o.name, "file name prefix (default: the model's general.name)");
    app.add_option("--imatrix", o.imatrix_file, "an importance matrix to use (GGUF or legacy .dat); published with the files");
    app.add_option("--imatrix-text", o.imatrix_text, "calibration text to compute the importance matrix from the source");
    app.add_option("--imatrix-ctx", o.imatrix_ctx, "imatrix chunk size in tokens (default 512)");
    app.add_option("--imatrix-chunks", o.imatrix_chunks, "use at most N imatrix chunks (default: all)");
    app.add_option("--eval-text", o.eval_text, "text for KL-divergence, perplexity and speed columns of the card");
    app.add_option("--eval-ctx", o.eval_ctx, "evaluation chunk size in tokens (default 512)");
    app.add_option("--eval-chunks", o.eval_chunks, "use at most N evaluation chunks (default: all)");
    app.add_option("--gen-tokens", o.gen_tokens, "tokens decoded to measure generation speed (default 32)")
        ->check(CLI::PositiveNumber);
    app.add_option("-t,--threads", o.threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
    app.add_option("--checkpoint-every", o.checkpoint_seconds,
                   "seconds between checkpoints of the files being written: a killed run resumes from the last "
                   "one (default 60)")
        ->check(CLI::NonNegativeNumber);
    app.add_flag("--dry-run", o.dry_run,
                 "plan only: each file's size, the distinct quantization jobs of one pass and their estimated CPU time "
                 "by type (to split a ladder over machines); writes nothing");
    app.add_option("--progress-interval", interval,
                   "seconds between progress lines when stderr is not a terminal (default 30)")
        ->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);
    o.types = gemma::parse_release_types(types);
    ProgressLine line(interval);
    o.log = [&](const std::string& s) { line.log(s); };
    o.progress = [&](const gemma::ReleaseProgress& p) { line.update(p); };
    const gemma::ReleaseResult r = gemma::make_release(o);
    line.clear();
    if (!o.dry_run)
        for (const auto& f : r.files) std::printf("%s  %s\n", f.sha256.c_str(), f.file.c_str());
    for (const auto& n : r.notes) std::fprintf(stderr, "note: %s\n", n.c_str());
    return 0;
}

}  // namespace

GEMMA_REGISTER_COMMAND(release, "release", "make a whole published ladder (GGUFs, imatrix, SHA256SUMS, model card)",
                       run_release);
