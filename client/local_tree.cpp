#include "local_tree.hpp"

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
#include <utility>

namespace ferry::client {

std::int64_t nanoseconds(const struct ::timespec& time)
{
    return sys::nanoseconds_since_epoch(time);
}

namespace {

std::string joined(const std::string& folder, const std::string& name)
{
    return folder.empty() ? name : folder + "/" + name;
}

// The names in the folder open at `fd` (which this takes over), sorted;
// "." and ".." left out. The error's message names no path: the caller's does.
Result<std::vector<std::string>> read_names(int fd)
{
    DIR* dir = ::fdopendir(fd);
    if (dir == nullptr) {
        const int saved = errno;
        ::close(fd);
        return local_error("cannot read the folder", saved);
    }
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* entry = ::readdir(dir)) {
        const std::string name = entry->d_name;
        if (name != "." && name != "..") {
            names.push_back(name);
        }
        errno = 0;
    }
    const int saved = errno;
    ::closedir(dir);
    if (saved != 0) {
        return local_error("cannot read the folder", saved);
    }
    std::sort(names.begin(), names.end());
    return names;
}

class Walker {
public:
    explicit Walker(TreeBounds bounds) : bounds_(bounds) {}

    LocalTree tree;

    // Walks the folder open at `fd` (taken over), found at `relative`,
    // which has `depth` components.
    void walk(int fd, const std::string& relative, std::size_t depth)
    {
        auto names = read_names(::dup(fd));
        if (!names) {
            ::close(fd);
            // Half a listing is no listing: none of it is kept.
            tree.unreadable.push_back({relative, names.error().message, true});
            return;
        }
        for (const auto& name : names.value()) {
            const std::string path = joined(relative, name);
            if (auto why = unsent_name(name)) {
                tree.skipped.push_back({path, std::move(*why)});
                continue;
            }
            if (depth + 1 > bounds_.depth) {
                tree.skipped.push_back({path, "deeper than " + std::to_string(bounds_.depth) + " components"});
                continue;
            }
            if (path.size() > bounds_.bytes) {
                tree.skipped.push_back({path, "a path longer than " + std::to_string(bounds_.bytes) + " bytes"});
                continue;
            }
            struct stat st {};
            if (::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
                tree.unreadable.push_back({path, std::string("cannot stat it: ") + std::strerror(errno)});
                continue;
            }
            if (S_ISREG(st.st_mode)) {
                tree.entries.push_back({path, false, static_cast<std::uint64_t>(st.st_size), st.st_mtim.tv_sec,
                                        static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
                                        nanoseconds(st.st_mtim), nanoseconds(st.st_ctim)});
            } else if (S_ISDIR(st.st_mode)) {
                // O_NOFOLLOW: swapped for a symlink since the fstatat, it is not entered.
                const int child = ::openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (child < 0) {
                    tree.unreadable.push_back(
                        {path, std::string("cannot open the folder: ") + std::strerror(errno), true});
                    continue;
                }
                tree.entries.push_back({path, true, 0, st.st_mtim.tv_sec, static_cast<std::uint64_t>(st.st_dev),
                                        static_cast<std::uint64_t>(st.st_ino), nanoseconds(st.st_mtim),
                                        nanoseconds(st.st_ctim)});
                walk(child, path, depth + 1);
            } else if (S_ISLNK(st.st_mode)) {
                tree.skipped.push_back({path, "a symbolic link (not followed)"});
            } else {
                tree.skipped.push_back({path, "not a regular file or folder"});
            }
        }
        ::close(fd);
    }

private:
    TreeBounds bounds_;
};

Error changed_since_listed(const std::string& shown, const std::string& how)
{
    return Error{ErrorCode::local_io, "\"" + shown + "\" changed since it was listed: " + how + "; not sent"};
}

} // namespace

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

Result<LocalFile> open_listed_file(const ListedFile& listed, const std::string& shown)
{
    auto folder = open_tree_folder(listed.root, listed.path);
    if (!folder) {
        // A folder on the way that is now a symbolic link (or gone) is
        // named by open_tree_folder's message.
        return changed_since_listed(shown, folder.error().message);
    }
    const std::string name = base_name(listed.path);
    const int fd = sys::retry_on_eintr(
        [&] { return ::openat(folder.value()->fd(), name.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC); });
    if (fd < 0) {
        const int err = errno;
        if (err == ELOOP) {
            return changed_since_listed(shown, "it is a symbolic link now (not followed)");
        }
        return local_error("cannot open \"" + shown + "\"", err);
    }
    LocalFile opened(shown, fd);
    struct stat st {};
    if (::fstat(opened.fd(), &st) != 0) {
        return local_error("cannot stat \"" + shown + "\"", errno);
    }
    if (!S_ISREG(st.st_mode)) {
        return changed_since_listed(shown, "it is no longer a regular file");
    }
    if (static_cast<std::uint64_t>(st.st_dev) != listed.device ||
        static_cast<std::uint64_t>(st.st_ino) != listed.inode) {
        return changed_since_listed(shown, "another file stands at its name now");
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
    const int fd = opened.value();
    Walker walker(bounds);
    walker.walk(fd, "", 0);
    // The folder named cannot be listed: nothing of it is known, so the
    // whole command fails (sync then deletes nothing), as when it cannot
    // be opened.
    for (const auto& unread : walker.tree.unreadable) {
        if (unread.path.empty()) {
            return Error{ErrorCode::local_io, "\"" + root + "\": " + unread.why};
        }
    }
    return std::move(walker.tree);
}

} // namespace ferry::client
