// `gemma verify` on llama-quantize's golden folders as they are, on a good published copy of them, and on
// broken copies: each defect must fail the audit and name itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "core/sha256.h"
#include "gguf/gguf.h"
#include "quant/ladder.h"
#include "runtime/release_card.h"
#include "runtime/verify.h"
#include "support/golden.h"

namespace gemma {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

void write_text(const std::string& p, const std::string& s) { std::ofstream(p) << s; }

VerifyReport verify(const std::string& dir) {
    VerifyOptions o;
    o.dir = dir;
    return verify_folder(o);
}

// The failures, one per line, for assertion messages and searches.
std::string failures(const VerifyReport& r) {
    std::string s;
    for (const VerifyIssue& i : r.issues)
        if (i.severity == Severity::Failure) s += i.file + ": " + i.what + "\n";
    return s;
}

// SHA256SUMS and a card for whatever the folder holds: what a publisher of the golden files would add.
void publish(const std::string& dir) {
    std::vector<ReleaseFile> files;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string f = e.path().filename().string();
        if (f == "SHA256SUMS" || f == "README.md") continue;
        ReleaseFile rf;
        rf.file = f;
        rf.quant = f.substr(f.rfind('-') + 1, f.size() - f.rfind('-') - 6);  // tiny-7b-Q4_K_M.gguf -> Q4_K_M
        rf.size = fs::file_size(e.path());
        rf.sha256 = sha256_file(e.path().string());
        files.push_back(rf);
    }
    std::sort(files.begin(), files.end(), [](const ReleaseFile& a, const ReleaseFile& b) { return a.file < b.file; });
    write_text(dir + "/SHA256SUMS", render_sha256sums(files));
    write_text(dir + "/README.md", render_card({"tiny-7b", "tiny-7b-f32.gguf", "none", "", {}}, files));
}

// A published copy of golden/tiny-7b/qi with `n` of its files (the cheap audit: fewer files to hash).
std::string good_copy(const std::vector<std::string>& types = {"Q2_K", "Q4_K_S", "Q4_K_M", "IQ4_XS", "Q8_0"}) {
    const std::string dir = test::temp_dir() + "/copy";
    fs::create_directories(dir);
    for (const std::string& t : types)
        fs::copy_file(test::golden("tiny-7b/qi/tiny-7b-" + t + ".gguf"), dir + "/tiny-7b-" + t + ".gguf");
    publish(dir);
    return dir;
}

// Rewrites a GGUF through the writer, letting `edit_kv` change metadata and `edit_data` a tensor's bytes.
void rewrite(const std::string& path, const std::function<void(GgufKv&)>& edit_kv,
             const std::function<void(const GgufTensor&, std::vector<uint8_t>&)>& edit_data = {}) {
    const std::string tmp = path + ".new";
    {
        const auto in = GgufFile::open(path);
        GgufWriter w(tmp, static_cast<uint32_t>(in->alignment()));
        for (GgufKv kv : in->kvs()) {
            if (edit_kv) edit_kv(kv);
            w.set(kv.key, kv.value);
        }
        for (const GgufTensor& t : in->tensors())
            w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims));
        w.write_header();
        for (const GgufTensor& t : in->tensors()) {
            std::vector<uint8_t> d(t.data, t.data + t.nbytes);
            if (edit_data) edit_data(t, d);
            w.write_tensor_data(d.data(), d.size());
        }
        w.finish();
    }
    fs::rename(tmp, path);
}

TEST(Verify, GoldenFoldersPassAsTheyAre) {
    for (const char* sub : {"gemma2/q", "gemma2/qi", "gemma3/q", "gemma3/qi"}) {
        const VerifyReport r = verify(test::golden(sub));
        EXPECT_TRUE(r.ok()) << sub << "\n" << render_verify_report(r);
    }
    for (const char* sub : {"q", "qi"}) {
        const VerifyReport r = verify(test::golden(std::string("tiny-7b/") + sub));
        EXPECT_TRUE(r.ok()) << sub << "\n" << render_verify_report(r);
        EXPECT_EQ(r.files.size(), 20u);  // q: 18 quantized types + F16 + BF16; qi: 20 quantized types
        for (const VerifiedFile& f : r.files) {
            EXPECT_EQ(f.kind, "model") << f.file;
            EXPECT_FALSE(f.quant.empty()) << f.file;
        }
        // Nothing to check checksums or a card against: said, not failed.
        EXPECT_NE(render_verify_report(r).find("no SHA256SUMS"), std::string::npos);
    }
}

TEST(Verify, PublishedCopyPassesWithNoWarnings) {
    const VerifyReport r = verify(good_copy());
    EXPECT_TRUE(r.ok()) << render_verify_report(r);
    EXPECT_TRUE(r.issues.empty()) << render_verify_report(r);
    for (const VerifiedFile& f : r.files)
        if (f.kind == "model") {
            EXPECT_EQ(f.checksum, "ok") << f.file;
        }
}

TEST(VerifyBroken, FlippedTensorByte) {
    const std::string dir = good_copy();
    const auto f = GgufFile::open(dir + "/tiny-7b-Q4_K_M.gguf");
    const uint64_t at = f->data_offset() + f->tensor("blk.1.ffn_up.weight").offset + 100;
    std::fstream io(dir + "/tiny-7b-Q4_K_M.gguf", std::ios::in | std::ios::out | std::ios::binary);
    io.seekg(static_cast<std::streamoff>(at));
    const char c = static_cast<char>(io.get());
    io.seekp(static_cast<std::streamoff>(at));
    io.put(static_cast<char>(c ^ 0x10));
    io.close();
    const VerifyReport r = verify(dir);
    EXPECT_FALSE(r.ok());
    EXPECT_NE(failures(r).find("tiny-7b-Q4_K_M.gguf: its SHA-256 does not match"), std::string::npos) << failures(r);
}

TEST(VerifyBroken, TruncatedFile) {
    const std::string dir = good_copy();
    const std::string p = dir + "/tiny-7b-IQ4_XS.gguf";
    fs::resize_file(p, fs::file_size(p) - 4096);
    const VerifyReport r = verify(dir);
    EXPECT_FALSE(r.ok());
    EXPECT_NE(failures(r).find("tiny-7b-IQ4_XS.gguf: does not parse"), std::string::npos) << failures(r);
}

TEST(VerifyBroken, WrongChecksumLineAndMissingFile) {
    const std::string dir = good_copy();
    std::string sums = slurp(dir + "/SHA256SUMS");
    const size_t line = sums.find("tiny-7b-Q2_K.gguf") - 66;  // the hash of that line
    sums[line] = sums[line] == '0' ? '1' : '0';
    sums += std::string(64, 'a') + "  tiny-7b-Q6_K.gguf\n";
    write_text(dir + "/SHA256SUMS", sums);
    const VerifyReport r = verify(dir);
    EXPECT_FALSE(r.ok());
    EXPECT_NE(failures(r).find("tiny-7b-Q2_K.gguf: its SHA-256 does not match"), std::string::npos) << failures(r);
    EXPECT_NE(failures(r).find("tiny-7b-Q6_K.gguf: listed in SHA256SUMS, but the folder has no such file"), std::string::npos);

    write_text(dir + "/SHA256SUMS", "not a checksum line\n");
    EXPECT_NE(failures(verify(dir)).find("SHA256SUMS: SHA256SUMS line 1"), std::string::npos);
}

// The publisher renamed the Q4_K_S file Q4_K_M and regenerated the checksums and the card.
TEST(VerifyBroken, Q4KSRenamedQ4KM) {
    const std::string dir = good_copy({"Q2_K", "Q4_K_S", "Q8_0"});
    fs::rename(dir + "/tiny-7b-Q4_K_S.gguf", dir + "/tiny-7b-Q4_K_M.gguf");
    publish(dir);
    VerifyReport r = verify(dir);
    EXPECT_FALSE(r.ok());
    EXPECT_NE(failures(r).find("tiny-7b-Q4_K_M.gguf: named Q4_K_M, but general.file_type says Q4_K_S"), std::string::npos)
        << failures(r);
    EXPECT_NE(failures(r).find("tensors are not what the Q4_K_M mix with an imatrix gives"), std::string::npos);

    // Even with general.file_type edited to match, the per-tensor types give it away.
    rewrite(dir + "/tiny-7b-Q4_K_M.gguf", [](GgufKv& kv) {
        if (kv.key == "general.file_type") kv.value = GgufValue::u32(static_cast<uint32_t>(Ftype::Q4_K_M));
    });
    publish(dir);
    r = verify(dir);
    EXPECT_EQ(failures(r).find("general.file_type says"), std::string::npos);
    // Q4_K_S: attn_v Q5_K in the first 4 layers; Q4_K_M: Q6_K attn_v/ffn_down where use_more_bits (layer 1 of 2).
    EXPECT_NE(failures(r).find("tiny-7b-Q4_K_M.gguf: 3 tensors are not what the Q4_K_M mix with an imatrix gives "
                               "(blk.0.attn_v.weight is q5_K where the mix gives q4_K)"),
              std::string::npos)
        << failures(r);
}

TEST(VerifyBroken, MismatchedVocabularyAndHyperparameters) {
    const std::string dir = good_copy({"Q2_K", "Q4_K_M", "Q8_0"});
    rewrite(dir + "/tiny-7b-Q2_K.gguf", [](GgufKv& kv) {
        if (kv.key == "tokenizer.ggml.tokens") kv.value.strs[500] = "something else";
    });
    rewrite(dir + "/tiny-7b-Q8_0.gguf", [](GgufKv& kv) {
        if (kv.key == "gemma.context_length") kv.value = GgufValue::u32(4096);
    });
    publish(dir);
    const VerifyReport r = verify(dir);
    EXPECT_FALSE(r.ok());
    const std::string f = failures(r);
    EXPECT_NE(f.find("tiny-7b-Q2_K.gguf: its vocabulary differs from tiny-7b-Q4_K_M.gguf's (and 1 more) "
                     "(tokenizer.ggml.tokens)"),
              std::string::npos) << f;
    EXPECT_NE(f.find("tiny-7b-Q8_0.gguf: its hyperparameters differ from tiny-7b-Q2_K.gguf's (and 1 more) "
                     "(gemma.context_length)"),
              std::string::npos) << f;
    EXPECT_EQ(std::count(f.begin(), f.end(), '\n'), 2) << f;
}

TEST(VerifyBroken, CardRowsThatDoNotMatch) {
    const std::string dir = good_copy({"Q2_K", "Q4_K_M"});
    std::string card = slurp(dir + "/README.md");
    const size_t row = card.find("| tiny-7b-Q2_K.gguf | Q2_K | ");
    ASSERT_NE(row, std::string::npos) << card;
    card.replace(row, std::string("| tiny-7b-Q2_K.gguf | Q2_K | 0GB").size(), "| tiny-7b-Q2_K.gguf | Q3_K_S | 1.5GB");
    card.insert(card.find("| tiny-7b-Q4_K_M.gguf"), "| tiny-7b-Q6_K.gguf | Q6_K | 0GB | 6.57 |\n");
    write_text(dir + "/README.md", card);
    const VerifyReport r = verify(dir);
    const std::string f = failures(r);
    EXPECT_NE(f.find("tiny-7b-Q2_K.gguf: the card says quant method Q3_K_S, the file is Q2_K"), std::string::npos) << f;
    EXPECT_NE(f.find("tiny-7b-Q2_K.gguf: the card says size 1.5GB, the file has 0GB"), std::string::npos) << f;
    EXPECT_NE(f.find("tiny-7b-Q6_K.gguf: the card lists it, but the folder has no such file"), std::string::npos) << f;
}

// A Q8_0 file whose layer-0 ffn_down rows were shuffled (still valid Q8_0 with the right types and
// checksums): only the KL-divergence test can tell, and it must.
TEST(VerifyBroken, KldOutOfOrder) {
    const std::string dir = good_copy({"Q2_K", "Q4_K_M", "Q6_K", "Q8_0"});
    VerifyOptions o;
    o.dir = dir;
    o.base = test::golden("tiny-7b/tiny-7b-f32.gguf");
    o.text = test::golden("tiny-7b/imatrix-calibration.txt");
    o.ctx = 128;
    o.chunks = 4;
    VerifyReport r = verify_folder(o);
    EXPECT_TRUE(r.ok()) << render_verify_report(r);
    for (const VerifiedFile& f : r.files)
        if (f.kind == "model") {
            EXPECT_TRUE(f.kld && *f.kld > 0) << f.file;
        }

    rewrite(dir + "/tiny-7b-Q8_0.gguf", {}, [](const GgufTensor& t, std::vector<uint8_t>& d) {
        if (t.name != "blk.0.ffn_down.weight") return;
        const size_t row = d.size() / static_cast<size_t>(t.n_rows());
        for (size_t a = 0, b = static_cast<size_t>(t.n_rows()) - 1; a < b; ++a, --b)
            std::swap_ranges(d.begin() + a * row, d.begin() + (a + 1) * row, d.begin() + b * row);
    });
    publish(dir);
    r = verify_folder(o);
    EXPECT_FALSE(r.ok());
    EXPECT_NE(failures(r).find("tiny-7b-Q8_0.gguf: KL-divergence"), std::string::npos) << render_verify_report(r);
    EXPECT_NE(failures(r).find("is out of order by size with"), std::string::npos) << failures(r);
    EXPECT_EQ(failures(r).find("tiny-7b-Q6_K.gguf"), std::string::npos) << failures(r);
}

TEST(VerifyBadInput, ClearErrors) {
    const std::string tmp = test::temp_dir();
    std::string err;
    EXPECT_EQ(test::run_gemma("verify " + tmp + "/missing", nullptr, &err), 1);
    EXPECT_NE(err.find("not a directory"), std::string::npos) << err;
    EXPECT_EQ(test::run_gemma("verify " + tmp + " --base " + test::golden("tiny-7b/tiny-7b-f32.gguf"), nullptr, &err), 1);
    EXPECT_NE(err.find("--base and --text go together"), std::string::npos) << err;
    // A good folder exits 0 and prints the table; a broken one exits 1.
    const std::string dir = good_copy({"Q2_K"});
    std::string out;
    EXPECT_EQ(test::run_gemma("verify " + dir, &out, &err), 0) << err;
    EXPECT_NE(out.find("tiny-7b-Q2_K.gguf"), std::string::npos) << out;
    EXPECT_NE(out.find("no problems"), std::string::npos) << out;
    write_text(dir + "/SHA256SUMS", std::string(64, '0') + "  tiny-7b-Q2_K.gguf\n");
    EXPECT_EQ(test::run_gemma("verify " + dir, &out, &err), 1);
    EXPECT_NE(out.find("FAIL tiny-7b-Q2_K.gguf"), std::string::npos) << out;
}

}  // namespace
}  // namespace gemma
