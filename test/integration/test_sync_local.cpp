// sync's local side (client/sync_local.hpp): the scan sees files and folders
// and never follows a link; the pull's folder changes never go through one.
#include "support.hpp"
#include "sync_local.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

using namespace ferry::client;
using namespace ferry::test;

namespace {

const TreeEntry* find(const LocalScan& scan, const std::string& path)
{
    const auto found = std::find_if(scan.entries.begin(), scan.entries.end(),
                                    [&](const TreeEntry& entry) { return entry.path == path; });
    return found == scan.entries.end() ? nullptr : &*found;
}

bool noted(const LocalScan& scan, const std::string& text)
{
    return std::any_of(scan.notes.begin(), scan.notes.end(),
                       [&](const std::string& note) { return note.find(text) != std::string::npos; });
}

std::int64_t mtime_of(const std::string& path)
{
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st.st_mtim.tv_sec;
}

} // namespace

TEST_CASE("sync's scan: files and folders with size and mtime; links and specials kept apart, never entered")
{
    TempDir dir;
    const std::string root = dir.path() + "/tree";
    const std::string outside = dir.path() + "/outside";
    std::filesystem::create_directories(root + "/a/b");
    std::filesystem::create_directories(root + "/empty");
    std::filesystem::create_directories(outside);
    write_file(outside + "/secret", "outside");
    write_file(root + "/top.txt", "12345");
    write_file(root + "/a/b/deep.bin", "x");
    write_file(root + "/.hidden", "h");
    write_file(root + "/a/half.bin.ferry-part", "p");
    write_file(root + "/a/half.bin.ferry-part.state", "s");
    write_file(root + "/bad\xff.txt", "not UTF-8");
    REQUIRE(::symlink(outside.c_str(), (root + "/linked").c_str()) == 0);
    REQUIRE(::mkfifo((root + "/a/fifo").c_str(), 0600) == 0);
    const timespec times[2] = {{0, UTIME_OMIT}, {1'600'000'000, 0}};
    REQUIRE(::utimensat(AT_FDCWD, (root + "/top.txt").c_str(), times, 0) == 0);

    auto sending = scan_local_tree(root, ScanSide::sending);
    REQUIRE(sending);
    const auto& scan = sending.value();
    REQUIRE(find(scan, "top.txt") != nullptr);
    CHECK(find(scan, "top.txt")->kind == EntryKind::file);
    CHECK(find(scan, "top.txt")->size == 5);
    CHECK(find(scan, "top.txt")->mtime == 1'600'000'000);
    CHECK(find(scan, "a")->kind == EntryKind::folder);
    CHECK(find(scan, "a/b")->kind == EntryKind::folder);
    CHECK(find(scan, "a/b/deep.bin")->kind == EntryKind::file);
    CHECK(find(scan, "empty")->kind == EntryKind::folder);
    // Never entered, never sent, but there: the plan must not put anything in their place.
    CHECK(find(scan, "linked")->kind == EntryKind::other);
    CHECK(find(scan, "linked/secret") == nullptr);
    CHECK(find(scan, "a/fifo")->kind == EntryKind::other);
    // Names a server cannot hold, and download parts: not sent, and kept
    // apart in the same way (a pull must neither replace nor delete them).
    for (const std::string path : {".hidden", "a/half.bin.ferry-part", "a/half.bin.ferry-part.state", "bad\xff.txt"}) {
        REQUIRE(find(scan, path) != nullptr);
        CHECK(find(scan, path)->kind == EntryKind::other);
    }
    CHECK(scan.entries.size() == 11);
    CHECK(noted(scan, "linked: a symbolic link (not followed), not sent"));
    CHECK(noted(scan, "a/fifo: not a regular file or folder, not sent"));
    CHECK(noted(scan, ".hidden: a name the server refuses"));
    CHECK(noted(scan, "a/half.bin.ferry-part: a partial download, not sent"));

    auto receiving = scan_local_tree(root, ScanSide::receiving);
    REQUIRE(receiving);
    CHECK(receiving->entries.size() == 11);
    CHECK(receiving->notes.empty()); // the receiving side's leftovers are not news

    CHECK_FALSE(scan_local_tree(root + "/top.txt", ScanSide::sending));
    CHECK_FALSE(scan_local_tree(dir.path() + "/missing", ScanSide::sending));
}

TEST_CASE("sync's local changes never go through a link")
{
    TempDir dir;
    const std::string root = dir.path() + "/tree";
    const std::string outside = dir.path() + "/outside";
    std::filesystem::create_directories(root + "/real");
    std::filesystem::create_directories(outside + "/keep");
    write_file(outside + "/keep/file", "keep me");
    REQUIRE(::symlink(outside.c_str(), (root + "/link").c_str()) == 0);

    // Making a folder: fine in a real folder (and again), refused under a link.
    CHECK(make_local_folder(root, "real/new"));
    CHECK(make_local_folder(root, "real/new"));
    CHECK(std::filesystem::is_directory(root + "/real/new"));
    CHECK_FALSE(make_local_folder(root, "link/made"));
    CHECK_FALSE(std::filesystem::exists(outside + "/made"));
    write_file(root + "/real/file", "f");
    CHECK_FALSE(make_local_folder(root, "real/file")); // a file in its place

    // Setting an mtime: of the file itself, and never through a link.
    CHECK(set_local_mtime(root, "real/file", 1'500'000'000));
    CHECK(mtime_of(root + "/real/file") == 1'500'000'000);
    const auto before = mtime_of(outside + "/keep/file");
    CHECK_FALSE(set_local_mtime(root, "link/keep/file", 1'400'000'000));
    CHECK(mtime_of(outside + "/keep/file") == before);

    // Removing is one entry at a time, never recursive: a folder goes only
    // empty (sync removes its listed entries first, removal_steps), so
    // what it holds that was not listed, a link or a file written since,
    // keeps it.
    std::filesystem::create_directories(root + "/gone/deeper");
    write_file(root + "/gone/deeper/a", "a");
    CHECK(remove_local(root, "gone", EntryKind::folder).value() == LocalRemoved::not_empty);
    CHECK(read_file(root + "/gone/deeper/a") == "a");
    CHECK(remove_local(root, "gone/deeper/a", EntryKind::file).value() == LocalRemoved::removed);
    CHECK(remove_local(root, "gone/deeper/a", EntryKind::file).value() == LocalRemoved::absent);
    CHECK(remove_local(root, "gone/deeper", EntryKind::folder).value() == LocalRemoved::removed);
    CHECK(remove_local(root, "gone", EntryKind::folder).value() == LocalRemoved::removed);
    CHECK(remove_local(root, "gone", EntryKind::folder).value() == LocalRemoved::absent);
    CHECK_FALSE(std::filesystem::exists(root + "/gone"));

    std::filesystem::create_directories(root + "/mixed/sub");
    REQUIRE(::symlink(outside.c_str(), (root + "/mixed/sub/escape").c_str()) == 0);
    CHECK(remove_local(root, "mixed/sub", EntryKind::folder).value() == LocalRemoved::not_empty);
    CHECK(std::filesystem::is_symlink(root + "/mixed/sub/escape"));
    CHECK_FALSE(remove_local(root, "mixed/sub/escape", EntryKind::file)); // no longer a regular file: left
    CHECK(std::filesystem::is_symlink(root + "/mixed/sub/escape"));
    CHECK(read_file(outside + "/keep/file") == "keep me");

    // A file to remove that turned into a link meanwhile is left alone.
    CHECK_FALSE(remove_local(root, "link", EntryKind::file));
    CHECK(std::filesystem::is_symlink(root + "/link"));
    CHECK_FALSE(remove_local(root, "link/keep", EntryKind::folder));
    CHECK(std::filesystem::exists(outside + "/keep/file"));

    auto scanned = scan_local_tree(root, ScanSide::receiving);
    REQUIRE(scanned);
    const ListedFile listed = scanned->listed.at("real/file");
    auto digest = hash_local_file(listed, root + "/real/file", ferry::HashKind::sha256);
    REQUIRE(digest);
    CHECK(digest->digest == "252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111");

    // --checksum hashes the file listed, never what its path leads to now:
    // its folder swapped for a link to a folder holding a file of that name
    // is "changed since it was listed", not the outside file's digest.
    std::filesystem::create_directories(outside + "/real");
    write_file(outside + "/real/file", "f");
    std::filesystem::rename(root + "/real", dir.path() + "/moved");
    REQUIRE(::symlink((outside + "/real").c_str(), (root + "/real").c_str()) == 0);
    auto swapped = hash_local_file(listed, root + "/real/file", ferry::HashKind::sha256);
    REQUIRE_FALSE(swapped);
    CHECK(swapped.error().message.find("changed since it was listed") != std::string::npos);
}

TEST_CASE("a pull's equal file swapped between its hash and its new time: left, and how it changed said")
{
    TempDir dir;
    const std::string root = dir.path() + "/tree";
    const std::string outside = dir.path() + "/outside";
    std::filesystem::create_directories(root);
    std::filesystem::create_directories(outside);
    write_file(outside + "/secret", "not ours");
    write_file(root + "/file", "equal on both sides");
    auto scanned = scan_local_tree(root, ScanSide::receiving);
    REQUIRE(scanned);
    const ListedFile listed = scanned->listed.at("file");
    auto hashed = hash_local_file(listed, root + "/file", ferry::HashKind::sha256);
    REQUIRE(hashed);

    // Swapped for a link: the message says so, as a push's does, and what
    // becomes of the file (attack round 85, F1: it said "it is gone, or
    // another file stands at its name, or a folder on its way changed").
    std::filesystem::rename(root + "/file", dir.path() + "/moved");
    REQUIRE(::symlink((outside + "/secret").c_str(), (root + "/file").c_str()) == 0);
    const auto before = mtime_of(outside + "/secret");
    auto retimed = set_hashed_mtime(listed, *hashed, root + "/file", 1'500'000'000);
    REQUIRE_FALSE(retimed);
    CHECK(retimed.error().message ==
          "\"" + root +
              "/file\" changed since it was listed: it is a symbolic link now (not followed); left as it "
              "is, for the next sync to look at again");
    CHECK(mtime_of(outside + "/secret") == before);
}

TEST_CASE("sync's scan keeps within the server folder's bounds: what its path there could not name is left out")
{
    // The server counts 64 components and 4,095 bytes from its root
    // (PROTOCOL.md 5.1): below "a/b", 62 components and 4,091 bytes are left.
    CHECK(bounds_below("").depth == 64);
    CHECK(bounds_below("").bytes == 4095);
    CHECK(bounds_below("a/b").depth == 62);
    CHECK(bounds_below("a/b").bytes == 4091);

    TempDir dir;
    const std::string root = dir.path() + "/tree";
    std::filesystem::create_directories(root + "/x/y/z");
    write_file(root + "/x/y/z/deep", "d");
    write_file(root + "/x/a-long-name", "l");
    auto scanned = scan_local_tree(root, ScanSide::sending, TreeBounds{2, 10});
    REQUIRE(scanned);
    CHECK(find(scanned.value(), "x/y")->kind == EntryKind::folder);
    CHECK(find(scanned.value(), "x/y/z")->kind == EntryKind::other); // 3 components
    CHECK(find(scanned.value(), "x/y/z/deep") == nullptr);
    CHECK(find(scanned.value(), "x/a-long-name")->kind == EntryKind::other); // 13 bytes
    CHECK(noted(scanned.value(), "x/y/z: deeper than 2 components, not sent"));
    CHECK(noted(scanned.value(), "x/a-long-name: a path longer than 10 bytes, not sent"));
}

TEST_CASE("a pull's orphan parts: the parts of no file the server lists, grouped with their sidecars")
{
    const auto other = [](const char* path) { return TreeEntry{path, EntryKind::other, 0, 0, "a partial download"}; };
    const TreeListing local = {other("a.ferry-part"),
                               other("a.ferry-part.state"),
                               other("b.ferry-part"),
                               other("b.ferry-part.state"),
                               other("sub/c.ferry-part.state"),
                               other("sub/c.ferry-part.state.tmp-abc123"),
                               other("hid/d.ferry-part"),
                               TreeEntry{"x", EntryKind::file, 1, 0, {}}};
    // b is still on the server (its part is resumed); hid holds what the
    // server does not list (d may be one of those: spared, as --delete spares).
    const TreeListing remote = {TreeEntry{"b", EntryKind::file, 9, 0, {}},
                                TreeEntry{"hid/", EntryKind::other, 0, 0, {}}};
    const auto orphans = orphan_parts(local, remote);
    REQUIRE(orphans.size() == 2);
    CHECK(orphans[0].part == "a.ferry-part");
    CHECK(orphans[0].found == std::vector<std::string>{"a.ferry-part", "a.ferry-part.state"});
    CHECK(orphans[1].part == "sub/c.ferry-part");
    CHECK(orphans[1].found ==
          std::vector<std::string>{"sub/c.ferry-part.state", "sub/c.ferry-part.state.tmp-abc123"});
}
