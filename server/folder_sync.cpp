#include "folder_sync.hpp"

#include "library.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

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

// An eighth of the descriptors the process may open, at most
// kMaxPinnedFolders: deferred folders must not take those that connections
// and uploads need where the limit is low (a unit's LimitNOFILE=). Read
// when the process's instance is made, at the first folder sync, after
// main() raised the soft limit to the hard one.
std::size_t pinned_budget()
{
    struct ::rlimit limit {};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
        return FolderSyncs::kMaxPinnedFolders;
    }
    return std::min<std::size_t>(FolderSyncs::kMaxPinnedFolders, limit.rlim_cur / 8);
}

} // namespace

FolderSyncs::FolderSyncs()
    : sync_folder_(fsync_folder), sync_readable_(fsync_readable_folder), max_pinned_(pinned_budget())
{
}

FolderSyncs::FolderSyncs(SyncFolder sync_folder, std::size_t max_pinned)
    : sync_folder_(sync_folder), sync_readable_(std::move(sync_folder)), max_pinned_(max_pinned)
{
}

FolderSyncs& FolderSyncs::process()
{
    static FolderSyncs shared;
    return shared;
}

int FolderSyncs::sync_until(Folder& folder, std::uint64_t needed, std::unique_lock<std::mutex>& lock,
                            const std::function<int()>& run)
{
    while (folder.completed < needed) {
        if (folder.running) {
            folder.ended.wait(lock);
            continue;
        }
        folder.running = true;
        const std::uint64_t number = ++folder.started;
        ++fsyncs_;
        lock.unlock();
        const int failure = run();
        lock.lock();
        folder.running = false;
        folder.completed = number;
        if (failure != 0) {
            folder.failed = number;
            folder.failure = failure;
        }
        folder.ended.notify_all();
    }
    // Any failure of an fsync that started after the change may have lost
    // its entry: report it, even if a later one succeeded (a file system
    // reports a writeback error once).
    return folder.failed >= needed ? folder.failure : 0;
}

void FolderSyncs::forget_if_unused(const Key& key, Folder& folder)
{
    if (folder.callers == 0 && folder.pins == 0) {
        folders_.erase(key);
    }
}

std::optional<Error> FolderSyncs::sync(int fd, std::string_view name, FolderFd kind)
{
    struct ::stat st {};
    if (::fstat(fd, &st) != 0) {
        return file_error(errno, "cannot sync folder", name);
    }
    std::unique_lock lock(mutex_);
    ++callers_;
    const Key key{st.st_dev, st.st_ino};
    Folder& folder = folders_[key];
    ++folder.callers;
    // The first fsync to start from now on: one running already may have
    // begun before the caller's change reached the folder.
    const int failure = sync_until(folder, folder.started + 1, lock,
                                   [&] { return kind == FolderFd::readable ? sync_readable_(fd) : sync_folder_(fd); });
    --callers_;
    --folder.callers;
    forget_if_unused(key, folder);
    lock.unlock();
    if (failure != 0) {
        return file_error(failure, "cannot sync folder", name);
    }
    return std::nullopt;
}

std::optional<PendingFolderSync> FolderSyncs::defer(int fd, std::string_view name)
{
    struct ::stat st {};
    if (::fstat(fd, &st) != 0) {
        return std::nullopt;
    }
    const Key key{st.st_dev, st.st_ino};
    std::unique_lock lock(mutex_);
    Folder* folder = &folders_[key];
    if (folder->pins == 0) {
        // Its own descriptor, readable for fsync(2), held while pinned: the
        // caller's goes with its commit, and an O_PATH one cannot be synced.
        // Opened without the lock, which every folder sync of the process
        // takes (an open on a network file system may take a while).
        if (pinned_ >= max_pinned_) {
            forget_if_unused(key, *folder);
            return std::nullopt;
        }
        ++folder->callers; // keeps the entry while the lock is let go
        lock.unlock();
        const int opened = ::openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        lock.lock();
        folder = &folders_.at(key);
        --folder->callers;
        if (folder->pins > 0 || opened < 0 || pinned_ >= max_pinned_) {
            // Pinned by another caller meanwhile (its descriptor serves), or
            // not to be pinned after all.
            if (opened >= 0) {
                ::close(opened);
            }
            if (folder->pins == 0) {
                forget_if_unused(key, *folder);
                return std::nullopt;
            }
        } else {
            folder->pinned_fd = opened;
            ++pinned_;
        }
    }
    ++folder->pins;
    PendingFolderSync pending;
    pending.owner_ = this;
    pending.key_ = key;
    // The change is made already: any fsync that starts from now on covers
    // it, and one running now may not.
    pending.needed_ = folder->started + 1;
    pending.name_ = name;
    return pending;
}

std::optional<Error> FolderSyncs::sync(PendingFolderSync& pending)
{
    if (pending.owner_ != this) {
        return std::nullopt;
    }
    std::unique_lock lock(mutex_);
    Folder& folder = folders_.at(pending.key_);
    ++callers_;
    ++folder.callers;
    const int fd = folder.pinned_fd;
    const int failure = sync_until(folder, pending.needed_, lock, [&] { return sync_readable_(fd); });
    --callers_;
    --folder.callers;
    lock.unlock();
    const std::string name = pending.name_;
    pending.release();
    if (failure != 0) {
        return file_error(failure, "cannot sync folder", name);
    }
    return std::nullopt;
}

void FolderSyncs::unpin(const Key& key)
{
    int closing = -1;
    {
        std::lock_guard lock(mutex_);
        const auto found = folders_.find(key);
        if (found == folders_.end()) {
            return;
        }
        Folder& folder = found->second;
        if (--folder.pins == 0) {
            closing = std::exchange(folder.pinned_fd, -1);
            --pinned_;
        }
        forget_if_unused(key, folder);
    }
    if (closing >= 0) {
        ::close(closing);
    }
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

std::size_t FolderSyncs::pinned() const
{
    std::lock_guard lock(mutex_);
    return pinned_;
}

PendingFolderSync::PendingFolderSync(PendingFolderSync&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), key_(other.key_), needed_(other.needed_),
      name_(std::move(other.name_))
{
}

PendingFolderSync& PendingFolderSync::operator=(PendingFolderSync&& other) noexcept
{
    if (this != &other) {
        release();
        owner_ = std::exchange(other.owner_, nullptr);
        key_ = other.key_;
        needed_ = other.needed_;
        name_ = std::move(other.name_);
    }
    return *this;
}

PendingFolderSync::~PendingFolderSync()
{
    release();
}

void PendingFolderSync::absorb(PendingFolderSync&& later)
{
    // The same folder's fsyncs are numbered in order: the later change
    // needs the later (or the same) one, which covers this change too.
    needed_ = std::max(needed_, later.needed_);
    later.release();
}

void PendingFolderSync::release()
{
    if (owner_ != nullptr) {
        std::exchange(owner_, nullptr)->unpin(key_);
    }
}

} // namespace ferry::server
