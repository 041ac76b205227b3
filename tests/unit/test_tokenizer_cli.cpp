// End-to-end: the `gemma tokenize` command on the Gemma vocabulary fixture.
#include <gtest/gtest.h>

#include "support/golden.h"

namespace {

std::string vocab() { return gemma::test::golden("vocab/gemma-vocab.gguf"); }

TEST(TokenizeCli, IdsOnOneLine) {
    std::string out, err;
    ASSERT_EQ(gemma::test::run_gemma("tokenize " + vocab() + " --ids --text 'Hello world'", &out, &err), 0) << err;
    EXPECT_EQ(out, "2 4521 2134\n");
}

TEST(TokenizeCli, FileInputAndSpecialParsing) {
    const std::string path = gemma::test::temp_dir() + "/in.txt";
    const std::string text = "<start_of_turn>user\nHi<end_of_turn>\n";
    gemma::test::write_file_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
    std::string out, err;
    ASSERT_EQ(gemma::test::run_gemma("tokenize " + vocab() + " --ids --file " + path, &out, &err), 0) << err;
    EXPECT_EQ(out, "2 106 1645 108 2151 107 108\n");
    ASSERT_EQ(gemma::test::run_gemma("tokenize " + vocab() + " --ids --no-parse-special --file " + path, &out, &err), 0);
    EXPECT_EQ(out.find(" 106 "), std::string::npos) << out;
    ASSERT_EQ(gemma::test::run_gemma("tokenize " + vocab() + " --file " + path, &out, &err), 0) << err;
    EXPECT_EQ(out.substr(0, 34), "2 '<bos>'\n106 '<start_of_turn>'\n16");
    EXPECT_NE(out.find("108 '\\n'\n"), std::string::npos) << out;
    ASSERT_EQ(gemma::test::run_gemma("tokenize " + vocab() + " --pieces --text 'Hello world'", &out, &err), 0);
    EXPECT_EQ(out, "'<bos>'\n'Hello'\n' world'\n");
}

TEST(TokenizeCli, Errors) {
    std::string out, err;
    EXPECT_NE(gemma::test::run_gemma("tokenize " + vocab() + " --ids", &out, &err), 0);
    EXPECT_NE(err.find("--text"), std::string::npos) << err;
    EXPECT_NE(gemma::test::run_gemma("tokenize /nonexistent.gguf --text x", &out, &err), 0);
    EXPECT_NE(err.find("/nonexistent.gguf"), std::string::npos) << err;
    const std::string dir = gemma::test::temp_dir();
    EXPECT_NE(gemma::test::run_gemma("tokenize " + vocab() + " --file " + dir + "/missing.txt", &out, &err), 0);
    EXPECT_NE(err.find("missing.txt"), std::string::npos) << err;
}

}  // namespace
