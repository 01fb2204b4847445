#include "chunk_cache.hpp"

namespace ferry::server {

ChunkCache& ChunkCache::of_this_thread()
{
    thread_local ChunkCache cache;
    return cache;
}

sys::PageBuffer<char> ChunkCache::take(std::size_t size)
{
    taken_ = true;
    if (size == size_ && !kept_.empty()) {
        auto bytes = std::move(kept_.back());
        kept_.pop_back();
        return bytes;
    }
    return sys::make_page_buffer<char>(size);
}

void ChunkCache::give(sys::PageBuffer<char> bytes, std::size_t size)
{
    if (!bytes) {
        return;
    }
    if (size != size_) {
        // Another staging capacity (a reloaded configuration): the old
        // size's chunks would never be taken again.
        kept_.clear();
        size_ = size;
    }
    if (kept_.size() < kKept) {
        kept_.push_back(std::move(bytes));
    }
}

void ChunkCache::release_if_unused()
{
    if (!taken_) {
        release();
    }
    taken_ = false;
}

} // namespace ferry::server
