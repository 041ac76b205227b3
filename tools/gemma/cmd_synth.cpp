// `gemma synth OUT --shape NAME`: random-weight Gemma 1/2/3 GGUFs of real shapes with the real vocabulary.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <string>

#include "arch/arch.h"
#include "command.h"
#include "convert/synth.h"

namespace {

// One line per shape of every family, from the arch/ tables.
std::string shapes_help() {
    std::string s = "Shapes:\n";
    for (const gemma::ArchDesc& a : gemma::all_archs()) {
        for (const gemma::ModelShape& sh : a.shapes) {
            char line[256];
            std::snprintf(line, sizeof line, "  %-12s %s: n_embd %lld, %lld layers, %lld heads, %lld KV heads, head_dim %lld, ff %lld",
                          sh.name, a.label, static_cast<long long>(sh.n_embd), static_cast<long long>(sh.n_layer),
                          static_cast<long long>(sh.n_head), static_cast<long long>(sh.n_head_kv),
                          static_cast<long long>(sh.head_dim), static_cast<long long>(sh.n_ff));
            s += line;
            if (sh.window) s += ", window " + std::to_string(sh.window);
            if (sh.rope_scale > 0) s += ", RoPE x" + std::to_string(static_cast<int>(sh.rope_scale));
            s += "\n";
        }
    }
    return s;
}

int run_synth(int argc, char** argv) {
    CLI::App app{"Write a GGUF of a Gemma family (gemma, gemma2, gemma3) with random weights of a real shape and the "
                 "family's real vocabulary, streamed tensor by tensor (a 7B-shaped F16 file is 17 GB and is never held in "
                 "memory). The tensors follow the family's table (arch/); the keys are the family's real settings.",
                 "gemma synth"};
    app.footer(shapes_help() +
               "Vocabulary: Gemma 1's for gemma and gemma2 shapes (golden/vocab/gemma-vocab.gguf), Gemma 3's for gemma3 "
               "(golden/gemma3/gemma3-vocab.gguf); --vocab or $GEMMA_VOCAB to choose another.\n"
               "Example: gemma synth demo.gguf --shape gemma3-1b --outtype f16");
    gemma::SynthOptions opt;
    if (const char* env_vocab = std::getenv("GEMMA_VOCAB")) opt.vocab_path = env_vocab;
    std::string outtype = "f16";
    std::vector<std::string> names;
    for (const gemma::ArchDesc& a : gemma::all_archs())
        for (const gemma::ModelShape& sh : a.shapes) names.emplace_back(sh.name);
    app.add_option("output", opt.output, "output GGUF")->required();
    app.add_option("--shape", opt.shape, "a shape name (below; default tiny)")->check(CLI::IsMember(names));
    app.add_option("--vocab", opt.vocab_path, "GGUF holding the tokenizer.* keys (default: the family's vocabulary)");
    app.add_option("--n-vocab", opt.n_vocab, "keep only the first N tokens (small test models)");
    app.add_option("--seed", opt.seed, "random seed (same seed, same file)");
    app.add_option("--outtype", outtype, "f32, f16 or bf16")->check(CLI::IsMember({"f32", "f16", "bf16"}));
    app.add_option("-t,--threads", opt.threads, "worker threads (default: all cores)");
    app.add_flag("-q,--quiet", opt.quiet, "no per-tensor progress lines");
    CLI11_PARSE(app, argc, argv);
    opt.outtype = outtype == "f32" ? gemma::TypeId::F32 : outtype == "bf16" ? gemma::TypeId::BF16 : gemma::TypeId::F16;
    gemma::synth_model(opt);
    return 0;
}

}  // namespace

GEMMA_REGISTER_COMMAND(synth, "synth", "write a random-weight Gemma 1/2/3 model of a real shape (tests, demos, benchmarks)",
                       run_synth);
