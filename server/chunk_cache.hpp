// Staging chunks that finished uploads leave behind, kept for the next
// uploads on the same event loop.
//
// Why: a fresh chunk costs a page fault per page as the socket fills it,
// and glibc gives freed megabytes back to the system (munmap, or a trimmed
// heap top), so an upload per small file paid for the mapping calls and the
// faults of a whole chunk each time. Measured on this project's 2-core
// machine: a push of 200 files of 1 MiB cost ferryd 1.0 CPU s with a fresh
// chunk per upload and 0.55 s with chunks that stay mapped.
//
// One cache per thread: a worker's uploads all run on its loop thread, so
// no lock is needed (chunks that end on a pool thread are simply freed).
// It keeps at most kKept chunks of one size, so the memory it holds after
// a burst is bounded (kKept x the staging capacity, 8 MiB by default), and
// it lets them go once uploads stop: at the first sweep with no take()
// since the one before (Server's timeout sweep, at most a second apart) or
// when the loop's last connection leaves, so an idle server stays small.
#pragma once

#include "page_buffer.hpp"

#include <cstddef>
#include <memory>
#include <vector>

namespace ferry::server {

class ChunkCache {
public:
    static constexpr std::size_t kKept = 8;

    // The calling thread's cache.
    static ChunkCache& of_this_thread();

    // A chunk of `size` bytes, not zeroed, page-aligned (sys/page_buffer.hpp):
    // a kept one when one of that size is there.
    sys::PageBuffer<char> take(std::size_t size);
    // Keeps `bytes` (a chunk of `size` bytes) for a later take(), or frees it
    // when the cache is full or holds another size.
    void give(sys::PageBuffer<char> bytes, std::size_t size);

    // Frees what is kept if nothing was taken since the last call.
    void release_if_unused();
    // Frees what is kept.
    void release() { kept_.clear(); }

    std::size_t kept() const { return kept_.size(); }

private:
    bool taken_ = false; // since the last release_if_unused()
    std::size_t size_ = 0; // the size of every kept chunk
    std::vector<sys::PageBuffer<char>> kept_;
};

} // namespace ferry::server
