// Gemma 2 and Gemma 3: our logits vs llama.cpp's for the tiny golden models of both families and every quantized
// file of theirs, over a short prompt and a long one that crosses the 16-token sliding window six times, plus greedy
// continuations through the windowed KV cache.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "model/context.h"
#include "model/model.h"
#include "quant/quantize_model.h"
#include "support/golden.h"
#include "support/logits.h"

namespace gemma {
namespace {

struct FamilyCase {
    std::string dir;     // "gemma2"
    std::string stem;    // "tiny-g2"
    std::string label;   // "f32", "F16", "Q4_K_M", "IQ4_XS-imatrix": the golden logits file after "<stem>-"
    std::string model;   // GGUF path ("" for F16/BF16: made from the F32 file as the README says)
};

std::string model_path(const FamilyCase& c) {
    if (!c.model.empty()) return c.model;
    // llama-quantize made the reference's F16/BF16 files from the F32 one; our quantize writes the same bytes.
    const std::string out = test::temp_dir() + "/" + c.stem + "-" + c.label + ".gguf";
    if (!std::filesystem::exists(out)) {
        QuantizeOptions q;
        q.input = test::golden(c.dir + "/" + c.stem + "-f32.gguf");
        q.output = out;
        q.ftype = c.label == "F16" ? Ftype::MOSTLY_F16 : Ftype::BF16;
        q.quiet = true;
        quantize_model(q);
    }
    return out;
}

std::vector<FamilyCase> cases() {
    std::vector<FamilyCase> v;
    for (const auto& [dir, stem] : {std::pair<std::string, std::string>{"gemma2", "tiny-g2"}, {"gemma3", "tiny-g3"}}) {
        v.push_back({dir, stem, "f32", test::golden(dir + "/" + stem + "-f32.gguf")});
        v.push_back({dir, stem, "F16", ""});
        v.push_back({dir, stem, "BF16", ""});
        for (const char* sub : {"q", "qi"}) {
            std::vector<std::string> files;
            for (const auto& e : std::filesystem::directory_iterator(test::golden(dir + "/" + sub)))
                if (e.path().extension() == ".gguf") files.push_back(e.path().string());
            std::sort(files.begin(), files.end());
            for (const auto& p : files) {
                const std::string type = std::filesystem::path(p).stem().string().substr(stem.size() + 1);
                v.push_back({dir, stem, std::string(sub) == "qi" ? type + "-imatrix" : type, p});
            }
        }
    }
    return v;
}

std::string case_name(const testing::TestParamInfo<FamilyCase>& i) {
    std::string s = i.param.stem + "_" + i.param.label;
    std::replace(s.begin(), s.end(), '-', '_');
    return s;
}

ops::ThreadPool& pool() {
    static ops::ThreadPool p(2);
    return p;
}

std::string logits_file(const FamilyCase& c, const std::string& label, const char* suffix) {
    return test::golden(c.dir + "/logits/" + c.stem + "-" + label + suffix);
}

class FamilyLogits : public testing::TestWithParam<FamilyCase> {};

TEST_P(FamilyLogits, MatchLlamaCpp) {
    const FamilyCase& c = GetParam();
    const auto m = Model::load(model_path(c));
    ASSERT_EQ(m->config().arch, c.dir);
    for (const auto& [tokens_file, suffix, slack] :
         {std::tuple<const char*, const char*, int>{"tokens.txt", ".bin", 2}, {"tokens-long.txt", ".long.bin", 8}}) {
        const auto tokens = test::read_ids(test::golden(c.dir + "/logits/" + tokens_file));
        const auto ref = test::read_floats(logits_file(c, c.label, suffix));
        const auto ref_f32 = test::read_floats(logits_file(c, "f32", suffix));
        const auto ours = test::model_logits(*m, tokens, 0, pool());
        test::compare_logits(c.stem + " " + c.label + (slack == 8 ? " long" : ""), ours, ref, m->config().n_vocab,
                             test::golden_tolerance(c.label, ref, ref_f32), static_cast<int64_t>(tokens.size()) - slack);
    }
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyLogits, testing::ValuesIn(cases()), case_name);

// Greedy decoding after each prompt: the prompt in one batch, then one token per step through the windowed cache.
class FamilyGreedy : public testing::TestWithParam<FamilyCase> {};

TEST_P(FamilyGreedy, ContinuationsMatchLlamaCpp) {
    const FamilyCase& c = GetParam();
    const auto m = Model::load(model_path(c));
    for (const auto& [tokens_file, suffix] :
         {std::pair<const char*, const char*>{"tokens.txt", ".gen.txt"}, {"tokens-long.txt", ".long.gen.txt"}}) {
        const auto prompt = test::read_ids(test::golden(c.dir + "/logits/" + tokens_file));
        const auto expected = test::read_ids(logits_file(c, c.label, suffix));
        ContextParams p;
        p.n_ctx = 128;
        p.pool = &pool();
        Context ctx(*m, p);
        const float* logits = ctx.eval(prompt);
        for (size_t i = 0; i < expected.size(); ++i) {
            const auto t = static_cast<int32_t>(test::argmax(logits, m->config().n_vocab));
            ASSERT_EQ(t, expected[i]) << c.stem << " " << c.label << " " << tokens_file << ": first mismatch at "
                                      << "generated token " << i;
            logits = ctx.decode(t);
        }
    }
}

std::vector<FamilyCase> greedy_cases() {
    std::vector<FamilyCase> v;
    for (const FamilyCase& c : cases())
        if (c.label == "f32" || c.label == "F16") v.push_back(c);
    return v;
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyGreedy, testing::ValuesIn(greedy_cases()), case_name);

}  // namespace
}  // namespace gemma
