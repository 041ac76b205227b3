// The release pipeline: BF16 file, imatrix, one shared quantization pass for every missing ladder file,
// evaluation, checksums and the card; each step skipped when its output is already complete.
#include "runtime/release.h"

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "convert/convert_hf.h"
#include "core/error.h"
#include "core/sha256.h"
#include "gguf/gguf.h"
#include "model/config.h"
#include "model/model.h"
#include "quant/quantize_files.h"
#include "quant/quantize_plan.h"
#include "runtime/imatrix_collect.h"
#include "runtime/perplexity.h"
#include "runtime/release_eval.h"
#include "runtime/release_state.h"
#include "tokenizer/tokenizer.h"

namespace gemma {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

std::string strf(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string strf(const char* f, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, f);
    std::vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return buf;
}

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

bool is_float_type(TypeId t) { return t == TypeId::F32 || t == TypeId::F16 || t == TypeId::BF16; }

std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

std::string duration(double s) {
    if (s < 0) return "?";
    const long t = std::lround(s);
    if (t >= 3600) return strf("%ldh%02ldm", t / 3600, t / 60 % 60);
    if (t >= 60) return strf("%ldm%02lds", t / 60, t % 60);
    return strf("%lds", t);
}

std::string default_name(const GgufFile& src, const std::string& source) {
    std::string n = src.get_string("general.name", "");
    for (char& c : n)
        if (c == ' ' || c == '/' || c == '\\') c = '-';
    if (n.empty() || n == "." || n == "..") n = fs::path(source).stem().string();
    return n;
}

// A ladder file to make and its record once made.
struct LadderOut {
    ReleaseStep step;
    Ftype ftype;
    bool use_im;
    std::optional<ReleaseFile> rec;
};

std::vector<LadderOut> ladder_outputs(const std::vector<std::string>& types, const std::string& name, bool has_im,
                                      const std::string& src_id, const std::string& im_sha,
                                      std::vector<std::string>& notes) {
    std::vector<LadderOut> outs;
    for (const std::string& t : types) {
        const LadderType lt = *find_ladder_type(t);
        if (lt.needs_imatrix && !has_im) {
            notes.push_back(t + " was skipped: it needs an importance matrix (pass --imatrix FILE or --imatrix-text FILE)");
            continue;
        }
        const bool use_im = has_im && lt.ftype != Ftype::Q8_0;  // Q8_0's quantizer ignores importance
        outs.push_back({{name + "." + t + ".gguf", t, std::string(lt.name) + " of " + src_id + (use_im ? " imatrix=" + im_sha : "")},
                        lt.ftype, use_im, std::nullopt});
    }
    return outs;
}

// What is checked before any long step: the texts, their chunk plans against the model, the name.
struct Inputs {
    bool hf = false;
    bool all_bf16 = true;  // every quantizable source tensor is BF16: the BF16 file is a copy
    std::string name;
    std::string im_text, ev_text;
    std::vector<int32_t> im_tokens, ev_tokens;
    ChunkPlan im_plan, ev_plan;
    std::optional<Imatrix> imatrix;  // --imatrix, loaded (so a bad file fails first)

    void plan_texts(const ReleaseOptions& opt, const GgufFile& f) {
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
    }
};

Inputs check_inputs(const ReleaseOptions& opt, std::unique_ptr<GgufFile>& src) {
    if (opt.out_dir.empty()) throw_error("release: --out DIR is required");
    if (!opt.imatrix_file.empty() && !opt.imatrix_text.empty())
        throw_error("--imatrix and --imatrix-text: give one (a ready importance matrix, or a text to compute one)");
    Inputs in;
    in.im_text = opt.imatrix_text.empty() ? "" : read_eval_text(opt.imatrix_text, "--imatrix-text");
    in.ev_text = opt.eval_text.empty() ? "" : read_eval_text(opt.eval_text, "--eval-text");
    if (!opt.imatrix_file.empty()) {
        try {
            in.imatrix = load_imatrix(opt.imatrix_file);
        } catch (const Error& e) {
            throw_error(std::string("--imatrix: ") + e.what());
        }
    }
    in.hf = fs::is_directory(opt.source);
    in.name = opt.name;
    if (in.hf) {
        if (!fs::exists(fs::path(opt.source) / "config.json"))
            throw_error(opt.source + ": a directory, but not a Hugging Face checkpoint (no config.json)");
        fs::path dir = fs::absolute(opt.source).lexically_normal();
        if (!dir.has_filename()) dir = dir.parent_path();  // "ckpt/" names "ckpt"
        if (in.name.empty()) in.name = dir.filename().string();
    } else {
        src = GgufFile::open(opt.source);
        (void)ModelConfig::from_gguf(*src);
        for (const GgufTensor& t : src->tensors()) {
            if (!is_float_type(t.type))
                throw_error(opt.source + ": tensor '" + t.name + "' is " + type_name(t.type) +
                            "; a release needs an F32, F16 or BF16 source");
            if (is_quantizable(t.name, static_cast<int>(t.n_dims)) && t.type != TypeId::BF16) in.all_bf16 = false;
        }
        if (in.name.empty()) in.name = default_name(*src, opt.source);
        in.plan_texts(opt, *src);
    }
    if (in.name.empty() || in.name.find('/') != std::string::npos) throw_error("--name must be a non-empty name without '/'");
    return in;
}

}  // namespace

std::string format_release_progress(const ReleaseProgress& p) {
    std::string s = p.phase;
    if (p.files_total) s += strf(" %zu/%zu files", p.files_done, p.files_total);
    if (p.files_writing) s += strf(" (%zu being written)", p.files_writing);
    s += strf(" | %3.0f%%", 100 * p.fraction);
    if (!p.current.empty()) s += " | " + p.current;
    if (p.bytes_per_s > 0) s += strf(" | %.1f MB/s", p.bytes_per_s / 1e6);
    s += " | " + duration(p.elapsed_s) + " elapsed, ETA " + duration(p.eta_s);
    return s;
}

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
        if (u == "ALL") {
            want.insert(ladder.begin(), ladder.end());
            continue;
        }
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

namespace {

// Stand-in importance weights for planning before the imatrix exists: one entry per block weight, which
// is what a collected imatrix holds.
Imatrix planning_imatrix(const GgufFile& src) {
    Imatrix im;
    for (const GgufTensor& t : src.tensors())
        if (t.name.rfind("blk.", 0) == 0 && is_quantizable(t.name, static_cast<int>(t.n_dims)))
            im.entries[t.name] = {t.ne[0], std::vector<float>(static_cast<size_t>(t.ne[0] * t.ne[2]), 1.0f),
                                  std::vector<float>(static_cast<size_t>(t.ne[2]), 1.0f)};
    return im;
}

// --dry-run: every file's plan and the jobs one pass would run, with the work they take; writes nothing.
ReleaseResult plan_release(const ReleaseOptions& opt, const std::vector<std::string>& types, const Inputs& in,
                           const GgufFile& src) {
    ReleaseResult result;
    ImportanceWeights with_im, without_im;
    const std::string im_name = in.name + (in.imatrix && in.imatrix->legacy ? ".imatrix.dat" : ".imatrix.gguf");
    if (in.imatrix) with_im = ImportanceWeights(*in.imatrix, im_name);
    else if (!in.im_text.empty()) with_im = ImportanceWeights(planning_imatrix(src), im_name);
    std::vector<LadderOut> outs = ladder_outputs(types, in.name, with_im.present(), "", "", result.notes);
    if (!in.all_bf16) outs.push_back({{in.name + ".BF16.gguf", "BF16", ""}, Ftype::BF16, false, std::nullopt});
    std::vector<QuantPlan> plans;
    std::vector<const QuantPlan*> ptrs;
    plans.reserve(outs.size());
    for (const LadderOut& o : outs) {
        plans.push_back(plan_quantization(src, o.ftype, o.use_im ? with_im : without_im, {opt.source, im_name, false}));
        ptrs.push_back(&plans.back());
        ReleaseFile f;
        f.file = o.step.file;
        f.quant = o.step.quant;
        double bits = 0, n = 0;
        for (const PlannedTensor& t : plans.back().tensors) {
            f.size += row_size(t.type, t.src->ne[0]) * static_cast<uint64_t>(t.src->n_rows());
            n += static_cast<double>(t.src->n_elements());
        }
        bits = 8.0 * static_cast<double>(f.size);
        f.bpw = n > 0 ? bits / n : 0;
        result.files.push_back(f);
    }
    const JobTable jobs = plan_jobs(ptrs);
    const WorkEstimate w = estimate_work(ptrs, jobs);
    result.jobs_run = jobs.jobs.size();
    result.jobs_planned = jobs.planned;
    auto say = [&](const std::string& s) {
        if (opt.log) opt.log(s);
    };
    say(strf("dry run: %zu files from %s (nothing is written)", outs.size(), opt.source.c_str()));
    for (const std::string& n : result.notes) say("  " + n);
    for (const ReleaseFile& f : result.files)
        say(strf("  %-40s %8.1f MiB of tensors, %.2f bits per weight", f.file.c_str(), static_cast<double>(f.size) / 1048576.0, f.bpw));
    say(strf("%zu quantized tensors over the files; one pass runs %zu distinct jobs (%.0f%%)", jobs.planned,
             jobs.jobs.size(), jobs.planned ? 100.0 * static_cast<double>(jobs.jobs.size()) / static_cast<double>(jobs.planned) : 0.0));
    say(strf("estimated CPU time at the reference speed (one core of a 2-core EPYC VM): %s in one pass, %s as separate runs",
             duration(w.seconds).c_str(), duration(w.seconds_separate).c_str()));
    for (const WorkEstimate::Kind& k : w.kinds)
        say(strf("  %-8s%s %8.3f G elements %10s", type_name(k.type), k.weighted ? " (imatrix)" : "          ",
                 k.elements / 1e9, duration(k.seconds).c_str()));
    return result;
}

}  // namespace

ReleaseResult make_release(const ReleaseOptions& opt) {
    // Everything that can be wrong with the input is checked before any long step starts.
    std::string type_list;
    for (const auto& t : opt.types) type_list += (type_list.empty() ? "" : ",") + t;
    const std::vector<std::string> types = parse_release_types(type_list);
    std::unique_ptr<GgufFile> src;
    Inputs in = check_inputs(opt, src);
    const std::string& name = in.name;
    if (opt.dry_run) {
        if (in.hf) throw_error("--dry-run plans from a GGUF source: convert the checkpoint first (gemma convert)");
        return plan_release(opt, types, in, *src);
    }

    fs::create_directories(opt.out_dir);
    ReleaseFolder rel(opt.out_dir, opt.log);
    rel.manifest().locked([&] {
        for (const char* f : {"SHA256SUMS", "README.md", ".gemma-release.json"}) remove_temporaries_of(rel.dir(), f, {});
    });
    ReleaseResult result;
    const auto t_start = Clock::now();

    // 1. The source. A Hugging Face checkpoint becomes the BF16 file first, and that file is the source.
    const ReleaseStep bf16{name + ".BF16.gguf", "BF16", ""};
    const std::string bf16_path = rel.path(bf16.file);
    std::string source_path = opt.source, src_id;
    std::optional<ReleaseFile> bf16_rec;
    auto make_bf16_first = [&](ReleaseStep st, const std::function<std::string()>& make) {
        const auto mine = rel.claim(st, /*wait=*/true);
        if (*mine) {
            const auto t0 = Clock::now();
            const std::string sha = make();
            rel.say(strf("%s: done in %.1f s", st.file.c_str(), since(t0)));
            bf16_rec = rel.record(st, false, sha);
        } else {
            rel.say(st.file + ": complete, kept");
            bf16_rec = rel.record(st, true);
        }
    };
    if (in.hf) {
        make_bf16_first({bf16.file, "BF16", "BF16 of " + fs::absolute(opt.source).lexically_normal().string()}, [&] {
            rel.say(bf16.file + ": converting the Hugging Face checkpoint");
            ConvertOptions c;
            c.input_dir = opt.source;
            c.output = bf16_path;
            c.outtype = TypeId::BF16;
            c.name = opt.name;
            c.quiet = true;
            convert_hf(c);
            return std::string();
        });
        source_path = bf16_path;
        src = GgufFile::open(bf16_path);
        in.plan_texts(opt, *src);
        src_id = bf16_rec->sha256.substr(0, 16);
    } else if (fs::exists(bf16_path) && fs::equivalent(opt.source, bf16_path)) {
        bf16_rec = rel.record({bf16.file, "BF16", "BF16 source"}, true);
        src_id = bf16_rec->sha256.substr(0, 16);
    } else {
        src_id = rel.source_sha(opt.source).substr(0, 16);
        if (in.all_bf16) {
            make_bf16_first({bf16.file, "BF16", "BF16 of " + src_id}, [&] {
                rel.say(bf16.file + ": copying the BF16 source");
                return copy_atomically(opt.source, bf16_path);
            });
        }
    }

    // 2. The importance matrix: the one given, copied into the release, or computed from the source.
    std::string im_path, im_sha, im_desc = "none";
    std::optional<ReleaseFile> im_rec;
    if (in.imatrix || !in.im_text.empty()) {
        ReleaseStep st;
        if (in.imatrix) {
            st = {name + (in.imatrix->legacy ? ".imatrix.dat" : ".imatrix.gguf"), "imatrix", "copy of " + sha256_file(opt.imatrix_file)};
        } else {
            st = {name + ".imatrix.gguf", "imatrix",
                  strf("imatrix of %s text=%s ctx=%d chunks=%d", src_id.c_str(), sha256_hex(in.im_text).c_str(),
                       in.im_plan.ctx, in.im_plan.n_chunks)};
        }
        im_path = rel.path(st.file);
        const bool same = fs::exists(im_path) && in.imatrix && fs::equivalent(opt.imatrix_file, im_path);
        const bool make = !same && *rel.claim(st, /*wait=*/true);
        if (make && in.imatrix) {
            rel.say(st.file + ": copying " + opt.imatrix_file);
            im_rec = rel.record(st, false, copy_atomically(opt.imatrix_file, im_path));
        } else if (make) {
            const auto t0 = Clock::now();
            rel.say(strf("%s: collecting over %d chunks of %d tokens", st.file.c_str(), in.im_plan.n_chunks, in.im_plan.ctx));
            const auto model = Model::load(source_path);
            ImatrixParams ip;
            ip.ctx = in.im_plan.ctx;
            ip.chunks = in.im_plan.n_chunks;
            ip.threads = opt.threads;
            ip.dataset = fs::path(opt.imatrix_text).filename().string();
            ip.drop_weight_pages = true;  // the resident set stays near one layer, whatever the model size
            ip.on_chunk = [&](int c, int n, double ppl) {
                ReleaseProgress p;
                p.phase = "imatrix";
                p.current = strf("chunk %d/%d, PPL %.4f", c + 1, n, ppl);
                p.fraction = static_cast<double>(c + 1) / n;
                p.elapsed_s = since(t0);
                p.eta_s = p.elapsed_s / (c + 1) * (n - c - 1);
                if (opt.progress) opt.progress(p);
            };
            save_imatrix_gguf(collect_imatrix(*model, in.im_tokens, ip).imatrix, im_path);
            rel.say(strf("%s: done in %.1f s", st.file.c_str(), since(t0)));
            im_rec = rel.record(st, false);
        } else {
            rel.say(st.file + ": complete, kept");
            im_rec = rel.record(st, true);
        }
        im_sha = im_rec->sha256;
        if (in.imatrix)
            im_desc = strf("`%s` (given as `%s`); used for every quantization except Q8_0", st.file.c_str(),
                           fs::path(opt.imatrix_file).filename().c_str());
        else
            im_desc = strf("`%s`, computed over `%s` (%d chunks of %d tokens); used for every quantization except Q8_0",
                           st.file.c_str(), fs::path(opt.imatrix_text).filename().c_str(), in.im_plan.n_chunks,
                           in.im_plan.ctx);
    }

    // 3. The ladder (and the BF16 file of a non-BF16 source): plans for every file, then one pass over the
    // source for the files this process can lock, each distinct job once; then the files others were making.
    ImportanceWeights with_im, without_im;
    if (!im_path.empty()) with_im = ImportanceWeights(load_imatrix(im_path), fs::path(im_path).filename().string());
    std::vector<LadderOut> outs = ladder_outputs(types, name, !im_path.empty(), src_id, im_sha, result.notes);
    for (const std::string& n : result.notes) rel.say(n);
    if (!bf16_rec) outs.push_back({{bf16.file, "BF16", "BF16 of " + src_id}, Ftype::BF16, false, std::nullopt});
    const size_t n_files = outs.size() + (bf16_rec ? 1 : 0);
    auto n_done = [&] {
        size_t n = bf16_rec ? 1 : 0;
        for (const LadderOut& o : outs) n += o.rec ? 1 : 0;
        return n;
    };
    for (LadderOut& o : outs)
        if (rel.state(o.step) == FileState::Complete) {
            o.rec = rel.record(o.step, true);
            rel.say(o.step.file + ": complete, kept");
        }
    while (n_done() < n_files) {
        std::vector<LadderOut*> mine;
        for (LadderOut& o : outs) {
            if (o.rec) continue;
            const auto claim = rel.claim(o.step, /*wait=*/false);
            if (!claim) continue;
            if (*claim) mine.push_back(&o);
            else o.rec = rel.record(o.step, true);
        }
        if (mine.empty()) {
            // Everything left is being written by other processes: wait for the first, then look again.
            for (LadderOut& o : outs)
                if (!o.rec) {
                    if (!*rel.claim(o.step, /*wait=*/true)) o.rec = rel.record(o.step, true);
                    break;
                }
            continue;
        }
        std::vector<QuantPlan> plans;
        plans.reserve(mine.size());
        for (LadderOut* o : mine)
            plans.push_back(plan_quantization(*src, o->ftype, o->use_im ? with_im : without_im,
                                              {source_path, with_im.present() ? with_im.path() : "", false}));
        // Each file goes through "<file>.partial"; the manifest's "<file>.partial" entry says how much of it
        // an interrupted run made durable, and from what.
        std::vector<QuantOutput> qouts;
        for (size_t k = 0; k < mine.size(); ++k) {
            const ReleaseStep& st = mine[k]->step;
            QuantOutput q{rel.path(st.file), &plans[k], true, true, 0, 0};
            const auto part = rel.manifest().get(st.file + ".partial");
            if (part && part->value("recipe", "") == st.recipe && fs::exists(q.path + ".partial")) {
                q.resume_tensors = part->value("tensors", size_t{0});
                q.resume_bytes = part->value("bytes", uint64_t{0});
            } else {
                std::error_code ec;
                fs::remove(q.path + ".partial", ec);
            }
            qouts.push_back(q);
        }
        std::string names;
        size_t resuming = 0;
        for (size_t k = 0; k < mine.size(); ++k) {
            names += (names.empty() ? "" : ", ") + mine[k]->step.quant;
            resuming += qouts[k].resume_tensors > 0 ? 1 : 0;
        }
        rel.say(strf("quantizing %zu files in one pass: %s", mine.size(), names.c_str()));
        if (resuming) rel.say(strf("continuing %zu of them from the checkpoint of an interrupted run", resuming));
        QuantFilesOptions qo;
        qo.threads = opt.threads;
        qo.checkpoint_seconds = opt.checkpoint_seconds;
        qo.on_checkpoint = [&](const std::vector<std::pair<size_t, uint64_t>>& at) {
            rel.manifest().update_all([&](json& files) {
                for (size_t k = 0; k < mine.size(); ++k)
                    files[mine[k]->step.file + ".partial"] =
                        json{{"recipe", mine[k]->step.recipe}, {"tensors", at[k].first}, {"bytes", at[k].second}};
            });
        };
        const size_t done_before = n_done();
        qo.on_progress = [&](const QuantProgress& q) {
            ReleaseProgress p;
            p.phase = "quantizing";
            p.files_done = done_before;
            p.files_total = n_files;
            p.files_writing = mine.size();
            p.current = strf("tensor %zu/%zu %s: ", q.tensor + 1, q.n_tensors, q.tensor_name.c_str());
            p.current += q.types.empty() ? std::string("copied")
                         : q.types.size() == 1 ? std::string(type_name(q.types[0]))
                                               : strf("%zu types", q.types.size());
            p.bytes_per_s = q.elapsed_s > 0 ? static_cast<double>(q.bytes_written) / q.elapsed_s : 0;
            p.fraction = q.fraction;
            p.elapsed_s = q.elapsed_s;
            p.eta_s = q.eta_s;
            if (opt.progress) opt.progress(p);
        };
        const QuantFilesResult r = quantize_files(qouts, qo);
        if (r.resumed < resuming) rel.say(strf("%zu checkpoints did not match their files; those started over", resuming - r.resumed));
        result.jobs_run += r.jobs_run;
        result.jobs_planned += r.jobs_planned;
        for (size_t k = 0; k < mine.size(); ++k) mine[k]->rec = rel.record(mine[k]->step, false, r.sha256[k]);
        rel.say(strf("%zu files written in %.1f s: %zu quantization jobs for %zu quantized tensors (%.0f%%)", mine.size(),
                     r.seconds, r.jobs_run, r.jobs_planned, r.jobs_planned ? 100.0 * r.jobs_run / r.jobs_planned : 0.0));
    }
    for (LadderOut& o : outs)
        if (o.step.quant == "BF16") bf16_rec = o.rec;
        else result.files.push_back(*o.rec);
    result.files.push_back(*bf16_rec);

    // 4. Evaluation against the BF16 file: one pass over the chunks, the base evaluated once per chunk.
    std::string ev_desc;
    if (!in.ev_text.empty()) {
        const std::string key = strf("text=%s ctx=%d chunks=%d gen=%d", sha256_hex(in.ev_text).c_str(), in.ev_plan.ctx,
                                     in.ev_plan.n_chunks, opt.gen_tokens);
        std::map<std::string, std::vector<ReleaseFile*>> todo;  // sha256 -> files (aliases share one evaluation)
        for (ReleaseFile& f : result.files) {
            if (const auto e = rel.manifest().get(f.file)) f.eval = eval_from_json(*e, key);
            if (!f.eval) todo[f.sha256].push_back(&f);
        }
        if (!todo.empty()) {
            const auto t0 = Clock::now();
            std::vector<std::string> paths;
            for (const auto& [sha, files] : todo) paths.push_back(rel.path(files[0]->file));
            rel.say(strf("evaluating %zu files against %s: %d chunks of %d tokens", paths.size(), bf16_rec->file.c_str(),
                         in.ev_plan.n_chunks, in.ev_plan.ctx));
            LadderEvalOptions eo;
            eo.plan = in.ev_plan;
            eo.gen_tokens = opt.gen_tokens;
            eo.threads = opt.threads;
            eo.on_chunk = [&](int c, int n, double ppl) {
                ReleaseProgress p;
                p.phase = "evaluating";
                p.files_done = p.files_total = n_files;
                p.current = strf("chunk %d/%d, BF16 PPL %.4f", c + 1, n, ppl);
                p.fraction = static_cast<double>(c + 1) / n;
                p.elapsed_s = since(t0);
                p.eta_s = p.elapsed_s / (c + 1) * (n - c - 1);
                if (opt.progress) opt.progress(p);
            };
            const auto evals = evaluate_ladder(rel.path(bf16_rec->file), paths, in.ev_tokens, eo);
            for (auto& [sha, files] : todo)
                for (ReleaseFile* f : files) {
                    f->eval = evals.at(rel.path(files[0]->file));
                    rel.manifest().update(f->file, [&](json& e) { e["eval"] = eval_to_json(*f->eval, key); });
                }
            for (const ReleaseFile& f : result.files)
                rel.say(strf("  %-40s PPL %10.4f  KLD %9.6f  same top %6.2f%%  %8.2f tokens/s", f.file.c_str(),
                             f.eval->ppl, f.eval->kld_mean, f.eval->same_top_percent, f.eval->gen_tokens_per_s));
            rel.say(strf("evaluation done in %.1f s", since(t0)));
        }
        ev_desc = strf("perplexity and KL-divergence from the BF16 file over `%s` (%d chunks of %d tokens, the second "
                       "half of each scored, as llama-perplexity does); generation speed decoding %d tokens with %d "
                       "threads on the machine that made the release",
                       fs::path(opt.eval_text).filename().c_str(), in.ev_plan.n_chunks, in.ev_plan.ctx, opt.gen_tokens,
                       opt.threads > 0 ? opt.threads : ops::ThreadPool::default_threads());
    }
    if (im_rec) result.files.push_back(*im_rec);

    // 5. Checksums and the card, written last so they describe exactly the files present.
    fs::path shown = fs::absolute(opt.source).lexically_normal();
    if (!shown.has_filename()) shown = shown.parent_path();  // "ckpt/" shows as "ckpt"
    const CardText card{name, shown.filename().string(), im_desc, ev_desc, result.notes};
    rel.manifest().locked([&] {
        write_text_atomically(rel.path("SHA256SUMS"), render_sha256sums(result.files));
        write_text_atomically(rel.path("README.md"), render_card(card, result.files));
    });
    rel.say(strf("release of %s complete in %.1f s: %zu files, SHA256SUMS and README.md in %s", name.c_str(),
                 since(t_start), result.files.size(), opt.out_dir.c_str()));
    return result;
}

}  // namespace gemma
