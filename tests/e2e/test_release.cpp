// `gemma release` end to end on a tiny synthetic model: every file, the card, checksums, resuming after SIGKILL.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "convert/hf_synth.h"
#include "convert/synth.h"
#include "core/error.h"
#include "core/sha256.h"
#include "gguf/describe.h"
#include "gguf/gguf.h"
#include "quant/ladder.h"
#include "quant/quantize_model.h"
#include "model/model.h"
#include "runtime/imatrix_collect.h"
#include "runtime/perplexity.h"
#include "runtime/release.h"
#include "runtime/verify.h"
#include "tokenizer/tokenizer.h"
#include "support/gguf_compare.h"
#include "support/golden.h"
#include "support/release_support.h"
#include "gemma_paths.h"

namespace gemma {
namespace {

namespace fs = std::filesystem;

std::string calibration() { return test::golden("tiny-7b/imatrix-calibration.txt"); }

// One tiny model per outtype for the whole suite: synthesizing is cheap but not free.
const std::string& tiny_model(TypeId type) {
    static std::map<TypeId, std::string> made;
    auto it = made.find(type);
    if (it != made.end()) return it->second;
    SynthOptions so;
    so.output = test::temp_dir() + "/tiny-" + type_name(type) + ".gguf";
    so.vocab_path = test::golden("vocab/gemma-vocab.gguf");
    so.shape = "tiny";
    so.n_vocab = 1024;
    so.outtype = type;
    so.quiet = true;
    synth_model(so);
    return made[type] = so.output;
}

ReleaseOptions options(const std::string& out, bool imatrix, bool eval) {
    ReleaseOptions o;
    o.source = tiny_model(TypeId::F16);
    o.out_dir = out;
    o.name = "tiny";
    if (imatrix) {
        o.imatrix_text = calibration();
        o.imatrix_ctx = 128;
        o.imatrix_chunks = 2;
    }
    if (eval) {
        o.eval_text = calibration();
        o.eval_ctx = 64;
        o.eval_chunks = 2;
        o.gen_tokens = 4;
    }
    o.threads = 2;
    return o;
}

std::string slurp(const std::string& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::vector<std::string> ladder_files(const std::string& name) {
    std::vector<std::string> v;
    for (const auto& q : release_ladder_names()) v.push_back(name + "." + q + ".gguf");
    return v;
}

// Every line of SHA256SUMS names a file of the directory and carries its hash; returns the file names.
std::vector<std::string> verify_checksums(const std::string& dir) {
    std::vector<std::string> names;
    std::istringstream in(slurp(dir + "/SHA256SUMS"));
    std::string line;
    while (std::getline(in, line)) {
        EXPECT_GT(line.size(), 66u) << line;
        if (line.size() <= 66) continue;
        const std::string hash = line.substr(0, 64), file = line.substr(66);
        EXPECT_EQ(line.substr(64, 2), "  ");
        EXPECT_EQ(sha256_file(dir + "/" + file), hash) << file;
        names.push_back(file);
    }
    return names;
}

void expect_no_temporaries(const std::string& dir) {
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string f = e.path().filename().string();
        EXPECT_EQ(f.find(".tmp"), std::string::npos) << "temporary left behind: " << f;
    }
}

TEST(Release, WritesEveryFileTheCardAndChecksumsThenKeepsThem) {
    const std::string dir = test::temp_dir() + "/out";
    const ReleaseResult r = make_release(options(dir, true, true));
    std::vector<std::string> want = ladder_files("tiny");
    want.push_back("tiny.BF16.gguf");
    want.push_back("tiny.imatrix.gguf");
    ASSERT_EQ(r.files.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(r.files[i].file, want[i]);
        EXPECT_TRUE(fs::exists(dir + "/" + want[i])) << want[i];
        EXPECT_FALSE(r.files[i].kept);
    }
    EXPECT_TRUE(r.notes.empty());
    EXPECT_EQ(verify_checksums(dir), want);
    expect_no_temporaries(dir);

    // The alias file is the same mix, and the pipeline's files are what `gemma quantize` makes from the source
    // with the imatrix (which they name by its file name in the release, not by this test's path).
    EXPECT_EQ(test::read_file_bytes(dir + "/tiny.Q4_K.gguf"), test::read_file_bytes(dir + "/tiny.Q4_K_M.gguf"));
    for (const char* t : {"IQ3_XS", "Q4_K_S", "Q8_0"}) {
        QuantizeOptions q;
        q.input = options(dir, true, true).source;
        q.output = test::temp_dir() + "/" + t + ".gguf";
        q.ftype = find_ladder_type(t)->ftype;
        q.imatrix_path = std::string(t) == "Q8_0" ? "" : dir + "/tiny.imatrix.gguf";
        q.quiet = true;
        quantize_model(q);
        const std::string file = dir + "/tiny." + t + ".gguf";
        EXPECT_EQ(test::gguf_difference(q.output, file, {"quantize.imatrix.file"}), "") << t;
        if (!q.imatrix_path.empty()) {
            EXPECT_EQ(GgufFile::open(file)->get_string("quantize.imatrix.file"), "tiny.imatrix.gguf");
        }
    }
    EXPECT_EQ(GgufFile::open(dir + "/tiny.BF16.gguf")->get_uint("general.file_type"), 32u);

    // The card: one row per model file with its size, bits per weight and evaluation.
    const std::string card = slurp(dir + "/README.md");
    for (const ReleaseFile& f : r.files) {
        if (f.quant == "imatrix") continue;
        EXPECT_NE(card.find("| " + f.file + " | " + f.quant + " | " + card_size(f.size) + " | "), std::string::npos)
            << f.file << "\n" << card;
        ASSERT_TRUE(f.eval) << f.file;
        EXPECT_GT(f.eval->ppl, 1.0) << f.file;
        EXPECT_GT(f.eval->gen_tokens_per_s, 0.0) << f.file;
        EXPECT_GT(f.bpw, 2.0) << f.file;
        EXPECT_LT(f.bpw, 17.0) << f.file;
    }
    EXPECT_NE(card.find("KL-divergence"), std::string::npos);
    // Our own folder passes the audit, checksums and card included, without a warning.
    VerifyOptions vo;
    vo.dir = dir;
    const VerifyReport audit = verify_folder(vo);
    EXPECT_TRUE(audit.ok() && audit.issues.empty()) << render_verify_report(audit);
    auto find = [&](const std::string& q) {
        for (const ReleaseFile& f : r.files)
            if (f.quant == q) return f;
        ADD_FAILURE() << q;
        return ReleaseFile{};
    };
    EXPECT_LT(find("Q8_0").eval->kld_mean, find("Q2_K").eval->kld_mean);
    EXPECT_EQ(find("BF16").eval->kld_mean, 0.0);
    EXPECT_GT(find("Q8_0").eval->same_top_percent, 80.0);

    // A second run keeps everything and rewrites identical checksums and card.
    std::map<std::string, fs::file_time_type> mtimes;
    for (const auto& f : want) mtimes[f] = fs::last_write_time(dir + "/" + f);
    const std::string sums = slurp(dir + "/SHA256SUMS");
    const ReleaseResult again = make_release(options(dir, true, true));
    for (const ReleaseFile& f : again.files) {
        EXPECT_TRUE(f.kept) << f.file;
        EXPECT_EQ(fs::last_write_time(dir + "/" + f.file), mtimes[f.file]) << f.file;
    }
    EXPECT_EQ(slurp(dir + "/SHA256SUMS"), sums);
    EXPECT_EQ(slurp(dir + "/README.md"), card);
}

// SIGKILLs `pid` unless it exited first; returns whether it was killed.
bool kill_unless_exited(pid_t pid) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        return false;
    }
    kill(pid, SIGKILL);
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status);
}

// The largest "tensors" of the manifest's checkpoint entries ("<file>.partial").
size_t checkpointed_tensors(const std::string& dir) {
    std::ifstream f(dir + "/.gemma-release.json");
    const nlohmann::json j = nlohmann::json::parse(f, nullptr, false);
    size_t n = 0;
    if (j.is_object() && j.contains("files") && j["files"].is_object())
        for (const auto& [k, v] : j["files"].items())
            if (k.ends_with(".partial") && v.is_object()) n = std::max(n, v.value("tensors", size_t{0}));
    return n;
}

TEST(Release, KilledAtRandomPointsResumesToTheSameFiles) {
    const std::string ref = test::temp_dir() + "/ref", dir = test::temp_dir() + "/out";
    const std::vector<std::string> types = {"Q2_K", "Q3_K_S", "Q4_0", "Q4_K_M", "IQ4_XS", "Q6_K", "Q8_0"};
    ReleaseOptions o = options(ref, true, false);
    o.types = types;
    make_release(o);

    std::string type_list;
    for (const auto& t : types) type_list += (type_list.empty() ? "" : ",") + t;
    const std::vector<std::string> args = {"release", o.source, "--out", dir, "--name", "tiny", "--imatrix-text",
                                           calibration(), "--imatrix-ctx", "128", "--imatrix-chunks", "2", "-t", "2",
                                           "--types", type_list, "--checkpoint-every", "0"};
    const std::string log = test::temp_dir() + "/log";
    // First a kill once a few tensors are durable, so the next run must continue the temporaries...
    pid_t pid = test::spawn_gemma(args, log);
    ASSERT_GT(pid, 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (checkpointed_tensors(dir) < 3 && std::chrono::steady_clock::now() < deadline && waitpid(pid, nullptr, WNOHANG) == 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_TRUE(kill_unless_exited(pid)) << "the release finished before it could be killed";
    EXPECT_FALSE(fs::exists(dir + "/SHA256SUMS"));
    // ...then kills at random moments (of the pass, the checkpoints, the renames, the card), the first one
    // after the run has taken up the checkpoint.
    std::mt19937 rng(std::random_device{}());
    std::string kills;
    for (int k = 0; k < 3; ++k) {
        pid = test::spawn_gemma(args, log + std::to_string(k));
        while (k == 0 && slurp(log + "0").find("continuing") == std::string::npos &&
               std::chrono::steady_clock::now() < deadline && waitpid(pid, nullptr, WNOHANG) == 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        if (k == 0) {
            EXPECT_NE(slurp(log + "0").find("from the checkpoint of an interrupted run"), std::string::npos);
        }
        const int ms = std::uniform_int_distribution<int>(1, 1500)(rng);
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        kills += " " + std::to_string(ms) + "ms";
        if (!kill_unless_exited(pid)) break;
    }
    // Whatever carries a final name is a whole, valid GGUF.
    for (const auto& e : fs::directory_iterator(dir))
        if (e.path().extension() == ".gguf") {
            EXPECT_NO_THROW(GgufFile::open(e.path().string())) << e.path();
        }

    ReleaseOptions r = o;
    r.out_dir = dir;
    make_release(r);
    const auto want = test::folder_files(ref), got = test::folder_files(dir);
    EXPECT_EQ(got.size(), want.size()) << "kills after" << kills;
    for (const auto& [f, bytes] : want) EXPECT_TRUE(got.count(f) && got.at(f) == bytes) << f << ", kills after" << kills;
    expect_no_temporaries(dir);
    for (const auto& e : fs::directory_iterator(dir)) EXPECT_NE(e.path().extension(), ".partial") << e.path();
}

// The release collects its imatrix dropping each layer's mapped pages as it goes: same statistics.
TEST(Release, ImatrixDroppingWeightPagesChangesNothing) {
    const auto model = Model::load(tiny_model(TypeId::F16));
    const std::vector<int32_t> tokens =
        tokenize_eval_text(Tokenizer::from_gguf(model->gguf()), read_eval_text(calibration(), "text"));
    ImatrixParams p;
    p.ctx = 128;
    p.chunks = 2;
    p.threads = 2;
    const ImatrixRun a = collect_imatrix(*model, tokens, p);
    p.drop_weight_pages = true;
    const ImatrixRun b = collect_imatrix(*model, tokens, p);
    EXPECT_EQ(a.ppl, b.ppl);
    ASSERT_EQ(a.imatrix.entries.size(), b.imatrix.entries.size());
    for (const auto& [name, e] : a.imatrix.entries) {
        ASSERT_TRUE(b.imatrix.entries.count(name)) << name;
        EXPECT_EQ(e.sums, b.imatrix.entries.at(name).sums) << name;
        EXPECT_EQ(e.counts, b.imatrix.entries.at(name).counts) << name;
    }
}

TEST(Release, WithoutImatrixSkipsTheTypesThatNeedOne) {
    const std::string dir = test::temp_dir() + "/out";
    ReleaseOptions o = options(dir, false, false);
    o.types = {"IQ3_XS", "Q4_0", "q8_0"};
    const ReleaseResult r = make_release(o);
    ASSERT_EQ(r.files.size(), 3u);
    EXPECT_EQ(r.files[0].file, "tiny.Q4_0.gguf");
    EXPECT_EQ(r.files[1].file, "tiny.Q8_0.gguf");
    EXPECT_EQ(r.files[2].file, "tiny.BF16.gguf");
    EXPECT_FALSE(fs::exists(dir + "/tiny.IQ3_XS.gguf"));
    ASSERT_EQ(r.notes.size(), 1u);
    EXPECT_NE(r.notes[0].find("IQ3_XS"), std::string::npos);
    EXPECT_NE(slurp(dir + "/README.md").find("IQ3_XS was skipped"), std::string::npos);

    // Asking again with an imatrix changes the recipe of the imatrix-aware file, so it is redone.
    const auto q40_time = fs::last_write_time(dir + "/tiny.Q4_0.gguf");
    ReleaseOptions o2 = options(dir, true, false);
    o2.types = o.types;
    const ReleaseResult r2 = make_release(o2);
    ASSERT_EQ(r2.files.size(), 5u);
    EXPECT_EQ(r2.files[0].file, "tiny.IQ3_XS.gguf");
    EXPECT_FALSE(r2.files[1].kept);  // Q4_0: now with importance weights
    EXPECT_TRUE(r2.files[2].kept);   // Q8_0 ignores them
    EXPECT_NE(fs::last_write_time(dir + "/tiny.Q4_0.gguf"), q40_time);
}

TEST(Release, Bf16SourceIsCopied) {
    const std::string dir = test::temp_dir() + "/out";
    ReleaseOptions o = options(dir, false, false);
    o.source = tiny_model(TypeId::BF16);
    o.name.clear();  // general.name of a synthetic model
    o.types = {"Q8_0"};
    const ReleaseResult r = make_release(o);
    ASSERT_EQ(r.files.size(), 2u);
    EXPECT_EQ(r.files[1].file, "synthetic-tiny.BF16.gguf");
    EXPECT_EQ(test::read_file_bytes(dir + "/synthetic-tiny.BF16.gguf"), test::read_file_bytes(o.source));
}

// A Hugging Face directory is converted to the BF16 file (named after the directory), then quantized.
TEST(Release, FromHuggingFaceCheckpoint) {
    HfSynthOptions h;
    h.dir = test::temp_dir() + "/hf-tiny/";
    h.shape = "tiny";
    h.vocab_dir = test::golden("vocab/hf");
    h.quiet = true;
    write_hf_checkpoint(h);
    const std::string dir = test::temp_dir() + "/out";
    ReleaseOptions o = options(dir, false, false);
    o.source = h.dir;
    o.name.clear();
    o.types = {"Q8_0"};
    const ReleaseResult r = make_release(o);
    ASSERT_EQ(r.files.size(), 2u);
    EXPECT_EQ(r.files[0].file, "hf-tiny.Q8_0.gguf");
    EXPECT_EQ(r.files[1].file, "hf-tiny.BF16.gguf");
    const auto bf16 = GgufFile::open(dir + "/hf-tiny.BF16.gguf");
    EXPECT_EQ(bf16->get_uint("general.file_type"), 32u);
    EXPECT_EQ(bf16->get_string("general.name"), "hf-tiny");
    EXPECT_EQ(verify_checksums(dir).size(), 2u);
    EXPECT_TRUE(make_release(o).files[1].kept);
}

TEST(ReleaseBadInput, ClearErrorsBeforeAnyWork) {
    const std::string tmp = test::temp_dir();
    test::write_file_bytes(tmp + "/empty.txt", {});
    const std::string src = tiny_model(TypeId::F16), text = calibration();
    const std::string base = "release " + src + " --out " + tmp + "/out ";
    struct Case {
        std::string args, message;
    } cases[] = {
        {"--types Q4_K_M,Q9_K", "unknown type 'Q9_K'"},
        {"--types F16", "unknown type 'F16'"},
        {"--imatrix-text " + tmp + "/missing.txt", "cannot open"},
        {"--imatrix-text " + tmp + "/empty.txt", "empty"},
        {"--eval-text " + tmp + "/empty.txt", "empty"},
        {"--imatrix-text " + text + " --imatrix-ctx 8", "too small"},
        {"--eval-text " + text + " --eval-ctx 100000", "too large"},
        {"--eval-text " + text + " --eval-ctx 8000", "needs at least"},
        {"--name a/b", "--name"},
        {"--imatrix " + tmp + "/missing.gguf", "--imatrix: "},
        {"--imatrix " + tmp + "/empty.txt", "--imatrix: "},
        {"--imatrix " + test::golden("tiny-7b/tiny-7b-imatrix.gguf") + " --imatrix-text " + text, "give one"},
        {"--types all,Q9_K", "unknown type 'Q9_K'"},
    };
    for (const Case& c : cases) {
        std::string err;
        EXPECT_EQ(test::run_gemma(base + c.args, nullptr, &err), 1) << c.args;
        EXPECT_NE(err.find(c.message), std::string::npos) << c.args << ": " << err;
        EXPECT_FALSE(fs::exists(tmp + "/out")) << c.args;
    }
    std::string err;
    EXPECT_EQ(test::run_gemma("release " + test::golden("tiny-7b/q/tiny-7b-Q4_K_M.gguf") + " --out " + tmp + "/out",
                              nullptr, &err),
              1);
    EXPECT_NE(err.find("F32, F16 or BF16 source"), std::string::npos) << err;
    EXPECT_EQ(test::run_gemma("release " + tmp + " --out " + tmp + "/out", nullptr, &err), 1);
    EXPECT_NE(err.find("not a Hugging Face checkpoint"), std::string::npos) << err;
    EXPECT_FALSE(fs::exists(tmp + "/out"));
}

}  // namespace
}  // namespace gemma
