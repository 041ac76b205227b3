// Renders and parses a release's SHA256SUMS and README.md card.
#include "runtime/release_card.h"

#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "gguf/describe.h"

namespace gemma {
namespace {

std::string fixed(const char* fmt, double v) {
    char b[64];
    std::snprintf(b, sizeof b, fmt, v);
    return b;
}

std::string trim(const std::string& s) {
    const size_t a = s.find_first_not_of(" \t\r");
    if (a == std::string::npos) return "";
    return s.substr(a, s.find_last_not_of(" \t\r") - a + 1);
}

std::vector<std::string> cells(const std::string& line) {
    std::vector<std::string> v;
    std::string t = trim(line);
    if (t.size() < 2 || t.front() != '|' || t.back() != '|') return v;
    std::stringstream ss(t.substr(1, t.size() - 2));
    std::string c;
    while (std::getline(ss, c, '|')) v.push_back(trim(c));
    return v;
}

}  // namespace

std::string render_card(const CardText& c, const std::vector<ReleaseFile>& files) {
    std::ostringstream o;
    const bool has_eval = !c.evaluation.empty();
    o << "# " << c.name << " GGUF\n\n";
    o << "GGUF files of **" << c.name << "** for llama.cpp-compatible runtimes, converted from `" << c.source
      << "` and quantized with gemma-gguf (byte-identical to `llama-quantize`).\n\n";
    o << "- Importance matrix: " << c.imatrix << "\n";
    if (has_eval) o << "- Evaluation: " << c.evaluation << "\n";
    for (const std::string& n : c.notes) o << "- Note: " << n << "\n";
    o << "\n## Provided files\n\n";
    o << "| Name | Quant method | Size | Bits per weight |"
      << (has_eval ? " KL-divergence vs BF16 | Perplexity | Generation tokens/s |" : "") << "\n";
    o << "| ---- | ---- | ---- | ---- |" << (has_eval ? " ---- | ---- | ---- |" : "") << "\n";
    for (const ReleaseFile& f : files) {
        if (f.quant == "imatrix") continue;
        o << "| " << f.file << " | " << f.quant << " | " << card_size(f.size) << " | " << fixed("%.2f", f.bpw) << " |";
        if (has_eval && f.eval) {
            const ReleaseEval& e = *f.eval;
            o << (f.quant == "BF16" ? std::string(" 0 (reference) |") : fixed(" %.6f |", e.kld_mean))
              << fixed(" %.4f", e.ppl) << fixed(" ± %.4f |", e.ppl_err) << fixed(" %.2f |", e.gen_tokens_per_s);
        } else if (has_eval) {
            o << " | | |";
        }
        o << "\n";
    }
    o << "\nKL-divergence is the mean over scored positions of KL(BF16 ‖ file) in nats; sizes are GiB "
         "(bytes / 2^30).\n\n## Checksums\n\n`sha256sum -c SHA256SUMS` checks every file.\n\n";
    o << "## Usage\n\n```\ngemma run " << c.name << ".Q4_K_M.gguf -p \"Why is the sky blue?\"\n```\n";
    return o.str();
}

std::string render_sha256sums(const std::vector<ReleaseFile>& files) {
    std::string s;
    for (const ReleaseFile& f : files) s += f.sha256 + "  " + f.file + "\n";
    return s;
}

std::vector<CardRow> parse_card_rows(const std::string& card) {
    std::vector<CardRow> rows;
    std::istringstream in(card);
    std::string line;
    bool in_table = false;
    while (std::getline(in, line)) {
        const std::vector<std::string> c = cells(line);
        if (!in_table) {
            in_table = c.size() >= 3 && c[0] == "Name" && c[1] == "Quant method" && c[2] == "Size";
            continue;
        }
        if (c.empty()) {
            if (!rows.empty() || !trim(line).empty()) break;  // the table ended
            continue;
        }
        if (c[0].find_first_not_of("-: ") == std::string::npos) continue;  // the separator row
        if (c.size() >= 3) rows.push_back({c[0], c[1], c[2]});
    }
    return rows;
}

std::vector<ChecksumLine> parse_sha256sums(const std::string& text) {
    std::vector<ChecksumLine> v;
    std::istringstream in(text);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (trim(line).empty()) continue;
        const bool hex = line.size() > 66 && line.substr(0, 64).find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
        if (!hex || line[64] != ' ' || (line[65] != ' ' && line[65] != '*'))
            throw_error("SHA256SUMS line " + std::to_string(n) + ": not \"<64 hex digits>  <file>\": " + line.substr(0, 80));
        std::string h = line.substr(0, 64);
        for (char& ch : h) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        v.push_back({h, line.substr(66)});
    }
    return v;
}

}  // namespace gemma
