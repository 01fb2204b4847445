#include "posix_acl.hpp"

#include "posix_io.hpp"

#include <fcntl.h>
#include <linux/limits.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>

namespace ferry::sys {

namespace {

// The kernel's bound on any extended attribute's value (XATTR_SIZE_MAX):
// every ACL fits, so ERANGE never asks for a second try, and nothing is
// allocated (sys/'s contract). On the stack of the calling thread.
using Value = std::array<char, sizeof(AccessAcl::value)>;

bool no_acl_to_keep(int error)
{
    // No ACL (ENODATA), or a file system that keeps none (ENOTSUP).
    return error == ENODATA || error == ENOTSUP || error == EOPNOTSUPP;
}

// The value's size through `got` (an lgetxattr's or fgetxattr's result):
// 0 with `size` 0 when there is none to keep, else the errno.
int settle(ssize_t got, std::size_t& size)
{
    size = 0;
    if (got >= 0) {
        size = static_cast<std::size_t>(got);
        return 0;
    }
    return no_acl_to_keep(errno) ? 0 : errno;
}

// Without /proc: the entry opened, never through a link, and asked by
// descriptor (O_NONBLOCK: a FIFO does not wait; a file this user may not
// read cannot be asked, and its publish is refused with that errno).
int read_opened(int folder, const char* leaf, Value& value, std::size_t& size)
{
    const int fd = retry_on_eintr(
        [&] { return ::openat(folder, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC); });
    if (fd < 0) {
        size = 0;
        return errno == ENOENT ? 0 : errno;
    }
    const int error = settle(::fgetxattr(fd, kAccessAclAttribute, value.data(), value.size()), size);
    ::close(fd);
    return error;
}

int read_entry(int folder, const std::string& leaf, Value& value, std::size_t& size)
{
    if (folder == AT_FDCWD) {
        const ssize_t got = ::lgetxattr(leaf.c_str(), kAccessAclAttribute, value.data(), value.size());
        if (got < 0 && errno == ENOENT) {
            size = 0;
            return 0; // nothing under the name: a new file
        }
        return settle(got, size);
    }
    std::array<char, PATH_MAX> path{};
    const int length = std::snprintf(path.data(), path.size(), "/proc/self/fd/%d/%s", folder, leaf.c_str());
    if (length < 0 || static_cast<std::size_t>(length) >= path.size()) {
        return ENAMETOOLONG;
    }
    const ssize_t got = ::lgetxattr(path.data(), kAccessAclAttribute, value.data(), value.size());
    if (got >= 0 || errno != ENOENT) {
        return settle(got, size);
    }
    // ENOENT: no entry under the name (nothing to keep), or no /proc to
    // look through, which must not pass for "no ACL".
    size = 0;
    struct ::stat st {};
    if (::fstatat(folder, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISLNK(st.st_mode)) {
        return 0; // gone, or a link (Linux keeps no ACL on a link itself)
    }
    return read_opened(folder, leaf.c_str(), value, size);
}

} // namespace

int read_access_acl(int folder, const std::string& leaf, AccessAcl& acl)
{
    return read_entry(folder, leaf, acl.value, acl.size);
}

int set_access_acl(int to, const AccessAcl& acl)
{
    if (acl.size == 0) {
        // Exactly none: an access ACL `to` inherited from its folder's
        // default ACL (acl(5)) goes, or it could widen the replacement.
        if (::fremovexattr(to, kAccessAclAttribute) != 0 && !no_acl_to_keep(errno)) {
            return errno;
        }
        return 0;
    }
    if (::fsetxattr(to, kAccessAclAttribute, acl.value.data(), acl.size, 0) != 0) {
        return errno == EOPNOTSUPP ? ENOTSUP : errno;
    }
    return 0;
}

int copy_access_acl(int folder, const std::string& leaf, int to)
{
    AccessAcl acl;
    if (const int error = read_access_acl(folder, leaf, acl); error != 0) {
        return error;
    }
    return set_access_acl(to, acl);
}

} // namespace ferry::sys
