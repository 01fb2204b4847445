// A push's set_mtime acts only on the server entry it compared (PROTOCOL.md
// 4.13's expect): run in-process (client/sync.hpp's run_sync) against a
// real ferryd, so that SyncArguments::before_changes can replace a server
// entry between --checksum's digests and the times set after the files, the
// window another program writing on the server meanwhile hits.
#include "support.hpp"
#include "sync_run.hpp"

#include "connection.hpp"
#include "output.hpp"
#include "sync.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <string>

using namespace ferry::test;
using namespace ferry::client;

namespace {

SyncArguments checksum_push(const std::string& local, const std::string& remote)
{
    SyncArguments arguments;
    arguments.direction = SyncDirection::push;
    arguments.local = local;
    arguments.remote = remote;
    arguments.checksum = true;
    arguments.jobs = 1;
    return arguments;
}

void set_mtime(const std::string& path, std::int64_t seconds)
{
    const struct timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(seconds), 0}};
    REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
}

std::int64_t mtime_of(const std::string& path)
{
    struct ::stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return static_cast<std::int64_t>(st.st_mtime);
}

constexpr std::int64_t kLocalTime = 1700000000;
constexpr std::int64_t kServerTime = 1600000000;

// One file, the same bytes on both sides, the local one newer: --checksum
// finds them equal and only the server's time is to be set.
void equal_file_other_time(const Fixture& f)
{
    std::filesystem::create_directories(f.local_file("src"));
    std::filesystem::create_directories(f.root_file("t"));
    write_file(f.local_file("src/a.bin"), "the same bytes");
    write_file(f.root_file("t/a.bin"), "the same bytes");
    set_mtime(f.local_file("src/a.bin"), kLocalTime);
    set_mtime(f.root_file("t/a.bin"), kServerTime);
}

} // namespace

TEST_CASE("sync --checksum: a push gives a file found equal the local time")
{
    Fixture f;
    equal_file_other_time(f);
    const auto run = sync_with(f, checksum_push(f.local_file("src"), "t"));
    CHECK(run.status == 0);
    CHECK(run.sync["errors"].empty());
    CHECK(mtime_of(f.root_file("t/a.bin")) == kLocalTime);
}

TEST_CASE("sync --checksum: a push never stamps the local time on a server file replaced after its digest")
{
    Fixture f;
    equal_file_other_time(f);
    auto arguments = checksum_push(f.local_file("src"), "t");
    SUBCASE("other bytes of the same size, written now")
    {
        arguments.before_changes = [&] {
            write_file(f.root_file("t/.x"), "OTHER  bytes!!");
            std::filesystem::rename(f.root_file("t/.x"), f.root_file("t/a.bin"));
        };
    }
    SUBCASE("other bytes of another size, with the listed time")
    {
        arguments.before_changes = [&] {
            write_file(f.root_file("t/.x"), "other bytes, longer");
            set_mtime(f.root_file("t/.x"), kServerTime);
            std::filesystem::rename(f.root_file("t/.x"), f.root_file("t/a.bin"));
        };
    }
    const auto run = sync_with(f, arguments);
    // The file put there keeps its own time: a later quick check sees it differ.
    CHECK(mtime_of(f.root_file("t/a.bin")) != kLocalTime);
    REQUIRE(run.sync["errors"].size() == 1);
    CHECK(run.sync["errors"][0].dump().find("file_changed") != std::string::npos);
    CHECK(run.sync["errors"][0].dump().find("its time was not set") != std::string::npos);
    // One outcome per file: failed, not also skipped.
    CHECK(run.sync["skipped"] == 0);
    CHECK(run.status != 0);
}

TEST_CASE("sync: a push never gives a folder's time to a file put in that folder's place")
{
    Fixture f;
    std::filesystem::create_directories(f.local_file("src/sub"));
    std::filesystem::create_directories(f.root_file("t/sub"));
    set_mtime(f.local_file("src/sub"), kLocalTime);
    set_mtime(f.root_file("t/sub"), kServerTime);
    auto arguments = checksum_push(f.local_file("src"), "t");
    arguments.before_changes = [&] {
        std::filesystem::remove(f.root_file("t/sub"));
        write_file(f.root_file("t/sub"), "a file now");
        set_mtime(f.root_file("t/sub"), kServerTime);
    };
    const auto run = sync_with(f, arguments);
    CHECK(read_file(f.root_file("t/sub")) == "a file now");
    CHECK(mtime_of(f.root_file("t/sub")) == kServerTime);
    REQUIRE(run.sync["errors"].size() == 1);
    CHECK(run.sync["errors"][0].dump().find("file_changed") != std::string::npos);
    CHECK(run.status != 0);
}
