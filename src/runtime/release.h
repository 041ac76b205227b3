// `gemma release` as a library: a source model in, a resumable published ladder out (GGUFs, imatrix,
// SHA256SUMS, a README.md model card with sizes, bits per weight and evaluation results).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace gemma {

struct ReleaseOptions {
    std::string source;               // GGUF (F32/F16/BF16) or a Hugging Face checkpoint directory
    std::string out_dir;
    std::string name;                 // file prefix; default: general.name, else the source's file stem
    std::vector<std::string> types;   // ladder names (release_ladder_names() spelling); empty: the whole ladder
    std::string imatrix_text;         // calibration text; empty: no imatrix (IQ3_XS/IQ3_XXS are skipped)
    int imatrix_ctx = 512;
    int imatrix_chunks = -1;          // <= 0: every whole chunk
    std::string eval_text;            // empty: no KL-divergence / perplexity / speed columns
    int eval_ctx = 512;
    int eval_chunks = -1;             // <= 0: every whole chunk
    int gen_tokens = 32;              // tokens decoded one by one for the tokens/s column
    int threads = 0;                  // <= 0: all cores
    std::function<void(const std::string&)> log;  // progress lines (the CLI prints them on stderr)
};

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

struct ReleaseResult {
    std::vector<ReleaseFile> files;  // card order: the ladder, then BF16, then the imatrix
    std::vector<std::string> notes;  // e.g. types skipped for want of an imatrix
};

// "all" or a comma-separated list of ladder types (case-insensitive; the Q3_K/Q4_K/Q5_K alias files
// included); returned in card order. Throws gemma::Error naming an unknown or non-ladder type.
std::vector<std::string> parse_release_types(const std::string& list);

// Produces every file of the release in opt.out_dir. Files already complete there (under their final
// names: writers only rename finished files) with a matching recipe are kept, so a killed run resumes.
// Throws gemma::Error for bad input, before any long work starts.
ReleaseResult make_release(const ReleaseOptions& opt);

}  // namespace gemma
