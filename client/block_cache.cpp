#include "block_cache.hpp"

namespace ferry::client {

BlockCache& BlockCache::shared()
{
    static BlockCache cache;
    return cache;
}

sys::PageBuffer<std::uint8_t> BlockCache::take()
{
    {
        const std::lock_guard lock(mutex_);
        if (!kept_.empty()) {
            auto block = std::move(kept_.back());
            kept_.pop_back();
            return block;
        }
    }
    return sys::make_page_buffer<std::uint8_t>(kBlockSize);
}

void BlockCache::give(sys::PageBuffer<std::uint8_t> block)
{
    if (!block) {
        return;
    }
    const std::lock_guard lock(mutex_);
    if (kept_.size() < kKept) {
        kept_.push_back(std::move(block));
    }
}

std::size_t BlockCache::kept() const
{
    const std::lock_guard lock(mutex_);
    return kept_.size();
}

} // namespace ferry::client
