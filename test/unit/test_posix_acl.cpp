// sys/posix_acl: a replaced file's access ACL copied, as an opaque value,
// onto the file that replaces it; looked up in a held folder without
// following a link; and a new file's ACL from its folder's default ACL,
// compared with what the kernel gives a file created in that folder. Files
// in a fresh folder under /tmp (ext4 and tmpfs keep ACLs; where the file
// system keeps none, the tests that set one are skipped).
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

namespace {

// A file made in `folder` by the kernel itself (open(2) with 0666, as a
// server that creates its file in the target folder): the reference.
struct stat kernel_made(const Folder& folder, const std::string& name)
{
    const std::string at = folder.path + "/" + name;
    const int made = ::open(at.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    REQUIRE(made >= 0);
    ::close(made);
    struct stat st {};
    REQUIRE(::stat(at.c_str(), &st) == 0);
    return st;
}

// A 0600 file made elsewhere (as ferryd's partial in its root), given what
// `folder`'s default ACL gives a new file: the file's stat.
struct stat given_inherited(const Folder& folder, const Folder& elsewhere, const std::string& name)
{
    sys::InheritedAcl inherited;
    REQUIRE(sys::read_inherited_acl(folder.fd, 0666, inherited) == 0);
    REQUIRE(inherited.present());
    const std::string at = elsewhere.file(name, 0600);
    const int to = ::open(at.c_str(), O_WRONLY | O_CLOEXEC);
    REQUIRE(to >= 0);
    CHECK(sys::set_inherited_acl(to, inherited) == 0);
    REQUIRE(::fchmod(to, inherited.mode()) == 0); // as ferryd: the ACL, then its bits
    ::close(to);
    struct stat st {};
    REQUIRE(::stat(at.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == inherited.mode());
    return st;
}

} // namespace

TEST_CASE("posix_acl: a new file gets what its folder's default ACL gives a file the kernel creates there")
{
    struct Case {
        const char* default_acl;
        const char* access_acl; // the new file's ("": none beyond its bits)
        mode_t mode;
    };
    const Case cases[] = {
        // A named user and a mask: the mask is ANDed with 0666's group bits.
        {"u::rwx,u:1234:r--,g::r-x,m::rwx,o::---", "user::rw-,user:1234:r--,group::r-x,mask::rw-,other::---", 0660},
        // Narrower than any umask: others get nothing, where 0666 less 022 reads.
        {"u::rw-,g::r--,o::---", "", 0640},
        // Wider than the umask: the umask is not applied (acl(5)).
        {"u::rwx,g::rwx,o::rwx", "", 0666},
        // A named group, no read for the owning group, a narrow mask.
        {"u::rw-,g::---,g:4321:rwx,m::r-x,o::r--", "user::rw-,group::---,group:4321:rwx,mask::r--,other::r--", 0644},
    };
    const mode_t umask_was = ::umask(022);
    for (const Case& c : cases) {
        CAPTURE(c.default_acl);
        Folder folder;
        Folder elsewhere;
        if (!ferry::test::set_default_acl(folder.path, c.default_acl)) {
            MESSAGE("no ACLs on this file system: skipped");
            break;
        }
        const struct stat reference = kernel_made(folder, "kernel");
        const struct stat ours = given_inherited(folder, elsewhere, "ours");
        CHECK((reference.st_mode & 07777) == c.mode);
        CHECK((ours.st_mode & 07777) == c.mode);
        CHECK(ferry::test::access_acl_text(folder.path + "/kernel") == c.access_acl);
        CHECK(ferry::test::access_acl_text(elsewhere.path + "/ours") == c.access_acl);
        CHECK(acl_of(elsewhere.path + "/ours") == acl_of(folder.path + "/kernel"));
    }
    ::umask(umask_was);
}

TEST_CASE("posix_acl: a folder without a default ACL gives none, and what the new file held goes")
{
    Folder folder;
    Folder elsewhere;
    sys::InheritedAcl inherited;
    CHECK(sys::read_inherited_acl(folder.fd, 0666, inherited) == 0);
    CHECK_FALSE(inherited.present());
    // A file holding an ACL it inherited elsewhere (ferryd's partial, from
    // the root's default ACL) sheds it.
    const std::string at = elsewhere.file("f", 0600);
    if (!set_acl(at, deny_1234())) {
        MESSAGE("no ACLs on this file system: skipped");
        return;
    }
    const int to = ::open(at.c_str(), O_WRONLY | O_CLOEXEC);
    REQUIRE(to >= 0);
    CHECK(sys::set_inherited_acl(to, inherited) == 0);
    CHECK(acl_of(at).empty());
    ::close(to);
}

TEST_CASE("posix_acl: a default ACL that cannot be read is an errno, never taken for none")
{
    sys::InheritedAcl inherited;
    const int closed = ::open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(closed >= 0);
    ::close(closed);
    CHECK(sys::read_inherited_acl(closed, 0666, inherited) == ENOENT); // "/proc/self/fd/N" missing
    CHECK_FALSE(inherited.present());

    // And the move keeps one owner of libacl's ACL.
    Folder folder;
    if (ferry::test::set_default_acl(folder.path, "u::rw-,g::r--,o::---")) {
        REQUIRE(sys::read_inherited_acl(folder.fd, 0666, inherited) == 0);
        sys::InheritedAcl moved = std::move(inherited);
        CHECK(moved.present());
        CHECK(moved.mode() == 0640);
        CHECK_FALSE(inherited.present()); // NOLINT(bugprone-use-after-move): moved-from is empty
    }
}
