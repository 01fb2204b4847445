// What a file system holds of a modification time (protocol/mtime_limits.hpp),
// the probe that asks it (sys/mtime_probe.hpp), and hello's mtime_limits.
#include "messages.hpp"
#include "mtime_limits.hpp"
#include "mtime_probe.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

namespace {

constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

// What a file system with these limits would answer to kMtimeProbes.
std::array<std::int64_t, ferry::kMtimeProbes.size()> answers(const ferry::MtimeLimits& limits)
{
    std::array<std::int64_t, ferry::kMtimeProbes.size()> held{};
    for (std::size_t i = 0; i < held.size(); ++i) {
        held[i] = limits.held(ferry::kMtimeProbes[i]);
    }
    return held;
}

std::size_t entries_in(const std::string& folder)
{
    std::size_t count = 0;
    DIR* dir = ::opendir(folder.c_str());
    REQUIRE(dir != nullptr);
    while (const dirent* entry = ::readdir(dir)) {
        count += std::string(entry->d_name) != "." && std::string(entry->d_name) != "..";
    }
    ::closedir(dir);
    return count;
}

} // namespace

TEST_CASE("mtime limits: a time is clamped to the range, then rounded down to the step")
{
    const ferry::MtimeLimits all;
    CHECK(all.held(kMin) == kMin);
    CHECK(all.held(kMax) == kMax);
    CHECK(all.held(-7) == -7);
    const ferry::MtimeLimits ext4{-2147483648LL, 15032385535LL, 1};
    CHECK(ext4.held(4611686018427387904LL) == 15032385535LL);
    CHECK(ext4.held(-4611686018427387904LL) == -2147483648LL);
    CHECK(ext4.held(1764370001) == 1764370001);
    const ferry::MtimeLimits fat{315532800LL, 4354819198LL, 2};
    CHECK(fat.held(1764370001) == 1764370000);
    CHECK(fat.held(1764370000) == 1764370000);
    CHECK(fat.held(0) == 315532800LL);
    // Negative times round toward the past too; near -2^63 no overflow.
    const ferry::MtimeLimits threes{kMin, kMax, 3};
    CHECK(threes.held(-1) == -3);
    CHECK(threes.held(-3) == -3);
    CHECK(threes.held(kMin) >= kMin);
    CHECK(threes.held(kMin) % 3 == 0);
}

TEST_CASE("mtime limits: learned from what a file system held of the probes, or none where no limits explain it")
{
    for (const ferry::MtimeLimits limits : {ferry::MtimeLimits{}, ferry::MtimeLimits{-2147483648LL, 15032385535LL, 1},
                                            ferry::MtimeLimits{-2147483648LL, 2147483647LL, 1},
                                            ferry::MtimeLimits{315532800LL, 4354819198LL, 2}}) {
        const auto held = answers(limits);
        const auto learned = ferry::mtime_limits_from(held);
        REQUIRE(learned.has_value());
        CHECK(*learned == limits);
    }
    auto rounded_up = answers({});
    rounded_up[2] += 1; // a file system that rounds to the nearest step
    CHECK_FALSE(ferry::mtime_limits_from(rounded_up).has_value());
    auto shifted = answers({});
    shifted[3] -= 1; // a day's start not held exactly
    CHECK_FALSE(ferry::mtime_limits_from(shifted).has_value());
    auto narrow = answers({});
    narrow[1] = 100; // a range that cannot hold the probes inside it
    CHECK_FALSE(ferry::mtime_limits_from(narrow).has_value());
    CHECK_FALSE(ferry::mtime_limits_from(std::span<const std::int64_t>(answers({})).first(3)).has_value());
}

TEST_CASE("mtime probe: asks the folder's file system and leaves nothing behind")
{
    char folder[] = "/tmp/ferry-mtime-probe-XXXXXX";
    REQUIRE(::mkdtemp(folder) != nullptr);
    const int fd = ::open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    std::array<std::int64_t, ferry::kMtimeProbes.size()> held{};
    REQUIRE(ferry::sys::probe_held_mtimes(fd, ferry::kMtimeProbes, held) == 0);
    // Whatever the file system, a time inside every one's range is held.
    CHECK(held[3] == ferry::kMtimeProbes[3]);
    CHECK(held[0] <= held[3]);
    CHECK(held[1] >= held[2]);
    CHECK(ferry::mtime_limits_from(held).has_value());
    CHECK(entries_in(folder) == 0);
    std::array<std::int64_t, 2> too_few{};
    CHECK(ferry::sys::probe_held_mtimes(fd, ferry::kMtimeProbes, too_few) == EINVAL);
    ::close(fd);
    ::rmdir(folder);
}

TEST_CASE("hello reply: mtime_limits round trip, absent when unknown, refused when malformed")
{
    ferry::HelloReply hello;
    hello.version = 2;
    hello.mtime_limits = ferry::MtimeLimits{-2147483648LL, 15032385535LL, 1};
    const auto parsed = ferry::parse_hello_reply(ferry::encode_reply(1, hello));
    REQUIRE(parsed.ok());
    CHECK(parsed->body.mtime_limits == hello.mtime_limits);
    hello.mtime_limits.reset();
    const std::string bare = ferry::encode_reply(1, hello);
    CHECK(bare.find("mtime_limits") == std::string::npos);
    const auto without = ferry::parse_hello_reply(bare);
    REQUIRE(without.ok());
    CHECK_FALSE(without->body.mtime_limits.has_value());
    const std::string head = R"({"id":1,"ok":true,"version":2,"server":"x","capabilities":[],"hashes":[],)"
                             R"("max_control_frame":1,"max_data_frame":1,"mtime_limits":)";
    CHECK_FALSE(ferry::parse_hello_reply(head + R"({"min":5,"max":4,"step":1}})").ok());
    CHECK_FALSE(ferry::parse_hello_reply(head + R"({"min":0,"max":4,"step":0}})").ok());
    CHECK_FALSE(ferry::parse_hello_reply(head + R"({"min":0,"max":4}})").ok());
    CHECK_FALSE(ferry::parse_hello_reply(head + R"(7})").ok());
    CHECK(ferry::parse_hello_reply(head + R"({"min":0,"max":4,"step":2}})").ok());
}
