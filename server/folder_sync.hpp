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
//
// A commit with `defer_sync` (PROTOCOL.md 4.5, 4.14) leaves its folder's
// fsync for later: defer() pins the folder (a descriptor of its own, so the
// key stays its) and notes which fsync would cover the change, and a later
// sync(PendingFolderSync&) waits for that one, or runs it, under the same
// rule. An fsync any caller runs in between counts: a push that sends a
// folder's files over several connections then syncs each folder about
// once, not once per file.
#pragma once

#include "error.hpp"

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace ferry::server {

// What a descriptor passed to FolderSyncs::sync can do: fsync(2) fails with
// EBADF on an O_PATH one (open(2)), which must first be opened for reading.
enum class FolderFd {
    path_only, // O_PATH (a lookup's): opened again, readable, to be synced
    readable,  // O_RDONLY (the root's, a commit's destination): synced as it is
};

class FolderSyncs;

// A folder whose entries a deferred commit changed and did not sync: held
// pinned in its FolderSyncs until synced (FolderSyncs::sync) or dropped.
// Move-only; dropping it unpins the folder without syncing.
class PendingFolderSync {
public:
    PendingFolderSync() = default;
    PendingFolderSync(PendingFolderSync&& other) noexcept;
    PendingFolderSync& operator=(PendingFolderSync&& other) noexcept;
    PendingFolderSync(const PendingFolderSync&) = delete;
    PendingFolderSync& operator=(const PendingFolderSync&) = delete;
    ~PendingFolderSync();

    bool empty() const { return owner_ == nullptr; }
    bool same_folder(const PendingFolderSync& other) const { return owner_ == other.owner_ && key_ == other.key_; }
    // Takes over a later change of the same folder: a sync that covers it
    // covers this one's too, so one pin is enough.
    void absorb(PendingFolderSync&& later);
    // The folder's path, for messages.
    const std::string& name() const { return name_; }

private:
    friend class FolderSyncs;
    void release();

    FolderSyncs* owner_ = nullptr;
    std::pair<dev_t, ino_t> key_{};
    std::uint64_t needed_ = 0; // the first fsync of the folder that covers the change
    std::string name_;
};

class FolderSyncs {
public:
    // At most this many folders pinned at once by deferred commits (each
    // holds a descriptor), and at most an eighth of the process's
    // descriptor limit (RLIMIT_NOFILE): past it, a commit syncs its folder
    // at once.
    static constexpr std::size_t kMaxPinnedFolders = 1024;

    // How a folder is made durable: 0, or an errno. The default fsyncs the
    // folder (opened for reading first when `fd` is O_PATH); tests pass
    // their own to control timing, used for both kinds of descriptor.
    using SyncFolder = std::function<int(int fd)>;

    FolderSyncs();
    explicit FolderSyncs(SyncFolder sync_folder, std::size_t max_pinned = kMaxPinnedFolders);
    FolderSyncs(const FolderSyncs&) = delete;
    FolderSyncs& operator=(const FolderSyncs&) = delete;

    // The one instance every thread of the process shares.
    static FolderSyncs& process();

    // Makes the entries of folder `fd` durable (see above); `name` is for
    // the error's message. An error of an fsync that started after this
    // call began is this call's error too.
    std::optional<Error> sync(int fd, std::string_view name, FolderFd kind = FolderFd::path_only);

    // Instead of sync(): notes that an entry of folder `fd` (readable or
    // O_PATH) changed just now and pins the folder, with a descriptor of
    // its own, for a later sync(PendingFolderSync&). None where the folder
    // cannot be pinned (kMaxPinnedFolders reached, no descriptor left): the
    // caller syncs at once then.
    std::optional<PendingFolderSync> defer(int fd, std::string_view name);
    // Makes the change `pending` noted durable: returns once an fsync of its
    // folder that started after the change has completed, run by any caller
    // (sync() included). The folder is unpinned either way. An error of such
    // an fsync is this call's error.
    std::optional<Error> sync(PendingFolderSync& pending);

    // fsyncs run so far.
    std::uint64_t fsyncs() const;
    // Callers inside sync() now, waiting or syncing (for tests).
    std::size_t callers() const;
    // Folders pinned by deferred changes now (for tests).
    std::size_t pinned() const;

private:
    friend class PendingFolderSync; // unpins as it goes
    struct Folder {
        std::uint64_t started = 0;     // fsyncs begun, numbered from 1
        std::uint64_t completed = 0;   // the number of the last one ended
        std::uint64_t failed = 0;      // the number of the last one that failed
        int failure = 0;               // its errno
        bool running = false;
        std::size_t callers = 0;       // the entry goes when the last one leaves
        std::size_t pins = 0;          // ... and the last PendingFolderSync is gone
        int pinned_fd = -1;            // readable, owned while pins > 0
        std::condition_variable ended; // a running fsync ended
    };
    using Key = std::pair<dev_t, ino_t>;

    // Runs or waits for fsyncs of `folder` until one numbered `needed` or
    // later has completed; returns the errno of a failed one among those.
    int sync_until(Folder& folder, std::uint64_t needed, std::unique_lock<std::mutex>& lock,
                   const std::function<int()>& run);
    void forget_if_unused(const Key& key, Folder& folder);
    void unpin(const Key& key);

    SyncFolder sync_folder_;   // for FolderFd::path_only
    SyncFolder sync_readable_; // for FolderFd::readable
    mutable std::mutex mutex_;
    std::size_t max_pinned_ = kMaxPinnedFolders;
    std::map<Key, Folder> folders_; // only folders with callers or pins
    std::uint64_t fsyncs_ = 0;
    std::size_t callers_ = 0;
    std::size_t pinned_ = 0;
};

} // namespace ferry::server
