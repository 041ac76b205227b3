// `gemma quantize` behaviour beyond bytes: thread-count determinism, and a clear error for every bad input.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "quant/imatrix.h"
#include "quant/quantize_model.h"
#include "support/golden.h"

namespace gemma {
namespace {

std::string f32_model() { return test::golden("tiny-7b/tiny-7b-f32.gguf"); }

QuantizeOptions opts(const std::string& out, Ftype f, int threads, const std::string& imatrix = "") {
    QuantizeOptions o;
    o.input = f32_model();
    o.output = out;
    o.ftype = f;
    o.threads = threads;
    o.imatrix_path = imatrix;
    o.quiet = true;
    return o;
}

void expect_error_and_no_output(const QuantizeOptions& o, const std::string& what) {
    try {
        quantize_model(o);
        ADD_FAILURE() << "expected an error containing: " << what;
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
    EXPECT_FALSE(std::filesystem::exists(o.output));
    for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(o.output).parent_path()))
        EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << "temporary left behind: " << e.path();
}

TEST(QuantizeThreads, SameBytesForOneAndTwoThreads) {
    const std::string dir = test::temp_dir();
    const std::string im = test::golden("tiny-7b/tiny-7b-imatrix.gguf");
    for (Ftype f : {Ftype::Q4_K_M, Ftype::IQ4_XS, Ftype::IQ3_XS}) {
        const std::string imat = f == Ftype::Q4_K_M ? "" : im;
        quantize_model(opts(dir + "/a.gguf", f, 1, imat));
        quantize_model(opts(dir + "/b.gguf", f, 2, imat));
        EXPECT_EQ(test::read_file_bytes(dir + "/a.gguf"), test::read_file_bytes(dir + "/b.gguf"))
            << ladder_type(f).name;
    }
}

TEST(QuantizeBadInput, ImatrixRequired) {
    const std::string dir = test::temp_dir();
    expect_error_and_no_output(opts(dir + "/o.gguf", Ftype::IQ3_XS, 1), "needs an importance matrix");
    expect_error_and_no_output(opts(dir + "/o.gguf", Ftype::IQ3_XXS, 1), "needs an importance matrix");
}

TEST(QuantizeBadInput, MissingInputAndImatrix) {
    const std::string dir = test::temp_dir();
    QuantizeOptions o = opts(dir + "/o.gguf", Ftype::Q4_0, 1);
    o.input = dir + "/missing.gguf";
    expect_error_and_no_output(o, "missing.gguf: cannot open");
    expect_error_and_no_output(opts(dir + "/o.gguf", Ftype::Q4_0, 1, dir + "/none.dat"), "none.dat: cannot open");
}

TEST(QuantizeBadInput, RequantizeNeedsPermission) {
    const std::string dir = test::temp_dir();
    QuantizeOptions o = opts(dir + "/o.gguf", Ftype::Q4_K_M, 1);
    o.input = test::golden("tiny-7b/q/tiny-7b-Q8_0.gguf");
    expect_error_and_no_output(o, "--allow-requantize");
    o.allow_requantize = true;
    EXPECT_NO_THROW(quantize_model(o));
}

TEST(QuantizeBadInput, ImatrixEntryOfTheWrongSize) {
    const std::string dir = test::temp_dir();
    Imatrix im = load_imatrix(test::golden("tiny-7b/tiny-7b-imatrix.gguf"));
    auto& e = im.entries.at("blk.0.ffn_up.weight");
    e.ne0 = 128;
    e.sums.resize(128);
    save_imatrix_gguf(im, dir + "/bad.gguf");
    expect_error_and_no_output(opts(dir + "/o.gguf", Ftype::Q4_K_M, 1, dir + "/bad.gguf"), "has 128 values");
}

TEST(QuantizeBadInput, CorruptImatrixFiles) {
    const std::string dir = test::temp_dir();
    auto dat = test::read_file_bytes(test::golden("tiny-7b/tiny-7b-imatrix.dat"));
    dat.resize(dat.size() / 2);
    test::write_file_bytes(dir + "/trunc.dat", dat);
    expect_error_and_no_output(opts(dir + "/o.gguf", Ftype::Q4_K_M, 1, dir + "/trunc.dat"), "truncated");
    auto gg = test::read_file_bytes(test::golden("tiny-7b/tiny-7b-imatrix.gguf"));
    gg.resize(gg.size() - 100);
    test::write_file_bytes(dir + "/trunc.gguf", gg);
    expect_error_and_no_output(opts(dir + "/o.gguf", Ftype::Q4_K_M, 1, dir + "/trunc.gguf"), "invalid GGUF");
    test::write_file_bytes(dir + "/garbage.dat", {0xFF, 0xFF, 0xFF, 0x7F, 1, 2});
    expect_error_and_no_output(opts(dir + "/o.gguf", Ftype::Q4_K_M, 1, dir + "/garbage.dat"), "impossible");
}

TEST(QuantizeBadInput, NonFiniteImatrix) {
    const std::string dir = test::temp_dir();
    Imatrix im = load_imatrix(test::golden("tiny-7b/tiny-7b-imatrix.gguf"));
    im.entries.begin()->second.sums[3] = std::numeric_limits<float>::quiet_NaN();
    save_imatrix_gguf(im, dir + "/nan.gguf");
    expect_error_and_no_output(opts(dir + "/o.gguf", Ftype::Q4_K_M, 1, dir + "/nan.gguf"), "non-finite");
}

TEST(QuantizeCli, UnknownTypeAndHelp) {
    const std::string dir = test::temp_dir();
    std::string out, err;
    EXPECT_NE(test::run_gemma("quantize " + f32_model() + " " + dir + "/o.gguf Q4_2", &out, &err), 0);
    EXPECT_NE(err.find("unknown quantization type 'Q4_2'"), std::string::npos) << err;
    EXPECT_NE(err.find("Q4_K_M"), std::string::npos) << "the error lists the valid types";
    EXPECT_FALSE(std::filesystem::exists(dir + "/o.gguf"));
    EXPECT_EQ(test::run_gemma("quantize --help", &out, &err), 0);
    EXPECT_NE(out.find("IQ4_XS"), std::string::npos);
    EXPECT_EQ(test::run_gemma("quantize " + f32_model() + " " + dir + "/o.gguf q8_0 -t 2", &out, &err), 0) << err;
    EXPECT_EQ(test::read_file_bytes(dir + "/o.gguf"), test::read_file_bytes(test::golden("tiny-7b/q/tiny-7b-Q8_0.gguf")));
    EXPECT_NE(err.find("token_embd.weight"), std::string::npos) << "a progress line per tensor";
}

TEST(ImatrixIo, WriteBothFormatsAndReadBack) {
    const std::string dir = test::temp_dir();
    const Imatrix im = load_imatrix(test::golden("tiny-7b/tiny-7b-imatrix.gguf"));
    save_imatrix_gguf(im, dir + "/a.gguf");
    save_imatrix_dat(im, dir + "/a.dat");
    EXPECT_EQ(test::read_file_bytes(dir + "/a.gguf"), test::read_file_bytes(test::golden("tiny-7b/tiny-7b-imatrix.gguf")));
    EXPECT_EQ(test::read_file_bytes(dir + "/a.dat"), test::read_file_bytes(test::golden("tiny-7b/tiny-7b-imatrix.dat")));
}

}  // namespace
}  // namespace gemma
