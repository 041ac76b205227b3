// SHA-256 against the FIPS 180-4 / NIST example vectors, padding edge lengths, streaming and file hashing.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "core/sha256.h"
#include "support/golden.h"

namespace gemma {
namespace {

TEST(Sha256, KnownVectors) {
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    EXPECT_EQ(sha256_hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopq"
                         "rsmnopqrstnopqrstu"),
              "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Lengths around the 55/56/64-byte padding boundaries, fed in uneven pieces, must match one-shot hashing.
TEST(Sha256, StreamingMatchesOneShot) {
    std::string all;
    for (int i = 0; i < 4; ++i)
        for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
    all += std::string(55, 'x');
    EXPECT_EQ(sha256_hex(all), "415c3b5c395cb8896358cda2f03a8c43395029c22ed119c0e76617d75c9b65e9");
    for (size_t len : {0u, 1u, 55u, 56u, 63u, 64u, 65u, 119u, 120u, 128u, 1079u}) {
        const std::string s = all.substr(0, len);
        Sha256 h;
        for (size_t pos = 0, step = 1; pos < s.size(); pos += step, step = step * 2 + 1)
            h.update(s.data() + pos, std::min(step, s.size() - pos));
        EXPECT_EQ(h.hex_digest(), sha256_hex(s)) << len;
    }
}

TEST(Sha256, File) {
    const std::string dir = test::temp_dir();
    test::write_file_bytes(dir + "/f", std::vector<uint8_t>{'a', 'b', 'c'});
    EXPECT_EQ(sha256_file(dir + "/f"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_THROW(sha256_file(dir + "/missing"), Error);
}

}  // namespace
}  // namespace gemma
