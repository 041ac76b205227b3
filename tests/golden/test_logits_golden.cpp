// Our logits vs llama.cpp's for the tiny-7b model and every quantized variant, plus greedy continuations.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "model/context.h"
#include "model/model.h"
#include "support/golden.h"
#include "support/logits.h"

namespace gemma {
namespace {

using test::argmax;
using test::compare_logits;
using test::read_floats;
using test::read_ids;

struct LogitsCase {
    std::string label;   // "f32", "Q4_K_M", "Q4_K_M-imatrix": the golden logits file stem after "tiny-7b-"
    std::string model;   // path of the GGUF
};

std::vector<LogitsCase> logits_cases() {
    std::vector<LogitsCase> v{{"f32", test::golden("tiny-7b/tiny-7b-f32.gguf")}};
    for (const char* dir : {"q", "qi"}) {
        std::vector<std::string> files;
        for (const auto& e : std::filesystem::directory_iterator(test::golden(std::string("tiny-7b/") + dir)))
            if (e.path().extension() == ".gguf") files.push_back(e.path().string());
        std::sort(files.begin(), files.end());
        for (const auto& p : files) {
            const std::string type = std::filesystem::path(p).stem().string().substr(std::string("tiny-7b-").size());
            v.push_back({std::string(dir) == "qi" ? type + "-imatrix" : type, p});
        }
    }
    return v;
}

std::string case_name(const testing::TestParamInfo<LogitsCase>& i) {
    std::string s = i.param.label;
    std::replace(s.begin(), s.end(), '-', '_');
    return s;
}

ops::ThreadPool& pool() {
    static ops::ThreadPool p(2);
    return p;
}

std::vector<float> our_logits(const Model& m, const std::vector<int32_t>& tokens, int32_t first) {
    return test::model_logits(m, tokens, first, pool());
}

class LogitsGolden : public testing::TestWithParam<LogitsCase> {};

TEST_P(LogitsGolden, MatchesLlamaCpp) {
    const LogitsCase& c = GetParam();
    const auto m = Model::load(c.model);
    const auto tokens = read_ids(test::golden("tiny-7b/logits/tokens.txt"));
    ASSERT_EQ(tokens.size(), 24u);
    const auto ref = read_floats(test::golden("tiny-7b/logits/tiny-7b-" + c.label + ".bin"));
    const auto ref_f32 = read_floats(test::golden("tiny-7b/logits/tiny-7b-f32.bin"));
    const auto ours = our_logits(*m, tokens, 0);
    compare_logits(c.label, ours, ref, m->config().n_vocab, test::golden_tolerance(c.label, ref, ref_f32), 22);
}

INSTANTIATE_TEST_SUITE_P(TinyGemma7b, LogitsGolden, testing::ValuesIn(logits_cases()), case_name);

// Repacked weights (the default for every type with a packed layout) against the plain layout of the same file. The
// kernels agree to f32 rounding (tests/kernels/test_packed.cpp), but this random tiny model amplifies rounding
// through its layers to ~1e-3 (plain Q8_0 equals llama.cpp bit for bit, repacked is 1.9e-3 away), so the model-level check
// is the README's quantized tolerance; the golden tests above apply it to the repacked model against llama.cpp.
TEST(LogitsRepacked, AgreesWithPlainLayout) {
    const auto tokens = read_ids(test::golden("tiny-7b/logits/tokens.txt"));
    for (const char* type : {"Q4_0", "Q8_0", "Q4_K_M", "Q5_K_M", "Q3_K_M", "Q2_K", "IQ4_XS"}) {
        const std::string path = test::golden(std::string("tiny-7b/q/tiny-7b-") + type + ".gguf");
        const auto packed = Model::load(path);
        const auto plain = Model::load(path, LoadOptions{.repack = false});
        EXPECT_TRUE(packed->weights().layers[0].ffn_up.packed) << type;
        const ops::Matrix& out = packed->weights().output;
        EXPECT_EQ(out.packed, kernels::packable(out.type, out.n_in)) << type;
        EXPECT_FALSE(packed->weights().token_embd.packed) << type;  // the embedding lookup reads plain rows
        EXPECT_FALSE(plain->weights().layers[0].ffn_up.packed) << type;
        compare_logits(std::string(type) + " repacked vs plain", our_logits(*packed, tokens, 0), our_logits(*plain, tokens, 0),
                packed->config().n_vocab, 3e-2, 22);
    }
}

std::vector<LogitsCase> long_cases() {
    std::vector<LogitsCase> v;
    for (const auto& c : logits_cases())
        if (std::filesystem::exists(test::golden("tiny-7b/logits/tiny-7b-" + c.label + ".long-last16.bin")))
            v.push_back(c);
    return v;
}

class LogitsGoldenLong : public testing::TestWithParam<LogitsCase> {};

TEST_P(LogitsGoldenLong, Last16MatchLlamaCpp) {
    const LogitsCase& c = GetParam();
    const auto m = Model::load(c.model);
    const auto tokens = read_ids(test::golden("tiny-7b/logits/tokens-long.txt"));
    ASSERT_EQ(tokens.size(), 256u);
    const auto ref = read_floats(test::golden("tiny-7b/logits/tiny-7b-" + c.label + ".long-last16.bin"));
    const auto ref_f32 = read_floats(test::golden("tiny-7b/logits/tiny-7b-f32.long-last16.bin"));
    const auto ours = our_logits(*m, tokens, static_cast<int32_t>(tokens.size()) - 16);
    compare_logits(c.label + " long", ours, ref, m->config().n_vocab, test::golden_tolerance(c.label, ref, ref_f32), 14);
}

INSTANTIATE_TEST_SUITE_P(TinyGemma7b, LogitsGoldenLong, testing::ValuesIn(long_cases()), case_name);

// Greedy decoding after tokens.txt: prompt in one batch, then one token per step through the KV cache.
std::vector<int32_t> greedy(const Model& m, const std::vector<int32_t>& prompt, int n) {
    ContextParams p;
    p.n_ctx = 64;
    p.pool = &pool();
    Context ctx(m, p);
    const float* logits = ctx.eval(prompt);
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) {
        const auto t = static_cast<int32_t>(argmax(logits, m.config().n_vocab));
        out.push_back(t);
        if (i + 1 < n) logits = ctx.decode(t);
    }
    return out;
}

class GreedyGolden : public testing::TestWithParam<LogitsCase> {};

TEST_P(GreedyGolden, ContinuationMatchesLlamaCpp) {
    const LogitsCase& c = GetParam();
    const auto m = Model::load(c.model);
    const auto prompt = read_ids(test::golden("tiny-7b/logits/tokens.txt"));
    const auto expected = read_ids(test::golden("tiny-7b/logits/tiny-7b-" + c.label + ".gen.txt"));
    const auto got = greedy(*m, prompt, static_cast<int>(expected.size()));
    for (size_t i = 0; i < expected.size(); ++i)
        EXPECT_EQ(got[i], expected[i]) << c.label << ": first mismatch at generated token " << i;
}

INSTANTIATE_TEST_SUITE_P(TinyGemma7b, GreedyGolden,
                         testing::Values(LogitsCase{"f32", test::golden("tiny-7b/tiny-7b-f32.gguf")},
                                         LogitsCase{"F16", test::golden("tiny-7b/q/tiny-7b-F16.gguf")}),
                         case_name);

}  // namespace
}  // namespace gemma
