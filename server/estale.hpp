#pragma once
// One more try of a lookup that failed with ESTALE.
//
// On a distributed file system (GlusterFS, NFS) a client may still hold the
// file handle that a name referred to before another machine renamed a new
// file over it; resolving the name then fails with ESTALE ("Stale file
// handle") although the name exists. The failure makes the client drop that
// handle, so a second lookup of the name finds the file that is there now.
// Linux's own path walk retries once the same way (LOOKUP_REVAL); not every
// kernel or FUSE layer does, so ferryd repeats the call itself. Once only: a
// handle that is stale again is a real error.
//
// A bare repeat is not always enough: GlusterFS's md-cache answers the
// repeated lookup from its own cache with the same stale handle until
// performance.md-cache-timeout passes (measured: about 1 s of ESTALE, test
// 9b of test/scaleout). Reading the folder first replaces its cached
// entries with what is there now, and the second try finds the new file at
// once; so the lookups that name an entry of a folder read it before they
// try again.

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace ferry::server {

// Calls CALL (a system call returning -1 and setting errno on failure, such
// as openat, fstatat, renameat) and once more if it failed with ESTALE;
// returns the last result, errno as that call left it.
template <typename Call>
auto retry_stale(Call&& call) -> decltype(call())
{
    auto result = call();
    if (result == -1 && errno == ESTALE) {
        result = call();
    }
    return result;
}

// Reads the folder FOLDER (any descriptor of it, O_PATH too) to its end,
// which makes a caching client file system look its entries up afresh.
// Failures are ignored: the repeated call reports what is wrong.
inline void refresh_folder(int folder)
{
    const int saved = errno;
    const int fd = ::openat(folder, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (DIR* dir = fd < 0 ? nullptr : ::fdopendir(fd)) {
        while (::readdir(dir) != nullptr) {
        }
        ::closedir(dir);
    } else if (fd >= 0) {
        ::close(fd);
    }
    errno = saved;
}

// The same for a lookup of a name in the folder FOLDER: the folder is read
// (refresh_folder) before the second try.
template <typename Call>
auto retry_stale(int folder, Call&& call) -> decltype(call())
{
    auto result = call();
    if (result == -1 && errno == ESTALE) {
        refresh_folder(folder);
        result = call();
    }
    return result;
}

} // namespace ferry::server
