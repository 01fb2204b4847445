// What the client does to local files it did not make: a part or sidecar
// planted by another user (or hard-linked to another file) is never resumed
// nor written through; a download that replaces a file keeps that file's
// permission bits (and, as root, its owner), and its part is never wider
// while it downloads; an upload whose file changes while it is sent is
// never committed. The tests run as root, so another user's files are
// made with chown.
#include "support.hpp"

#include "../acl_values.hpp"

#include "connection.hpp"
#include "local_files.hpp"
#include "operations.hpp"
#include "publish_batch.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <thread>

using namespace ferry::test;
using ferry::ErrorCode;
using ferry::client::Connection;
using ferry::client::Endpoint;

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;
constexpr uid_t kOtherUser = 1000;
constexpr gid_t kOtherGroup = 1000;

Connection connect_to(const ServerProcess& server)
{
    auto connection = Connection::open(Endpoint{"127.0.0.1", server.port()});
    REQUIRE_MESSAGE(connection.ok(), (connection.ok() ? "" : connection.error().message));
    return std::move(connection.value());
}

// An interrupted download of `name` into `dest`: `limit` bytes in its part,
// vouched for by its sidecar.
void partial_download(const ServerProcess& server, const std::string& name, const std::string& dest,
                      std::uint64_t limit)
{
    Connection connection = connect_to(server);
    ferry::client::GetOptions options;
    options.name = name;
    options.dest = dest;
    options.stop_after = limit;
    const auto result = ferry::client::get_file(connection, options);
    REQUIRE_FALSE(result.ok());
    REQUIRE(file_size(ferry::client::part_path(dest)) == limit);
    REQUIRE(ferry::client::read_download_state(ferry::client::state_path(dest)).ok());
}

struct stat stat_of(const std::string& path)
{
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st;
}

void write_in_place(const std::string& path, std::uint64_t offset, std::string_view bytes)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)) ==
            static_cast<ssize_t>(bytes.size()));
    ::close(fd);
}

using ferry::test::access_acl_text;
using ferry::test::acl_of;
using ferry::test::deny_acl;
using ferry::test::set_default_acl;

// A default ACL (acl(5)) for a folder that gives `uid` everything on what is
// made in it: user::rw- user:UID:rwx group::r-- mask::rwx other::r--.
void grant_by_default(const std::string& folder, std::uint32_t uid)
{
    std::string value = deny_acl(uid);
    value[4 + 8 + 2] = 7; // user:UID:rwx (the second entry's permission)
    value[4 + 24 + 2] = 7; // mask::rwx (the fourth entry's)
    REQUIRE(::setxattr(folder.c_str(), "system.posix_acl_default", value.data(), value.size(), 0) == 0);
}

// An old file of mode 0644 whose ACL denies uid 1234.
void old_file_with_acl(const std::string& path)
{
    write_file(path, "old\n");
    REQUIRE(::chmod(path.c_str(), 0644) == 0);
    const std::string acl = deny_acl(1234);
    REQUIRE(::setxattr(path.c_str(), "system.posix_acl_access", acl.data(), acl.size(), 0) == 0);
}

} // namespace

TEST_CASE("a part or sidecar of another user is not resumed: the get starts over in a new file of its own")
{
    Fixture f;
    const std::uint64_t size = 6 * kMiB + 3;
    write_random_file(f.root_file("big.bin"), size, 31);
    const std::string dest = f.local_file("big.bin");
    const std::string part = ferry::client::part_path(dest);
    const std::string state = ferry::client::state_path(dest);

    SUBCASE("the part and its sidecar are another user's, and the part is writable by all")
    {
        partial_download(f.server, "big.bin", dest, 2 * kMiB);
        REQUIRE(::chown(part.c_str(), kOtherUser, kOtherGroup) == 0);
        REQUIRE(::chown(state.c_str(), kOtherUser, kOtherGroup) == 0);
        REQUIRE(::chmod(part.c_str(), 0666) == 0);
    }
    SUBCASE("only the sidecar is another user's")
    {
        partial_download(f.server, "big.bin", dest, 2 * kMiB);
        REQUIRE(::chown(state.c_str(), kOtherUser, kOtherGroup) == 0);
    }
    SUBCASE("only the part is another user's")
    {
        partial_download(f.server, "big.bin", dest, 2 * kMiB);
        REQUIRE(::chown(part.c_str(), kOtherUser, kOtherGroup) == 0);
    }

    const auto get = run_ferry(f.server.address(), {"--json", "get", "big.bin", "-o", dest});
    REQUIRE_MESSAGE(get.exit_code == 0, get.err);
    const auto json = only_file(parse_output(get));
    CHECK(json["resumed_from"] == 0);
    CHECK(files_equal(f.root_file("big.bin"), dest));
    const struct stat published = stat_of(dest);
    CHECK(published.st_uid == ::geteuid());
    CHECK((published.st_mode & 0022) == 0); // not the planted 0666
    CHECK_FALSE(exists(part));
    CHECK_FALSE(exists(state));
}

TEST_CASE("a part with a second name (a hard link) is not resumed nor written through")
{
    Fixture f;
    const std::uint64_t size = 5 * kMiB;
    write_random_file(f.root_file("big.bin"), size, 32);
    const std::string dest = f.local_file("big.bin");
    const std::string part = ferry::client::part_path(dest);
    partial_download(f.server, "big.bin", dest, 2 * kMiB);
    const std::string other = f.local_file("someone-elses.bin");
    REQUIRE(::link(part.c_str(), other.c_str()) == 0);
    const std::string before = read_file(other);

    const auto get = run_ferry(f.server.address(), {"--json", "get", "big.bin", "-o", dest});
    REQUIRE_MESSAGE(get.exit_code == 0, get.err);
    CHECK(only_file(parse_output(get))["resumed_from"] == 0);
    CHECK(files_equal(f.root_file("big.bin"), dest));
    CHECK(read_file(other) == before); // neither truncated nor written
    CHECK(stat_of(dest).st_ino != stat_of(other).st_ino);
    CHECK(stat_of(other).st_nlink == 1);
}

TEST_CASE("a get keeps the mode and (as root) the owner of the file it replaces; a new file gets 0666 less the umask")
{
    Fixture f;
    write_file(f.root_file("priv.txt"), "new content\n");
    ::mkdir((f.root + "/tree").c_str(), 0755);
    write_file(f.root + "/tree/priv.txt", "new tree content\n");
    const std::string dest = f.local_file("priv.txt");
    write_file(dest, "old\n");
    REQUIRE(::chmod(dest.c_str(), 0640) == 0);
    REQUIRE(::chown(dest.c_str(), kOtherUser, kOtherGroup) == 0);

    const auto get = run_ferry(f.server.address(), {"get", "priv.txt", "-o", dest});
    REQUIRE_MESSAGE(get.exit_code == 0, get.err);
    CHECK(read_file(dest) == "new content\n");
    struct stat st = stat_of(dest);
    CHECK((st.st_mode & 07777) == 0640);
    CHECK(st.st_uid == kOtherUser);
    CHECK(st.st_gid == kOtherGroup);

    // Set-user-ID is not carried over to new bytes.
    REQUIRE(::chmod(dest.c_str(), 04750) == 0);
    REQUIRE(run_ferry(f.server.address(), {"get", "priv.txt", "-o", dest}).exit_code == 0);
    CHECK((stat_of(dest).st_mode & 07777) == 0750);

    // A tree's file (get -r) and sync's pull publish the same way.
    const std::string copy = f.local + "/copy";
    REQUIRE(::mkdir(copy.c_str(), 0755) == 0);
    const std::string in_tree = copy + "/tree/priv.txt";
    REQUIRE(::mkdir((copy + "/tree").c_str(), 0755) == 0);
    write_file(in_tree, "old tree\n");
    REQUIRE(::chmod(in_tree.c_str(), 0600) == 0);
    REQUIRE(::chown(in_tree.c_str(), kOtherUser, kOtherGroup) == 0);
    const auto tree = run_ferry(f.server.address(), {"get", "-r", "tree", "-C", copy});
    REQUIRE_MESSAGE(tree.exit_code == 0, tree.err);
    CHECK(read_file(in_tree) == "new tree content\n");
    st = stat_of(in_tree);
    CHECK((st.st_mode & 07777) == 0600);
    CHECK(st.st_uid == kOtherUser);

    const std::string pulled = f.local + "/pulled";
    REQUIRE(::mkdir(pulled.c_str(), 0755) == 0);
    write_file(pulled + "/priv.txt", "old pulled\n");
    REQUIRE(::chmod((pulled + "/priv.txt").c_str(), 0604) == 0);
    REQUIRE(::chown((pulled + "/priv.txt").c_str(), kOtherUser, kOtherGroup) == 0);
    const auto sync = run_ferry(f.server.address(), {"sync", ":tree", pulled});
    REQUIRE_MESSAGE(sync.exit_code == 0, sync.err);
    CHECK(read_file(pulled + "/priv.txt") == "new tree content\n");
    st = stat_of(pulled + "/priv.txt");
    CHECK((st.st_mode & 07777) == 0604);
    CHECK(st.st_uid == kOtherUser);

    // A new file: 0666 less the umask the client runs with.
    const mode_t mask = ::umask(027);
    const std::string fresh = f.local_file("fresh.txt");
    const auto got = run_ferry(f.server.address(), {"get", "priv.txt", "-o", fresh});
    ::umask(mask);
    REQUIRE_MESSAGE(got.exit_code == 0, got.err);
    st = stat_of(fresh);
    CHECK((st.st_mode & 07777) == 0640);
    CHECK(st.st_uid == ::geteuid());
}

TEST_CASE("a download published with others stays private until its rename, which reads the target's mode then")
{
    // Several-file get, get -r and sync's pull verify a file, then publish
    // it later in a batch: the part must not take the target's mode, owner
    // or ACL when verified (a kill meanwhile left parts at 0644, owned by
    // another user), and a chmod of the target meanwhile must count.
    Fixture f;
    write_file(f.root_file("a.txt"), "NEW-A-SECRET\n");
    const std::string dest = f.local_file("a.txt");
    const std::string part = ferry::client::part_path(dest);
    old_file_with_acl(dest);
    REQUIRE(::chown(dest.c_str(), kOtherUser, kOtherGroup) == 0);

    ferry::client::GetOptions options;
    options.name = "a.txt";
    options.dest = dest;
    options.defer_publish = true;
    Connection connection = connect_to(f.server);
    auto pending = ferry::client::prepare_get(options);
    REQUIRE(pending.ok());
    REQUIRE(ferry::client::send_get(connection, pending.value()).ok());
    const auto verified = ferry::client::finish_get(connection, pending.value());
    REQUIRE_MESSAGE(verified.ok(), (verified.ok() ? "" : verified.error().message));
    REQUIRE(pending->verified);

    // Verified and waiting: still private, still ours, without the ACL.
    struct stat st = stat_of(part);
    CHECK((st.st_mode & 07777) == 0600);
    CHECK(st.st_uid == ::geteuid());
    CHECK(acl_of(part).empty());

    // Meanwhile the user makes the old file private (which drops its ACL's
    // named entries from the mask, not the ACL itself).
    REQUIRE(::chmod(dest.c_str(), 0600) == 0);
    const std::string acl_now = acl_of(dest);
    REQUIRE_FALSE(acl_now.empty());
    ferry::client::PublishBatch batch;
    bool published = false;
    std::string failure;
    batch.add(std::move(*pending->verified), 13, [&](const ferry::client::Status& done) {
        published = done.ok();
        failure = done.ok() ? "" : done.error().message;
    });
    batch.flush();
    REQUIRE_MESSAGE(published, failure);
    CHECK(read_file(dest) == "NEW-A-SECRET\n");
    st = stat_of(dest);
    CHECK((st.st_mode & 07777) == 0600); // the mode it had just before the rename
    CHECK(st.st_uid == kOtherUser);
    CHECK(st.st_gid == kOtherGroup);
    CHECK(acl_of(dest) == acl_now);
    CHECK_FALSE(exists(part));
}

TEST_CASE("a download keeps the access ACL of the file it replaces: get, several files, get -r, sync's pull")
{
    Fixture f;
    write_file(f.root_file("f"), "NEW-SECRET\n");
    write_file(f.root_file("g"), "NEW-SECRET-G\n");
    ::mkdir((f.root + "/d").c_str(), 0755);
    write_file(f.root + "/d/h", "NEW-SECRET-H\n");
    const std::string acl = deny_acl(1234);

    const std::string single = f.local_file("f");
    old_file_with_acl(single);
    const auto get = run_ferry(f.server.address(), {"get", "f", "-o", single});
    REQUIRE_MESSAGE(get.exit_code == 0, get.err);
    CHECK(read_file(single) == "NEW-SECRET\n");
    CHECK(acl_of(single) == acl);
    CHECK((stat_of(single).st_mode & 07777) == 0644);

    const std::string several = f.local + "/several";
    REQUIRE(::mkdir(several.c_str(), 0755) == 0);
    old_file_with_acl(several + "/f");
    old_file_with_acl(several + "/g");
    const auto both = run_ferry(f.server.address(), {"get", "f", "g", "-C", several});
    REQUIRE_MESSAGE(both.exit_code == 0, both.err);
    CHECK(read_file(several + "/g") == "NEW-SECRET-G\n");
    CHECK(acl_of(several + "/f") == acl);
    CHECK(acl_of(several + "/g") == acl);

    const std::string tree = f.local + "/tree";
    REQUIRE(::mkdir(tree.c_str(), 0755) == 0);
    REQUIRE(::mkdir((tree + "/d").c_str(), 0755) == 0);
    old_file_with_acl(tree + "/d/h");
    const auto recursive = run_ferry(f.server.address(), {"get", "-r", "d", "-C", tree});
    REQUIRE_MESSAGE(recursive.exit_code == 0, recursive.err);
    CHECK(read_file(tree + "/d/h") == "NEW-SECRET-H\n");
    CHECK(acl_of(tree + "/d/h") == acl);

    const std::string pulled = f.local + "/pulled";
    REQUIRE(::mkdir(pulled.c_str(), 0755) == 0);
    old_file_with_acl(pulled + "/h");
    const auto sync = run_ferry(f.server.address(), {"sync", ":d", pulled});
    REQUIRE_MESSAGE(sync.exit_code == 0, sync.err);
    CHECK(read_file(pulled + "/h") == "NEW-SECRET-H\n");
    CHECK(acl_of(pulled + "/h") == acl);
    CHECK((stat_of(pulled + "/h").st_mode & 07777) == 0644);
}

TEST_CASE("a download whose target's ACL cannot be kept is refused: nothing is replaced, access never widened")
{
    TempDir dir;
    const std::string dest = dir / "f";
    old_file_with_acl(dest);
    // A "part" on a file system that keeps no extended attributes (a pipe:
    // pipefs refuses them, EOPNOTSUPP), standing in for a part whose file
    // system refuses the target's ACL.
    int ends[2];
    REQUIRE(::pipe(ends) == 0);
    ferry::client::LocalFile part(ferry::client::part_path(dest), ends[1]);
    const auto taken = ferry::client::take_replaced_attributes(part, dest);
    ::close(ends[0]);
    REQUIRE_FALSE(taken.ok());
    CHECK(taken.error().code == ErrorCode::local_io);
    CHECK(taken.error().message.find("ACL") != std::string::npos);
    CHECK(read_file(dest) == "old\n");
    CHECK(acl_of(dest) == deny_acl(1234));
    // The ACL is set before the mode: the part it could not take stays as
    // private as it was, never at the target's 0644 without its ACL.
    struct stat held {};
    REQUIRE(::fstat(ends[1], &held) == 0);
    CHECK((held.st_mode & 0777) == 0600);
}

TEST_CASE("a replaced file without an ACL gets none: not the one its part inherited from a default ACL")
{
    Fixture f;
    write_file(f.root_file("f"), "NEW-SECRET\n");
    const std::string dest = f.local_file("f");
    write_file(dest, "old\n");
    REQUIRE(::chmod(dest.c_str(), 0640) == 0);
    grant_by_default(f.local, 1234); // the part, made in this folder, inherits it
    const auto get = run_ferry(f.server.address(), {"get", "f", "-o", dest});
    REQUIRE_MESSAGE(get.exit_code == 0, get.err);
    CHECK(read_file(dest) == "NEW-SECRET\n");
    CHECK(acl_of(dest).empty()); // inherited, uid 1234 could read it
    CHECK((stat_of(dest).st_mode & 07777) == 0640);

    // ferryd: the partial is made in the root and inherits the root's.
    write_file(f.local_file("up"), "NEW-SECRET-UP\n");
    REQUIRE(::mkdir((f.root + "/d").c_str(), 0755) == 0);
    write_file(f.root + "/d/up", "old\n");
    REQUIRE(::chmod((f.root + "/d/up").c_str(), 0640) == 0);
    grant_by_default(f.root, 1234);
    const auto put = run_ferry(f.server.address(), {"put", f.local_file("up"), "-C", "d"});
    REQUIRE_MESSAGE(put.exit_code == 0, put.err);
    CHECK(read_file(f.root + "/d/up") == "NEW-SECRET-UP\n");
    CHECK(acl_of(f.root + "/d/up").empty());
    CHECK((stat_of(f.root + "/d/up").st_mode & 07777) == 0640);
}

TEST_CASE("an upload keeps the access ACL of the file it replaces: put and sync's push")
{
    Fixture f;
    const std::string acl = deny_acl(1234);
    write_file(f.local_file("up"), "NEW-SECRET\n");
    old_file_with_acl(f.root_file("up"));
    const auto put = run_ferry(f.server.address(), {"put", f.local_file("up")});
    REQUIRE_MESSAGE(put.exit_code == 0, put.err);
    CHECK(read_file(f.root_file("up")) == "NEW-SECRET\n");
    CHECK(acl_of(f.root_file("up")) == acl);
    CHECK((stat_of(f.root_file("up")).st_mode & 07777) == 0644);

    const std::string push = f.local + "/push";
    REQUIRE(::mkdir(push.c_str(), 0755) == 0);
    write_file(push + "/h", "NEW-SECRET2\n");
    old_file_with_acl(f.root_file("h"));
    const auto sync = run_ferry(f.server.address(), {"sync", push, ":"});
    REQUIRE_MESSAGE(sync.exit_code == 0, sync.err);
    CHECK(read_file(f.root_file("h")) == "NEW-SECRET2\n");
    CHECK(acl_of(f.root_file("h")) == acl);
}

TEST_CASE("a new upload takes what its folder's default ACL gives a file created there: put, sync's push, any depth")
{
    Fixture f;
    // uid 1234 may read what is made in shared/; others nothing.
    const std::string shared = f.root + "/shared";
    REQUIRE(::mkdir(shared.c_str(), 0755) == 0);
    if (!set_default_acl(shared, "u::rwx,u:1234:r--,g::r-x,m::rwx,o::---")) {
        MESSAGE("no ACLs on this file system: skipped");
        return;
    }
    REQUIRE(::mkdir((shared + "/a").c_str(), 0755) == 0); // both inherit the default ACL
    REQUIRE(::mkdir((shared + "/a/b").c_str(), 0755) == 0);
    // What the kernel gives a file created there with the source's mode,
    // 0664 here (the umask is not applied where a default ACL exists,
    // acl(5)); PROTOCOL.md 4.5's put `mode`.
    const std::string granted = "user::rw-,user:1234:r--,group::r-x,mask::rw-,other::---";
    const auto check_granted = [&](const std::string& path) {
        CAPTURE(path);
        CHECK(access_acl_text(path) == granted);
        CHECK((stat_of(path).st_mode & 07777) == 0660); // no read for others
    };

    write_file(f.local_file("up"), "NEW\n");
    REQUIRE(::chmod(f.local_file("up").c_str(), 0664) == 0);
    const auto put = run_ferry(f.server.address(), {"put", f.local_file("up"), "-C", "shared"});
    REQUIRE_MESSAGE(put.exit_code == 0, put.err);
    check_granted(shared + "/up");
    const auto deep = run_ferry(f.server.address(), {"put", f.local_file("up"), "-C", "shared/a/b"});
    REQUIRE_MESSAGE(deep.exit_code == 0, deep.err);
    check_granted(shared + "/a/b/up");

    // sync's push, into folders it makes itself.
    const std::string push = f.local + "/push";
    REQUIRE(::mkdir(push.c_str(), 0755) == 0);
    REQUIRE(::mkdir((push + "/d").c_str(), 0755) == 0);
    REQUIRE(::mkdir((push + "/d/e").c_str(), 0755) == 0);
    write_file(push + "/x", "X\n");
    write_file(push + "/d/e/y", "Y\n");
    REQUIRE(::chmod((push + "/x").c_str(), 0664) == 0);
    REQUIRE(::chmod((push + "/d/e/y").c_str(), 0664) == 0);
    const auto sync = run_ferry(f.server.address(), {"sync", push, ":shared/a"});
    REQUIRE_MESSAGE(sync.exit_code == 0, sync.err);
    check_granted(shared + "/a/x");
    check_granted(shared + "/a/d/e/y");

    // A default ACL narrower than the umask: others get nothing, not 0644.
    const std::string narrow = f.root + "/private";
    REQUIRE(::mkdir(narrow.c_str(), 0755) == 0);
    REQUIRE(set_default_acl(narrow, "u::rw-,g::r--,o::---"));
    const auto private_put = run_ferry(f.server.address(), {"put", f.local_file("up"), "-C", "private"});
    REQUIRE_MESSAGE(private_put.exit_code == 0, private_put.err);
    CHECK((stat_of(narrow + "/up").st_mode & 07777) == 0640);
    CHECK(acl_of(narrow + "/up").empty()); // a minimal ACL is the bits alone

    // A folder without a default ACL: the source's mode less ferryd's umask
    // (the one it inherited from this process), and no ACL.
    const mode_t mask = ::umask(022);
    ::umask(mask);
    REQUIRE(::mkdir((f.root + "/plain").c_str(), 0755) == 0);
    const auto plain_put = run_ferry(f.server.address(), {"put", f.local_file("up"), "-C", "plain"});
    REQUIRE_MESSAGE(plain_put.exit_code == 0, plain_put.err);
    CHECK((stat_of(f.root + "/plain/up").st_mode & 07777) == (0664 & ~mask));
    CHECK(acl_of(f.root + "/plain/up").empty());
}

TEST_CASE("a new upload takes its folder's group where the folder is set-group-ID, as a file created there")
{
    Fixture f;
    // The served root is set-group-ID too: the partial, made there, takes
    // the root's group, which a folder that is not set-group-ID must not get.
    REQUIRE(::chown(f.root.c_str(), static_cast<uid_t>(-1), 4322) == 0);
    REQUIRE(::chmod(f.root.c_str(), 02755) == 0);
    const std::string team = f.root + "/team";
    REQUIRE(::mkdir(team.c_str(), 0755) == 0);
    REQUIRE(::chown(team.c_str(), static_cast<uid_t>(-1), 4321) == 0);
    REQUIRE(::chmod(team.c_str(), 02775) == 0);
    const std::string plain = f.root + "/plain";
    REQUIRE(::mkdir(plain.c_str(), 0755) == 0);
    REQUIRE(::chown(plain.c_str(), static_cast<uid_t>(-1), 4323) == 0);
    REQUIRE(::chmod(plain.c_str(), 0755) == 0); // not set-group-ID (mkdir inherited it from the root)
    REQUIRE((stat_of(plain).st_mode & S_ISGID) == 0);

    write_file(f.local_file("up"), "NEW\n");
    for (const char* folder : {"team", "plain"}) {
        const auto put = run_ferry(f.server.address(), {"put", f.local_file("up"), "-C", folder});
        REQUIRE_MESSAGE(put.exit_code == 0, put.err);
    }
    CHECK(stat_of(team + "/up").st_gid == 4321);
    CHECK(stat_of(plain + "/up").st_gid == ::getegid()); // the server's (this process's) group
    // Within the root itself, the root's rule: its group.
    const auto top = run_ferry(f.server.address(), {"put", f.local_file("up")});
    REQUIRE_MESSAGE(top.exit_code == 0, top.err);
    CHECK(stat_of(f.root + "/up").st_gid == 4322);
}

TEST_CASE("a part is its owner's alone (0600) while it downloads, whatever the file it will replace")
{
    Fixture f;
    write_random_file(f.root_file("big.bin"), 3 * kMiB, 33);
    const std::string dest = f.local_file("big.bin");
    const std::string part = ferry::client::part_path(dest);

    SUBCASE("a new file")
    {
        partial_download(f.server, "big.bin", dest, kMiB);
        CHECK((stat_of(part).st_mode & 07777) == 0600);
        CHECK((stat_of(ferry::client::state_path(dest)).st_mode & 07777) == 0600);
    }
    SUBCASE("replacing a read-only file")
    {
        write_file(dest, "old\n");
        REQUIRE(::chmod(dest.c_str(), 0440) == 0);
        partial_download(f.server, "big.bin", dest, kMiB);
        // 0600 rather than 0400: a part its owner may not write could not
        // take ferry's mark, nor be resumed, for anyone but root (attack
        // round 21, F1); no one else gains a bit.
        CHECK((stat_of(part).st_mode & 07777) == 0600);
        // A resume of our own part makes it so again.
        REQUIRE(::chmod(part.c_str(), 0644) == 0);
        Connection connection = connect_to(f.server);
        ferry::client::GetOptions options;
        options.name = "big.bin";
        options.dest = dest;
        options.resume = true;
        options.stop_after = 2 * kMiB;
        REQUIRE_FALSE(ferry::client::get_file(connection, options).ok());
        CHECK(file_size(part) == 2 * kMiB); // resumed, not started over
        CHECK((stat_of(part).st_mode & 07777) == 0600);
    }
}

TEST_CASE("a put whose file changes while it is sent commits nothing and says file_changed")
{
    Fixture f;
    const std::uint64_t size = 3 * kMiB;
    const std::string local = f.local_file("moving.bin");
    write_random_file(local, size, 34);
    const std::string original = read_file(local);

    SUBCASE("changed in place a while after the open (its times show it)")
    {
        // Older than the re-hash window, so only the times can tell.
        const struct timespec old_times[2] = {{1'500'000'000, 0}, {1'500'000'000, 0}};
        REQUIRE(::utimensat(AT_FDCWD, local.c_str(), old_times, 0) == 0);
        std::this_thread::sleep_for(2500ms); // ctime, too, out of the window
        Connection connection = connect_to(f.server);
        ferry::client::PutOptions options;
        options.local_path = local;
        options.name = "moving.bin";
        auto pending = ferry::client::prepare_put(options);
        REQUIRE(pending.ok());
        CHECK_FALSE(pending->fresh);
        std::this_thread::sleep_for(100ms); // a later timestamp tick
        write_in_place(local, 100, "CHANGED");
        write_in_place(local, size - 1000, "CHANGED");
        REQUIRE(ferry::client::send_put(connection, pending.value()).ok());
        const auto sent = ferry::client::send_upload(connection, pending.value());
        REQUIRE_FALSE(sent.ok());
        CHECK(sent.error().code == ErrorCode::file_changed);
        CHECK(sent.error().message.find(local) != std::string::npos);
    }
    SUBCASE("changed right after a change just before the open (the same tick may hide it)")
    {
        Connection connection = connect_to(f.server);
        ferry::client::PutOptions options;
        options.local_path = local;
        options.name = "moving.bin";
        auto pending = ferry::client::prepare_put(options);
        REQUIRE(pending.ok());
        CHECK(pending->fresh);
        write_in_place(local, 100, "CHANGED");
        REQUIRE(ferry::client::send_put(connection, pending.value()).ok());
        const auto sent = ferry::client::send_upload(connection, pending.value());
        REQUIRE_FALSE(sent.ok());
        CHECK(sent.error().code == ErrorCode::file_changed);
    }
    // A file that shrinks ends as one that grows: file_changed, and what the
    // server received is discarded (no partial kept for a resume), wherever
    // the read finds the new end: at the start, in the middle, at the last byte.
    for (const std::uint64_t shorter : {std::uint64_t{0}, size / 2, size - 1}) {
        SUBCASE(("truncated to " + std::to_string(shorter) + " bytes after the open").c_str())
        {
            Connection connection = connect_to(f.server);
            ferry::client::PutOptions options;
            options.local_path = local;
            options.name = "moving.bin";
            options.resume = true;
            auto pending = ferry::client::prepare_put(options);
            REQUIRE(pending.ok());
            REQUIRE(::truncate(local.c_str(), static_cast<off_t>(shorter)) == 0);
            REQUIRE(ferry::client::send_put(connection, pending.value()).ok());
            const auto sent = ferry::client::send_upload(connection, pending.value());
            REQUIRE_FALSE(sent.ok());
            CHECK(sent.error().code == ErrorCode::file_changed);
            CHECK(sent.error().message.find("shrank") != std::string::npos);
            CHECK(connection.is_open()); // the abort was answered: the server has let go
        }
    }
    SUBCASE("replaced by another file under its name (an editor's save by rename: the ctime of the one opened moves)")
    {
        Connection connection = connect_to(f.server);
        ferry::client::PutOptions options;
        options.local_path = local;
        options.name = "moving.bin";
        auto pending = ferry::client::prepare_put(options);
        REQUIRE(pending.ok());
        const std::string other = f.local_file("moving.bin.new");
        write_random_file(other, size, 35);
        REQUIRE(::rename(other.c_str(), local.c_str()) == 0);
        REQUIRE(ferry::client::send_put(connection, pending.value()).ok());
        const auto sent = ferry::client::send_upload(connection, pending.value());
        REQUIRE_FALSE(sent.ok());
        CHECK(sent.error().code == ErrorCode::file_changed);
    }
    CHECK_FALSE(exists(f.root_file("moving.bin")));
    CHECK(partial_uploads(f.root).empty());
}
