#include "library.hpp"

#include "estale.hpp"
#include "folder_sync.hpp"
#include "log.hpp"
#include "mtime_probe.hpp"
#include "page_buffer.hpp"
#include "names.hpp"
#include "posix_io.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <span>
#include <thread>

namespace ferry::server {

namespace {

// Whether ferryd may publish into the held folder `fd` of `path`'s target:
// create and rename entries there, which needs write and search permission
// on the folder (path_resolution(7)). faccessat(2) with AT_EACCESS runs the
// kernel's own check (mode, ACL, capabilities: a root ferryd passes whatever
// the mode) for the effective IDs, the ones the publish runs with (glibc
// emulates it from the mode bits on kernels before faccessat2, 5.8). Asked
// at the put, so that a folder ferryd cannot write is refused before any
// data moves; it is an answer, not a lock: the publish can still be refused
// (a chmod meanwhile, another user's file in a sticky folder, an LSM), and
// then keeps the partial (PartialUpload::commit).
std::optional<Error> writable_folder(int fd, std::string_view path)
{
    if (retry_stale(fd, ".", [&] { return ::faccessat(fd, ".", W_OK | X_OK, AT_EACCESS); }) == 0) {
        return std::nullopt;
    }
    return file_error(errno, "ferryd may not write in folder", folder_of(path));
}

} // namespace

std::string_view folder_of(std::string_view path)
{
    const auto slash = path.rfind('/');
    return slash == std::string_view::npos ? std::string_view(".") : path.substr(0, slash);
}

std::optional<Error> check_folder_modes(const FolderModes& folder_modes, std::size_t folders)
{
    if (folder_modes.size() <= folders) {
        return std::nullopt;
    }
    const auto counted = [](std::size_t count, const char* one, const char* many) {
        return std::to_string(count) + " " + (count == 1 ? one : many);
    };
    return Error{ErrorCode::bad_request, "field \"folder_modes\" has " +
                                             counted(folder_modes.size(), "entry", "entries") + ", but the path has " +
                                             counted(folders, "folder", "folders")};
}

namespace {

// What a request for a regular file met instead, said after the code's
// text, so that a client can tell the way on (get -r for a folder; none
// for a link, which is never followed).
Error not_regular(std::string_view path, mode_t mode)
{
    const char* what = S_ISDIR(mode)                    ? ": a folder"
                       : S_ISLNK(mode)                  ? ": a symbolic link (never followed)"
                       : S_ISFIFO(mode)                 ? ": a FIFO"
                       : S_ISSOCK(mode)                 ? ": a socket"
                       : S_ISCHR(mode) || S_ISBLK(mode) ? ": a device"
                                                        : "";
    return Error{ErrorCode::not_regular_file, quoted(path) + " is not a regular file" + what};
}

} // namespace

Error file_error(int errno_value, std::string_view what, std::string_view name)
{
    std::string message = std::string(what) + " " + quoted(name) + ": " + std::strerror(errno_value);
    switch (errno_value) {
    case ENOENT:
        return Error{ErrorCode::not_found, "no file named " + quoted(name)};
    // What stands at the name, where the errno says (a lookup's stat saw a
    // regular file, and the open met something else: attack round 70, F2).
    case ELOOP: // O_NOFOLLOW at a symbolic link, open(2)
        return not_regular(name, S_IFLNK);
    case ENXIO: // a socket, a FIFO without a reader, a device without its driver: open(2)
        return Error{ErrorCode::not_regular_file, quoted(name) + " is not a regular file: a socket, FIFO or device"};
    case EISDIR: // also a publish's "anything but a regular file stands there" (Library::publish_entry)
    case ENOTDIR:
        return Error{ErrorCode::not_regular_file, quoted(name) + " is not a regular file"};
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return Error{ErrorCode::no_space, std::move(message)};
    case EACCES:
    case EPERM:
    case EBUSY:
        // The file system refuses ferryd's user (the folder's mode or ACL,
        // a sticky folder, an immutable file), or the entry is a mount
        // point (EBUSY: a file bind-mounted there cannot be unlinked or
        // renamed, rename(2), unlink(2)): no retry changes that until
        // someone changes the permissions or unmounts it, so it is a
        // refusal, not a passing fault (PROTOCOL.md 6).
        return Error{ErrorCode::forbidden, std::move(message)};
    default:
        return Error{ErrorCode::io_error, std::move(message)};
    }
}

FileInfo file_info(std::string name, const struct ::stat& st)
{
    FileInfo info{std::move(name), static_cast<std::uint64_t>(st.st_size), static_cast<std::int64_t>(st.st_mtime)};
    // The permission bits only: what a version-2 peer may carry over to
    // its copy (the session drops them for version 1).
    info.mode = static_cast<std::uint32_t>(st.st_mode & 0777);
    // A regular file carries no type: a version-1 reply stays as it was;
    // the session marks files for version-2 connections.
    if (S_ISDIR(st.st_mode)) {
        // A folder's size says nothing useful (and differs by file system).
        info.type = EntryType::folder;
        info.size = 0;
    }
    return info;
}

std::optional<Error> sync_folder(int fd, std::string_view name, FolderFd kind)
{
    // Shared with every other thread syncing that folder now (group commit).
    return FolderSyncs::process().sync(fd, name, kind);
}

OpenFile::~OpenFile()
{
    ::close(fd_);
}

Result<std::unique_ptr<Library>> Library::open(const std::string& path, ResolveMode mode, bool read_only)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct ::stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0) {
        const int saved = errno;
        if (fd >= 0) {
            ::close(fd);
        }
        return Error{ErrorCode::io_error, "cannot open folder " + quoted(path) + ": " + std::strerror(saved)};
    }
    const mode_t mask = ::umask(0);
    ::umask(mask);
    std::unique_ptr<Library> library(new Library(fd, st.st_dev, st.st_ino, mode, path, mask));
    std::array<std::int64_t, kMtimeProbes.size()> held{};
    if (sys::probe_held_mtimes(fd, kMtimeProbes, held, /*named_fallback=*/!read_only) == 0) {
        library->mtime_limits_ = mtime_limits_from(held);
    }
    return library;
}

Result<Library::Located> Library::locate(std::string_view path, std::string_view doing, bool readable) const
{
    if (path.empty()) {
        return Error{ErrorCode::invalid_name, "the root cannot be " + std::string(doing)};
    }
    if (auto refused = check_path(path)) {
        return *refused;
    }
    const auto components = path_components(path);
    if (components.size() == 1) {
        // In the root: its own descriptor, no lookup (the common case of a
        // flat folder, and version 1's only one).
        return Located{UniqueFd(), root_fd_, std::string(components.front())};
    }
    auto parent = resolver_.open_folder(std::span(components).first(components.size() - 1), readable);
    if (!parent) {
        return parent.error();
    }
    const int fd = parent->get();
    return Located{std::move(parent.value()), fd, std::string(components.back())};
}

int Library::stat_located(const Located& located, struct ::stat& st)
{
    return retry_stale(located.fd, located.leaf.c_str(),
                       [&] { return ::fstatat(located.fd, located.leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW); });
}

int Library::stat_located(const Located& located, struct ::stat& st, std::optional<std::uint64_t>& mount_id)
{
    return retry_stale(located.fd, located.leaf.c_str(),
                       [&] { return sys::stat_with_mount(located.fd, located.leaf.c_str(), st, mount_id); });
}

namespace {

// The errno a *_entry-style caller sees for a path that did not resolve.
int errno_of(const Error& error)
{
    switch (error.code) {
    case ErrorCode::not_found:
        return ENOENT;
    case ErrorCode::not_a_folder:
        return ENOTDIR;
    case ErrorCode::forbidden:
        return EXDEV;
    case ErrorCode::invalid_name:
        return EINVAL;
    default:
        return EIO;
    }
}

} // namespace

int Library::stat_path(std::string_view path, struct ::stat& st) const
{
    auto located = locate(path, "stat");
    if (!located) {
        errno = errno_of(located.error());
        return -1;
    }
    return stat_located(*located, st);
}

int Library::Destination::stat(struct ::stat& st) const
{
    return retry_stale(fd_, leaf_.c_str(), [&] { return ::fstatat(fd_, leaf_.c_str(), &st, AT_SYMLINK_NOFOLLOW); });
}

gid_t Library::Destination::new_file_group(gid_t process_group) const
{
    struct ::stat folder {};
    if (::fstat(fd_, &folder) != 0 || (folder.st_mode & S_ISGID) == 0) {
        return process_group;
    }
    return folder.st_gid;
}

void Library::Destination::refresh() const
{
    refresh_name(fd_, leaf_.c_str());
}

int Library::Destination::open(int flags) const
{
    return retry_stale(fd_, leaf_.c_str(), [&] {
        return ::openat(fd_, leaf_.c_str(), flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    });
}

int Library::Destination::read_access_acl(sys::AccessAcl& acl) const
{
    const int result = retry_stale(fd_, leaf_.c_str(), [&] {
        const int error = sys::read_access_acl(fd_, leaf_, acl);
        errno = error;
        return error == 0 ? 0 : -1;
    });
    return result == 0 ? 0 : errno;
}

int Library::Destination::read_inherited_acl(mode_t create_mode, sys::InheritedAcl& acl) const
{
    const int result = retry_stale(fd_, ".", [&] {
        const int error = sys::read_inherited_acl(fd_, create_mode, acl);
        errno = error;
        return error == 0 ? 0 : -1;
    });
    return result == 0 ? 0 : errno;
}

Result<Library::Destination> Library::publish_destination(std::string_view path) const
{
    auto located = locate(path, "replaced", true);
    if (!located) {
        return located.error();
    }
    return Destination(std::move(located->opened), located->fd, std::move(located->leaf));
}

int Library::publish_entry(const std::string& partial, const Destination& destination, std::string_view path,
                           const std::function<void()>& before_rename, const std::function<void()>& after_rename,
                           bool replace, std::optional<PendingFolderSync>* deferred) const
{
    if (partial.empty() || partial.find('/') != std::string::npos || partial == "." || partial == "..") {
        errno = EINVAL;
        return -1;
    }
    // An upload replaces a regular file, never a link, FIFO, socket or
    // device that took the name while it ran (rename(2) would replace any
    // of them); a folder there fails the rename itself (EISDIR), and so is
    // reported the same way. Checked just before the rename (the commit's
    // fsync lies between the destination's lookup and here): what appears
    // in between is only unlinked by it, never followed or written.
    struct ::stat target {};
    if (destination.stat(target) == 0 && !S_ISREG(target.st_mode)) {
        errno = EISDIR;
        return -1;
    }
    // Once what stands at the name is known to be replaceable: the commit's
    // record of the publish is written only for a rename that may happen.
    if (before_rename) {
        before_rename();
    }
    // Same file system as the root: the resolver refused any other.
    const int renamed = replace ? ::renameat(root_fd_, partial.c_str(), destination.fd_, destination.leaf_.c_str())
                                : sys::rename_no_replace(root_fd_, partial.c_str(), destination.fd_,
                                                         destination.leaf_.c_str());
    if (renamed != 0) {
        return -1;
    }
    if (after_rename) {
        after_rename();
    }
    // The new name is what the commit reply vouches for: its folder is
    // synced (the root too when it is the folder). The old name's removal
    // from the root needs no fsync of its own. The journalling file systems
    // (ext4, XFS, btrfs) log a rename as one transaction, so the new name
    // never survives a crash without the removal; and where it could, the
    // leftover is a hidden second link to the published file, which a
    // put of that token drops by name (PartialUpload checks st_nlink) and
    // the expiry sweep leaves alone (it removes only files of one link).
    // A deferred commit leaves it to the connection's next sync request.
    if (deferred != nullptr) {
        *deferred = FolderSyncs::process().defer(destination.fd_, folder_of(path));
        if (*deferred) {
            return 0;
        }
    }
    if (sync_folder(destination.fd_, path, FolderFd::readable)) {
        errno = EIO;
        return -1;
    }
    return 0;
}

std::optional<Error> Library::check_published_at(const Destination& destination, std::string_view path) const
{
    return check_held_folder(destination.fd_, path, quoted(path) + " was published into it");
}

std::optional<Error> Library::check_held_folder(int held, std::string_view path, std::string_view done,
                                                std::string_view outcome) const
{
    const auto components = path_components(path);
    const std::string folder =
        components.size() > 1 ? joined_path(std::span(components).first(components.size() - 1)) : std::string();
    if (auto gone = check_root()) {
        // The outcome of a folder moved away does not fit the root's: only
        // the default (what was made stays in the root moved away) does.
        gone->message +=
            "; " + std::string(done) + " before this was found" +
            (outcome.empty() ? ": it stays there, in the folder moved away, not in any folder served now" : "");
        return gone;
    }
    if (components.size() <= 1) {
        // In the root itself, which check_root just found in place.
        return std::nullopt;
    }
    auto now = resolver_.open_folder(std::span(components).first(components.size() - 1), false);
    struct ::stat held_st {};
    struct ::stat now_st {};
    if (now && ::fstat(now->get(), &now_st) == 0 && ::fstat(held, &held_st) == 0 && now_st.st_dev == held_st.st_dev &&
        now_st.st_ino == held_st.st_ino) {
        return std::nullopt;
    }
    if (!now && now.error().code == ErrorCode::io_error) {
        // Not found moved, only not confirmed: say what happened, and that
        // its place is unknown.
        return Error{ErrorCode::io_error, "the folder " + quoted(folder) +
                                              " cannot be looked up again to confirm that it is still there after " +
                                              std::string(done) + ": " + now.error().message};
    }
    return Error{ErrorCode::file_changed,
                 "the folder " + quoted(folder) + " was moved away, removed or replaced while " + std::string(done) +
                     ": " +
                     (outcome.empty() ? "that stands in the folder moved away, wherever it is now, not at " +
                                            quoted(path) + "; do it again to have it at " + quoted(path)
                                      : std::string(outcome))};
}

Library::~Library()
{
    ::close(root_fd_);
}

std::optional<Error> Library::check_root() const
{
    struct ::stat named {};
    std::string why;
    if (::stat(path_.c_str(), &named) != 0) {
        why = errno == ENOENT ? std::string("it was deleted or moved away")
                              : std::string("cannot stat it: ") + std::strerror(errno);
    } else if (!S_ISDIR(named.st_mode)) {
        why = "it is no longer a folder";
    } else if (named.st_dev != root_device_ || named.st_ino != root_inode_) {
        why = "it was replaced by another folder; restart ferryd to serve the new one";
    }
    if (why.empty()) {
        if (root_missing_.exchange(false)) {
            log_event("root_available", {{"root", path_}});
        }
        return std::nullopt;
    }
    Error error{ErrorCode::root_unavailable, "the served folder " + quoted(path_) + " is unavailable: " + why};
    if (!root_missing_.exchange(true)) {
        log_event("root_unavailable", {{"root", path_}, {"message", error.message}});
    }
    return error;
}

Result<std::unique_ptr<DirectoryReader>> Library::open_listing(std::string_view path, ListingOptions options) const
{
    if (auto gone = check_root()) {
        return *gone;
    }
    if (!path.empty()) {
        if (auto refused = check_path(path)) {
            return *refused;
        }
    }
    const auto components = path.empty() ? std::vector<std::string_view>{} : path_components(path);
    // A fresh descriptor per listing: readdir's position lives in it, and
    // several worker threads may list at once.
    auto folder = resolver_.open_folder(components, true);
    if (!folder) {
        return folder.error();
    }
    const int dir_fd = ::dup(folder->get());
    DIR* dir = dir_fd < 0 ? nullptr : ::fdopendir(dir_fd);
    if (dir == nullptr) {
        const int saved = errno;
        if (dir_fd >= 0) {
            ::close(dir_fd);
        }
        return file_error(saved, "cannot read", path.empty() ? "." : path);
    }
    if (options.recursive) {
        options.folders = true;
    }
    // A folder moved out of the tree while it is read must not have its
    // entries sent (PROTOCOL.md 5.1): each is asked whether it still lies
    // at its path once read, as a get's or stat's folder is.
    auto in_place = [this, listed = std::string(path)](dev_t device, ino_t inode,
                                                       std::string_view relative) -> std::optional<Error> {
        const std::string folder = relative.empty() ? listed
                                   : listed.empty() ? std::string(relative)
                                                    : listed + "/" + std::string(relative);
        if (folder_still_at(device, inode, folder)) {
            return std::nullopt;
        }
        return Error{ErrorCode::file_changed, "the folder " + quoted(folder) +
                                                  " was moved, replaced or removed while it was listed; list it again"};
    };
    return std::make_unique<DirectoryReader>(dir, options, mount_, components.size(),
                                             path.empty() ? 0 : path.size() + 1, std::move(in_place));
}

DirectoryReader::DirectoryReader(DIR* dir, ListingOptions options, RootMount mount, std::size_t depth,
                                 std::size_t base_bytes, InPlace in_place)
    : options_(options), mount_(mount), depth_(depth), base_bytes_(base_bytes), in_place_(std::move(in_place))
{
    struct ::stat st {};
    // A failed fstat leaves 0 and 0, which no folder's path leads to: the
    // listing then fails as moved rather than going on unchecked.
    (void)::fstat(::dirfd(dir), &st);
    levels_.push_back(Level{dir, "", false, 0, st.st_dev, st.st_ino});
}

DirectoryReader::~DirectoryReader()
{
    for (const Level& level : levels_) {
        ::closedir(level.dir);
    }
}

std::size_t listed_size(const FileInfo& file)
{
    // {"mtime":…,"name":"…","size":…,"type":"folder"}, and a comma: the
    // numbers at their longest; of a valid name only '"' is escaped (control
    // characters and '\\' are invalid).
    constexpr std::size_t kFixed = 33 + 20 + 20 + 16;
    return kFixed + file.name.size() + static_cast<std::size_t>(std::count(file.name.begin(), file.name.end(), '"'));
}

void DirectoryReader::add_holding_unlisted(std::string relative, ListReply& page, std::size_t& bytes)
{
    if (!options_.folders) {
        return; // version 1 lists no folder, and has no such field
    }
    const std::size_t size = relative.size() + 4; // quotes, comma, a '"' escaped at worst once
    bytes += size;
    bytes_read_ += size;
    page.holding_unlisted.push_back(std::move(relative));
}

void DirectoryReader::add_unreadable(const std::string& relative, int error, ListReply& page, std::size_t& bytes)
{
    if (!options_.folders || error == ENOENT || error == ENOTDIR || error == ELOOP || error == EXDEV) {
        return; // gone, or no longer a folder of this file system since it was read: nothing unread
    }
    const ErrorCode code = error == EACCES || error == EPERM ? ErrorCode::forbidden : ErrorCode::io_error;
    const std::size_t size = relative.size() + 40; // {"code":"forbidden","path":"…"}, a comma, a '"' escaped
    bytes += size;
    bytes_read_ += size;
    page.unreadable_folders.push_back(UnreadableFolder{relative, code});
}

int DirectoryReader::enter(const std::string& name, const std::string& relative)
{
    // Relative to the descriptor the entry was read from, never followed:
    // swapped for a symlink since it was read, it is simply not entered.
    const int fd = retry_stale(::dirfd(levels_.back().dir), name.c_str(), [&] {
        return ::openat(::dirfd(levels_.back().dir), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    });
    if (fd < 0) {
        return errno;
    }
    // Its stat and its mount in one statx, of the descriptor itself.
    struct ::stat st {};
    std::optional<std::uint64_t> mount_id;
    int error = 0;
    if (sys::stat_with_mount(fd, "", st, mount_id) != 0) {
        error = errno;
    } else if (!S_ISDIR(st.st_mode)) {
        error = ENOTDIR;
    } else if (!mount_.holds(st, mount_id)) {
        error = EXDEV; // mounted on since it was read: another mount is not served
    }
    if (error != 0) {
        ::close(fd);
        return error;
    }
    DIR* dir = ::fdopendir(fd);
    if (dir == nullptr) {
        error = errno;
        ::close(fd);
        return error;
    }
    levels_.push_back(Level{dir, relative + "/", false, 0, st.st_dev, st.st_ino});
    return 0;
}

Result<bool> DirectoryReader::read_page(std::size_t page_bytes, ListReply& page)
{
    std::size_t bytes = 0;
    while (bytes < page_bytes) {
        if (levels_.empty()) {
            return true;
        }
        DIR* dir = levels_.back().dir;
        errno = 0;
        const dirent* entry = ::readdir(dir);
        if (entry == nullptr) {
            if (errno != 0) {
                if (!options_.folders) {
                    // Version 1 has no way to say which folder: the listing fails.
                    return file_error(errno, "cannot read", levels_.back().prefix.empty() ? "." : levels_.back().prefix);
                }
                // A read that failed part way (EIO, ESTALE on a network file
                // system) ends this folder's reading, not the listing's: what
                // was read of it stands, and it is named as not read in full,
                // as a folder with an entry that could not be stat'ed is.
                levels_.back().unlisted = true;
                if (levels_.back().unread_errno == 0) {
                    levels_.back().unread_errno = errno;
                }
            }
            std::string relative = std::move(levels_.back().prefix);
            if (!relative.empty()) {
                relative.pop_back(); // its '/'
            }
            if (auto moved = check_in_place(levels_.back(), relative)) {
                return *moved;
            }
            if (levels_.back().unread_errno != 0) {
                add_unreadable(relative, levels_.back().unread_errno, page, bytes);
            }
            if (levels_.back().unlisted) {
                add_holding_unlisted(std::move(relative), page, bytes);
            }
            ::closedir(dir);
            levels_.pop_back();
            continue;
        }
        const std::string_view name = entry->d_name;
        if (name == "." || name == "..") {
            continue;
        }
        // What a recursive delete would leave in place (PROTOCOL.md 4.11),
        // so that a client can tell which folders it would keep.
        bool& unlisted = levels_.back().unlisted;
        if (name.empty() || name.front() == '.') {
            unlisted = true;
            continue;
        }
        const bool maybe_folder = options_.folders && (entry->d_type == DT_DIR || entry->d_type == DT_UNKNOWN);
        if (entry->d_type != DT_REG && entry->d_type != DT_UNKNOWN && !maybe_folder) {
            unlisted = true;
            continue;
        }
        // The stat and the mount of one entry in one call: a file can be
        // bind-mounted over a name too, and this is every listed entry's.
        struct ::stat st {};
        std::optional<std::uint64_t> mount_id;
        if (retry_stale(::dirfd(dir), entry->d_name,
                        [&] { return sys::stat_with_mount(::dirfd(dir), entry->d_name, st, mount_id); }) != 0) {
            if (errno != ENOENT) { // gone meanwhile: nothing there
                // Whatever it was (a folder of thousands of files, say) is
                // unknown: the folder was not read in full.
                unlisted = true;
                levels_.back().unread_errno = errno;
            }
            continue;
        }
        const bool folder = S_ISDIR(st.st_mode);
        if (!S_ISREG(st.st_mode) && !(folder && options_.folders)) {
            unlisted = true;
            continue;
        }
        if (!mount_.holds(st, mount_id)) {
            unlisted = true;
            continue; // a mount point (a folder, or a file bound over a name): another mount is not served
        }
        if (check_file_name(name)) {
            unlisted = true;
            ++page.skipped_invalid_names;
            continue;
        }
        std::string relative = levels_.back().prefix + std::string(name);
        // Only what can be asked for by its path is listed.
        if (depth_ + levels_.size() > kMaxPathDepth || base_bytes_ + relative.size() > kMaxPathBytes) {
            unlisted = true;
            ++page.skipped_too_deep;
            continue;
        }
        page.files.push_back(file_info(relative, st));
        const std::size_t size = listed_size(page.files.back());
        bytes += size;
        bytes_read_ += size;
        if (folder && options_.recursive) {
            if (const int error = enter(std::string(name), relative); error != 0) {
                add_unreadable(relative, error, page, bytes);
                add_holding_unlisted(std::move(relative), page, bytes); // what it holds is unknown
            }
        }
    }
    // The deepest folder still open answers for those above it too: its
    // path is looked up from the root through theirs, so one of them moved
    // away leaves it elsewhere. (Asking each level cost the component walk
    // depth squared per page: 3.9 times the CPU of a 63-level listing.)
    if (!levels_.empty()) {
        const std::string_view prefix = levels_.back().prefix;
        if (auto moved = check_in_place(levels_.back(), prefix.substr(0, prefix.empty() ? 0 : prefix.size() - 1))) {
            return *moved;
        }
    }
    return false;
}

std::optional<Error> DirectoryReader::check_in_place(const Level& level, std::string_view relative) const
{
    return in_place_ ? in_place_(level.device, level.inode, relative) : std::nullopt;
}

Result<ListReply> Library::list(std::string_view path, ListingOptions options) const
{
    auto reader = open_listing(path, options);
    if (!reader) {
        return reader.error();
    }
    ListReply reply;
    while (true) {
        auto ended = reader.value()->read_page(std::size_t{1} << 20, reply);
        if (!ended) {
            return ended.error();
        }
        if (ended.value()) {
            break;
        }
    }
    std::sort(reply.files.begin(), reply.files.end(),
              [](const FileInfo& a, const FileInfo& b) { return a.name < b.name; });
    return reply;
}

Result<FileInfo> Library::stat(std::string_view path) const
{
    if (path.empty()) {
        return *check_path(path); // the root is no regular file
    }
    auto info = stat_entry_or_folder(path);
    if (info && info->type == EntryType::folder) {
        return not_regular(path, S_IFDIR);
    }
    return info;
}

bool Library::still_at_path(const Located& located, std::string_view path) const
{
    if (located.fd == root_fd_) {
        return true; // a name in the root, which the request checked
    }
    return folder_still_at(located.fd, path.substr(0, path.rfind('/')));
}

bool Library::folder_still_at(int held, std::string_view folder) const
{
    if (folder.empty()) {
        return true;
    }
    struct ::stat held_st {};
    return ::fstat(held, &held_st) == 0 && folder_still_at(held_st.st_dev, held_st.st_ino, folder);
}

bool Library::folder_still_at(dev_t device, ino_t inode, std::string_view folder) const
{
    if (folder.empty()) {
        return true;
    }
    auto now = resolver_.open_folder(path_components(folder), false);
    struct ::stat now_st {};
    return now && ::fstat(now->get(), &now_st) == 0 && now_st.st_dev == device && now_st.st_ino == inode;
}

namespace {

Error moved_each_time(std::string_view path, int tries)
{
    return Error{ErrorCode::file_changed, "the folder holding " + quoted(path) +
                                              " was moved or replaced each time it was looked up (" +
                                              std::to_string(tries) + " tries); try again"};
}

} // namespace

Result<FileInfo> Library::stat_entry_or_folder(std::string_view path) const
{
    if (auto refused = check_path(path); refused && !path.empty()) {
        return *refused;
    }
    if (auto gone = check_root()) {
        return *gone;
    }
    if (path.empty()) {
        return describe_root();
    }
    // A folder on the path moved or replaced meanwhile (moved out of the
    // tree; or moved aside, a new one moved in and the old one removed, on
    // GlusterFS through another machine): what the name in the folder held
    // answers says nothing of the path, and may describe a file outside
    // the tree; so the path is looked up again, as a get's open does.
    for (int tries = 1;; ++tries) {
        auto located = locate(path, "stat");
        if (!located) {
            return located.error();
        }
        auto described = describe(*located, path);
        if (still_at_path(*located, path)) {
            return described;
        }
        if (tries >= kStaleLookupTries) {
            return moved_each_time(path, tries);
        }
    }
}

Result<FileInfo> Library::describe_root() const
{
    struct ::stat st {};
    if (::fstat(root_fd_, &st) != 0) {
        return file_error(errno, "cannot stat", "the root");
    }
    return file_info("", st);
}

Result<FileInfo> Library::describe(const Located& located, std::string_view path) const
{
    // The entry's attributes and its mount from one statx: a second look
    // by name, for the mount, could meet another entry (a mount made or
    // gone in between) and let the first one's attributes through, a
    // mount's root's or a bind-mounted file's (attack round 72, F2).
    struct ::stat st {};
    std::optional<std::uint64_t> mount_id;
    if (stat_located(located, st, mount_id) != 0) {
        return file_error(errno, "cannot stat", path);
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
        return not_regular(path, st.st_mode);
    }
    if (!mount_.holds(st, mount_id)) { // a folder mounted there, or a file bind-mounted over the name
        return Error{ErrorCode::forbidden, quoted(path) + " is on another file system"};
    }
    return file_info(std::string(path), st);
}

Result<std::unique_ptr<OpenFile>> Library::open_for_read(std::string_view path) const
{
    auto opened = open_for_read(path, WholeRead{});
    if (!opened) {
        return opened.error();
    }
    return std::move(opened.value().file);
}

Result<Library::OpenedForRead> Library::open_for_read(std::string_view path, WholeRead whole) const
{
    if (auto refused = check_path(path)) {
        return *refused;
    }
    if (auto gone = check_root()) {
        return *gone;
    }
    // Each try looks the whole path up again. On a local file system the
    // first one ends it. On GlusterFS a file or folder on the path may be
    // renamed over through another machine while we look, and a step then
    // fails although the path exists (measured on test/scaleout's volume,
    // a name renamed over without pause: 3% of opens, md-cache off, find
    // the opened file gone at the fstat after the open, with ENOENT or
    // ESTALE; with md-cache on, a get of dir/x while dir is replaced found
    // dir's old handle stale in 18% of gets after estale.hpp's tries).
    // Past kStaleLookupTries, a name still stale is waited for a little
    // (look_again): GlusterFS's md-cache may answer with the old
    // handle until its timeout (1 s by default) whatever the folder's read.
    const auto started = std::chrono::steady_clock::now();
    // Whether a try that failed with `error` (0: it found a file, but in a
    // folder no longer at its path) is followed by another.
    const auto look_again = [&](int tries, int error) {
        if (tries < kStaleLookupTries) {
            return true;
        }
        if (error != ESTALE || std::chrono::steady_clock::now() - started > kStaleWaitLimit) {
            return false;
        }
        std::this_thread::sleep_for(kStaleWaitStep);
        return true;
    };
    for (int tries = 1;; ++tries) {
        auto located = locate(path, "read");
        if (!located) {
            return located.error();
        }
        // What the folder held answers stands only while that folder still
        // lies at its path: moved out of the tree or replaced meanwhile
        // (locally ENOENT for a name in it; GlusterFS, a lookup in a folder
        // removed through the other mount, with ENOENT, ESTALE or at times
        // EIO: seen under CI's load in test 9c of test/scaleout), it may
        // hold a file that is not the path's, or none, and the path is
        // looked up again.
        LookedUp looked = look_up_for_read(*located, path);
        const auto* failed = std::get_if<LookupFailure>(&looked);
        // A small file read first, and found by the check after the read at
        // its path from the root (its name's mount included: attack round
        // 86, F1), needs no separate look at its folder. (Before Linux 5.8,
        // without mount ids, a file bind-mounted over a name of the tree
        // from the root's own file system passes for one of it either way:
        // a look at the folder would find it on the next try.)
        if (auto* opened = std::get_if<Result<std::unique_ptr<OpenFile>>>(&looked); opened && *opened) {
            if (auto bytes = read_whole_in_place(*opened->value(), whole)) {
                return OpenedForRead{std::move(opened->value()), std::move(*bytes)};
            }
        }
        if (!still_at_path(*located, path)) {
            if (!look_again(tries, failed ? failed->error : 0)) {
                return moved_each_time(path, tries);
            }
            continue;
        }
        if (!failed) {
            auto& opened = std::get<Result<std::unique_ptr<OpenFile>>>(looked);
            if (!opened) {
                return opened.error();
            }
            return OpenedForRead{std::move(opened.value()), {}};
        }
        const int error = failed->error;
        if (failed->step == LookupFailure::Step::stat_of_opened) {
            // On a local file system an open file can always be stat'ed;
            // here the file opened is gone with its handle, and the name
            // holds a new one. Past the tries that is no stale handle to
            // wait for: the name is replaced each time.
            if (!handle_gone(error)) {
                return file_error(error, "cannot stat", path);
            }
            if (tries >= kStaleLookupTries) {
                return Error{ErrorCode::io_error, quoted(path) + " was replaced each time it was opened (" +
                                                      std::to_string(tries) + " tries); try again"};
            }
            refresh_name(located->fd, located->leaf.c_str());
            continue;
        }
        // Only a stale handle is looked up again (estale.hpp's tries were
        // not enough); any other failure is the answer.
        if (error != ESTALE || !look_again(tries, error)) {
            return file_error(error, failed->step == LookupFailure::Step::open ? "cannot open" : "cannot stat", path);
        }
    }
}

std::optional<std::string> Library::read_whole_in_place(const OpenFile& file, WholeRead whole) const
{
    const std::uint64_t size = file.info().size;
    if (!whole.takes(size)) {
        return std::nullopt;
    }
    std::string bytes(whole.room + static_cast<std::size_t>(size), '\0');
    if (file.read_at(bytes.data() + whole.room, static_cast<std::size_t>(size), 0)) {
        return std::nullopt;
    }
    // The check looks the path up again, from the root, and finds this very
    // file at its name with the size and times it was opened with: so the
    // bytes read are one version of a file in the tree, whatever its folder
    // did before (moved out and back, say). Anything else is left to
    // open_for_read's own look at the folder, as if nothing was read.
    auto change = change_since_opened(file);
    if (!change || !change->empty()) {
        return std::nullopt;
    }
    return bytes;
}

Library::LookedUp Library::look_up_for_read(const Located& located, std::string_view path) const
{
    const int parent = located.fd;
    const char* leaf = located.leaf.c_str();
    // A stat first, so that a FIFO or device is refused without being opened.
    struct ::stat st {};
    if (stat_located(located, st) != 0) {
        return LookupFailure{errno, LookupFailure::Step::stat};
    }
    if (!S_ISREG(st.st_mode)) {
        return not_regular(path, st.st_mode);
    }
    const int fd = retry_stale(parent, leaf, [&] {
        return ::openat(parent, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    });
    if (fd < 0) {
        return LookupFailure{errno, LookupFailure::Step::open};
    }
    // The entry may have been swapped between stat and open: trust only the
    // descriptor's stat, which one statx gives with the mount it is on.
    std::optional<std::uint64_t> mount_id;
    if (sys::stat_with_mount(fd, "", st, mount_id) != 0) {
        const int error = errno;
        ::close(fd);
        return LookupFailure{error, LookupFailure::Step::stat_of_opened};
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        return not_regular(path, st.st_mode);
    }
    if (!mount_.holds(st, mount_id)) { // a file bind-mounted over the name
        ::close(fd);
        return Error{ErrorCode::forbidden, quoted(path) + " is on another file system"};
    }
    return std::make_unique<OpenFile>(fd, file_info(std::string(path), st), FileIdentity::of(st));
}

Result<FileDigest> Library::digest(std::string_view path, HashKind hash) const
{
    // A file replaced while it is hashed (an upload published over it, here
    // or through another machine) is hashed again: the name then holds a
    // whole new file, which one more try reads. A file that changed during
    // both tries (one still being written) is file_changed (PROTOCOL.md 4.9).
    constexpr int kTries = 2;
    for (int tries = 1;; ++tries) {
        auto opened = open_for_read(path);
        if (!opened) {
            return opened.error();
        }
        const OpenFile& file = *opened.value();
        if (auto cached = digests_.find(file.identity(), hash)) {
            return FileDigest{file.info(), std::move(*cached), hash};
        }
        TransferHash hasher(hash);
        auto what = change_while_hashed(file, hasher);
        if (!what) {
            return what.error();
        }
        if (what->empty()) {
            std::string digest = hasher.hex_digest();
            digests_.remember(file.identity(), hash, digest);
            return FileDigest{file.info(), std::move(digest), hash};
        }
        if (tries == kTries) {
            // `what` is the last try's change ("grew from ...", "is no longer
            // at its path: ..."): the count goes after it, apart (attack
            // round 71, F3: "... renamed while it was hashed, 2 times").
            return Error{ErrorCode::file_changed, quoted(path) + " " + what.value() + " while it was hashed (each of " +
                                                      std::to_string(kTries) + " tries); ask again once it is still"};
        }
    }
}

Result<std::string> Library::change_while_hashed(const OpenFile& file, TransferHash& hash) const
{
    // One whole read into `into`, then the check: "" when nothing moved. A
    // file cut short under the read (file_changed, read_exactly) is a
    // change like any other.
    const auto read_once = [&](TransferHash& into) -> Result<std::string> {
        auto failure = file.hash_prefix(file.info().size, into);
        if (failure && failure->code != ErrorCode::file_changed) {
            return *failure;
        }
        auto changed = change_since_opened(file);
        if (failure && changed && changed->empty()) {
            return std::string("shrank");
        }
        return changed;
    };
    auto first = read_once(hash);
    // A file changed lately is read once more, and two digests that differ
    // are a change, as a get reads such a file again before its trailer.
    if (!first || !first->empty() || !file.identity().changed_lately()) {
        return first;
    }
    TransferHash again(hash.kind());
    auto second = read_once(again);
    if (!second || !second->empty()) {
        return second;
    }
    if (again.hex_digest() != hash.hex_digest()) {
        return std::string("was rewritten (its size and times did not move)");
    }
    return std::string();
}

std::optional<Error> read_exactly(int fd, char* into, std::size_t size, std::uint64_t offset, const std::string& name)
{
    std::size_t done = 0;
    while (done < size) {
        const ssize_t got = ::pread(fd, into + done, size - done, static_cast<off_t>(offset + done));
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return file_error(errno, "cannot read", name);
        }
        if (got == 0) {
            // Cut short since its size was taken: a change, not a failing disk.
            return Error{ErrorCode::file_changed, quoted(name) + " shrank while it was being read"};
        }
        done += static_cast<std::size_t>(got);
    }
    return std::nullopt;
}

std::optional<Error> hash_prefix(int fd, std::uint64_t length, TransferHash& hash, const std::string& name)
{
    return hash_range(fd, 0, length, hash, name);
}

std::optional<Error> hash_range(int fd, std::uint64_t offset, std::uint64_t length, TransferHash& hash,
                                const std::string& name)
{
    // Uninitialised: every byte hashed was read first. (Zeroing a megabyte
    // per call would cost as much as a good part of reading it.)
    const auto capacity = static_cast<std::size_t>(std::min<std::uint64_t>(length, 1024 * 1024));
    const auto buffer = sys::make_page_buffer<char>(capacity); // pread copies into it
    for (std::uint64_t at = offset; at < offset + length;) {
        const auto size = static_cast<std::size_t>(std::min<std::uint64_t>(capacity, offset + length - at));
        if (auto failure = read_exactly(fd, buffer.get(), size, at, name)) {
            return failure;
        }
        hash.update(buffer.get(), size);
        at += size;
    }
    return std::nullopt;
}

std::optional<FileIdentity> OpenFile::current_identity() const
{
    struct ::stat st {};
    if (::fstat(fd_, &st) != 0) {
        return std::nullopt;
    }
    return FileIdentity::of(st);
}

std::optional<Error> Library::check_unchanged(const OpenFile& file) const
{
    auto what = change_since_opened(file);
    if (!what) {
        return what.error();
    }
    if (what->empty()) {
        return std::nullopt;
    }
    return Error{ErrorCode::file_changed, quoted(file.info().name) + " " + what.value() +
                                              " while it was being sent; the bytes sent are not one version of it"};
}

Result<std::string> Library::change_since_opened(const OpenFile& file) const
{
    const auto& name = file.info().name;
    struct ::stat st {};
    if (::fstat(file.fd(), &st) != 0) {
        return file_error(errno, "cannot stat", name);
    }
    const FileIdentity now = FileIdentity::of(st);
    const FileIdentity& then = file.identity();
    // The name first: removing or replacing it also moves the old file's
    // change time, and "replaced" says more.
    std::string what;
    struct ::stat named {};
    // The name's mount too: a stat follows a mount on the last component,
    // so a file bind-mounted over the name would show the mounted file, and
    // a file opened through a folder moved out of the tree could pass for
    // the one at its path (attack round 86, F1). The open refuses such a
    // file ("on another file system"): at the check, a mount is a change.
    std::optional<std::uint64_t> named_mount;
    auto located = locate(name, "stat");
    if (!located) {
        // The file may be as it was: its path no longer leads to it
        // (attack round 70, F2, named the file itself removed).
        what = located.error().code == ErrorCode::not_found
                   ? "is no longer at its path: a folder on it was removed or renamed"
                   : "can no longer be looked up (" + located.error().message + ")";
    } else if (stat_located(*located, named, named_mount) != 0) {
        what = "was removed or renamed";
    } else if (named.st_dev != st.st_dev || named.st_ino != st.st_ino) {
        what = "was replaced by another file";
    } else if (!mount_.holds(named, named_mount)) {
        what = "was replaced by a file mounted over its name";
    } else if (now.size < then.size) {
        what = "shrank from " + std::to_string(then.size) + " to " + std::to_string(now.size) + " bytes";
    } else if (now.size > then.size) {
        what = "grew from " + std::to_string(then.size) + " to " + std::to_string(now.size) + " bytes";
    } else if (now.modified_ns != then.modified_ns) {
        what = "was modified";
    } else if (now.changed_ns != then.changed_ns) {
        // Also moves on a write whose modification time the file's owner
        // set back, and on chmod or rename: nothing proves the bytes kept.
        what = "was changed (its change time moved)";
    }
    return what;
}

std::optional<Error> Library::check_replaceable(std::string_view path, bool parents) const
{
    return replaceable(path, parents, false);
}

std::optional<Error> Library::prepare_upload(std::string_view path, bool parents, const FolderModes& folder_modes) const
{
    return replaceable(path, parents, true, folder_modes);
}

// One lookup of the parent folder and one check of the root, whatever the
// outcome: a put of many small files does this once per file.
std::optional<Error> Library::replaceable(std::string_view path, bool parents, bool make_parents,
                                          const FolderModes& folder_modes) const
{
    if (auto refused = check_path(path)) {
        return *refused;
    }
    if (auto refused = check_folder_modes(folder_modes, path_components(path).size() - 1)) {
        return *refused;
    }
    auto located = locate(path, "replaced");
    if (!located) {
        // Missing folders on the way are created by a put with `parents`.
        if (!parents || located.error().code != ErrorCode::not_found) {
            return located.error();
        }
        if (auto gone = check_root()) {
            return *gone;
        }
        if (!make_parents) {
            return std::nullopt;
        }
        const auto folder = path.substr(0, path.rfind('/'));
        auto made = make_folder(folder, true, folder_modes);
        if (!made) {
            // Something other than a folder where one must be (a symlink
            // swapped in since the lookup above): for a put, not a folder.
            if (made.error().code == ErrorCode::exists) {
                return Error{ErrorCode::not_a_folder, quoted(folder) + " is not a folder"};
            }
            return made.error();
        }
        return std::nullopt;
    }
    if (auto gone = check_root()) {
        return *gone;
    }
    struct ::stat st {};
    std::optional<std::uint64_t> mount_id; // of the same look (describe())
    if (stat_located(*located, st, mount_id) != 0) {
        auto error = file_error(errno, "cannot stat", path);
        if (error.code == ErrorCode::not_found) {
            return writable_folder(located->fd, path);
        }
        return error;
    }
    // A folder mounted there, or a file bind-mounted over the name: the
    // publish could not replace it (EBUSY), and it is not served.
    if ((S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) && !mount_.holds(st, mount_id)) {
        return Error{ErrorCode::forbidden, quoted(path) + " is on another file system"};
    }
    if (S_ISREG(st.st_mode)) {
        return writable_folder(located->fd, path);
    }
    return not_regular(path, st.st_mode);
}

namespace {

// A name that stays in the root: one path component, not "." or "..".
bool single_entry(const std::string& name)
{
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
        errno = EINVAL;
        return false;
    }
    return true;
}

} // namespace

int Library::open_entry(const std::string& name, int flags, mode_t mode) const
{
    if (!single_entry(name)) {
        return -1;
    }
    const auto opened = [&] { return ::openat(root_fd_, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode); };
    // Only an open that creates nothing is a mere lookup, safe to repeat.
    return (flags & O_CREAT) != 0 ? opened() : retry_stale(root_fd_, name.c_str(), opened);
}

int Library::stat_entry(const std::string& name, struct ::stat& st) const
{
    if (!single_entry(name)) {
        return -1;
    }
    return retry_stale(root_fd_, name.c_str(),
                       [&] { return ::fstatat(root_fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW); });
}

int Library::unlink_entry(const std::string& name, int flags) const
{
    if (!single_entry(name)) {
        return -1;
    }
    return ::unlinkat(root_fd_, name.c_str(), flags);
}

int Library::rename_entry(const std::string& from, const std::string& to, unsigned flags) const
{
    if (!single_entry(from) || !single_entry(to)) {
        return -1;
    }
    if (flags != 0) {
        return ::renameat2(root_fd_, from.c_str(), root_fd_, to.c_str(), flags);
    }
    return ::renameat(root_fd_, from.c_str(), root_fd_, to.c_str());
}

std::vector<std::string> Library::entries_with_prefix(std::string_view prefix) const
{
    std::vector<std::string> names;
    // A fresh descriptor: readdir's position lives in it.
    const int dir_fd = ::openat(root_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        return names;
    }
    DIR* dir = ::fdopendir(dir_fd);
    if (dir == nullptr) {
        ::close(dir_fd);
        return names;
    }
    while (const dirent* entry = ::readdir(dir)) {
        const std::string_view name = entry->d_name;
        if (name.starts_with(prefix) && name != "." && name != "..") {
            names.emplace_back(name);
        }
    }
    ::closedir(dir);
    return names;
}

std::optional<Error> OpenFile::read_at(char* into, std::size_t size, std::uint64_t offset) const
{
    return read_exactly(fd_, into, size, offset, info_.name);
}

std::optional<Error> OpenFile::hash_prefix(std::uint64_t length, TransferHash& hash) const
{
    return server::hash_prefix(fd_, length, hash, info_.name);
}

std::optional<Error> OpenFile::hash_range(std::uint64_t offset, std::size_t length, TransferHash& hash) const
{
    return server::hash_range(fd_, offset, length, hash, info_.name);
}

void OpenFile::read_ahead(std::uint64_t offset, std::size_t length) const
{
    ::readahead(fd_, static_cast<off_t>(offset), length);
}

std::optional<Error> Library::sync_root() const
{
    return sync_folder(root_fd_, path_, FolderFd::readable);
}

std::optional<std::uint64_t> Library::free_space() const
{
    return sys::free_bytes(root_fd_);
}

} // namespace ferry::server
