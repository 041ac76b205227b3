// HF -> GGUF converter: safetensors/protobuf readers, element conversion, and a clear error (and no output) for bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "convert/convert_hf.h"
#include "convert/hf_config.h"
#include "convert/hf_synth.h"
#include "convert/safetensors.h"
#include "convert/sentencepiece_model.h"
#include "core/error.h"
#include "core/fp16.h"
#include "support/golden.h"

namespace gemma {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// One tiny synthetic checkpoint (2 shards + index, real Gemma tokenizer files) shared by the tests.
const std::string& base_checkpoint() {
    static const std::string dir = [] {
        HfSynthOptions o;
        o.dir = test::temp_dir() + "/hf-tiny";
        o.shards = 2;
        o.quiet = true;
        write_hf_checkpoint(o);
        return o.dir;
    }();
    return dir;
}

// A checkpoint directory of symlinks to the base one, without the files in `omit` (the test writes its own).
std::string variant(const std::set<std::string>& omit) {
    const std::string d = test::temp_dir() + "/hf";
    fs::create_directories(d);
    for (const auto& e : fs::directory_iterator(base_checkpoint())) {
        const std::string n = e.path().filename().string();
        if (!omit.count(n)) fs::create_symlink(e.path(), d + "/" + n);
    }
    return d;
}

void write_text(const std::string& path, const std::string& s) {
    std::ofstream(path, std::ios::binary) << s;
}

json read_json(const std::string& path) {
    std::ifstream in(path);
    return json::parse(in);
}

// Converting `dir` must fail with a message containing every piece of `what`, and leave nothing behind.
void expect_convert_error(const std::string& dir, const std::vector<std::string>& what) {
    const std::string out_dir = test::temp_dir();
    ConvertOptions o;
    o.input_dir = dir;
    o.output = out_dir + "/out.gguf";
    o.quiet = true;
    try {
        convert_hf(o);
        ADD_FAILURE() << "conversion succeeded, expected an error containing: " << what.front();
    } catch (const Error& e) {
        const std::string msg = e.what();
        for (const std::string& w : what) EXPECT_NE(msg.find(w), std::string::npos) << "message: " << msg << "\nmissing: " << w;
    }
    EXPECT_TRUE(fs::is_empty(out_dir)) << "an output file was left behind in " << out_dir;
}

// A safetensors file from raw header text and data bytes.
std::vector<uint8_t> st_bytes(const std::string& header, size_t data_bytes, uint64_t claimed_len = 0) {
    std::vector<uint8_t> b(8);
    const uint64_t len = claimed_len ? claimed_len : header.size();
    for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(len >> (8 * i));
    b.insert(b.end(), header.begin(), header.end());
    b.resize(b.size() + data_bytes, 0);
    return b;
}

std::string st_error(const std::vector<uint8_t>& bytes) {
    const std::string p = test::temp_dir() + "/x.safetensors";
    test::write_file_bytes(p, bytes);
    try {
        SafetensorsFile::open(p);
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find(p), std::string::npos) << msg;
        return msg;
    }
    return "";
}

TEST(Safetensors, WriterReaderRoundTrip) {
    const std::string p = test::temp_dir() + "/rt.safetensors";
    SafetensorsWriter w(p);
    w.add_tensor("b", StDtype::BF16, {2, 3});
    w.add_tensor("a", StDtype::F32, {4});
    w.write_header();
    const uint16_t b[6] = {1, 2, 3, 4, 5, 6};
    const float a[4] = {1.5f, -2, 3, 4};
    w.write_data(b, sizeof b);
    w.write_data(a, sizeof a);
    EXPECT_FALSE(fs::exists(p));  // only under its final name once complete
    w.finish();
    auto f = SafetensorsFile::open(p);
    ASSERT_EQ(f->tensors().size(), 2u);
    EXPECT_EQ(f->tensors().begin()->first, "a");  // name order, as Python's keys()
    const StTensor* tb = f->find("b");
    ASSERT_TRUE(tb);
    EXPECT_EQ(tb->dtype, StDtype::BF16);
    EXPECT_EQ(tb->shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(std::memcmp(tb->data, b, sizeof b), 0);
    EXPECT_EQ(std::memcmp(f->find("a")->data, a, sizeof a), 0);
}

TEST(Safetensors, MalformedFilesNameTheReason) {
    const std::string ok = R"({"t":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]}})";
    EXPECT_EQ(st_error(st_bytes(ok, 8)), "");
    EXPECT_NE(st_error({1, 2, 3}).find("too short"), std::string::npos);
    EXPECT_NE(st_error(st_bytes(ok, 0, ok.size() + 100)).find("truncated header"), std::string::npos);
    EXPECT_NE(st_error(st_bytes(ok, 8, uint64_t{1} << 40)).find("implausible"), std::string::npos);
    EXPECT_NE(st_error(st_bytes(R"({"t":{"dtype":"BF16",)", 8)).find("not valid JSON"), std::string::npos);
    EXPECT_NE(st_error(st_bytes(R"([1,2])", 8)).find("not a JSON object"), std::string::npos);
    EXPECT_NE(st_error(st_bytes(ok, 4)).find("outside the file"), std::string::npos);
    EXPECT_NE(st_error(st_bytes(R"({"t":{"dtype":"Q9","shape":[2,2],"data_offsets":[0,8]}})", 8)).find("unknown dtype 'Q9'"),
              std::string::npos);
    EXPECT_NE(st_error(st_bytes(R"({"t":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 8)).find("I64 is not supported"),
              std::string::npos);
    EXPECT_NE(st_error(st_bytes(R"({"t":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,8]}})", 8)).find("shape needs 12"),
              std::string::npos);
    EXPECT_NE(st_error(st_bytes(R"({"t":{"dtype":"BF16","shape":[2,-2],"data_offsets":[0,8]}})", 8)).find("negative"),
              std::string::npos);
    EXPECT_NE(st_error(st_bytes(R"({"t":{"dtype":"BF16","shape":[2],"data_offsets":[4,0]}})", 8)).find("end before"),
              std::string::npos);
    EXPECT_NE(st_error(st_bytes(R"({"a":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]},)"
                                R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]}})", 8)).find("overlap"),
              std::string::npos);
}

TEST(SentencePieceModel, RoundTripAndSkippedFields) {
    std::vector<SpPiece> pieces = {{"<unk>", 0, SpType::Unknown}, {"<0x41>", 0, SpType::Byte}, {"\xE2\x96\x81the", -3.5f, SpType::Normal},
                                   {"<ctl>", 0, SpType::Control}, {"x", -7, SpType::UserDefined}, {"", 0, SpType::Unused}};
    std::vector<uint8_t> b = serialize_sentencepiece_model(pieces);
    // An unknown field of every wire type before the pieces: the reader must skip them.
    const std::vector<uint8_t> extra = {0x78, 0x05, 0x81, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0x8D, 0x01, 1, 2, 3, 4};
    b.insert(b.begin(), extra.begin(), extra.end());
    const auto got = parse_sentencepiece_model(b.data(), b.size(), "m.model");
    ASSERT_EQ(got.size(), pieces.size());
    for (size_t i = 0; i < pieces.size(); ++i) {
        EXPECT_EQ(got[i].piece, pieces[i].piece);
        EXPECT_EQ(got[i].score, pieces[i].score);
        EXPECT_EQ(got[i].type, pieces[i].type);
    }
}

TEST(SentencePieceModel, MalformedInputIsAnError) {
    auto err = [](std::vector<uint8_t> b) {
        try {
            parse_sentencepiece_model(b.data(), b.size(), "tok.model");
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    const std::vector<uint8_t> good = serialize_sentencepiece_model({{"a", -1, SpType::Normal}});
    EXPECT_EQ(err(good), "");
    EXPECT_NE(err(std::vector<uint8_t>(good.begin(), good.end() - 3)).find("tok.model"), std::string::npos);
    EXPECT_NE(err({0x0A, 0x80}).find("truncated varint"), std::string::npos);
    EXPECT_NE(err({0x0A, 0x10, 0x01}).find("runs past"), std::string::npos);
    EXPECT_NE(err({0x13}).find("wire type 3"), std::string::npos);
    EXPECT_NE(err({0x0B}).find("pieces is not a message"), std::string::npos);
    EXPECT_NE(err({0x0A, 0x02, 0x18, 0x09}).find("type 9"), std::string::npos);
    EXPECT_NE(err({0x0A, 0x02, 0x10, 0x01}).find("score is not a float"), std::string::npos);
    EXPECT_NE(err({}).find("no pieces"), std::string::npos);
    EXPECT_NE(err({'h', 'e', 'l', 'l', 'o'}).find("tok.model"), std::string::npos);
}

TEST(ConvertElements, NormPlusOneAndOutputTypes) {
    const uint16_t bf[3] = {fp32_to_bf16(0.5f), fp32_to_bf16(-1.25f), fp32_to_bf16(3e-3f)};
    float out[3];
    EXPECT_EQ(convert_elements(reinterpret_cast<const uint8_t*>(bf), StDtype::BF16, 3, true, TypeId::F32,
                               reinterpret_cast<uint8_t*>(out)), 0u);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(out[i], bf16_to_fp32(bf[i]) + 1.0f);
    // f16 sources add in half precision (PyTorch keeps them f16): 2^-12 + 1 rounds back to 1.
    const uint16_t h = fp32_to_fp16(1.0f / 4096);
    convert_elements(reinterpret_cast<const uint8_t*>(&h), StDtype::F16, 1, true, TypeId::F32, reinterpret_cast<uint8_t*>(out));
    EXPECT_EQ(out[0], 1.0f);
    // bf16 -> f16 overflow is counted and becomes inf; bf16 -> bf16 is exact.
    const uint16_t big[2] = {fp32_to_bf16(1e5f), fp32_to_bf16(-7e4f)};
    uint16_t o16[2];
    EXPECT_EQ(convert_elements(reinterpret_cast<const uint8_t*>(big), StDtype::BF16, 2, false, TypeId::F16,
                               reinterpret_cast<uint8_t*>(o16)), 2u);
    EXPECT_TRUE(std::isinf(fp16_to_fp32(o16[0])) && std::isinf(fp16_to_fp32(o16[1])));
    EXPECT_EQ(convert_elements(reinterpret_cast<const uint8_t*>(big), StDtype::BF16, 2, false, TypeId::BF16,
                               reinterpret_cast<uint8_t*>(o16)), 0u);
    EXPECT_EQ(std::memcmp(o16, big, 4), 0);
}

TEST(ConvertElements, SizeLabelLikeGgufPy) {
    EXPECT_EQ(size_label(2506172416), "2.5B");
    EXPECT_EQ(size_label(8537680896), "8.5B");
    EXPECT_EQ(size_label(67379456), "67M");
    EXPECT_EQ(size_label(1500), "1.5K");
}

TEST(ConvertErrors, MissingFiles) {
    expect_convert_error(variant({"config.json"}), {"config.json", "missing"});
    expect_convert_error(variant({"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                                  "model.safetensors.index.json"}),
                         {"no model.safetensors"});
    expect_convert_error(variant({"model-00002-of-00002.safetensors"}),
                         {"model.safetensors.index.json", "model-00002-of-00002.safetensors", "missing"});
    // Without the index, the shard naming still shows one is missing.
    expect_convert_error(variant({"model-00002-of-00002.safetensors", "model.safetensors.index.json"}),
                         {"model-00002-of-00002.safetensors", "missing"});
    expect_convert_error(variant({"tokenizer.json"}), {"no tokenizer.model or tokenizer.json"});
    expect_convert_error(test::temp_dir() + "/does-not-exist", {"does-not-exist", "config.json"});
}

TEST(ConvertErrors, ConfigProblems) {
    const json cfg = read_json(base_checkpoint() + "/config.json");
    auto with = [&](const std::function<void(json&)>& edit) {
        const std::string d = variant({"config.json"});
        json c = cfg;
        edit(c);
        write_text(d + "/config.json", c.dump());
        return d;
    };
    expect_convert_error(with([](json& c) { c["architectures"] = {"LlamaForCausalLM"}; }),
                         {"config.json", "LlamaForCausalLM", "not supported"});
    expect_convert_error(with([](json& c) { c["architectures"] = {"Gemma2ForCausalLM"}; }), {"Gemma2ForCausalLM"});
    expect_convert_error(with([](json& c) { c.erase("hidden_size"); }), {"config.json", "missing \"hidden_size\""});
    expect_convert_error(with([](json& c) { c["num_key_value_heads"] = 3; }), {"config.json", "multiple"});
    // Shapes are checked against the config: a wider FFN, a smaller vocabulary, fewer or more layers.
    expect_convert_error(with([](json& c) { c["intermediate_size"] = 2048; }),
                         {"safetensors", "model.layers.0.mlp.", "has shape", "implies", "2048"});
    expect_convert_error(with([](json& c) { c["vocab_size"] = 1000; }), {"model.embed_tokens.weight", "[1000, 256]"});
    expect_convert_error(with([](json& c) { c["num_hidden_layers"] = 1; }), {"layer 1", "num_hidden_layers = 1"});
    expect_convert_error(with([](json& c) { c["num_hidden_layers"] = 3; }), {"model.layers.2.", "missing"});
    const std::string d = variant({"config.json"});
    write_text(d + "/config.json", "{\"architectures\": [\"GemmaForCausalLM\",");
    expect_convert_error(d, {"config.json", "not valid JSON"});
}

TEST(ConvertErrors, BrokenSafetensors) {
    const std::string shard = "model-00002-of-00002.safetensors";
    const std::vector<uint8_t> orig = test::read_file_bytes(base_checkpoint() + "/" + shard);
    auto with = [&](const std::vector<uint8_t>& bytes, bool index = true) {
        const std::string d = index ? variant({shard}) : variant({shard, "model.safetensors.index.json"});
        test::write_file_bytes(d + "/" + shard, bytes);
        return d;
    };
    expect_convert_error(with(std::vector<uint8_t>(orig.begin(), orig.begin() + 100)), {shard, "truncated header"});
    expect_convert_error(with(std::vector<uint8_t>(orig.begin(), orig.end() - 1000)), {shard, "outside the file"});
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | orig[static_cast<size_t>(i)];
    std::string header(orig.begin() + 8, orig.begin() + 8 + static_cast<std::ptrdiff_t>(hlen));
    auto with_header = [&](std::string h, bool index = true) {
        h.resize(header.size(), ' ');  // same length, so the data offsets stay valid
        std::vector<uint8_t> b = orig;
        std::copy(h.begin(), h.end(), b.begin() + 8);
        return with(b, index);
    };
    std::string bad_json = header;
    bad_json[bad_json.find(':')] = '#';
    expect_convert_error(with_header(bad_json), {shard, "not valid JSON"});
    std::string bad_dtype = header;
    bad_dtype.replace(bad_dtype.find("\"BF16\""), 6, "\"BX16\"");
    expect_convert_error(with_header(bad_dtype), {shard, "unknown dtype 'BX16'"});
    std::string extra = header;
    const size_t at = extra.find("model.layers.");
    extra.replace(at, 13, "model.layerz.");
    expect_convert_error(with_header(extra), {"index.json", "model.layerz.", "not in the weight_map"});
    expect_convert_error(with_header(extra, false), {shard, "model.layerz.", "cannot map"});
}

TEST(ConvertErrors, BrokenTokenizer) {
    std::string d = variant({"tokenizer.json"});
    write_text(d + "/tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {");
    expect_convert_error(d, {"tokenizer.json", "not valid JSON"});
    d = variant({});
    write_text(d + "/tokenizer.model", "this is not a protobuf");
    expect_convert_error(d, {"tokenizer.model", "malformed protobuf"});
    d = variant({"tokenizer_config.json"});
    json tc = read_json(base_checkpoint() + "/tokenizer_config.json");
    tc["added_tokens_decoder"]["999999"] = {{"content", "<x>"}, {"special", true}};
    write_text(d + "/tokenizer_config.json", tc.dump());
    expect_convert_error(d, {"tokenizer_config.json", "999999", "outside"});
}

TEST(ConvertErrors, CommandLineReportsAndLeavesNothing) {
    const std::string out_dir = test::temp_dir();
    std::string err;
    EXPECT_EQ(test::run_gemma("convert " + variant({"config.json"}) + " " + out_dir + "/o.gguf", nullptr, &err), 1);
    EXPECT_NE(err.find("error: "), std::string::npos) << err;
    EXPECT_NE(err.find("config.json"), std::string::npos) << err;
    EXPECT_TRUE(fs::is_empty(out_dir));
    EXPECT_NE(test::run_gemma("convert " + base_checkpoint() + " " + out_dir + "/o.gguf --outtype q4_0", nullptr, &err), 0);
    EXPECT_TRUE(fs::is_empty(out_dir));
}

}  // namespace
}  // namespace gemma
