// `gemma convert HF_DIR OUT.gguf`: a Hugging Face Gemma 1/2/3 checkpoint to GGUF, as llama.cpp's converter writes it.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "arch/arch.h"
#include "command.h"
#include "convert/convert_hf.h"

namespace {

int run_convert(int argc, char** argv) {
    CLI::App app{"Convert a Hugging Face Gemma checkpoint (config.json, safetensors, tokenizer files) to a GGUF file with "
                 "the keys, tensor names and vocabulary llama.cpp's convert_hf_to_gguf.py writes. Streams one tensor at "
                 "a time: memory use stays far below the checkpoint size.",
                 "gemma convert"};
    app.footer("Checkpoints: " + gemma::supported_hf_classes() + ".\n"
               "Gemma 3 multimodal checkpoints (Gemma3ForConditionalGeneration, 4B and larger) give their text model: "
               "the vision tower and projector are left out (llama.cpp writes them to a separate mmproj file), and "
               "the embedding keeps the tokenizer's 262144 rows of its 262208.\n"
               "Example: gemma convert ./gemma-3-1b-it gemma-3-1b-it.bf16.gguf");
    gemma::ConvertOptions opt;
    std::string outtype = "bf16";
    app.add_option("input", opt.input_dir, "checkpoint directory (config.json, model*.safetensors, tokenizer.model and/or tokenizer.json)")
        ->required();
    app.add_option("output", opt.output, "output GGUF file")->required();
    app.add_option("--outtype", outtype, "bf16 (default, lossless for Gemma), f16 (warns on overflow) or f32")
        ->check(CLI::IsMember({"bf16", "f16", "f32"}));
    app.add_option("--name", opt.name, "general.name (default: the directory's name)");
    app.add_flag("-q,--quiet", opt.quiet, "no per-tensor progress lines");
    CLI11_PARSE(app, argc, argv);
    opt.outtype = outtype == "f32" ? gemma::TypeId::F32 : outtype == "f16" ? gemma::TypeId::F16 : gemma::TypeId::BF16;
    const auto t0 = std::chrono::steady_clock::now();
    const gemma::ConvertStats st = gemma::convert_hf(opt);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "wrote %s (%s): %zu tensors, %lld parameters (%s), vocabulary from %s, %.1f s\n",
                 opt.output.c_str(), st.arch.c_str(), st.n_tensors, static_cast<long long>(st.n_params), gemma::size_label(st.n_params).c_str(),
                 st.vocab_source.c_str(), s);
    if (st.f16_overflows)
        std::fprintf(stderr, "warning: %llu value(s) overflowed f16 in total\n", static_cast<unsigned long long>(st.f16_overflows));
    return 0;
}

}  // namespace

GEMMA_REGISTER_COMMAND(convert, "convert", "convert a Hugging Face Gemma checkpoint to GGUF (bf16/f16/f32)", run_convert);
