#include "part_file.hpp"

#include <utility>

namespace ferry::client {

PartFile::PartFile(LocalFile file, std::string state_file, DownloadState state, TransferHash hash, bool recorded)
    : file_(std::move(file)), state_file_(std::move(state_file)), state_(std::move(state)),
      hash_(std::make_unique<HashPipeline>(std::move(hash))), held_(state_.bytes_held), recorded_(recorded)
{
}

Status PartFile::append(std::span<const std::uint8_t> bytes)
{
    auto wrote = file_.write_all(bytes);
    if (!wrote) {
        return wrote;
    }
    hash_->update(bytes);
    held_ += bytes.size();
    return success();
}

Status PartFile::checkpoint()
{
    auto synced = file_.sync();
    if (!synced) {
        return synced;
    }
    auto identity = identity_of(file_);
    if (!identity) {
        return identity.error();
    }
    state_.bytes_held = held_;
    state_.digest_state = hash_->hash().save_state();
    state_.prefix_digest = hash_->hash().hex_digest();
    state_.part = identity.value();
    auto written = write_download_state(state_file_, state_);
    if (written) {
        recorded_ = true;
        durable_ = held_;
    }
    return written;
}

void PartFile::leave_for_resume(bool record_now)
{
    if (record_now && held_ > 0) {
        (void)checkpoint();
    }
    (void)file_.close();
    if (!recorded_) {
        (void)remove_file(file_.path());
    }
}

} // namespace ferry::client
