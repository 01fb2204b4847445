// Opens a folder of the served tree by its path, beneath the root and never
// through a symbolic link or into another file system, whatever the tree
// holds or becomes meanwhile. Every Library method that takes a path resolves
// its parent folder here, then names only the last component, relative to
// that folder's descriptor, with O_NOFOLLOW / AT_SYMLINK_NOFOLLOW.
//
// Where the kernel has openat2(2), one call does it (RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV). Where it
// has not (ENOSYS, remembered for the process), each component is opened in
// turn with openat(O_PATH | O_DIRECTORY | O_NOFOLLOW) relative to the one
// before, and its mount compared with the root's (RootMount): the same
// guarantees, two system calls per component. Components are already checked (check_path: no
// "..", ".", empty or '/'), so neither way can climb out.
//
// Blocks on the file system: pool threads only. Never throws.
#pragma once

#include "error.hpp"

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace ferry::server {

// A descriptor closed when destroyed.
class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept;
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd();

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }

private:
    int fd_ = -1;
};

// The mount the served root lies on: a folder is served only where it lies
// on it (PROTOCOL.md 5.1: a mount point is neither listed nor entered). Its
// device tells another file system; its mount id (sys::mount_id_of) tells a
// bind mount of the root's own file system too, which has the root's device.
class RootMount {
public:
    RootMount(int root_fd, dev_t device);

    // Whether the entry `name` in `dir` ("": `dir` itself), whose stat is
    // `st`, lies on the root's mount: a folder, or a file (a file can be
    // bind-mounted over a name too). A kernel without mount ids (before
    // 5.8) is asked the device alone, and so is an entry no longer at its
    // name when asked (renamed meanwhile: it cannot be asked about, and
    // whoever goes on through a descriptor asks again).
    bool holds(int dir, const char* name, const struct ::stat& st) const;

    // The same, for an entry whose stat and mount id came from one call
    // (sys::stat_with_mount).
    bool holds(const struct ::stat& st, std::optional<std::uint64_t> mount_id) const
    {
        return st.st_dev == device_ && (!mount_id_ || mount_id == mount_id_);
    }

    // Whether holds() tells a bind mount of the root's own file system
    // (same device) from the root's mount: only with mount ids.
    bool tells_bind_mounts() const { return mount_id_.has_value(); }

private:
    dev_t device_;
    std::optional<std::uint64_t> mount_id_;
};

enum class ResolveMode {
    automatic, // openat2 where the kernel has it, else the walk
    walk,      // always the component walk (tests, and FERRYD_RESOLVE=walk)
};

class PathResolver {
public:
    // `root_fd` stays owned by the caller and must outlive the resolver.
    PathResolver(int root_fd, dev_t root_device, ResolveMode mode)
        : root_fd_(root_fd), mount_(root_fd, root_device), mode_(mode)
    {
    }

    // The folder named by `components` (none: the root itself), opened with
    // O_PATH when `readable` is false (enough to name entries in it), else
    // O_RDONLY (to read or fsync it). Errors: not_found (a component is
    // missing), not_a_folder (a file, symlink or anything but a folder on
    // the way), forbidden (a mount point on the way), io_error.
    Result<UniqueFd> open_folder(std::span<const std::string_view> components, bool readable) const;

    // Whether open_folder uses openat2 (false after ENOSYS, or in walk mode).
    bool uses_openat2() const;

private:
    Result<UniqueFd> open_with_openat2(std::span<const std::string_view> components, bool readable,
                                       bool& unsupported) const;
    Result<UniqueFd> open_by_walk(std::span<const std::string_view> components, bool readable) const;
    // After openat2 refused `components` with EXDEV: the shortest of its
    // leading paths (the whole path included) that openat2 refuses so now
    // and whose last component is seen to be a mount point, the mount point
    // to name; none where no path is refused so any more, or the one
    // refused is no mount point (a folder on it moved out of the root
    // during the walk, the lookup's or this probe's, or a mount that went
    // meanwhile).
    std::optional<std::string> mount_point_on(std::span<const std::string_view> components) const;

    int root_fd_;
    RootMount mount_;
    ResolveMode mode_;
};

// "a/b/c" from its components (for messages).
std::string joined_path(std::span<const std::string_view> components);

} // namespace ferry::server
