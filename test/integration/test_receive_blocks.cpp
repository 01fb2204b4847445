// A tree's downloads one after another take the receive blocks the finished
// ones left (BlockCache), instead of a fresh ring each: counted by replacing
// operator new[] for this binary (it counts only while a test watches).
#include "block_cache.hpp"
#include "hash_pipeline.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
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
        HashPipeline pipeline{ferry::TransferHash(ferry::HashKind::sha256), [&](std::span<const std::uint8_t> bytes) {
                                  written.insert(written.end(), bytes.begin(), bytes.end());
                                  return ferry::client::success();
                              }};
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
    // One ring for the first download; before, a ring for each (40).
    CHECK(g_blocks_allocated.load() <= HashPipeline::kBlocks);
    CHECK(ferry::client::BlockCache::shared().kept() <= ferry::client::BlockCache::kKept);
}
