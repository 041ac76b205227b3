// `gemma chat MODEL [--system TEXT] [-p PROMPT]`: interactive multi-turn chat with a Gemma -it model.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "command.h"
#include "core/error.h"
#include "model/context.h"
#include "model/model.h"
#include "runtime/chat_session.h"
#include "runtime/context_options.h"
#include "runtime/console.h"
#include "runtime/generator.h"
#include "runtime/sampling_options.h"
#include "tokenizer/tokenizer.h"

namespace {

namespace con = gemma::console;

// Streams one reply to stdout; returns false when the conversation must start over (context full).
bool one_turn(gemma::ChatSession& chat, const std::string& text, const gemma::GenerateParams& gp, bool timings) {
    con::reset_interrupts();
    gemma::GenerationResult r;
    try {
        r = chat.reply(text, gp, [](const gemma::TokenEvent& ev) {
            if (!ev.text.empty()) {
                std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
                std::fflush(stdout);
            }
            return true;
        });
    } catch (const gemma::ContextFullError& e) {
        std::fprintf(stderr, "context full: %s. Type /clear to start a new conversation.\n", e.what());
        return false;
    }
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (r.stop_reason == gemma::StopReason::Cancelled) std::fprintf(stderr, "[reply stopped]\n");
    if (r.stop_reason == gemma::StopReason::ContextFull)
        std::fprintf(stderr, "%s. Type /clear to start a new conversation.\n", r.message.c_str());
    if (timings) std::fputs(r.timings.describe().c_str(), stderr);
    return r.stop_reason != gemma::StopReason::ContextFull;
}

int run_chat(int argc, char** argv) {
    CLI::App app{"Chat with a Gemma instruction-tuned (-it) GGUF model. Each line you type is one user turn; the "
                 "model answers in Gemma's turn format and earlier turns stay in the KV cache, so only new text is "
                 "evaluated. Commands: /clear starts over, /exit quits. Ctrl-C stops the current reply; at the "
                 "prompt, press it twice to quit. With stdin from a pipe, every line is one turn.",
                 "gemma chat"};
    std::string model_path, system, prompt;
    int32_t n_predict = -1;
    gemma::ContextOptions co;
    gemma::DraftOptions dopt;
    bool timings = false;
    gemma::SamplerParams sp;
    app.add_option("model", model_path, "GGUF model file")->required();
    app.add_option("--system", system, "system text, folded into the first user turn (Gemma has no system role)");
    app.add_option("-p,--prompt", prompt, "answer this one message and exit (no interaction)");
    app.add_option("-n,--n-predict", n_predict, "tokens per reply at most; -1: until the model ends its turn")
        ->capture_default_str();
    app.add_flag("--timings", timings, "print prompt and generation speed after every reply (stderr)");
    gemma::add_context_options(app, co);
    gemma::add_draft_options(app, dopt);
    gemma::add_sampling_options(app, sp);
    app.footer("Examples:\n"
               "  gemma chat gemma-2b-it-Q4_K_M.gguf\n"
               "  gemma chat model.gguf --system \"Answer in one sentence.\" --temp 0.5\n"
               "  gemma chat model.gguf -p \"Why is the sky blue?\"          # one turn, then exit\n"
               "  printf 'Hi!\\nTell me a joke.\\n' | gemma chat model.gguf   # one turn per line\n"
               "  gemma chat model.gguf --ctx 8192 -t 2 --seed 7");
    CLI11_PARSE(app, argc, argv);

    const auto model = gemma::Model::load(model_path);
    const gemma::Tokenizer tok = gemma::Tokenizer::from_gguf(model->gguf());
    sp.validate(static_cast<int32_t>(model->config().n_vocab));
    if (const std::string w = gemma::chat_template_warning(tok.vocab()); !w.empty())
        std::fprintf(stderr, "warning: %s\n", w.c_str());
    if (tok.vocab().find("<start_of_turn>") == gemma::kNoToken)
        gemma::throw_error(model_path + ": the vocabulary has no <start_of_turn> token; this is not a Gemma chat model");

    gemma::Context ctx(*model, co.params());
    std::fprintf(stderr, "%s\n", gemma::describe_cache(ctx.engine(), ctx.kv_cache()).c_str());
    gemma::Generator gen(ctx, tok);
    const gemma::LoadedDraft draft = gemma::load_draft(dopt, ctx, tok.vocab());
    if (draft.drafter) gen.set_drafter(draft.drafter.get());
    gemma::ChatSession chat(gen, system);

    con::install_interrupt_handler();
    gemma::GenerateParams gp;
    gp.max_tokens = n_predict;
    gp.sampling = sp;
    gp.cancel = &con::cancel_flag();

    if (app.count("--prompt") > 0) {
        if (!one_turn(chat, prompt, gp, timings)) return 1;
        return 0;
    }

    const bool interactive = con::stdin_is_terminal();
    if (interactive)
        std::fprintf(stderr, "Chatting with %s (context %lld tokens). /clear starts over, /exit or Ctrl-C twice quits.\n",
                     model_path.c_str(), static_cast<long long>(ctx.n_ctx()));
    con::reset_interrupts();
    std::string line;
    for (;;) {
        if (interactive) std::fputs("\n> ", stderr);
        const con::ReadResult rr = con::read_line(&line);
        if (rr == con::ReadResult::Eof) break;
        if (rr == con::ReadResult::Interrupted) {
            if (con::interrupt_count() >= 2) break;
            std::fputs("\n(Ctrl-C again to quit, or /exit)", stderr);
            continue;
        }
        con::reset_interrupts();
        const std::string_view text = gemma::trim_unicode_whitespace(line);
        if (text.empty()) continue;
        if (text == "/exit" || text == "/quit") break;
        if (text == "/clear") {
            chat.clear();
            if (interactive) std::fputs("(new conversation)\n", stderr);
            continue;
        }
        one_turn(chat, line, gp, timings);
        con::reset_interrupts();
    }
    if (interactive) std::fputc('\n', stderr);
    return 0;
}

}  // namespace

GEMMA_REGISTER_COMMAND(chat, "chat", "chat with a Gemma -it model (multi-turn, streamed)", run_chat);
