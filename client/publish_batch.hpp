// Verified downloads published in groups (sync's pull, several-file get),
// with the promise of a single get kept: a published file's bytes and
// mtime are durable before its name appears (fsync, then rename), so that
// after a crash a name shows either nothing or the whole verified file;
// and each rename is made durable by a sync of its folder.
//
// One at a time, every file costs an fsync that waits for its own journal
// commit and a folder fsync after its rename. Here a batch's parts are
// synced together, from several threads at once (ext4's journal then
// commits them in one transaction, and the block layer merges their cache
// flushes), then renamed, then each folder that received a file is synced
// once. See publish_batch.cpp for why not one syncfs.
#pragma once

#include "local_files.hpp"
#include "status.hpp"

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ferry::client {

// A batch is published when it holds this many files or bytes (the bytes
// bound how much written data waits unsynced; the files bound the open
// descriptors: at most two batches' worth, one held and one publishing;
// a command passes its share of its descriptor limit, descriptors.hpp).
inline constexpr std::size_t kPublishBatchFiles = 64;
inline constexpr std::uint64_t kPublishBatchBytes = 64ULL * 1024 * 1024;
// Threads that issue one batch's fsyncs at the same time.
inline constexpr std::size_t kPublishSyncThreads = 16;

// The steps a batch takes, in the order it promises, for tests to watch.
enum class PublishStep { sync_part, rename, sync_folder };

class PublishBatch {
public:
    // Called once per file, after its publish and its folder's sync (or
    // with the error that stopped it; the verified part then stays on
    // disk, without a sidecar, and the next get of the file starts over).
    using Done = std::function<void(const Status&)>;
    using Observer = std::function<void(PublishStep, const std::string& path)>;

    explicit PublishBatch(std::size_t max_files = kPublishBatchFiles, std::uint64_t max_bytes = kPublishBatchBytes);
    PublishBatch(const PublishBatch&) = delete;
    PublishBatch& operator=(const PublishBatch&) = delete;
    // Publishes what is still held: a verified file is never dropped.
    ~PublishBatch();

    // Holds a verified part (`bytes`: what was written to it this time);
    // when the batch is full, publishes it on the calling thread. Safe from
    // several threads; waits while a full batch waits for the one before.
    void add(VerifiedPart part, std::uint64_t bytes, Done done);
    // Publishes what is held now (call it when the transfers are over).
    void flush();

    // Tests: each step as it is taken (from any of the batch's threads).
    void observe(Observer observer) { observer_ = std::move(observer); }

private:
    struct Held {
        VerifiedPart part;
        Done done;
    };
    class Helpers; // the threads that sync side by side (publish_batch.cpp)

    void publish(std::vector<Held>& batch);
    void seen(PublishStep step, const std::string& path);

    std::size_t max_files_;
    std::uint64_t max_bytes_;
    std::mutex mutex_;
    std::condition_variable published_;
    std::vector<Held> held_;
    std::uint64_t held_bytes_ = 0;
    bool publishing_ = false;
    std::mutex observer_mutex_;
    Observer observer_;
    std::unique_ptr<Helpers> helpers_; // started with the first publish
};

} // namespace ferry::client
