// Writes a download to a stream (standard output, a FIFO, a device) in as
// few system calls as its receive allows. It lends the connection the
// memory it reads into (ReceiveBuffers) and writes every data piece decoded
// from it with one writev(2) when the connection moves on to fresh memory,
// rather than one write(2) per piece: a 256 KiB data frame arrives as a few
// pieces cut by reads and headers, and on a host where system calls are
// dear (gVisor) a write per piece cost a tenth of the client's time.
//
// With an `inner` lender (the hash pipeline), the memory is the inner's,
// and is handed back to it only after the pieces in it are written; without
// one, one block of its own is read into again and again. A write failure
// is kept: add() and flush() return it, and nothing more is written.
#pragma once

#include "page_buffer.hpp"
#include "receive_buffers.hpp"
#include "status.hpp"

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ferry::client {

class StreamWriter final : public ReceiveBuffers {
public:
    // `where` names the stream in errors ("standard output", "\"fifo\"").
    StreamWriter(int fd, std::string where, ReceiveBuffers* inner = nullptr);
    StreamWriter(const StreamWriter&) = delete;
    StreamWriter& operator=(const StreamWriter&) = delete;

    // Writes `bytes` after everything added before: queued when they lie in
    // the memory last lent, else written at once.
    Status add(std::span<const std::uint8_t> bytes);
    // Writes everything queued.
    Status flush();
    // System calls that wrote so far (what the batching saves).
    std::size_t write_calls() const { return write_calls_; }

    std::span<std::uint8_t> next(std::span<std::uint8_t> used) override;

    static constexpr std::size_t kBlockSize = 1024 * 1024;

private:
    Status write_pieces(std::span<const iovec> pieces);

    int fd_;
    std::string where_;
    ReceiveBuffers* inner_;
    sys::PageBuffer<std::uint8_t> block_; // without an inner lender
    std::span<std::uint8_t> lent_;          // the memory last lent
    std::vector<iovec> queued_;
    std::optional<Error> failed_;
    std::size_t write_calls_ = 0;
};

} // namespace ferry::client
