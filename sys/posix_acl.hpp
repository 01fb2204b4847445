// A replaced file's POSIX access ACL (acl(5)), carried over to the file that
// replaces it, as ferryd's upload and the client's download keep the
// replaced file's permission bits: without it, a file whose ACL denied some
// user (mode 0644 plus user:1234:---) would come back readable by them.
//
// The ACL is copied as the opaque value of its extended attribute
// (system.posix_acl_access): nothing is parsed. Server and client both
// link it (sys/meson.build).
//
// And a new file's access ACL as its folder's default ACL gives it
// (InheritedAcl below): ferryd makes an upload in the root and renames it
// into its folder, so the kernel never applies that folder's default ACL
// the way it does to a file created there; this computes it with libacl.
//
// Contract: as posix_io.hpp, nothing here throws or logs; failures come
// back as an errno value for the caller to turn into its own error. The
// copy allocates nothing (the value is read into a buffer of the kernel's
// largest attribute size, on the caller's stack); the inherited ACL is
// libacl's, allocated with malloc (never throwing) and freed by its owner.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <string>

namespace ferry::sys {

inline constexpr const char* kAccessAclAttribute = "system.posix_acl_access";
inline constexpr const char* kDefaultAclAttribute = "system.posix_acl_default";

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
// Without /proc (the lookup's ENOENT while the entry exists, or a plain
// folder at /proc's place, sys::proc_fd_links_are_procfs) the entry is
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
// The same from the open file `fd` (not O_PATH: fgetxattr refuses those).
int read_access_acl(int fd, AccessAcl& acl);
// Makes `acl` exactly the access ACL of the open file `to`: set when it
// holds one, and when it holds none, whatever `to` inherited from its
// folder's default ACL is removed. 0, or the errno (ENOTSUP: `to`'s file
// system keeps no ACL while `acl` holds one). Setting an access ACL also
// sets the file's permission bits from it (acl(5)), so call it before the
// chmod to the same bits, never after a wider one.
int set_access_acl(int to, const AccessAcl& acl);

// The access ACL and permission bits that a file created with `create_mode`
// in a folder gets from the folder's default ACL. The rule is the kernel's
// (acl(5), "OBJECT CREATION AND DEFAULT ACLs"; posix_acl_create in
// fs/posix_acl.c): the new file's access ACL is the default ACL, with the
// permissions of its ACL_USER_OBJ, ACL_MASK (ACL_GROUP_OBJ where there is no
// mask) and ACL_OTHER entries each ANDed with the matching bits of the
// create mode; named users and groups are kept as they are (the mask limits
// them). The umask is NOT applied where a default ACL exists. The file's
// permission bits are those three entries' permissions.
//
// Move-only; holds libacl's acl_t (opaque here, so that includers need no
// <sys/acl.h>). Empty (present() false): the folder has no default ACL, or
// its file system keeps none; a new file then gets the create mode less
// the umask and no ACL, as the caller decides.
class InheritedAcl {
public:
    InheritedAcl() = default;
    InheritedAcl(const InheritedAcl&) = delete;
    InheritedAcl& operator=(const InheritedAcl&) = delete;
    InheritedAcl(InheritedAcl&& other) noexcept;
    InheritedAcl& operator=(InheritedAcl&& other) noexcept;
    ~InheritedAcl();

    bool present() const { return acl_ != nullptr; }
    // The permission bits that follow from it (0 when not present).
    mode_t mode() const { return mode_; }

private:
    friend int read_inherited_acl(int folder, mode_t create_mode, InheritedAcl& acl);
    friend int set_inherited_acl(int to, const InheritedAcl& acl);
    friend int inherited_acl_text(const InheritedAcl& acl, std::string& text);
    void* acl_ = nullptr; // acl_t
    mode_t mode_ = 0;
};

// Reads the default ACL of the open folder `folder` (AT_FDCWD: the current
// folder) and computes what a file created there with `create_mode` gets.
// Read by descriptor (fgetxattr(2) of "system.posix_acl_default", in the
// kernel's layout, include/uapi/linux/posix_acl_xattr.h, turned into a
// libacl ACL entry by entry), so no path is involved and /proc is not
// needed. An O_PATH `folder`, which fgetxattr refuses (EBADF), is read by
// libacl as "/proc/self/fd/FOLDER" (acl_get_file(3) takes a path only),
// and only where /proc is procfs's (proc_fd_links_are_procfs): else ENOENT,
// never taken for "no default ACL".
// 0: `acl` holds it, or is empty (no default ACL, or a file system that
// keeps none). Else the errno that stopped it, `acl` empty.
int read_inherited_acl(int folder, mode_t create_mode, InheritedAcl& acl);
// Makes `acl` exactly the access ACL of the open file `to` (acl_set_fd(3)),
// which also sets the file's permission bits from it (acl.mode()); when it
// is empty, whatever access ACL `to` holds is removed, as set_access_acl
// with none. 0, or the errno (ENOTSUP: `to`'s file system keeps no ACL).
// Call it before any chmod, and chmod to no more than acl.mode().
int set_inherited_acl(int to, const InheritedAcl& acl);

// An ACL as acl_from_text(3) reads it back, with numeric user and group ids
// (acl_to_any_text, TEXT_NUMERIC_IDS: no name lookups, no names that mean
// another user on another host), or "none" where there is none to set: what
// ferryd's commit records before its rename, so that a ferryd that finds the
// record (the commit was killed before the attributes) sets the same ACL.
// These allocate (libacl does). 0 and `text`, or the errno.
inline constexpr const char* kNoAclText = "none";
int access_acl_text(const AccessAcl& acl, std::string& text);
int inherited_acl_text(const InheritedAcl& acl, std::string& text);
// Makes the ACL that `text` (as written above) describes exactly the access
// ACL of the open file `to` ("none": whatever it holds goes), which sets its
// permission bits too: call it before the chmod. 0, or the errno (EINVAL:
// not an ACL).
int set_acl_text(int to, const std::string& text);

} // namespace ferry::sys
