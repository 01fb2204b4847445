#include "publish_batch.hpp"

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>
#include <utility>

namespace ferry::client {

namespace {

// Runs work(0..count-1) on up to kPublishSyncThreads threads, the calling
// one included, and waits for them all.
//
// Why fsyncs side by side rather than one syncfs(2) on the target's file
// system: syncfs writes and waits for every dirty page of that file
// system, other programs' included, so on a busy machine (a build, a
// database, another copy) a pull would wait for their gigabytes, a cost
// with no bound that we cannot see; and it reports an error for the whole
// file system, not for the file it hit. Concurrent fsyncs cost only our own
// bytes: each writes its file's pages (most already on their way, started
// by start_writeback when the file was verified), and the journal commits
// the inodes of all that wait at once in one transaction, one cache flush.
// Measured writing 2,000 files of 1 KiB-1 MiB (300 MB; ext4 on virtio, a
// loaded 2-core machine, so wide spreads): fsync then rename file by file
// on 8 threads 4.6-6.4 s; batches of 64 synced by 16 threads 2.0-4.9 s; a
// syncfs per batch 3.6 s, with nothing else writing. A whole pull of that
// tree went from 10.8 s to 6.4 s (median of 3) with the batches.
template <class Work>
void side_by_side(std::size_t count, Work work)
{
    const std::size_t threads = std::min(count, kPublishSyncThreads);
    std::atomic<std::size_t> next{0};
    const auto run = [&] {
        for (std::size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
            work(i);
        }
    };
    std::vector<std::thread> started;
    for (std::size_t i = 1; i < threads; ++i) {
        started.emplace_back(run);
    }
    run();
    for (auto& thread : started) {
        thread.join();
    }
}

std::string folder_of(const std::string& path)
{
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

} // namespace

PublishBatch::PublishBatch(std::size_t max_files, std::uint64_t max_bytes)
    : max_files_(std::max<std::size_t>(1, max_files)), max_bytes_(max_bytes)
{
}

PublishBatch::~PublishBatch()
{
    flush();
}

void PublishBatch::add(VerifiedPart part, std::uint64_t bytes, Done done)
{
    std::vector<Held> full;
    {
        std::unique_lock lock(mutex_);
        const auto is_full = [&] { return held_.size() >= max_files_ || held_bytes_ >= max_bytes_; };
        published_.wait(lock, [&] { return !publishing_ || !is_full(); });
        held_.push_back({std::move(part), std::move(done)});
        held_bytes_ += bytes;
        if (!is_full() || publishing_) {
            return;
        }
        full.swap(held_);
        held_bytes_ = 0;
        publishing_ = true;
    }
    publish(full);
    {
        const std::lock_guard lock(mutex_);
        publishing_ = false;
    }
    published_.notify_all();
}

void PublishBatch::flush()
{
    std::vector<Held> rest;
    {
        std::unique_lock lock(mutex_);
        published_.wait(lock, [&] { return !publishing_; });
        if (held_.empty()) {
            return;
        }
        rest.swap(held_);
        held_bytes_ = 0;
        publishing_ = true;
    }
    publish(rest);
    {
        const std::lock_guard lock(mutex_);
        publishing_ = false;
    }
    published_.notify_all();
}

void PublishBatch::seen(PublishStep step, const std::string& path)
{
    if (observer_) {
        const std::lock_guard lock(observer_mutex_);
        observer_(step, path);
    }
}

void PublishBatch::publish(std::vector<Held>& batch)
{
    // 1. Every part's bytes and mtime durable, side by side.
    std::vector<Status> status(batch.size(), success());
    side_by_side(batch.size(), [&](std::size_t i) {
        status[i] = batch[i].part.part.sync();
        seen(PublishStep::sync_part, batch[i].part.part.path());
    });

    // 2. Only then the renames: a name never shows a file the disk may not hold.
    std::map<std::string, std::vector<std::size_t>> folders; // folder -> the files published into it
    for (std::size_t i = 0; i < batch.size(); ++i) {
        VerifiedPart& part = batch[i].part;
        const std::string part_name = part.part.path();
        if (status[i]) {
            status[i] = part.part.close();
        }
        if (status[i]) {
            status[i] = publish_download(part_name, part.dest);
            seen(PublishStep::rename, part.dest);
        }
        if (!status[i]) {
            batch[i].done(status[i]);
            continue;
        }
        (void)remove_file(part.state);
        folders[folder_of(part.dest)].push_back(i);
    }

    // 3. One sync per folder that received a file, side by side: the renames durable.
    std::vector<std::pair<std::string, std::vector<std::size_t>>> listed(folders.begin(), folders.end());
    side_by_side(listed.size(), [&](std::size_t f) {
        const std::string& folder = listed[f].first;
        auto opened = LocalFile::open(folder, O_RDONLY | O_DIRECTORY);
        const Status synced = opened ? opened->sync() : Status(opened.error());
        seen(PublishStep::sync_folder, folder);
        for (const std::size_t i : listed[f].second) {
            status[i] = synced;
        }
    });
    for (const auto& [folder, files] : listed) {
        for (const std::size_t i : files) {
            batch[i].done(status[i]);
        }
    }
}

} // namespace ferry::client
