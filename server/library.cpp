#include "library.hpp"

#include "log.hpp"
#include "names.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ferry::server {

namespace {

std::string quoted(std::string_view name)
{
    return "\"" + std::string(name) + "\"";
}

} // namespace

Error file_error(int errno_value, std::string_view what, std::string_view name)
{
    std::string message = std::string(what) + " " + quoted(name) + ": " + std::strerror(errno_value);
    switch (errno_value) {
    case ENOENT:
        return Error{ErrorCode::not_found, "no file named " + quoted(name)};
    case ELOOP:
    case EISDIR:
    case ENOTDIR:
    case ENXIO:
        return Error{ErrorCode::not_regular_file, quoted(name) + " is not a regular file"};
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return Error{ErrorCode::no_space, std::move(message)};
    default:
        return Error{ErrorCode::io_error, std::move(message)};
    }
}

FileInfo file_info(std::string name, const struct ::stat& st)
{
    return FileInfo{std::move(name), static_cast<std::uint64_t>(st.st_size), static_cast<std::int64_t>(st.st_mtime)};
}

OpenFile::~OpenFile()
{
    ::close(fd_);
}

Result<std::unique_ptr<Library>> Library::open(const std::string& path)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return Error{ErrorCode::io_error, "cannot open folder " + quoted(path) + ": " + std::strerror(errno)};
    }
    const mode_t mask = ::umask(0);
    ::umask(mask);
    return std::unique_ptr<Library>(new Library(fd, path, 0666 & ~mask));
}

Library::~Library()
{
    ::close(root_fd_);
}

std::optional<Error> Library::check_root() const
{
    struct ::stat opened {};
    struct ::stat named {};
    std::string why;
    if (::fstat(root_fd_, &opened) != 0) {
        why = std::string("cannot stat the folder: ") + std::strerror(errno);
    } else if (::stat(path_.c_str(), &named) != 0) {
        why = errno == ENOENT ? std::string("it was deleted or moved away")
                              : std::string("cannot stat it: ") + std::strerror(errno);
    } else if (!S_ISDIR(named.st_mode)) {
        why = "it is no longer a folder";
    } else if (named.st_dev != opened.st_dev || named.st_ino != opened.st_ino) {
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

Result<std::unique_ptr<DirectoryReader>> Library::open_listing() const
{
    if (auto gone = check_root()) {
        return *gone;
    }
    // A fresh descriptor per listing: readdir's position lives in it, and
    // several worker threads may list at once.
    const int dir_fd = ::openat(root_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        return file_error(errno, "cannot open", ".");
    }
    DIR* dir = ::fdopendir(dir_fd);
    if (dir == nullptr) {
        const int saved = errno;
        ::close(dir_fd);
        return file_error(saved, "cannot read", ".");
    }
    return std::make_unique<DirectoryReader>(root_fd_, dir);
}

DirectoryReader::~DirectoryReader()
{
    ::closedir(dir_);
}

std::size_t listed_size(const FileInfo& file)
{
    // {"mtime":…,"name":"…","size":…}, and a comma: the numbers at their
    // longest; of a valid name only '"' is escaped (control characters and
    // '\\' are invalid).
    constexpr std::size_t kFixed = 33 + 20 + 20;
    return kFixed + file.name.size() + static_cast<std::size_t>(std::count(file.name.begin(), file.name.end(), '"'));
}

Result<bool> DirectoryReader::read_page(std::size_t page_bytes, ListReply& page)
{
    std::size_t bytes = 0;
    while (bytes < page_bytes) {
        errno = 0;
        const dirent* entry = ::readdir(dir_);
        if (entry == nullptr) {
            if (errno != 0) {
                return file_error(errno, "cannot read", ".");
            }
            return true;
        }
        const std::string_view name = entry->d_name;
        if (name.empty() || name.front() == '.') {
            continue;
        }
        if (entry->d_type != DT_REG && entry->d_type != DT_UNKNOWN) {
            continue;
        }
        struct ::stat st {};
        if (::fstatat(root_fd_, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
            continue;
        }
        if (check_file_name(name)) {
            ++page.skipped_invalid_names;
            continue;
        }
        page.files.push_back(file_info(std::string(name), st));
        const std::size_t size = listed_size(page.files.back());
        bytes += size;
        bytes_read_ += size;
    }
    return false;
}

Result<ListReply> Library::list() const
{
    auto reader = open_listing();
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

Result<FileInfo> Library::stat(std::string_view name) const
{
    if (auto refused = check_file_name(name)) {
        return *refused;
    }
    if (auto gone = check_root()) {
        return *gone;
    }
    const std::string path(name);
    struct ::stat st {};
    if (::fstatat(root_fd_, path.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return file_error(errno, "cannot stat", name);
    }
    if (!S_ISREG(st.st_mode)) {
        return Error{ErrorCode::not_regular_file, quoted(name) + " is not a regular file"};
    }
    return file_info(path, st);
}

Result<std::unique_ptr<OpenFile>> Library::open_for_read(std::string_view name) const
{
    // stat() first so that a FIFO or device is refused without being opened.
    auto info = stat(name);
    if (!info) {
        return info.error();
    }
    const std::string path(name);
    const int fd = ::openat(root_fd_, path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        return file_error(errno, "cannot open", name);
    }
    // The entry may have been swapped between stat and open: trust only fstat.
    struct ::stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return Error{ErrorCode::not_regular_file, quoted(name) + " is not a regular file"};
    }
    return std::make_unique<OpenFile>(fd, file_info(path, st), FileIdentity::of(st));
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
            return Error{ErrorCode::io_error, quoted(name) + " shrank while it was being sent"};
        }
        done += static_cast<std::size_t>(got);
    }
    return std::nullopt;
}

std::optional<Error> hash_prefix(int fd, std::uint64_t length, TransferHash& hash, const std::string& name)
{
    std::string buffer(static_cast<std::size_t>(std::min<std::uint64_t>(length, 1024 * 1024)), '\0');
    for (std::uint64_t at = 0; at < length;) {
        const auto size = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), length - at));
        if (auto failure = read_exactly(fd, buffer.data(), size, at, name)) {
            return failure;
        }
        hash.update(buffer.data(), size);
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
    if (::fstatat(root_fd_, name.c_str(), &named, AT_SYMLINK_NOFOLLOW) != 0) {
        what = "was removed or renamed";
    } else if (named.st_dev != st.st_dev || named.st_ino != st.st_ino) {
        what = "was replaced by another file";
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
    if (what.empty()) {
        return std::nullopt;
    }
    return Error{ErrorCode::file_changed,
                 quoted(name) + " " + what + " while it was being sent; the bytes sent are not one version of it"};
}

std::optional<Error> Library::check_replaceable(std::string_view name) const
{
    auto info = stat(name);
    if (info || info.error().code == ErrorCode::not_found) {
        return std::nullopt;
    }
    return info.error();
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
    return ::openat(root_fd_, name.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
}

int Library::stat_entry(const std::string& name, struct ::stat& st) const
{
    if (!single_entry(name)) {
        return -1;
    }
    return ::fstatat(root_fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW);
}

int Library::unlink_entry(const std::string& name) const
{
    if (!single_entry(name)) {
        return -1;
    }
    return ::unlinkat(root_fd_, name.c_str(), 0);
}

int Library::rename_entry(const std::string& from, const std::string& to) const
{
    if (!single_entry(from) || !single_entry(to)) {
        return -1;
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

void OpenFile::read_ahead(std::uint64_t offset, std::size_t length) const
{
    ::readahead(fd_, static_cast<off_t>(offset), length);
}

std::optional<Error> Library::sync_root() const
{
    if (::fsync(root_fd_) != 0) {
        return file_error(errno, "cannot sync folder", path_);
    }
    return std::nullopt;
}

} // namespace ferry::server
