// `gemma perplexity MODEL -f TEXT [--kl-base BASE]`: llama-perplexity's numbers, KL-divergence in one run.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <string>

#include "command.h"
#include "core/error.h"
#include "model/model.h"
#include "runtime/perplexity.h"
#include "tokenizer/tokenizer.h"

namespace {

int run_perplexity(int argc, char** argv) {
    CLI::App app{"Perplexity of a model over a text, computed as llama-perplexity does (chunks of --ctx tokens, "
                 "each alone with BOS first, the second half of each scored); with --kl-base also the "
                 "KL-divergence of the model's token distributions from the base model's.",
                 "gemma perplexity"};
    app.footer("Both models are evaluated chunk by chunk in the same run; nothing is written to disk.\n\nExamples:\n"
               "  gemma perplexity model.Q4_K_M.gguf -f wiki.test.raw --ctx 512 --chunks 20\n"
               "  gemma perplexity model.Q4_K_M.gguf -f wiki.test.raw --kl-base model.BF16.gguf\n");
    std::string model_path, text_path, base_path;
    gemma::PerplexityParams p;
    app.add_option("model", model_path, "GGUF model")->required();
    app.add_option("-f,--file", text_path, "text file")->required();
    app.add_option("-c,--ctx", p.ctx, "tokens per chunk (default 512)");
    app.add_option("--chunks", p.chunks, "use at most N chunks (default: all)");
    app.add_option("--kl-base", base_path, "base model (e.g. the BF16 file) for KL-divergence statistics");
    app.add_option("-t,--threads", p.threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
    CLI11_PARSE(app, argc, argv);

    const std::string text = gemma::read_eval_text(text_path, "-f");
    const auto model = gemma::Model::load(model_path);
    std::unique_ptr<gemma::Model> base;
    if (!base_path.empty()) {
        base = gemma::Model::load(base_path);
        gemma::require_same_vocabulary(*base, "--kl-base " + base_path, *model, model_path);
    }
    const auto tok = gemma::Tokenizer::from_gguf(model->gguf());
    const auto tokens = gemma::tokenize_eval_text(tok, text);
    std::fprintf(stderr, "%s: %zu tokens; chunks of %d tokens\n", text_path.c_str(), tokens.size(), p.ctx);
    const size_t mi = base ? 1 : 0;  // the model's index in the per-chunk results
    p.on_chunk = [&](int c, int, const std::vector<const gemma::PerplexityResult*>& r) {
        std::printf("[%d]%.4f,", c + 1, r[mi]->running.back());
        std::fflush(stdout);
    };
    const gemma::PerplexityRun run = gemma::evaluate_perplexity(base.get(), {model.get()}, tokens, p);
    const gemma::PerplexityResult& r = run.models[0];
    std::printf("\nFinal estimate: PPL = %.4f +/- %.5f (%d chunks of %d tokens, %lld positions scored)\n", r.ppl,
                r.ppl_err, run.plan.n_chunks, run.plan.ctx, static_cast<long long>(r.n_scored));
    if (base) {
        std::printf("\nBase model: PPL = %.4f +/- %.5f\n", run.base.ppl, run.base.ppl_err);
        std::printf("ln(PPL(Q)/PPL(base)): %10.6f\n", std::log(r.ppl / run.base.ppl));
        std::printf("KL-divergence from the base over %lld positions:\n%s", static_cast<long long>(r.kl.n),
                    gemma::format_kl_stats(r.kl).c_str());
    }
    return 0;
}

}  // namespace

GEMMA_REGISTER_COMMAND(perplexity, "perplexity",
                       "perplexity over a text (llama-perplexity), and KL-divergence from a base model",
                       run_perplexity);
