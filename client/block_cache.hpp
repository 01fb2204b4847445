// Receive blocks that finished downloads leave behind, kept for the next
// downloads of this process (HashPipeline's ring of blocks).
//
// Why: every download of a tree takes a ring of fresh megabyte blocks, and
// glibc gives freed megabytes back to the system (munmap, or a trimmed heap
// top), so each file paid for the mapping calls and a page fault per page
// as the socket filled its blocks. Measured on this project's 2-core
// machine: `ferry get` of 200 files of 1 MiB took 1.5 s and 1.4 CPU s with
// fresh blocks, 0.46 s and 0.33 CPU s with blocks that stay mapped.
//
// One cache for the process, shared by the threads of `sync -j N` (a lock
// around a vector: taken once per block per download). It keeps at most
// kKept blocks, so the memory held after a burst is bounded (32 MiB).
#pragma once

#include "page_buffer.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace ferry::client {

class BlockCache {
public:
    static constexpr std::size_t kBlockSize = 1024 * 1024;
    static constexpr std::size_t kKept = 32;
    // Blocks lent out at once (taken and not given back) past which
    // take_extra() lends no more: bounds what rings that grow beyond their
    // first blocks hold together, however many downloads run at once.
    static constexpr std::size_t kLentForExtra = 64;

    // The process's cache.
    static BlockCache& shared();

    // A block of kBlockSize bytes, not zeroed, page-aligned (sys/page_buffer.hpp): a kept one when there is one.
    sys::PageBuffer<std::uint8_t> take();
    // As take(), but only while fewer than kLentForExtra blocks are lent
    // out; else empty (a ring then goes on with the blocks it has).
    sys::PageBuffer<std::uint8_t> take_extra();
    // Keeps `block` (of kBlockSize bytes, from take() or take_extra()) for
    // a later take, or frees it when kKept are kept.
    void give(sys::PageBuffer<std::uint8_t> block);

    std::size_t kept() const;
    // Blocks taken and not given back.
    std::size_t lent() const;

private:
    sys::PageBuffer<std::uint8_t> take_locked(std::unique_lock<std::mutex>& lock);

    mutable std::mutex mutex_;
    std::vector<sys::PageBuffer<std::uint8_t>> kept_;
    std::size_t lent_ = 0;
};

} // namespace ferry::client
