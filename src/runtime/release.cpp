// The release pipeline: BF16 file, imatrix, every ladder file, checksums, evaluation and the model card,
// each step skipped when its output is already complete (the manifest records recipes and hashes).
#include "runtime/release.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "convert/convert_hf.h"
#include "core/error.h"
#include "core/sha256.h"
#include "gguf/describe.h"
#include "gguf/gguf.h"
#include "model/context.h"
#include "model/model.h"
#include "quant/quantize_model.h"
#include "runtime/imatrix_collect.h"
#include "runtime/perplexity.h"
#include "tokenizer/tokenizer.h"

namespace gemma {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kManifest = ".gemma-release.json";
constexpr const char* kLock = ".gemma-release.lock";

std::string strf(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string strf(const char* f, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, f);
    std::vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return buf;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

bool is_float_type(TypeId t) { return t == TypeId::F32 || t == TypeId::F16 || t == TypeId::BF16; }

std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

// Writes through "<path>.tmp-<pid>", fsynced, then renamed: a reader never sees a partial file under `path`.
void write_atomically(const std::string& path, const std::function<void(std::FILE*)>& fill) {
    const std::string tmp = path + ".tmp-" + std::to_string(getpid());
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw_error(path + ": cannot create");
    try {
        fill(f);
    } catch (...) {
        std::fclose(f);
        std::remove(tmp.c_str());
        throw;
    }
    const bool ok = std::fflush(f) == 0 && fsync(fileno(f)) == 0 && !std::ferror(f);
    if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw_error(path + ": write failed");
    }
}

void write_text_atomically(const std::string& path, const std::string& text) {
    write_atomically(path, [&](std::FILE* f) {
        if (std::fwrite(text.data(), 1, text.size(), f) != text.size()) throw_error(path + ": write failed");
    });
}

void copy_atomically(const std::string& src, const std::string& dst) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(src.c_str(), "rb"), std::fclose);
    if (!in) throw_error(src + ": cannot open");
    std::vector<char> buf(size_t{8} << 20);
    write_atomically(dst, [&](std::FILE* out) {
        size_t n;
        while ((n = std::fread(buf.data(), 1, buf.size(), in.get())) > 0)
            if (std::fwrite(buf.data(), 1, n, out) != n) throw_error(dst + ": write failed");
        if (std::ferror(in.get())) throw_error(src + ": read error");
    });
}

int64_t mtime_ns(const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) throw_error(p.string() + ": cannot stat");
    return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

std::string mib(uint64_t bytes) { return strf("%.1f MiB", static_cast<double>(bytes) / 1048576.0); }

double bits_per_weight(const std::string& path) {
    const auto f = GgufFile::open(path);
    double bits = 0, n = 0;
    for (const GgufTensor& t : f->tensors()) {
        bits += 8.0 * static_cast<double>(t.nbytes);
        n += static_cast<double>(t.n_elements());
    }
    return n > 0 ? bits / n : 0;
}

// The output directory's state: what each finished file was made from, its hash and its evaluation.
class Manifest {
public:
    explicit Manifest(fs::path dir) : dir_(std::move(dir)) {
        std::ifstream f(dir_ / kManifest);
        if (f) j_ = json::parse(f, nullptr, /*allow_exceptions=*/false);
        if (!j_.is_object() || !j_.contains("files") || !j_["files"].is_object()) j_ = json{{"files", json::object()}};
    }
    json* entry(const std::string& file) {
        auto& files = j_["files"];
        return files.contains(file) ? &files[file] : nullptr;
    }
    json& make(const std::string& file) { return j_["files"][file]; }
    void erase(const std::string& file) { j_["files"].erase(file); }
    void save() const { write_text_atomically((dir_ / kManifest).string(), j_.dump(1) + "\n"); }

private:
    fs::path dir_;
    json j_;
};

// Holds an exclusive lock on the output directory for the whole run (released by the kernel on exit,
// also after SIGKILL), so two releases never write the same files.
class DirLock {
public:
    explicit DirLock(const fs::path& dir) {
        const std::string p = (dir / kLock).string();
        fd_ = ::open(p.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
        if (fd_ < 0) throw_error(p + ": cannot create the lock file");
        if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            ::close(fd_);
            throw_error(dir.string() + ": another `gemma release` is writing to this directory");
        }
    }
    ~DirLock() { ::close(fd_); }
    DirLock(const DirLock&) = delete;
    DirLock& operator=(const DirLock&) = delete;

private:
    int fd_ = -1;
};

struct Step {
    std::string file, quant;
    std::string recipe;
};

class Releaser {
public:
    explicit Releaser(const ReleaseOptions& o) : opt_(o), dir_(o.out_dir), manifest_(dir_) {}

    void say(const std::string& s) const {
        if (opt_.log) opt_.log(s);
    }
    std::string path(const std::string& file) const { return (dir_ / file).string(); }

    // True when `file` is complete and was made by `recipe` (files without a manifest entry are adopted:
    // they carry their final name only because a writer finished them).
    bool keep(const Step& s) {
        if (!fs::exists(path(s.file))) return false;
        const json* e = manifest_.entry(s.file);
        if (e && e->value("recipe", "") != s.recipe) {
            say(s.file + ": made from different inputs last time; redoing it");
            fs::remove(path(s.file));
            manifest_.erase(s.file);
            manifest_.save();
            return false;
        }
        return true;
    }

    // Hashes `file` unless the manifest already has the hash of exactly this file, then records it.
    ReleaseFile record(const Step& s, bool kept) {
        const fs::path p = path(s.file);
        const uint64_t size = fs::file_size(p);
        const int64_t mtime = mtime_ns(p);
        json* e = manifest_.entry(s.file);
        ReleaseFile rf;
        rf.file = s.file;
        rf.quant = s.quant;
        rf.size = size;
        rf.kept = kept;
        if (e && e->value("size", uint64_t{0}) == size && e->value("mtime_ns", int64_t{0}) == mtime &&
            e->contains("sha256")) {
            rf.sha256 = (*e)["sha256"].get<std::string>();
            rf.bpw = e->value("bpw", 0.0);
        } else {
            const auto t0 = std::chrono::steady_clock::now();
            rf.sha256 = sha256_file(p.string());
            rf.bpw = s.quant == "imatrix" ? 0.0 : bits_per_weight(p.string());
            if (size > (uint64_t{256} << 20)) say(strf("  sha256 of %s in %.1f s", s.file.c_str(), seconds_since(t0)));
            json& n = manifest_.make(s.file);
            n = json{{"recipe", s.recipe}, {"size", size}, {"mtime_ns", mtime}, {"sha256", rf.sha256}, {"bpw", rf.bpw}};
            manifest_.save();
        }
        return rf;
    }

    void store_eval(const std::string& file, const std::string& key, const ReleaseEval& ev) {
        json* e = manifest_.entry(file);
        GEMMA_ASSERT(e);
        (*e)["eval"] = json{{"key", key},           {"ppl", ev.ppl},           {"ppl_err", ev.ppl_err},
                            {"kld_mean", ev.kld_mean}, {"kld_median", ev.kld_median}, {"kld_p99", ev.kld_p99},
                            {"kld_max", ev.kld_max},  {"same_top_percent", ev.same_top_percent},
                            {"gen_tokens_per_s", ev.gen_tokens_per_s}};
    }
    std::optional<ReleaseEval> load_eval(const std::string& file, const std::string& key) {
        const json* e = manifest_.entry(file);
        if (!e || !e->contains("eval") || (*e)["eval"].value("key", "") != key) return std::nullopt;
        const json& v = (*e)["eval"];
        ReleaseEval ev;
        ev.ppl = v.value("ppl", 0.0);
        ev.ppl_err = v.value("ppl_err", 0.0);
        ev.kld_mean = v.value("kld_mean", 0.0);
        ev.kld_median = v.value("kld_median", 0.0);
        ev.kld_p99 = v.value("kld_p99", 0.0);
        ev.kld_max = v.value("kld_max", 0.0);
        ev.same_top_percent = v.value("same_top_percent", 0.0);
        ev.gen_tokens_per_s = v.value("gen_tokens_per_s", 0.0);
        return ev;
    }
    void save_manifest() { manifest_.save(); }

private:
    const ReleaseOptions& opt_;
    fs::path dir_;
    Manifest manifest_;
};

// Removes temporaries a killed run left behind (GgufWriter's ".tmp-<pid>", legacy ".tmp").
void remove_stale_temporaries(const fs::path& dir, const std::string& name, const Releaser& r) {
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string f = e.path().filename().string();
        const bool ours = f.rfind(name + ".", 0) == 0 || f.rfind("SHA256SUMS", 0) == 0 || f.rfind("README.md", 0) == 0 ||
                          f.rfind(kManifest, 0) == 0;
        if (ours && e.is_regular_file() && (f.find(".tmp-") != std::string::npos || f.ends_with(".tmp"))) {
            r.say("removing an unfinished file of an interrupted run: " + f);
            fs::remove(e.path());
        }
    }
}

double measure_generation(const Model& m, ops::ThreadPool& pool, std::span<const int32_t> tokens, int n_gen) {
    ContextParams cp;
    cp.n_ctx = n_gen + 16;
    cp.pool = &pool;
    Context c(m, cp);
    auto tok = [&](size_t i) { return tokens[i % tokens.size()]; };
    std::vector<int32_t> prompt;
    for (size_t i = 0; i < 8; ++i) prompt.push_back(tok(i));
    c.eval(prompt);
    c.decode(tok(8));  // warm-up: pages the weights in
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n_gen; ++i) c.decode(tok(9 + static_cast<size_t>(i)));
    return n_gen / seconds_since(t0);
}

std::string default_name(const GgufFile& src, const std::string& source) {
    std::string n = src.get_string("general.name", "");
    for (char& c : n)
        if (c == ' ' || c == '/' || c == '\\') c = '-';
    if (n.empty() || n == "." || n == "..") n = fs::path(source).stem().string();
    return n;
}

std::string card(const ReleaseOptions& opt, const std::string& name, const ReleaseResult& r, const std::string& source,
                 const std::string& imatrix_desc, const std::string& eval_desc) {
    std::ostringstream o;
    const bool has_eval = !opt.eval_text.empty();
    o << "# " << name << " GGUF\n\n";
    o << "GGUF files of **" << name << "** for llama.cpp-compatible runtimes, converted from `" << source
      << "` and quantized with gemma-gguf (byte-identical to `llama-quantize`).\n\n";
    o << "- Importance matrix: " << imatrix_desc << "\n";
    if (has_eval) o << "- Evaluation: " << eval_desc << "\n";
    for (const std::string& n : r.notes) o << "- Note: " << n << "\n";
    o << "\n## Provided files\n\n";
    o << "| Name | Quant method | Size | Bits per weight |"
      << (has_eval ? " KL-divergence vs BF16 | Perplexity | Generation tokens/s |" : "") << "\n";
    o << "| ---- | ---- | ---- | ---- |" << (has_eval ? " ---- | ---- | ---- |" : "") << "\n";
    for (const ReleaseFile& f : r.files) {
        if (f.quant == "imatrix") continue;
        o << "| " << f.file << " | " << f.quant << " | " << card_size(f.size) << " | " << strf("%.2f", f.bpw) << " |";
        if (has_eval && f.eval) {
            const ReleaseEval& e = *f.eval;
            o << (f.quant == "BF16" ? std::string(" 0 (reference) |") : strf(" %.6f |", e.kld_mean))
              << strf(" %.4f ± %.4f | %.2f |", e.ppl, e.ppl_err, e.gen_tokens_per_s);
        } else if (has_eval) {
            o << " | | |";
        }
        o << "\n";
    }
    o << "\nKL-divergence is the mean over scored positions of KL(BF16 ‖ file) in nats; sizes are GiB "
         "(bytes / 2^30).\n\n## Checksums\n\n`sha256sum -c SHA256SUMS` checks every file.\n\n";
    o << "## Usage\n\n```\ngemma run " << name << ".Q4_K_M.gguf -p \"Why is the sky blue?\"\n```\n";
    return o.str();
}

}  // namespace

std::vector<std::string> parse_release_types(const std::string& list) {
    const std::vector<std::string>& ladder = release_ladder_names();
    if (list.empty() || upper(list) == "ALL") return ladder;
    std::set<std::string> want;
    std::stringstream ss(list);
    std::string item;
    while (std::getline(ss, item, ',')) {
        while (!item.empty() && item.front() == ' ') item.erase(item.begin());
        while (!item.empty() && item.back() == ' ') item.pop_back();
        if (item.empty()) continue;
        const std::string u = upper(item);
        const auto lt = find_ladder_type(u);
        if (!lt || is_float_type(lt->default_type)) {
            std::string valid;
            for (const auto& n : ladder) valid += " " + n;
            throw_error("--types: unknown type '" + item + "' (valid:" + valid + " IQ3_XXS, or all)");
        }
        want.insert(u);
    }
    if (want.empty()) throw_error("--types: no type given");
    std::vector<std::string> out;
    for (const auto& n : ladder)
        if (want.erase(n)) out.push_back(n);
    for (const auto& n : want) out.push_back(n);  // ladder types outside the published set (IQ3_XXS)
    return out;
}

ReleaseResult make_release(const ReleaseOptions& opt) {
    // Everything that can be wrong with the input is checked before any long step starts.
    if (opt.out_dir.empty()) throw_error("release: --out DIR is required");
    std::string type_list;
    for (const auto& t : opt.types) type_list += (type_list.empty() ? "" : ",") + t;
    const std::vector<std::string> types = parse_release_types(type_list);
    const std::string im_text = opt.imatrix_text.empty() ? "" : read_eval_text(opt.imatrix_text, "--imatrix-text");
    const std::string ev_text = opt.eval_text.empty() ? "" : read_eval_text(opt.eval_text, "--eval-text");
    // A Hugging Face directory is converted first; the checks that need its vocabulary run on the result.
    const bool hf = fs::is_directory(opt.source);
    std::unique_ptr<GgufFile> src;
    bool all_bf16 = true;
    std::string name = opt.name;
    if (hf) {
        if (!fs::exists(fs::path(opt.source) / "config.json"))
            throw_error(opt.source + ": a directory, but not a Hugging Face checkpoint (no config.json)");
        fs::path dir = fs::absolute(opt.source).lexically_normal();
        if (!dir.has_filename()) dir = dir.parent_path();  // "ckpt/" names "ckpt"
        if (name.empty()) name = dir.filename().string();
    } else {
        src = GgufFile::open(opt.source);
        (void)ModelConfig::from_gguf(*src);
        for (const GgufTensor& t : src->tensors()) {
            if (!is_float_type(t.type))
                throw_error(opt.source + ": tensor '" + t.name + "' is " + type_name(t.type) +
                            "; a release needs an F32, F16 or BF16 source");
            if (is_quantizable(t.name, static_cast<int>(t.n_dims)) && t.type != TypeId::BF16) all_bf16 = false;
        }
        if (name.empty()) name = default_name(*src, opt.source);
    }
    if (name.empty() || name.find('/') != std::string::npos) throw_error("--name must be a non-empty name without '/'");
    std::vector<int32_t> im_tokens, ev_tokens;
    ChunkPlan im_plan, ev_plan;
    auto plan_texts = [&](const GgufFile& f) {
        const ModelConfig cfg = ModelConfig::from_gguf(f);
        const Tokenizer tok = Tokenizer::from_gguf(f);
        auto plan = [&](const std::string& text, const char* what, int ctx, int chunks, int min_ctx,
                        std::vector<int32_t>* tokens) {
            *tokens = tokenize_eval_text(tok, text);
            try {
                return plan_chunks(tokens->size(), ctx, chunks, cfg.n_ctx_train, min_ctx);
            } catch (const Error& e) {
                throw_error(std::string(what) + ": " + e.what());
            }
        };
        if (!im_text.empty())
            im_plan = plan(im_text, "--imatrix-text", opt.imatrix_ctx, opt.imatrix_chunks, 16, &im_tokens);
        if (!ev_text.empty()) ev_plan = plan(ev_text, "--eval-text", opt.eval_ctx, opt.eval_chunks, 4, &ev_tokens);
    };
    if (src) plan_texts(*src);

    fs::create_directories(opt.out_dir);
    DirLock lock(opt.out_dir);
    Releaser rel(opt);
    remove_stale_temporaries(opt.out_dir, name, rel);
    ReleaseResult result;
    const auto t_start = std::chrono::steady_clock::now();

    // 1. The BF16 file: the reference every other file is made from and compared with.
    const Step bf16{name + ".BF16.gguf", "BF16", "BF16 of " + fs::absolute(opt.source).lexically_normal().string()};
    const std::string bf16_path = rel.path(bf16.file);
    const bool same_file = fs::exists(bf16_path) && fs::equivalent(opt.source, bf16_path);
    bool kept = same_file || rel.keep(bf16);
    if (!kept) {
        const auto t0 = std::chrono::steady_clock::now();
        rel.say(bf16.file + ": " + (hf ? "converting the Hugging Face checkpoint"
                                       : all_bf16 ? "copying the BF16 source" : "converting the source to BF16"));
        if (hf) {
            ConvertOptions c;
            c.input_dir = opt.source;
            c.output = bf16_path;
            c.outtype = TypeId::BF16;
            c.name = opt.name;
            c.quiet = true;
            convert_hf(c);
        } else if (all_bf16) {
            copy_atomically(opt.source, bf16_path);
        } else {
            QuantizeOptions q;
            q.input = opt.source;
            q.output = bf16_path;
            q.ftype = Ftype::BF16;
            q.threads = opt.threads;
            q.quiet = true;
            quantize_model(q);
        }
        rel.say(strf("%s: done in %.1f s", bf16.file.c_str(), seconds_since(t0)));
    } else {
        rel.say(bf16.file + ": complete, kept");
    }
    if (hf) plan_texts(*GgufFile::open(bf16_path));
    const ReleaseFile bf16_rec = rel.record(bf16, kept);
    // Everything below is made from the BF16 file, so a new BF16 file invalidates it all.
    const std::string from = bf16_rec.sha256.substr(0, 16);

    // 2. The importance matrix, from the BF16 model.
    std::string im_path, im_sha, im_desc = "none";
    std::optional<ReleaseFile> im_rec;
    if (!im_text.empty()) {
        const Step st{name + ".imatrix.gguf", "imatrix",
                      strf("imatrix of %s text=%s ctx=%d chunks=%d", from.c_str(), sha256_hex(im_text).c_str(),
                           im_plan.ctx, im_plan.n_chunks)};
        im_path = rel.path(st.file);
        kept = rel.keep(st);
        if (!kept) {
            const auto t0 = std::chrono::steady_clock::now();
            rel.say(strf("%s: collecting over %d chunks of %d tokens", st.file.c_str(), im_plan.n_chunks, im_plan.ctx));
            const auto model = Model::load(bf16_path);
            ImatrixParams ip;
            ip.ctx = im_plan.ctx;
            ip.chunks = im_plan.n_chunks;
            ip.threads = opt.threads;
            ip.dataset = fs::path(opt.imatrix_text).filename().string();
            ip.on_chunk = [&](int c, int n, double ppl) {
                rel.say(strf("  imatrix chunk %d/%d: PPL %.4f (%.1f s)", c + 1, n, ppl, seconds_since(t0)));
            };
            save_imatrix_gguf(collect_imatrix(*model, im_tokens, ip).imatrix, im_path);
        } else {
            rel.say(st.file + ": complete, kept");
        }
        im_rec = rel.record(st, kept);
        im_sha = im_rec->sha256;
        im_desc = strf("`%s`, computed over `%s` (%d chunks of %d tokens); used for every quantization except Q8_0",
                       st.file.c_str(), fs::path(opt.imatrix_text).filename().c_str(), im_plan.n_chunks, im_plan.ctx);
    }

    // 3. The ladder, in card order. Files of the same mix (Q4_K = Q4_K_M) are made once and copied.
    std::map<std::string, std::string> made;  // recipe -> first file with it
    const size_t n_steps = types.size();
    for (size_t i = 0; i < n_steps; ++i) {
        const LadderType lt = *find_ladder_type(types[i]);
        Step st{name + "." + types[i] + ".gguf", types[i], std::string(lt.name) + " of " + from};
        if (lt.needs_imatrix && im_path.empty()) {
            result.notes.push_back(types[i] + " was skipped: it needs an importance matrix (pass --imatrix-text FILE)");
            rel.say("[" + std::to_string(i + 1) + "/" + std::to_string(n_steps) + "] " + st.file + ": skipped (" +
                    types[i] + " needs an importance matrix; pass --imatrix-text)");
            continue;
        }
        const bool use_im = !im_path.empty() && lt.ftype != Ftype::Q8_0;  // Q8_0's quantizer ignores importance
        if (use_im) st.recipe += " imatrix=" + im_sha;
        const std::string tag = "[" + std::to_string(i + 1) + "/" + std::to_string(n_steps) + "] " + st.file;
        kept = rel.keep(st);
        if (kept) {
            rel.say(tag + ": complete, kept");
        } else if (auto it = made.find(st.recipe); it != made.end()) {
            copy_atomically(rel.path(it->second), rel.path(st.file));
            rel.say(tag + ": same mix as " + it->second + ", copied");
        } else {
            const auto t0 = std::chrono::steady_clock::now();
            rel.say(tag + ": quantizing" + (use_im ? " with the imatrix" : ""));
            QuantizeOptions q;
            q.input = bf16_path;
            q.output = rel.path(st.file);
            q.ftype = lt.ftype;
            q.imatrix_path = use_im ? im_path : "";
            q.threads = opt.threads;
            q.quiet = true;
            quantize_model(q);
            rel.say(strf("%s: done in %.1f s (%s)", tag.c_str(), seconds_since(t0),
                         mib(fs::file_size(q.output)).c_str()));
        }
        made.emplace(st.recipe, st.file);
        result.files.push_back(rel.record(st, kept));
    }
    result.files.push_back(bf16_rec);

    // 4. Evaluation against the BF16 file: one pass over the chunks, the base evaluated once per chunk.
    std::string ev_desc;
    if (!ev_text.empty()) {
        const std::string key = strf("text=%s ctx=%d chunks=%d gen=%d", sha256_hex(ev_text).c_str(), ev_plan.ctx,
                                     ev_plan.n_chunks, opt.gen_tokens);
        std::map<std::string, std::vector<ReleaseFile*>> todo;  // sha256 -> files (aliases share one evaluation)
        for (ReleaseFile& f : result.files) {
            f.eval = rel.load_eval(f.file, key);
            if (!f.eval) todo[f.sha256].push_back(&f);
        }
        if (!todo.empty()) {
            const auto t0 = std::chrono::steady_clock::now();
            ops::ThreadPool pool(opt.threads);
            const auto base = Model::load(bf16_path);
            std::vector<std::unique_ptr<Model>> owned;
            std::vector<const Model*> models;
            std::vector<std::string> shas;
            for (const auto& [sha, files] : todo) {
                if (sha == bf16_rec.sha256) continue;
                owned.push_back(Model::load(rel.path(files[0]->file)));
                require_same_vocabulary(*base, bf16.file, *owned.back(), files[0]->file);
                models.push_back(owned.back().get());
                shas.push_back(sha);
            }
            rel.say(strf("evaluating %zu files against %s: %d chunks of %d tokens", models.size(), bf16.file.c_str(),
                         ev_plan.n_chunks, ev_plan.ctx));
            PerplexityParams pp;
            pp.ctx = ev_plan.ctx;
            pp.chunks = ev_plan.n_chunks;
            pp.pool = &pool;
            pp.on_chunk = [&](int c, int n, const std::vector<const PerplexityResult*>& r) {
                rel.say(strf("  eval chunk %d/%d: BF16 PPL %.4f (%.1f s)", c + 1, n, r[0]->running.back(),
                             seconds_since(t0)));
            };
            const PerplexityRun run = evaluate_perplexity(base.get(), models, ev_tokens, pp);
            auto put = [&](const std::string& sha, ReleaseEval ev, const Model& m) {
                ev.gen_tokens_per_s = measure_generation(m, pool, ev_tokens, opt.gen_tokens);
                for (ReleaseFile* f : todo[sha]) {
                    f->eval = ev;
                    rel.store_eval(f->file, key, ev);
                }
                rel.save_manifest();
            };
            ReleaseEval be;
            be.ppl = run.base.ppl;
            be.ppl_err = run.base.ppl_err;
            be.same_top_percent = 100;
            if (todo.count(bf16_rec.sha256)) put(bf16_rec.sha256, be, *base);
            for (size_t k = 0; k < models.size(); ++k) {
                const PerplexityResult& r = run.models[k];
                ReleaseEval ev;
                ev.ppl = r.ppl;
                ev.ppl_err = r.ppl_err;
                ev.kld_mean = r.kl.mean;
                ev.kld_median = r.kl.median;
                ev.kld_p99 = r.kl.p99;
                ev.kld_max = r.kl.max;
                ev.same_top_percent = r.kl.same_top_percent;
                put(shas[k], ev, *models[k]);
            }
            for (const ReleaseFile& f : result.files)
                rel.say(strf("  %-40s PPL %10.4f  KLD %9.6f  same top %6.2f%%  %8.2f tokens/s", f.file.c_str(),
                             f.eval->ppl, f.eval->kld_mean, f.eval->same_top_percent, f.eval->gen_tokens_per_s));
            rel.say(strf("evaluation done in %.1f s", seconds_since(t0)));
        }
        ev_desc = strf("perplexity and KL-divergence from the BF16 file over `%s` (%d chunks of %d tokens, the second "
                       "half of each scored, as llama-perplexity does); generation speed decoding %d tokens with %d "
                       "threads on the machine that made the release",
                       fs::path(opt.eval_text).filename().c_str(), ev_plan.n_chunks, ev_plan.ctx, opt.gen_tokens,
                       opt.threads > 0 ? opt.threads : ops::ThreadPool::default_threads());
    }
    if (im_rec) result.files.push_back(*im_rec);

    // 5. Checksums and the card, written last so they describe exactly the files present.
    std::string sums;
    for (const ReleaseFile& f : result.files) sums += f.sha256 + "  " + f.file + "\n";
    write_text_atomically(rel.path("SHA256SUMS"), sums);
    write_text_atomically(rel.path("README.md"),
                          card(opt, name, result, fs::path(opt.source).filename().string(), im_desc, ev_desc));
    rel.say(strf("release of %s complete in %.1f s: %zu files, SHA256SUMS and README.md in %s", name.c_str(),
                 seconds_since(t_start), result.files.size(), opt.out_dir.c_str()));
    return result;
}

}  // namespace gemma
