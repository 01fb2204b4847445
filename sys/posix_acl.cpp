#include "posix_acl.hpp"

#include "posix_io.hpp"

#include <acl/libacl.h>
#include <fcntl.h>
#include <linux/limits.h>
#include <sys/acl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <utility>
#include <vector>

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

// The access ACL of the open file `fd` (not O_PATH: fgetxattr refuses
// those), as settle says.
int read_descriptor(int fd, Value& value, std::size_t& size)
{
    return settle(::fgetxattr(fd, kAccessAclAttribute, value.data(), value.size()), size);
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
    const int error = read_descriptor(fd, value, size);
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
    if (proc_fd_links_are_procfs()) {
        std::array<char, PATH_MAX> path{};
        const int length = std::snprintf(path.data(), path.size(), "/proc/self/fd/%d/%s", folder, leaf.c_str());
        if (length < 0 || static_cast<std::size_t>(length) >= path.size()) {
            return ENAMETOOLONG;
        }
        const ssize_t got = ::lgetxattr(path.data(), kAccessAclAttribute, value.data(), value.size());
        if (got >= 0 || errno != ENOENT) {
            return settle(got, size);
        }
    }
    // ENOENT: no entry under the name (nothing to keep), or no /proc to
    // look through (or a plain folder at its place), which must not pass
    // for "no ACL".
    size = 0;
    struct ::stat st {};
    if (::fstatat(folder, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISLNK(st.st_mode)) {
        return 0; // gone, or a link (Linux keeps no ACL on a link itself)
    }
    return read_opened(folder, leaf.c_str(), value, size);
}

// Whatever access ACL the open file `to` holds goes: 0, or the errno.
int remove_access_acl(int to)
{
    if (::fremovexattr(to, kAccessAclAttribute) != 0 && !no_acl_to_keep(errno)) {
        return errno;
    }
    return 0;
}

// An entry's permissions, ACL_READ/WRITE/EXECUTE as the rwx bits 4, 2, 1.
mode_t bits_of(acl_permset_t permset)
{
    return (::acl_get_perm(permset, ACL_READ) == 1 ? 4U : 0U) | (::acl_get_perm(permset, ACL_WRITE) == 1 ? 2U : 0U) |
           (::acl_get_perm(permset, ACL_EXECUTE) == 1 ? 1U : 0U);
}

// Takes from `entry` each of the permissions that `allowed` (rwx as 4, 2,
// 1) lacks; its permissions after that, or -1 with errno.
int mask_entry(acl_entry_t entry, mode_t allowed)
{
    acl_permset_t permset = nullptr;
    if (::acl_get_permset(entry, &permset) != 0) {
        return -1;
    }
    const std::pair<acl_perm_t, mode_t> perms[] = {{ACL_READ, 4}, {ACL_WRITE, 2}, {ACL_EXECUTE, 1}};
    for (const auto& [perm, bit] : perms) {
        if ((allowed & bit) == 0 && ::acl_delete_perm(permset, perm) != 0) {
            return -1;
        }
    }
    if (::acl_set_permset(entry, permset) != 0) {
        return -1;
    }
    return static_cast<int>(bits_of(permset));
}

// acl(5)'s creation rule on `acl` (a folder's default ACL, changed in
// place): ACL_USER_OBJ, ACL_MASK (ACL_GROUP_OBJ where there is no mask) and
// ACL_OTHER each ANDed with `create_mode`'s bits. The resulting permission
// bits through `mode`; 0, or the errno.
int apply_create_mode(acl_t acl, mode_t create_mode, mode_t& mode)
{
    acl_entry_t group_obj = nullptr;
    bool has_mask = false;
    mode = 0;
    acl_entry_t entry = nullptr;
    int got = ::acl_get_entry(acl, ACL_FIRST_ENTRY, &entry);
    for (; got == 1; got = ::acl_get_entry(acl, ACL_NEXT_ENTRY, &entry)) {
        acl_tag_t tag = ACL_UNDEFINED_TAG;
        if (::acl_get_tag_type(entry, &tag) != 0) {
            return errno;
        }
        int bits = 0;
        if (tag == ACL_USER_OBJ) {
            bits = mask_entry(entry, (create_mode >> 6) & 7);
            mode |= static_cast<mode_t>(bits) << 6;
        } else if (tag == ACL_MASK) {
            has_mask = true;
            bits = mask_entry(entry, (create_mode >> 3) & 7);
            mode |= static_cast<mode_t>(bits) << 3;
        } else if (tag == ACL_OTHER) {
            bits = mask_entry(entry, create_mode & 7);
            mode |= static_cast<mode_t>(bits);
        } else if (tag == ACL_GROUP_OBJ) {
            group_obj = entry;
        }
        if (bits < 0) {
            return errno;
        }
    }
    if (got < 0) {
        return errno;
    }
    if (!has_mask && group_obj != nullptr) {
        const int bits = mask_entry(group_obj, (create_mode >> 3) & 7);
        if (bits < 0) {
            return errno;
        }
        mode |= static_cast<mode_t>(bits) << 3;
    }
    return 0;
}

} // namespace

InheritedAcl::InheritedAcl(InheritedAcl&& other) noexcept
    : acl_(std::exchange(other.acl_, nullptr)), mode_(std::exchange(other.mode_, 0))
{
}

InheritedAcl& InheritedAcl::operator=(InheritedAcl&& other) noexcept
{
    if (this != &other) {
        if (acl_ != nullptr) {
            ::acl_free(acl_);
        }
        acl_ = std::exchange(other.acl_, nullptr);
        mode_ = std::exchange(other.mode_, 0);
    }
    return *this;
}

InheritedAcl::~InheritedAcl()
{
    if (acl_ != nullptr) {
        ::acl_free(acl_);
    }
}

namespace {

// acl_t as text (see access_acl_text); frees nothing of `acl`.
int text_of(acl_t acl, std::string& text)
{
    char* written = ::acl_to_any_text(acl, nullptr, ',', TEXT_NUMERIC_IDS);
    if (written == nullptr) {
        return errno;
    }
    text = written;
    ::acl_free(written);
    return 0;
}

// One entry of the kernel's value (struct posix_acl_xattr_entry: tag,
// permissions, id; little-endian) added to `acl` through libacl.
int add_entry(acl_t& acl, const unsigned char* at)
{
    const auto tag = static_cast<acl_tag_t>(at[0] | (at[1] << 8));
    const unsigned permissions = at[2] | (at[3] << 8);
    const auto id = static_cast<id_t>(at[4] | (at[5] << 8) | (at[6] << 16) | (static_cast<id_t>(at[7]) << 24));
    acl_entry_t entry = nullptr;
    acl_permset_t permset = nullptr;
    if (::acl_create_entry(&acl, &entry) != 0 || ::acl_set_tag_type(entry, tag) != 0 ||
        ((tag == ACL_USER || tag == ACL_GROUP) && ::acl_set_qualifier(entry, &id) != 0) ||
        ::acl_get_permset(entry, &permset) != 0 || ::acl_clear_perms(permset) != 0) {
        return errno;
    }
    for (const acl_perm_t perm : {ACL_READ, ACL_WRITE, ACL_EXECUTE}) {
        if ((permissions & perm) != 0 && ::acl_add_perm(permset, perm) != 0) {
            return errno;
        }
    }
    return 0;
}

// The kernel's value of an ACL attribute (posix_acl_xattr_header, then
// entries of struct posix_acl_xattr_entry; the layout of
// include/uapi/linux/posix_acl_xattr.h) as a libacl ACL: 0 and `built`
// (the caller frees it), or the errno (EINVAL: not that layout).
int acl_from_value(const unsigned char* bytes, std::size_t size, acl_t& built)
{
    constexpr std::size_t kHeader = 4; // posix_acl_xattr_header: the version
    constexpr std::size_t kEntry = 8;
    built = nullptr;
    if (size < kHeader || (size - kHeader) % kEntry != 0) {
        return EINVAL;
    }
    const std::size_t count = (size - kHeader) / kEntry;
    acl_t acl = ::acl_init(static_cast<int>(count));
    if (acl == nullptr) {
        return errno;
    }
    for (std::size_t i = 0; i < count; ++i) {
        if (const int error = add_entry(acl, bytes + kHeader + i * kEntry); error != 0) {
            ::acl_free(acl);
            return error;
        }
    }
    built = acl;
    return 0;
}

// The default ACL of the open folder `folder`, read by descriptor: 0 and
// `acl` (nullptr where there is none, or the file system keeps none; else
// the caller frees it), EBADF for an O_PATH descriptor (fgetxattr refuses
// those), or the errno. Its size, then its value; a value that grew in
// between (ERANGE) is asked again, a few times.
int read_default_acl_by_descriptor(int folder, acl_t& acl)
{
    acl = nullptr;
    for (int attempt = 0; attempt < 4; ++attempt) {
        const ssize_t size = ::fgetxattr(folder, kDefaultAclAttribute, nullptr, 0);
        if (size < 0) {
            return no_acl_to_keep(errno) ? 0 : errno;
        }
        std::vector<unsigned char> value(static_cast<std::size_t>(size));
        const ssize_t got = ::fgetxattr(folder, kDefaultAclAttribute, value.data(), value.size());
        if (got >= 0) {
            return acl_from_value(value.data(), static_cast<std::size_t>(got), acl);
        }
        if (errno != ERANGE) {
            return no_acl_to_keep(errno) ? 0 : errno;
        }
    }
    return ERANGE;
}

// The default ACL of the open folder `folder` (AT_FDCWD: the current one),
// as read_default_acl_by_descriptor says it. libacl reads a default ACL by
// path only (acl_get_file(3); acl_get_fd gives the access ACL), so the
// current folder, and an O_PATH `folder`, go by a name: "/proc/self/fd/N"
// only where /proc is procfs's (a plain folder at its place could be a
// client's: proc_fd_links_are_procfs).
int read_default_acl(int folder, acl_t& acl)
{
    acl = nullptr;
    if (folder != AT_FDCWD) {
        if (const int error = read_default_acl_by_descriptor(folder, acl); error != EBADF) {
            return error;
        }
    }
    std::array<char, 64> path{};
    if (folder == AT_FDCWD) {
        path[0] = '.';
    } else if (!proc_fd_links_are_procfs()) {
        return ENOENT; // as without /proc: never taken for "no default ACL"
    } else if (std::snprintf(path.data(), path.size(), "/proc/self/fd/%d", folder) < 0) {
        return EINVAL;
    }
    acl = ::acl_get_file(path.data(), ACL_TYPE_DEFAULT);
    if (acl == nullptr) {
        return errno == ENOTSUP || errno == EOPNOTSUPP ? 0 : errno;
    }
    return 0;
}

} // namespace

int read_inherited_acl(int folder, mode_t create_mode, InheritedAcl& inherited)
{
    inherited = InheritedAcl();
    acl_t acl = nullptr;
    if (const int error = read_default_acl(folder, acl); error != 0 || acl == nullptr) {
        return error;
    }
    if (::acl_entries(acl) <= 0) {
        ::acl_free(acl); // no default ACL: libacl gives an empty one
        return 0;
    }
    mode_t mode = 0;
    if (const int error = apply_create_mode(acl, create_mode, mode); error != 0) {
        ::acl_free(acl);
        return error;
    }
    inherited.acl_ = acl;
    inherited.mode_ = mode;
    return 0;
}

int set_inherited_acl(int to, const InheritedAcl& inherited)
{
    if (!inherited.present()) {
        return remove_access_acl(to);
    }
    if (::acl_set_fd(to, static_cast<acl_t>(inherited.acl_)) != 0) {
        return errno == EOPNOTSUPP ? ENOTSUP : errno;
    }
    return 0;
}

int read_access_acl(int folder, const std::string& leaf, AccessAcl& acl)
{
    return read_entry(folder, leaf, acl.value, acl.size);
}

int read_access_acl(int fd, AccessAcl& acl)
{
    return read_descriptor(fd, acl.value, acl.size);
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

int access_acl_text(const AccessAcl& acl, std::string& text)
{
    if (acl.size == 0) {
        text = kNoAclText;
        return 0;
    }
    acl_t built = nullptr;
    int error = acl_from_value(reinterpret_cast<const unsigned char*>(acl.value.data()), acl.size, built);
    if (error == 0) {
        error = text_of(built, text);
        ::acl_free(built);
    }
    return error;
}

int inherited_acl_text(const InheritedAcl& inherited, std::string& text)
{
    if (!inherited.present()) {
        text = kNoAclText;
        return 0;
    }
    return text_of(static_cast<acl_t>(inherited.acl_), text);
}

int set_acl_text(int to, const std::string& text)
{
    if (text == kNoAclText) {
        return remove_access_acl(to);
    }
    acl_t acl = ::acl_from_text(text.c_str());
    if (acl == nullptr) {
        return errno == 0 ? EINVAL : errno;
    }
    const int result = ::acl_set_fd(to, acl) == 0 ? 0 : (errno == EOPNOTSUPP ? ENOTSUP : errno);
    ::acl_free(acl);
    return result;
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
