// Faults for the tests, preloaded into ferryd (LD_PRELOAD): what a test
// cannot make a file system do on demand. Each acts only when its variable
// is set in ferryd's environment. Not installed.
// - FERRY_READDIR_FAULT_NAME: readdir(3) fails with EIO where it would have
//   returned the entry of that name, as a damaged disk or a network file
//   system's folder read can part way through a folder; the entries read
//   before it are returned as usual.
// - FERRY_UNLINK_DELAY_MS: each unlinkat(2) waits that long first, so that
//   a test can act while a long removal runs (a recursive delete's walk).
// - FERRY_SET_ASIDE_UNLINK_DELAY_MS: each unlinkat(2) of a name that starts
//   with ".ferry-removing-" (a removal's set-aside file) waits that long
//   first, so that a test can kill ferry between the set-aside and the
//   unlink.
// - FERRY_RENAME_BEFORE_UNLINK="FROM/TO": before an unlinkat(2) of a file
//   (no AT_REMOVEDIR), FROM is renamed to TO in the same folder, as a user
//   renaming a file onto a name the instant before a removal; once, at the
//   first unlinkat whose folder holds FROM (each try costs a rename that
//   fails with ENOENT elsewhere). Preloaded into ferry.
// - FERRY_RENAME_BEFORE_SET_ASIDE="FROM/TO": before a renameat2(2) to a
//   name that starts with ".ferry-removing-" (a removal setting a file
//   aside), FROM is renamed to TO in the same folder, once: a user renaming
//   a file onto the name being removed the instant before it is set aside.
//   Preloaded into ferry.
// - FERRY_CREATE_AFTER_SET_ASIDE_UNLINK=NAME: once an unlinkat(2) of a
//   name that starts with ".ferry-removing-" (a removal's set-aside file)
//   has succeeded, an empty file NAME is made in the same folder, once: as
//   another download taking a name the instant its leftover is removed.
//   Preloaded into ferry.
// - FERRY_MKDIR_FAULT_NAME: mkdirat(2) of an entry of that name fails with
//   ENOSPC (a full disk), after the folders above it were made.
// - FERRY_NO_RENAME_FLAGS: renameat2(2) with any flag (RENAME_NOREPLACE,
//   RENAME_EXCHANGE) fails with EINVAL, as on a file system that lacks
//   them (some FUSE and network file systems), so that the fallbacks run.
// - FERRY_FLOCK_WAIT_FOR: each flock(2) that asks for an exclusive lock
//   first waits until a file of that path exists (at most 30 s), so that a
//   test can act between a download's creation of its part and its lock,
//   and say when it is done (preloaded into ferry).
// - FERRY_FSYNC_LOG: each fsync(2) appends the path of the file or folder
//   it syncs (as /proc/self/fd names it) and a newline to that file, so a
//   test can tell what was made durable.
// - FERRY_FSYNC_FAULT_PATH: each fsync(2) of the file or folder at that
//   path (as /proc/self/fd names it) fails with EIO, as a disk's failed
//   writeback is reported; the entries' pages stay as they are.
// - FERRY_SHA256_LOG: each SHA256_Update(3) of OpenSSL appends "main" or
//   "other" (the thread it runs on: the process's first or another) and the
//   number of bytes to that file, so that a test can tell whether a
//   transfer's hash ran beside its reads and sends or in turn with them.
// - FERRY_DUPFD_EMFILE=N: the first N fcntl(2) calls with F_DUPFD_CLOEXEC
//   fail with EMFILE, as in a process out of descriptors (ferryd makes such
//   a copy of a socket to watch it while a download's range waits for room);
//   with FERRY_DUPFD_EMFILE_LOG, each failure appends a line to that file,
//   so that a test can tell the fault was met.
// - FERRY_FALLOCATE_HALF_THEN_ENOSPC: each fallocate(2) that reserves
//   space (mode FALLOC_FL_KEEP_SIZE, no hole punched) takes the first half
//   of its range, then fails with ENOSPC, as ext4 and XFS do at the edge of
//   a full disk: what they allocated before failing stays the file's.
// - FERRY_PUBLISH_PAUSE_MS: each renameat(2) or renameat2(2) of an entry
//   named ".ferry-partial-..." (an upload's file) to a name without a
//   leading dot (its publish) waits that long after it succeeded, so that a
//   test can act between a commit's rename and its final attributes.
// - FERRY_FCHMOD_ESTALE: each fchmod(2) to a mode other than 0600 (a
//   commit's final mode) fails with ESTALE, as on a network or FUSE file
//   system once the file was replaced through another mount.
// - FERRY_FSTAT_FAULT="N:ERRNO:PATH": the first N fstat(2) calls on a
//   descriptor of the file at PATH (as /proc/self/fd names it) fail with
//   the errno numbered ERRNO, as GlusterFS answers ESTALE or ENOENT for a
//   file replaced through its other mount since it was opened (a commit
//   reading the file it replaces).
// - FERRY_DEFAULT_ACL_EIO: each fgetxattr(2) of "system.posix_acl_default"
//   (a folder's default ACL, read for a new file) fails with EIO, as a
//   damaged disk or a network file system's lookup can.
// - FERRY_FSTATAT_FAULT="N:ERRNO:NAME:ARMED": while a file at the path
//   ARMED exists, the first N fstatat(2) calls of an entry named NAME (the
//   name as passed, in any folder) fail with the errno numbered ERRNO, as a
//   GlusterFS lookup of a name another mount renames a file over can.
// - FERRY_OPENAT2_FAULT="N:ERRNO:PATH": the first N openat2(2) calls made
//   through syscall(3) whose path is PATH (as passed: relative to the
//   served folder) fail with the errno numbered ERRNO, as the kernel ends
//   a RESOLVE_BENEATH walk with EXDEV when a folder on the path is moved
//   out of the served folder while it walks through it.
// - FERRY_OPENAT_FAULT="N:ERRNO:NAME:SKIP": of the openat(2) calls of an
//   entry named NAME (the name as passed, in any folder), the first SKIP go
//   through and the N after them fail with the errno numbered ERRNO, as in
//   a process that ran out of descriptors (EMFILE) between a scan that
//   opened the entry and a later open of it. Preloaded into ferry.
// - FERRY_NO_FERRY_XATTR: fsetxattr(2) of an attribute whose name holds
//   "ferry" fails with ENOTSUP (a commit then writes no intent on its file),
//   while reading one there still works, as where a long ACL fills a file's
//   attribute space; set to "all", fgetxattr(2) of such a name fails with
//   ENOTSUP too, as on a file system that keeps no attributes of that
//   namespace.
//
// The 64-bit names are wanted as the library has them: meson builds with
// _FILE_OFFSET_BITS=64, which would turn readdir into readdir64 here.
#undef _FILE_OFFSET_BITS
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <dlfcn.h>
#include <time.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace {

template <typename Function>
Function next_definition(const char* symbol)
{
    // The next definition in the search order: the C library's, or a
    // sanitizer's interceptor in front of it.
    return reinterpret_cast<Function>(::dlsym(RTLD_NEXT, symbol));
}

// fcntl(2), which fcntl64 (the name a 64-bit-offset build calls) is too:
// its third argument, when there is one, is an int or a pointer, which the
// x86-64 and aarch64 calling conventions pass alike, so it goes on as a
// pointer (glibc's own wrapper reads it so).
int fcntl_or_fail(int fd, int command, void* argument)
{
    using Control = int (*)(int, int, ...);
    static std::atomic<long> failures_left{-1};
    if (command == F_DUPFD_CLOEXEC) {
        long left = failures_left.load();
        if (left < 0) {
            const char* count = std::getenv("FERRY_DUPFD_EMFILE");
            long wanted = count != nullptr ? std::strtol(count, nullptr, 10) : 0;
            failures_left.compare_exchange_strong(left, wanted);
        }
        long now = failures_left.load();
        while (now > 0 && !failures_left.compare_exchange_weak(now, now - 1)) {
        }
        if (now > 0) {
            if (const char* log = std::getenv("FERRY_DUPFD_EMFILE_LOG"); log != nullptr) {
                const int out = ::open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
                if (out >= 0) {
                    (void)!::write(out, "EMFILE\n", 7);
                    ::close(out);
                }
            }
            errno = EMFILE;
            return -1;
        }
    }
    static const Control real = next_definition<Control>("fcntl");
    return real(fd, command, argument);
}

template <typename Entry>
Entry* read_or_fail(const char* symbol, DIR* dir)
{
    using Read = Entry* (*)(DIR*);
    static const Read real = next_definition<Read>(symbol);
    Entry* entry = real(dir);
    const char* poison = std::getenv("FERRY_READDIR_FAULT_NAME");
    if (entry != nullptr && poison != nullptr && std::strcmp(entry->d_name, poison) == 0) {
        errno = EIO;
        return nullptr;
    }
    return entry;
}

// FERRY_PUBLISH_PAUSE_MS, after a rename that returned `result`.
int after_rename(const char* from, const char* to, int result)
{
    const char* pause = std::getenv("FERRY_PUBLISH_PAUSE_MS");
    if (pause != nullptr && result == 0 && std::strncmp(from, ".ferry-partial-", 15) == 0 && to[0] != '.') {
        const int saved = errno;
        const long ms = std::strtol(pause, nullptr, 10);
        const struct timespec wait {ms / 1000, (ms % 1000) * 1'000'000};
        ::nanosleep(&wait, nullptr);
        errno = saved;
    }
    return result;
}

// A fault of the form "N:ERRNO:REST" in the variable `name`: the number
// of calls to fail, the errno numbered ERRNO, and what the rest names.
struct CountedFault {
    long count = 0;
    int error = 0;
    std::string rest;
};

std::optional<CountedFault> counted_fault(const char* name)
{
    const char* fault = std::getenv(name);
    const char* first = fault != nullptr ? std::strchr(fault, ':') : nullptr;
    const char* second = first != nullptr ? std::strchr(first + 1, ':') : nullptr;
    if (second == nullptr) {
        return std::nullopt;
    }
    return CountedFault{std::strtol(fault, nullptr, 10), static_cast<int>(std::strtol(first + 1, nullptr, 10)),
                        second + 1};
}

// Whether one more of `fault`'s calls fails, counted in `failed`; sets errno.
bool fail_once_more(const CountedFault& fault, std::atomic<long>& failed)
{
    if (failed.fetch_add(1) >= fault.count) {
        return false;
    }
    errno = fault.error;
    return true;
}

// FERRY_FSTATAT_FAULT ("N:ERRNO:NAME:ARMED"): whether this fstatat of
// `name` fails.
bool fstatat_fault(const char* name)
{
    static std::atomic<long> failed{0};
    const auto fault = counted_fault("FERRY_FSTATAT_FAULT");
    const auto colon = fault ? fault->rest.find(':') : std::string::npos;
    struct stat armed {};
    return colon != std::string::npos && fault->rest.compare(0, colon, name) == 0 &&
           ::stat(fault->rest.c_str() + colon + 1, &armed) == 0 && fail_once_more(*fault, failed);
}

// FERRY_FSTAT_FAULT ("N:ERRNO:PATH"): whether this fstat of `fd` fails.
bool fstat_fault(int fd)
{
    static std::atomic<long> failed{0};
    const auto fault = counted_fault("FERRY_FSTAT_FAULT");
    if (!fault) {
        return false;
    }
    std::array<char, 4096> named{};
    const std::string link = "/proc/self/fd/" + std::to_string(fd);
    return ::readlink(link.c_str(), named.data(), named.size() - 1) >= 0 && fault->rest == named.data() &&
           fail_once_more(*fault, failed);
}

// FERRY_OPENAT2_FAULT ("N:ERRNO:PATH"): whether this openat2 of `path` fails.
bool openat2_fault(const char* path)
{
    static std::atomic<long> failed{0};
    const auto fault = counted_fault("FERRY_OPENAT2_FAULT");
    return fault && path != nullptr && fault->rest == path && fail_once_more(*fault, failed);
}

// FERRY_OPENAT_FAULT ("N:ERRNO:NAME:SKIP"): whether this openat of `name`
// fails.
bool openat_fault(const char* name)
{
    static std::atomic<long> seen{0};
    static std::atomic<long> failed{0};
    const auto fault = counted_fault("FERRY_OPENAT_FAULT");
    const auto colon = fault ? fault->rest.find(':') : std::string::npos;
    if (colon == std::string::npos || name == nullptr || fault->rest.compare(0, colon, name) != 0) {
        return false;
    }
    const long skip = std::strtol(fault->rest.c_str() + colon + 1, nullptr, 10);
    return seen.fetch_add(1) >= skip && fail_once_more(*fault, failed);
}

} // namespace

extern "C" {

// syscall(3), through which ferryd calls openat2 (glibc 2.36 has no
// wrapper). Its arguments are up to six longs, which the x86-64 and aarch64
// calling conventions pass in registers: all six go on, as glibc's own
// syscall(3) reads them, whatever the call passed.
long syscall(long number, ...)
{
    // A constant-initialized atomic, not a static initialized by a call:
    // that call's guard waits, under contention, through
    // syscall(SYS_futex), which would come back here.
    using Syscall = long (*)(long, ...);
    static std::atomic<Syscall> next{nullptr};
    Syscall real = next.load();
    if (real == nullptr) {
        real = next_definition<Syscall>("syscall");
        next.store(real);
    }
    std::array<long, 6> arguments{};
    va_list list;
    va_start(list, number);
    for (auto& argument : arguments) {
        argument = va_arg(list, long);
    }
    va_end(list);
    if (number == SYS_openat2 && openat2_fault(reinterpret_cast<const char*>(arguments[1]))) {
        return -1;
    }
    return real(number, arguments[0], arguments[1], arguments[2], arguments[3], arguments[4], arguments[5]);
}

int unlinkat(int folder, const char* name, int flags)
{
    using Unlink = int (*)(int, const char*, int);
    static const Unlink real = next_definition<Unlink>("unlinkat");
    if (const char* delay = std::getenv("FERRY_UNLINK_DELAY_MS")) {
        const long milliseconds = std::strtol(delay, nullptr, 10);
        const struct timespec wait {milliseconds / 1000, (milliseconds % 1000) * 1'000'000};
        ::nanosleep(&wait, nullptr);
    }
    if (const char* delay = std::getenv("FERRY_SET_ASIDE_UNLINK_DELAY_MS");
        delay != nullptr && std::strncmp(name, ".ferry-removing-", 16) == 0) {
        const long milliseconds = std::strtol(delay, nullptr, 10);
        const struct timespec wait {
            milliseconds / 1000, (milliseconds % 1000) * 1'000'000
        };
        ::nanosleep(&wait, nullptr);
    }
    if (const char* swap = std::getenv("FERRY_RENAME_BEFORE_UNLINK"); swap != nullptr && (flags & AT_REMOVEDIR) == 0) {
        static std::atomic<bool> done{false};
        const char* slash = std::strchr(swap, '/');
        if (slash != nullptr && !done.load()) {
            const std::string from(swap, slash);
            if (::renameat(folder, from.c_str(), folder, slash + 1) == 0) {
                done.store(true);
            }
        }
    }
    const int result = real(folder, name, flags);
    if (const char* taken = std::getenv("FERRY_CREATE_AFTER_SET_ASIDE_UNLINK");
        taken != nullptr && result == 0 && std::strncmp(name, ".ferry-removing-", 16) == 0) {
        static std::atomic<bool> done{false};
        if (!done.exchange(true)) {
            const int fd = ::openat(folder, taken, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd >= 0) {
                ::close(fd);
            }
        }
    }
    return result;
}

int renameat(int from_folder, const char* from, int to_folder, const char* to)
{
    using Rename = int (*)(int, const char*, int, const char*);
    static const Rename real = next_definition<Rename>("renameat");
    return after_rename(from, to, real(from_folder, from, to_folder, to));
}

int renameat2(int from_folder, const char* from, int to_folder, const char* to, unsigned int flags)
{
    using Rename = int (*)(int, const char*, int, const char*, unsigned int);
    static const Rename real = next_definition<Rename>("renameat2");
    if (const char* swap = std::getenv("FERRY_RENAME_BEFORE_SET_ASIDE");
        swap != nullptr && std::strncmp(to, ".ferry-removing-", 16) == 0) {
        static std::atomic<bool> done{false};
        const char* slash = std::strchr(swap, '/');
        if (slash != nullptr && !done.exchange(true)) {
            const std::string moved(swap, slash);
            (void)::renameat(from_folder, moved.c_str(), from_folder, slash + 1);
        }
    }
    if (flags != 0 && std::getenv("FERRY_NO_RENAME_FLAGS") != nullptr) {
        errno = EINVAL;
        return -1;
    }
    return after_rename(from, to, real(from_folder, from, to_folder, to, flags));
}

int fchmod(int fd, mode_t mode)
{
    using Chmod = int (*)(int, mode_t);
    static const Chmod real = next_definition<Chmod>("fchmod");
    if (std::getenv("FERRY_FCHMOD_ESTALE") != nullptr && (mode & 07777) != 0600) {
        errno = ESTALE;
        return -1;
    }
    return real(fd, mode);
}

int fsetxattr(int fd, const char* name, const void* value, size_t size, int flags)
{
    using Set = int (*)(int, const char*, const void*, size_t, int);
    static const Set real = next_definition<Set>("fsetxattr");
    if (std::getenv("FERRY_NO_FERRY_XATTR") != nullptr && std::strstr(name, "ferry") != nullptr) {
        errno = ENOTSUP;
        return -1;
    }
    return real(fd, name, value, size, flags);
}

int openat(int folder, const char* name, int flags, ...)
{
    // The mode is there only with O_CREAT or O_TMPFILE (open(2)); promoted
    // to int as a variadic argument.
    int mode = 0;
    if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
        va_list arguments;
        va_start(arguments, flags);
        mode = va_arg(arguments, int);
        va_end(arguments);
    }
    using Open = int (*)(int, const char*, int, ...);
    static const Open real = next_definition<Open>("openat");
    return openat_fault(name) ? -1 : real(folder, name, flags, mode);
}

// The same function under glibc's 64-bit-offset name (one implementation
// in the C library on 64-bit systems).
int openat64(int folder, const char* name, int flags, ...) __attribute__((alias("openat")));

int fstatat(int folder, const char* name, struct stat* st, int flags)
{
    using Stat = int (*)(int, const char*, struct stat*, int);
    static const Stat real = next_definition<Stat>("fstatat");
    return fstatat_fault(name) ? -1 : real(folder, name, st, flags);
}

// The name a 64-bit-offset build calls.
int fstatat64(int folder, const char* name, struct stat64* st, int flags)
{
    using Stat = int (*)(int, const char*, struct stat64*, int);
    static const Stat real = next_definition<Stat>("fstatat64");
    return fstatat_fault(name) ? -1 : real(folder, name, st, flags);
}

int fstat(int fd, struct stat* st)
{
    using Stat = int (*)(int, struct stat*);
    static const Stat real = next_definition<Stat>("fstat");
    return fstat_fault(fd) ? -1 : real(fd, st);
}

// The name a 64-bit-offset build calls.
int fstat64(int fd, struct stat64* st)
{
    using Stat = int (*)(int, struct stat64*);
    static const Stat real = next_definition<Stat>("fstat64");
    return fstat_fault(fd) ? -1 : real(fd, st);
}

int flock(int fd, int operation)
{
    using Lock = int (*)(int, int);
    static const Lock real = next_definition<Lock>("flock");
    if (const char* awaited = std::getenv("FERRY_FLOCK_WAIT_FOR"); awaited != nullptr && (operation & LOCK_EX) != 0) {
        const struct timespec step {0, 10'000'000};
        struct stat st {};
        for (int waited = 0; waited < 3000 && ::stat(awaited, &st) != 0; ++waited) {
            ::nanosleep(&step, nullptr);
        }
    }
    return real(fd, operation);
}

ssize_t fgetxattr(int fd, const char* name, void* value, size_t size)
{
    using Get = ssize_t (*)(int, const char*, void*, size_t);
    static const Get real = next_definition<Get>("fgetxattr");
    if (std::getenv("FERRY_DEFAULT_ACL_EIO") != nullptr && std::strcmp(name, "system.posix_acl_default") == 0) {
        errno = EIO;
        return -1;
    }
    const char* no_ferry_xattr = std::getenv("FERRY_NO_FERRY_XATTR");
    if (no_ferry_xattr != nullptr && std::strcmp(no_ferry_xattr, "all") == 0 && std::strstr(name, "ferry") != nullptr) {
        errno = ENOTSUP;
        return -1;
    }
    return real(fd, name, value, size);
}

int mkdirat(int folder, const char* name, mode_t mode)
{
    using Make = int (*)(int, const char*, mode_t);
    static const Make real = next_definition<Make>("mkdirat");
    const char* poison = std::getenv("FERRY_MKDIR_FAULT_NAME");
    if (poison != nullptr && std::strcmp(name, poison) == 0) {
        errno = ENOSPC;
        return -1;
    }
    return real(folder, name, mode);
}

int fsync(int fd)
{
    using Sync = int (*)(int);
    static const Sync real = next_definition<Sync>("fsync");
    if (const char* failing = std::getenv("FERRY_FSYNC_FAULT_PATH"); failing != nullptr) {
        char link[64];
        char path[4096];
        std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        const ssize_t length = ::readlink(link, path, sizeof path - 1);
        if (length > 0 && std::string_view(path, static_cast<std::size_t>(length)) == failing) {
            errno = EIO;
            return -1;
        }
    }
    const int result = real(fd);
    if (const char* log = std::getenv("FERRY_FSYNC_LOG"); log != nullptr && result == 0) {
        char link[64];
        char path[4096];
        std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        const ssize_t length = ::readlink(link, path, sizeof path - 1);
        const int out = ::open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (length > 0 && out >= 0) {
            path[length] = '\n';
            // One write(2) per line: O_APPEND keeps lines of several threads whole.
            (void)!::write(out, path, static_cast<std::size_t>(length) + 1);
        }
        if (out >= 0) {
            ::close(out);
        }
    }
    return result;
}

// OpenSSL's SHA-256 (protocol/digest.cpp), declared here so that the
// library needs no OpenSSL headers; the definition it forwards to is
// libcrypto's.
int SHA256_Update(void* context, const void* data, std::size_t length)
{
    using Update = int (*)(void*, const void*, std::size_t);
    static const Update real = next_definition<Update>("SHA256_Update");
    if (const char* log = std::getenv("FERRY_SHA256_LOG"); log != nullptr) {
        const bool main_thread = ::syscall(SYS_gettid) == ::getpid();
        char line[64];
        const int length_written =
            std::snprintf(line, sizeof line, "%s %zu\n", main_thread ? "main" : "other", length);
        const int out = ::open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (out >= 0) {
            (void)!::write(out, line, static_cast<std::size_t>(length_written)); // one write(2) per line
            ::close(out);
        }
    }
    return real(context, data, length);
}

int fallocate(int fd, int mode, off_t offset, off_t length)
{
    using Allocate = int (*)(int, int, off_t, off_t);
    static const Allocate real = next_definition<Allocate>("fallocate");
    if (mode == FALLOC_FL_KEEP_SIZE && std::getenv("FERRY_FALLOCATE_HALF_THEN_ENOSPC") != nullptr) {
        (void)real(fd, mode, offset, length / 2);
        errno = ENOSPC;
        return -1;
    }
    return real(fd, mode, offset, length);
}

int fallocate64(int fd, int mode, off64_t offset, off64_t length)
{
    return fallocate(fd, mode, offset, length);
}

int fcntl(int fd, int command, ...)
{
    va_list arguments;
    va_start(arguments, command);
    void* argument = va_arg(arguments, void*);
    va_end(arguments);
    return fcntl_or_fail(fd, command, argument);
}

// The same function under glibc's 64-bit-offset name (one implementation
// in the C library on 64-bit systems).
int fcntl64(int fd, int command, ...) __attribute__((alias("fcntl")));

struct dirent* readdir(DIR* dir)
{
    return read_or_fail<struct dirent>("readdir", dir);
}

struct dirent64* readdir64(DIR* dir)
{
    return read_or_fail<struct dirent64>("readdir64", dir);
}

} // extern "C"
