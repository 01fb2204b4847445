#pragma once

#include "access.hpp"
#include "frame.hpp"
#include "tls.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ferry::server {

// Everything an operator can tune; main.cpp maps flags onto it.
struct Config {
    std::string root = "files";
    // HOST:PORT or [IPv6]:PORT, each bound by at least one worker.
    std::vector<std::string> listen{"127.0.0.1:7021"};
    std::uint32_t max_control_frame = kDefaultMaxControlFrame;
    // Kept uploads older than this are deleted (at start-up, then every ttl/2 or hour).
    std::chrono::seconds partial_ttl{24 * 60 * 60};
    // Bytes of one data frame the server sends, and so of one file read.
    std::size_t chunk_size = kPreferredDataChunk;
    // Bytes checked and read ahead at once for sendfile (a download whose
    // digest is known), then sent as data frames of chunk_size: they never
    // sit in the server's memory, so the range can be large.
    std::size_t file_frame_size = 4 * 1024 * 1024;
    // A get from offset 0 of a file at most this large (and at most one
    // chunk) is read whole by the job that opens it, checked unchanged after
    // the read, and sent from that memory: its bytes are one version of the
    // file before they leave, so no check waits for the last byte to leave
    // (as sendfile's must), and a small file's get takes one pool job, not
    // two. The price is a copy the kernel would have made anyway for a
    // hashed file, and one more for a file whose digest is known. 0: never.
    std::size_t whole_read_max = kPreferredDataChunk;
    // Stop reading the file while this much is queued on the socket.
    std::size_t send_high_water = 1024 * 1024;
    // Stop reading the socket while this much upload data waits for the disk.
    std::size_t receive_high_water = 2 * 1024 * 1024;
    // Stop taking requests while this much output waits for the peer. Every
    // request may cost a reply, so a client that pipelines requests and never
    // reads would otherwise make the server hold its replies without limit
    // (each small request can cost a reply thousands of times larger). Large
    // enough for a burst of replies (and a listing page) to stay in flight,
    // small enough that thousands of such connections fit in memory.
    std::size_t reply_high_water = 256 * 1024;
    // One page of a paged list (PROTOCOL.md 4.2), in encoded bytes: far below
    // any client's frame limit, large enough that a page is worth its job.
    std::size_t list_page_bytes = 64 * 1024;
    // The largest list sent as one reply (to a client that does not ask for
    // pages); a larger folder gets list_too_large. What such a list holds
    // while it is built and sorted is a small multiple of this.
    std::size_t max_list_reply = 4 * 1024 * 1024;

    // Limits against floods and stuck peers; each refusal is its own error
    // code (PROTOCOL.md section 6), then the connection closes.
    std::size_t max_connections = 4096;
    std::size_t max_connections_per_address = 512;
    std::size_t max_transfers = 256;
    // Transfers one client IP address may run at once; 0 means half of
    // max_transfers (at least 1), so one address never holds every slot.
    std::size_t max_transfers_per_address = 0;
    // While every slot (or the address's share) is taken, a new get or put
    // takes the slot of the slowest transfer that moved fewer than this many
    // bytes per second over its last stall_timeout window (too_slow); 0 never.
    std::uint64_t min_rate = 4096;
    std::uint64_t max_upload_size = std::uint64_t{1} << 40; // 1 TiB
    // No request for this long closes a connection.
    std::chrono::milliseconds idle_timeout{5 * 60 * 1000};
    // A transfer whose peer takes no byte for this long closes the
    // connection (a put progresses with file bytes, a get when the peer's
    // TCP stack acknowledges bytes). Never a cap on a transfer's total time.
    // Any other frame (a request, a data frame's header) must arrive whole
    // within this long of its first byte, however its bytes are spaced.
    // Time in which ferryd itself did not run (stopped, frozen) does not count.
    std::chrono::milliseconds stall_timeout{60 * 1000};
    // Requests a peer should never send (bad JSON, unknown op, request
    // before hello, frame outside an upload): past this many on one
    // connection it is closed with too_many_errors.
    std::uint64_t max_protocol_errors = 100;
    // After SIGTERM, running transfers may finish for this long.
    std::chrono::milliseconds drain_timeout{30 * 1000};

    // With tokens, hello must carry one of them (--token-file; re-read on SIGHUP).
    std::shared_ptr<TokenTable> tokens;
    // Refuse every put, whatever the token (--read-only).
    bool read_only = false;
    // With a context, clients must speak TLS (--tls-cert, --tls-key).
    std::shared_ptr<const TlsContext> tls;
    // A TLS handshake not finished this long after connecting closes the
    // connection (--handshake-timeout). A pending handshake holds the TLS
    // engine's state (tens of KiB) and a connection slot; without its own
    // deadline, peers that stop half-way hold both for the idle timeout.
    // A handshake takes one or two round trips: seconds are plenty.
    // The same time bounds the wait for hello (after the TLS handshake, if
    // any): a peer that says nothing would otherwise hold one of its
    // address's connection slots for the idle timeout without any token,
    // and a few addresses could keep every token holder out.
    std::chrono::milliseconds handshake_timeout{5 * 1000};
    // How long a wrong or missing token waits before its refusal.
    std::chrono::milliseconds auth_failure_delay{1000};

    std::size_t transfers_per_address() const
    {
        return max_transfers_per_address != 0 ? max_transfers_per_address
                                               : std::max<std::size_t>(1, max_transfers / 2);
    }
};

} // namespace ferry::server
