// Golden: a synthetic HF Gemma checkpoint with the real tokenizer files converts to golden/vocab's vocabulary and exact tensors.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "convert/convert_hf.h"
#include "convert/hf_config.h"
#include "convert/hf_synth.h"
#include "convert/hf_tokenizer.h"
#include "convert/safetensors.h"
#include "convert/sentencepiece_model.h"
#include "core/fp16.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "support/golden.h"
#include "tokenizer/tokenizer.h"

namespace gemma {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The checkpoint: tiny config, bf16, two shards with an index, the golden tokenizer.json and
// tokenizer_config.json (no tokenizer.model).
const std::string& checkpoint() {
    static const std::string dir = [] {
        HfSynthOptions o;
        o.dir = test::temp_dir() + "/hf-tiny";
        o.shards = 2;
        o.quiet = true;
        o.vocab_dir = test::golden("vocab/hf");
        write_hf_checkpoint(o);
        return o.dir;
    }();
    return dir;
}

std::string convert(const std::string& dir, TypeId outtype = TypeId::BF16) {
    ConvertOptions o;
    o.input_dir = dir;
    o.output = test::temp_dir() + "/out.gguf";
    o.outtype = outtype;
    o.quiet = true;
    convert_hf(o);
    return o.output;
}

const std::string& converted_bf16() {
    static const std::string path = convert(checkpoint());
    return path;
}

const GgufFile& fixture() {
    static const auto f = GgufFile::open(test::golden("vocab/gemma-vocab.gguf"));
    return *f;
}

bool same_value(const GgufValue& a, const GgufValue& b) {
    return a.type == b.type && a.u64 == b.u64 && a.i64 == b.i64 && a.f64 == b.f64 && a.str == b.str &&
           a.elem_type == b.elem_type && a.count == b.count && a.raw == b.raw && a.strs == b.strs;
}

// Tokens, scores, token types, special ids and flags, chat template: all equal to the fixture's.
void expect_fixture_vocabulary(const GgufFile& g) {
    for (const char* key : {"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                            "tokenizer.ggml.token_type", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                            "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id", "tokenizer.ggml.add_bos_token",
                            "tokenizer.ggml.add_eos_token", "tokenizer.ggml.add_space_prefix", "tokenizer.chat_template"}) {
        const GgufValue* ours = g.find(key);
        const GgufValue* ref = fixture().find(key);
        ASSERT_TRUE(ours) << key;
        ASSERT_TRUE(ref) << key;
        if (same_value(*ours, *ref)) continue;
        ADD_FAILURE() << key << " differs from the fixture";
        if (ours->is_array() && ref->is_array() && ours->count == ref->count) {
            for (uint64_t i = 0; i < ref->count; ++i) {
                const bool eq = ref->elem_type == GgufType::STRING
                                    ? ours->strs[i] == ref->strs[i]
                                    : std::memcmp(ours->raw.data() + i * 4, ref->raw.data() + i * 4, 4) == 0;
                if (!eq) {
                    ADD_FAILURE() << key << ": first difference at id " << i;
                    break;
                }
            }
        }
    }
    EXPECT_EQ(g.get_uint("tokenizer.ggml.eot_token_id"), 107u);
}

TEST(ConvertGolden, VocabularyFromTokenizerJsonEqualsFixture) {
    const auto g = GgufFile::open(converted_bf16());
    expect_fixture_vocabulary(*g);
}

TEST(ConvertGolden, KeysEqualFixtureExceptDocumentedDifferences) {
    const auto g = GgufFile::open(converted_bf16());
    std::set<std::string> fixture_keys;
    for (const GgufKv& kv : fixture().kvs()) {
        fixture_keys.insert(kv.key);
        const GgufValue* ours = g->find(kv.key);
        ASSERT_TRUE(ours) << "missing key " << kv.key;
        EXPECT_EQ(ours->type, kv.value.type) << kv.key;
        // Model keys describe this checkpoint (the fixture carries a 7B's); every other key is equal.
        const bool model_key = kv.key.rfind("gemma.", 0) == 0 || kv.key == "general.name" || kv.key == "general.file_type";
        if (!model_key) {
            EXPECT_TRUE(same_value(*ours, kv.value)) << kv.key;
        }
    }
    std::set<std::string> extra;
    for (const GgufKv& kv : g->kvs())
        if (!fixture_keys.count(kv.key)) extra.insert(kv.key);
    EXPECT_EQ(extra, (std::set<std::string>{"general.type", "general.size_label", "general.quantization_version",
                                            "tokenizer.ggml.eot_token_id"}));
    EXPECT_EQ(g->get_string("general.architecture"), "gemma");
    EXPECT_EQ(g->get_uint("general.file_type"), 32u);
    EXPECT_EQ(g->get_uint("general.quantization_version"), 2u);
    EXPECT_EQ(g->get_uint("gemma.embedding_length"), 256u);
    EXPECT_EQ(g->get_uint("gemma.block_count"), 2u);
    EXPECT_EQ(g->get_uint("gemma.feed_forward_length"), 1024u);
    EXPECT_EQ(g->get_uint("gemma.attention.head_count"), 4u);
    EXPECT_EQ(g->get_uint("gemma.attention.head_count_kv"), 4u);
    EXPECT_EQ(g->get_uint("gemma.attention.key_length"), 128u);
    EXPECT_EQ(g->get_uint("gemma.attention.value_length"), 128u);
    EXPECT_EQ(g->get_uint("gemma.context_length"), 8192u);
    EXPECT_FLOAT_EQ(static_cast<float>(g->get_float("gemma.attention.layer_norm_rms_epsilon")), 1e-6f);
    EXPECT_EQ(g->find("gemma.rope.freq_base"), nullptr);
}

TEST(ConvertGolden, EveryTensorEqualsTheSourceWithNormsPlusOne) {
    const auto g = GgufFile::open(converted_bf16());
    const HfConfig cfg = HfConfig::load(checkpoint());
    const SafetensorsSet src = SafetensorsSet::open_dir(checkpoint());
    // The reference's order: shard by shard, names sorted within each.
    std::vector<std::string> want_order;
    for (const auto& f : src.files())
        for (const auto& [name, t] : f->tensors()) want_order.push_back(map_gemma_tensor(cfg, name)->gguf_name);
    ASSERT_EQ(g->tensors().size(), want_order.size());
    EXPECT_EQ(want_order.size(), 2u + 9u * 2u);
    for (size_t i = 0; i < want_order.size(); ++i) EXPECT_EQ(g->tensors()[i].name, want_order[i]);
    EXPECT_EQ(g->find_tensor("output.weight"), nullptr);

    for (const std::string& hf : gemma_hf_tensor_names(cfg)) {
        const StTensor* s = src.find(hf);
        ASSERT_TRUE(s) << hf;
        const TensorMapping m = *map_gemma_tensor(cfg, hf);
        const GgufTensor& t = g->tensor(m.gguf_name);
        ASSERT_EQ(t.n_dims, s->shape.size()) << hf;
        for (size_t d = 0; d < s->shape.size(); ++d) EXPECT_EQ(t.ne[d], s->shape[s->shape.size() - 1 - d]) << hf;
        if (m.is_norm) {
            ASSERT_EQ(t.type, TypeId::F32) << hf;
            const float* out = reinterpret_cast<const float*>(t.data);
            for (int64_t i = 0; i < s->n_elements(); ++i) {
                uint16_t b;
                std::memcpy(&b, s->data + 2 * i, 2);
                ASSERT_EQ(out[i], bf16_to_fp32(b) + 1.0f) << hf << " [" << i << "]";
            }
        } else {
            ASSERT_EQ(t.type, TypeId::BF16) << hf;
            ASSERT_EQ(t.nbytes, s->nbytes) << hf;
            EXPECT_EQ(std::memcmp(t.data, s->data, s->nbytes), 0) << hf;
        }
    }
}

TEST(ConvertGolden, F16AndF32Outputs) {
    const SafetensorsSet src = SafetensorsSet::open_dir(checkpoint());
    const StTensor* q = src.find("model.layers.1.self_attn.q_proj.weight");
    const StTensor* nrm = src.find("model.norm.weight");
    for (TypeId type : {TypeId::F16, TypeId::F32}) {
        const auto g = GgufFile::open(convert(checkpoint(), type));
        EXPECT_EQ(g->get_uint("general.file_type"), type == TypeId::F16 ? 1u : 0u);
        const GgufTensor& t = g->tensor("blk.1.attn_q.weight");
        ASSERT_EQ(t.type, type);
        for (int64_t i = 0; i < q->n_elements(); ++i) {
            uint16_t b;
            std::memcpy(&b, q->data + 2 * i, 2);
            const float f = bf16_to_fp32(b);
            if (type == TypeId::F16) {
                uint16_t h;
                std::memcpy(&h, t.data + 2 * i, 2);
                ASSERT_EQ(h, fp32_to_fp16(f)) << i;
            } else {
                ASSERT_EQ(reinterpret_cast<const float*>(t.data)[i], f) << i;
            }
        }
        const GgufTensor& tn = g->tensor("output_norm.weight");
        ASSERT_EQ(tn.type, TypeId::F32);
        uint16_t b0;
        std::memcpy(&b0, nrm->data, 2);
        EXPECT_EQ(reinterpret_cast<const float*>(tn.data)[0], bf16_to_fp32(b0) + 1.0f);
    }
}

TEST(ConvertGolden, OutputLoadsAsAModel) {
    const auto m = Model::load(converted_bf16());
    EXPECT_EQ(m->config().n_embd, 256);
    EXPECT_EQ(m->config().n_layer, 2);
    EXPECT_EQ(m->config().head_dim, 128);
    EXPECT_EQ(m->config().n_vocab, 256000);
}

TEST(ConvertGolden, ConvertedVocabularyTokenizesLikeSentencePiece) {
    const Tokenizer tok = Tokenizer::load(converted_bf16());
    std::ifstream in(test::golden("tokenizer/cases.json"));
    const json cases = json::parse(in);
    int checked = 0;
    for (const json& c : cases) {
        const auto ids = tok.encode(c["text"].get<std::string>(), true, true);
        EXPECT_EQ(ids, c["ids"].get<std::vector<TokenId>>()) << "text: " << c["text"].get<std::string>().substr(0, 80);
        ++checked;
    }
    EXPECT_EQ(checked, 109);
}

// A checkpoint that also has a tokenizer.model, built here from tokenizer.json the way HF's Gemma
// tokenizer relates to its SentencePiece model; symlinks share the weights with checkpoint().
std::string checkpoint_with_spm(bool keep_tokenizer_json) {
    const std::string d = test::temp_dir() + "/hf-spm";
    fs::create_directories(d);
    for (const auto& e : fs::directory_iterator(checkpoint())) {
        const std::string n = e.path().filename().string();
        if (n != "tokenizer.json" || keep_tokenizer_json) fs::create_symlink(e.path(), d + "/" + n);
    }
    const json tj = parse_tokenizer_json(checkpoint() + "/tokenizer.json");
    std::set<int64_t> special, added;
    for (const json& a : tj["added_tokens"]) {
        added.insert(a["id"].get<int64_t>());
        if (a["special"].get<bool>()) special.insert(a["id"].get<int64_t>());
    }
    std::vector<SpPiece> pieces(tj["model"]["vocab"].size());
    for (auto it = tj["model"]["vocab"].begin(); it != tj["model"]["vocab"].end(); ++it) {
        const int64_t id = it.value().get<int64_t>();
        const std::string& t = it.key();
        SpPiece& p = pieces[static_cast<size_t>(id)];
        p.piece = t;
        if (t == "<unk>") p.type = SpType::Unknown;
        else if (t.size() == 6 && t.rfind("<0x", 0) == 0) p.type = SpType::Byte;
        else if (special.count(id)) p.type = SpType::Control;
        else if (added.count(id)) p.type = SpType::UserDefined;
        p.score = p.type == SpType::Normal ? -static_cast<float>(id) : 0.0f;
    }
    test::write_file_bytes(d + "/tokenizer.model", serialize_sentencepiece_model(pieces));
    return d;
}

TEST(ConvertGolden, TokenizerModelGivesTheSameVocabulary) {
    for (bool keep_json : {true, false}) {
        SCOPED_TRACE(keep_json ? "tokenizer.model + tokenizer.json" : "tokenizer.model only");
        const auto g = GgufFile::open(convert(checkpoint_with_spm(keep_json)));
        expect_fixture_vocabulary(*g);
    }
}

TEST(ConvertGolden, SynthesizedTokenizerModelMatchesTheTestsConstruction) {
    // hf_synth's --with-spm builder and the test's independent construction agree piece for piece.
    const std::vector<SpPiece> lib = sentencepiece_pieces_from_hf(test::golden("vocab/hf"));
    const std::vector<uint8_t> bytes = test::read_file_bytes(checkpoint_with_spm(true) + "/tokenizer.model");
    const std::vector<SpPiece> ref = parse_sentencepiece_model(bytes.data(), bytes.size(), "tokenizer.model");
    ASSERT_EQ(lib.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
        ASSERT_EQ(lib[i].piece, ref[i].piece) << i;
        ASSERT_EQ(lib[i].score, ref[i].score) << i;
        ASSERT_EQ(lib[i].type, ref[i].type) << i;
    }
}

TEST(ConvertGolden, CommandLineWritesTheSameFile) {
    const std::string out = test::temp_dir() + "/cli.gguf";
    std::string err;
    ASSERT_EQ(test::run_gemma("convert " + checkpoint() + " " + out, nullptr, &err), 0) << err;
    EXPECT_NE(err.find("token_embd.weight"), std::string::npos) << err;  // one progress line per tensor
    EXPECT_NE(err.find("blk.1.ffn_down.weight"), std::string::npos) << err;
    EXPECT_EQ(test::read_file_bytes(out), test::read_file_bytes(converted_bf16()));
}

}  // namespace
}  // namespace gemma
