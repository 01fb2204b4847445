#include "operator_file.hpp"

#include "posix_io.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <span>

namespace ferry::server {

namespace {

std::string quoted(std::string_view what, const std::string& path)
{
    return std::string(what) + " \"" + path + "\"";
}

// ELOOP from O_NOFOLLOW means the last name is a symbolic link: say so,
// rather than "too many levels of symbolic links".
std::string open_failure(const std::string& path, std::string_view what, int flags, int error)
{
    struct ::stat link {};
    if (error == ELOOP && (flags & O_NOFOLLOW) != 0 && ::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
        return quoted(what, path) + " is a symbolic link, which ferryd does not follow for its " + std::string(what) +
               " (another user who may write its folder could point it at any file); name the file itself";
    }
    if (error == ENXIO) {
        // O_WRONLY | O_NONBLOCK on a FIFO without a reader.
        return quoted(what, path) + " is not a regular file (a FIFO or socket)";
    }
    return "cannot open " + quoted(what, path) + ": " + std::strerror(error);
}

} // namespace

std::string_view kind_of_file(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFDIR:
        return "a folder";
    case S_IFIFO:
        return "a FIFO";
    case S_IFSOCK:
        return "a socket";
    case S_IFCHR:
        return "a character device";
    case S_IFBLK:
        return "a block device";
    case S_IFLNK:
        return "a symbolic link";
    default:
        break;
    }
    return "not a regular file";
}

namespace {

Error not_regular(const std::string& path, std::string_view what, mode_t mode)
{
    return Error{ErrorCode::io_error,
                 quoted(what, path) + " is not a regular file (it is " + std::string(kind_of_file(mode)) + ")"};
}

// Opens what `looked` (an O_PATH descriptor of a regular file, `seen` its
// stat) names with `flags`: through /proc/self/fd, which reopens that very
// file whatever its path names by now (proc(5), "/proc/pid/fd"); where /proc
// is not mounted, by its path again, kept only if it is still that file.
Result<int> reopen_looked_at(int looked, const struct ::stat& seen, const std::string& path, int flags,
                             std::string_view what)
{
    const int open_flags = (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
    const std::string by_descriptor = "/proc/self/fd/" + std::to_string(looked);
    int fd = ::open(by_descriptor.c_str(), open_flags);
    if (fd < 0 && errno == ENOENT) {
        fd = ::open(path.c_str(), open_flags | (flags & O_NOFOLLOW));
    }
    if (fd < 0) {
        return Error{ErrorCode::io_error, open_failure(path, what, flags, errno)};
    }
    struct ::stat now {};
    if (::fstat(fd, &now) != 0 || now.st_dev != seen.st_dev || now.st_ino != seen.st_ino) {
        ::close(fd);
        return Error{ErrorCode::io_error, quoted(what, path) + " was replaced while ferryd opened it; try again"};
    }
    return fd;
}

} // namespace

Result<OperatorFile> open_operator_file(const std::string& path, int flags, std::string_view what, mode_t create_mode)
{
    // Looked at before it is opened: an O_PATH descriptor opens no file (no
    // device driver's open, which may act, as a watchdog's or a tape's
    // does; no FIFO end, which would wake a writer or reader waiting on
    // it), so what is not a regular file is refused untouched.
    OperatorFile file;
    for (int attempt = 0; attempt < 2; ++attempt) {
        const int looked = ::open(path.c_str(), O_PATH | O_CLOEXEC | (flags & O_NOFOLLOW));
        if (looked < 0) {
            const int error = errno;
            if (error != ENOENT || (flags & O_CREAT) == 0) {
                return Error{ErrorCode::io_error, open_failure(path, what, flags, error)};
            }
            // Nothing there: this makes a new file and opens only that; a
            // name made meanwhile by someone else is looked at once more.
            file.fd = ::open(path.c_str(), flags | O_EXCL | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, create_mode);
            if (file.fd < 0 && errno == EEXIST) {
                continue;
            }
            if (file.fd < 0) {
                return Error{ErrorCode::io_error, open_failure(path, what, flags, errno)};
            }
            break;
        }
        struct ::stat seen {};
        if (::fstat(looked, &seen) != 0) {
            const int error = errno;
            ::close(looked);
            return Error{ErrorCode::io_error, "cannot stat " + quoted(what, path) + ": " + std::strerror(error)};
        }
        if (S_ISLNK(seen.st_mode)) { // O_PATH | O_NOFOLLOW names the link itself
            ::close(looked);
            return Error{ErrorCode::io_error, open_failure(path, what, flags, ELOOP)};
        }
        if (!S_ISREG(seen.st_mode)) {
            ::close(looked);
            return not_regular(path, what, seen.st_mode);
        }
        auto opened = reopen_looked_at(looked, seen, path, flags, what);
        ::close(looked);
        if (!opened) {
            return opened.error();
        }
        file.fd = opened.value();
        break;
    }
    if (file.fd < 0) {
        return Error{ErrorCode::io_error, quoted(what, path) + " kept changing while ferryd opened it; try again"};
    }
    if (::fstat(file.fd, &file.st) != 0) {
        const int error = errno;
        ::close(file.fd);
        return Error{ErrorCode::io_error, "cannot stat " + quoted(what, path) + ": " + std::strerror(error)};
    }
    if (!S_ISREG(file.st.st_mode)) {
        ::close(file.fd);
        return not_regular(path, what, file.st.st_mode);
    }
    const int status = ::fcntl(file.fd, F_GETFL);
    if (status >= 0) {
        ::fcntl(file.fd, F_SETFL, status & ~O_NONBLOCK);
    }
    return file;
}

Result<std::string> read_to_end(int fd, const std::string& path, std::string_view what)
{
    std::string text;
    std::array<char, 4096> buffer;
    for (;;) {
        const auto got = sys::read_full(fd, std::span(buffer));
        if (!got.ok()) {
            return Error{ErrorCode::io_error, "cannot read " + quoted(what, path) + ": " + std::strerror(got.error)};
        }
        text.append(buffer.data(), got.done);
        if (got.done < buffer.size()) {
            return text;
        }
    }
}

Result<std::string> read_operator_file(const std::string& path, std::string_view what, struct ::stat* st)
{
    auto opened = open_operator_file(path, O_RDONLY, what);
    if (!opened) {
        return opened.error();
    }
    auto text = read_to_end(opened->fd, path, what);
    ::close(opened->fd);
    if (text && st != nullptr) {
        *st = opened->st;
    }
    return text;
}

} // namespace ferry::server
