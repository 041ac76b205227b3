// `gemma synth-hf DIR`: write a random-weight Hugging Face Gemma 1/2/3 checkpoint (tests and benchmarks of `convert`).
#include <CLI/CLI.hpp>

#include "arch/arch.h"
#include "command.h"
#include "convert/hf_synth.h"

namespace {

int run_synth_hf(int argc, char** argv) {
    CLI::App app{"Write a synthetic checkpoint in the Hugging Face layout of the shape's family "
                 "(GemmaForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, or Gemma3ForConditionalGeneration with "
                 "--layout): config.json, generation_config.json, random weights as safetensors (optionally sharded "
                 "with an index) and the family's tokenizer files.",
                 "gemma synth-hf"};
    app.footer("Shapes: " + gemma::shape_names() + " (gemma synth --help lists their sizes).\n"
               "Tokenizer: Gemma 1/2 shapes copy golden/vocab/hf (tokenizer.json, tokenizer_config.json; --with-spm adds "
               "a tokenizer.model); Gemma 3 shapes write tokenizer.model and tokenizer_config.json from "
               "golden/gemma3/gemma3-vocab.gguf. --vocab-dir or --vocab choose another source.\n"
               "Layouts (Gemma 3): causal (Gemma3ForCausalLM, model.*), multimodal (Gemma3ForConditionalGeneration as "
               "transformers 4.5x saves it: text_config, language_model.model.*, a vision tower, 64 embedding rows past "
               "the tokenizer), multimodal-v5 (model.language_model.*, layer_types and rope_parameters).\n"
               "Example: gemma synth-hf /tmp/hf-g3 --shape gemma3-1b --shards 2 && gemma convert /tmp/hf-g3 out.gguf");
    gemma::HfSynthOptions opt;
    std::string dtype = "bf16", layout = "causal";
    std::vector<std::string> names;
    for (const gemma::ArchDesc& a : gemma::all_archs())
        for (const gemma::ModelShape& sh : a.shapes) names.emplace_back(sh.name);
    app.add_option("dir", opt.dir, "output directory (created)")->required();
    app.add_option("--shape", opt.shape, "a shape name (default tiny)")->check(CLI::IsMember(names));
    app.add_option("--layout", layout, "causal (default), multimodal or multimodal-v5")
        ->check(CLI::IsMember({"causal", "multimodal", "multimodal-v5"}));
    app.add_option("--shards", opt.shards, "number of safetensors shards (>1 writes model.safetensors.index.json)");
    app.add_flag("--with-spm", opt.with_spm, "with --vocab-dir sources: also write tokenizer.model");
    app.add_option("--vocab-dir", opt.vocab_dir, "directory with tokenizer.json + tokenizer_config.json to copy");
    app.add_option("--vocab", opt.vocab_gguf, "GGUF vocabulary to write tokenizer.model + tokenizer_config.json from");
    app.add_option("--n-vocab", opt.n_vocab, "with a GGUF vocabulary: keep only its first N tokens (small test models)");
    app.add_option("--dtype", dtype, "bf16, f16 or f32")->check(CLI::IsMember({"bf16", "f16", "f32"}));
    app.add_option("--seed", opt.seed, "random seed");
    app.add_option("-t,--threads", opt.threads, "worker threads (default: all cores)");
    app.add_flag("-q,--quiet", opt.quiet, "no progress lines");
    CLI11_PARSE(app, argc, argv);
    opt.dtype = dtype == "f32" ? gemma::StDtype::F32 : dtype == "f16" ? gemma::StDtype::F16 : gemma::StDtype::BF16;
    opt.layout = layout == "multimodal"      ? gemma::HfLayout::Multimodal
                 : layout == "multimodal-v5" ? gemma::HfLayout::MultimodalV5
                                             : gemma::HfLayout::CausalLM;
    gemma::write_hf_checkpoint(opt);
    return 0;
}

}  // namespace

GEMMA_REGISTER_COMMAND(synth_hf, "synth-hf", "write a synthetic Hugging Face Gemma 1/2/3 checkpoint (tests, benchmarks)",
                       run_synth_hf);
