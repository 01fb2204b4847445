// sys/posix_acl: a replaced file's access ACL copied, as an opaque value,
// onto the file that replaces it; looked up in a held folder without
// following a link. Files in a fresh folder under /tmp (ext4 and tmpfs keep
// ACLs; where the file system keeps none, the tests that set one are skipped).
#include "posix_acl.hpp"

#include "../acl_values.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace sys = ferry::sys;

namespace {

std::string deny_1234()
{
    return ferry::test::deny_acl(1234);
}

using ferry::test::acl_of;

struct Folder {
    Folder()
    {
        char pattern[] = "/tmp/ferry-acl-XXXXXX";
        REQUIRE(::mkdtemp(pattern) != nullptr);
        path = pattern;
        fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        REQUIRE(fd >= 0);
    }
    ~Folder()
    {
        ::close(fd);
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    std::string file(const std::string& name, mode_t mode = 0644) const
    {
        const std::string at = path + "/" + name;
        const int made = ::open(at.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        REQUIRE(made >= 0);
        ::close(made);
        REQUIRE(::chmod(at.c_str(), mode) == 0);
        return at;
    }
    std::string path;
    int fd = -1;
};

// Whether the folder's file system keeps ACLs (set one on `path`).
bool set_acl(const std::string& path, const std::string& value)
{
    return ::setxattr(path.c_str(), sys::kAccessAclAttribute, value.data(), value.size(), 0) == 0;
}

} // namespace

TEST_CASE("posix_acl: the replaced file's access ACL is copied onto the new file, by folder and leaf")
{
    Folder folder;
    const std::string old = folder.file("old");
    if (!set_acl(old, deny_1234())) {
        MESSAGE("no ACLs on this file system: skipped");
        return;
    }
    const std::string fresh = folder.file("fresh", 0600);
    const int to = ::open(fresh.c_str(), O_WRONLY | O_CLOEXEC);
    REQUIRE(to >= 0);
    REQUIRE(::fchmod(to, 0644) == 0); // the mode first, as the callers do
    CHECK(sys::copy_access_acl(folder.fd, "old", to) == 0);
    CHECK(acl_of(fresh) == deny_1234());
    struct stat st {};
    REQUIRE(::stat(fresh.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0644);

    // By path from the working folder (AT_FDCWD) the same.
    const std::string other = folder.file("other", 0600);
    const int to_other = ::open(other.c_str(), O_WRONLY | O_CLOEXEC);
    REQUIRE(to_other >= 0);
    CHECK(sys::copy_access_acl(AT_FDCWD, old, to_other) == 0);
    CHECK(acl_of(other) == deny_1234());
    ::close(to_other);
    ::close(to);
}

TEST_CASE("posix_acl: nothing to copy is success: no ACL, no entry, or a symbolic link (never followed)")
{
    Folder folder;
    const std::string plain = folder.file("plain");
    const std::string with_acl = folder.file("with_acl");
    const bool keeps_acls = set_acl(with_acl, deny_1234());
    REQUIRE(::symlink(with_acl.c_str(), (folder.path + "/link").c_str()) == 0);
    const std::string fresh = folder.file("fresh", 0600);
    const int to = ::open(fresh.c_str(), O_WRONLY | O_CLOEXEC);
    REQUIRE(to >= 0);
    CHECK(sys::copy_access_acl(folder.fd, "plain", to) == 0);
    CHECK(sys::copy_access_acl(folder.fd, "missing", to) == 0);
    CHECK(sys::copy_access_acl(folder.fd, "link", to) == 0);
    CHECK(sys::copy_access_acl(AT_FDCWD, folder.path + "/missing", to) == 0);
    CHECK(sys::copy_access_acl(AT_FDCWD, folder.path + "/link", to) == 0);
    CHECK(acl_of(fresh).empty());
    (void)keeps_acls;
    (void)plain;
    ::close(to);
}

TEST_CASE("posix_acl: an ACL the new file cannot take is ENOTSUP, for the caller to refuse; no ACL never is")
{
    Folder folder;
    const std::string old = folder.file("old");
    const std::string plain = folder.file("plain");
    int pipe_ends[2];
    REQUIRE(::pipe(pipe_ends) == 0); // pipefs keeps no extended attributes (EOPNOTSUPP)
    CHECK(sys::copy_access_acl(folder.fd, "plain", pipe_ends[1]) == 0);
    if (set_acl(old, deny_1234())) {
        CHECK(sys::copy_access_acl(folder.fd, "old", pipe_ends[1]) == ENOTSUP);
        CHECK(sys::copy_access_acl(AT_FDCWD, old, pipe_ends[1]) == ENOTSUP);
    } else {
        MESSAGE("no ACLs on this file system: the refusal is not tested");
    }
    ::close(pipe_ends[0]);
    ::close(pipe_ends[1]);
}
