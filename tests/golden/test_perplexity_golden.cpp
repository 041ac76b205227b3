// `gemma perplexity` vs llama-perplexity on tiny-7b (perplexity.json): PPL, and KL-divergence of Q4_K_M from F32.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "convert/synth.h"
#include "core/error.h"
#include "model/model.h"
#include "runtime/perplexity.h"
#include "support/golden.h"
#include "tokenizer/tokenizer.h"

namespace gemma {
namespace {

std::string f32_model() { return test::golden("tiny-7b/tiny-7b-f32.gguf"); }
std::string q4km_model() { return test::golden("tiny-7b/q/tiny-7b-Q4_K_M.gguf"); }
std::string calibration() { return test::golden("tiny-7b/imatrix-calibration.txt"); }

nlohmann::json reference() {
    std::ifstream f(test::golden("tiny-7b/perplexity.json"));
    return nlohmann::json::parse(f);
}

std::vector<int32_t> calibration_tokens(const Model& m) {
    return tokenize_eval_text(Tokenizer::from_gguf(m.gguf()), read_eval_text(calibration(), "-f"));
}

TEST(PerplexityGolden, F32MatchesLlamaPerplexity) {
    const auto ref = reference();
    const auto model = Model::load(f32_model());
    PerplexityParams p;
    p.ctx = 128;
    p.chunks = 8;
    p.threads = 2;
    const PerplexityRun run = evaluate_perplexity(nullptr, {model.get()}, calibration_tokens(*model), p);
    EXPECT_EQ(run.plan.n_chunks, 8);
    const PerplexityResult& r = run.models[0];
    EXPECT_EQ(r.n_scored, 8 * 63);
    const double want = ref["ppl"].get<double>();
    std::printf("[ perplexity ] F32: %.4f (llama-perplexity %.4f, %+.3f%%)\n", r.ppl, want, 100 * (r.ppl / want - 1));
    EXPECT_NEAR(r.ppl, want, want * 0.01);
    ASSERT_EQ(r.running.size(), 8u);
    for (size_t i = 0; i < 8; ++i) {
        const double w = ref["ppl_running"][i].get<double>();
        EXPECT_NEAR(r.running[i], w, w * 0.01) << "chunk " << i + 1;
    }
}

TEST(PerplexityGolden, KlDivergenceOfQ4KMFromF32) {
    const auto ref = reference()["kld_vs_f32"];
    const auto base = Model::load(f32_model());
    const auto model = Model::load(q4km_model());
    PerplexityParams p;
    p.ctx = 128;
    p.chunks = 8;
    p.threads = 2;
    const PerplexityRun run = evaluate_perplexity(base.get(), {model.get()}, calibration_tokens(*base), p);
    ASSERT_TRUE(run.has_base);
    const PerplexityResult& r = run.models[0];
    ASSERT_TRUE(r.has_kl);
    const double mean = ref["mean"].get<double>(), same = ref["same_top_p_percent"].get<double>();
    std::printf("[ perplexity ] Q4_K_M vs F32: mean KLD %.6f (llama %.6f), median %.6f (%.6f), p99 %.6f (%.6f), "
                "max %.6f (%.6f), same top %.2f%% (%.2f%%), PPL %.4f (%.4f)\n",
                r.kl.mean, mean, r.kl.median, ref["median"].get<double>(), r.kl.p99, ref["p99"].get<double>(), r.kl.max,
                ref["max"].get<double>(), r.kl.same_top_percent, same, r.ppl, ref["ppl"].get<double>());
    EXPECT_NEAR(r.kl.mean, mean, mean * 0.10);
    EXPECT_NEAR(r.kl.same_top_percent, same, 3.0);
    EXPECT_NEAR(r.kl.median, ref["median"].get<double>(), ref["median"].get<double>() * 0.15);
    EXPECT_NEAR(r.kl.p99, ref["p99"].get<double>(), ref["p99"].get<double>() * 0.25);
    EXPECT_NEAR(r.ppl, ref["ppl"].get<double>(), ref["ppl"].get<double>() * 0.02);
    EXPECT_NEAR(run.base.ppl, reference()["ppl"].get<double>(), reference()["ppl"].get<double>() * 0.01);
    EXPECT_EQ(r.kl.n, 8 * 63);
    EXPECT_LE(r.kl.median, r.kl.p99);
    EXPECT_LE(r.kl.p99, r.kl.max);
}

// A model compared with itself: zero divergence, every top token the same.
TEST(Perplexity, SelfComparisonIsExact) {
    const auto model = Model::load(f32_model());
    PerplexityParams p;
    p.ctx = 64;
    p.chunks = 2;
    p.threads = 2;
    const PerplexityRun run = evaluate_perplexity(model.get(), {model.get()}, calibration_tokens(*model), p);
    EXPECT_NEAR(run.models[0].kl.mean, 0.0, 1e-6);  // the base's log-probabilities are kept as floats
    EXPECT_NEAR(run.models[0].kl.max, 0.0, 1e-6);
    EXPECT_EQ(run.models[0].kl.same_top_percent, 100.0);
    EXPECT_EQ(run.models[0].ppl, run.base.ppl);
}

TEST(PerplexityGolden, CommandPrintsRunningValuesAndKl) {
    std::string out, err;
    ASSERT_EQ(test::run_gemma("perplexity " + q4km_model() + " -f " + calibration() + " --ctx 128 --chunks 8 -t 2 "
                              "--kl-base " + f32_model(),
                              &out, &err),
              0)
        << err;
    EXPECT_NE(out.find("[1]"), std::string::npos) << out;
    EXPECT_NE(out.find("[8]"), std::string::npos) << out;
    EXPECT_NE(out.find("Mean    KLD:"), std::string::npos) << out;
    EXPECT_NE(out.find("Same top p:"), std::string::npos) << out;
    const size_t at = out.find("Final estimate: PPL = ");
    ASSERT_NE(at, std::string::npos) << out;
    const double ppl = std::stod(out.substr(at + 22));
    const double want = reference()["kld_vs_f32"]["ppl"].get<double>();
    EXPECT_NEAR(ppl, want, want * 0.02);
}

TEST(PerplexityBadInput, ClearErrors) {
    const std::string dir = test::temp_dir();
    test::write_file_bytes(dir + "/empty.txt", {});
    test::write_file_bytes(dir + "/short.txt", {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'});
    // Another vocabulary: the same tiny shape with fewer tokens.
    SynthOptions so;
    so.output = dir + "/other-vocab.gguf";
    so.vocab_path = test::golden("vocab/gemma-vocab.gguf");
    so.shape = "tiny";
    so.n_vocab = 1000;
    so.outtype = TypeId::F16;
    so.quiet = true;
    synth_model(so);
    const std::string base = "perplexity " + f32_model() + " ";
    struct Case {
        std::string args, message;
    } cases[] = {
        {"-f " + dir + "/missing.txt", "cannot open"},
        {"-f " + dir + "/empty.txt", "empty"},
        {"-f " + dir + "/short.txt --ctx 16", "needs at least"},
        {"-f " + calibration() + " --ctx 2", "too small"},
        {"-f " + calibration() + " --ctx 100000", "too large"},
        {"-f " + calibration() + " --ctx 64 --kl-base " + dir + "/other-vocab.gguf", "vocabulary"},
        {"-f " + calibration() + " --ctx 64 --kl-base " + dir + "/missing.gguf", "missing.gguf"},
    };
    for (const Case& c : cases) {
        std::string out, err;
        EXPECT_EQ(test::run_gemma(base + c.args, &out, &err), 1) << c.args;
        EXPECT_NE(err.find(c.message), std::string::npos) << c.args << ": " << err;
    }
}

}  // namespace
}  // namespace gemma
