// A tree's downloads one after another take the receive blocks the finished
// ones left (BlockCache), instead of a fresh ring each: counted by replacing
// operator new[] for this binary (it counts only while a test watches).
#include "block_cache.hpp"
#include "hash_pipeline.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

namespace {

std::atomic<bool> g_watching{false};
std::atomic<std::size_t> g_blocks_allocated{0};

} // namespace

// Counts, then allocates as the standard one does: the receive blocks are
// page-aligned arrays of BlockCache::kBlockSize bytes (sys::make_page_buffer).
void* operator new[](std::size_t size, std::align_val_t alignment)
{
    if (size == ferry::client::BlockCache::kBlockSize && g_watching.load()) {
        ++g_blocks_allocated;
    }
    const auto align = static_cast<std::size_t>(alignment);
    // aligned_alloc wants a size that is a multiple of the alignment.
    if (void* bytes = std::aligned_alloc(align, (std::max<std::size_t>(size, 1) + align - 1) / align * align)) {
        return bytes;
    }
    throw std::bad_alloc();
}

void operator delete[](void* bytes, std::align_val_t) noexcept
{
    std::free(bytes);
}

void operator delete[](void* bytes, std::size_t, std::align_val_t) noexcept
{
    std::free(bytes);
}

TEST_CASE("downloads one after another read into the blocks the finished ones left")
{
    using ferry::client::HashPipeline;
    constexpr int kDownloads = 10;
    std::vector<std::uint8_t> data(2 * HashPipeline::kBlockSize + 999);
    for (std::size_t i = 0; i < data.size(); ++i) {
        data[i] = static_cast<std::uint8_t>(i * 131 + (i >> 9));
    }
    g_blocks_allocated = 0;
    g_watching = true;
    for (int i = 0; i < kDownloads; ++i) {
        std::vector<std::uint8_t> written;
        HashPipeline pipeline{ferry::TransferHash(ferry::HashKind::sha256),
                              [&](std::span<const std::uint8_t> bytes) {
                                  written.insert(written.end(), bytes.begin(), bytes.end());
                                  return ferry::client::success();
                              },
                              HashPipeline::Ring::growing};
        std::span<std::uint8_t> window;
        for (std::size_t at = 0; at < data.size();) {
            window = pipeline.next(window);
            // The kernel copies into it (recv, pread): at a page boundary,
            // where its copy runs fastest (sys/page_buffer.hpp).
            CHECK(reinterpret_cast<std::uintptr_t>(window.data()) % ferry::sys::kPageAlignment == 0);
            const std::size_t got = std::min(window.size(), data.size() - at);
            std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(at), got, window.begin());
            REQUIRE(pipeline.update(window.first(got)));
            at += got;
        }
        REQUIRE(pipeline.drain());
        CHECK(written == data);
    }
    g_watching = false;
    // One ring for the first download; before, a ring for each (40). A
    // download of three blocks never reaches its ring's end: it takes no more.
    CHECK(g_blocks_allocated.load() <= HashPipeline::kRingStart);
    CHECK(ferry::client::BlockCache::shared().kept() <= ferry::client::BlockCache::kKept);
}

TEST_CASE("a download's ring grows while its threads are a ring behind, to kRingMost; an upload's stays")
{
    using ferry::client::BlockCache;
    using ferry::client::HashPipeline;
    auto& cache = BlockCache::shared();
    constexpr std::size_t kPieces = HashPipeline::kRingMost + 4;
    std::vector<std::uint8_t> data(kPieces * HashPipeline::kBlockSize);
    for (std::size_t i = 0; i < data.size(); ++i) {
        data[i] = static_cast<std::uint8_t>(i * 7 + (i >> 12));
    }
    for (const auto ring : {HashPipeline::Ring::growing, HashPipeline::Ring::fixed}) {
        const bool growing = ring == HashPipeline::Ring::growing;
        CAPTURE(growing);
        const std::size_t most = growing ? HashPipeline::kRingMost : HashPipeline::kRingStart;
        const std::size_t lent_before = cache.lent();
        // The writer holds its first piece until the reader has filled as
        // many blocks as the ring may have (or 5 s have passed: a ring that
        // does not grow would otherwise wait for it forever).
        std::mutex mutex;
        std::condition_variable released;
        bool go = false;
        std::vector<std::uint8_t> written;
        std::size_t most_lent = 0;
        {
            HashPipeline pipeline{ferry::TransferHash(ferry::HashKind::sha256),
                                  [&](std::span<const std::uint8_t> bytes) {
                                      std::unique_lock lock(mutex);
                                      released.wait_for(lock, std::chrono::seconds(5), [&] { return go; });
                                      written.insert(written.end(), bytes.begin(), bytes.end());
                                      return ferry::client::success();
                                  },
                                  ring};
            std::span<std::uint8_t> window;
            for (std::size_t piece = 0; piece < kPieces; ++piece) {
                if (piece == most) {
                    const std::lock_guard lock(mutex);
                    go = true;
                    released.notify_all();
                }
                window = pipeline.next(window);
                most_lent = std::max(most_lent, cache.lent() - lent_before);
                const auto at = static_cast<std::ptrdiff_t>(piece * HashPipeline::kBlockSize);
                std::copy_n(data.begin() + at, HashPipeline::kBlockSize, window.begin());
                REQUIRE(pipeline.update(window));
            }
            REQUIRE(pipeline.drain());
            CHECK(written == data);
        }
        CHECK(most_lent == most);
        CHECK(cache.lent() == lent_before);
    }
}

TEST_CASE("take_extra lends no block past kLentForExtra; take always does")
{
    using ferry::client::BlockCache;
    auto& cache = BlockCache::shared();
    const std::size_t lent_before = cache.lent();
    std::vector<ferry::sys::PageBuffer<std::uint8_t>> taken;
    while (cache.lent() < BlockCache::kLentForExtra) {
        taken.push_back(cache.take());
    }
    CHECK_FALSE(cache.take_extra());
    taken.push_back(cache.take());
    CHECK(taken.back());
    cache.give(std::move(taken.back()));
    taken.pop_back();
    cache.give(std::move(taken.back()));
    taken.pop_back();
    taken.push_back(cache.take_extra()); // one under the bound again
    CHECK(taken.back());
    for (auto& block : taken) {
        cache.give(std::move(block));
    }
    CHECK(cache.lent() == lent_before);
}
