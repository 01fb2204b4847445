#include "block_cache.hpp"

namespace ferry::client {

BlockCache& BlockCache::shared()
{
    static BlockCache cache;
    return cache;
}

sys::PageBuffer<std::uint8_t> BlockCache::take()
{
    std::unique_lock lock(mutex_);
    return take_locked(lock);
}

sys::PageBuffer<std::uint8_t> BlockCache::take_extra()
{
    std::unique_lock lock(mutex_);
    if (lent_ >= kLentForExtra) {
        return {};
    }
    return take_locked(lock);
}

sys::PageBuffer<std::uint8_t> BlockCache::take_locked(std::unique_lock<std::mutex>& lock)
{
    ++lent_; // counted before the allocation, so take_extra's bound holds while it runs unlocked
    if (!kept_.empty()) {
        auto block = std::move(kept_.back());
        kept_.pop_back();
        return block;
    }
    lock.unlock(); // a fresh block: the allocation needs no lock
    try {
        return sys::make_page_buffer<std::uint8_t>(kBlockSize);
    } catch (...) {
        lock.lock();
        --lent_; // nothing was lent
        throw;
    }
}

void BlockCache::give(sys::PageBuffer<std::uint8_t> block)
{
    if (!block) {
        return;
    }
    const std::lock_guard lock(mutex_);
    --lent_;
    if (kept_.size() < kKept) {
        kept_.push_back(std::move(block));
    }
}

std::size_t BlockCache::kept() const
{
    const std::lock_guard lock(mutex_);
    return kept_.size();
}

std::size_t BlockCache::lent() const
{
    const std::lock_guard lock(mutex_);
    return lent_;
}

} // namespace ferry::client
