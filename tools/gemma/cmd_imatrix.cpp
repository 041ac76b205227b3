// `gemma imatrix MODEL -f TEXT [-o OUT]`: llama-imatrix's importance matrix, in its GGUF or legacy .dat format.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "command.h"
#include "core/error.h"
#include "model/model.h"
#include "runtime/imatrix_collect.h"
#include "runtime/perplexity.h"
#include "tokenizer/tokenizer.h"

namespace {

bool ends_with(const std::string& s, const std::string& suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

int run_imatrix(int argc, char** argv) {
    CLI::App app{"Compute an importance matrix (per input column of every blk.* matmul weight: the sum of squared "
                 "activations and the row count) over a calibration text, as llama-imatrix does. Feed it to "
                 "`gemma quantize --imatrix`.",
                 "gemma imatrix"};
    app.footer("The text is cut into chunks of --ctx tokens, each evaluated alone with BOS first; the perplexity of\n"
               "the chunks' second halves is printed as it goes.\n\nExample:\n"
               "  gemma imatrix model-bf16.gguf -f calibration.txt -o imatrix.gguf --chunks 100\n");
    std::string model_path, text_path, out_path, format;
    gemma::ImatrixParams p;
    app.add_option("model", model_path, "GGUF model (F32/F16/BF16 for the best statistics)")->required();
    app.add_option("-f,--file", text_path, "calibration text file")->required();
    app.add_option("-o,--output", out_path, "output file (default imatrix.gguf, or imatrix.dat with --format dat)");
    app.add_option("--chunks", p.chunks, "use at most N chunks (default: all)");
    app.add_option("-c,--ctx", p.ctx, "tokens per chunk (default 512)");
    app.add_option("--format", format, "gguf (default; the .dat extension of -o selects dat) or dat")
        ->check(CLI::IsMember({"gguf", "dat"}));
    app.add_option("-t,--threads", p.threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
    CLI11_PARSE(app, argc, argv);
    if (format.empty()) format = ends_with(out_path, ".dat") ? "dat" : "gguf";
    if (out_path.empty()) out_path = format == "dat" ? "imatrix.dat" : "imatrix.gguf";

    const std::string text = gemma::read_eval_text(text_path, "-f");
    const auto model = gemma::Model::load(model_path);
    const auto tok = gemma::Tokenizer::from_gguf(model->gguf());
    const auto tokens = gemma::tokenize_eval_text(tok, text);
    std::fprintf(stderr, "%s: %zu tokens; chunks of %d tokens\n", text_path.c_str(), tokens.size(), p.ctx);
    p.dataset = text_path;
    p.on_chunk = [](int c, int, double ppl) {
        std::printf("[%d]%.4f,", c + 1, ppl);
        std::fflush(stdout);
    };
    const gemma::ImatrixRun run = gemma::collect_imatrix(*model, tokens, p);
    std::printf("\nFinal estimate: PPL = %.4f over %d chunks\n", run.ppl, run.n_chunks);
    if (format == "dat") gemma::save_imatrix_dat(run.imatrix, out_path);
    else gemma::save_imatrix_gguf(run.imatrix, out_path);
    std::fprintf(stderr, "saved %zu entries (%d chunks of %d tokens) to %s\n", run.imatrix.entries.size(), run.n_chunks,
                 p.ctx, out_path.c_str());
    return 0;
}

}  // namespace

GEMMA_REGISTER_COMMAND(imatrix, "imatrix", "compute an importance matrix over a calibration text (llama-imatrix)",
                       run_imatrix);
