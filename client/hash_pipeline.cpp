#include "hash_pipeline.hpp"

#include <algorithm>

namespace ferry::client {

namespace {

constexpr std::size_t kBlockSize = 1024 * 1024;
// Blocks waiting for the hashing thread: what the reader may run ahead.
constexpr std::size_t kMaxQueuedBlocks = 8;

} // namespace

HashPipeline::HashPipeline(TransferHash hash) : hash_(std::move(hash)), threaded_(hash_.kind() == HashKind::sha256)
{
    if (threaded_) {
        filling_.reserve(kBlockSize);
        worker_ = std::thread([this] { hash_blocks(); });
    }
}

HashPipeline::~HashPipeline()
{
    if (threaded_) {
        {
            const std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        changed_.notify_all();
        worker_.join();
    }
}

void HashPipeline::update(std::span<const std::uint8_t> bytes)
{
    if (!threaded_) {
        hash_.update(bytes.data(), bytes.size());
        return;
    }
    while (!bytes.empty()) {
        const std::size_t take = std::min(bytes.size(), kBlockSize - filling_.size());
        filling_.insert(filling_.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(take));
        bytes = bytes.subspan(take);
        if (filling_.size() == kBlockSize) {
            std::unique_lock lock(mutex_);
            changed_.wait(lock, [&] { return queued_.size() < kMaxQueuedBlocks; });
            hand_over_block(lock);
        }
    }
}

// With the lock held: queues the block being filled and starts a new one.
void HashPipeline::hand_over_block(std::unique_lock<std::mutex>&)
{
    queued_.push_back(std::move(filling_));
    if (spare_.empty()) {
        filling_ = std::vector<std::uint8_t>();
        filling_.reserve(kBlockSize);
    } else {
        filling_ = std::move(spare_.back());
        spare_.pop_back();
        filling_.clear();
    }
    changed_.notify_all();
}

const TransferHash& HashPipeline::hash()
{
    if (threaded_) {
        std::unique_lock lock(mutex_);
        if (!filling_.empty()) {
            hand_over_block(lock);
        }
        changed_.wait(lock, [&] { return queued_.empty() && !hashing_; });
    }
    return hash_;
}

void HashPipeline::hash_blocks()
{
    std::unique_lock lock(mutex_);
    for (;;) {
        changed_.wait(lock, [&] { return stopping_ || !queued_.empty(); });
        if (queued_.empty()) {
            return; // stopping, and nothing left
        }
        std::vector<std::uint8_t> block = std::move(queued_.front());
        queued_.pop_front();
        hashing_ = true;
        lock.unlock();
        hash_.update(block.data(), block.size());
        lock.lock();
        hashing_ = false;
        spare_.push_back(std::move(block));
        changed_.notify_all();
    }
}

} // namespace ferry::client
