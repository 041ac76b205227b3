// GGUF reader/writer: round trips of every value type, and a clear error for every kind of malformed file.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "core/error.h"
#include "gguf/gguf.h"
#include "support/golden.h"

namespace gemma {
namespace {

// Hand-assembles GGUF bytes so each test can break exactly one field.
struct Bytes {
    std::vector<uint8_t> b;
    template <typename T> Bytes& put(T v) {
        const auto* p = reinterpret_cast<const uint8_t*>(&v);
        b.insert(b.end(), p, p + sizeof(T));
        return *this;
    }
    Bytes& str(const std::string& s) {
        put<uint64_t>(s.size());
        b.insert(b.end(), s.begin(), s.end());
        return *this;
    }
    Bytes& header(uint32_t version, int64_t n_tensors, int64_t n_kv) {
        b.insert(b.end(), {'G', 'G', 'U', 'F'});
        return put(version).put(n_tensors).put(n_kv);
    }
    Bytes& pad(size_t a) {
        b.resize((b.size() + a - 1) / a * a, 0);
        return *this;
    }
};

std::unique_ptr<GgufFile> parse(const Bytes& x) { return GgufFile::from_memory(x.b.data(), x.b.size(), "test.gguf"); }

// Expects a gemma::Error whose message names the file and contains `what`.
void expect_error(const Bytes& x, const std::string& what) {
    try {
        parse(x);
        ADD_FAILURE() << "no error, expected: " << what;
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("test.gguf"), std::string::npos) << msg;
        EXPECT_NE(msg.find(what), std::string::npos) << "message: " << msg << "\nexpected to contain: " << what;
    }
}

// One tensor "t" of [ne0, ne1] f32 with valid data.
Bytes one_tensor_file(int32_t type = 0, int64_t ne0 = 4, int64_t ne1 = 2, uint64_t offset = 0, uint32_t n_dims = 2) {
    Bytes x;
    x.header(3, 1, 0).str("t").put<uint32_t>(n_dims).put<int64_t>(ne0);
    if (n_dims > 1) x.put<int64_t>(ne1);
    x.put<int32_t>(type).put<uint64_t>(offset).pad(32);
    x.b.resize(x.b.size() + 64, 0);
    return x;
}

TEST(Gguf, RoundTripEveryValueType) {
    const std::string path = test::temp_dir() + "/rt.gguf";
    {
        GgufWriter w(path);
        GgufValue v;
        v.type = GgufType::UINT8; v.u64 = 200; w.set("u8", v);
        v = {}; v.type = GgufType::INT8; v.i64 = -100; w.set("i8", v);
        v = {}; v.type = GgufType::UINT16; v.u64 = 60000; w.set("u16", v);
        v = {}; v.type = GgufType::INT16; v.i64 = -30000; w.set("i16", v);
        w.set("u32", GgufValue::u32(4000000000u));
        w.set("i32", GgufValue::i32(-2000000000));
        w.set("f32", GgufValue::f32(1.5f));
        w.set("bool", GgufValue::boolean(true));
        w.set("str", GgufValue::string(std::string("a\0b", 3)));
        w.set("u64", GgufValue::u64v(1ull << 40));
        v = {}; v.type = GgufType::INT64; v.i64 = -(1ll << 40); w.set("i64", v);
        v = {}; v.type = GgufType::FLOAT64; v.f64 = 0.1; w.set("f64", v);
        w.set("strs", GgufValue::string_array({"x", "", "yz"}));
        w.set("f32s", GgufValue::f32_array({1.f, -2.f}));
        GgufValue nested;
        nested.type = GgufType::ARRAY;
        nested.elem_type = GgufType::ARRAY;
        nested.arrays = {GgufValue::i32_array({1, 2}), GgufValue::i32_array({3})};
        nested.count = 2;
        w.set("nested", nested);
        w.add_tensor("a", TypeId::F32, {3, 1});  // trailing 1 dropped -> 1-D
        w.add_tensor("b", TypeId::F16, {2, 2});
        w.write_header();
        const float a[3] = {1, 2, 3};
        const uint16_t b[4] = {1, 2, 3, 4};
        w.write_tensor_data(a, sizeof a);
        w.write_tensor_data(b, sizeof b);
        w.finish();
    }
    auto f = GgufFile::open(path);
    EXPECT_EQ(f->version(), 3u);
    EXPECT_EQ(f->find("u8")->u64, 200u);
    EXPECT_EQ(f->find("i8")->i64, -100);
    EXPECT_EQ(f->find("u16")->u64, 60000u);
    EXPECT_EQ(f->find("i16")->i64, -30000);
    EXPECT_EQ(f->get_uint("u32"), 4000000000u);
    EXPECT_EQ(f->find("i32")->i64, -2000000000);
    EXPECT_EQ(f->get_float("f32"), 1.5);
    EXPECT_TRUE(f->get_bool("bool", false));
    EXPECT_EQ(f->get_string("str"), std::string("a\0b", 3));
    EXPECT_EQ(f->get_uint("u64"), 1ull << 40);
    EXPECT_EQ(f->find("i64")->i64, -(1ll << 40));
    EXPECT_EQ(f->get_float("f64"), 0.1);
    EXPECT_EQ(f->find("strs")->strs, (std::vector<std::string>{"x", "", "yz"}));
    EXPECT_EQ(f->find("f32s")->elem<float>(1), -2.f);
    const GgufValue* n = f->find("nested");
    ASSERT_EQ(n->arrays.size(), 2u);
    EXPECT_EQ(n->arrays[0].elem<int32_t>(1), 2);
    EXPECT_EQ(n->arrays[1].count, 1u);
    const GgufTensor& a = f->tensor("a");
    EXPECT_EQ(a.n_dims, 1u);
    EXPECT_EQ(reinterpret_cast<const float*>(a.data)[2], 3.f);
    const GgufTensor& b = f->tensor("b");
    EXPECT_EQ(b.offset % 32, 0u);
    EXPECT_EQ(b.offset, 32u);
    EXPECT_EQ(reinterpret_cast<const uint16_t*>(b.data)[3], 4);
    EXPECT_EQ(f->file_size() % 32, 0u);  // padded after the last tensor too
    EXPECT_THROW(f->get_uint("str"), Error);
    EXPECT_THROW(f->get_string("missing"), Error);
    EXPECT_THROW(f->tensor("missing"), Error);
}

TEST(Gguf, WriterLeavesNoFileUntilFinished) {
    const std::string dir = test::temp_dir();
    const std::string path = dir + "/x.gguf";
    {
        GgufWriter w(path);
        w.add_tensor("a", TypeId::F32, {8});
        w.write_header();
        EXPECT_FALSE(std::filesystem::exists(path));
    }  // abandoned: the temporary is removed too
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_TRUE(std::filesystem::is_empty(dir));
}

TEST(Gguf, AcceptsVersion2AndCustomAlignment) {
    Bytes x;
    x.header(2, 1, 1).str("general.alignment").put<int32_t>(4).put<uint32_t>(64);
    x.str("t").put<uint32_t>(1).put<int64_t>(4).put<int32_t>(0).put<uint64_t>(0).pad(64);
    x.b.resize(x.b.size() + 16, 0);
    auto f = parse(x);
    EXPECT_EQ(f->version(), 2u);
    EXPECT_EQ(f->alignment(), 64u);
    EXPECT_EQ(f->data_offset() % 64, 0u);
}

TEST(GgufMalformed, Header) {
    Bytes x;
    x.b = {'G', 'G'};
    expect_error(x, "too small");
    x.b = {'G', 'G', 'U', 'X', 3, 0, 0, 0};
    expect_error(x, "bad magic");
    expect_error(Bytes().header(0, 0, 0), "unsupported GGUF version 0");
    expect_error(Bytes().header(1, 0, 0), "version 1 is no longer supported");
    expect_error(Bytes().header(4, 0, 0), "unsupported GGUF version 4");
    expect_error(Bytes().header(0x03000000u, 0, 0), "byte order");
    Bytes t;
    t.b = {'G', 'G', 'U', 'F', 3, 0, 0, 0, 0};
    expect_error(t, "truncated");
    expect_error(Bytes().header(3, -1, 0), "tensor count");
    expect_error(Bytes().header(3, 1ll << 40, 0), "tensor count");
    expect_error(Bytes().header(3, 0, 1ll << 60), "metadata count");
}

TEST(GgufMalformed, Metadata) {
    auto kv = [](const std::string& key, int32_t type) {
        Bytes x;
        x.header(3, 0, 1).str(key).put<int32_t>(type);
        return x;
    };
    expect_error(kv("", 4).put<uint32_t>(1), "empty metadata key");
    expect_error(kv("k", 13).put<uint32_t>(1), "unknown value type 13");
    expect_error(kv("k", -1).put<uint32_t>(1), "unknown value type -1");
    expect_error(kv("k", 4), "truncated");
    expect_error(kv("k", 8).put<uint64_t>(1ull << 31), "exceeds 1 GiB");
    expect_error(kv("k", 8).put<uint64_t>(100).put<uint32_t>(0), "truncated");
    expect_error(kv("k", 9).put<int32_t>(42).put<uint64_t>(1), "unknown array element type 42");
    expect_error(kv("k", 9).put<int32_t>(4).put<uint64_t>(1ull << 31), "exceeds 2^30");
    expect_error(kv("k", 9).put<int32_t>(4).put<uint64_t>(1000), "truncated");
    expect_error(kv("k", 9).put<int32_t>(8).put<uint64_t>(1u << 29), "truncated");
    {
        Bytes x = kv("k", 9);
        for (int d = 0; d < 10; ++d) x.put<int32_t>(9).put<uint64_t>(1);
        x.put<int32_t>(4).put<uint64_t>(0);
        expect_error(x, "nested deeper");
    }
    {
        Bytes x;
        x.header(3, 0, 2).str("k").put<int32_t>(4).put<uint32_t>(1).str("k").put<int32_t>(4).put<uint32_t>(2);
        expect_error(x, "duplicate metadata key 'k'");
    }
    {
        Bytes x;
        x.header(3, 0, 1).str("general.alignment").put<int32_t>(4).put<uint32_t>(48);
        expect_error(x, "not a power of two");
        Bytes y;
        y.header(3, 0, 1).str("general.alignment").put<int32_t>(4).put<uint32_t>(0);
        expect_error(y, "not a power of two");
        Bytes z;
        z.header(3, 0, 1).str("general.alignment").put<int32_t>(10).put<uint64_t>(32);
        expect_error(z, "must be uint32");
    }
}

TEST(GgufMalformed, TensorInfos) {
    EXPECT_NO_THROW(parse(one_tensor_file()));
    expect_error(one_tensor_file(0, 4, 2, 0, 0), "dimensions");
    expect_error(one_tensor_file(0, 4, 2, 0, 5), "dimensions");
    expect_error(one_tensor_file(0, -4, 2), "negative dimension");
    expect_error(one_tensor_file(4), "unknown or unsupported tensor type id 4");
    expect_error(one_tensor_file(43), "tensor type id 43");
    expect_error(one_tensor_file(-1), "tensor type id -1");
    expect_error(one_tensor_file(2, 33), "not a multiple");  // q4_0 rows need 32s
    expect_error(one_tensor_file(0, 4, 2, 16), "not aligned");
    expect_error(one_tensor_file(0, 4, 2, 64), "outside the file");
    expect_error(one_tensor_file(0, 1024, 1024), "outside the file");
    {
        Bytes x;
        x.header(3, 1, 0).str("t").put<uint32_t>(4);
        for (int i = 0; i < 4; ++i) x.put<int64_t>(1ll << 20);
        x.put<int32_t>(0).put<uint64_t>(0).pad(32);
        expect_error(x, "element count overflows");
    }
    {
        Bytes x;
        x.header(3, 1, 0).str("t").put<uint32_t>(2).put<int64_t>(1ll << 32).put<int64_t>(1ll << 30);
        x.put<int32_t>(0).put<uint64_t>(0).pad(32);
        expect_error(x, "byte size overflows");
    }
    {
        Bytes x;
        x.header(3, 1, 0).str(std::string(64, 'n')).put<uint32_t>(1).put<int64_t>(4).put<int32_t>(0).put<uint64_t>(0);
        expect_error(x, "longer than 63");
    }
    {
        Bytes x;
        x.header(3, 2, 0);
        for (int i = 0; i < 2; ++i) x.str("t").put<uint32_t>(1).put<int64_t>(8).put<int32_t>(0).put<uint64_t>(i * 32);
        x.pad(32);
        x.b.resize(x.b.size() + 64);
        expect_error(x, "duplicate tensor 't'");
    }
}

TEST(GgufMalformed, EveryTruncationOfARealFileFailsCleanly) {
    const auto bytes = test::read_file_bytes(test::golden("tiny-7b/q/tiny-7b-Q4_0.gguf"));
    auto full = GgufFile::from_memory(bytes.data(), bytes.size(), "test.gguf");
    const uint64_t data_off = full->data_offset();
    // Every cut inside the header must fail; cuts inside the data must fail too (tensors out of range).
    for (size_t cut = 0; cut < bytes.size(); cut += (cut < data_off + 64 ? 1 : 4099)) {
        std::vector<uint8_t> part(bytes.begin(), bytes.begin() + static_cast<long>(cut));
        EXPECT_THROW(GgufFile::from_memory(part.data(), part.size(), "test.gguf"), Error) << "cut at " << cut;
    }
}

TEST(GgufMalformed, RandomCorruptionNeverCrashes) {
    const auto bytes = test::read_file_bytes(test::golden("tiny-7b/q/tiny-7b-Q4_0.gguf"));
    auto full = GgufFile::from_memory(bytes.data(), bytes.size(), "test.gguf");
    const size_t header = static_cast<size_t>(full->data_offset());
    std::mt19937 rng(123);
    int errors = 0;
    for (int it = 0; it < 3000; ++it) {
        std::vector<uint8_t> b(bytes.begin(), bytes.begin() + static_cast<long>(header) + 4096);
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int k = 0; k < flips; ++k) b[rng() % header] = static_cast<uint8_t>(rng());
        try {
            auto f = GgufFile::from_memory(b.data(), b.size(), "test.gguf");
            for (const auto& t : f->tensors()) ASSERT_LE(t.data + t.nbytes, b.data() + b.size());
        } catch (const Error&) {
            ++errors;
        }
    }
    EXPECT_GT(errors, 0);
}

TEST(GgufMalformed, OpenReportsMissingFileAndDirectory) {
    try {
        GgufFile::open("/nonexistent/model.gguf");
        ADD_FAILURE();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/model.gguf: cannot open"), std::string::npos);
    }
    EXPECT_THROW(GgufFile::open(test::temp_dir()), Error);
    const std::string empty = test::temp_dir() + "/empty.gguf";
    test::write_file_bytes(empty, {});
    EXPECT_THROW(GgufFile::open(empty), Error);
}

}  // namespace
}  // namespace gemma
