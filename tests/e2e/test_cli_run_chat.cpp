// `gemma run`, `gemma chat` and `gemma bench` end to end: output, piped turns, golden greedy text, errors.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "convert/synth.h"
#include "support/golden.h"
#include "tokenizer/tokenizer.h"
#include "gemma_paths.h"

namespace gemma {
namespace {

const std::string& tiny_model() {
    static const std::string path = [] {
        SynthOptions o;
        o.output = test::temp_dir() + "/tiny-e2e.gguf";
        o.shape = "tiny";
        o.n_vocab = 1024;
        o.quiet = true;
        o.vocab_path = test::golden("vocab/gemma-vocab.gguf");  // the library has no default; the CLI does
        synth_model(o);
        return o.output;
    }();
    return path;
}

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// run_gemma reads stdin from /dev/null; chat needs its turns piped in.
int run_gemma_stdin(const std::string& args, const std::string& input, std::string* out, std::string* err) {
    const std::string dir = test::temp_dir();
    const std::string in = dir + "/stdin", o = dir + "/stdout", e = dir + "/stderr";
    std::ofstream(in, std::ios::binary) << input;
    const std::string cmd = std::string(GEMMA_BINARY) + " " + args + " <" + in + " >" + o + " 2>" + e;
    const int rc = std::system(cmd.c_str());
    *out = slurp(o);
    *err = slurp(e);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

size_t count(const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
    return n;
}

TEST(CliRun, StreamsAReproducibleCompletion) {
    std::string out1, err1, out2, err2;
    const std::string args = "run " + tiny_model() + " -p \"Once upon a time\" -n 12 --seed 42 --ignore-eos -t 2";
    ASSERT_EQ(test::run_gemma(args, &out1, &err1), 0) << err1;
    ASSERT_EQ(test::run_gemma(args, &out2, &err2), 0) << err2;
    EXPECT_EQ(out1, out2);
    EXPECT_NE(err1.find("generation: 12 tokens"), std::string::npos) << err1;
    EXPECT_NE(err1.find("seed 42"), std::string::npos) << err1;
    std::string q;
    ASSERT_EQ(test::run_gemma(args + " -q", &q, &err2), 0);
    EXPECT_EQ(q, out1);
    EXPECT_EQ(err2.find("tokens/s"), std::string::npos) << err2;
}

TEST(CliRun, GreedyContinuationMatchesLlamaCpp) {
    // The model layer checks these ids on Context directly; here they go through the sampler (temp 0),
    // the generator and the CLI, and come out as text.
    const std::string model = test::golden("tiny-7b/tiny-7b-f32.gguf");
    std::string tokens = slurp(test::golden("tiny-7b/logits/tokens.txt"));
    while (!tokens.empty() && (tokens.back() == '\n' || tokens.back() == ' ')) tokens.pop_back();
    std::istringstream gen_in(slurp(test::golden("tiny-7b/logits/tiny-7b-f32.gen.txt")));
    std::vector<TokenId> gen;
    for (std::string w; gen_in >> w;)
        if (w != "gen:") gen.push_back(std::stoi(w));
    ASSERT_FALSE(gen.empty());
    const Tokenizer tok = Tokenizer::load(model);
    std::string out, err;
    ASSERT_EQ(test::run_gemma("run " + model + " --tokens \"" + tokens + "\" --temp 0 --ignore-eos -n " +
                                  std::to_string(gen.size()),
                              &out, &err),
              0)
        << err;
    EXPECT_EQ(out, tok.decode(gen));
}

TEST(CliRun, StopStringEndsTheText) {
    std::string free_out, out, err;
    const std::string base = "run " + tiny_model() + " -p \"Hello\" -n 16 --seed 3 --ignore-eos";
    ASSERT_EQ(test::run_gemma(base, &free_out, &err), 0) << err;
    if (free_out.size() < 4) GTEST_SKIP() << "too little text to cut: '" << free_out << "'";
    const std::string stop = free_out.substr(free_out.size() / 2, 2);
    if (stop.find_first_of("\"\\$`'") != std::string::npos || stop.find('\n') != std::string::npos)
        GTEST_SKIP() << "stop string needs shell quoting";
    ASSERT_EQ(test::run_gemma(base + " --stop \"" + stop + "\"", &out, &err), 0) << err;
    EXPECT_EQ(out, free_out.substr(0, free_out.find(stop)));
    EXPECT_NE(err.find("stop: stop"), std::string::npos) << err;
}

TEST(CliRun, BadArgumentsGiveClearErrors) {
    std::string out, err;
    EXPECT_NE(test::run_gemma("run /nonexistent/dir/model-xyz.gguf -p hi", &out, &err), 0);
    EXPECT_NE(err.find("/nonexistent/dir/model-xyz.gguf"), std::string::npos) << err;
    EXPECT_NE(test::run_gemma("run " + tiny_model(), &out, &err), 0);
    EXPECT_NE(err.find("-p"), std::string::npos) << err;
    EXPECT_NE(test::run_gemma("run " + tiny_model() + " -p hi --temp abc", &out, &err), 0);
    EXPECT_NE(err.find("--temp"), std::string::npos) << err;
    EXPECT_NE(test::run_gemma("run " + tiny_model() + " -p hi --top-p -1", &out, &err), 0);
    EXPECT_NE(err.find("top_p"), std::string::npos) << err;
    EXPECT_NE(test::run_gemma("run " + tiny_model() + " --tokens \"2 99999\"", &out, &err), 0);
    EXPECT_NE(err.find("99999"), std::string::npos) << err;
    EXPECT_NE(test::run_gemma("run " + tiny_model() + " -p hi --no-such-option", &out, &err), 0);
    EXPECT_NE(err.find("no-such-option"), std::string::npos) << err;
    std::string words;
    for (int i = 0; i < 40; ++i) words += " word";
    EXPECT_NE(test::run_gemma("run " + tiny_model() + " -p \"" + words + "\" --ctx 8", &out, &err), 0);
    EXPECT_NE(err.find("context"), std::string::npos) << err;
    ASSERT_EQ(test::run_gemma("run --help", &out, &err), 0);
    EXPECT_NE(out.find("Examples:"), std::string::npos);
    EXPECT_NE(out.find("--repeat-penalty"), std::string::npos);
}

TEST(CliChat, PipedTurnsKeepTheConversationInTheCache) {
    std::string out, err;
    const std::string args = "chat " + tiny_model() + " -n 6 --temp 0 --timings";
    ASSERT_EQ(run_gemma_stdin(args, "Hi there!\n\nHow are you?\n", &out, &err), 0) << err;
    EXPECT_EQ(count(err, "generation:"), 2u) << err;  // two turns; the empty line is skipped
    // Turn 2 evaluates only what follows turn 1 in the cache.
    const size_t second = err.find("prompt:", err.find("generation:"));
    ASSERT_NE(second, std::string::npos);
    EXPECT_EQ(err.find("(0 reused", second), std::string::npos) << err;
    EXPECT_EQ(count(out, "\n") >= 2, true) << out;
}

TEST(CliChat, ClearStartsOverAndExitQuits) {
    std::string out, err;
    const std::string args = "chat " + tiny_model() + " -n 5 --temp 0 --system \"Be brief.\"";
    ASSERT_EQ(run_gemma_stdin(args, "Hello\n/clear\nHello\n/exit\nnever answered\n", &out, &err), 0) << err;
    // Greedy, same conversation after /clear: the same reply twice, and nothing after /exit.
    ASSERT_EQ(out.size() % 2, 0u) << out;
    EXPECT_EQ(out.substr(0, out.size() / 2), out.substr(out.size() / 2));
}

TEST(CliChat, OneTurnWithPrompt) {
    std::string out, err;
    ASSERT_EQ(test::run_gemma("chat " + tiny_model() + " -p \"Why is the sky blue?\" -n 4 --seed 1 --timings", &out,
                              &err),
              0)
        << err;
    EXPECT_EQ(count(err, "generation:"), 1u) << err;
    EXPECT_FALSE(out.empty());
    EXPECT_EQ(out.back(), '\n');
}

TEST(CliChat, BadArgumentsGiveClearErrors) {
    std::string out, err;
    EXPECT_NE(test::run_gemma("chat /nonexistent/chat-model.gguf -p hi", &out, &err), 0);
    EXPECT_NE(err.find("/nonexistent/chat-model.gguf"), std::string::npos) << err;
    EXPECT_NE(test::run_gemma("chat", &out, &err), 0);
    EXPECT_NE(err.find("model"), std::string::npos) << err;
    EXPECT_NE(test::run_gemma("chat " + tiny_model() + " --min-p 2", &out, &err), 0);
    EXPECT_NE(err.find("min_p"), std::string::npos) << err;
    ASSERT_EQ(test::run_gemma("chat --help", &out, &err), 0);
    EXPECT_NE(out.find("/clear"), std::string::npos);
}

TEST(CliBench, JsonHasTheDocumentedFields) {
    std::string out, err;
    ASSERT_EQ(test::run_gemma("bench " + tiny_model() + " -p 16 -n 4 -r 2 -t 2 --json --no-bandwidth", &out, &err), 0)
        << err;
    const auto j = nlohmann::json::parse(out);
    for (const char* k : {"model", "size_bytes", "threads", "pp", "tg", "read_bandwidth_gbs"})
        EXPECT_TRUE(j.contains(k)) << k;
    EXPECT_EQ(j["threads"], 2);
    EXPECT_EQ(j["pp"]["n_tokens"], 16);
    EXPECT_EQ(j["tg"]["n_tokens"], 4);
    EXPECT_GT(j["pp"]["tokens_per_s"].get<double>(), 0.0);
    EXPECT_GT(j["tg"]["tokens_per_s"].get<double>(), 0.0);
    EXPECT_GE(j["tg"]["sd"].get<double>(), 0.0);
    EXPECT_EQ(j["model"], "tiny-e2e.gguf");
    // The process holds at least the weights it benchmarked, and far less than a bandwidth buffer it never made.
    EXPECT_GE(j["peak_rss_bytes"].get<uint64_t>(), j["weight_bytes"].get<uint64_t>());
    EXPECT_LT(j["peak_rss_bytes"].get<uint64_t>(), uint64_t{4} << 30);
    EXPECT_NE(test::run_gemma("bench " + tiny_model() + " -r 0", &out, &err), 0);
    EXPECT_NE(test::run_gemma("bench " + tiny_model() + " -p 0 -n 0", &out, &err), 0);
    EXPECT_NE(err.find("nothing to measure"), std::string::npos) << err;
}

TEST(CliBench, AnUnknownIsaIsAClearError) {
    std::string out, err;
    // The child inherits the variable; the kernel tables read it once per process.
    ASSERT_EQ(setenv("GEMMA_ISA", "bogus", 1), 0);
    const int rc = test::run_gemma("bench " + tiny_model() + " -p 4 -n 1 -r 1 -t 1 --no-bandwidth", &out, &err);
    unsetenv("GEMMA_ISA");
    EXPECT_NE(rc, 0);
    EXPECT_NE(err.find("GEMMA_ISA=bogus: unknown ISA"), std::string::npos) << err;
}

TEST(CliBench, NoRepackRunsTheInPlaceLayout) {
    std::string out, err;
    const std::string q4 = test::golden("tiny-7b/q/tiny-7b-Q4_0.gguf");
    for (const char* flag : {"", " --no-repack"}) {
        ASSERT_EQ(test::run_gemma("bench " + q4 + " -p 8 -n 2 -r 1 -t 2 --json --no-bandwidth" + flag, &out, &err), 0)
            << flag << err;
        EXPECT_GT(nlohmann::json::parse(out)["tg"]["tokens_per_s"].get<double>(), 0.0) << flag;
        EXPECT_NE(err.find("loaded in"), std::string::npos) << err;
    }
}

}  // namespace
}  // namespace gemma
