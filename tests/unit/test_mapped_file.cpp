// MappedFile, LargeBuffer and release_mapped_pages: released pages read back from the file unchanged.
#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/mapped_file.h"
#include "support/golden.h"

namespace gemma {
namespace {

TEST(MappedFile, ReleasedPagesReadBackFromTheFile) {
    std::vector<uint8_t> bytes(3 * 4096 + 123);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + 3);
    const std::string path = test::temp_dir() + "/mapped_release.bin";
    test::write_file_bytes(path, bytes);
    MappedFile f(path);
    ASSERT_EQ(f.size(), bytes.size());
    uint64_t sum = std::accumulate(f.data(), f.data() + f.size(), uint64_t{0});  // touch every page
    // An unaligned range: only whole pages inside it are dropped, neighbours untouched.
    release_mapped_pages(f.data() + 100, f.size() - 200);
    release_mapped_pages(f.data(), 0);
    EXPECT_EQ(std::accumulate(f.data(), f.data() + f.size(), uint64_t{0}), sum);
    for (size_t i = 0; i < bytes.size(); ++i) ASSERT_EQ(f.data()[i], bytes[i]) << i;
}

TEST(MappedFile, MissingFileIsAClearError) {
    try {
        MappedFile f(test::temp_dir() + "/no-such-file.gguf");
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("no-such-file.gguf"), std::string::npos) << e.what();
    }
}

TEST(LargeBuffer, WritableAndMovable) {
    LargeBuffer a(5 << 20);
    ASSERT_NE(a.data(), nullptr);
    EXPECT_EQ(a.size(), size_t{5} << 20);
    for (size_t i = 0; i < a.size(); i += 4096) a.data()[i] = static_cast<uint8_t>(i >> 12);
    uint8_t* p = a.data();
    LargeBuffer b(std::move(a));
    EXPECT_EQ(a.data(), nullptr);
    EXPECT_EQ(b.data(), p);
    LargeBuffer c;
    c = std::move(b);
    EXPECT_EQ(c.data()[4096 * 3], 3);
    EXPECT_EQ(LargeBuffer(0).data(), nullptr);
}

TEST(LargeBuffer, ImpossibleSizeIsAClearError) {
    try {
        LargeBuffer b(size_t{1} << 62);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("cannot allocate"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace gemma
