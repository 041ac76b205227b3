// `gemma synth OUT --shape gemma-2b|gemma-7b|tiny`: random-weight Gemma GGUFs with the real vocabulary.
#include <CLI/CLI.hpp>
#include <cstdlib>

#include "command.h"
#include "convert/synth.h"
#include "core/error.h"
#include "gemma_paths.h"

namespace {

int run_synth(int argc, char** argv) {
    CLI::App app{"Write a Gemma-architecture GGUF with random weights of a real Gemma shape and the real Gemma "
                 "vocabulary, streamed tensor by tensor (a 7B-shaped F16 file is 17 GB and is never held in memory).",
                 "gemma synth"};
    app.footer("Shapes: gemma-2b (2048, 18 layers, 8 heads, 1 KV head, head_dim 256, ff 16384),\n"
               "        gemma-7b (3072, 28 layers, 16 heads, 16 KV heads, head_dim 256, ff 24576),\n"
               "        tiny (256, 2 layers, 4 heads, 4 KV heads, head_dim 128, ff 1024).\n"
               "Example: gemma synth demo.gguf --shape tiny --outtype f16");
    gemma::SynthOptions opt;
    const char* env_vocab = std::getenv("GEMMA_VOCAB");
    opt.vocab_path = env_vocab ? env_vocab : std::string(GEMMA_SOURCE_DIR) + "/../shared/golden/vocab/gemma-vocab.gguf";
    std::string outtype = "f16";
    app.add_option("output", opt.output, "output GGUF")->required();
    app.add_option("--shape", opt.shape, "gemma-2b, gemma-7b or tiny")->check(CLI::IsMember({"gemma-2b", "gemma-7b", "tiny"}));
    app.add_option("--vocab", opt.vocab_path, "GGUF holding the tokenizer.* keys (default: the Gemma vocabulary, or $GEMMA_VOCAB)");
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

GEMMA_REGISTER_COMMAND(synth, "synth", "write a random-weight Gemma model of a real shape (tests, demos, benchmarks)",
                       run_synth);
