// What a Session needs from the world. The libuv Connection implements it
// for real sockets and the thread pool; tests implement it with plain
// containers, which is how the state machine is driven without sockets.
#pragma once

#include "pool_job.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace ferry::server {

class OpenFile;

class SessionIo {
public:
    virtual ~SessionIo() = default;

    // Queues bytes (whole frames) for the peer; they are owned by the IO
    // until written. Completion is reported through Session::on_sent().
    virtual void send(std::string bytes) = 0;
    // Bytes handed to send() and not yet written to the socket.
    virtual std::size_t unsent_bytes() const = 0;
    // Bytes of this connection's output the peer has acknowledged so far
    // (TCP acks): where a download's progress is seen, since a slow reader
    // frees room in the socket's buffers only in large bursts.
    virtual std::uint64_t acknowledged_bytes() const = 0;
    // Bytes written to the socket that the peer has not acknowledged yet.
    // sendfile's bytes are pages of the page cache, not copies, until the
    // kernel transmits them: a download's file has only "left" once its
    // bytes are acknowledged.
    virtual std::uint64_t unacknowledged_bytes() const = 0;
    // Whether the peer runs on this host (loopback, or the connection's own
    // address). There an acknowledgement proves nothing about sendfile's
    // bytes: the kernel hands the receiving socket the page-cache pages
    // themselves, which a write still changes until the peer reads them,
    // so a download does not wait for it (the peer's own check of the
    // trailer catches such a change).
    virtual bool peer_on_this_host() const = 0;
    // Asks for Session::on_sent() once unacknowledged_bytes() is 0: the
    // kernel raises no event for acknowledgements, so the connection looks
    // for them (SendQueue::await_acknowledgement). Until then the session's
    // stall timeout bounds the wait.
    virtual void await_acknowledgement() = 0;

    // Zero-copy sending: one data frame whose payload is `length` bytes of
    // `file` from `offset`, queued after everything sent before it, and
    // moved by the kernel (sendfile) without passing through the server's
    // memory. Only where supports_file_frames(): a plain TCP socket, not TLS.
    // The pages should be in the page cache already (the caller reads ahead
    // on the thread pool), since the copy runs on the loop. Progress counts
    // in unsent_bytes() and is reported through Session::on_sent().
    virtual bool supports_file_frames() const = 0;
    virtual void send_file_frame(std::shared_ptr<const OpenFile> file, std::uint64_t offset, std::size_t length) = 0;

    // Runs job->work() off the event loop (it may block on the disk; it
    // must not touch the Session), then job->done() back on the loop,
    // always, even once the connection is torn down: whether a completion
    // still acts is the Session's one decision (Session::take_completion).
    // A Session keeps at most one job in flight, which is what lets a job
    // use the transfer's file and hash state without locks.
    virtual void submit(std::unique_ptr<PoolJob> job) = 0;

    // Whether the connection was closed under the Session (a forced close:
    // an internal failure, the drain time over), rather than by its own
    // close(): nothing sent any more reaches the peer.
    virtual bool torn_down() const = 0;

    // Reading from the peer: the Session stops it while it cannot take
    // more bytes (backpressure) and restarts it when it can.
    virtual void pause_reading() = 0;
    virtual void resume_reading() = 0;

    // Ends the connection once everything already sent has been written.
    virtual void close() = 0;

    // A short description of the peer for logs ("127.0.0.1:51234").
    virtual const std::string& peer() const = 0;
    // The peer's IP address without the port: what per-address limits count.
    // Made on demand from peer() (a connection keeps one string, not two).
    virtual std::string address() const = 0;

    // The loop's clock in milliseconds (monotonic), for timeouts.
    virtual std::uint64_t now_ms() const = 0;
};

} // namespace ferry::server
