#include "sync_local.hpp"

#include "interrupt.hpp"
#include "local_files.hpp"
#include "local_tree.hpp"
#include "names.hpp"
#include "posix_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace ferry::client {

namespace {

// A descriptor that closes itself.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept
    {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }
    explicit operator bool() const { return fd_ >= 0; }

private:
    void reset()
    {
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }
    int fd_ = -1;
};

std::string joined(const std::string& root, const std::string& path)
{
    if (path.empty()) {
        return root;
    }
    return root.ends_with('/') ? root + path : root + "/" + path;
}

int open_folder_at(int at, const char* name)
{
    return sys::retry_on_eintr(
        [&] { return ::openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); });
}

// The folder holding root/path, reached one component at a time with
// O_NOFOLLOW: a symbolic link on the way is an error, never followed.
Result<Fd> open_parent(const std::string& root, const std::string& path)
{
    Fd at(sys::retry_on_eintr([&] { return ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); }));
    if (!at) {
        return local_error("cannot open the folder \"" + root + "\"", errno);
    }
    std::size_t begin = 0;
    for (auto slash = path.find('/'); slash != std::string::npos; slash = path.find('/', begin)) {
        const std::string component = path.substr(begin, slash - begin);
        Fd next(open_folder_at(at.get(), component.c_str()));
        if (!next) {
            const int err = errno;
            if (err == ELOOP || err == ENOTDIR) {
                return Error{ErrorCode::local_io, "\"" + joined(root, path.substr(0, slash)) +
                                                      "\" is not a folder (a symbolic link is not followed)"};
            }
            return local_error("cannot open the folder \"" + joined(root, path.substr(0, slash)) + "\"", err);
        }
        at = std::move(next);
        begin = slash + 1;
    }
    return at;
}

std::string leaf_of(const std::string& path)
{
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

const char* special_kind(mode_t mode)
{
    if (S_ISREG(mode)) {
        return "a file";
    }
    if (S_ISLNK(mode)) {
        return "a symbolic link";
    }
    if (S_ISFIFO(mode)) {
        return "a FIFO";
    }
    if (S_ISSOCK(mode)) {
        return "a socket";
    }
    if (S_ISCHR(mode) || S_ISBLK(mode)) {
        return "a device";
    }
    return "not a regular file or folder";
}

} // namespace

Result<LocalScan> scan_local_tree(const std::string& root, ScanSide side, TreeBounds bounds)
{
    auto walked = walk_local_tree(root, bounds);
    if (!walked) {
        return walked.error();
    }
    LocalScan scan;
    scan.entries.reserve(walked->entries.size() + walked->skipped.size());
    for (auto& entry : walked->entries) {
        if (!entry.folder) {
            scan.listed.emplace(entry.path, ListedFile{root, entry.path, entry.device, entry.inode});
        }
        scan.entries.push_back(
            {std::move(entry.path), entry.folder ? EntryKind::folder : EntryKind::file, entry.size, entry.mtime, {}});
    }
    // What the walk left out stays in the listing as `other`: never sent,
    // never replaced, never removed, nothing placed beneath it.
    for (auto& skipped : walked->skipped) {
        if (side == ScanSide::sending) {
            scan.notes.push_back(printable(skipped.path) + ": " + skipped.why + ", not sent");
        }
        scan.entries.push_back({std::move(skipped.path), EntryKind::other, 0, 0, std::move(skipped.why)});
    }
    return scan;
}

Status make_local_folder(const std::string& root, const std::string& path)
{
    auto parent = open_parent(root, path);
    if (!parent) {
        return parent.error();
    }
    const std::string leaf = leaf_of(path);
    if (::mkdirat(parent->get(), leaf.c_str(), 0777) == 0) {
        return success();
    }
    const int err = errno;
    struct stat st {};
    if (err == EEXIST && ::fstatat(parent->get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISDIR(st.st_mode)) {
            return success();
        }
        return Error{ErrorCode::local_io, "\"" + joined(root, path) + "\" is " + special_kind(st.st_mode) +
                                              ": no folder is made there, and nothing is written through it"};
    }
    return local_error("cannot make the folder \"" + joined(root, path) + "\"", err);
}

Result<LocalRemoved> remove_local(const std::string& root, const std::string& path, EntryKind kind,
                                  const ListedFile* listed)
{
    auto parent = open_parent(root, path);
    if (!parent) {
        return parent.error();
    }
    const std::string leaf = leaf_of(path);
    if (kind == EntryKind::folder) {
        if (::unlinkat(parent->get(), leaf.c_str(), AT_REMOVEDIR) == 0) {
            return LocalRemoved::removed;
        }
        if (errno == ENOENT) {
            return LocalRemoved::absent;
        }
        if (errno == ENOTEMPTY || errno == EEXIST) {
            return LocalRemoved::not_empty;
        }
        if (errno == ENOTDIR) {
            return Error{ErrorCode::local_io, "\"" + joined(root, path) + "\" is no longer a folder: left"};
        }
        return local_error("cannot remove the folder \"" + joined(root, path) + "\"", errno);
    }
    struct stat st {};
    if (::fstatat(parent->get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
            return LocalRemoved::absent;
        }
        return local_error("cannot stat \"" + joined(root, path) + "\"", errno);
    }
    if (!S_ISREG(st.st_mode)) {
        return Error{ErrorCode::local_io, "\"" + joined(root, path) + "\" is no longer a regular file: left"};
    }
    // Another file at the listed name (its folder renamed away and another
    // put in its place since the scan, say) was never listed: left.
    if (listed != nullptr && (static_cast<std::uint64_t>(st.st_dev) != listed->device ||
                              static_cast<std::uint64_t>(st.st_ino) != listed->inode)) {
        return Error{ErrorCode::local_io,
                     "\"" + joined(root, path) + "\" changed since it was listed: another file stands at its name; left"};
    }
    if (::unlinkat(parent->get(), leaf.c_str(), 0) != 0) {
        if (errno == ENOENT) {
            return LocalRemoved::absent;
        }
        return local_error("cannot remove \"" + joined(root, path) + "\"", errno);
    }
    return LocalRemoved::removed;
}

Status set_local_mtime(const std::string& root, const std::string& path, std::int64_t mtime)
{
    auto parent = open_parent(root, path);
    if (!parent) {
        return parent.error();
    }
    const timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(mtime), 0}};
    // "" is the synced folder itself: the descriptor open_parent opened.
    const int set = path.empty() ? ::futimens(parent->get(), times)
                                 : ::utimensat(parent->get(), leaf_of(path).c_str(), times, AT_SYMLINK_NOFOLLOW);
    if (set != 0) {
        return local_error("cannot set the time of \"" + joined(root, path) + "\"", errno);
    }
    return success();
}

Result<std::string> hash_local_file(const ListedFile& listed, const std::string& shown, HashKind kind)
{
    auto file = open_listed_file(listed, shown);
    if (!file) {
        return file.error();
    }
    TransferHash hash(kind);
    std::vector<std::uint8_t> buffer(1024 * 1024);
    std::uint64_t offset = 0;
    for (;;) {
        if (interrupted()) {
            return Error{ErrorCode::aborted, "interrupted while hashing \"" + shown + "\""};
        }
        auto got = file->read_at(offset, buffer);
        if (!got) {
            return got.error();
        }
        if (got.value() == 0) {
            break;
        }
        hash.update(buffer.data(), got.value());
        offset += got.value();
    }
    return hash.hex_digest();
}

} // namespace ferry::client
