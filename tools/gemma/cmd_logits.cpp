// `gemma logits MODEL --tokens "2 106 ..." --out FILE.bin`: logits of every position of one batch, float32 row-major.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "command.h"
#include "core/error.h"
#include "model/context.h"
#include "model/model.h"

namespace {

std::vector<int32_t> parse_tokens(const std::string& s) {
    std::vector<int32_t> out;
    std::istringstream in(s);
    std::string w;
    while (in >> w) {
        size_t used = 0;
        long long v = 0;
        try {
            v = std::stoll(w, &used);
        } catch (...) {
            used = 0;
        }
        if (used != w.size() || v < 0 || v > INT32_MAX) gemma::throw_error("--tokens: '" + w + "' is not a token id");
        out.push_back(static_cast<int32_t>(v));
    }
    if (out.empty()) gemma::throw_error("--tokens: no token ids given");
    return out;
}

int run_logits(int argc, char** argv) {
    CLI::App app{"Evaluate token ids in one batch (positions 0..n-1) and write the logits of every position as "
                 "float32 [n_tokens][n_vocab], row-major.",
                 "gemma logits"};
    std::string model_path, tokens_str, tokens_file, out_path, kv_type = "f16";
    int threads = 0;
    int64_t n_batch = 512;
    int last = 0;
    app.add_option("model", model_path, "GGUF model file")->required();
    auto* tok = app.add_option("--tokens", tokens_str, "token ids separated by spaces");
    app.add_option("--tokens-file", tokens_file, "file holding the token ids (whitespace separated)")->excludes(tok);
    app.add_option("--out", out_path, "output file (.bin)")->required();
    app.add_option("-t,--threads", threads, "threads (default: all cores)");
    app.add_option("-b,--batch", n_batch, "tokens per pass over the weights")->check(CLI::PositiveNumber);
    app.add_option("--last", last, "write only the logits of the last N positions")->check(CLI::NonNegativeNumber);
    app.add_option("--kv-type", kv_type, "KV cache type: f16, f32 or q8_0");
    CLI11_PARSE(app, argc, argv);

    if (!tokens_file.empty()) {
        std::ifstream f(tokens_file);
        if (!f) gemma::throw_error(tokens_file + ": cannot open");
        std::stringstream ss;
        ss << f.rdbuf();
        tokens_str = ss.str();
    }
    if (tokens_str.empty()) gemma::throw_error("give the token ids with --tokens or --tokens-file");
    const std::vector<int32_t> tokens = parse_tokens(tokens_str);
    const auto kvt = gemma::type_from_name(kv_type);
    if (!kvt) gemma::throw_error("--kv-type: unknown type '" + kv_type + "'");

    const auto model = gemma::Model::load(model_path);
    gemma::ContextParams p;
    p.n_ctx = static_cast<int64_t>(tokens.size());
    p.n_batch = n_batch;
    p.n_threads = threads;
    p.kv_type = *kvt;
    gemma::Context ctx(*model, p);

    const auto n = static_cast<int32_t>(tokens.size());
    const int32_t first = last > 0 && last < n ? n - last : 0;
    const size_t n_rows = static_cast<size_t>(n - first);
    std::vector<float> logits(n_rows * static_cast<size_t>(model->config().n_vocab));
    ctx.forward(tokens, 0, n - first, logits.data());

    std::ofstream out(out_path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * sizeof(float)));
    out.close();
    if (!out) gemma::throw_error(out_path + ": write failed");
    std::fprintf(stderr, "wrote %zu x %lld logits to %s\n", n_rows,
                 static_cast<long long>(model->config().n_vocab), out_path.c_str());
    return 0;
}

}  // namespace

GEMMA_REGISTER_COMMAND(logits, "logits", "evaluate token ids in one batch and write their logits (float32)", run_logits);
