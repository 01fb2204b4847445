// The Library's changes to the tree: mkdir, delete, rename, set_mtime. Same
// rules as library.cpp: every path checked, its parent opened by the
// PathResolver, only the last component named relative to that descriptor,
// no symlink followed, nothing on another file system touched.
#include "library.hpp"

#include "estale.hpp"
#include "hex.hpp"
#include "names.hpp"
#include "posix_io.hpp"

#include <dirent.h>
#include <openssl/rand.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <span>

namespace ferry::server {

namespace {

// Refuses a change to the entries of FOLDER (any descriptor of it, O_PATH
// too; `shown` names it) that could not be made durable: fsync(2) of a
// folder needs a descriptor of it opened for reading, and a folder ferryd's
// user may write and search but not read (a drop box, mode 0311 or 0333)
// gives none, so its sync after the change fails with the change made and
// answered as failed. Asked before the change, which is then refused with
// nothing changed, as a put there is (its folder is opened for reading at
// the start): forbidden, "cannot open folder". Its cost, an openat and a
// close, comes before an fsync of that folder.
std::optional<Error> refuse_unsyncable(int folder, std::string_view shown)
{
    const int readable = ::openat(folder, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (readable < 0) {
        return file_error(errno, "cannot open folder", shown);
    }
    ::close(readable);
    return std::nullopt;
}

// How the entry `st` at `path` differs from what a delete or a set_mtime
// expects (PROTOCOL.md 4.11, 4.13): file_changed naming the path, the
// difference and what was not done (`undone`), or nothing when it is as
// expected. A folder is compared by its type alone: its mtime changes as a
// client removes or adds the entries listed in it.
std::optional<Error> unlike_expected(const struct ::stat& st, const ExpectedEntry& expected, std::string_view path,
                                     std::string_view undone = "not deleted")
{
    const EntryType found = S_ISDIR(st.st_mode) ? EntryType::folder : EntryType::file;
    std::string differs;
    if (found != expected.type) {
        differs = "is a " + std::string(to_string(found)) + ", expected a " + std::string(to_string(expected.type));
    } else if (found == EntryType::folder) {
        return std::nullopt;
    } else if (static_cast<std::uint64_t>(st.st_size) != expected.size) {
        differs = "has " + std::to_string(st.st_size) + " bytes, expected " + std::to_string(expected.size);
    } else if (static_cast<std::int64_t>(st.st_mtime) != expected.mtime) {
        differs = "has mtime " + std::to_string(static_cast<std::int64_t>(st.st_mtime)) + ", expected " +
                  std::to_string(expected.mtime);
    } else {
        return std::nullopt;
    }
    return Error{ErrorCode::file_changed,
                 quoted(path) + " " + differs + ": not the entry expected, so " + std::string(undone)};
}

constexpr std::string_view kNotRetimed = "its time was not set";

// Whether `leaf` in `parent` is still the entry `st` described (not
// followed if a link): false once it is gone or another entry took the name.
bool still_at_name(int parent, const char* leaf, const struct ::stat& st)
{
    struct ::stat now {};
    return ::fstatat(parent, leaf, &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_ino == st.st_ino &&
           now.st_dev == st.st_dev;
}

// Whether the folder `fd` (an O_PATH descriptor will do) holds no entry.
// A folder that cannot be read counts as not empty.
bool folder_is_empty(int fd)
{
    const int list_fd = ::openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* dir = list_fd < 0 ? nullptr : ::fdopendir(list_fd);
    if (dir == nullptr) {
        if (list_fd >= 0) {
            ::close(list_fd);
        }
        return false;
    }
    bool empty = true;
    while (const dirent* entry = ::readdir(dir)) {
        const std::string_view name = entry->d_name;
        if (name != "." && name != "..") {
            empty = false;
            break;
        }
    }
    ::closedir(dir);
    return empty;
}

// The hidden name a file is renamed to before a delete with `expect` compares
// and removes it (remove_as_expected): ".ferry-removing-" and 32 hexadecimal
// digits from OpenSSL's generator (128 bits), in the file's own
// folder, so that no one else can have named an entry so. Never listed (a
// leading dot, PROTOCOL.md 5); left behind by a kill within the few
// system calls it lives, or kept when it cannot go back to its name, which
// the reply then gives (ferryd.8).
constexpr std::string_view kRemovingPrefix = ".ferry-removing-";

// Empty when the random source fails (RAND_bytes, OpenSSL's generator,
// seeded by the kernel).
std::string removing_name()
{
    std::array<unsigned char, 16> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
        return {};
    }
    return std::string(kRemovingPrefix) + to_hex(bytes);
}

// rename(2) of `from` to `to` in `dir` that never replaces an entry at `to`:
// a file by sys::rename_no_replace (renameat2 RENAME_NOREPLACE, or a link
// and an unlink where the file system lacks it); a folder, which cannot be
// linked, by renameat2, or where it is lacking, a look and a rename. 0, or
// -1 with errno.
int rename_without_replacing(int dir, const char* from, const char* to, bool folder)
{
    if (!folder) {
        return sys::rename_no_replace(dir, from, dir, to);
    }
    if (::renameat2(dir, from, dir, to, RENAME_NOREPLACE) == 0) {
        return 0;
    }
    if (!sys::lacks_rename_flags(errno)) {
        return -1;
    }
    struct ::stat taken {};
    if (::fstatat(dir, to, &taken, AT_SYMLINK_NOFOLLOW) == 0) {
        errno = EEXIST;
        return -1;
    }
    return ::renameat(dir, from, dir, to);
}

// A delete of the file `leaf` in `parent` with `expect` (PROTOCOL.md 4.11):
// whatever holds the name is first renamed to a name of its own
// (removing_name), compared there and unlinked there, so that the entry
// compared is the entry removed and an entry put at the name meanwhile (a
// replacement acknowledged to its uploader) stays. An entry that is not the
// one expected goes back to its name, never over an entry put there since:
// then it is kept under its hidden name, and the reply says where. Nothing,
// or the error (file_changed, not_regular_file, not_found, io_error...).
std::optional<Error> remove_as_expected(int parent, const char* leaf, std::string_view path,
                                        const ExpectedEntry& expect)
{
    std::string aside;
    bool moved = false;
    // EEXIST: 128 random bits met a name, which only a guess can have made.
    for (int attempt = 0; attempt < 4 && !moved; ++attempt) {
        aside = removing_name();
        if (aside.empty()) {
            return Error{ErrorCode::io_error, "cannot delete " + quoted(path) + ": no random name to set it aside"};
        }
        if (sys::rename_to_fresh_name(parent, leaf, aside.c_str()) == 0) {
            moved = true;
        } else if (errno != EEXIST) {
            break;
        }
    }
    if (!moved) {
        if (errno == ENOENT) {
            return Error{ErrorCode::not_found, "nothing named " + quoted(path)};
        }
        return file_error(errno, "cannot delete", path);
    }
    struct ::stat st {};
    std::optional<Error> refusal;
    if (::fstatat(parent, aside.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
            return std::nullopt; // removed under its hidden name by someone else: gone, as asked
        }
        // Not known what it is: back to its name, as a file (a folder
        // refuses the link of the fallback: then it is kept, and said so).
        refusal = file_error(errno, "cannot delete", path);
    } else if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        refusal = Error{ErrorCode::not_regular_file, quoted(path) + " is not a regular file or folder"};
    } else {
        refusal = unlike_expected(st, expect, path);
    }
    if (!refusal) {
        if (::unlinkat(parent, aside.c_str(), 0) == 0) {
            return std::nullopt;
        }
        refusal = file_error(errno, "cannot delete", path);
    }
    // Not the entry expected (put at the name between the look and the
    // rename), or one that cannot go: back to its name. Made durable before
    // the answer, which says the entry stays where it stands.
    const bool back = rename_without_replacing(parent, aside.c_str(), leaf, S_ISDIR(st.st_mode)) == 0;
    const int failure = errno;
    (void)sync_folder(parent, path);
    if (!back) {
        const std::string shown = path.find('/') == std::string_view::npos
                                      ? aside
                                      : std::string(path.substr(0, path.rfind('/') + 1)) + aside;
        const std::string why = failure == EEXIST || failure == ENOTEMPTY
                                    ? "its name was taken again meanwhile"
                                    : std::string("it could not be put back (") + std::strerror(failure) + ")";
        return Error{ErrorCode::file_changed, quoted(path) + " was not the entry expected, or could not go, and " +
                                                  why + ": what stood there is kept as " + quoted(shown) +
                                                  ", not deleted"};
    }
    return refusal;
}

// "1 file", "3 folders": a count in a message.
std::string counted(std::uint64_t count, const char* one, const char* many)
{
    return std::to_string(count) + " " + (count == 1 ? one : many);
}

// Where a delete, rename or set_mtime left things when the folder it acted
// in was found moved away right after (Library::check_held_folder).
std::string removed_elsewhere(std::string_view path, const Removed& removed)
{
    return "what was removed (" + counted(removed.files, "file", "files") + " and " +
           counted(removed.folders, "folder", "folders") + ") went from that folder, wherever it is now; whatever " +
           "stands at " + quoted(path) + " now was not touched";
}

// A recursive delete's `path` renamed away or replaced (by a folder, a file
// or a link) while it ran (PROTOCOL.md 4.11): file_changed, counting what
// went, which stays gone.
Error top_changed(std::string_view path, const Removed& removed)
{
    return Error{ErrorCode::file_changed, quoted(path) + " changed while it was being deleted; " +
                                              std::to_string(removed.files) + " files and " +
                                              std::to_string(removed.folders) + " folders were removed"};
}

// A set_mtime whose entry left its name right after its time was set (moved
// out of the tree, say, or removed): what the change did cannot be vouched
// for at `path` (PROTOCOL.md 4.13).
Error entry_moved_after_retime(std::string_view path)
{
    // "Covered": a mount made at the name just after hides the entry there
    // (attack round 73 met it while it mounted in a loop).
    return Error{ErrorCode::file_changed, "the time of " + quoted(path) +
                                              " was set, but the entry was moved away, removed or covered by a mount "
                                              "just after: whatever stands at " +
                                              quoted(path) + " now keeps its own"};
}

// utimensat(2) on an O_PATH descriptor `fd`: with AT_EMPTY_PATH (Linux 5.8
// and later; futimens(3) refuses O_PATH descriptors, EBADF), else through
// /proc/self/fd/FD, a link the kernel resolves to that very inode (ENOSYS
// where /proc is not procfs's: sys::proc_fd_links_are_procfs). 0, or -1
// with errno.
int set_times_of_path_fd(int fd, const struct timespec (&times)[2])
{
    if (::utimensat(fd, "", times, AT_EMPTY_PATH) == 0) {
        return 0;
    }
    if (errno != EINVAL) {
        return -1;
    }
    if (!sys::proc_fd_links_are_procfs()) {
        errno = ENOSYS; // a plain path at /proc's place could lead anywhere
        return -1;
    }
    const std::string proc = "/proc/self/fd/" + std::to_string(fd);
    return ::utimensat(AT_FDCWD, proc.c_str(), times, 0);
}

Error not_retimable(std::string_view path)
{
    return Error{ErrorCode::not_regular_file, quoted(path) + " is not a regular file or folder"};
}

} // namespace

Result<bool> Library::make_folder(std::string_view path, bool parents, const FolderModes& folder_modes) const
{
    if (path.empty()) {
        return Error{ErrorCode::invalid_name, "the root cannot be created: it exists"};
    }
    if (auto refused = check_path(path)) {
        return *refused;
    }
    if (auto refused = check_folder_modes(folder_modes, path_components(path).size())) {
        return *refused;
    }
    if (auto gone = check_root()) {
        return *gone;
    }
    const auto components = path_components(path);
    // Without parents the resolver opens the parent in one step; with them,
    // the walk below creates what is missing, one component at a time, each
    // opened O_NOFOLLOW | O_DIRECTORY relative to the one before and checked
    // to be on the root's file system, like the resolver's own walk.
    std::size_t first_missing = components.size() - 1;
    UniqueFd parent;
    if (!parents) {
        auto opened = resolver_.open_folder(std::span(components).first(first_missing), false);
        if (!opened) {
            return opened.error();
        }
        parent = std::move(opened.value());
    } else {
        first_missing = 0;
        auto opened = resolver_.open_folder({}, false);
        if (!opened) {
            return opened.error();
        }
        parent = std::move(opened.value());
    }
    bool created = false;
    // The folders that gained an entry, with the name of what they gained,
    // synced once the walk is over: the walk's steps follow one another
    // without a slow call between them, so that a move of a folder it holds
    // has only those few calls to land in (it is checked all the same).
    // Nothing is answered before every one is synced. An error's answer
    // too: a folder made before a later step failed stays, and a later
    // mkdir (or put with parents) that finds it (EEXIST) makes nothing, so
    // syncs nothing, and would answer ok for a folder a crash could still
    // take away.
    struct GainedFolders {
        std::vector<std::pair<UniqueFd, std::string>> folders;
        bool synced = false;
        GainedFolders() = default;
        GainedFolders(const GainedFolders&) = delete;
        GainedFolders& operator=(const GainedFolders&) = delete;
        ~GainedFolders()
        {
            if (!synced) {
                for (const auto& [folder, entry] : folders) {
                    (void)sync_folder(folder.get(), entry); // the error answered is the first one
                }
            }
        }
    } gained_folders;
    auto& gained = gained_folders.folders;
    for (std::size_t i = first_missing; i < components.size(); ++i) {
        const bool last = i + 1 == components.size();
        const std::string name(components[i]);
        const std::string so_far = joined_path(std::span(components).first(i + 1));
        bool made_here = false;
        // A folder made where it could not be synced would be answered as
        // failed: refused first where nothing is there yet (where something
        // is, nothing is made, and the walk may go on through it).
        if (auto refused = refuse_unsyncable(parent.get(), folder_of(so_far))) {
            struct ::stat there {};
            if (::fstatat(parent.get(), name.c_str(), &there, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT) {
                return *refused;
            }
        }
        // The folders the modes name are the last ones of the path.
        const std::size_t unnamed = components.size() - folder_modes.size();
        const auto mode =
            folder_create_mode_of(i < unnamed ? std::nullopt : std::optional<std::uint32_t>(folder_modes[i - unnamed]));
        if (::mkdirat(parent.get(), name.c_str(), static_cast<mode_t>(mode)) == 0) {
            made_here = true;
        } else if (errno != EEXIST) {
            if (errno == ENOENT) {
                return Error{ErrorCode::not_found,
                             "no folder named " + quoted(joined_path(std::span(components).first(i)))};
            }
            return file_error(errno, "cannot create folder", so_far);
        } else if (last && !parents) {
            return Error{ErrorCode::exists, quoted(so_far) + " already exists"};
        }
        if (made_here) {
            // Owed a sync from here on, whatever the walk meets next (at
            // once when no descriptor is left to keep the folder by).
            if (UniqueFd kept(::dup(parent.get())); kept) {
                gained.emplace_back(std::move(kept), so_far);
            } else if (auto error = sync_folder(parent.get(), so_far)) {
                return *error;
            }
            // `parent` was opened before the mkdirat (by the walk, or the
            // resolver): a move of it, of a folder above it or of the root
            // that landed in between made the folder in the folder moved
            // away, where `so_far` does not lead, and "ok" would name a
            // folder that is not there. Asked at once, so that a move after
            // the folder stood at its path (which makes it as if made
            // before the move) is rarely taken for one. Each folder made is
            // checked so; the next step opens it through the held
            // descriptor, and its own mkdirat's check (or the last one's
            // below) covers a move after this one.
            if (auto moved = check_held_folder(parent.get(), so_far, quoted(so_far) + " was made in it")) {
                return *moved;
            }
            created = last;
        }
        if (last && !made_here) {
            // With parents an existing folder is fine; anything else is not.
            struct ::stat st {};
            if (retry_stale(parent.get(), name.c_str(),
                            [&] { return ::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW); }) != 0) {
                return file_error(errno, "cannot stat", so_far);
            }
            if (!S_ISDIR(st.st_mode)) {
                return Error{ErrorCode::exists, quoted(so_far) + " already exists and is not a folder"};
            }
            if (!mount_.holds(parent.get(), name.c_str(), st)) {
                return Error{ErrorCode::forbidden, quoted(so_far) + " is on another file system"};
            }
            // Found where the walk's held folder was: whether that is still
            // where `path` leads (as for a folder made, above).
            if (auto moved = check_held_folder(parent.get(), so_far, quoted(so_far) + " was found to exist in it")) {
                return *moved;
            }
            break;
        }
        if (last) {
            break;
        }
        UniqueFd next(retry_stale(parent.get(), name.c_str(), [&] {
            return ::openat(parent.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }));
        struct ::stat st {};
        if (!next) {
            if (errno == ENOTDIR || errno == ELOOP) {
                return Error{ErrorCode::not_a_folder, quoted(so_far) + " is not a folder"};
            }
            return file_error(errno, "cannot open folder", so_far);
        }
        if (::fstat(next.get(), &st) != 0 || !S_ISDIR(st.st_mode)) {
            return Error{ErrorCode::not_a_folder, quoted(so_far) + " is not a folder"};
        }
        if (!mount_.holds(next.get(), "", st)) {
            return Error{ErrorCode::forbidden, quoted(so_far) + " is on another file system"};
        }
        parent = std::move(next);
    }
    for (const auto& [folder, entry] : gained) {
        if (auto error = sync_folder(folder.get(), entry)) {
            return *error; // all of them again, on the way out
        }
    }
    gained_folders.synced = true;
    return created;
}

// The first step of a recursive delete's walk whose folder is no longer
// at its name in the folder above (moved away, out of the deleted tree, or
// replaced); nothing when the whole way down is as it was walked.
std::optional<std::size_t> Library::first_moved_step(const std::vector<WalkStep>& steps)
{
    for (std::size_t index = 0; index < steps.size(); ++index) {
        struct ::stat now {};
        const WalkStep& step = steps[index];
        if (retry_stale(step.parent, step.name.c_str(),
                        [&] { return ::fstatat(step.parent, step.name.c_str(), &now, AT_SYMLINK_NOFOLLOW); }) != 0 ||
            now.st_ino != step.inode || now.st_dev != step.device) {
            return index;
        }
    }
    return std::nullopt;
}

std::optional<Error> Library::empty_folder(int fd, const std::string& relative, std::size_t depth, Removed& removed,
                                           std::string& blocker, DeleteWalk& walk) const
{
    // The names first, then the removals: unlinking while readdir runs may
    // skip entries on some file systems. One folder's names at a time.
    const int list_fd = ::openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* dir = list_fd < 0 ? nullptr : ::fdopendir(list_fd);
    if (dir == nullptr) {
        const int saved = errno;
        if (list_fd >= 0) {
            ::close(list_fd);
        }
        return file_error(saved, "cannot read", relative);
    }
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* entry = ::readdir(dir)) {
        const std::string_view name = entry->d_name;
        if (name != "." && name != "..") {
            names.emplace_back(name);
        }
    }
    const int read_failure = errno;
    ::closedir(dir);
    if (read_failure != 0) {
        return file_error(read_failure, "cannot read", relative);
    }
    bool removed_here = false;
    const auto leave = [&](const std::string& path, std::string_view why) {
        if (blocker.empty()) {
            blocker = quoted(path) + " " + std::string(why);
        }
    };
    std::optional<Error> failure;
    // Before each removal: the folders it would act in, from the deleted
    // path down to this one, are still where the walk found them, and the
    // deleted path's own folder is still where the path leads from the
    // served root (a move of a folder above it, or of the root itself,
    // carries the whole tree away). A folder moved out of the tree (to a
    // place its mover keeps) is no longer the delete's to empty, though the
    // walk holds it open. The look and the removal are two system calls,
    // as in "what a check cannot close" (PROTOCOL.md 4.11).
    const std::size_t own_step = walk.steps.size() - 1;
    const auto way_moved = [&] {
        walk.moved_step = first_moved_step(walk.steps);
        if (!walk.moved_step &&
            check_held_folder(walk.steps.front().parent, walk.path, "entries were removed from it")) {
            walk.moved_step = 0;
        }
        return walk.moved_step.has_value();
    };
    for (const std::string& name : names) {
        const std::string path = relative + "/" + name;
        if (name.front() == '.' || check_file_name(name)) {
            leave(path, "is hidden or not a valid name");
            continue;
        }
        // What no request can name, list does not show (skipped_too_deep),
        // so a delete leaves it, file or folder, as PROTOCOL.md 4.11 says.
        if (depth + 1 > kMaxPathDepth) {
            leave(path, "is deeper than " + std::to_string(kMaxPathDepth) + " path components");
            continue;
        }
        if (path.size() > kMaxPathBytes) {
            leave(path, "has a path longer than " + std::to_string(kMaxPathBytes) + " bytes");
            continue;
        }
        struct ::stat st {};
        if (retry_stale(fd, name.c_str(), [&] { return ::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW); }) != 0) {
            if (errno == ENOENT) {
                continue; // removed by someone else meanwhile
            }
            failure = file_error(errno, "cannot stat", path);
            break;
        }
        // Between the stat and the unlink (two calls: there is no removal
        // by descriptor) the name may come to hold something else: what
        // changed is left and the walk goes on (PROTOCOL.md 4.11), rather
        // than end the whole delete on that entry's errno.
        if (S_ISREG(st.st_mode)) {
            if (!mount_.holds(fd, name.c_str(), st)) {
                leave(path, "is on another file system"); // a file bind-mounted over the name
                continue;
            }
            if (way_moved()) {
                break;
            }
            if (::unlinkat(fd, name.c_str(), 0) != 0) {
                if (errno == ENOENT) {
                    continue; // removed or renamed away by someone else meanwhile
                }
                if (errno == EISDIR) {
                    leave(path, "changed while it was being deleted"); // a folder took the name
                    continue;
                }
                failure = file_error(errno, "cannot delete", path);
                break;
            }
            ++removed.files;
            removed_here = true;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            leave(path, "is not a regular file or folder");
            continue;
        }
        if (!mount_.holds(fd, name.c_str(), st)) {
            leave(path, "is on another file system");
            continue;
        }
        UniqueFd child(retry_stale(fd, name.c_str(), [&] {
            return ::openat(fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }));
        struct ::stat opened {};
        if (!child || ::fstat(child.get(), &opened) != 0 || opened.st_dev != st.st_dev || opened.st_ino != st.st_ino ||
            !mount_.holds(child.get(), "", opened)) {
            // Swapped (for a symlink, say) between the stat and the open.
            leave(path, "changed while it was being deleted");
            continue;
        }
        walk.steps.push_back(WalkStep{fd, name, st.st_dev, st.st_ino});
        auto error = empty_folder(child.get(), path, depth + 1, removed, blocker, walk);
        walk.steps.pop_back();
        if (error) {
            failure = std::move(error);
            break;
        }
        if (walk.moved_step) {
            if (*walk.moved_step <= own_step) {
                break; // this folder, or one above it, moved too: its caller says so
            }
            // That folder moved: what it holds now is its mover's.
            leave(path, "was moved or replaced while it was being deleted");
            walk.moved_step.reset();
            continue;
        }
        if (way_moved()) {
            break;
        }
        if (::unlinkat(fd, name.c_str(), AT_REMOVEDIR) != 0) {
            if (errno == ENOTEMPTY || errno == EEXIST) {
                leave(path, "is not empty"); // something appeared meanwhile
                continue;
            }
            if (errno == ENOENT) {
                continue; // renamed away by someone else, with what it still held
            }
            if (errno == ENOTDIR || errno == EBUSY) {
                // A link or file swapped in for the folder emptied, or a
                // file system mounted on the name since the stat.
                leave(path, "changed while it was being deleted");
                continue;
            }
            failure = file_error(errno, "cannot delete", path);
            break;
        }
        ++removed.folders;
        removed_here = true;
    }
    if (removed_here) {
        if (auto error = sync_folder(fd, relative)) {
            return error;
        }
    }
    return failure;
}

Result<Removed> Library::remove(std::string_view path, bool recursive, const std::optional<ExpectedEntry>& expect) const
{
    if (auto gone = check_root()) {
        return *gone;
    }
    auto located = locate(path, "deleted");
    if (!located) {
        return located.error();
    }
    const int parent = located->fd;
    const char* leaf = located->leaf.c_str();
    struct ::stat st {};
    if (stat_located(*located, st) != 0) {
        if (errno == ENOENT) {
            return Error{ErrorCode::not_found, "nothing named " + quoted(path)};
        }
        return file_error(errno, "cannot stat", path);
    }
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        return Error{ErrorCode::not_regular_file, quoted(path) + " is not a regular file or folder"};
    }
    // A first look, so that an entry plainly not the one expected is
    // refused without being moved. A file is compared again where nothing
    // else can reach it (remove_as_expected); a folder is not (rmdir takes
    // only an empty one, and a folder is compared by its type alone).
    if (expect) {
        if (auto changed = unlike_expected(st, *expect, path)) {
            return *changed;
        }
    }
    if (auto refused = refuse_unsyncable(parent, folder_of(path))) {
        return *refused;
    }
    Removed removed;
    if (S_ISREG(st.st_mode) && expect) {
        if (auto refused = remove_as_expected(parent, leaf, path, *expect)) {
            return *refused;
        }
        removed.files = 1;
    } else if (S_ISREG(st.st_mode)) {
        if (::unlinkat(parent, leaf, 0) != 0) {
            const int error = errno;
            // A folder (EISDIR: the name held a file at the stat, a folder
            // at the unlink, whatever it holds by now) or another entry put
            // at the name since the stat: the path changed, not a file that
            // cannot go.
            if (error == EISDIR || (error != ENOENT && !still_at_name(parent, leaf, st))) {
                return top_changed(path, removed);
            }
            return file_error(error, "cannot delete", path);
        }
        removed.files = 1;
    } else if (S_ISDIR(st.st_mode)) {
        if (!mount_.holds(parent, leaf, st)) {
            return Error{ErrorCode::forbidden, quoted(path) + " is on another file system"};
        }
        removed.type = EntryType::folder;
        std::string blocker;
        UniqueFd emptied; // the folder the walk emptied, held to the rmdir
        if (recursive) {
            UniqueFd folder(retry_stale(
                parent, leaf, [&] { return ::openat(parent, leaf, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); }));
            if (!folder && errno != ENOENT && errno != ENOTDIR && errno != ELOOP) {
                return file_error(errno, "cannot open", path);
            }
            // Gone, or another entry at the name since the stat: a file, a
            // link (O_NOFOLLOW) or another folder.
            struct ::stat opened {};
            if (!folder || ::fstat(folder.get(), &opened) != 0 || opened.st_ino != st.st_ino ||
                opened.st_dev != st.st_dev) {
                return top_changed(path, removed);
            }
            DeleteWalk walk;
            walk.path = std::string(path);
            walk.steps.push_back(WalkStep{parent, located->leaf, st.st_dev, st.st_ino});
            if (auto error = empty_folder(folder.get(), std::string(path), path_components(path).size(), removed,
                                          blocker, walk)) {
                return *error;
            }
            if (walk.moved_step) {
                return top_changed(path, removed); // renamed away or replaced: what it holds is not ours
            }
            // The folder emptied is not the one at the name any more: the
            // rmdir would take another's (or fail on its entries). The gap
            // between this fstatat and the unlinkat is the kernel's, as for
            // a file.
            if (!still_at_name(parent, leaf, st) || check_held_folder(parent, path, "entries were removed from it")) {
                return top_changed(path, removed);
            }
            emptied = std::move(folder);
        }
        if (::unlinkat(parent, leaf, AT_REMOVEDIR) != 0) {
            // Not empty, though the walk left nothing in the folder it
            // emptied: the rmdir met another folder swapped in at the name
            // (asked of the folder held, which no swap can change; a look
            // at the name again could meet the emptied one swapped back).
            if (recursive && (errno == ENOTEMPTY || errno == EEXIST) && blocker.empty() && emptied &&
                folder_is_empty(emptied.get())) {
                return top_changed(path, removed);
            }
            if (errno == ENOTEMPTY || errno == EEXIST) {
                std::string message = quoted(path) + " is not empty";
                if (!blocker.empty()) {
                    message += ": " + blocker + ", which a delete leaves; " + std::to_string(removed.files) +
                               " files and " + std::to_string(removed.folders) + " folders were removed";
                }
                return Error{ErrorCode::not_empty, std::move(message)};
            }
            if (recursive && (errno == ENOENT || errno == ENOTDIR || errno == EBUSY)) {
                // Renamed away, or another entry put at its name, while what
                // it held was being removed: what went stays gone, said so.
                return top_changed(path, removed);
            }
            return file_error(errno, "cannot delete", path);
        }
        ++removed.folders;
    }
    // Asked at once, as a mkdir asks: a folder moved out of the tree (or
    // the root moved away) between the lookup and the removal lost the
    // entry there, where `path` does not lead, and "ok" would say that
    // `path` went (PROTOCOL.md 4.11).
    auto moved =
        check_held_folder(parent, path, quoted(path) + " was deleted from it", removed_elsewhere(path, removed));
    if (auto error = sync_folder(parent, path)) {
        return *error;
    }
    if (moved) {
        return *moved;
    }
    return removed;
}

namespace {

bool inside(std::string_view path, std::string_view folder)
{
    return path == folder || (path.size() > folder.size() && path.starts_with(folder) && path[folder.size()] == '/');
}

} // namespace

std::optional<Error> Library::rename(std::string_view from, std::string_view to, bool replace) const
{
    if (from.empty() || to.empty()) {
        return Error{ErrorCode::invalid_name, "the root cannot be renamed or replaced"};
    }
    if (auto refused = check_path(from)) {
        return refused;
    }
    if (auto refused = check_path(to)) {
        return refused;
    }
    if (auto gone = check_root()) {
        return gone;
    }
    auto source = locate(from, "renamed");
    if (!source) {
        return source.error();
    }
    const int from_dir = source->fd;
    const char* from_leaf = source->leaf.c_str();
    struct ::stat st {};
    if (retry_stale(from_dir, from_leaf, [&] { return ::fstatat(from_dir, from_leaf, &st, AT_SYMLINK_NOFOLLOW); }) !=
        0) {
        if (errno == ENOENT) {
            return Error{ErrorCode::not_found, "nothing named " + quoted(from)};
        }
        return file_error(errno, "cannot stat", from);
    }
    // rename(2) of a name onto itself succeeds doing nothing; refused here
    // (as mv(1) does) so a client's typo is not reported as a move. Only
    // once `from` is found: a missing one is not_found, as mv(1)'s "cannot
    // stat", however `to` is spelled.
    if (to == from) {
        return Error{ErrorCode::invalid_move, quoted(from) + " would be renamed onto itself: nothing to move"};
    }
    const bool folder = S_ISDIR(st.st_mode);
    if (!folder && !S_ISREG(st.st_mode)) {
        return Error{ErrorCode::not_regular_file, quoted(from) + " is not a regular file or folder"};
    }
    // A path beneath `from` is "into itself" only for a folder (PROTOCOL.md
    // 4.12); beneath a file it names a file where a folder should be.
    if (inside(to, from)) {
        if (!folder) {
            return Error{ErrorCode::not_a_folder, quoted(from) + " is not a folder"};
        }
        return Error{ErrorCode::invalid_move, "cannot move " + quoted(from) + " into itself (" + quoted(to) + ")"};
    }
    auto target = locate(to, "replaced");
    if (!target) {
        return target.error();
    }
    const int to_dir = target->fd;
    const char* to_leaf = target->leaf.c_str();
    if (folder && !mount_.holds(from_dir, from_leaf, st)) {
        return Error{ErrorCode::forbidden, quoted(from) + " is on another file system"};
    }
    struct ::stat old {};
    const bool target_exists =
        retry_stale(to_dir, to_leaf, [&] { return ::fstatat(to_dir, to_leaf, &old, AT_SYMLINK_NOFOLLOW); }) == 0;
    if (replace && target_exists && !S_ISREG(old.st_mode) && !S_ISDIR(old.st_mode)) {
        return Error{ErrorCode::not_regular_file, quoted(to) + " is not a regular file or folder; it is not replaced"};
    }
    const auto same_file = [&] {
        return Error{ErrorCode::invalid_move, quoted(from) + " and " + quoted(to) +
                                                  " are hard links to one file: nothing would move"};
    };
    // rename(2) of a hard link onto another link of the same file succeeds
    // doing nothing, both names staying (POSIX rename: "If the old argument
    // and the new argument resolve to ... the same existing file, rename()
    // shall return successfully and perform no other action"); refused as a
    // name renamed onto itself is, as mv(1) does.
    if (replace && target_exists && old.st_dev == st.st_dev && old.st_ino == st.st_ino) {
        return same_file();
    }
    const auto map_error = [&](int errno_value) -> Error {
        switch (errno_value) {
        case EEXIST:
            if (replace) {
                return Error{ErrorCode::not_empty, quoted(to) + " is a folder that is not empty"};
            }
            return Error{ErrorCode::exists, quoted(to) + " already exists"};
        case ENOTEMPTY:
            return Error{ErrorCode::not_empty, quoted(to) + " is a folder that is not empty"};
        case EISDIR:
            return Error{ErrorCode::exists, quoted(to) + " is a folder; a file does not replace it"};
        case ENOTDIR:
            return Error{ErrorCode::not_a_folder, quoted(to) + " is not a folder; a folder does not replace it"};
        case EINVAL:
            return Error{ErrorCode::invalid_move, "cannot move " + quoted(from) + " into itself (" + quoted(to) + ")"};
        case EXDEV:
        case EBUSY:
            return Error{ErrorCode::forbidden, quoted(from) + " or " + quoted(to) + " is a mount point"};
        case ENOENT:
            return Error{ErrorCode::not_found, "nothing named " + quoted(from)};
        default:
            return file_error(errno_value, "cannot rename", from);
        }
    };
    // Both folders are synced after the change: refused now if one cannot be.
    if (auto refused = refuse_unsyncable(to_dir, folder_of(to))) {
        return *refused;
    }
    if (auto refused = refuse_unsyncable(from_dir, folder_of(from))) {
        return *refused;
    }
    // The lookups above are repeated on ESTALE, the change itself never:
    // whether a failed rename took effect is not known.
    if (replace) {
        if (::renameat(from_dir, from_leaf, to_dir, to_leaf) != 0) {
            return map_error(errno);
        }
        // The link may have been made after the check above.
        struct ::stat left {};
        if (!folder && ::fstatat(from_dir, from_leaf, &left, AT_SYMLINK_NOFOLLOW) == 0 && left.st_dev == st.st_dev &&
            left.st_ino == st.st_ino) {
            return same_file();
        }
    } else if (::renameat2(from_dir, from_leaf, to_dir, to_leaf, RENAME_NOREPLACE) != 0) {
        if (errno != EINVAL) {
            return map_error(errno);
        }
        // EINVAL: the file system lacks RENAME_NOREPLACE (or the kernel
        // found a move into itself, which the fallback meets again). A file
        // is linked under the new name (which fails if it exists) and then
        // unlinked: for a moment it has both names. A folder cannot be
        // linked: its target is checked absent and then renamed, and a
        // folder created there in between would be replaced if empty.
        if (!folder) {
            if (::linkat(from_dir, from_leaf, to_dir, to_leaf, 0) != 0) {
                return map_error(errno);
            }
            if (::unlinkat(from_dir, from_leaf, 0) != 0) {
                return file_error(errno, "cannot remove the old name", from);
            }
        } else {
            if (retry_stale(to_dir, to_leaf, [&] { return ::fstatat(to_dir, to_leaf, &old, AT_SYMLINK_NOFOLLOW); }) ==
                0) {
                return map_error(EEXIST);
            }
            if (::renameat(from_dir, from_leaf, to_dir, to_leaf) != 0) {
                return map_error(errno);
            }
        }
    }
    // Both folders are asked at once whether they still lie at their paths,
    // as a mkdir asks (PROTOCOL.md 4.12): one moved out of the tree (or the
    // root moved away) meanwhile took the entry out of it, or left it there.
    struct ::stat a {};
    struct ::stat b {};
    const bool one_folder =
        ::fstat(from_dir, &a) == 0 && ::fstat(to_dir, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
    const std::string done = quoted(from) + " was renamed to " + quoted(to);
    auto moved = check_held_folder(to_dir, to, done + (one_folder ? " in it" : " into it"),
                                   "the entry stands in that folder, wherever it is now, not at " + quoted(to));
    if (!moved && !one_folder) {
        moved = check_held_folder(from_dir, from, done + " from it",
                                  "the entry was taken from that folder, wherever it is now, not from " + quoted(from) +
                                      "; it stands at " + quoted(to));
    }
    if (auto error = sync_folder(to_dir, to)) {
        return error;
    }
    if (!one_folder) { // one folder is synced once
        if (auto error = sync_folder(from_dir, from)) {
            return error;
        }
    }
    return moved;
}

Result<FileInfo> Library::set_mtime(std::string_view path, std::int64_t mtime,
                                    const std::optional<ExpectedEntry>& expect) const
{
    if (auto refused = check_path(path); refused && !path.empty()) {
        return *refused;
    }
    if (auto gone = check_root()) {
        return *gone;
    }
    // Only the modification time: the access time stays (UTIME_OMIT), as
    // `touch -m` and rsync do.
    const struct timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(mtime), 0}};
    if (path.empty()) {
        // The root is a folder, whatever an expect of a folder could ask.
        if (expect && expect->type != EntryType::folder) {
            return Error{ErrorCode::file_changed,
                         "the root is a folder, expected a file: not the entry expected, so " +
                             std::string(kNotRetimed)};
        }
        if (::futimens(root_fd_, times) != 0) {
            return file_error(errno, "cannot set the modification time of", "the root");
        }
        if (auto gone = check_root()) { // moved away meanwhile: its time was set there
            gone->message += "; its time was set just before this was found";
            return *gone;
        }
        return describe_root();
    }
    auto located = locate(path, "retimed");
    if (!located) {
        return located.error();
    }
    // What a stat accepts: a regular file, or a folder on this file system.
    if (auto refused = describe(*located, path); !refused) {
        return refused.error();
    }
    return set_mtime_on_entry(*located, path, times, expect ? &*expect : nullptr);
}

// Asked right after a time was set through the held folder `parent`, as a
// mkdir asks (PROTOCOL.md 4.13): one moved out of the tree (or the root
// moved away) meanwhile had the time set on its entry, where `path` does
// not lead.
std::optional<Error> Library::check_retimed_in(int parent, std::string_view path) const
{
    return check_held_folder(parent, path, "the time of " + quoted(path) + " was set in it",
                             "the time was set on the entry in that folder, wherever it is now; whatever stands at " +
                                 quoted(path) + " now keeps its own");
}

// The checks and the change act on one descriptor of the entry, so an
// entry put at the name in between is neither checked nor retimed: the one
// checked is the one whose time is set. A time set by name again after the
// checks would go through a mount made at the name meanwhile, onto the
// mount's root or a file bind mount's source (attack round 72, F1). With an
// expect, a file renamed over the name is likewise neither compared nor
// retimed. The descriptor is O_PATH: nothing is opened in the sense of
// open(2)'s side effects, so a FIFO swapped in since describe() never sees
// a reader (a writer blocked in its open would be let through), a device's
// driver is never called, and a file the server's user may not read is
// retimed as its owner may (utimensat(2) needs ownership, not read
// access). O_NOFOLLOW on an O_PATH open gives the link itself, which the
// type check refuses.
Result<FileInfo> Library::set_mtime_on_entry(const Located& located, std::string_view path,
                                             const struct timespec (&times)[2], const ExpectedEntry* expect) const
{
    UniqueFd entry(retry_stale(located.fd, located.leaf.c_str(), [&] {
        return ::openat(located.fd, located.leaf.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
    }));
    if (!entry) {
        return file_error(errno, "cannot open", path);
    }
    struct ::stat st {};
    if (::fstat(entry.get(), &st) != 0) {
        return file_error(errno, "cannot stat", path);
    }
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        return not_retimable(path); // a link, FIFO, socket or device put at the name since the stat
    }
    if (!mount_.holds(entry.get(), "", st)) { // a folder or file mounted there since describe()
        return Error{ErrorCode::forbidden, quoted(path) + " is on another file system"};
    }
    if (expect != nullptr) {
        if (auto changed = unlike_expected(st, *expect, path, kNotRetimed)) {
            return *changed;
        }
    }
    if (set_times_of_path_fd(entry.get(), times) != 0) {
        return file_error(errno, "cannot set the modification time of", path);
    }
    if (auto moved = check_retimed_in(located.fd, path)) {
        return *moved;
    }
    if (::fstat(entry.get(), &st) != 0) {
        return file_error(errno, "cannot stat", path);
    }
    // The descriptor follows the entry wherever it is moved: one moved out
    // of the tree between the open and the change had its time set there
    // (and one moved away or removed right after: set, not "nothing
    // there", which would say no time was set).
    if (!still_at_name(located.fd, located.leaf.c_str(), st)) {
        return entry_moved_after_retime(path);
    }
    return file_info(std::string(path), st);
}

} // namespace ferry::server
