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

} // namespace ferry::server
