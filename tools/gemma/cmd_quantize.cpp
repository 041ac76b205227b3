// `gemma quantize IN OUT TYPE [--imatrix FILE] [--threads N]`: llama-quantize-compatible ladder quantization.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "command.h"
#include "core/error.h"
#include "quant/quantize_model.h"

namespace {

std::string type_list() {
    std::string s = "TYPE is one of (case-insensitive; Q3_K, Q4_K, Q5_K mean the _M variants):\n";
    for (const auto& l : gemma::ladder_types()) {
        char line[160];
        std::snprintf(line, sizeof line, "  %-8s %s\n", l.name, l.description);
        s += line;
    }
    return s;
}

int run_quantize(int argc, char** argv) {
    CLI::App app{"Quantize an F32/F16/BF16 GGUF to a ladder type, byte-identical to llama-quantize.", "gemma quantize"};
    app.footer(type_list() +
               "\nExamples:\n  gemma quantize model-bf16.gguf model.Q4_K_M.gguf Q4_K_M\n"
               "  gemma quantize model-bf16.gguf model.IQ3_XS.gguf IQ3_XS --imatrix imatrix.gguf\n");
    gemma::QuantizeOptions opt;
    std::string type;
    app.add_option("input", opt.input, "input GGUF (F32, F16 or BF16)")->required();
    app.add_option("output", opt.output, "output GGUF (written to a temporary name, renamed when complete)")->required();
    app.add_option("type", type, "ladder type, e.g. Q4_K_M")->required();
    app.add_option("--imatrix", opt.imatrix_path, "importance matrix (GGUF or legacy .dat, as llama-imatrix writes)");
    app.add_option("-t,--threads", opt.threads, "worker threads (default: all cores)")->check(CLI::NonNegativeNumber);
    app.add_flag("--allow-requantize", opt.allow_requantize, "accept an already-quantized input");
    app.add_flag("-q,--quiet", opt.quiet, "no per-tensor progress lines");
    CLI11_PARSE(app, argc, argv);
    auto lt = gemma::find_ladder_type(type);
    if (!lt) throw gemma::Error("unknown quantization type '" + type + "'\n" + type_list());
    opt.ftype = lt->ftype;
    const auto st = gemma::quantize_model(opt);
    std::fprintf(stderr, "quantized %d tensors: %.2f MiB -> %.2f MiB in %.2f s (%.1f MB/s of input)\n", st.n_tensors,
                 st.input_bytes / 1048576.0, st.output_bytes / 1048576.0, st.seconds,
                 st.seconds > 0 ? st.input_bytes / 1e6 / st.seconds : 0.0);
    return 0;
}

}  // namespace

GEMMA_REGISTER_COMMAND(quantize, "quantize", "quantize a GGUF to a ladder type (Q4_K_M, IQ4_XS, ...)", run_quantize);
