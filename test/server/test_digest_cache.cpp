// The digest cache: what makes a repeated download of an unchanged file cost
// no hashing, and what keeps it from ever serving a digest of other bytes.
#include "digest_cache.hpp"

#include <doctest/doctest.h>

#include <chrono>

using namespace ferry;
using namespace ferry::server;
using namespace std::chrono_literals;

namespace {

const auto kNow = std::chrono::system_clock::time_point(1'800'000'000s);

FileIdentity file(std::uint64_t inode, std::chrono::system_clock::time_point changed = kNow - 10s)
{
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(changed.time_since_epoch()).count();
    return FileIdentity{1, inode, 100, ns, ns};
}

} // namespace

TEST_CASE("a remembered digest is found for the same file and hash only")
{
    DigestCache cache;
    cache.remember(file(7), HashKind::sha256, "d7", kNow);
    CHECK(cache.find(file(7), HashKind::sha256) == std::optional<std::string>("d7"));
    CHECK_FALSE(cache.find(file(7), HashKind::xxh3_128).has_value());
    CHECK_FALSE(cache.find(file(8), HashKind::sha256).has_value());

    // Any change of size or time is another file as far as the cache knows.
    FileIdentity grown = file(7);
    grown.size += 1;
    CHECK_FALSE(cache.find(grown, HashKind::sha256).has_value());
    FileIdentity touched = file(7);
    touched.changed_ns += 1;
    CHECK_FALSE(cache.find(touched, HashKind::sha256).has_value());
    FileIdentity elsewhere = file(7);
    elsewhere.device = 2;
    CHECK_FALSE(cache.find(elsewhere, HashKind::sha256).has_value());
}

TEST_CASE("a file changed within the last second is not remembered")
{
    DigestCache cache;
    cache.remember(file(1, kNow - 100ms), HashKind::sha256, "racy", kNow);
    CHECK_FALSE(cache.find(file(1, kNow - 100ms), HashKind::sha256).has_value());
    cache.remember(file(2, kNow + 5s), HashKind::sha256, "future", kNow);
    CHECK_FALSE(cache.find(file(2, kNow + 5s), HashKind::sha256).has_value());
    cache.remember(file(3, kNow - 2s), HashKind::sha256, "settled", kNow);
    CHECK(cache.find(file(3, kNow - 2s), HashKind::sha256).has_value());
}

TEST_CASE("the cache keeps the most recently used entries up to its capacity")
{
    DigestCache cache(3);
    for (std::uint64_t inode = 1; inode <= 3; ++inode) {
        cache.remember(file(inode), HashKind::sha256, std::to_string(inode), kNow);
    }
    CHECK(cache.find(file(1), HashKind::sha256).has_value()); // 1 is now the most recent
    cache.remember(file(4), HashKind::sha256, "4", kNow);     // evicts 2, the least recent
    CHECK(cache.size() == 3);
    CHECK(cache.find(file(1), HashKind::sha256).has_value());
    CHECK_FALSE(cache.find(file(2), HashKind::sha256).has_value());
    CHECK(cache.find(file(3), HashKind::sha256).has_value());
    CHECK(cache.find(file(4), HashKind::sha256).has_value());

    cache.remember(file(3), HashKind::sha256, "3 again", kNow);
    CHECK(cache.size() == 3);
    CHECK(cache.find(file(3), HashKind::sha256) == std::optional<std::string>("3 again"));
}

namespace {

// A published upload: its modification time `age` before its change time.
FileIdentity published(std::uint64_t inode, std::chrono::nanoseconds age)
{
    const auto changed = std::chrono::duration_cast<std::chrono::nanoseconds>(kNow.time_since_epoch()).count();
    return FileIdentity{1, inode, 100, changed - age.count(), changed};
}

} // namespace

TEST_CASE("an upload's digest, kept at its publish, serves downloads only, and only with an older modification time")
{
    DigestCache cache;
    // A sync's or put -p's file: the sender's time, older than the publish.
    cache.remember_published(published(1, 3600s), HashKind::sha256, "synced");
    CHECK(cache.find_for_download(published(1, 3600s), HashKind::sha256) == std::optional<std::string>("synced"));
    // A digest request is believed without the bytes: settled entries only.
    CHECK_FALSE(cache.find(published(1, 3600s), HashKind::sha256).has_value());
    CHECK_FALSE(cache.find_for_download(published(1, 3600s), HashKind::xxh3_128).has_value());

    // Written up to the publish (a plain put): a write in the same tick
    // would leave both times as they are, so nothing is kept.
    cache.remember_published(published(2, 0ns), HashKind::sha256, "fresh");
    cache.remember_published(published(3, 999ms), HashKind::sha256, "fresh");
    CHECK_FALSE(cache.find_for_download(published(2, 0ns), HashKind::sha256).has_value());
    CHECK_FALSE(cache.find_for_download(published(3, 999ms), HashKind::sha256).has_value());
    cache.remember_published(published(4, 1s), HashKind::sha256, "a tick older");
    CHECK(cache.find_for_download(published(4, 1s), HashKind::sha256).has_value());

    // Hashed again once settled, the entry answers digest requests too;
    // a publish's entry never takes a settled one's place.
    const FileIdentity settled{1, 5, 100, 0, 0};
    cache.remember(settled, HashKind::sha256, "hashed", kNow);
    cache.remember_published(settled, HashKind::sha256, "published");
    CHECK(cache.find(settled, HashKind::sha256) == std::optional<std::string>("hashed"));
    cache.remember(published(1, 3600s), HashKind::sha256, "synced", kNow + 10s);
    CHECK(cache.find(published(1, 3600s), HashKind::sha256) == std::optional<std::string>("synced"));
}
