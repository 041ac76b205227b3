// `gemma release` against llama-quantize's golden ladder, its job count, and disjoint --types runs sharing a folder.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <filesystem>
#include <map>
#include <set>

#include "gguf/gguf.h"
#include "quant/ladder.h"
#include "runtime/release.h"
#include "support/gguf_compare.h"
#include "support/golden.h"
#include "support/release_support.h"

namespace gemma {
namespace {

namespace fs = std::filesystem;

ReleaseOptions golden_release(const std::string& out, bool imatrix) {
    ReleaseOptions o;
    o.source = test::golden("tiny-7b/tiny-7b-f32.gguf");
    o.out_dir = out;
    o.name = "t";
    if (imatrix) o.imatrix_file = test::golden("tiny-7b/tiny-7b-imatrix.gguf");
    o.threads = 2;
    return o;
}

// The golden file a ladder name corresponds to (aliases are their _M files).
std::string golden_file(const std::string& dir, std::string quant) {
    if (quant == "Q3_K" || quant == "Q4_K" || quant == "Q5_K") quant += "_M";
    return test::golden("tiny-7b/" + dir + "/tiny-7b-" + quant + ".gguf");
}

// Every (tensor, type) pair the files hold that differs from the source's own type: the quantizations a
// release must run at least once.
size_t distinct_pairs(const std::string& dir, const std::vector<ReleaseFile>& files) {
    const auto src = GgufFile::open(test::golden("tiny-7b/tiny-7b-f32.gguf"));
    std::set<std::pair<std::string, TypeId>> pairs;
    for (const ReleaseFile& f : files) {
        if (f.quant == "imatrix") continue;
        const auto file = GgufFile::open(dir + "/" + f.file);
        for (const GgufTensor& t : file->tensors())
            if (t.type != src->tensor(t.name).type) pairs.insert({t.name, t.type});
    }
    return pairs.size();
}

size_t quantized_tensors(const std::string& dir, const std::vector<ReleaseFile>& files) {
    size_t n = 0;
    for (const ReleaseFile& f : files) {
        if (f.quant == "imatrix") continue;
        const auto file = GgufFile::open(dir + "/" + f.file);
        for (const GgufTensor& t : file->tensors()) n += t.type != TypeId::F32;
    }
    return n;
}

TEST(ReleaseLadder, GoldenBytesWithOneJobPerDistinctTensorType) {
    for (const bool imatrix : {true, false}) {
        SCOPED_TRACE(imatrix ? "with the imatrix" : "without");
        const std::string dir = test::temp_dir() + (imatrix ? "/qi" : "/q");
        ReleaseOptions o = golden_release(dir, imatrix);
        o.types = parse_release_types("all,IQ3_XXS");
        o.dry_run = true;
        const ReleaseResult plan = make_release(o);
        EXPECT_FALSE(fs::exists(dir));  // a dry run writes nothing
        o.dry_run = false;
        const ReleaseResult r = make_release(o);
        // The plan said what the pass did: the same jobs, and each file's tensor bytes.
        EXPECT_EQ(plan.jobs_run, r.jobs_run);
        EXPECT_EQ(plan.jobs_planned, r.jobs_planned);
        for (const ReleaseFile& p : plan.files) {
            const auto f = GgufFile::open(dir + "/" + p.file);
            uint64_t bytes = 0;
            for (const GgufTensor& t : f->tensors()) bytes += t.nbytes;
            EXPECT_EQ(p.size, bytes) << p.file;
        }
        size_t compared = 0;
        for (const ReleaseFile& f : r.files) {
            if (f.quant == "imatrix") continue;
            // Everything llama-quantize wrote, but the path it was given the imatrix by (Q8_0 is made
            // without one: its quantizer ignores importance, so only the metadata would differ).
            const bool with_im = imatrix && f.quant != "BF16" && f.quant != "Q8_0";
            const std::string ref = golden_file(with_im ? "qi" : "q", f.quant);
            EXPECT_EQ(test::gguf_difference(dir + "/" + f.file, ref, {"quantize.imatrix.file"}), "") << f.file;
            ++compared;
        }
        EXPECT_EQ(compared, imatrix ? 24u : 22u);  // 22 published + IQ3_XXS + BF16; IQ3_XS/XXS need an imatrix
        // One job per distinct (tensor, type): the alias files, and tensors several mixes agree on, cost nothing.
        EXPECT_EQ(r.jobs_run, distinct_pairs(dir, r.files));
        EXPECT_EQ(r.jobs_planned, quantized_tensors(dir, r.files));
        EXPECT_LT(r.jobs_run * 10, r.jobs_planned * 7);
    }
}

// Gemma 2 and 3 (extra norm tensors, other head layouts): the same pipeline, read from each file's own keys.
TEST(ReleaseLadder, LaterFamiliesMatchTheirGoldenFiles) {
    for (const std::string fam : {"gemma2", "gemma3"}) {
        const std::string stem = fam == "gemma2" ? "tiny-g2" : "tiny-g3";
        for (const bool imatrix : {true, false}) {
            SCOPED_TRACE(fam + (imatrix ? " with the imatrix" : " without"));
            ReleaseOptions o;
            o.source = test::golden(fam + "/" + stem + "-f32.gguf");
            o.out_dir = test::temp_dir() + "/" + fam + (imatrix ? "qi" : "q");
            o.name = "t";
            if (imatrix) o.imatrix_file = test::golden(fam + "/" + stem + "-imatrix.gguf");
            o.types = parse_release_types(imatrix ? "IQ3_S,IQ4_XS" : "Q2_K,Q3_K_M,Q4_0,Q4_K_M,Q5_K_M,Q6_K,Q8_0");
            o.threads = 2;
            for (const ReleaseFile& f : make_release(o).files) {
                if (f.quant == "imatrix" || f.quant == "BF16") continue;
                const std::string ref = test::golden(fam + "/" + (imatrix ? "qi/" : "q/") + stem + "-" + f.quant + ".gguf");
                EXPECT_EQ(test::gguf_difference(o.out_dir + "/" + f.file, ref, {"quantize.imatrix.file"}), "") << f.file;
            }
        }
    }
}

TEST(ReleaseLadder, DisjointTypesInParallelThenAFinalRunEqualOneRun) {
    const std::string one = test::temp_dir() + "/one", shared = test::temp_dir() + "/shared";
    const std::string a = "Q2_K,IQ3_S,Q4_K_S,Q4_K_M,Q6_K", b = "Q3_K_M,IQ4_XS,Q4_0,Q5_K_M,Q8_0";
    ReleaseOptions o = golden_release(one, true);
    o.types = parse_release_types(a + "," + b);
    make_release(o);

    // Both want the imatrix copy and the BF16 file too: whichever comes second waits for those, never for
    // the other's ladder files.
    const std::vector<std::string> common = {"release", o.source, "--out", shared, "--name", "t", "--imatrix", o.imatrix_file, "-t", "1"};
    std::vector<std::string> args_a = common, args_b = common;
    args_a.insert(args_a.end(), {"--types", a});
    args_b.insert(args_b.end(), {"--types", b});
    const pid_t pa = test::spawn_gemma(args_a), pb = test::spawn_gemma(args_b);
    ASSERT_GT(pa, 0);
    ASSERT_GT(pb, 0);
    for (const pid_t pid : {pa, pb}) {
        int status = 0;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    }
    ReleaseOptions fin = o;
    fin.out_dir = shared;
    const ReleaseResult r = make_release(fin);
    for (const ReleaseFile& f : r.files) EXPECT_TRUE(f.kept) << f.file;
    EXPECT_EQ(r.jobs_run, 0u);
    const auto want = test::folder_files(one), got = test::folder_files(shared);
    EXPECT_EQ(got.size(), want.size());
    for (const auto& [f, bytes] : want) EXPECT_TRUE(got.count(f) && got.at(f) == bytes) << f;
}

}  // namespace
}  // namespace gemma
