// The choosable transfer hash: names on the wire, XXH3-128 against its
// reference value and its one-shot form, and saved states for both kinds.
#include "random_data.hpp"
#include "transfer_hash.hpp"

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include <doctest/doctest.h>

#include <cstdint>
#include <string>

using ferry::HashKind;
using ferry::TransferHash;

namespace {

// XXH3_128bits("") from xxhash's own sanity table, in canonical (big-endian) order.
const std::string kXxh3Empty = "99aa06d3014798d86001c324468d497f";
const std::string kSha256Abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

std::string one_shot_xxh3(const std::string& data)
{
    XXH128_canonical_t canonical;
    XXH128_canonicalFromHash(&canonical, XXH3_128bits(data.data(), data.size()));
    return ferry::to_hex(std::span(canonical.digest, sizeof canonical.digest));
}

std::string digest_of(HashKind kind, const std::string& data)
{
    TransferHash hash(kind);
    hash.update(data.data(), data.size());
    return hash.hex_digest();
}

} // namespace

TEST_CASE("hash names on the wire")
{
    CHECK(ferry::hash_name(HashKind::sha256) == "sha256");
    CHECK(ferry::hash_name(HashKind::xxh3_128) == "xxh3-128");
    CHECK(ferry::hash_from_name("sha256") == HashKind::sha256);
    CHECK(ferry::hash_from_name("xxh3-128") == HashKind::xxh3_128);
    CHECK_FALSE(ferry::hash_from_name("SHA256").has_value());
    CHECK_FALSE(ferry::hash_from_name("xxh3").has_value());
    CHECK_FALSE(ferry::hash_from_name("").has_value());
    CHECK(ferry::offered_hash_names() == std::vector<std::string>{"sha256", "xxh3-128"});
}

TEST_CASE("digest lengths per kind")
{
    CHECK(ferry::is_digest_hex(HashKind::sha256, kSha256Abc));
    CHECK_FALSE(ferry::is_digest_hex(HashKind::xxh3_128, kSha256Abc));
    CHECK(ferry::is_digest_hex(HashKind::xxh3_128, kXxh3Empty));
    CHECK_FALSE(ferry::is_digest_hex(HashKind::sha256, kXxh3Empty));
    CHECK_FALSE(ferry::is_digest_hex(HashKind::xxh3_128, "99AA06D3014798D86001C324468D497F"));
    CHECK_FALSE(ferry::is_digest_hex(HashKind::xxh3_128, kXxh3Empty.substr(1)));
}

TEST_CASE("the default kind is SHA-256 and equals sha256sum")
{
    TransferHash hash;
    CHECK(hash.kind() == HashKind::sha256);
    CHECK(digest_of(HashKind::sha256, "abc") == kSha256Abc);
}

TEST_CASE("XXH3-128 matches the reference value and the one-shot function")
{
    CHECK(digest_of(HashKind::xxh3_128, "") == kXxh3Empty);
    for (const std::size_t size : {1u, 3u, 16u, 17u, 128u, 129u, 240u, 241u, 1024u, 100000u}) {
        const std::string data = ferry::test::random_bytes(size, static_cast<std::uint32_t>(size));
        CAPTURE(size);
        CHECK(digest_of(HashKind::xxh3_128, data) == one_shot_xxh3(data));
    }
}

TEST_CASE("hashing in pieces equals hashing at once, for both kinds")
{
    const std::string data = ferry::test::random_bytes(300000, 7);
    for (const HashKind kind : {HashKind::sha256, HashKind::xxh3_128}) {
        TransferHash pieces(kind);
        std::size_t at = 0;
        for (std::size_t step = 1; at < data.size(); step = step * 3 + 1) {
            const std::size_t size = std::min(step, data.size() - at);
            pieces.update(data.data() + at, size);
            at += size;
        }
        CHECK(pieces.hex_digest() == digest_of(kind, data));
    }
}

TEST_CASE("copies hash on independently")
{
    TransferHash original(HashKind::xxh3_128);
    original.update("abc", 3);
    TransferHash copy = original;
    copy.update("def", 3);
    CHECK(original.hex_digest() == digest_of(HashKind::xxh3_128, "abc"));
    CHECK(copy.hex_digest() == digest_of(HashKind::xxh3_128, "abcdef"));
    original = copy;
    CHECK(original.hex_digest() == copy.hex_digest());
}

TEST_CASE("a saved state carries on like uninterrupted hashing, for both kinds")
{
    const std::string data = ferry::test::random_bytes(5000, 11);
    for (const HashKind kind : {HashKind::sha256, HashKind::xxh3_128}) {
        for (const std::size_t cut : {0u, 1u, 63u, 64u, 65u, 255u, 256u, 1000u, 4999u}) {
            TransferHash first(kind);
            first.update(data.data(), cut);
            const auto restored = TransferHash::restore_state(first.save_state());
            REQUIRE(restored.has_value());
            CHECK(restored->kind() == kind);
            TransferHash rest = *restored;
            rest.update(data.data() + cut, data.size() - cut);
            CHECK(rest.hex_digest() == digest_of(kind, data));
        }
    }
}

TEST_CASE("restore_state refuses what it did not write")
{
    TransferHash hash(HashKind::xxh3_128);
    hash.update("bytes", 5);
    const std::string saved = hash.save_state();
    REQUIRE(TransferHash::restore_state(saved).has_value());
    CHECK_FALSE(TransferHash::restore_state("").has_value());
    CHECK_FALSE(TransferHash::restore_state("xxh3-128-state-v1:").has_value());
    CHECK_FALSE(TransferHash::restore_state(saved.substr(0, saved.size() - 2)).has_value());
    CHECK_FALSE(TransferHash::restore_state(saved + "00").has_value());
    CHECK_FALSE(TransferHash::restore_state("sha256:" + saved).has_value());
    std::string upper = saved;
    upper.back() = 'G';
    CHECK_FALSE(TransferHash::restore_state(upper).has_value());
}

TEST_CASE("states saved before kinds were named restore as SHA-256")
{
    ferry::Sha256 old;
    old.update("abc", 3);
    const auto restored = TransferHash::restore_state(old.save_state());
    REQUIRE(restored.has_value());
    CHECK(restored->kind() == HashKind::sha256);
    CHECK(restored->hex_digest() == kSha256Abc);
}
