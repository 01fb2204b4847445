// A download's part file as it is written: the file, the sidecar that
// vouches for its beginning (local_files' DownloadState), and the hash of
// every byte in it so far. The bytes are hashed and written on the
// pipeline's threads (HashPipeline), which the caller lends the
// connection's reads to (receiving(), see Connection::lend_buffers).
#pragma once

#include "hash_pipeline.hpp"
#include "local_files.hpp"
#include "status.hpp"
#include "transfer_hash.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace ferry::client {

class PartFile {
public:
    // `recorded`: a sidecar already vouches for some of the part (a resume).
    // `folder`: for a tree's file, the folder the part and sidecar are in.
    PartFile(LocalFile file, std::string state_file, DownloadState state, TransferHash hash, bool recorded,
             std::shared_ptr<const LocalFolder> folder = nullptr);

    std::uint64_t held() const { return held_; }
    const TransferHash& hash() { return hash_->hash(); }
    // The file, once nothing is being written to it any more.
    LocalFile& file()
    {
        (void)hash_->drain();
        return file_;
    }
    // The memory to read the download into.
    ReceiveBuffers& receiving() { return *hash_; }

    // Queues `bytes` to be written and hashed; a failure to write earlier bytes.
    Status append(std::span<const std::uint8_t> bytes);
    // Waits until every byte appended is in the file: its failure, if any.
    Status flush() { return hash_->drain(); }
    // Makes the bytes held durable, then records them in the sidecar.
    Status checkpoint();
    std::uint64_t since_checkpoint() const { return held_ - durable_; }
    // Whether a sidecar vouches for some of the part: this download resumed
    // from one or wrote one (a checkpoint).
    bool recorded() const { return recorded_; }
    // After a failure: keep the part only if a sidecar vouches for some of it.
    void leave_for_resume(bool record_now);

private:
    LocalFile file_;
    std::string state_file_;
    DownloadState state_;
    std::unique_ptr<HashPipeline> hash_; // a pointer, so that PartFile can move
    std::uint64_t held_;
    std::uint64_t durable_ = held_;
    bool recorded_;
    std::shared_ptr<const LocalFolder> folder_;
};

} // namespace ferry::client
