// `gemma release` end to end on a tiny synthetic model: every file, the card, checksums, resuming after SIGKILL.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
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
#include "runtime/release.h"
#include "support/golden.h"
#include "gemma_paths.h"

extern char** environ;

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

    // The alias file is the same mix, and the pipeline's files are what `gemma quantize` makes with the imatrix.
    EXPECT_EQ(test::read_file_bytes(dir + "/tiny.Q4_K.gguf"), test::read_file_bytes(dir + "/tiny.Q4_K_M.gguf"));
    QuantizeOptions q;
    q.input = dir + "/tiny.BF16.gguf";
    q.output = test::temp_dir() + "/iq3xs.gguf";
    q.ftype = Ftype::IQ3_XS;
    q.imatrix_path = dir + "/tiny.imatrix.gguf";
    q.quiet = true;
    quantize_model(q);
    EXPECT_EQ(test::read_file_bytes(q.output), test::read_file_bytes(dir + "/tiny.IQ3_XS.gguf"));
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

TEST(Release, KilledRunLeavesOnlyCompleteFilesAndResumes) {
    const std::string dir = test::temp_dir() + "/out";
    const std::string src = tiny_model(TypeId::F16), text = calibration();
    // The cheaper half of the ladder: enough files after the first one to be killed in the middle.
    const std::vector<std::string> types = {"Q2_K", "Q3_K_S", "Q3_K_M", "Q4_0", "Q4_K_S", "Q4_K_M",
                                            "Q5_0", "Q5_K_M", "Q6_K", "Q8_0"};
    std::string type_list;
    for (const auto& t : types) type_list += (type_list.empty() ? "" : ",") + t;
    std::vector<std::string> args = {GEMMA_BINARY, "release", src, "--out", dir, "--name", "tiny", "--imatrix-text",
                                     text, "--imatrix-ctx", "128", "--imatrix-chunks", "2", "-t", "2",
                                     "--types", type_list};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = 0;
    ASSERT_EQ(posix_spawn(&pid, GEMMA_BINARY, &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    // Kill it as soon as the first ladder file is complete: the rest of the ladder is still to come.
    const std::string first = dir + "/tiny." + types[0] + ".gguf";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    int status = 0;
    bool exited = false;
    while (!fs::exists(first) && std::chrono::steady_clock::now() < deadline) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            exited = true;
            break;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    if (!exited) {
        kill(pid, SIGKILL);
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
    }
    ASSERT_TRUE(WIFSIGNALED(status)) << "the release finished before it could be killed";
    ASSERT_TRUE(fs::exists(first));
    EXPECT_FALSE(fs::exists(dir + "/SHA256SUMS"));

    // Whatever carries a final name is a whole, valid GGUF.
    std::vector<std::string> before;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string f = e.path().filename().string();
        if (f.ends_with(".gguf")) {
            EXPECT_NO_THROW(GgufFile::open(e.path().string())) << f;
            before.push_back(f);
        }
    }
    EXPECT_GE(before.size(), 3u);  // BF16, imatrix, the first ladder file

    ReleaseOptions o = options(dir, true, false);
    o.types = types;
    const ReleaseResult r = make_release(o);
    for (const ReleaseFile& f : r.files) {
        const bool was_there = std::find(before.begin(), before.end(), f.file) != before.end();
        EXPECT_EQ(f.kept, was_there) << f.file;
    }
    EXPECT_EQ(r.files.size(), types.size() + 2);
    EXPECT_EQ(verify_checksums(dir).size(), r.files.size());
    expect_no_temporaries(dir);
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
