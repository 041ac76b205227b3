// `gemma release` as a library: a source model in, a resumable published ladder out (GGUFs, imatrix,
// SHA256SUMS, a README.md model card with sizes, bits per weight and evaluation results).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "runtime/release_card.h"

namespace gemma {

// Where a release stands, for one progress line (format_release_progress).
struct ReleaseProgress {
    std::string phase;          // "imatrix", "quantizing", "evaluating"
    size_t files_done = 0;      // ladder and BF16 files complete (kept or finished)
    size_t files_total = 0;
    size_t files_writing = 0;   // being written by this process now
    std::string current;        // e.g. "blk.7.ffn_up.weight -> IQ3_S, Q4_K" or "chunk 3/16"
    double bytes_per_s = 0;     // bytes written per second (quantizing)
    double fraction = 0;        // of the phase's work
    double elapsed_s = 0;       // of the phase
    double eta_s = -1;          // seconds left in the phase; < 0: not known yet
};
std::string format_release_progress(const ReleaseProgress& p);

struct ReleaseOptions {
    std::string source;               // GGUF (F32/F16/BF16) or a Hugging Face checkpoint directory
    std::string out_dir;
    std::string name;                 // file prefix; default: general.name, else the source's file stem
    std::vector<std::string> types;   // ladder names (release_ladder_names() spelling); empty: the whole ladder
    std::string imatrix_file;         // an existing importance matrix (GGUF or legacy .dat) to use and publish
    std::string imatrix_text;         // calibration text to compute one; neither: no imatrix (IQ3_XS/IQ3_XXS skipped)
    int imatrix_ctx = 512;
    int imatrix_chunks = -1;          // <= 0: every whole chunk
    std::string eval_text;            // empty: no KL-divergence / perplexity / speed columns
    int eval_ctx = 512;
    int eval_chunks = -1;             // <= 0: every whole chunk
    int gen_tokens = 32;              // tokens decoded one by one for the tokens/s column
    int threads = 0;                  // <= 0: all cores
    double checkpoint_seconds = 60;   // how often unfinished files are made durable for a later resume
    bool dry_run = false;             // only plan: log each file's size and the jobs and work of one pass
    std::function<void(const std::string&)> log;              // events (the CLI prints them on stderr)
    std::function<void(const ReleaseProgress&)> progress;     // often; the CLI keeps one line up to date
};

struct ReleaseResult {
    std::vector<ReleaseFile> files;  // card order: the ladder, then BF16, then the imatrix
    std::vector<std::string> notes;  // e.g. types skipped for want of an imatrix
    size_t jobs_run = 0;             // distinct (tensor, type) quantizations this run did
    size_t jobs_planned = 0;         // quantized tensors summed over the files it wrote
};

// A comma-separated list of ladder types (case-insensitive; the Q3_K/Q4_K/Q5_K alias files included;
// "all" is the published ladder, so "all,IQ3_XXS" adds one); returned in card order. Throws gemma::Error naming an unknown or non-ladder type.
std::vector<std::string> parse_release_types(const std::string& list);

// Produces every file of the release in opt.out_dir, quantizing straight from the source (a Hugging Face
// checkpoint is converted to the BF16 file first, which is then the source). All missing ladder files are
// written in one pass that runs each distinct (tensor, type) job once. Files already complete there (under
// their final names: writers only rename finished files) with a matching recipe are kept, so a killed run
// resumes. Each file is made under its own lock: processes with disjoint --types share a folder, and a
// process waits only for files another one is writing. Throws gemma::Error for bad input, before any long work.
ReleaseResult make_release(const ReleaseOptions& opt);

}  // namespace gemma
