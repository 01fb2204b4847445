// What a Session needs from the world. The libuv Connection implements it
// for real sockets and the thread pool; tests implement it with plain
// containers, which is how the state machine is driven without sockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace ferry::server {

class SessionIo {
public:
    virtual ~SessionIo() = default;

    // Queues bytes (whole frames) for the peer; they are owned by the IO
    // until written. Completion is reported through Session::on_sent().
    virtual void send(std::string bytes) = 0;
    // Bytes handed to send() and not yet written to the socket.
    virtual std::size_t unsent_bytes() const = 0;

    // Runs `work` off the event loop (it may block on the disk; it must not
    // touch the Session), then `done` back on the loop. A Session keeps at
    // most one job in flight, which is what lets a job use the transfer's
    // file and hash state without locks.
    virtual void run_job(std::function<void()> work, std::function<void()> done) = 0;

    // Reading from the peer: the Session stops it while it cannot take
    // more bytes (backpressure) and restarts it when it can.
    virtual void pause_reading() = 0;
    virtual void resume_reading() = 0;

    // Ends the connection once everything already sent has been written.
    virtual void close() = 0;

    // A short description of the peer for logs ("127.0.0.1:51234").
    virtual const std::string& peer() const = 0;

    // The loop's clock in milliseconds (monotonic), for timeouts.
    virtual std::uint64_t now_ms() const = 0;
};

} // namespace ferry::server
