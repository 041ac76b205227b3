// A release's published text: SHA256SUMS and the README.md model card, written by `release` and read back
// by `verify` (one place knows both formats).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gemma {

struct ReleaseEval {
    double ppl = 0, ppl_err = 0;
    double kld_mean = 0, kld_median = 0, kld_p99 = 0, kld_max = 0, same_top_percent = 0;
    double gen_tokens_per_s = 0;
};

struct ReleaseFile {
    std::string file;       // "<name>.Q4_K_M.gguf"
    std::string quant;      // "Q4_K_M" (as the ladder names it: "Q4_K" for the alias file)
    uint64_t size = 0;
    double bpw = 0;         // tensor bits / tensor elements
    std::string sha256;
    bool kept = false;      // already complete from an earlier run
    std::optional<ReleaseEval> eval;
};

struct CardText {
    std::string name;             // file prefix and title
    std::string source;           // what the files were made from
    std::string imatrix;          // "none" or a description
    std::string evaluation;       // empty: no evaluation columns
    std::vector<std::string> notes;
};

std::string render_card(const CardText& c, const std::vector<ReleaseFile>& files);
std::string render_sha256sums(const std::vector<ReleaseFile>& files);

// A "| Name | Quant method | Size | ..." row of a card's file table.
struct CardRow {
    std::string file, quant, size;
};
// The rows of the first table whose header starts "| Name | Quant method | Size"; empty if there is none.
std::vector<CardRow> parse_card_rows(const std::string& card);

struct ChecksumLine {
    std::string sha256, file;
};
// `sha256sum` output ("<64 hex>  <name>", or " *<name>" in binary mode). Throws gemma::Error naming the
// line for anything else.
std::vector<ChecksumLine> parse_sha256sums(const std::string& text);

}  // namespace gemma
