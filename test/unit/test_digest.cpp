// The transfer hash: SHA-256 against the FIPS 180-2 vectors, incremental use,
// and the saved state that resumed transfers carry on from.
#include "digest.hpp"
#include "random_data.hpp"

#include <openssl/err.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

using ferry::Sha256;

namespace {

const std::string kEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const std::string kAbc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const std::string kTwoBlockMessage = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
const std::string kTwoBlock = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
const std::string kMillionA = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

std::string hash_of(const std::string& text)
{
    Sha256 hash;
    hash.update(text.data(), text.size());
    return hash.hex_digest();
}

// The saved text is "<prefix><sizeof ctx>:<hex of ctx>"; returns the offset of
// the hex part.
std::size_t hex_start(const std::string& saved)
{
    const auto colon = saved.rfind(':');
    REQUIRE(colon != std::string::npos);
    return colon + 1;
}

} // namespace

TEST_CASE("SHA-256 matches the FIPS 180-2 vectors")
{
    CHECK(Sha256().hex_digest() == kEmpty);
    CHECK(hash_of("") == kEmpty);
    CHECK(hash_of("abc") == kAbc);
    CHECK(hash_of(kTwoBlockMessage) == kTwoBlock);
    CHECK(hash_of(std::string(1000000, 'a')) == kMillionA);
}

TEST_CASE("the std::byte span overload hashes the same bytes")
{
    const std::array<std::byte, 3> abc{std::byte{'a'}, std::byte{'b'}, std::byte{'c'}};
    Sha256 hash;
    hash.update(std::span<const std::byte>(abc));
    CHECK(hash.hex_digest() == kAbc);

    Sha256 empty;
    empty.update(std::span<const std::byte>());
    CHECK(empty.hex_digest() == kEmpty);
}

TEST_CASE("incremental updates in pieces equal one-shot hashing")
{
    const std::string message = ferry::test::random_bytes(10000, 7);
    const std::string expected = hash_of(message);
    REQUIRE(expected != kEmpty);

    SUBCASE("one byte at a time")
    {
        Sha256 hash;
        for (const char c : message) {
            hash.update(&c, 1);
        }
        CHECK(hash.hex_digest() == expected);
    }
    SUBCASE("random piece sizes, including empty pieces")
    {
        for (std::uint32_t seed = 1; seed <= 20; ++seed) {
            INFO("seed " << seed);
            std::mt19937 rng(seed);
            std::uniform_int_distribution<std::size_t> piece(0, 200);
            Sha256 hash;
            std::size_t at = 0;
            while (at < message.size()) {
                const std::size_t size = std::min(piece(rng), message.size() - at);
                hash.update(message.data() + at, size);
                at += size;
            }
            CHECK(hash.hex_digest() == expected);
        }
    }
    SUBCASE("the million a's in 64-byte and odd pieces")
    {
        const std::string chunk(1000, 'a');
        Sha256 hash;
        for (int i = 0; i < 1000; ++i) {
            hash.update(chunk.data(), chunk.size());
        }
        CHECK(hash.hex_digest() == kMillionA);
    }
}

TEST_CASE("hex_digest leaves the state alone")
{
    Sha256 hash;
    hash.update("a", 1);
    const std::string partial = hash.hex_digest();
    CHECK(partial == hash_of("a"));
    CHECK(hash.hex_digest() == partial); // asking twice gives the same answer
    hash.update("bc", 2);
    CHECK(hash.hex_digest() == kAbc);

    // Across a block boundary too.
    const std::string message = ferry::test::random_bytes(200, 3);
    Sha256 long_hash;
    long_hash.update(message.data(), 100);
    CHECK(long_hash.hex_digest() == hash_of(message.substr(0, 100)));
    long_hash.update(message.data() + 100, 100);
    CHECK(long_hash.hex_digest() == hash_of(message));
}

TEST_CASE("a saved and restored state carries on like uninterrupted hashing")
{
    const std::string message = ferry::test::random_bytes(3000, 11);
    for (const std::size_t cut : {std::size_t{0}, std::size_t{1}, std::size_t{55}, std::size_t{56}, std::size_t{63},
                                  std::size_t{64}, std::size_t{65}, std::size_t{127}, std::size_t{128},
                                  std::size_t{1000}, std::size_t{2999}, std::size_t{3000}}) {
        INFO("saved after " << cut << " bytes");
        Sha256 before;
        before.update(message.data(), cut);
        const std::string saved = before.save_state();
        CHECK(saved.rfind("sha256-ctx-v1:", 0) == 0);

        auto restored = Sha256::restore_state(saved);
        REQUIRE(restored.has_value());
        CHECK(restored->hex_digest() == hash_of(message.substr(0, cut)));
        CHECK(restored->save_state() == saved);
        restored->update(message.data() + cut, message.size() - cut);
        CHECK(restored->hex_digest() == hash_of(message));

        // The original is untouched by saving and can go on as well.
        before.update(message.data() + cut, message.size() - cut);
        CHECK(before.hex_digest() == hash_of(message));
    }
}

TEST_CASE("save and restore several times in a row")
{
    const std::string message = ferry::test::random_bytes(5000, 12);
    std::optional<Sha256> hash{Sha256()};
    std::size_t at = 0;
    for (const std::size_t step : {std::size_t{1}, std::size_t{63}, std::size_t{64}, std::size_t{65}, std::size_t{1000},
                                   std::size_t{7}, std::size_t{3800}}) {
        hash->update(message.data() + at, step);
        at += step;
        hash = Sha256::restore_state(hash->save_state());
        REQUIRE(hash.has_value());
    }
    REQUIRE(at == message.size());
    CHECK(hash->hex_digest() == hash_of(message));
}

TEST_CASE("restore_state refuses what it did not write")
{
    Sha256 hash;
    hash.update("some bytes already hashed", 25);
    const std::string saved = hash.save_state();
    const std::size_t hex = hex_start(saved);
    REQUIRE(saved.size() > hex + 2);
    REQUIRE(Sha256::restore_state(saved).has_value());

    CHECK_FALSE(Sha256::restore_state("").has_value());
    CHECK_FALSE(Sha256::restore_state("garbage").has_value());
    CHECK_FALSE(Sha256::restore_state("sha256-ctx-v1:").has_value());
    CHECK_FALSE(Sha256::restore_state(kAbc).has_value());
    CHECK_FALSE(Sha256::restore_state(saved.substr(0, hex)).has_value());

    SUBCASE("wrong prefix or version")
    {
        std::string other = saved;
        other.replace(0, 14, "sha256-ctx-v2:");
        CHECK_FALSE(Sha256::restore_state(other).has_value());
        CHECK_FALSE(Sha256::restore_state("x" + saved).has_value());
        CHECK_FALSE(Sha256::restore_state(saved.substr(1)).has_value());
    }
    SUBCASE("wrong struct size")
    {
        const std::string size_field = saved.substr(14, hex - 14);
        CHECK(size_field == std::to_string(sizeof(SHA256_CTX)) + ":");
        std::string other = saved;
        other.replace(14, hex - 14, std::to_string(sizeof(SHA256_CTX) + 4) + ":");
        CHECK_FALSE(Sha256::restore_state(other).has_value());
    }
    SUBCASE("truncated or extended hex")
    {
        CHECK_FALSE(Sha256::restore_state(saved.substr(0, saved.size() - 1)).has_value());
        CHECK_FALSE(Sha256::restore_state(saved.substr(0, saved.size() - 2)).has_value());
        CHECK_FALSE(Sha256::restore_state(saved.substr(0, hex + 10)).has_value());
        CHECK_FALSE(Sha256::restore_state(saved + "00").has_value());
        CHECK_FALSE(Sha256::restore_state(saved + "\n").has_value());
    }
    SUBCASE("non-hex digits")
    {
        for (const char bad : {'g', 'G', 'A', 'F', ' ', '-', 'x', '\0'}) {
            INFO("digit " << int{bad});
            std::string other = saved;
            other[hex + 3] = bad;
            CHECK_FALSE(Sha256::restore_state(other).has_value());
            other = saved;
            other.back() = bad;
            CHECK_FALSE(Sha256::restore_state(other).has_value());
        }
    }
    SUBCASE("a context no hash could be in")
    {
        // num (bytes buffered) must be below one block; md_len must be 32.
        std::string huge_num = saved;
        huge_num.replace(hex + 2 * offsetof(SHA256_CTX, num), 2 * sizeof(unsigned int),
                         std::string(2 * sizeof(unsigned int), 'f'));
        CHECK_FALSE(Sha256::restore_state(huge_num).has_value());

        std::string bad_len = saved;
        bad_len.replace(hex + 2 * offsetof(SHA256_CTX, md_len), 2 * sizeof(unsigned int),
                        std::string(2 * sizeof(unsigned int), '0'));
        CHECK_FALSE(Sha256::restore_state(bad_len).has_value());
    }
}

TEST_CASE("is_sha256_hex")
{
    CHECK(ferry::is_sha256_hex(kEmpty));
    CHECK(ferry::is_sha256_hex(kAbc));
    CHECK(ferry::is_sha256_hex(std::string(64, '0')));
    CHECK(ferry::is_sha256_hex(std::string(64, 'f')));
    CHECK(ferry::is_sha256_hex("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));

    CHECK_FALSE(ferry::is_sha256_hex(""));
    CHECK_FALSE(ferry::is_sha256_hex(kAbc.substr(0, 63)));
    CHECK_FALSE(ferry::is_sha256_hex(kAbc + "0"));
    CHECK_FALSE(ferry::is_sha256_hex(std::string(128, 'a')));
    CHECK_FALSE(ferry::is_sha256_hex(std::string(64, 'g')));
    CHECK_FALSE(ferry::is_sha256_hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
    CHECK_FALSE(ferry::is_sha256_hex("Ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    CHECK_FALSE(ferry::is_sha256_hex(kAbc.substr(0, 63) + " "));
    CHECK_FALSE(ferry::is_sha256_hex(" " + kAbc.substr(1)));
    CHECK_FALSE(ferry::is_sha256_hex(std::string(kAbc).replace(10, 1, 1, '\0')));
}

TEST_CASE("to_hex")
{
    CHECK(ferry::to_hex({}) == "");
    const std::array<unsigned char, 1> zero{0x00};
    CHECK(ferry::to_hex(zero) == "00");
    const std::array<unsigned char, 6> mixed{0x00, 0x01, 0x0f, 0x10, 0xab, 0xff};
    CHECK(ferry::to_hex(mixed) == "00010f10abff");
    std::vector<unsigned char> all(256);
    for (std::size_t i = 0; i < all.size(); ++i) {
        all[i] = static_cast<unsigned char>(i);
    }
    const std::string hex = ferry::to_hex(all);
    REQUIRE(hex.size() == 512);
    CHECK(hex.substr(0, 8) == "00010203");
    CHECK(hex.substr(2 * 0x9e, 4) == "9e9f");
    CHECK(hex.substr(508) == "feff");
}

TEST_CASE("from_hex reads what to_hex writes, in either case, and nothing else")
{
    std::vector<unsigned char> all(256);
    for (std::size_t i = 0; i < all.size(); ++i) {
        all[i] = static_cast<unsigned char>(i);
    }
    const std::string hex = ferry::to_hex(all);
    const auto back = ferry::from_hex(hex);
    REQUIRE(back.has_value());
    CHECK(std::equal(back->begin(), back->end(), all.begin(), all.end(),
                     [](char a, unsigned char b) { return static_cast<unsigned char>(a) == b; }));
    std::string upper = hex;
    for (char& c : upper) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    CHECK(ferry::from_hex(upper) == back);
    CHECK(ferry::from_hex("") == std::string());
    CHECK(ferry::from_hex("4A") == std::string("J"));
    CHECK(ferry::from_hex("00") == std::string(1, '\0'));

    const std::vector<std::string> bad{"0",    "abc",  "zz",       "0g",         "g0",   "0x",
                                       "+1",   "-1",   " 1",       "1 ",         "ab:cd", "ab cd",
                                       "\xc3\xa9", "0x00", std::string("0\0", 2), std::string("00\0\0", 4)};
    for (const auto& text : bad) {
        CAPTURE(text);
        CHECK_FALSE(ferry::from_hex(text).has_value());
    }
}

TEST_CASE("a refused hex string leaves nothing on OpenSSL's error queue")
{
    ERR_clear_error();
    CHECK_FALSE(ferry::from_hex("zz").has_value());
    CHECK_FALSE(ferry::from_hex("abc").has_value());
    CHECK(ERR_peek_error() == 0);
}
