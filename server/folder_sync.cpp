#include "folder_sync.hpp"

#include "library.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace ferry::server {

namespace {

int fsync_folder(int fd)
{
    // fsync needs a descriptor opened for reading; `fd` is O_PATH.
    const int readable = ::openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (readable < 0) {
        return errno;
    }
    const int result = ::fsync(readable) == 0 ? 0 : errno;
    ::close(readable);
    return result;
}

int fsync_readable_folder(int fd)
{
    return ::fsync(fd) == 0 ? 0 : errno;
}

} // namespace

FolderSyncs::FolderSyncs() : sync_folder_(fsync_folder), sync_readable_(fsync_readable_folder) {}

FolderSyncs::FolderSyncs(SyncFolder sync_folder) : sync_folder_(sync_folder), sync_readable_(std::move(sync_folder)) {}

FolderSyncs& FolderSyncs::process()
{
    static FolderSyncs shared;
    return shared;
}

std::optional<Error> FolderSyncs::sync(int fd, std::string_view name, FolderFd kind)
{
    struct ::stat st {};
    if (::fstat(fd, &st) != 0) {
        return file_error(errno, "cannot sync folder", name);
    }
    std::unique_lock lock(mutex_);
    ++callers_;
    const auto key = std::make_pair(st.st_dev, st.st_ino);
    Folder& folder = folders_[key];
    ++folder.callers;
    // The first fsync to start from now on: one running already may have
    // begun before the caller's change reached the folder.
    const std::uint64_t needed = folder.started + 1;
    while (folder.completed < needed) {
        if (folder.running) {
            folder.ended.wait(lock);
            continue;
        }
        folder.running = true;
        const std::uint64_t number = ++folder.started;
        ++fsyncs_;
        lock.unlock();
        const int failure = kind == FolderFd::readable ? sync_readable_(fd) : sync_folder_(fd);
        lock.lock();
        folder.running = false;
        folder.completed = number;
        if (failure != 0) {
            folder.failed = number;
            folder.failure = failure;
        }
        folder.ended.notify_all();
    }
    // Any failure of an fsync that started after the caller arrived may
    // have lost its entry: report it, even if a later one succeeded (a
    // file system reports a writeback error once).
    const int failure = folder.failed >= needed ? folder.failure : 0;
    --callers_;
    if (--folder.callers == 0) {
        folders_.erase(key);
    }
    lock.unlock();
    if (failure != 0) {
        return file_error(failure, "cannot sync folder", name);
    }
    return std::nullopt;
}

std::uint64_t FolderSyncs::fsyncs() const
{
    std::lock_guard lock(mutex_);
    return fsyncs_;
}

std::size_t FolderSyncs::callers() const
{
    std::lock_guard lock(mutex_);
    return callers_;
}

} // namespace ferry::server
