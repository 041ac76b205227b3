// `gemma tokenize MODEL (--text T | --file F) [--ids|--pieces] [--no-parse-special]`: show how text tokenizes.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "command.h"
#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace {

std::string read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) gemma::throw_error(path + ": cannot open file");
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (f.bad()) gemma::throw_error(path + ": read error");
    return s;
}

int run_tokenize(int argc, char** argv) {
    CLI::App app{"Tokenize text with a GGUF file's vocabulary (BOS added as the vocabulary asks; control-token "
                 "text such as <start_of_turn> becomes the token unless --no-parse-special).",
                 "gemma tokenize"};
    std::string model, text, file;
    bool ids_only = false, pieces_only = false, no_parse_special = false;
    app.add_option("model", model, "GGUF model or vocabulary file")->required();
    auto* text_opt = app.add_option("--text", text, "text to tokenize");
    auto* file_opt = app.add_option("--file", file, "file whose bytes to tokenize");
    text_opt->excludes(file_opt);
    auto* ids_opt = app.add_flag("--ids", ids_only, "print only the ids, space-separated on one line");
    app.add_flag("--pieces", pieces_only, "print only the pieces, one quoted piece per line")->excludes(ids_opt);
    app.add_flag("--no-parse-special", no_parse_special, "treat control-token text as plain text");
    CLI11_PARSE(app, argc, argv);
    if (text_opt->count() == 0 && file_opt->count() == 0) gemma::throw_error("give the text with --text or --file");
    if (file_opt->count() > 0) text = read_all(file);

    const gemma::Tokenizer tok = gemma::Tokenizer::load(model);
    const std::vector<gemma::TokenId> ids = tok.encode(text, /*add_special=*/true, !no_parse_special);
    std::string out;
    if (ids_only) {
        for (size_t i = 0; i < ids.size(); ++i) {
            if (i) out += ' ';
            out += std::to_string(ids[i]);
        }
        out += '\n';
    } else {
        for (gemma::TokenId id : ids) {
            if (!pieces_only) out += std::to_string(id) + ' ';
            out += '\'' + gemma::escape_for_display(tok.token_to_piece(id, /*special=*/true)) + "'\n";
        }
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

}  // namespace

GEMMA_REGISTER_COMMAND(tokenize, "tokenize", "show the tokens of a text (ids and pieces)", run_tokenize);
