// A replaced file's POSIX access ACL (acl(5)), carried over to the file that
// replaces it, as ferryd's upload and the client's download keep the
// replaced file's permission bits: without it, a file whose ACL denied some
// user (mode 0644 plus user:1234:---) would come back readable by them.
//
// The ACL is copied as the opaque value of its extended attribute
// (system.posix_acl_access): nothing is parsed, and no ACL library is
// needed. Server and client both link it (sys/meson.build).
//
// Contract: as posix_io.hpp, nothing here allocates, throws or logs (the
// value is read into a buffer of the kernel's largest attribute size, on
// the caller's stack); failures come back as an errno value for the caller
// to turn into its own error.
#pragma once

#include <array>
#include <cstddef>
#include <string>

namespace ferry::sys {

inline constexpr const char* kAccessAclAttribute = "system.posix_acl_access";

// Copies the access ACL of the entry `leaf` in the folder `folder` (a
// descriptor, or AT_FDCWD with `leaf` a path) onto the open file `to`.
//
// The entry is looked up relative to the held folder and never followed
// when it is a symbolic link: lgetxattr(2) on "/proc/self/fd/FOLDER/LEAF"
// (the kernel resolves the descriptor's link to that very folder, and the
// l- call does not follow the last name). Nothing is opened: a FIFO there
// cannot block, and a file its owner may not read still gives its ACL.
// Why not an O_PATH descriptor of the entry: fgetxattr refuses those
// (EBADF, still so on Linux 6.18), so it would need /proc all the same.
// Without /proc (the lookup's ENOENT while the entry exists) the entry is
// opened O_RDONLY|O_NOFOLLOW|O_NONBLOCK and asked by descriptor; one that
// cannot be opened is that errno, never taken for "no ACL".
//
// `to` gets exactly the entry's ACL (none where it has none: see
// set_access_acl). Setting one also sets the permission bits from it: call
// it before a chmod to the replaced file's bits, so that the file is never
// wider on the way.
//
// 0: copied, or nothing to copy (no such entry, no ACL on it, or a file
// system that keeps none). Else the errno that stopped it: ENOTSUP where
// the replaced file has an ACL and `to`'s file system refuses it, so that
// the caller refuses the publish rather than widen access.
int copy_access_acl(int folder, const std::string& leaf, int to);

// copy_access_acl in two steps, for a caller that must read the replaced
// file's ACL before a rename removes it and set it on the new file after
// (ferryd's commit). `size` 0: nothing to keep (no entry, no ACL, or a file
// system that keeps none). The value is the kernel's largest attribute
// (XATTR_SIZE_MAX, 64 KiB): the caller chooses where it lives.
struct AccessAcl {
    std::array<char, 65536> value;
    std::size_t size = 0;
};
// Reads it as copy_access_acl does: 0, or the errno that stopped it.
int read_access_acl(int folder, const std::string& leaf, AccessAcl& acl);
// Makes `acl` exactly the access ACL of the open file `to`: set when it
// holds one, and when it holds none, whatever `to` inherited from its
// folder's default ACL is removed. 0, or the errno (ENOTSUP: `to`'s file
// system keeps no ACL while `acl` holds one). Setting an access ACL also
// sets the file's permission bits from it (acl(5)), so call it before the
// chmod to the same bits, never after a wider one.
int set_access_acl(int to, const AccessAcl& acl);

} // namespace ferry::sys
