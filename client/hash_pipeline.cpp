#include "hash_pipeline.hpp"

#include "block_cache.hpp"

#include <algorithm>

namespace ferry::client {

HashPipeline::HashPipeline(TransferHash hash, Writer writer, Ring ring)
    : hash_(std::move(hash)), writer_(std::move(writer)), stages_(writer_ ? 2 : 1),
      ring_most_(ring == Ring::growing ? kRingMost : kRingStart)
{
    // The threads start when the reader leaves its first block (next()): a
    // download that fits in one block is cheaper done on the caller's thread.
}

void HashPipeline::start_threads()
{
    threads_.emplace_back([this] { run_stage(hashing); });
    if (writer_) {
        threads_.emplace_back([this] { run_stage(writing); });
    }
}

void HashPipeline::work_through_queue(std::unique_lock<std::mutex>&)
{
    while (!queued_.empty()) {
        const Piece piece = queued_.front();
        if (!skipping_) {
            hash_.update(piece.bytes.data(), piece.bytes.size());
            if (writer_ && !failed_) {
                if (auto wrote = writer_(piece.bytes); !wrote) {
                    failed_ = wrote.error();
                }
            }
        }
        --pending_[piece.block];
        queued_.pop_front();
        ++first_;
    }
    done_.fill(first_);
}

bool HashPipeline::threaded() const
{
    return writer_ || hashes_aside(hash_.kind());
}

HashPipeline::~HashPipeline()
{
    {
        const std::lock_guard lock(mutex_);
        stopping_ = true;
        skipping_ = true;
    }
    work_.notify_all();
    for (auto& thread : threads_) {
        thread.join();
    }
    // The next download takes these rather than fresh memory.
    for (auto& block : blocks_) {
        BlockCache::shared().give(std::move(block));
    }
}

std::optional<std::size_t> HashPipeline::block_of(std::span<const std::uint8_t> bytes) const
{
    // Compared as addresses: the blocks are separate allocations.
    const auto at = reinterpret_cast<std::uintptr_t>(bytes.data());
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
        const auto begin = reinterpret_cast<std::uintptr_t>(blocks_[i].get());
        if (at >= begin && at + bytes.size() <= begin + kBlockSize) {
            return i;
        }
    }
    return std::nullopt;
}

Status HashPipeline::failure() const
{
    if (failed_) {
        return *failed_;
    }
    return success();
}

Status HashPipeline::update(std::span<const std::uint8_t> bytes)
{
    if (!threaded()) {
        // XXH3 alone costs less than handing bytes to another thread (a
        // second thread on a busy machine only adds switches).
        hash_.update(bytes.data(), bytes.size());
        return success();
    }
    if (bytes.empty()) {
        const std::lock_guard lock(mutex_);
        return failure();
    }
    if (const auto block = block_of(bytes)) {
        const std::lock_guard lock(mutex_);
        // The stages are woken when the reader leaves the block (next()) or
        // someone waits for them (drain()): one wake-up per block, not per piece.
        queued_.push_back(Piece{bytes, *block});
        ++pending_[*block];
        return failure();
    }
    // Not ours (bytes read before the connection took our memory): in
    // order after everything queued, on this thread.
    if (auto drained = drain(); !drained) {
        hash_.update(bytes.data(), bytes.size()); // the digest still covers every byte given
        return drained;
    }
    hash_.update(bytes.data(), bytes.size());
    if (writer_) {
        if (auto wrote = writer_(bytes); !wrote) {
            const std::lock_guard lock(mutex_);
            failed_ = wrote.error();
            return wrote;
        }
    }
    return success();
}

void HashPipeline::wait_for_room(std::unique_lock<std::mutex>& lock, const std::function<bool()>& ready)
{
    if (stages_asleep_ > 0 && !queued_.empty()) {
        work_.notify_all();
    }
    while (!ready()) {
        caller_asleep_ = true;
        room_.wait(lock);
        caller_asleep_ = false;
    }
}

Status HashPipeline::drain()
{
    std::unique_lock lock(mutex_);
    if (threads_.empty()) {
        work_through_queue(lock);
        return failure();
    }
    wait_for_room(lock, [&] { return queued_.empty(); });
    return failure();
}

void HashPipeline::abandon()
{
    std::unique_lock lock(mutex_);
    skipping_ = true;
    if (threads_.empty()) {
        work_through_queue(lock);
    }
    wait_for_room(lock, [&] { return queued_.empty(); });
    skipping_ = false;
}

const TransferHash& HashPipeline::hash()
{
    (void)drain();
    return hash_;
}

std::span<std::uint8_t> HashPipeline::next(std::span<std::uint8_t> /*used*/)
{
    if (reading_ != kRingMost && threads_.empty()) {
        start_threads(); // a second block: the download is worth them
    }
    std::unique_lock lock(mutex_);
    if (blocks_.empty()) {
        // Taken on first use: a download that never lends costs nothing.
        blocks_.reserve(ring_most_);
        for (std::size_t i = 0; i < kRingStart; ++i) {
            blocks_.push_back(BlockCache::shared().take());
        }
    }
    // In ring order, so each block waits the longest before it is reused.
    std::size_t block = 0; // the first, or the ring's start again
    const bool at_ring_end = reading_ != kRingMost && reading_ + 1 == blocks_.size();
    if (reading_ != kRingMost && !at_ring_end) {
        block = reading_ + 1;
    } else if (at_ring_end && blocks_.size() < ring_most_ && pending_[0] != 0) {
        // Its first block still queued: the threads are a ring behind, so
        // the ring grows, up to ring_most_. Taken without the lock, so the
        // stages need not wait on a fresh block's allocation; only this
        // thread changes blocks_ (reserved: no reallocation).
        lock.unlock();
        auto extra = BlockCache::shared().take_extra();
        lock.lock();
        if (extra) {
            blocks_.push_back(std::move(extra));
            block = blocks_.size() - 1;
        }
    }
    // (wait_for_room wakes the stages for the pieces of the block left.)
    wait_for_room(lock, [&] { return pending_[block] == 0; });
    reading_ = block;
    return std::span(blocks_[block].get(), kBlockSize);
}

void HashPipeline::retire()
{
    const std::uint64_t done = stages_ == 1 ? done_[hashing] : std::min(done_[hashing], done_[writing]);
    while (!queued_.empty() && first_ < done) {
        --pending_[queued_.front().block];
        queued_.pop_front();
        ++first_;
    }
}

void HashPipeline::run_stage(Stage stage)
{
    std::unique_lock lock(mutex_);
    for (;;) {
        while (!stopping_ && done_[stage] >= first_ + queued_.size()) {
            ++stages_asleep_;
            work_.wait(lock);
            --stages_asleep_;
        }
        if (done_[stage] >= first_ + queued_.size()) {
            return; // stopping, and nothing left
        }
        const Piece piece = queued_[static_cast<std::size_t>(done_[stage] - first_)];
        // A writer that failed writes nothing more; the hash covers every
        // byte until the pipeline is abandoned.
        const bool work = !skipping_ && (stage == hashing || !failed_);
        lock.unlock();
        std::optional<Error> error;
        if (work) {
            if (stage == hashing) {
                hash_.update(piece.bytes.data(), piece.bytes.size());
            } else if (auto wrote = writer_(piece.bytes); !wrote) {
                error = wrote.error();
            }
        }
        lock.lock();
        if (error && !failed_) {
            failed_ = std::move(error);
        }
        ++done_[stage];
        retire();
        if (caller_asleep_) {
            room_.notify_one();
        }
    }
}

} // namespace ferry::client
