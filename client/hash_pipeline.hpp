// Hashes a download, and writes it to its part file, on threads of their
// own while the calling thread keeps reading the socket (XXH3 alone, with
// nothing to write, is hashed in place: it costs less than the hand-over);
// an upload's SHA-256 likewise, while the calling thread reads the file into
// the lent blocks and sends it from them (send_upload). Receiving, hashing
// and writing each cost a core about as much as the others (SHA-256 more,
// XXH3 less); done in turn they add up, done side by side the download runs
// at the speed of the slowest.
//
// The pipeline lends the connection the memory it reads into (a ring of
// blocks, ReceiveBuffers): the bytes of data frames are hashed and written
// where they were received, never copied in user space. A block is read
// into again only after both threads are done with every piece in it, so
// the reader runs at most a ring ahead (bounded memory). Bytes given from
// elsewhere are hashed (and written) on the calling thread, in order; so
// are all the bytes of a download that fits in one block (the threads start
// only when the reader moves on to a second one).
//
// The writer's first failure is kept and returned by update() and drain();
// after it nothing more is written (the hash goes on, so a caller that
// checks drain() before trusting the file can never publish short bytes).
#pragma once

#include "block_cache.hpp"
#include "receive_buffers.hpp"
#include "status.hpp"
#include "transfer_hash.hpp"

#include <array>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <vector>

namespace ferry::client {

class HashPipeline final : public ReceiveBuffers {
public:
    // Called on the writing thread with each piece, in order.
    using Writer = std::function<Status(std::span<const std::uint8_t>)>;

    // How the ring of blocks it lends may change (kRingStart, kRingMost).
    enum class Ring {
        fixed,   // kRingStart blocks: an upload, read from a file as fast as it is hashed
        growing, // up to kRingMost: a download, received in bursts
    };

    // Without a writer, the pipeline only hashes.
    explicit HashPipeline(TransferHash hash, Writer writer = {}, Ring ring = Ring::fixed);
    HashPipeline(const HashPipeline&) = delete;
    HashPipeline& operator=(const HashPipeline&) = delete;
    ~HashPipeline() override;

    // Hashes and writes `bytes` after everything given before. Bytes inside
    // a block this pipeline lent are queued where they lie; others are
    // handled before returning. The writer's failure so far, if any.
    Status update(std::span<const std::uint8_t> bytes);
    // Waits until every byte given so far is hashed and written.
    Status drain();
    // Drops what is queued but not yet written (the transfer failed) and
    // waits for the threads to let go of the file.
    void abandon();
    // Drains first, so the result is exact.
    const TransferHash& hash();
    // Whether bytes may go to threads of their own (else update() does the
    // work, and lending the pipeline memory gains nothing).
    bool threaded() const;
    // Whether a pipeline that only hashes (no writer) would use a thread for
    // `kind`: not for XXH3, which costs less than the hand-over.
    static bool hashes_aside(HashKind kind) { return kind != HashKind::xxh3_128; }

    std::span<std::uint8_t> next(std::span<std::uint8_t> used) override;

    static constexpr std::size_t kBlockSize = BlockCache::kBlockSize;
    // The ring starts with kRingStart blocks. A growing one, each time the
    // reader reaches its end while the first block still waits for a
    // thread (the threads are a ring behind), takes one more block
    // (BlockCache::take_extra, bounded across the process), up to
    // kRingMost: SHA-256 on one thread and the receive on another take
    // turns on the cores unevenly, and a deeper ring lets each run on
    // through the other's pauses. Measured on a 2-core machine, a 1 GiB get
    // with SHA-256 to standard output, alternated: 0.92x the wall time of a
    // ring of 4 (docs/BENCHMARKS.md). An upload's gained nothing: it reads
    // its file as fast as it sends, and a deeper ring only hashes from
    // further behind.
    static constexpr std::size_t kRingStart = 4;
    static constexpr std::size_t kRingMost = 16;

private:
    struct Piece {
        std::span<const std::uint8_t> bytes;
        std::size_t block;
    };
    enum Stage : std::size_t { hashing = 0, writing = 1 };

    void start_threads();
    // Without threads (yet): hashes and writes the queued pieces on the
    // caller's thread (lock held).
    void work_through_queue(std::unique_lock<std::mutex>& lock);
    void run_stage(Stage stage);
    // With the lock held: drops the pieces every stage is done with.
    void retire();
    std::optional<std::size_t> block_of(std::span<const std::uint8_t> bytes) const;
    Status failure() const;
    // Sleeps (lock held on entry and return) until `ready`.
    void wait_for_room(std::unique_lock<std::mutex>& lock, const std::function<bool()>& ready);

    TransferHash hash_;
    Writer writer_;
    const std::size_t stages_;
    const std::size_t ring_most_; // kRingStart or kRingMost
    std::vector<sys::PageBuffer<std::uint8_t>> blocks_;
    std::array<std::size_t, kRingMost> pending_{}; // pieces queued per block
    std::size_t reading_ = kRingMost;              // the block lent out; kRingMost: none yet
    mutable std::mutex mutex_;
    // Two conditions, and a wake-up only for a thread that sleeps: a
    // notification per piece would cost more system calls than the reads.
    std::condition_variable work_; // the stages wait for pieces
    std::condition_variable room_; // the caller waits for a free block or an empty queue
    std::size_t stages_asleep_ = 0;
    bool caller_asleep_ = false;
    std::deque<Piece> queued_;
    std::uint64_t first_ = 0;                  // sequence number of queued_.front()
    std::array<std::uint64_t, 2> done_{};      // pieces each stage has finished
    std::optional<Error> failed_;
    bool skipping_ = false; // abandon(): pieces are retired without work
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

} // namespace ferry::client
