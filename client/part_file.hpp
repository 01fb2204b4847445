// A download's part file as it is written: the file, the sidecar that
// vouches for its beginning (local_files' DownloadState), and the hash of
// every byte in it so far, kept on the hashing thread (HashPipeline).
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
    PartFile(LocalFile file, std::string state_file, DownloadState state, TransferHash hash, bool recorded);

    std::uint64_t held() const { return held_; }
    const TransferHash& hash() { return hash_->hash(); }
    LocalFile& file() { return file_; }

    Status append(std::span<const std::uint8_t> bytes);
    // Makes the bytes held durable, then records them in the sidecar.
    Status checkpoint();
    std::uint64_t since_checkpoint() const { return held_ - durable_; }
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
};

} // namespace ferry::client
