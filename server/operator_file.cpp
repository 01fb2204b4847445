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

Result<OperatorFile> open_operator_file(const std::string& path, int flags, std::string_view what, mode_t create_mode)
{
    OperatorFile file;
    file.fd = ::open(path.c_str(), flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, create_mode);
    if (file.fd < 0) {
        return Error{ErrorCode::io_error, open_failure(path, what, flags, errno)};
    }
    if (::fstat(file.fd, &file.st) != 0) {
        const int error = errno;
        ::close(file.fd);
        return Error{ErrorCode::io_error, "cannot stat " + quoted(what, path) + ": " + std::strerror(error)};
    }
    if (!S_ISREG(file.st.st_mode)) {
        ::close(file.fd);
        return Error{ErrorCode::io_error, quoted(what, path) + " is not a regular file (it is " +
                                              std::string(kind_of_file(file.st.st_mode)) + ")"};
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
