#include "mtime_probe.hpp"

#include <cerrno>
#include <cstdio>
#include <ctime>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ferry::sys {

namespace {

// A named scratch file, for a file system without O_TMPFILE (vfat, NFS):
// a name no one else uses (the process and a counter), made with O_EXCL
// so that nothing already there is ever touched. `name` receives it.
int create_named(int folder_fd, char (&name)[64])
{
    static unsigned counter = 0;
    for (int tries = 0; tries < 16; ++tries) {
        std::snprintf(name, sizeof name, ".ferry-mtime-probe-%ld-%u", static_cast<long>(::getpid()), ++counter);
        const int fd = ::openat(folder_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST) {
            return fd;
        }
    }
    return -1;
}

int set_and_read(int fd, std::span<const std::int64_t> asked, std::span<std::int64_t> held)
{
    for (std::size_t i = 0; i < asked.size(); ++i) {
        const struct timespec times[2] = {{0, UTIME_OMIT}, {static_cast<time_t>(asked[i]), 0}};
        struct stat st {};
        if (::futimens(fd, times) != 0 || ::fstat(fd, &st) != 0) {
            return errno;
        }
        held[i] = static_cast<std::int64_t>(st.st_mtim.tv_sec);
    }
    return 0;
}

} // namespace

int probe_held_mtimes(int folder_fd, std::span<const std::int64_t> asked, std::span<std::int64_t> held,
                      bool named_fallback)
{
    if (held.size() != asked.size()) {
        return EINVAL;
    }
    char name[64] = "";
    int fd = ::openat(folder_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        if (!named_fallback) {
            return EOPNOTSUPP;
        }
        fd = create_named(folder_fd, name);
    }
    if (fd < 0) {
        return errno;
    }
    const int failed = set_and_read(fd, asked, held);
    if (name[0] != '\0') {
        ::unlinkat(folder_fd, name, 0);
    }
    ::close(fd);
    return failed;
}

} // namespace ferry::sys
