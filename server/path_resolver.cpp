#include "path_resolver.hpp"

#include "estale.hpp"
#include "names.hpp"
#include "posix_io.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace ferry::server {

namespace {

// Set once openat2 answered ENOSYS: the kernel will not grow it while we run.
std::atomic<bool> openat2_missing{false};

int folder_flags(bool readable)
{
    return (readable ? O_RDONLY : O_PATH) | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
}

// Whether the entry `name` in `folder` is a mount point: it lies on
// another mount than `folder`. statx(2) of a name crosses a mount on it
// (AT_SYMLINK_NOFOLLOW leaves only a symlink unfollowed), so its mount id
// (Linux 5.8) is the mount's. Without mount ids a bind mount of the
// folder's own file system shows nothing (the same device): then openat2's
// EXDEV is taken at its word, as it always was. An entry gone meanwhile
// (moved out) is none.
bool is_mount_point(int folder, const char* name)
{
    struct ::stat outer {};
    struct ::stat inner {};
    std::optional<std::uint64_t> outer_mount;
    std::optional<std::uint64_t> inner_mount;
    if (sys::stat_with_mount(folder, "", outer, outer_mount) != 0 ||
        sys::stat_with_mount(folder, name, inner, inner_mount) != 0) {
        return false;
    }
    return outer.st_dev != inner.st_dev || !outer_mount || !inner_mount || *outer_mount != *inner_mount;
}

// What a failed lookup of the folder `path` means on the wire.
Error resolve_error(int errno_value, std::string_view path)
{
    switch (errno_value) {
    case ENOENT:
        return Error{ErrorCode::not_found, "no folder named " + quoted(path)};
    case ENOTDIR:
    case ELOOP:
        // RESOLVE_NO_SYMLINKS and O_NOFOLLOW both end at a symlink with
        // ELOOP (or ENOTDIR, with O_DIRECTORY): never a way out.
        return Error{ErrorCode::not_a_folder, quoted(path) + " is not a folder"};
    case EXDEV:
        return Error{ErrorCode::forbidden, quoted(path) + " is on another file system"};
    case EACCES:
    case EPERM:
        // A folder ferryd's user may not search: a refusal (file_error).
        return Error{ErrorCode::forbidden, "cannot open folder " + quoted(path) + ": " + std::strerror(errno_value)};
    default:
        return Error{ErrorCode::io_error, "cannot open folder " + quoted(path) + ": " + std::strerror(errno_value)};
    }
}

} // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept
{
    if (this != &other) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

UniqueFd::~UniqueFd()
{
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

RootMount::RootMount(int root_fd, dev_t device) : device_(device), mount_id_(sys::mount_id_of(root_fd, "")) {}

bool RootMount::holds(int dir, const char* name, const struct ::stat& st) const
{
    if (st.st_dev != device_) {
        return false;
    }
    if (!mount_id_) {
        return true;
    }
    struct ::stat now {};
    std::optional<std::uint64_t> mount_id;
    if (sys::stat_with_mount(dir, name, now, mount_id) != 0 || !mount_id || now.st_ino != st.st_ino ||
        now.st_dev != st.st_dev) {
        // The name holds another entry by now, or none (renamed meanwhile):
        // the one `st` describes is not there to ask, and its device is the
        // root's. Whoever goes on meets what stands there through a
        // descriptor, which is asked in turn.
        return true;
    }
    return *mount_id == *mount_id_;
}

std::string joined_path(std::span<const std::string_view> components)
{
    std::string path;
    for (const auto component : components) {
        if (!path.empty()) {
            path += '/';
        }
        path += component;
    }
    return path;
}

bool PathResolver::uses_openat2() const
{
    return mode_ == ResolveMode::automatic && !openat2_missing.load(std::memory_order_relaxed);
}

Result<UniqueFd> PathResolver::open_folder(std::span<const std::string_view> components, bool readable) const
{
    if (uses_openat2()) {
        bool unsupported = false;
        auto opened = open_with_openat2(components, readable, unsupported);
        if (!unsupported) {
            return opened;
        }
        openat2_missing.store(true, std::memory_order_relaxed);
    }
    return open_by_walk(components, readable);
}

Result<UniqueFd> PathResolver::open_with_openat2(std::span<const std::string_view> components, bool readable,
                                                 bool& unsupported) const
{
    const std::string path = components.empty() ? std::string(".") : joined_path(components);
    struct open_how how {};
    how.flags = static_cast<std::uint64_t>(folder_flags(readable));
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    // EAGAIN: a rename elsewhere in the file system raced the lookup; the
    // kernel asks us to try again. A few tries, then the walk, which has no
    // such retry. An EXDEV that no mount point explains is such a race too
    // (below).
    bool unexplained_exdev = false;
    for (int attempt = 0; attempt < 4; ++attempt) {
        const long fd = ::syscall(SYS_openat2, root_fd_, path.c_str(), &how, sizeof how);
        if (fd >= 0) {
            return UniqueFd(static_cast<int>(fd));
        }
        if (errno == ENOSYS) {
            unsupported = true;
            return Error{ErrorCode::internal, "openat2 is not supported"};
        }
        if (errno == ESTALE) {
            break; // the walk refreshes and retries the component that was stale
        }
        if (errno == EXDEV) {
            // Two causes. A mount point on the path (RESOLVE_NO_XDEV):
            // refused, whatever lies beyond; only the name of the mount
            // point is looked for, by the kernel's own test again, never by
            // the walk, which on a kernel without statx's mount id tells a
            // mount by its device and would pass a bind mount of the root's
            // own file system. Or a folder on the path moved out of the
            // served folder while the kernel walked through it: RESOLVE_BENEATH
            // ends such a walk with EXDEV too (complete_walk() in
            // fs/namei.c), although no mount is involved. That is a race, not
            // a refusal (attack round 70): looked up again, it finds the
            // path's folder, or nothing (not_found).
            if (auto mount_point = mount_point_on(components)) {
                return resolve_error(EXDEV, *mount_point);
            }
            unexplained_exdev = true;
            continue;
        }
        if (errno == ENOTDIR || errno == ELOOP) {
            // Which component is not a folder, openat2 does not say; the
            // walk stops at it, so the error names it ("f" of "f/x/y", not
            // "f/x"). A failure's path only: no cost to a lookup that works.
            return open_by_walk(components, readable);
        }
        if (errno != EAGAIN && errno != EINTR) {
            return resolve_error(errno, path);
        }
    }
    // The walk tells a bind mount of the root's own file system only by its
    // mount id: where the kernel has none (5.6 and 5.7 have openat2 but no
    // STATX_MNT_ID), a lookup that met an EXDEV no mount point explained
    // is refused as before, not left to a walk that could pass such a
    // mount (attack round 71, F2).
    if (unexplained_exdev && !mount_.tells_bind_mounts()) {
        return resolve_error(EXDEV, path);
    }
    return open_by_walk(components, readable);
}

std::optional<std::string> PathResolver::mount_point_on(std::span<const std::string_view> components) const
{
    struct open_how how {};
    how.flags = static_cast<std::uint64_t>(folder_flags(false));
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    UniqueFd parent; // the last leading path opened; the root before the first
    for (std::size_t length = 1; length <= components.size(); ++length) {
        const std::string prefix = joined_path(components.first(length));
        const long fd = ::syscall(SYS_openat2, root_fd_, prefix.c_str(), &how, sizeof how);
        if (fd >= 0) {
            parent = UniqueFd(static_cast<int>(fd));
            continue;
        }
        if (errno != EXDEV) {
            return std::nullopt; // nothing beyond a missing folder or a file is mounted on
        }
        // This probe can meet the very move that ended the lookup (a folder
        // on the path going out of the root as the kernel walks it): its
        // EXDEV names a mount point only once the entry is seen to be one
        // (attack round 71, F1, where a moving folder was named in place of
        // the mount below it).
        const std::string name(components[length - 1]);
        if (is_mount_point(parent ? parent.get() : root_fd_, name.c_str())) {
            return prefix;
        }
        return std::nullopt;
    }
    return std::nullopt;
}

Result<UniqueFd> PathResolver::open_by_walk(std::span<const std::string_view> components, bool readable) const
{
    if (components.empty()) {
        const int fd = ::openat(root_fd_, ".", folder_flags(readable));
        if (fd < 0) {
            return resolve_error(errno, ".");
        }
        return UniqueFd(fd);
    }
    UniqueFd current;
    for (std::size_t i = 0; i < components.size(); ++i) {
        const bool last = i + 1 == components.size();
        const std::string name(components[i]);
        const int at = current ? current.get() : root_fd_;
        const auto so_far = [&] { return joined_path(components.first(i + 1)); };
        UniqueFd next;
        struct ::stat st {};
        for (int tries = 1;; ++tries) {
            next = UniqueFd(retry_stale(at, name.c_str(),
                                        [&] { return ::openat(at, name.c_str(), folder_flags(last && readable)); }));
            if (!next) {
                return resolve_error(errno, so_far());
            }
            // O_DIRECTORY | O_NOFOLLOW already refused a symlink; the fstat
            // makes the folder check explicit and is where another file
            // system shows (RESOLVE_NO_XDEV's part).
            if (::fstat(next.get(), &st) == 0) {
                break;
            }
            // On a distributed file system the folder just opened can be gone
            // with its handle, replaced through another machine (as the file
            // in Library::open_for_read): its name holds the new one.
            const int error = errno;
            if (!handle_gone(error) || tries == kStaleLookupTries) {
                return resolve_error(error, so_far());
            }
            refresh_name(at, name.c_str());
        }
        if (!S_ISDIR(st.st_mode)) {
            return resolve_error(ENOTDIR, so_far());
        }
        if (!mount_.holds(next.get(), "", st)) {
            return resolve_error(EXDEV, so_far());
        }
        current = std::move(next);
    }
    return current;
}

} // namespace ferry::server
