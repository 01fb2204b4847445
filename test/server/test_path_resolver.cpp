// PathResolver: a folder by its path, beneath the root, never through a
// symlink or into another file system; openat2 and the component walk give
// the same answers.
#include "path_resolver.hpp"
#include "temp_root.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

using namespace ferry;
using namespace ferry::server;

namespace {

struct Fixture {
    TempRoot root;
    int root_fd = -1;
    dev_t device = 0;

    Fixture()
    {
        root_fd = ::open(root.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        REQUIRE(root_fd >= 0);
        struct ::stat st {};
        REQUIRE(::fstat(root_fd, &st) == 0);
        device = st.st_dev;
    }
    ~Fixture() { ::close(root_fd); }

    void mkdir(const std::string& path) const { REQUIRE(::mkdir((root.path() + "/" + path).c_str(), 0755) == 0); }
    void symlink(const std::string& target, const std::string& path) const
    {
        REQUIRE(::symlink(target.c_str(), (root.path() + "/" + path).c_str()) == 0);
    }
};

std::vector<std::string_view> parts(std::initializer_list<std::string_view> list)
{
    return std::vector<std::string_view>(list);
}

// The inode of the folder `fd` is open on.
ino_t inode_of(int fd)
{
    struct ::stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    return st.st_ino;
}

ino_t inode_at(const std::string& path)
{
    struct ::stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    return st.st_ino;
}

} // namespace

TEST_CASE("a folder resolves beneath the root; anything else in its way is refused, both ways")
{
    for (const ResolveMode mode : {ResolveMode::automatic, ResolveMode::walk}) {
        CAPTURE(static_cast<int>(mode));
        Fixture f;
        f.mkdir("a");
        f.mkdir("a/b");
        f.root.write("a/file", "x");
        f.symlink("/", "a/up");
        f.symlink("b", "a/inner");
        const TempRoot outside;
        f.symlink(outside.path(), "escape");
        PathResolver resolver(f.root_fd, f.device, mode);
        if (mode == ResolveMode::walk) {
            CHECK_FALSE(resolver.uses_openat2());
        }

        auto root = resolver.open_folder({}, false);
        REQUIRE(root);
        CHECK(inode_of(root->get()) == inode_at(f.root.path()));

        const auto ab = parts({"a", "b"});
        auto opened = resolver.open_folder(ab, true);
        REQUIRE(opened);
        CHECK(inode_of(opened->get()) == inode_at(f.root.path() + "/a/b"));
        // Readable: it can be listed and synced; O_PATH cannot.
        CHECK(::fsync(opened->get()) == 0);
        auto path_only = resolver.open_folder(ab, false);
        REQUIRE(path_only);
        CHECK(::fsync(path_only->get()) != 0);

        const auto refused = [&](std::vector<std::string_view> path, ErrorCode code) {
            auto result = resolver.open_folder(path, false);
            REQUIRE_FALSE(result);
            CHECK(result.error().code == code);
            auto readable = resolver.open_folder(path, true);
            REQUIRE_FALSE(readable);
            CHECK(readable.error().code == code);
        };
        refused(parts({"missing"}), ErrorCode::not_found);
        refused(parts({"a", "missing", "deeper"}), ErrorCode::not_found);
        refused(parts({"a", "file"}), ErrorCode::not_a_folder);
        refused(parts({"a", "file", "x"}), ErrorCode::not_a_folder);
        refused(parts({"a", "up"}), ErrorCode::not_a_folder);
        refused(parts({"a", "up", "etc"}), ErrorCode::not_a_folder);
        refused(parts({"a", "inner"}), ErrorCode::not_a_folder);
        refused(parts({"escape"}), ErrorCode::not_a_folder);
        // The message names the component that is not a folder, not the
        // whole path (which may not exist at all).
        auto beneath_file = resolver.open_folder(parts({"a", "file", "x", "y"}), false);
        REQUIRE_FALSE(beneath_file);
        CHECK(beneath_file.error().message == "\"a/file\" is not a folder");
        auto beneath_link = resolver.open_folder(parts({"a", "up", "etc"}), false);
        REQUIRE_FALSE(beneath_link);
        CHECK(beneath_link.error().message == "\"a/up\" is not a folder");
    }
}

TEST_CASE("a mount point inside the root is refused as another file system, named as the mount point, both ways")
{
    for (const ResolveMode mode : {ResolveMode::automatic, ResolveMode::walk}) {
        CAPTURE(static_cast<int>(mode));
        Fixture f;
        f.mkdir("mnt");
        const std::string target = f.root.path() + "/mnt";
        if (::mount("ferry-test", target.c_str(), "tmpfs", 0, "size=1m") != 0) {
            MESSAGE("cannot mount a tmpfs here (" << std::strerror(errno) << "); skipped");
            return;
        }
        ::mkdir((target + "/inside").c_str(), 0755);
        PathResolver resolver(f.root_fd, f.device, mode);
        // Whatever lies beyond it, there or not: the mount point is what is
        // refused, and the message names it, not the path asked for.
        for (const auto& path : {parts({"mnt"}), parts({"mnt", "inside"}), parts({"mnt", "missing", "deeper"})}) {
            auto result = resolver.open_folder(path, false);
            CHECK_FALSE(result);
            if (!result) {
                CHECK(result.error().code == ErrorCode::forbidden);
                CHECK(result.error().message == "\"mnt\" is on another file system");
            }
        }
        ::umount2(target.c_str(), MNT_DETACH);
    }
}

TEST_CASE("a bind mount of the root's own file system inside the root is refused as a mount point, both ways")
{
    for (const ResolveMode mode : {ResolveMode::automatic, ResolveMode::walk}) {
        CAPTURE(static_cast<int>(mode));
        Fixture f;
        const TempRoot outside; // the same file system as the root: the same device number
        ::mkdir((outside.path() + "/inside").c_str(), 0755);
        f.mkdir("bo");
        const std::string target = f.root.path() + "/bo";
        if (::mount(outside.path().c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
            MESSAGE("cannot bind-mount here (" << std::strerror(errno) << "); skipped");
            return;
        }
        PathResolver resolver(f.root_fd, f.device, mode);
        for (const auto& path : {parts({"bo"}), parts({"bo", "inside"}), parts({"bo", "missing", "deeper"})}) {
            auto result = resolver.open_folder(path, false);
            CHECK_FALSE(result);
            if (!result) {
                CHECK(result.error().code == ErrorCode::forbidden);
                CHECK(result.error().message == "\"bo\" is on another file system");
            }
        }
        ::umount2(target.c_str(), MNT_DETACH);
    }
}

TEST_CASE("an entry renamed away before its mount is asked about is not taken for a mount point")
{
    // Its stat was taken, then a rename took its name (attack round 67: a
    // stat under a rename loop answered "on another file system").
    Fixture f;
    f.mkdir("a");
    struct ::stat st {};
    REQUIRE(::fstatat(f.root_fd, "a", &st, AT_SYMLINK_NOFOLLOW) == 0);
    const RootMount mount(f.root_fd, f.device);
    CHECK(mount.holds(f.root_fd, "a", st));
    REQUIRE(::renameat(f.root_fd, "a", f.root_fd, "b") == 0);
    CHECK(mount.holds(f.root_fd, "a", st)); // nothing at the name
    f.mkdir("a");
    CHECK(mount.holds(f.root_fd, "a", st)); // another folder at the name
    CHECK(mount.holds(f.root_fd, "b", st)); // the same one, moved
}

TEST_CASE("a folder swapped for a symlink to an outside folder of the same shape is refused by the walk")
{
    Fixture f;
    f.mkdir("a");
    f.mkdir("a/b");
    PathResolver resolver(f.root_fd, f.device, ResolveMode::walk);
    // Swap a/b for a symlink to a folder outside with the same shape.
    const TempRoot outside;
    ::mkdir((outside.path() + "/b").c_str(), 0755);
    REQUIRE(::rename((f.root.path() + "/a/b").c_str(), (f.root.path() + "/a/b-old").c_str()) == 0);
    f.symlink(outside.path() + "/b", "a/b");
    auto result = resolver.open_folder(parts({"a", "b"}), false);
    REQUIRE_FALSE(result);
    CHECK(result.error().code == ErrorCode::not_a_folder);
}

TEST_CASE("UniqueFd closes once and moves its descriptor")
{
    const TempRoot folder;
    const int fd = ::open(folder.path().c_str(), O_PATH | O_CLOEXEC);
    REQUIRE(fd >= 0);
    {
        UniqueFd first(fd);
        UniqueFd second(std::move(first));
        CHECK_FALSE(first);
        CHECK(second.get() == fd);
        UniqueFd third;
        third = std::move(second);
        CHECK(third.get() == fd);
    }
    CHECK(::fcntl(fd, F_GETFD) == -1);
}
