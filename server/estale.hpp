#pragma once
// Lookups tried again when they fail with ESTALE.
//
// On a distributed file system (GlusterFS, NFS) a client may still hold the
// file handle that a name referred to before another machine renamed a new
// file over it; resolving the name then fails with ESTALE ("Stale file
// handle") although the name exists. The failure makes the client drop that
// handle, so a later lookup of the name finds the file that is there now.
// Linux's own path walk retries once the same way (LOOKUP_REVAL); not every
// kernel or FUSE layer does, so ferryd repeats the call itself.
//
// A bare repeat is not always enough: GlusterFS's md-cache answers the
// repeated lookup from its own cache with the same stale handle until
// performance.md-cache-timeout passes (measured: about 1 s of ESTALE, test
// 9b of test/scaleout). Reading the folder first replaces its cached
// entries with what is there now, and the next try finds the new file; so
// the folder is read before each try again.
//
// Reading the folder helps only where the kernel reads it with READDIRPLUS,
// which brings each entry's new handle along. Where it does not (FUSE
// mounted with --use-readdirp=no, or a kernel without it), md-cache still
// answers the name with the old handle until its timeout (measured with
// test/scaleout's volume on such a mount: about 1 s of ESTALE on every try
// after the folder's read; test 9d sets the timeout above ferryd's wait).
// A question md-cache cannot answer from its cache does help: an extended
// attribute it does not cache, asked of the name, goes on below md-cache,
// where GlusterFS meets the old handle and looks the name up again (the
// question itself is answered as for the new file, ENODATA, 7 of 7 times in
// that probe), and the next lookup of the name finds the new file
// (measured on the same mount: the second try, every time; 8 ms median
// where the folder's read alone took 983). So before each try again the
// name's cached handle is forgotten that way too (forget_stale_handle).
//
// One try again is not always enough either: the name may be replaced again
// while it is looked up. Measured on test/scaleout's volume (md-cache on, a
// 64 KiB file renamed over through the other mount without pause, 4,930
// opens): 71% opened at the first try, 28% at the second, 6 at the third or
// fourth; and under CI's load the second try failed in 2 of 30 rounds of
// test 9b. So up to kStaleLookupTries tries in all, without waiting between
// them: a name that is still stale after that is reported as it failed.

#include "posix_io.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <utility>

namespace ferry::server {

// How many times in all a lookup that keeps failing with ESTALE is tried.
inline constexpr int kStaleLookupTries = 4;
// A get's open whose name is still stale after those tries is tried again
// every kStaleWaitStep for up to kStaleWaitLimit from its start: where
// neither refresh reaches the cache that holds the old handle (a FUSE
// layer that passes on no extended attribute question, say), GlusterFS's
// md-cache keeps it until performance.md-cache-timeout (1 s by default).
// Under the project's CI load a wait of 1.5 s was not always enough, before
// forget_stale_handle (2 gets of 30 in one run of test 9b of
// test/scaleout), hence twice that. Only a get waits so: a pool thread, on
// a network file system's rare path.
inline constexpr std::chrono::milliseconds kStaleWaitLimit{3000};
inline constexpr std::chrono::milliseconds kStaleWaitStep{25};

// Whether a call on a file or folder already open failed because what it
// refers to is gone with its handle: on a distributed file system, renamed
// over or removed through another machine since it was opened (GlusterFS
// answers ENOENT or ESTALE; measured in docs/SCALE-OUT.md). Its name may
// hold a new one, worth looking up again.
inline bool handle_gone(int errno_value)
{
    return errno_value == ENOENT || errno_value == ESTALE;
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

// The extended attribute forget_stale_handle asks for: a name no one sets,
// so that no caching layer holds its value and the question reaches the
// file's storage.
inline constexpr const char* kStaleProbeAttribute = "user.ferry.stale-probe";

// The path by which forget_stale_handle reaches NAME (one name, no '/';
// "." for the folder itself) in FOLDER (any descriptor of it, O_PATH too):
// through /proc/self/fd, as Linux has no getxattrat before 6.13. None where
// /proc/self/fd is not procfs's (sys::proc_fd_links_are_procfs: in a chroot
// whose / ferryd serves, a client could make such folders, and the path
// would lead where it chose).
inline std::optional<std::string> stale_probe_path(int folder, const char* name)
{
    if (!sys::proc_fd_links_are_procfs()) {
        return std::nullopt;
    }
    return "/proc/self/fd/" + std::to_string(folder) + "/" + name;
}

// Asks for kStaleProbeAttribute of NAME in FOLDER (stale_probe_path), which
// makes a caching client file system that still holds a handle the name's
// file no longer has look the name up again (see above). lgetxattr does not
// follow a last symbolic link, and NAME stays a single name in FOLDER.
// Failures and the answer are ignored: the repeated call reports what is
// wrong. Besides the lookups that failed with ESTALE, a commit that finds
// its destination gone asks it too (Destination::refresh): one lgetxattr,
// on a rare path.
inline void forget_stale_handle(int folder, const char* name)
{
    const int saved = errno;
    if (const auto path = stale_probe_path(folder, name)) {
        ::lgetxattr(path->c_str(), kStaleProbeAttribute, nullptr, 0);
    }
    errno = saved;
}

// What a lookup of NAME in FOLDER that failed with ESTALE needs before it
// is tried again: the folder's entries and the name's handle looked up
// afresh.
inline void refresh_name(int folder, const char* name)
{
    refresh_folder(folder);
    forget_stale_handle(folder, name);
}

// Calls CALL (a system call returning -1 and setting errno on failure, such
// as openat, fstatat, renameat) that looks up NAME in the folder FOLDER
// ("." where it acts on the folder itself); while it fails with ESTALE,
// refreshes the name (refresh_name) and calls it again, kStaleLookupTries
// calls at most. Returns the last result, errno as that call left it.
template <typename Call>
auto retry_stale(int folder, const char* name, Call&& call) -> decltype(call())
{
    auto result = call();
    for (int tries = 1; result == -1 && errno == ESTALE && tries < kStaleLookupTries; ++tries) {
        refresh_name(folder, name);
        result = call();
    }
    return result;
}

} // namespace ferry::server
