// Group commit for folder fsyncs. Many uploads published into one folder
// at once each need the folder's new entry durable before their commit
// reply, and one fsync of the folder makes every entry made before it
// started durable: so concurrent callers share one fsync instead of each
// queueing its own behind the others.
//
// The rule is the classic group commit's: a caller returns once an fsync of
// its folder that STARTED AFTER the caller arrived has completed (its own,
// or one another caller ran). An fsync already running when a caller
// arrives may have started before the caller's change and proves nothing
// for it; the callers arriving meanwhile wait for it to end, then one of
// them runs the next fsync for all of them. So a folder sees at most one
// fsync at a time, and N callers arriving together cost about two fsyncs,
// not N.
//
// Folders are told apart by device and inode (not by path: a folder renamed
// meanwhile is still the same folder, and two paths may name one folder).
// That key cannot name two folders in turn while callers share it: an
// entry lives only while it has callers, and each holds a descriptor of its
// folder open, so the inode stays allocated (a deleted folder included) and
// its number cannot be reused by a new folder until the last caller leaves.
// One coalescer serves the whole process (FolderSyncs::process()): every
// worker's pool threads, every Library. Blocking: call it on a pool thread.
#pragma once

#include "error.hpp"

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>

namespace ferry::server {

// What a descriptor passed to FolderSyncs::sync can do: fsync(2) fails with
// EBADF on an O_PATH one (open(2)), which must first be opened for reading.
enum class FolderFd {
    path_only, // O_PATH (a lookup's): opened again, readable, to be synced
    readable,  // O_RDONLY (the root's, a commit's destination): synced as it is
};

class FolderSyncs {
public:
    // How a folder is made durable: 0, or an errno. The default fsyncs the
    // folder (opened for reading first when `fd` is O_PATH); tests pass
    // their own to control timing, used for both kinds of descriptor.
    using SyncFolder = std::function<int(int fd)>;

    FolderSyncs();
    explicit FolderSyncs(SyncFolder sync_folder);
    FolderSyncs(const FolderSyncs&) = delete;
    FolderSyncs& operator=(const FolderSyncs&) = delete;

    // The one instance every thread of the process shares.
    static FolderSyncs& process();

    // Makes the entries of folder `fd` durable (see above); `name` is for
    // the error's message. An error of an fsync that started after this
    // call began is this call's error too.
    std::optional<Error> sync(int fd, std::string_view name, FolderFd kind = FolderFd::path_only);

    // fsyncs run so far.
    std::uint64_t fsyncs() const;
    // Callers inside sync() now, waiting or syncing (for tests).
    std::size_t callers() const;

private:
    struct Folder {
        std::uint64_t started = 0;     // fsyncs begun, numbered from 1
        std::uint64_t completed = 0;   // the number of the last one ended
        std::uint64_t failed = 0;      // the number of the last one that failed
        int failure = 0;               // its errno
        bool running = false;
        std::size_t callers = 0;       // the entry goes when the last one leaves
        std::condition_variable ended; // a running fsync ended
    };

    SyncFolder sync_folder_;   // for FolderFd::path_only
    SyncFolder sync_readable_; // for FolderFd::readable
    mutable std::mutex mutex_;
    std::map<std::pair<dev_t, ino_t>, Folder> folders_; // only folders with callers
    std::uint64_t fsyncs_ = 0;
    std::size_t callers_ = 0;
};

} // namespace ferry::server
