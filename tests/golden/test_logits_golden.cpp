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

namespace gemma {
namespace {

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

std::vector<int32_t> read_ids(const std::string& path) {
    std::ifstream f(path);
    EXPECT_TRUE(f.good()) << path;
    std::vector<int32_t> v;
    std::string w;
    while (f >> w) {
        if (w == "gen:") continue;
        v.push_back(static_cast<int32_t>(std::stol(w)));
    }
    return v;
}

std::vector<float> read_floats(const std::string& path) {
    const auto b = test::read_file_bytes(path);
    std::vector<float> v(b.size() / sizeof(float));
    std::memcpy(v.data(), b.data(), v.size() * sizeof(float));
    return v;
}

ops::ThreadPool& pool() {
    static ops::ThreadPool p(2);
    return p;
}

// Logits of the rows [first, n) of `tokens` evaluated in one forward call at positions 0..n-1.
std::vector<float> our_logits(const Model& m, const std::vector<int32_t>& tokens, int32_t first) {
    ContextParams p;
    p.n_ctx = static_cast<int64_t>(tokens.size());
    p.pool = &pool();
    Context ctx(m, p);
    std::vector<int32_t> pos(tokens.size()), rows;
    for (size_t i = 0; i < tokens.size(); ++i) pos[i] = static_cast<int32_t>(i);
    for (auto i = first; i < static_cast<int32_t>(tokens.size()); ++i) rows.push_back(i);
    std::vector<float> out(rows.size() * static_cast<size_t>(m.config().n_vocab));
    ctx.forward(tokens, pos, rows, out.data());
    return out;
}

int64_t argmax(const float* x, int64_t n) { return std::max_element(x, x + n) - x; }

// The README's contract: relative L2 per file type, and the argmax on at least min_same rows.
double tolerance(const std::string& label, const std::vector<float>& ref, const std::vector<float>& ref_f32) {
    if (label == "f32") return 2e-3;
    if (label == "F16") return 3e-3;
    if (label == "BF16") return 1e-2;
    return std::max(3e-2, 0.25 * test::rel_l2(ref.data(), ref_f32.data(), ref.size()));
}

void compare(const std::string& what, const std::vector<float>& ours, const std::vector<float>& ref, int64_t n_vocab,
             double tol, int64_t min_same) {
    ASSERT_EQ(ours.size(), ref.size()) << what;
    const int64_t n_rows = static_cast<int64_t>(ref.size()) / n_vocab;
    const double rl2 = test::rel_l2(ours.data(), ref.data(), ref.size());
    int64_t same = 0;
    std::ostringstream diag;
    for (int64_t r = 0; r < n_rows; ++r) {
        const int64_t a = argmax(ours.data() + r * n_vocab, n_vocab), b = argmax(ref.data() + r * n_vocab, n_vocab);
        if (a == b) ++same;
        else diag << "  argmax differs at row " << r << ": expected " << b << ", got " << a << "\n";
    }
    std::printf("[ logits ] %-28s rel_l2 %.3g (tol %.3g), argmax %lld/%lld\n", what.c_str(), rl2, tol,
                static_cast<long long>(same), static_cast<long long>(n_rows));
    if (rl2 > tol || same < min_same) {
        // The largest differences say where (row = position, index = token) things went wrong.
        std::vector<size_t> idx(ref.size());
        for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
        std::partial_sort(idx.begin(), idx.begin() + 8, idx.end(), [&](size_t x, size_t y) {
            return std::fabs(ours[x] - ref[x]) > std::fabs(ours[y] - ref[y]);
        });
        for (int i = 0; i < 8; ++i)
            diag << "  row " << idx[i] / static_cast<size_t>(n_vocab) << " token " << idx[i] % static_cast<size_t>(n_vocab)
                 << ": expected " << ref[idx[i]] << ", got " << ours[idx[i]] << "\n";
        for (int64_t r = 0; r < std::min<int64_t>(n_rows, 4); ++r)
            diag << "  row " << r << " rel_l2 "
                 << test::rel_l2(ours.data() + r * n_vocab, ref.data() + r * n_vocab, static_cast<size_t>(n_vocab))
                 << "\n";
    }
    EXPECT_LE(rl2, tol) << what << "\n" << diag.str();
    EXPECT_GE(same, min_same) << what << "\n" << diag.str();
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
    compare(c.label, ours, ref, m->config().n_vocab, tolerance(c.label, ref, ref_f32), 22);
}

INSTANTIATE_TEST_SUITE_P(TinyGemma7b, LogitsGolden, testing::ValuesIn(logits_cases()), case_name);

// Repacked weights (the default for Q4_0 / Q8_0 / Q4_K / Q5_K) against the plain layout of the same file. The
// kernels agree to f32 rounding (tests/kernels/test_packed.cpp), but this random tiny model amplifies rounding
// through its layers to ~1e-3 (plain Q8_0 equals llama.cpp bit for bit, repacked is 1.9e-3 away), so the model-level check
// is the README's quantized tolerance; the golden tests above apply it to the repacked model against llama.cpp.
TEST(LogitsRepacked, AgreesWithPlainLayout) {
    const auto tokens = read_ids(test::golden("tiny-7b/logits/tokens.txt"));
    for (const char* type : {"Q4_0", "Q8_0", "Q4_K_M", "Q5_K_M"}) {
        const std::string path = test::golden(std::string("tiny-7b/q/tiny-7b-") + type + ".gguf");
        const auto packed = Model::load(path);
        const auto plain = Model::load(path, LoadOptions{.repack = false});
        EXPECT_TRUE(packed->weights().layers[0].ffn_up.packed) << type;
        const ops::Matrix& out = packed->weights().output;
        EXPECT_EQ(out.packed, kernels::packable(out.type, out.n_in)) << type;
        EXPECT_FALSE(packed->weights().token_embd.packed) << type;  // the embedding lookup reads plain rows
        EXPECT_FALSE(plain->weights().layers[0].ffn_up.packed) << type;
        compare(std::string(type) + " repacked vs plain", our_logits(*packed, tokens, 0), our_logits(*plain, tokens, 0),
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
    compare(c.label + " long", ours, ref, m->config().n_vocab, tolerance(c.label, ref, ref_f32), 14);
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
