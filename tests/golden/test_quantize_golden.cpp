// llama-quantize's golden files (Gemma 1, 2 and 3): every tensor byte-identical, per format and per whole ladder file.
#include <gtest/gtest.h>

#include <filesystem>
#include <ostream>
#include <map>

#include "gguf/gguf.h"
#include "quant/imatrix.h"
#include "quant/quantize_model.h"
#include "support/golden.h"

namespace gemma {
namespace {

struct GoldenCase {
    std::string model;  // "tiny-7b" (Gemma 1), "tiny-g2" (Gemma 2), "tiny-g3" (Gemma 3)
    std::string dir;    // "q" or "qi"
    std::string type;   // "Q4_K_M"
    std::string path;

    // Golden folder of the model: tiny-7b/, gemma2/, gemma3/.
    std::string folder() const { return model == "tiny-7b" ? model : "gemma" + model.substr(6); }
    std::string f32() const { return test::golden(folder() + "/" + model + "-f32.gguf"); }
    std::string imatrix() const { return test::golden(folder() + "/" + model + "-imatrix.gguf"); }
};

std::vector<GoldenCase> golden_cases(const std::vector<std::string>& models = {"tiny-7b", "tiny-g2", "tiny-g3"}) {
    std::vector<GoldenCase> v;
    for (const std::string& model : models)
        for (const char* dir : {"q", "qi"}) {
            GoldenCase proto{model, dir, "", ""};
            std::vector<std::string> files;
            for (const auto& e : std::filesystem::directory_iterator(test::golden(proto.folder() + "/" + dir)))
                files.push_back(e.path().string());
            std::sort(files.begin(), files.end());
            for (const auto& p : files) {
                const std::string stem = std::filesystem::path(p).stem().string();  // tiny-7b-Q4_K_M
                v.push_back({model, dir, stem.substr(model.size() + 1), p});
            }
        }
    return v;
}

// Keeps gtest from printing the struct as raw bytes.
void PrintTo(const GoldenCase& c, std::ostream* os) { *os << c.model << "/" << c.dir << "/" << c.type; }

// The legacy .dat imatrix exists for the Gemma 1 model only.
std::vector<GoldenCase> imatrix_cases() {
    std::vector<GoldenCase> v;
    for (auto& c : golden_cases({"tiny-7b"}))
        if (c.dir == "qi") v.push_back(c);
    return v;
}

std::string case_name(const testing::TestParamInfo<GoldenCase>& i) {
    const std::string family = i.param.model == "tiny-7b" ? "" : i.param.model.substr(5) + "_";  // "g2_"
    return family + i.param.type + (i.param.dir == "qi" ? "_imatrix" : "");
}

// Describes the first differing quant block, so a failure explains itself.
std::string first_diff(const GgufTensor& a, const uint8_t* got) {
    const TypeTraits& tt = type_traits(a.type);
    for (uint64_t i = 0; i < a.nbytes; ++i)
        if (a.data[i] != got[i]) {
            const uint64_t row_bytes = row_size(a.type, a.ne[0]);
            return "first difference at byte " + std::to_string(i) + " (row " + std::to_string(i / row_bytes) +
                   ", block " + std::to_string((i % row_bytes) / tt.type_size) + ", byte " +
                   std::to_string((i % row_bytes) % tt.type_size) + " of the block): expected " +
                   std::to_string(a.data[i]) + ", got " + std::to_string(got[i]);
        }
    return "identical";
}

class GoldenQuant : public testing::TestWithParam<GoldenCase> {};

// Format level: each golden tensor re-made from the F32 source with the traits table's quantizer.
TEST_P(GoldenQuant, TensorBytesFromTraits) {
    const GoldenCase& c = GetParam();
    auto src = GgufFile::open(c.f32());
    auto ref = GgufFile::open(c.path);
    Imatrix im;
    if (c.dir == "qi") im = load_imatrix(c.imatrix());
    for (const GgufTensor& t : ref->tensors()) {
        const GgufTensor& s = src->tensor(t.name);
        ASSERT_EQ(s.n_elements(), t.n_elements()) << t.name;
        if (t.type == s.type) continue;
        const TypeTraits& tt = type_traits(t.type);
        std::vector<float> qw = c.dir == "qi" ? im.quant_weights(t.name) : std::vector<float>();
        std::vector<uint8_t> out(t.nbytes);
        try {
            const size_t n = tt.quantize_rows(reinterpret_cast<const float*>(s.data), out.data(), t.n_rows(), t.ne[0],
                                              qw.empty() ? nullptr : qw.data());
            ASSERT_EQ(n, t.nbytes) << t.name;
        } catch (const std::exception& e) {
            ADD_FAILURE() << t.name << " (" << tt.name << "): " << e.what();
            continue;
        }
        EXPECT_TRUE(std::equal(out.begin(), out.end(), t.data))
            << t.name << " (" << tt.name << (qw.empty() ? "" : ", imatrix") << "): " << first_diff(t, out.data());
    }
}

// Whole file: `quantize_model` picks the same type for every tensor and writes the same bytes and keys.
void check_whole_file(const GoldenCase& c, const std::string& imatrix) {
    const std::string out = test::temp_dir() + "/out.gguf";
    QuantizeOptions opt;
    opt.input = c.f32();
    opt.output = out;
    opt.ftype = find_ladder_type(c.type)->ftype;
    opt.imatrix_path = imatrix;
    opt.quiet = true;
    opt.threads = 2;
    ASSERT_NO_THROW(quantize_model(opt));
    auto got = GgufFile::open(out);
    auto ref = GgufFile::open(c.path);
    ASSERT_EQ(got->tensors().size(), ref->tensors().size());
    for (size_t i = 0; i < ref->tensors().size(); ++i) {
        const GgufTensor& r = ref->tensors()[i];
        const GgufTensor& g = got->tensors()[i];
        ASSERT_EQ(g.name, r.name) << "tensor order differs at " << i;
        EXPECT_EQ(type_name(g.type), std::string(type_name(r.type))) << r.name;
        EXPECT_EQ(g.shape_string(), r.shape_string()) << r.name;
        if (g.type == r.type && g.nbytes == r.nbytes) {
            EXPECT_TRUE(std::equal(r.data, r.data + r.nbytes, g.data)) << r.name << ": " << first_diff(r, g.data);
        }
    }
    ASSERT_EQ(got->kvs().size(), ref->kvs().size());
    for (size_t i = 0; i < ref->kvs().size(); ++i) {
        const auto& rk = ref->kvs()[i];
        const auto& gk = got->kvs()[i];
        EXPECT_EQ(gk.key, rk.key) << "key order differs at " << i;
        if (rk.key == "quantize.imatrix.file") continue;  // the path as given on the command line
        EXPECT_EQ(gk.value.to_display(1 << 20), rk.value.to_display(1 << 20)) << rk.key;
    }
}

TEST_P(GoldenQuant, WholeFile) {
    const GoldenCase& c = GetParam();
    check_whole_file(c, c.dir == "qi" ? c.imatrix() : "");
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenQuant, testing::ValuesIn(golden_cases()), case_name);

// Dequantize -> requantize reproduces llama.cpp's bytes for the formats whose reference quantizer is a
// fixed point: the legacy types without imatrix (k-quant and IQ searches are not idempotent by design,
// and imatrix weighting moves the optimum), so only the legacy ladder files of q/ take part.
std::vector<GoldenCase> legacy_cases() {
    std::vector<GoldenCase> v;
    for (auto& c : golden_cases())
        if (c.dir == "q" && (c.type == "Q4_0" || c.type == "Q4_1" || c.type == "Q5_0" || c.type == "Q5_1" ||
                             c.type == "Q8_0"))
            v.push_back(c);
    return v;
}

class GoldenRequant : public testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenRequant, DequantRequantStable) {
    const GoldenCase& c = GetParam();
    auto ref = GgufFile::open(c.path);
    int checked = 0;
    for (const GgufTensor& t : ref->tensors()) {
        if (t.type != TypeId::Q8_0 && t.type != TypeId::Q4_0 && t.type != TypeId::Q4_1 && t.type != TypeId::Q5_0 &&
            t.type != TypeId::Q5_1)
            continue;
        const TypeTraits& tt = type_traits(t.type);
        std::vector<float> f(static_cast<size_t>(t.n_elements()));
        const size_t rb = row_size(t.type, t.ne[0]);
        for (int64_t r = 0; r < t.n_rows(); ++r) tt.dequantize_row(t.data + r * rb, f.data() + r * t.ne[0], t.ne[0]);
        std::vector<uint8_t> out(t.nbytes);
        tt.quantize_rows(f.data(), out.data(), t.n_rows(), t.ne[0], nullptr);
        EXPECT_TRUE(std::equal(out.begin(), out.end(), t.data)) << t.name << ": " << first_diff(t, out.data());
        ++checked;
    }
    EXPECT_GT(checked, 0) << c.path << " holds no legacy-format tensor";
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenRequant, testing::ValuesIn(legacy_cases()), case_name);

class GoldenQuantLegacy : public testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenQuantLegacy, WholeFileWithDatImatrix) {
    check_whole_file(GetParam(), test::golden("tiny-7b/tiny-7b-imatrix.dat"));
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenQuantLegacy, testing::ValuesIn(imatrix_cases()), case_name);

TEST(GoldenImatrix, BothFormatsGiveTheSameWeights) {
    const Imatrix g = load_imatrix(test::golden("tiny-7b/tiny-7b-imatrix.gguf"));
    const Imatrix d = load_imatrix(test::golden("tiny-7b/tiny-7b-imatrix.dat"));
    ASSERT_EQ(g.entries.size(), d.entries.size());
    EXPECT_EQ(g.chunk_count, d.chunk_count);
    EXPECT_EQ(g.datasets, d.datasets);
    for (const auto& [name, e] : g.entries) {
        const auto wg = g.quant_weights(name), wd = d.quant_weights(name);
        ASSERT_EQ(wg.size(), wd.size()) << name;
        for (size_t i = 0; i < wg.size(); ++i) ASSERT_NEAR(wg[i], wd[i], 1e-6f * std::abs(wg[i]) + 1e-30f) << name << "[" << i << "]";
    }
}

}  // namespace
}  // namespace gemma
