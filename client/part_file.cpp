#include "part_file.hpp"

#include "posix_io.hpp"

#include <utility>

namespace ferry::client {

namespace {

// By descriptor and name, not through the LocalFile: a PartFile moves, its
// descriptor does not (and every close waits for the writer first).
HashPipeline::Writer writer_for(const LocalFile& file)
{
    return [fd = file.fd(), path = file.path()](std::span<const std::uint8_t> bytes) -> Status {
        if (const auto wrote = sys::write_all(fd, bytes); !wrote.ok()) {
            return local_error("cannot write \"" + path + "\"", wrote.error);
        }
        return success();
    };
}

} // namespace

PartFile::PartFile(LocalFile file, std::string state_file, DownloadState state, TransferHash hash, bool recorded,
                   std::shared_ptr<const LocalFolder> folder)
    : file_(std::move(file)), state_file_(std::move(state_file)), state_(std::move(state)),
      hash_(std::make_unique<HashPipeline>(std::move(hash), writer_for(file_), HashPipeline::Ring::growing)),
      held_(state_.bytes_held), recorded_(recorded), folder_(std::move(folder))
{
}

Status PartFile::append(std::span<const std::uint8_t> bytes)
{
    auto queued = hash_->update(bytes);
    if (!queued) {
        return queued;
    }
    held_ += bytes.size();
    return success();
}

Status PartFile::checkpoint()
{
    // Only bytes that are in the file, all of them hashed, are vouched for.
    if (auto flushed = hash_->drain(); !flushed) {
        return flushed;
    }
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
    auto written = write_download_state(state_file_, state_, folder_.get());
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
    hash_->abandon(); // nothing is written after the close
    if (!recorded_) {
        remove_own_part(file_, folder_.get()); // while still open and locked: ours
    }
    (void)file_.close();
}

} // namespace ferry::client
