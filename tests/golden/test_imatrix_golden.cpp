// `gemma imatrix` vs llama-imatrix's files for tiny-7b: statistics, counts, metadata and tensor layout.
#include <gtest/gtest.h>

#include <filesystem>

#include "gguf/gguf.h"
#include "model/model.h"
#include "quant/imatrix.h"
#include "runtime/imatrix_collect.h"
#include "runtime/perplexity.h"
#include "support/golden.h"
#include "tokenizer/tokenizer.h"

namespace gemma {
namespace {

std::string f32_model() { return test::golden("tiny-7b/tiny-7b-f32.gguf"); }
std::string calibration() { return test::golden("tiny-7b/imatrix-calibration.txt"); }

// Every entry of `ours` has the reference's counts and sums within 1e-2 relative L2, and the key sets agree.
void expect_same_statistics(const Imatrix& ours, const Imatrix& ref, bool legacy_values) {
    ASSERT_EQ(ours.entries.size(), ref.entries.size());
    double worst = 0;
    for (const auto& [name, r] : ref.entries) {
        auto it = ours.entries.find(name);
        ASSERT_NE(it, ours.entries.end()) << "missing entry " << name;
        const ImatrixEntry& o = it->second;
        ASSERT_EQ(o.ne0, r.ne0) << name;
        ASSERT_EQ(o.sums.size(), r.sums.size()) << name;
        ASSERT_EQ(o.counts, r.counts) << name;
        // Legacy files store mean * ncall, comparable as they are; GGUF files store raw sums.
        const double d = test::rel_l2(o.sums.data(), r.sums.data(), r.sums.size());
        EXPECT_LT(d, 1e-2) << name;
        worst = std::max(worst, d);
        (void)legacy_values;
    }
    std::printf("[ imatrix ] worst per-tensor relative L2 vs llama-imatrix: %.3g\n", worst);
}

// gemma imatrix's library call with llama-imatrix's settings (ctx 128, 16 chunks) over the calibration text.
ImatrixRun collect(const std::string& model_path) {
    const auto model = Model::load(model_path);
    const auto tok = Tokenizer::from_gguf(model->gguf());
    const auto tokens = tokenize_eval_text(tok, read_eval_text(calibration(), "-f"));
    ImatrixParams p;
    p.ctx = 128;
    p.chunks = 16;
    p.threads = 2;
    p.dataset = "imatrix-calibration.txt";
    return collect_imatrix(*model, tokens, p);
}

TEST(ImatrixGolden, LibraryMatchesLlamaImatrix) {
    const ImatrixRun run = collect(f32_model());
    const Imatrix ref = load_imatrix(test::golden("tiny-7b/tiny-7b-imatrix.gguf"));
    EXPECT_EQ(run.n_chunks, 16);
    EXPECT_EQ(run.imatrix.chunk_count, ref.chunk_count);
    EXPECT_EQ(run.imatrix.chunk_size, ref.chunk_size);
    EXPECT_EQ(run.imatrix.datasets, ref.datasets);
    expect_same_statistics(run.imatrix, ref, false);
    // Perplexity of the second halves, which llama-imatrix also prints: the same numbers as llama-perplexity's
    // over the first 8 chunks (perplexity.json).
    ASSERT_GE(run.ppl_running.size(), 8u);
    EXPECT_NEAR(run.ppl_running[7], 3767.1036, 3767.1036 * 0.01);
}

// Gemma 2 and 3 (post-norms, QK-norm, sliding windows) collect the same statistics as llama-imatrix too.
TEST(ImatrixGolden, Gemma2And3MatchLlamaImatrix) {
    for (const char* stem : {"gemma2/tiny-g2", "gemma3/tiny-g3"}) {
        const ImatrixRun run = collect(test::golden(std::string(stem) + "-f32.gguf"));
        const Imatrix ref = load_imatrix(test::golden(std::string(stem) + "-imatrix.gguf"));
        EXPECT_EQ(run.imatrix.chunk_count, ref.chunk_count) << stem;
        expect_same_statistics(run.imatrix, ref, false);
    }
}

// The command writes a file with llama-imatrix's keys (same order and types), tensor names and shapes.
TEST(ImatrixGolden, CommandWritesTheSameLayout) {
    const std::string dir = test::temp_dir();
    const std::string out = dir + "/imatrix.gguf";
    std::string o, e;
    ASSERT_EQ(test::run_gemma("imatrix " + f32_model() + " -f " + calibration() + " --ctx 128 --chunks 16 -t 2 -o " + out,
                              &o, &e),
              0)
        << e;
    EXPECT_NE(o.find("[16]"), std::string::npos) << o;
    const auto ours = GgufFile::open(out);
    const auto ref = GgufFile::open(test::golden("tiny-7b/tiny-7b-imatrix.gguf"));
    ASSERT_EQ(ours->kvs().size(), ref->kvs().size());
    for (size_t i = 0; i < ref->kvs().size(); ++i) {
        EXPECT_EQ(ours->kvs()[i].key, ref->kvs()[i].key);
        EXPECT_EQ(ours->kvs()[i].value.type, ref->kvs()[i].value.type) << ref->kvs()[i].key;
    }
    EXPECT_EQ(ours->get_uint("imatrix.chunk_count"), 16u);
    EXPECT_EQ(ours->get_uint("imatrix.chunk_size"), 128u);
    ASSERT_EQ(ours->tensors().size(), ref->tensors().size());
    for (size_t i = 0; i < ref->tensors().size(); ++i) {
        const GgufTensor &a = ours->tensors()[i], &b = ref->tensors()[i];
        EXPECT_EQ(a.name, b.name);
        EXPECT_EQ(a.n_dims, b.n_dims) << b.name;
        EXPECT_EQ(a.type, b.type) << b.name;
        for (int d = 0; d < 4; ++d) EXPECT_EQ(a.ne[d], b.ne[d]) << b.name;
    }
    const Imatrix im = load_imatrix(out);
    EXPECT_EQ(im.datasets, std::vector<std::string>{calibration()});  // the -f argument, as given
    expect_same_statistics(im, load_imatrix(test::golden("tiny-7b/tiny-7b-imatrix.gguf")), false);
}

TEST(ImatrixGolden, LegacyFormatMatchesLlamaDat) {
    const std::string dir = test::temp_dir();
    const std::string out = dir + "/imatrix.dat";
    std::string e;
    ASSERT_EQ(test::run_gemma("imatrix " + f32_model() + " -f " + calibration() + " -c 128 --chunks 16 -t 2 -o " + out,
                              nullptr, &e),
              0)
        << e;
    const Imatrix ours = load_imatrix(out), ref = load_imatrix(test::golden("tiny-7b/tiny-7b-imatrix.dat"));
    EXPECT_TRUE(ours.legacy);
    EXPECT_EQ(ours.chunk_count, ref.chunk_count);
    expect_same_statistics(ours, ref, true);
}

TEST(ImatrixBadInput, ClearErrors) {
    const std::string dir = test::temp_dir();
    test::write_file_bytes(dir + "/empty.txt", {});
    const std::string base = "imatrix " + f32_model() + " -o " + dir + "/o.gguf ";
    struct Case {
        std::string args, message;
    } cases[] = {
        {"-f " + dir + "/missing.txt", "cannot open"},
        {"-f " + dir + "/empty.txt", "empty"},
        {"-f " + calibration() + " --ctx 8", "too small"},
        {"-f " + calibration() + " --ctx 100000", "too large"},
        {"-f " + calibration() + " --ctx 8000", "needs at least"},
        {"-f " + calibration() + " --format xml", "format"},
    };
    for (const Case& c : cases) {
        std::string err;
        EXPECT_NE(test::run_gemma(base + c.args, nullptr, &err), 0) << c.args;
        EXPECT_NE(err.find(c.message), std::string::npos) << c.args << ": " << err;
        EXPECT_FALSE(std::filesystem::exists(dir + "/o.gguf")) << c.args;
    }
}

}  // namespace
}  // namespace gemma
