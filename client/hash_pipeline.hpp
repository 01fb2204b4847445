// Hashes a download on a second thread while the first one keeps reading
// the socket. SHA-256 costs one core about as much time as receiving and
// writing the bytes together, so done in turn they take twice as long as
// either; done side by side, the transfer runs at the speed of the hash.
// The bytes are copied into blocks the hashing thread owns (a memcpy costs
// a fraction of the hash). XXH3 is faster than that copy, so it is hashed
// in place, on the calling thread.
#pragma once

#include "transfer_hash.hpp"

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

namespace ferry::client {

class HashPipeline {
public:
    explicit HashPipeline(TransferHash hash);
    HashPipeline(const HashPipeline&) = delete;
    HashPipeline& operator=(const HashPipeline&) = delete;
    ~HashPipeline();

    void update(std::span<const std::uint8_t> bytes);
    // Waits until every byte given so far is hashed, so the result is exact.
    const TransferHash& hash();

private:
    void hash_blocks();
    void hand_over_block(std::unique_lock<std::mutex>& lock);

    TransferHash hash_;
    const bool threaded_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::uint8_t> filling_;
    std::deque<std::vector<std::uint8_t>> queued_;
    std::vector<std::vector<std::uint8_t>> spare_;
    bool hashing_ = false;
    bool stopping_ = false;
    std::thread worker_;
};

} // namespace ferry::client
