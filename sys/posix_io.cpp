#include "posix_io.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace ferry::sys {

namespace {

// One loop for all four: `step` moves at most `left` bytes at `done` bytes
// into the span and returns what read(2)/write(2) would. `writing` decides
// what a zero means: the end of the file for a read, a stuck device (EIO)
// for a write.
template <class Step>
Transfer run(std::size_t size, bool writing, StopCheck stop, Step&& step)
{
    Transfer transfer;
    while (transfer.done < size) {
        const ssize_t moved = step(transfer.done, size - transfer.done);
        if (moved > 0) {
            transfer.done += static_cast<std::size_t>(moved);
            continue;
        }
        if (moved == 0) {
            if (writing) {
                transfer.error = EIO;
            }
            return transfer;
        }
        if (errno == EINTR && (stop == nullptr || !stop())) {
            continue;
        }
        transfer.error = errno;
        return transfer;
    }
    return transfer;
}

} // namespace

Transfer write_all(int fd, std::span<const std::byte> bytes, StopCheck stop)
{
    return run(bytes.size(), true, stop,
               [&](std::size_t at, std::size_t left) { return ::write(fd, bytes.data() + at, left); });
}

Transfer pwrite_all(int fd, std::span<const std::byte> bytes, off_t offset)
{
    return run(bytes.size(), true, nullptr, [&](std::size_t at, std::size_t left) {
        return ::pwrite(fd, bytes.data() + at, left, offset + static_cast<off_t>(at));
    });
}

Transfer read_full(int fd, std::span<std::byte> buffer, StopCheck stop)
{
    return run(buffer.size(), false, stop,
               [&](std::size_t at, std::size_t left) { return ::read(fd, buffer.data() + at, left); });
}

Transfer pread_full(int fd, std::span<std::byte> buffer, off_t offset)
{
    return run(buffer.size(), false, nullptr, [&](std::size_t at, std::size_t left) {
        return ::pread(fd, buffer.data() + at, left, offset + static_cast<off_t>(at));
    });
}

bool lacks_rename_flags(int error)
{
    return error == EINVAL || error == ENOSYS || error == EOPNOTSUPP;
}

int rename_to_fresh_name(int dir, const char* from, const char* to)
{
    if (::renameat2(dir, from, dir, to, RENAME_NOREPLACE) == 0) {
        return 0;
    }
    if (!lacks_rename_flags(errno)) {
        return -1;
    }
    return ::renameat(dir, from, dir, to);
}

int rename_no_replace(int from_dir, const char* from, int to_dir, const char* to)
{
    if (::renameat2(from_dir, from, to_dir, to, RENAME_NOREPLACE) == 0) {
        return 0;
    }
    if (!lacks_rename_flags(errno)) {
        return -1;
    }
    // A second name first (EEXIST when `to` is taken), then the old one
    // goes; between the two the file has both names, never neither.
    if (::linkat(from_dir, from, to_dir, to, 0) != 0) {
        return -1;
    }
    if (::unlinkat(from_dir, from, 0) != 0) {
        const int saved = errno;
        (void)::unlinkat(to_dir, to, 0); // published under a name kept by nobody else: take it back
        errno = saved;
        return -1;
    }
    return 0;
}

namespace {

// How both look at an entry: never through a final symbolic link, never
// mounting an automount point (AT_NO_AUTOMOUNT, as fstatat(2) implies it
// since Linux 4.11; statx(2) mounts unless asked), "" being `dir` itself.
int look_flags(const char* name)
{
    return AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (*name == '\0' ? AT_EMPTY_PATH : 0);
}

} // namespace

std::optional<std::uint64_t> mount_id_of(int dir, const char* name)
{
    struct ::statx stx {};
    if (::statx(dir, name, look_flags(name), STATX_MNT_ID, &stx) != 0 || (stx.stx_mask & STATX_MNT_ID) == 0) {
        return std::nullopt;
    }
    return stx.stx_mnt_id;
}

int stat_with_mount(int dir, const char* name, struct ::stat& st, std::optional<std::uint64_t>& mount_id)
{
    struct ::statx stx {};
    if (::statx(dir, name, look_flags(name), STATX_BASIC_STATS | STATX_MNT_ID, &stx) != 0) {
        return -1;
    }
    st = {};
    st.st_dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
    st.st_ino = stx.stx_ino;
    st.st_mode = stx.stx_mode;
    st.st_nlink = stx.stx_nlink;
    st.st_uid = stx.stx_uid;
    st.st_gid = stx.stx_gid;
    st.st_rdev = makedev(stx.stx_rdev_major, stx.stx_rdev_minor);
    st.st_size = static_cast<off_t>(stx.stx_size);
    st.st_blksize = static_cast<blksize_t>(stx.stx_blksize);
    st.st_blocks = static_cast<blkcnt_t>(stx.stx_blocks);
    st.st_atim = {stx.stx_atime.tv_sec, stx.stx_atime.tv_nsec};
    st.st_mtim = {stx.stx_mtime.tv_sec, stx.stx_mtime.tv_nsec};
    st.st_ctim = {stx.stx_ctime.tv_sec, stx.stx_ctime.tv_nsec};
    mount_id = (stx.stx_mask & STATX_MNT_ID) != 0 ? std::optional<std::uint64_t>(stx.stx_mnt_id) : std::nullopt;
    return 0;
}

std::optional<std::uint64_t> free_bytes(int fd)
{
    struct ::statvfs fs {};
    if (::fstatvfs(fd, &fs) != 0) {
        return std::nullopt;
    }
    return static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
}

bool proc_fd_links_are_procfs()
{
    struct ::statfs fs {};
    return ::statfs("/proc/self/fd", &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC;
}

} // namespace ferry::sys
