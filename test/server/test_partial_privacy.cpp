// What the commit and the expiry sweep may do to the files at the server's
// names in the root, which every local user may search: the partial stays
// private until it has left the root, and the sweep removes only what the
// server made (the tester's round 8, items 2 and 6).
#include "digest.hpp"
#include "library.hpp"
#include "partial_upload.hpp"
#include "temp_root.hpp"
#include "without_proc.hpp"

#include "../acl_values.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <string>
#include <vector>

using namespace ferry;
using namespace ferry::server;

namespace {

constexpr const char* kHelloSha256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

std::unique_ptr<Library> open_library(const TempRoot& root)
{
    auto library = Library::open(root.path());
    REQUIRE(library);
    return std::move(library.value());
}

struct ::stat lstat_of(const std::string& path)
{
    struct ::stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st;
}

// The names of the root's entries whose attributes (mode, owner, times)
// changed since the watch began: inotify reports them in order, at once,
// whatever ran them.
class AttributeWatch {
public:
    explicit AttributeWatch(const std::string& folder)
    {
        fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        REQUIRE(fd_ >= 0);
        REQUIRE(::inotify_add_watch(fd_, folder.c_str(), IN_ATTRIB) >= 0);
    }
    AttributeWatch(const AttributeWatch&) = delete;
    AttributeWatch& operator=(const AttributeWatch&) = delete;
    ~AttributeWatch() { ::close(fd_); }

    std::vector<std::string> changed() const
    {
        std::vector<std::string> names;
        alignas(struct inotify_event) char buffer[64 * 1024];
        for (;;) {
            const ssize_t got = ::read(fd_, buffer, sizeof buffer);
            if (got <= 0) {
                return names;
            }
            for (ssize_t at = 0; at < got;) {
                const auto* event = reinterpret_cast<const struct inotify_event*>(buffer + at);
                if (event->len > 0) {
                    names.emplace_back(event->name);
                }
                at += static_cast<ssize_t>(sizeof(struct inotify_event) + event->len);
            }
        }
    }

private:
    int fd_ = -1;
};

bool is_partial_name(const std::string& name)
{
    return name.starts_with(kPartialPrefix);
}

// Sets an entry's times (never through a link) to two hours ago.
void age(const std::string& path)
{
    const std::time_t past = std::time(nullptr) - 2 * 60 * 60;
    const struct timespec times[2] = {{past, 0}, {past, 0}};
    REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
}

} // namespace

TEST_CASE("a commit gives the file its final mode and owner only once it has left the root")
{
    // Tests run as root: a file of another user is made with chown.
    TempRoot root;
    REQUIRE(::mkdir((root.path() + "/priv").c_str(), 0700) == 0);
    auto library = open_library(root);
    // Whether this file system keeps trusted extended attributes (tmpfs
    // and ext4 do), so that a commit writes its intent on its file.
    root.write("probe", "");
    const std::string probe = root.path() + "/probe";
    const bool intents_kept = ::setxattr(probe.c_str(), "trusted.ferry.probe", "1", 1, 0) == 0;
    REQUIRE(::unlink(probe.c_str()) == 0);

    struct Case {
        const char* name;
        mode_t mode;
    };
    for (const Case& c : {Case{"priv/secret.bin", 0644}, Case{"open.bin", 0666}, Case{"new.bin", 0}}) {
        const std::string target = c.name;
        CAPTURE(target);
        const std::string path = root.path() + "/" + target;
        if (c.mode != 0) {
            root.write(c.name, "old");
            REQUIRE(::chmod(path.c_str(), c.mode) == 0);
            REQUIRE(::chown(path.c_str(), 4321, 8765) == 0);
        }
        auto upload = PartialUpload::begin(*library, c.name, 5, false);
        REQUIRE(upload);
        REQUIRE_FALSE(upload.value()->append(std::span("hello", 5)));
        REQUIRE_FALSE(upload.value()->checkpoint());
        const std::string partial = root.path() + "/" + std::string(kPartialPrefix) + upload.value()->token();
        const auto before = lstat_of(partial);
        CHECK((before.st_mode & 07777) == 0600);
        CHECK(before.st_uid == ::geteuid());

        AttributeWatch watch(root.path());
        REQUIRE(upload.value()->commit(kHelloSha256));
        // Neither chmod nor chown ever reached the partial's name: it had
        // the target's mode and owner only in the target's folder. The one
        // attribute event there is the commit's intent (a trusted extended
        // attribute, which no user may read: PROTOCOL.md 4.5), written
        // before the rename where the file system keeps it; an ACL, owner
        // or mode set in the root would each add one more.
        int partial_events = 0;
        for (const auto& name : watch.changed()) {
            partial_events += is_partial_name(name) ? 1 : 0;
        }
        CHECK_MESSAGE(partial_events == (intents_kept ? 1 : 0),
                      "the attributes of the partial changed in the root " << partial_events << " times");
        CHECK(::getxattr(path.c_str(), "trusted.ferry.publishing", nullptr, 0) < 0); // gone with the attributes
        const auto published = lstat_of(path);
        CHECK(root.read(c.name) == "hello");
        if (c.mode != 0) {
            CHECK((published.st_mode & 07777) == c.mode);
            CHECK(published.st_uid == 4321);
            CHECK(published.st_gid == 8765);
        } else {
            CHECK((published.st_mode & 07777) == library->new_file_mode());
            CHECK(published.st_uid == ::geteuid());
        }
        CHECK(root.hidden_entries() == 0);
    }
}

TEST_CASE("a commit's digest is kept under the identity the file has after its mode and owner")
{
    TempRoot root;
    REQUIRE(::mkdir((root.path() + "/d").c_str(), 0755) == 0);
    root.write("d/f", "old");
    REQUIRE(::chmod((root.path() + "/d/f").c_str(), 0640) == 0);
    REQUIRE(::chown((root.path() + "/d/f").c_str(), 4321, 8765) == 0);
    auto library = open_library(root);

    auto upload = PartialUpload::begin(*library, "d/f", 5, false, HashKind::sha256, false, 1234567890);
    REQUIRE(upload);
    REQUIRE_FALSE(upload.value()->append(std::span("hello", 5)));
    REQUIRE(upload.value()->commit(kHelloSha256));
    const auto published = lstat_of(root.path() + "/d/f");
    CHECK(published.st_uid == 4321);
    CHECK((published.st_mode & 07777) == 0640);
    CHECK(library->digests().find_for_download(FileIdentity::of(published), HashKind::sha256) ==
          std::string(kHelloSha256));
}

TEST_CASE("the expiry sweep removes only the files the server made, and counts only what it removed")
{
    TempRoot root;
    TempRoot elsewhere;
    auto library = open_library(root);
    const std::string p = root.path() + "/" + std::string(kPartialPrefix);

    // One stale upload of the server's own, with its state.
    std::string token;
    {
        auto upload = PartialUpload::begin(*library, "old", 10, false);
        REQUIRE(upload);
        REQUIRE_FALSE(upload.value()->append(std::span("x", 1)));
        REQUIRE_FALSE(upload.value()->checkpoint());
        token = upload.value()->token();
    }
    // What others put at such names (they are predictable).
    root.write(std::string(kPartialPrefix) + "theirs", "mine");
    REQUIRE(::chown((p + "theirs").c_str(), 1234, 1234) == 0);
    root.write(std::string(kPartialPrefix) + "0123456789abcdef0123456789abcdef.state", "x");
    REQUIRE(::chown((p + "0123456789abcdef0123456789abcdef.state").c_str(), 1234, 1234) == 0);
    // The server's user's, at a state's name, but not a state.
    root.write(std::string(kPartialPrefix) + "fedcba9876543210fedcba9876543210.state", "not a state");
    elsewhere.write("target", "other");
    REQUIRE(::link((elsewhere.path() + "/target").c_str(), (p + "hl").c_str()) == 0);
    REQUIRE(::symlink((elsewhere.path() + "/target").c_str(), (p + "sym").c_str()) == 0);
    REQUIRE(::mkfifo((p + "fifo").c_str(), 0644) == 0);
    REQUIRE(::mkdir((p + "emptydir").c_str(), 0755) == 0);
    REQUIRE(::mkdir((p + "dir").c_str(), 0755) == 0);
    root.write(std::string(kPartialPrefix) + "dir/file", "keep");
    const std::vector<std::string> foreign = {"theirs",
                                              "0123456789abcdef0123456789abcdef.state",
                                              "fedcba9876543210fedcba9876543210.state",
                                              "hl",
                                              "sym",
                                              "fifo",
                                              "emptydir",
                                              "dir"};
    for (const auto& entry : std::filesystem::directory_iterator(root.path())) {
        age(entry.path().string());
    }

    CHECK(remove_stale_partials(*library, std::chrono::hours(1)) == 1);
    CHECK_FALSE(root.exists(std::string(kPartialPrefix) + token));
    CHECK_FALSE(root.exists(std::string(kPartialPrefix) + token + ".state"));
    for (const auto& name : foreign) {
        CAPTURE(name);
        CHECK(root.exists(std::string(kPartialPrefix) + name));
    }
    CHECK(root.read(std::string(kPartialPrefix) + "dir/file") == "keep");
    CHECK(elsewhere.read("target") == "other");
    CHECK(lstat_of(elsewhere.path() + "/target").st_nlink == 2);
    // Nothing more is expired, however often the sweep runs.
    CHECK(remove_stale_partials(*library, std::chrono::hours(1)) == 0);
    CHECK(remove_stale_partials(*library, std::chrono::seconds(0)) == 0);
    CHECK(root.hidden_entries() == static_cast<int>(foreign.size()));
}

namespace {

// In a child whose mount namespace hides /proc (a tmpfs over it), as on a
// system without /proc: commits a new "shared/new.bin" into `root`, whose
// shared/ has a default ACL. Exit status: 0 the file has the mode and the
// access ACL that the kernel gives a file created there with mode 0666 (a
// reference file made beside it), kNoMountNamespace (skip),
// else which check failed.
int commit_without_proc(const TempRoot& root)
{
    return exit_status_without_proc([&] {
        const std::string reference = root.path() + "/shared/reference";
        const int made = ::open(reference.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        struct ::stat expected {};
        if (made < 0 || ::fstat(made, &expected) != 0 || ferry::test::acl_of(reference).empty()) {
            return 6;
        }
        ::close(made);
        auto library = Library::open(root.path());
        if (!library) {
            return 2;
        }
        auto upload = PartialUpload::begin(*library.value(), "shared/new.bin", 5, false);
        if (!upload || upload.value()->append(std::span("hello", 5)) || !upload.value()->commit(kHelloSha256)) {
            return 3;
        }
        struct ::stat st {};
        const std::string path = root.path() + "/shared/new.bin";
        if (::lstat(path.c_str(), &st) != 0 || (st.st_mode & 07777) != (expected.st_mode & 07777)) {
            return 4;
        }
        return ferry::test::acl_of(path) == ferry::test::acl_of(reference) ? 0 : 5;
    });
}

} // namespace

// (A default ACL that cannot be read leaves the file at 0600, never wider:
// test/hostile/test_without_proc.py, with the fault library's EIO.)
TEST_CASE("without /proc a new file gets its folder's default ACL as the kernel gives it, not the root's")
{
    TempRoot root;
    REQUIRE(::mkdir((root.path() + "/shared").c_str(), 0755) == 0);
    // The root's default ACL too: the partial inherits it, and must shed it.
    if (!ferry::test::set_default_acl(root.path() + "/shared", "u::rw-,u:1234:rw-,g::r--,m::rw-,o::r--") ||
        !ferry::test::set_default_acl(root.path(), "u::rw-,u:1234:rw-,g::r--,m::rw-,o::r--")) {
        MESSAGE("no ACLs on this file system: skipped");
        return;
    }
    const int result = commit_without_proc(root);
    if (result == kNoMountNamespace) {
        MESSAGE("no mount namespace here (unshare refused): skipped");
        return;
    }
    CHECK(result == 0);
}

TEST_CASE("the expiry sweep removes only the names ferryd makes, whatever else begins with its prefix")
{
    TempRoot root;
    auto library = open_library(root);
    const std::string p = std::string(kPartialPrefix);
    const std::string token = "0123456789abcdef0123456789abcdef";
    // The server's user's files at names ferryd never made: a token of
    // another length or alphabet, or a suffix of its own.
    const std::vector<std::string> foreign = {p + "notes.txt",
                                              p,
                                              p + token + ".bak",
                                              p + token + ".state.tmp.old",
                                              p + token + ".",
                                              p + "0123456789ABCDEF0123456789ABCDEF",
                                              p + token.substr(1),
                                              p + token + "0",
                                              p + "name-" + token + ".state"};
    for (const auto& name : foreign) {
        root.write(name, "mine");
    }
    // The names it does make, each a stale upload of its own.
    const std::vector<std::string> own = {p + "fedcba9876543210fedcba9876543210",
                                          p + "00000000000000000000000000000001.state.tmp",
                                          p + "name-" + token};
    for (const auto& name : own) {
        root.write(name, "");
    }
    for (const auto& entry : std::filesystem::directory_iterator(root.path())) {
        age(entry.path().string());
    }

    CHECK(remove_stale_partials(*library, std::chrono::hours(1)) == own.size());
    for (const auto& name : own) {
        CAPTURE(name);
        CHECK_FALSE(root.exists(name));
    }
    for (const auto& name : foreign) {
        CAPTURE(name);
        CHECK(root.read(name) == "mine");
    }
    CHECK(remove_stale_partials(*library, std::chrono::seconds(0)) == 0);
}

TEST_CASE("ferryd's partial names are made and recognised by one definition")
{
    const std::string token = "0123456789abcdef0123456789abcdef";
    for (const auto file : {PartialFile::data, PartialFile::state, PartialFile::spare, PartialFile::record}) {
        const auto parsed = parse_partial_entry(partial_entry(token, file));
        REQUIRE(parsed);
        CHECK(parsed->token == token);
        CHECK(parsed->file == file);
    }
    CHECK(partial_entry(token, PartialFile::state) == ".ferry-partial-" + token + ".state");
    CHECK_FALSE(parse_partial_entry(".ferry-partial-" + token + ".stat"));
    CHECK_FALSE(parse_partial_entry("ferry-partial-" + token));
}

namespace {

// The name of the publish record of `path`, as PROTOCOL.md 4.7 defines it
// (computed here, not by the code under test).
std::string record_entry(const std::string& path)
{
    const std::string key = "ferry publish record\n" + path;
    Sha256 hash;
    hash.update(key.data(), key.size());
    return std::string(kPartialPrefix) + hash.hex_digest().substr(0, 32) + ".publish";
}

// What a ferryd killed between a commit's rename and the file's final
// attributes leaves (PROTOCOL.md 4.7): the partial renamed onto `target`
// (still 0600 and the server's) and the publish record, written here as the
// commit writes it, by hand, so that the test reads the record's format and
// not the code under test: a file named by the path alone, its state gone;
// `legacy`: inside the upload's state, as builds before the record files
// wrote it. The commit's intent rides on the file, as the commit writes it
// before the rename (PROTOCOL.md 4.5): an array of the inode, owner, group,
// mode, ACL and the second it was written. `inode_offset` other than 0
// records another file's identity, in both.
// `owner`: who made the upload. Returns the record's path.
std::string leave_killed_publish(const TempRoot& root, const Library& library, const std::string& target,
                                 std::uint64_t inode_offset, bool legacy = false,
                                 std::string_view owner = kAnonymousOwner)
{
    std::string token;
    {
        auto upload = PartialUpload::begin(library, target, 5, false, HashKind::sha256, false, std::nullopt, owner);
        REQUIRE(upload);
        REQUIRE_FALSE(upload.value()->append(std::span("hello", 5)));
        REQUIRE_FALSE(upload.value()->checkpoint());
        token = upload.value()->token();
    } // the lock goes with the killed process
    const std::string partial = root.path() + "/" + std::string(kPartialPrefix) + token;
    const std::string state = partial + ".state";
    const auto st = lstat_of(partial);
    std::string text = root.read(std::string(kPartialPrefix) + token + ".state");
    const auto end = text.rfind('}');
    REQUIRE(end != std::string::npos);
    text.insert(end, ",\"publishing\":{\"device\":" + std::to_string(st.st_dev) +
                         ",\"inode\":" + std::to_string(st.st_ino + inode_offset) +
                         ",\"uid\":4321,\"gid\":8765,\"mode\":416," // 0640
                         "\"acl\":\"user::rw-,user:1234:r--,group::r--,mask::r--,other::---\"}");
    const std::string intent = "[" + std::to_string(st.st_ino + inode_offset) +
                               ",4321,8765,416,\"user::rw-,user:1234:r--,group::r--,mask::r--,other::---\"," +
                               std::to_string(std::time(nullptr)) + "]";
    REQUIRE(::setxattr(partial.c_str(), ::geteuid() == 0 ? "trusted.ferry.publishing" : "user.ferry.publishing",
                       intent.data(), intent.size(), 0) == 0);
    if (legacy) {
        root.write(std::string(kPartialPrefix) + token + ".state", text);
    } else {
        root.write(record_entry(target), text);
        REQUIRE(::unlink(state.c_str()) == 0);
    }
    REQUIRE(::rename(partial.c_str(), (root.path() + "/" + target).c_str()) == 0);
    return legacy ? state : root.path() + "/" + record_entry(target);
}

} // namespace

TEST_CASE("a record settles only the file that carries its commit's intent, never one that took its inode")
{
    // Attack round 74, F1: the published file deleted, another of the same
    // inode number, size and mtime at the name got the record's owner and
    // mode. That file is the killed commit's own here, without the intent
    // (no new file has it) or with another commit's.
    const char* attribute = ::geteuid() == 0 ? "trusted.ferry.publishing" : "user.ferry.publishing";
    for (const bool another_intent : {false, true}) {
        CAPTURE(another_intent);
        TempRoot root;
        auto library = open_library(root);
        const std::string path = root.path() + "/f.bin";
        const std::string record = leave_killed_publish(root, *library, "f.bin", 0);
        if (another_intent) {
            const std::string intent = "[" + std::to_string(lstat_of(path).st_ino) + ",0,0,384,\"none\"," +
                                       std::to_string(std::time(nullptr)) + "]";
            REQUIRE(::setxattr(path.c_str(), attribute, intent.data(), intent.size(), 0) == 0);
        } else {
            REQUIRE(::removexattr(path.c_str(), attribute) == 0);
        }
        CHECK(remove_stale_partials(*library, std::chrono::hours(1)) == 0);
        const auto kept = lstat_of(path);
        CHECK((kept.st_mode & 07777) == 0600);
        CHECK(kept.st_uid == ::geteuid());
        struct ::stat gone {};
        CHECK(::lstat(record.c_str(), &gone) != 0); // dropped all the same
    }
}

TEST_CASE("a commit killed between its rename and the attributes: the next ferryd sets what it recorded")
{
    // The start's sweep (what ferryd runs before it accepts a connection)
    // and a put of that path, whatever its size and maker, all settle the
    // record; the sweep also one that an older build left in the state.
    enum class By { sweep, sweep_legacy, put, put_other_size, put_other_owner };
    for (const By by : {By::sweep, By::sweep_legacy, By::put, By::put_other_size, By::put_other_owner}) {
        CAPTURE(static_cast<int>(by));
        TempRoot root;
        REQUIRE(::mkdir((root.path() + "/pub").c_str(), 0755) == 0);
        auto library = open_library(root);
        const std::string path = root.path() + "/pub/f.bin";
        const std::string state = leave_killed_publish(root, *library, "pub/f.bin", 0, by == By::sweep_legacy);
        REQUIRE((lstat_of(path).st_mode & 07777) == 0600);
        if (by != By::sweep && by != By::sweep_legacy) {
            const std::uint64_t size = by == By::put_other_size ? 6 : 5;
            const std::string owner = by == By::put_other_owner ? "token-sha256:00" : std::string(kAnonymousOwner);
            auto again = PartialUpload::begin(*library, "pub/f.bin", size, true, HashKind::sha256, false,
                                              std::nullopt, owner);
            REQUIRE(again);
            again.value()->discard();
        } else {
            CHECK(remove_stale_partials(*library, std::chrono::hours(1)) == 0);
        }
        const auto mended = lstat_of(path);
        CHECK((mended.st_mode & 07777) == 0640);
        CHECK(mended.st_uid == 4321);
        CHECK(mended.st_gid == 8765);
        CHECK(test::access_acl_text(path) == "user::rw-,user:1234:r--,group::r--,mask::r--,other::---");
        CHECK(root.read("pub/f.bin") == "hello");
        struct ::stat gone {};
        CHECK(::lstat(state.c_str(), &gone) != 0); // the record went with its state
        CHECK(root.hidden_entries() == 0);
    }
}

TEST_CASE("a commit of the path, begun before the kill, settles the record before it takes the old file's attributes")
{
    TempRoot root;
    auto library = open_library(root);
    const std::string path = root.path() + "/f.bin";
    // Another size: another token, so the upload's state never held the record.
    auto upload = PartialUpload::begin(*library, "f.bin", 7, false);
    REQUIRE(upload);
    REQUIRE_FALSE(upload.value()->append(std::span("goodbye", 7)));
    const std::string digest = upload.value()->received_digest();
    const std::string record = leave_killed_publish(root, *library, "f.bin", 0);
    auto published = upload.value()->commit(digest);
    REQUIRE(published);
    CHECK(root.read("f.bin") == "goodbye");
    const auto st = lstat_of(path);
    CHECK((st.st_mode & 07777) == 0640);
    CHECK(st.st_uid == 4321);
    CHECK(st.st_gid == 8765);
    CHECK(test::access_acl_text(path) == "user::rw-,user:1234:r--,group::r--,mask::r--,other::---");
    struct ::stat gone {};
    CHECK(::lstat(record.c_str(), &gone) != 0);
    upload.value().reset();
    CHECK(root.hidden_entries() == 0);
}

TEST_CASE("a publish record of another file than the one at its name is dropped, and that file left alone")
{
    TempRoot root;
    auto library = open_library(root);
    const std::string path = root.path() + "/f.bin";
    const std::string state = leave_killed_publish(root, *library, "f.bin", 1);
    CHECK(remove_stale_partials(*library, std::chrono::hours(1)) == 0);
    const auto left = lstat_of(path);
    CHECK((left.st_mode & 07777) == 0600);
    CHECK(left.st_uid == ::geteuid());
    CHECK(test::access_acl_text(path).empty());
    struct ::stat gone {};
    CHECK(::lstat(state.c_str(), &gone) != 0);
    CHECK(root.hidden_entries() == 0);
}

TEST_CASE("a publish record is never applied to another file that took the published file's inode number")
{
    // Deleted after the kill, its inode number can go to the next file made
    // in that folder (ext4 reuses it at once), renamed to the same name:
    // the same device and inode, but another file. Simulated here on the one
    // inode, made to look as such a file would: another owner and content,
    // or the server's own 0600 file of the same size with another time.
    for (const int variant : {0, 1}) {
        CAPTURE(variant);
        TempRoot root;
        auto library = open_library(root);
        const std::string path = root.path() + "/f.bin";
        const std::string state = leave_killed_publish(root, *library, "f.bin", 0);
        if (variant == 0) {
            root.write("f.bin", "another user's file");
            REQUIRE(::chown(path.c_str(), 1235, 1235) == 0);
        } else {
            const struct timespec times[2] = {{0, UTIME_OMIT}, {1'000'000'000, 0}};
            REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
        }
        const auto before = lstat_of(path);
        CHECK(remove_stale_partials(*library, std::chrono::hours(1)) == 0);
        const auto left = lstat_of(path);
        CHECK(left.st_uid == before.st_uid);
        CHECK((left.st_mode & 07777) == (before.st_mode & 07777));
        CHECK(test::access_acl_text(path).empty());
        struct ::stat gone {};
        CHECK(::lstat(state.c_str(), &gone) != 0); // the record went with its state
    }
}

namespace {

// Uploads "hello" to `name` with the put's `mode` (none: not sent) and
// returns the published file's permission bits.
mode_t publish_with_mode(const Library& library, const TempRoot& root, const std::string& name,
                         std::optional<std::uint32_t> mode)
{
    auto upload = PartialUpload::begin(library, name, 5, false);
    REQUIRE(upload);
    upload.value()->create_as(mode);
    REQUIRE_FALSE(upload.value()->append(std::span("hello", 5)));
    REQUIRE(upload.value()->commit(kHelloSha256));
    CHECK(root.read(name) == "hello");
    return lstat_of(root.path() + "/" + name).st_mode & 07777;
}

} // namespace

// PROTOCOL.md 4.5's "mode": open(2)'s mode argument for a new file, as
// sftp-server and scp create a copy; never a set-ID or sticky bit, never a
// replaced file's own bits, and ANDed into a folder's default ACL as the
// kernel ANDs the mode argument (acl(5)).
TEST_CASE("a put's mode is a new file's create mode: less the umask, never set-ID, never for a replaced file")
{
    const mode_t saved = ::umask(022);
    TempRoot root;
    auto library = open_library(root);
    CHECK(publish_with_mode(*library, root, "private", 0600) == 0600);
    CHECK(publish_with_mode(*library, root, "tool", 0755) == 0755);
    CHECK(publish_with_mode(*library, root, "open", 0777) == 0755);          // the umask still counts
    CHECK(publish_with_mode(*library, root, "setid", 07777) == 0755);        // 07000 never given
    CHECK(publish_with_mode(*library, root, "none", 0) == 0);                // as open(2) with mode 0
    CHECK(publish_with_mode(*library, root, "plain", std::nullopt) == 0644); // not sent: 0666 as before

    root.write("kept", "old");
    REQUIRE(::chmod((root.path() + "/kept").c_str(), 0604) == 0);
    CHECK(publish_with_mode(*library, root, "kept", 0700) == 0604);
    CHECK(publish_with_mode(*library, root, "private", 0777) == 0600); // replaced now: its own bits stay
    ::umask(saved);
}

TEST_CASE("a put's mode is ANDed into the folder's default ACL as the kernel ANDs open(2)'s mode")
{
    TempRoot root;
    REQUIRE(::mkdir((root.path() + "/shared").c_str(), 0755) == 0);
    if (!ferry::test::set_default_acl(root.path() + "/shared", "u::rwx,u:1234:rwx,g::r-x,m::rwx,o::r-x")) {
        MESSAGE("no ACLs on this file system: skipped");
        return;
    }
    auto library = open_library(root);
    // Owner, mask and other ANDed with the mode; the named user and the
    // group entry as the default ACL says (acl(5)); the umask not applied.
    CHECK(publish_with_mode(*library, root, "shared/tool", 0750) == 0750);
    CHECK(ferry::test::access_acl_text(root.path() + "/shared/tool") ==
          "user::rwx,user:1234:rwx,group::r-x,mask::r-x,other::---");
    CHECK(publish_with_mode(*library, root, "shared/private", 0600) == 0600);
    CHECK(ferry::test::access_acl_text(root.path() + "/shared/private") ==
          "user::rw-,user:1234:rwx,group::r-x,mask::---,other::---");
    CHECK(publish_with_mode(*library, root, "shared/plain", std::nullopt) == 0664);
}
