// `gemma verify DIR` as a library: audits a folder of ladder files (ours or anyone's) and says what is wrong.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace gemma {

struct VerifyOptions {
    std::string dir;
    std::string base;          // with `text`: KL-divergence smoke test of every model file against this GGUF
    std::string text;
    int ctx = 256;             // tokens per chunk
    int chunks = 4;            // chunks evaluated (<= 0: all)
    double kld_tolerance = 2;  // a rung whose KLD is this many times worse (or better) than both neighbours is flagged
    int threads = 0;
    std::function<void(const std::string&)> log;  // progress (hashing, evaluating)
};

enum class Severity { Warning, Failure };

struct VerifyIssue {
    Severity severity;
    std::string file;  // empty: the folder
    std::string what;
};

struct VerifiedFile {
    std::string file;
    std::string kind;        // "model", "imatrix", "other"
    std::string quant;       // the mix it claims (file name, else general.file_type); "" if unknown
    std::string arch;
    uint64_t size = 0;
    double bpw = 0;
    std::string checksum;    // "ok", "MISMATCH", "not listed" or "" (no SHA256SUMS)
    std::optional<double> kld;
    bool failed = false;
};

struct VerifyReport {
    std::vector<VerifiedFile> files;  // by name
    std::vector<VerifyIssue> issues;
    bool ok() const;
};

// Checks: SHA256SUMS against the files; every GGUF parses and its tensors lie inside it; architecture,
// vocabulary, chat template and hyperparameters agree across the model files; each file's per-tensor types
// are the ones its quant type's mix gives (the type named in the file name, which must also agree with
// general.file_type); the README.md card's rows name existing files with their quant method and size; with
// a base and a text, each file's KL-divergence from the base, flagged when out of order with its neighbours
// by size. Throws gemma::Error only when the folder cannot be read at all.
VerifyReport verify_folder(const VerifyOptions& o);

// The report as a table and a list of problems, for the terminal.
std::string render_verify_report(const VerifyReport& r);

}  // namespace gemma
