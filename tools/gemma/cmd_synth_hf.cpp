// `gemma synth-hf DIR`: write a random-weight Hugging Face Gemma checkpoint (tests and benchmarks of `convert`).
#include <CLI/CLI.hpp>

#include "command.h"
#include "convert/hf_synth.h"

namespace {

int run_synth_hf(int argc, char** argv) {
    CLI::App app{"Write a synthetic GemmaForCausalLM checkpoint in the Hugging Face layout: config.json, "
                 "generation_config.json, random bf16 safetensors (optionally sharded with an index), the Gemma "
                 "tokenizer.json/tokenizer_config.json and optionally a tokenizer.model built from the same vocabulary.",
                 "gemma synth-hf"};
    app.footer("Example: gemma synth-hf /tmp/hf-2b --shape gemma-2b --shards 2 && gemma convert /tmp/hf-2b out.gguf");
    gemma::HfSynthOptions opt;
    std::string dtype = "bf16";
    app.add_option("dir", opt.dir, "output directory (created)")->required();
    app.add_option("--shape", opt.shape, "tiny, gemma-2b or gemma-7b")->check(CLI::IsMember({"tiny", "gemma-2b", "gemma-7b"}));
    app.add_option("--shards", opt.shards, "number of safetensors shards (>1 writes model.safetensors.index.json)");
    app.add_flag("--with-spm", opt.with_spm, "also write tokenizer.model");
    app.add_option("--vocab-dir", opt.vocab_dir, "directory with tokenizer.json + tokenizer_config.json (default: golden/vocab/hf)");
    app.add_option("--dtype", dtype, "bf16, f16 or f32")->check(CLI::IsMember({"bf16", "f16", "f32"}));
    app.add_option("--seed", opt.seed, "random seed");
    app.add_option("-t,--threads", opt.threads, "worker threads (default: all cores)");
    app.add_flag("-q,--quiet", opt.quiet, "no progress lines");
    CLI11_PARSE(app, argc, argv);
    opt.dtype = dtype == "f32" ? gemma::StDtype::F32 : dtype == "f16" ? gemma::StDtype::F16 : gemma::StDtype::BF16;
    gemma::write_hf_checkpoint(opt);
    return 0;
}

}  // namespace

GEMMA_REGISTER_COMMAND(synth_hf, "synth-hf", "write a synthetic Hugging Face Gemma checkpoint (tests, benchmarks)",
                       run_synth_hf);
