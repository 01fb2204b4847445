#include "stream_writer.hpp"

#include "interrupt.hpp"
#include "posix_io.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>

namespace ferry::client {

StreamWriter::StreamWriter(int fd, std::string where, ReceiveBuffers* inner)
    : fd_(fd), where_(std::move(where)), inner_(inner)
{
}

Status StreamWriter::add(std::span<const std::uint8_t> bytes)
{
    if (failed_) {
        return *failed_;
    }
    if (bytes.empty()) {
        return success();
    }
    const auto* begin = lent_.data();
    if (begin != nullptr && bytes.data() >= begin && bytes.data() + bytes.size() <= begin + lent_.size()) {
        iovec piece{const_cast<std::uint8_t*>(bytes.data()), bytes.size()};
        // Pieces of one frame read in two reads lie end to end: one vector.
        if (!queued_.empty() && static_cast<std::uint8_t*>(queued_.back().iov_base) + queued_.back().iov_len ==
                                    bytes.data()) {
            queued_.back().iov_len += bytes.size();
        } else {
            queued_.push_back(piece);
        }
        return success();
    }
    // Not in lent memory (read before the lending began): after what waits.
    if (auto flushed = flush(); !flushed) {
        return flushed;
    }
    const iovec piece{const_cast<std::uint8_t*>(bytes.data()), bytes.size()};
    return write_pieces(std::span(&piece, 1));
}

Status StreamWriter::flush()
{
    if (failed_) {
        return *failed_;
    }
    std::vector<iovec> pieces;
    pieces.swap(queued_);
    auto wrote = write_pieces(pieces);
    pieces.clear();
    queued_.swap(pieces); // keeps the vector's memory for the next block
    return wrote;
}

Status StreamWriter::write_pieces(std::span<const iovec> pieces)
{
    while (!pieces.empty()) {
        const std::size_t count = std::min<std::size_t>(pieces.size(), IOV_MAX);
        ++write_calls_;
        const ssize_t wrote = ::writev(fd_, pieces.data(), static_cast<int>(count));
        std::size_t done = wrote > 0 ? static_cast<std::size_t>(wrote) : 0;
        if (wrote < 0 && errno != EINTR) {
            failed_ = local_error("cannot write to " + where_, errno);
            return *failed_;
        }
        // Whole pieces written are done; a piece cut short (or one a signal
        // kept the call from starting) is finished by the loop that resumes
        // short writes and asks whether the user interrupted.
        while (!pieces.empty() && done >= pieces.front().iov_len) {
            done -= pieces.front().iov_len;
            pieces = pieces.subspan(1);
        }
        if (pieces.empty() || (wrote > 0 && done == 0)) {
            continue;
        }
        const iovec& cut = pieces.front();
        ++write_calls_;
        const auto rest = sys::write_all(
            fd_, std::span(static_cast<const std::uint8_t*>(cut.iov_base) + done, cut.iov_len - done), interrupted);
        if (!rest.ok()) {
            failed_ = local_error("cannot write to " + where_, rest.error);
            return *failed_;
        }
        pieces = pieces.subspan(1);
    }
    return success();
}

std::span<std::uint8_t> StreamWriter::next(std::span<std::uint8_t> used)
{
    // Every piece queued lies in `used`: written before it can be read into.
    (void)flush(); // a failure is kept for add() and flush()
    if (inner_ != nullptr) {
        lent_ = inner_->next(used);
        return lent_;
    }
    if (!block_) {
        block_ = sys::make_page_buffer<std::uint8_t>(kBlockSize);
    }
    lent_ = std::span(block_.get(), kBlockSize);
    return lent_;
}

} // namespace ferry::client
