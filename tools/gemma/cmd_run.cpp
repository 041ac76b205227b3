// `gemma run MODEL -p PROMPT [-n N] [sampling options]`: raw text completion streamed to stdout.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "command.h"
#include "core/error.h"
#include "model/context.h"
#include "model/model.h"
#include "runtime/console.h"
#include "runtime/context_options.h"
#include "runtime/generator.h"
#include "runtime/sampling_options.h"
#include "tokenizer/tokenizer.h"

namespace {

std::vector<gemma::TokenId> parse_ids(const std::string& s) {
    std::vector<gemma::TokenId> out;
    std::istringstream in(s);
    std::string w;
    while (in >> w) {
        size_t used = 0;
        long long v = -1;
        try {
            v = std::stoll(w, &used);
        } catch (...) {
            used = 0;
        }
        if (used != w.size() || v < 0 || v > INT32_MAX) gemma::throw_error("--tokens: '" + w + "' is not a token id");
        out.push_back(static_cast<gemma::TokenId>(v));
    }
    if (out.empty()) gemma::throw_error("--tokens: no token ids given");
    return out;
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) gemma::throw_error(path + ": cannot open the prompt file");
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

int run_run(int argc, char** argv) {
    CLI::App app{"Complete a prompt with a Gemma GGUF model: raw completion (no chat turns), the prompt tokenized "
                 "with BOS and with control-token text such as <start_of_turn> read as those tokens. The "
                 "continuation streams to stdout as it is produced; timings go to stderr. Ctrl-C stops early.",
                 "gemma run"};
    std::string model_path, prompt, prompt_file, tokens_str;
    std::vector<std::string> stop;
    int32_t n_predict = -1;
    gemma::ContextOptions co;
    gemma::DraftOptions dopt;
    bool ignore_eos = false, special = false, quiet = false;
    gemma::SamplerParams sp;
    app.add_option("model", model_path, "GGUF model file")->required();
    auto* p_opt = app.add_option("-p,--prompt", prompt, "the text to continue");
    auto* f_opt = app.add_option("-f,--file", prompt_file, "read the prompt from this file")->excludes(p_opt);
    app.add_option("--tokens", tokens_str, "the prompt as token ids (\"2 106 ...\"), used as given")
        ->excludes(p_opt)->excludes(f_opt);
    app.add_option("-n,--n-predict", n_predict, "tokens to generate at most; -1: until end of text or a full context")
        ->capture_default_str();
    app.add_option("--stop", stop, "stop before this text (repeatable); it is not printed");
    app.add_flag("--ignore-eos", ignore_eos, "keep generating past end-of-text tokens");
    app.add_flag("--special", special, "print control tokens (e.g. <end_of_turn>) as text");
    app.add_flag("-q,--quiet", quiet, "no timings on stderr");
    gemma::add_context_options(app, co);
    gemma::add_draft_options(app, dopt);
    gemma::add_sampling_options(app, sp);
    app.footer("Examples:\n"
               "  gemma run model.gguf -p \"The capital of France is\" -n 32\n"
               "  gemma run model.gguf -p \"Once upon a time\" -n 200 --temp 0.7 --seed 42   # same seed, same text\n"
               "  gemma run model.gguf -p \"def fib(n):\" --temp 0 --stop $'\\n\\n'            # greedy, stop at a blank line\n"
               "  gemma run model.gguf -f prompt.txt -n 64 -t 2 --ctx 2048\n"
               "  gemma run gemma-7b.Q4_K_M.gguf --draft gemma-2b.Q4_K_M.gguf -p \"Hello\" --temp 0   # speculative\n"
               "  gemma run model.gguf -p $'<start_of_turn>user\\nHi<end_of_turn>\\n<start_of_turn>model\\n'  # a raw chat turn\n"
               "Text is used as given (no escape processing): use the shell's $'...' quoting for newlines.");
    CLI11_PARSE(app, argc, argv);

    if (p_opt->count() == 0 && f_opt->count() == 0 && tokens_str.empty())
        gemma::throw_error("give a prompt with -p TEXT, -f FILE or --tokens IDS (see gemma run --help)");
    if (!prompt_file.empty()) prompt = read_file(prompt_file);

    const auto model = gemma::Model::load(model_path);
    const gemma::Tokenizer tok = gemma::Tokenizer::from_gguf(model->gguf());
    const std::vector<gemma::TokenId> ids =
        tokens_str.empty() ? tok.encode(prompt, /*add_special=*/true, /*parse_special=*/true) : parse_ids(tokens_str);
    sp.validate(static_cast<int32_t>(model->config().n_vocab));

    gemma::Context ctx(*model, co.params());
    if (!quiet) std::fprintf(stderr, "%s\n", gemma::describe_cache(ctx.engine(), ctx.kv_cache()).c_str());
    gemma::Generator gen(ctx, tok);
    const gemma::LoadedDraft draft = gemma::load_draft(dopt, ctx, tok.vocab());
    if (draft.drafter) gen.set_drafter(draft.drafter.get());

    gemma::console::install_interrupt_handler();
    gemma::GenerateParams gp;
    gp.max_tokens = n_predict;
    gp.stop = stop;
    gp.sampling = sp;
    gp.ignore_eog = ignore_eos;
    gp.special = special;
    gp.cancel = &gemma::console::cancel_flag();
    const gemma::GenerationResult r = gen.generate(ids, gp, [](const gemma::TokenEvent& ev) {
        if (!ev.text.empty()) {
            std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
            std::fflush(stdout);
        }
        return true;
    });
    if (isatty(1)) std::fputc('\n', stdout);  // keep the shell prompt off the text; pipes get the text exactly
    std::fflush(stdout);
    if (r.stop_reason == gemma::StopReason::ContextFull) std::fprintf(stderr, "\n%s\n", r.message.c_str());
    if (!quiet) {
        std::fprintf(stderr, "\nstop: %s, seed %u\n%s", gemma::stop_reason_name(r.stop_reason), r.seed,
                     r.timings.describe().c_str());
        if (draft.drafter)
            std::fprintf(stderr, "draft:      %lld of %lld drafted tokens accepted (%.1f%%) in %lld checks\n",
                         static_cast<long long>(r.draft.n_accepted), static_cast<long long>(r.draft.n_drafted),
                         100.0 * r.draft.acceptance(), static_cast<long long>(r.draft.n_steps));
    }
    return r.stop_reason == gemma::StopReason::Cancelled ? 130 : 0;
}

}  // namespace

GEMMA_REGISTER_COMMAND(run, "run", "complete a prompt (raw text completion, streamed)", run_run);
