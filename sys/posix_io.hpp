// The one place that retries system calls interrupted by a signal (EINTR) and
// finishes short reads and writes. Server and client both link it, so the
// loop is written (and reviewed) once instead of at every call site.
//
// Contract: nothing here allocates, throws or logs; failures come back as an
// errno value for the caller to turn into its own error.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <limits>
#include <optional>
#include <type_traits>

#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

namespace ferry::sys {

// Asked between retries; true stops them (the client's Ctrl-C check). A
// plain function pointer keeps the hot loops free of std::function.
using StopCheck = bool (*)();

// Calls `call` again while it fails with EINTR, unless `stop` says to give
// up, in which case the EINTR failure (-1, errno == EINTR) is returned. Fits
// every call that reports failure as a negative value with errno set.
template <class Call>
auto retry_on_eintr(Call&& call, StopCheck stop = nullptr) -> decltype(call())
{
    for (;;) {
        auto result = call();
        if (result >= 0 || errno != EINTR || (stop != nullptr && stop())) {
            return result;
        }
    }
}

// How far a whole-span transfer got: `done` bytes moved, and `error` the errno
// that stopped it (0 when it ran to its end).
struct Transfer {
    std::size_t done = 0;
    int error = 0;

    bool ok() const { return error == 0; }
};

// Writes all of `bytes`, resuming after short writes and EINTR. A write that
// moves nothing is reported as EIO rather than retried for ever.
Transfer write_all(int fd, std::span<const std::byte> bytes, StopCheck stop = nullptr);
// The same at a file offset (pwrite), leaving the file position alone.
Transfer pwrite_all(int fd, std::span<const std::byte> bytes, off_t offset);

// Reads until `buffer` is full or the end of the file: `done < size` with no
// error means the end came first.
Transfer read_full(int fd, std::span<std::byte> buffer, StopCheck stop = nullptr);
// The same at a file offset (pread), leaving the file position alone.
Transfer pread_full(int fd, std::span<std::byte> buffer, off_t offset);

// The call sites hold chars (server) or uint8_t (client); these spell the
// conversion once.
template <class Byte, std::size_t Extent>
    requires(sizeof(Byte) == 1 && !std::is_same_v<std::remove_const_t<Byte>, std::byte>)
Transfer write_all(int fd, std::span<Byte, Extent> bytes, StopCheck stop = nullptr)
{
    return write_all(fd, std::span<const std::byte>(std::as_bytes(bytes)), stop);
}

template <class Byte, std::size_t Extent>
    requires(sizeof(Byte) == 1 && !std::is_same_v<std::remove_const_t<Byte>, std::byte>)
Transfer pwrite_all(int fd, std::span<Byte, Extent> bytes, off_t offset)
{
    return pwrite_all(fd, std::span<const std::byte>(std::as_bytes(bytes)), offset);
}

template <class Byte, std::size_t Extent>
    requires(sizeof(Byte) == 1 && !std::is_const_v<Byte> && !std::is_same_v<Byte, std::byte>)
Transfer read_full(int fd, std::span<Byte, Extent> buffer, StopCheck stop = nullptr)
{
    return read_full(fd, std::span<std::byte>(std::as_writable_bytes(buffer)), stop);
}

// Renames `from` (in folder `from_dir`) to `to` (in `to_dir`) only if
// nothing stands at `to`, decided by the one call that moves it, so that
// a file appearing there at any moment before is never replaced: a "do not
// replace" promise (get -n, a commit with replace: false) held at the
// publish itself. renameat2(RENAME_NOREPLACE); where the file system lacks
// it (EINVAL, EOPNOTSUPP from some FUSE file systems, or ENOSYS on an old
// kernel), linkat (which never replaces
// either) then unlinkat of `from`; never a rename that could replace.
// 0, or -1 with errno (EEXIST: something stands at `to`, left untouched;
// the errno of linkat where neither way works, e.g. EPERM on vfat).
int rename_no_replace(int from_dir, const char* from, int to_dir, const char* to);
// Whether renameat2(2) refused its flags for want of them, `error` its
// errno: a file system without RENAME_NOREPLACE or RENAME_EXCHANGE (EINVAL;
// some FUSE file systems say EOPNOTSUPP), or a kernel before 3.15 (ENOSYS).
bool lacks_rename_flags(int error);
// rename(2) of `from` to `to`, a fresh name of the same folder that no one
// else can have made (random, 96 bits or more), never over an entry there:
// renameat2(RENAME_NOREPLACE), or a plain renameat where the file system
// lacks the flag (the fresh name is not taken, and a plain rename moves the
// entry as atomically). The step that sets a file aside before it is
// checked and removed. 0, or -1 with errno (EEXIST: the name was taken).
int rename_to_fresh_name(int dir, const char* from, const char* to);

// The id of the mount that `name` in folder `dir` lies on ("": `dir`
// itself, an O_PATH descriptor too), without following a final symbolic
// link: statx(2)'s stx_mnt_id (Linux 5.8 and later), which tells a bind
// mount from the file system it shows (both have one st_dev). nullopt where
// statx fails or the kernel does not give the id. Neither this nor
// stat_with_mount triggers an automount point (AT_NO_AUTOMOUNT, which
// fstatat implies since Linux 4.11 and statx(2) does not).
std::optional<std::uint64_t> mount_id_of(int dir, const char* name);

// fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) and mount_id_of(dir, name)
// in one statx(2) call, both of one entry (no rename can come between; ""
// is `dir` itself, as for mount_id_of): 0, or -1 with errno. `mount_id` is
// nullopt where the kernel gives none.
int stat_with_mount(int dir, const char* name, struct ::stat& st, std::optional<std::uint64_t>& mount_id);

// Bytes the file system holding `fd` gives ordinary users now (statvfs(2)'s
// f_bavail times f_frsize); nullopt where fstatvfs fails.
std::optional<std::uint64_t> free_bytes(int fd);

// Whether "/proc/self/fd" is procfs's own (statfs(2) f_type
// PROC_SUPER_MAGIC), so that "/proc/self/fd/N" names descriptor N's very
// file (proc(5)). Where /proc is not mounted that path is a plain one: in a
// chroot whose / a ferryd serves, a client could make proc/self/fd/N
// folders and have such a name lead wherever it chose. Callers then take
// their way without /proc.
bool proc_fd_links_are_procfs();

template <class Byte, std::size_t Extent>
    requires(sizeof(Byte) == 1 && !std::is_const_v<Byte> && !std::is_same_v<Byte, std::byte>)
Transfer pread_full(int fd, std::span<Byte, Extent> buffer, off_t offset)
{
    return pread_full(fd, std::span<std::byte>(std::as_writable_bytes(buffer)), offset);
}


// A time as signed nanoseconds since the epoch (the unit of the resume
// states' identities and the client's quick checks). Those hold 1677 to 2262;
// a file system may keep times past that (ext4 to 2446, tmpfs any 64-bit
// second), which saturate at the bounds instead of overflowing the
// multiplication (undefined behaviour, C++20 [expr.pre]/4).
inline std::int64_t nanoseconds_since_epoch(const struct timespec& time)
{
    constexpr std::int64_t kNano = 1'000'000'000;
    constexpr std::int64_t kMost = std::numeric_limits<std::int64_t>::max();
    constexpr std::int64_t kLeast = std::numeric_limits<std::int64_t>::min();
    if (time.tv_sec >= kMost / kNano) {
        return kMost;
    }
    if (time.tv_sec <= kLeast / kNano) {
        return kLeast;
    }
    return static_cast<std::int64_t>(time.tv_sec) * kNano + time.tv_nsec;
}

} // namespace ferry::sys
