// Audits a ladder folder: checksums, GGUF structure, metadata agreement, per-tensor mixes, the card, and
// optionally a KL-divergence smoke test whose results must rise as the files shrink.
#include "runtime/verify.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/sha256.h"
#include "gguf/describe.h"
#include "gguf/gguf.h"
#include "model/config.h"
#include "quant/quantize_plan.h"
#include "runtime/perplexity.h"
#include "runtime/release_card.h"
#include "runtime/release_eval.h"
#include "tokenizer/tokenizer.h"

namespace gemma {
namespace fs = std::filesystem;

namespace {

std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

// Sizes for the table: MiB below a GiB (card_size's GB would read 0GB for small files).
std::string table_size(uint64_t bytes) {
    char b[32];
    if (bytes < (uint64_t{1} << 30)) std::snprintf(b, sizeof b, "%.1fMiB", static_cast<double>(bytes) / 1048576.0);
    else return card_size(bytes);
    return b;
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// The ladder type a file name ends with ("x.Q4_K_M.gguf", "x-q4_k_m.gguf"; the longest name that fits).
std::string label_from_name(const std::string& file) {
    const std::string stem = upper(fs::path(file).stem().string());
    std::vector<std::string> names = {"Q3_K", "Q4_K", "Q5_K"};
    for (const LadderType& l : ladder_types()) names.push_back(l.name);
    std::string best;
    for (const std::string& n : names) {
        if (stem.size() <= n.size() || stem.compare(stem.size() - n.size(), n.size(), n) != 0) continue;
        const char sep = stem[stem.size() - n.size() - 1];
        if ((sep == '.' || sep == '-' || sep == '_') && n.size() > best.size()) best = n;
    }
    return best;
}

std::string file_type_label(const GgufFile& f) {
    const GgufValue* v = f.find("general.file_type");
    if (!v || !v->is_integer()) return "";
    const uint64_t ft = f.get_uint("general.file_type");
    for (const LadderType& l : ladder_types())
        if (static_cast<uint64_t>(l.ftype) == ft) return l.name;
    return "";
}

std::string fmt(const char* f, double v) {
    char b[256];
    std::snprintf(b, sizeof b, f, v);
    return b;
}

bool has_imatrix_keys(const GgufFile& f) {
    for (const GgufKv& kv : f.kvs())
        if (kv.key.rfind("quantize.imatrix.", 0) == 0) return true;
    return false;
}

// Metadata that must agree across the files of one ladder, in groups that name what differs.
struct KeyGroup {
    const char* what;
    bool (*in)(const std::string& key, const std::string& arch);
};
const KeyGroup kGroups[] = {
    {"architecture", [](const std::string& k, const std::string&) { return k == "general.architecture"; }},
    {"vocabulary", [](const std::string& k, const std::string&) {
         return k.rfind("tokenizer.", 0) == 0 && k.rfind("tokenizer.chat_template", 0) != 0;
     }},
    {"chat template", [](const std::string& k, const std::string&) { return k.rfind("tokenizer.chat_template", 0) == 0; }},
    {"hyperparameters", [](const std::string& k, const std::string& arch) { return !arch.empty() && k.rfind(arch + ".", 0) == 0; }},
};

// The first key of group `g` on which the files differ; "" when they agree.
std::string group_difference(const KeyGroup& g, const GgufFile& a, const GgufFile& b, const std::string& arch) {
    std::map<std::string, const GgufValue*> ka, kb;
    for (const GgufKv& kv : a.kvs())
        if (g.in(kv.key, arch)) ka[kv.key] = &kv.value;
    for (const GgufKv& kv : b.kvs())
        if (g.in(kv.key, arch)) kb[kv.key] = &kv.value;
    for (const auto& [k, v] : ka)
        if (!kb.count(k) || !gguf_values_equal(*v, *kb[k])) return k;
    for (const auto& [k, v] : kb)
        if (!ka.count(k)) return k;
    return "";
}

class Auditor {
public:
    explicit Auditor(const VerifyOptions& o) : o_(o), dir_(o.dir) {}

    void say(const std::string& s) const {
        if (o_.log) o_.log(s);
    }
    void issue(Severity s, const std::string& file, const std::string& what) {
        r_.issues.push_back({s, file, what});
        if (s == Severity::Failure)
            if (VerifiedFile* f = find(file)) f->failed = true;
    }
    VerifiedFile* find(const std::string& file) {
        for (VerifiedFile& f : r_.files)
            if (f.file == file) return &f;
        return nullptr;
    }

    void list() {
        if (!fs::is_directory(dir_)) throw_error(o_.dir + ": not a directory");
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(dir_)) {
            const std::string f = e.path().filename().string();
            if (f[0] != '.' && e.is_regular_file()) names.push_back(f);
        }
        std::sort(names.begin(), names.end());
        for (const std::string& f : names) {
            VerifiedFile v;
            v.file = f;
            v.kind = "other";
            v.size = fs::file_size(dir_ / f);
            r_.files.push_back(v);
        }
    }

    void checksums() {
        const fs::path sums = dir_ / "SHA256SUMS";
        if (!fs::exists(sums)) {
            issue(Severity::Warning, "", "no SHA256SUMS: file contents are not checked against checksums");
            return;
        }
        std::vector<ChecksumLine> lines;
        try {
            lines = parse_sha256sums(slurp(sums));
        } catch (const Error& e) {
            issue(Severity::Failure, "SHA256SUMS", e.what());
            return;
        }
        std::set<std::string> listed;
        for (const ChecksumLine& l : lines) {
            listed.insert(l.file);
            VerifiedFile* f = find(l.file);
            if (!f) {
                issue(Severity::Failure, l.file, "listed in SHA256SUMS, but the folder has no such file");
                continue;
            }
            say("hashing " + l.file);
            const bool ok = sha256_file((dir_ / l.file).string()) == l.sha256;
            f->checksum = ok ? "ok" : "MISMATCH";
            if (!ok) issue(Severity::Failure, l.file, "its SHA-256 does not match SHA256SUMS (changed or damaged)");
        }
        for (VerifiedFile& f : r_.files)
            if (!listed.count(f.file) && f.file != "SHA256SUMS" && f.file != "README.md") {
                f.checksum = "not listed";
                issue(Severity::Warning, f.file, "not listed in SHA256SUMS");
            }
    }

    void parse_and_check_mixes() {
        for (VerifiedFile& f : r_.files) {
            if (fs::path(f.file).extension() != ".gguf") continue;
            std::unique_ptr<GgufFile> g;
            try {
                g = GgufFile::open((dir_ / f.file).string());
            } catch (const Error& e) {
                f.kind = "model";
                issue(Severity::Failure, f.file, std::string("does not parse: ") + e.what());
                continue;
            }
            if (g->get_string("general.type", "") == "imatrix") {
                f.kind = "imatrix";
                continue;
            }
            f.kind = "model";
            f.arch = g->get_string("general.architecture", "");
            double bits = 0, n = 0;
            for (const GgufTensor& t : g->tensors()) {
                bits += 8.0 * static_cast<double>(t.nbytes);
                n += static_cast<double>(t.n_elements());
            }
            f.bpw = n > 0 ? bits / n : 0;
            check_mix(f, *g);
            models_[f.file] = std::move(g);
        }
    }

    void check_mix(VerifiedFile& f, const GgufFile& g) {
        const std::string named = label_from_name(f.file), typed = file_type_label(g);
        const auto named_lt = find_ladder_type(named), typed_lt = find_ladder_type(typed);
        if (named_lt && typed_lt && named_lt->ftype != typed_lt->ftype)
            issue(Severity::Failure, f.file, "named " + named + ", but general.file_type says " + typed);
        f.quant = !named.empty() ? named : typed;
        const auto lt = named_lt ? named_lt : typed_lt;
        if (!lt) {
            issue(Severity::Warning, f.file, "no quant type in its name or general.file_type: its mix is not checked");
            return;
        }
        const MixContext ctx = mix_context(g);
        const bool im = has_imatrix_keys(g);
        size_t wrong = 0;
        std::string first;
        for (const GgufTensor& t : g.tensors()) {
            const TypeId want = planned_type(lt->ftype, ctx, t, im);
            if (want == t.type) continue;
            if (!wrong++)
                first = t.name + " is " + type_name(t.type) + " where the mix gives " + type_name(want);
        }
        if (wrong)
            issue(Severity::Failure, f.file, std::to_string(wrong) + " tensors are not what the " + lt->name + " mix" +
                                                 (im ? " with an imatrix" : "") + " gives (" + first + ")");
    }

    // Files are grouped by equal metadata, per key group; those outside the largest group (the one holding
    // the BF16 file on a tie) are the odd ones out.
    void agreement() {
        if (models_.size() < 2) return;
        std::vector<std::string> names;
        for (const auto& [name, g] : models_) names.push_back(name);
        for (const KeyGroup& grp : kGroups) {
            std::vector<std::vector<std::string>> classes;
            for (const std::string& n : names) {
                const std::string arch = models_[n]->get_string("general.architecture", "");
                auto c = std::find_if(classes.begin(), classes.end(), [&](const std::vector<std::string>& cl) {
                    return group_difference(grp, *models_[cl[0]], *models_[n], arch).empty();
                });
                if (c == classes.end()) classes.push_back({n});
                else c->push_back(n);
            }
            if (classes.size() < 2) continue;
            auto bf16 = [](const std::vector<std::string>& cl) {
                return std::any_of(cl.begin(), cl.end(), [](const std::string& n) { return label_from_name(n) == "BF16"; });
            };
            const auto major = std::max_element(classes.begin(), classes.end(), [&](const auto& a, const auto& b) {
                return a.size() != b.size() ? a.size() < b.size() : !bf16(a) && bf16(b);
            });
            const std::string& ref = (*major)[0];
            for (const auto& cl : classes) {
                if (&cl == &*major) continue;
                for (const std::string& n : cl) {
                    const std::string arch = models_[ref]->get_string("general.architecture", "");
                    const std::string key = group_difference(grp, *models_[ref], *models_[n], arch);
                    const bool plural = std::string(grp.what) == "hyperparameters";
                    issue(Severity::Failure, n, std::string("its ") + grp.what + (plural ? " differ" : " differs") + " from " + ref + "'s" +
                                                    (major->size() > 1 ? " (and " + std::to_string(major->size() - 1) + " more)" : "") +
                                                    " (" + key + ")");
                }
            }
        }
    }

    void card() {
        const fs::path readme = dir_ / "README.md";
        if (!fs::exists(readme)) {
            issue(Severity::Warning, "", "no README.md model card");
            return;
        }
        const std::vector<CardRow> rows = parse_card_rows(slurp(readme));
        if (rows.empty()) issue(Severity::Warning, "README.md", "no \"| Name | Quant method | Size |\" table of files");
        std::set<std::string> carded;
        for (const CardRow& row : rows) {
            carded.insert(row.file);
            VerifiedFile* f = find(row.file);
            if (!f) {
                issue(Severity::Failure, row.file, "the card lists it, but the folder has no such file");
                continue;
            }
            if (!f->quant.empty() && upper(row.quant) != upper(f->quant))
                issue(Severity::Failure, f->file, "the card says quant method " + row.quant + ", the file is " + f->quant);
            if (row.size != card_size(f->size))
                issue(Severity::Failure, f->file, "the card says size " + row.size + ", the file has " + card_size(f->size));
        }
        if (!rows.empty())
            for (const VerifiedFile& f : r_.files)
                if (f.kind == "model" && !carded.count(f.file)) issue(Severity::Warning, f.file, "not in the card's table");
    }

    void kld() {
        if (o_.base.empty() && o_.text.empty()) return;
        if (o_.base.empty() || o_.text.empty()) throw_error("--base and --text go together (the KL-divergence test needs both)");
        const auto base = GgufFile::open(o_.base);
        const ModelConfig cfg = ModelConfig::from_gguf(*base);
        const std::vector<int32_t> tokens = tokenize_eval_text(Tokenizer::from_gguf(*base), read_eval_text(o_.text, "--text"));
        ChunkPlan plan;
        try {
            plan = plan_chunks(tokens.size(), o_.ctx, o_.chunks, cfg.n_ctx_train, 4);
        } catch (const Error& e) {
            throw_error(std::string("--text: ") + e.what());
        }
        std::vector<std::string> paths;
        const GgufValue* base_tokens = base->find("tokenizer.ggml.tokens");
        for (const auto& [name, g] : models_) {
            const GgufValue* t = g->find("tokenizer.ggml.tokens");
            if (!base_tokens || !t || !gguf_values_equal(*base_tokens, *t)) {
                issue(Severity::Failure, name, "its vocabulary differs from the base's: not evaluated");
                continue;
            }
            paths.push_back(fs::absolute(dir_ / name).lexically_normal().string());
        }
        say("evaluating " + std::to_string(paths.size()) + " files against " + o_.base + ": " +
            std::to_string(plan.n_chunks) + " chunks of " + std::to_string(plan.ctx) + " tokens");
        LadderEvalOptions eo;
        eo.plan = plan;
        eo.threads = o_.threads;
        eo.repack = false;
        eo.on_chunk = [&](int c, int n, double) { say("  chunk " + std::to_string(c + 1) + "/" + std::to_string(n)); };
        models_.clear();  // the evaluation maps the files itself
        for (const auto& [path, ev] : evaluate_ladder(fs::absolute(o_.base).lexically_normal().string(), paths, tokens, eo))
            if (VerifiedFile* f = find(fs::path(path).filename().string())) f->kld = ev.kld_mean;
        kld_order();
    }

    // A larger file should not be much worse than a smaller one. Each such inversion involves two files;
    // the one out of order with the most others is blamed (a damaged file is worse than every smaller one,
    // its healthy neighbour is out of order only with it); a tie blames both.
    void kld_order() {
        std::vector<VerifiedFile*> v;
        for (VerifiedFile& f : r_.files)
            if (f.kld) v.push_back(&f);
        auto k = [](const VerifiedFile* f) { return std::max(*f->kld, 1e-4); };  // below this: noise
        auto inverted = [&](const VerifiedFile* small, const VerifiedFile* large) {
            return large->bpw > small->bpw + 0.01 && k(large) > o_.kld_tolerance * k(small);
        };
        std::vector<std::vector<size_t>> with(v.size());
        for (size_t i = 0; i < v.size(); ++i)
            for (size_t j = 0; j < v.size(); ++j)
                if (inverted(v[i], v[j]) || inverted(v[j], v[i])) with[i].push_back(j);
        for (size_t i = 0; i < v.size(); ++i) {
            if (with[i].empty()) continue;
            bool blamed = true;
            for (size_t j : with[i]) blamed = blamed && with[i].size() >= with[j].size();
            if (!blamed) continue;
            const VerifiedFile* o = v[with[i][0]];
            issue(Severity::Failure, v[i]->file,
                  fmt("KL-divergence %.6f is out of order by size with ", *v[i]->kld) + std::to_string(with[i].size()) +
                      (with[i].size() == 1 ? " file (" : " files (e.g. ") + o->file + fmt(" %.6f, ", *o->kld) +
                      (o->bpw < v[i]->bpw ? "smaller)" : "larger)"));
        }
    }

    VerifyReport take() { return std::move(r_); }

private:
    const VerifyOptions& o_;
    fs::path dir_;
    VerifyReport r_;
    std::map<std::string, std::unique_ptr<GgufFile>> models_;  // parsed model files, by name
};

}  // namespace

bool VerifyReport::ok() const {
    return std::none_of(issues.begin(), issues.end(), [](const VerifyIssue& i) { return i.severity == Severity::Failure; });
}

VerifyReport verify_folder(const VerifyOptions& o) {
    Auditor a(o);
    a.list();
    a.checksums();
    a.parse_and_check_mixes();
    a.agreement();
    a.card();
    a.kld();
    return a.take();
}

std::string render_verify_report(const VerifyReport& r) {
    std::ostringstream os;
    const bool has_kld = std::any_of(r.files.begin(), r.files.end(), [](const VerifiedFile& f) { return f.kld.has_value(); });
    char line[512];
    std::snprintf(line, sizeof line, "%-44s %-8s %-8s %10s %6s %-10s %s%s\n", "File", "Kind", "Type", "Size", "BPW",
                  "SHA256", has_kld ? "KLD        " : "", "Result");
    os << line;
    for (const VerifiedFile& f : r.files) {
        char kld[32] = "";
        if (has_kld && f.kld) std::snprintf(kld, sizeof kld, "%-10.6f ", *f.kld);
        else if (has_kld) std::snprintf(kld, sizeof kld, "%-10s ", "-");
        std::snprintf(line, sizeof line, "%-44s %-8s %-8s %10s %6s %-10s %s%s\n", f.file.c_str(), f.kind.c_str(),
                      f.quant.empty() ? "-" : f.quant.c_str(), table_size(f.size).c_str(),
                      f.kind == "model" ? fmt("%.2f", f.bpw).c_str() : "-",
                      f.checksum.empty() ? "-" : f.checksum.c_str(), kld, f.failed ? "FAIL" : "ok");
        os << line;
    }
    size_t fails = 0, warns = 0;
    for (const VerifyIssue& i : r.issues) {
        (i.severity == Severity::Failure ? fails : warns)++;
        os << (i.severity == Severity::Failure ? "FAIL " : "warn ") << (i.file.empty() ? "folder" : i.file) << ": "
           << i.what << "\n";
    }
    os << r.files.size() << " files: " << (fails ? std::to_string(fails) + " problems" : std::string("no problems"))
       << (warns ? ", " + std::to_string(warns) + " warnings" : "") << "\n";
    return os.str();
}

}  // namespace gemma
