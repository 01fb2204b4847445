#include "local_tree.hpp"

#include "descriptors.hpp"
#include "local_files.hpp"
#include "names.hpp"
#include "posix_io.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::client {

std::uint32_t permission_bits(const struct ::stat& st)
{
    return static_cast<std::uint32_t>(st.st_mode & 07777);
}

FolderModes TreeFolderModes::of(const std::string& folder) const
{
    FolderModes modes;
    for (std::string at = folder; !at.empty();) {
        const auto found = modes_.find(at);
        if (found == modes_.end()) {
            std::reverse(modes.begin(), modes.end());
            return modes;
        }
        modes.push_back(found->second);
        const auto slash = at.rfind('/');
        at = slash == std::string::npos ? std::string() : at.substr(0, slash);
    }
    if (top_) {
        modes.push_back(*top_);
    }
    std::reverse(modes.begin(), modes.end());
    return modes;
}

std::optional<std::uint32_t> TreeFolderModes::mode_of(const std::string& path) const
{
    if (path.empty()) {
        return top_;
    }
    const auto found = modes_.find(path);
    return found == modes_.end() ? std::nullopt : std::optional<std::uint32_t>(found->second);
}

std::size_t TreeFolderModes::closed_among(const std::vector<std::string>& folders) const
{
    return static_cast<std::size_t>(std::count_if(folders.begin(), folders.end(), [&](const std::string& folder) {
        const auto mode = mode_of(folder);
        return mode && (*mode & 0055U) != 0055U;
    }));
}

std::vector<std::string> TreeFolderModes::folders() const
{
    std::vector<std::string> all;
    if (top_) {
        all.emplace_back();
    }
    for (const auto& folder : modes_) {
        all.push_back(folder.first);
    }
    return all;
}

std::int64_t nanoseconds(const struct ::timespec& time)
{
    return sys::nanoseconds_since_epoch(time);
}

namespace {

std::string joined(const std::string& folder, const std::string& name)
{
    return folder.empty() ? name : folder + "/" + name;
}

// The names in the folder whose stream is `dir`, sorted; "." and ".."
// left out. The error's message names no path: the caller's does.
Result<std::vector<std::string>> read_names(DIR* dir)
{
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* entry = ::readdir(dir)) {
        const std::string_view name = entry->d_name;
        if (name != "." && name != "..") {
            names.emplace_back(name);
        }
        errno = 0;
    }
    if (errno != 0) {
        return local_error("cannot read the folder", errno);
    }
    std::sort(names.begin(), names.end());
    return names;
}

// The walk holds at most `held` folders open (the root and the deepest
// below it: descriptor_shares' walk_folders), whatever the tree's depth.
// A folder whose descriptor was let go is opened again, when the walk
// comes back to it, from the deepest one still held, one name at a time
// (O_NOFOLLOW), each checked against the device and inode recorded when
// it was first walked: a folder swapped since is not followed, and what
// was left of it to walk is reported unreadable.
class Walker {
public:
    // At least three: the root, the folder walked and the one entered.
    Walker(TreeBounds bounds, std::size_t held) : bounds_(bounds), held_(std::max<std::size_t>(held, 3)) {}
    ~Walker()
    {
        for (auto& level : levels_) {
            close_level(level);
        }
    }
    Walker(const Walker&) = delete;
    Walker& operator=(const Walker&) = delete;

    LocalTree tree;

    // Walks the root folder open at `fd` (taken over).
    void walk_root(int fd)
    {
        struct stat st {};
        (void)::fstat(fd, &st);
        levels_.push_back({"", "", st.st_dev, st.st_ino, fd});
        walk(0);
    }

private:
    struct Level {
        std::string name;     // its last name in the folder above
        std::string relative; // its path below the root
        dev_t device;
        ino_t inode;
        int fd; // -1 while let go
        // Its names' stream, which owns `fd` once the folder is read: the
        // descriptor itself, not a dup of it (a dup, the rewind it needed
        // and a second close were 3 of a folder's 11 system calls).
        DIR* dir = nullptr;
    };

    static void close_level(Level& level)
    {
        if (level.dir != nullptr) {
            ::closedir(level.dir); // closes level.fd
            level.dir = nullptr;
        } else if (level.fd >= 0) {
            ::close(level.fd);
        }
        level.fd = -1;
    }

    // The names of level `at` (open, and not read before), sorted.
    Result<std::vector<std::string>> names_of(std::size_t at)
    {
        Level& level = levels_[at];
        level.dir = ::fdopendir(level.fd);
        if (level.dir == nullptr) {
            return local_error("cannot read the folder", errno); // the descriptor stays the level's
        }
        return read_names(level.dir);
    }

    // Lets go of the shallowest held folders below the root, but not level
    // `keep`, until at most held_ - 1 are (one more is about to be opened).
    void let_go(std::size_t keep)
    {
        std::size_t open = 0;
        for (const auto& level : levels_) {
            open += level.fd >= 0 ? 1 : 0;
        }
        for (std::size_t i = 1; i < levels_.size() && open + 1 > held_; ++i) {
            if (i != keep && levels_[i].fd >= 0) {
                close_level(levels_[i]);
                --open;
            }
        }
    }

    // The descriptor of level `at`, opened again from the deepest held one
    // where it was let go; -1 with errno where that fails or a folder on
    // the way is not the one walked.
    int fd_of(std::size_t at)
    {
        if (levels_[at].fd >= 0) {
            return levels_[at].fd;
        }
        std::size_t from = at;
        while (levels_[from].fd < 0) {
            --from; // the root's is never let go
        }
        int dir = levels_[from].fd;
        for (std::size_t i = from + 1; i <= at; ++i) {
            const int next = sys::retry_on_eintr([&] {
                return ::openat(dir, levels_[i].name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            });
            if (dir != levels_[from].fd) {
                ::close(dir);
            }
            if (next < 0) {
                return -1;
            }
            struct stat st {};
            if (::fstat(next, &st) != 0 || st.st_dev != levels_[i].device || st.st_ino != levels_[i].inode) {
                ::close(next);
                errno = ESTALE;
                return -1;
            }
            dir = next;
        }
        let_go(at);
        levels_[at].fd = dir;
        return dir;
    }

    // Walks the folder of level `at`, whose path has `at` components.
    void walk(std::size_t at)
    {
        const std::string relative = levels_[at].relative;
        auto names = names_of(at);
        if (!names) {
            // Half a listing is no listing: none of it is kept.
            tree.unreadable.push_back({relative, names.error().message, true});
            return;
        }
        const std::size_t entries_before = tree.entries.size();
        const std::size_t skipped_before = tree.skipped.size();
        const std::size_t unreadable_before = tree.unreadable.size();
        for (std::size_t index = 0; index < names->size(); ++index) {
            const std::string& name = names.value()[index];
            const std::string path = joined(relative, name);
            if (auto why = unsent_name(name)) {
                tree.skipped.push_back({path, std::move(*why)});
                continue;
            }
            if (at + 1 > bounds_.depth) {
                tree.skipped.push_back({path, "deeper than " + std::to_string(bounds_.depth) + " components"});
                continue;
            }
            if (path.size() > bounds_.bytes) {
                tree.skipped.push_back({path, "a path longer than " + std::to_string(bounds_.bytes) + " bytes"});
                continue;
            }
            const int fd = fd_of(at);
            if (fd < 0) {
                const int failure = errno;
                // Half a listing is no listing: what was found of this
                // folder is dropped, and it is unreadable, so that nothing
                // at or below it is deleted or sent.
                tree.entries.resize(entries_before);
                tree.skipped.resize(skipped_before);
                tree.unreadable.resize(unreadable_before);
                tree.unreadable.push_back(
                    {relative, std::string("cannot open the folder again: ") + std::strerror(failure), true});
                return;
            }
            struct stat st {};
            if (::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
                tree.unreadable.push_back({path, std::string("cannot stat it: ") + std::strerror(errno)});
                continue;
            }
            if (S_ISREG(st.st_mode)) {
                tree.entries.push_back({path, false, static_cast<std::uint64_t>(st.st_size), st.st_mtim.tv_sec,
                                        static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                                        nanoseconds(st.st_mtim), nanoseconds(st.st_ctim), permission_bits(st)});
            } else if (S_ISDIR(st.st_mode)) {
                enter(fd, at, name, path, st);
            } else if (S_ISLNK(st.st_mode)) {
                tree.skipped.push_back({path, "a symbolic link (not followed)"});
            } else {
                tree.skipped.push_back({path, "not a regular file or folder"});
            }
        }
    }

    // Opens the folder `name` of level `at` (open at `fd`) and walks it.
    void enter(int fd, std::size_t at, const std::string& name, const std::string& path, const struct stat& st)
    {
        let_go(at);
        // O_NOFOLLOW: swapped for a symlink since the fstatat, it is not entered.
        const int child = ::openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (child < 0) {
            tree.unreadable.push_back({path, std::string("cannot open the folder: ") + std::strerror(errno), true});
            return;
        }
        struct stat opened {};
        if (::fstat(child, &opened) != 0 || opened.st_dev != st.st_dev || opened.st_ino != st.st_ino) {
            ::close(child);
            tree.unreadable.push_back({path, "cannot open the folder: it changed since it was looked at", true});
            return;
        }
        tree.entries.push_back({path, true, 0, st.st_mtim.tv_sec, static_cast<std::uint64_t>(st.st_dev),
                                static_cast<std::uint64_t>(st.st_ino), nanoseconds(st.st_mtim), nanoseconds(st.st_ctim),
                                permission_bits(st)});
        levels_.push_back({name, path, st.st_dev, st.st_ino, child});
        walk(at + 1);
        close_level(levels_.back());
        levels_.pop_back();
    }

    TreeBounds bounds_;
    std::size_t held_;
    std::vector<Level> levels_;
};

// What `st` (of the entry at a listed file's name) shows unlike the file
// listed, as a change; nothing where it is that very regular file.
std::optional<Error> unlike_listed(const struct stat& st, const ListedFile& listed, const std::string& shown,
                                   std::string_view consequence)
{
    if (!S_ISREG(st.st_mode)) {
        return changed_since_listed(shown, "it is no longer a regular file", consequence);
    }
    if (static_cast<std::uint64_t>(st.st_dev) != listed.device ||
        static_cast<std::uint64_t>(st.st_ino) != listed.inode) {
        return changed_since_listed(shown, "another file stands at its name now", consequence);
    }
    return std::nullopt;
}

} // namespace

Error changed_since_listed(const std::string& shown, const std::string& how, std::string_view consequence)
{
    return about_local_files(ErrorCode::local_io,
                             "\"" + shown + "\" changed since it was listed: " + how + "; " + std::string(consequence));
}

std::optional<std::string> unsent_name(const std::string& name)
{
    if (auto bad = check_file_name(name)) {
        return "a name the server refuses: " + bad->message;
    }
    if (is_part_name(name)) {
        return "a partial download";
    }
    return std::nullopt;
}

bool is_part_name(const std::string& name)
{
    const std::string state = std::string(kPartSuffix) + std::string(kStateSuffix);
    // A sidecar's temporary, exactly SIDECAR.tmp-XXXXXX (sidecar_of_temporary),
    // and SIDECAR.tmp of older builds.
    return name.ends_with(kPartSuffix) || name.ends_with(state) || name.ends_with(state + ".tmp") ||
           sidecar_of_temporary(name).has_value();
}

Result<LocalFile> open_listed_file(const ListedFile& listed, const std::string& shown, HeldFolders* folders,
                                   std::string_view consequence)
{
    auto folder = folders != nullptr ? folders->folder_holding(listed.root, listed.path)
                                     : open_tree_folder(listed.root, listed.path);
    if (!folder) {
        // A folder on the way that is now a symbolic link (or gone) is
        // named by open_tree_folder's message. One that could not be opened
        // (out of descriptors, refused) did not change: its own error says
        // why (attack round 83, F1).
        if (failed_without_change(folder.error())) {
            Error error = folder.error();
            error.message = "\"" + shown + "\": " + error.message; // the file, then its folder's failure
            return error;
        }
        return changed_since_listed(shown, folder.error().message, consequence);
    }
    const std::string name = base_name(listed.path);
    const int fd = sys::retry_on_eintr(
        [&] { return ::openat(folder.value()->fd(), name.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC); });
    if (fd < 0) {
        const int err = errno;
        if (err == ELOOP) {
            return changed_since_listed(shown, "it is a symbolic link now (not followed)", consequence);
        }
        if (err == ENOENT) {
            return changed_since_listed(shown, "it is gone", consequence);
        }
        // An open refused for what stands at the name now (a socket: ENXIO;
        // a device without its driver: ENXIO, ENODEV) is a change; one
        // refused while the listed file is still there (EMFILE, EACCES) is
        // not, and says why (attack round 84, F1).
        struct stat now {};
        if (::fstatat(folder.value()->fd(), name.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0) {
            if (auto changed = unlike_listed(now, listed, shown, consequence)) {
                return *changed;
            }
        }
        return local_error("cannot open \"" + shown + "\"", err);
    }
    LocalFile opened(shown, fd);
    struct stat st {};
    if (::fstat(opened.fd(), &st) != 0) {
        return local_error("cannot stat \"" + shown + "\"", errno);
    }
    if (auto changed = unlike_listed(st, listed, shown, consequence)) {
        return *changed;
    }
    return opened;
}

TreeBounds bounds_below(const std::string& remote)
{
    if (remote.empty()) {
        return {};
    }
    const auto taken = static_cast<std::size_t>(std::count(remote.begin(), remote.end(), '/')) + 1;
    const std::size_t prefix = remote.size() + 1; // "remote/"
    return {taken < kMaxPathDepth ? kMaxPathDepth - taken : 0, prefix < kMaxPathBytes ? kMaxPathBytes - prefix : 0};
}

Result<LocalTree> walk_local_tree(const std::string& root, TreeBounds bounds)
{
    // The folder named, reached by the owner rule on links
    // (local_files.hpp's resolve_typed_path); nothing below it is followed.
    auto opened = open_typed_folder(root);
    if (!opened) {
        return opened.error();
    }
    Walker walker(bounds, descriptor_shares().walk_folders);
    walker.walk_root(opened.value());
    // The folder named cannot be listed: nothing of it is known, so the
    // whole command fails (sync then deletes nothing), as when it cannot
    // be opened.
    for (const auto& unread : walker.tree.unreadable) {
        if (unread.path.empty()) {
            return about_local_files(ErrorCode::local_io, "\"" + root + "\": " + unread.why);
        }
    }
    return std::move(walker.tree);
}

} // namespace ferry::client
