// One blocking TCP connection to ferryd: connect (with a deadline), TLS
// when asked (transport.hpp), hello with the token, then frames out and
// frames in. Every wait is a poll() with a deadline, and
// wakes often enough to notice Ctrl-C (interrupt.hpp). Nothing here knows
// what a get or a put is; operations.cpp drives the conversation.
//
// Errors: a failed connect or TLS handshake, a timeout, EOF or a socket
// error is connection_lost (the message names the address); an interrupt is aborted;
// a peer whose first bytes are no Ferry frame (an HTTP or SSH server) is
// not_ferry; broken framing from the server is its decoder error. After any of these
// the connection is closed and is_open() is false.
#pragma once

#include "endpoint.hpp"
#include "frame.hpp"
#include "messages.hpp"
#include "page_buffer.hpp"
#include "receive_buffers.hpp"
#include "status.hpp"
#include "tls.hpp"
#include "transport.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::client {

struct Timeouts {
    std::chrono::milliseconds connect{10'000};
    // The longest the server may go without making progress before the
    // connection is given up: progress is taking bytes we send, sending
    // file bytes (an empty data frame is none), or answering a request
    // (a page of a listing only when it holds an entry or is the last:
    // Connection::made_progress). Only time spent waiting on the server
    // counts. Long enough for the server's fsync and hash at commit; a
    // transfer that moves is never cut.
    std::chrono::milliseconds io{120'000};
    // The longest to wait for the server's answer to hello. ferryd answers
    // at once (an unauthorized token after about a second); a peer that
    // stays silent is likely no Ferry server, and should not cost `io`.
    std::chrono::milliseconds hello{5'000};
};

// Everything that says how to reach and talk to the server, beyond its address.
struct ConnectOptions {
    Timeouts timeouts;
    std::string token;              // sent in hello when not empty (PROTOCOL.md 4.1)
    std::optional<TlsSettings> tls; // nullopt: plaintext
};

// One thing the server sent: a whole control frame, or a piece of a data
// frame. `bytes` points into the connection's buffer and is valid until the
// next receive() or poll_control().
struct Incoming {
    enum class Kind { control, data };
    Kind kind = Kind::control;
    std::string text;
    std::span<const std::uint8_t> bytes;
    bool frame_end = false;
};

class Connection {
public:
    // Connects (with TLS when asked) and says hello with the highest protocol
    // version we speak; a server that refuses it with unsupported_version
    // (a ferryd that speaks only version 1) is connected to again once and
    // offered version 1. A refused token is the server's unauthorized error.
    static Result<Connection> open(const Endpoint& endpoint, const ConnectOptions& options = {});
    static Result<Connection> open(const Endpoint& endpoint, Timeouts timeouts);

    Connection(Connection&& other) noexcept;
    Connection& operator=(Connection&& other) noexcept;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection();

    const Endpoint& endpoint() const { return endpoint_; }
    const HelloReply& server_hello() const { return hello_; }
    // The protocol version this connection speaks (PROTOCOL.md 8).
    std::uint32_t protocol_version() const { return hello_.version; }
    bool is_open() const { return transport_.is_open(); }
    void close();
    // Drops the socket (whatever was in flight) and opens a fresh one.
    Status reconnect();

    // The server moved the conversation on (Timeouts::io): the time waited
    // on it without progress starts again from zero. receive() calls it for
    // file bytes and send for bytes the server took; whoever reads a reply
    // calls it when the reply moves something (operations.cpp's
    // read_reply: not for an empty page that promises more), so a server
    // sending empty frames or pages forever still times out.
    void made_progress() { stalled_ = {}; }

    // Ids for requests on this connection: unique and increasing (hello is 0).
    std::uint64_t next_id() { return next_id_++; }

    Status send_request(const Request& request);
    // Like send_request, but the frame waits to go out with the next send,
    // in the same write, or before the next read (whichever comes first):
    // an upload's commit so reaches the server together with the next put,
    // which the server then starts in the commit's own pool job.
    Status hold_request(const Request& request);
    Status send_control(std::string_view json_text);
    Status send_data(std::span<const std::uint8_t> payload);
    // Any bytes at all, framed or not (tests speak broken protocol with it).
    Status send_raw(std::span<const std::uint8_t> bytes);

    // Waits (up to the io timeout) for the next control frame or data piece.
    Result<Incoming> receive();
    // Like receive(), but a data frame here is a protocol error.
    Result<std::string> receive_control();
    // Never blocks: a control frame the server has already sent (an error
    // during an upload), or nothing. A data frame is a protocol error.
    Result<std::optional<std::string>> poll_control();
    // True when the server sent something or hung up although no request is
    // outstanding: an idle_timeout or shutting_down notice, or EOF. Such a
    // connection should be replaced before it is used again.
    bool has_unsolicited_input();
    // From the next read on, reads into `lender`'s memory instead of the
    // connection's own buffer (the bytes of data frames received are then
    // the lender's to keep); nullptr takes the own buffer back, with any
    // bytes not yet decoded. The lender must outlive the lending
    // (LentBuffers).
    void lend_buffers(ReceiveBuffers* lender);

private:
    Connection(Endpoint endpoint, ConnectOptions options, Transport transport);

    using Clock = std::chrono::steady_clock;
    // Polls for `events` until one is ready (returns revents), or until the
    // time waited without progress (stalled_) reaches the io timeout.
    Result<short> wait_for(short events);
    Status send_vectors(std::span<const std::uint8_t> head, std::span<const std::uint8_t> body);
    // Writes the held frames, if any (see hold_request()).
    Status flush_held();
    // Reads more bytes into the buffer, waiting up to the io timeout.
    Status fill();
    // The next frame (or piece of a data frame) in the buffered bytes;
    // nothing when they end mid-frame (the decoder keeps what it took, and
    // the buffer is emptied for the next read). A decoding error closes.
    Result<std::optional<Incoming>> decode_buffered();
    Error lost(const std::string& what);
    Error lost_while_sending(const std::string& why);
    // Waits for `events` (from a would_block), or for the server to speak
    // first while we send: then its message (an error) ends the send.
    Status wait_to_send(short events);
    Result<HelloReply> say_hello(std::uint32_t version);
    // Connects and says hello with `version`.
    static Result<Connection> open_at(const Endpoint& endpoint, const ConnectOptions& options,
                                      std::uint32_t version);
    // Reads the first bytes of the answer to hello: not_ferry when they
    // cannot begin a Ferry frame (an HTTP or SSH server, a TLS one).
    Status check_first_bytes();
    // Where reads land: the lent memory, or the own buffer.
    std::span<std::uint8_t> window()
    {
        if (!lent_.empty()) {
            return lent_;
        }
        return buffer_ ? std::span(buffer_.get(), kReceiveBuffer) : std::span<std::uint8_t>{}; // moved from: none
    }

    // The own buffer's size; page-aligned, as recv copies into it (sys/page_buffer.hpp).
    static constexpr std::size_t kReceiveBuffer = 1024 * 1024;

    Endpoint endpoint_;
    ConnectOptions options_;
    Transport transport_;
    HelloReply hello_;
    std::uint64_t next_id_ = 0;
    FrameDecoder decoder_;
    sys::PageBuffer<std::uint8_t> buffer_;
    std::size_t begin_ = 0; // undecoded bytes are window()[begin_, end_)
    std::size_t end_ = 0;
    ReceiveBuffers* lender_ = nullptr;
    std::span<std::uint8_t> lent_; // empty: reading into buffer_
    std::string held_;             // frames that go out with the next write
    Clock::duration stalled_{};    // waited on the server since its last progress
};

// Lends a connection's reads `lender`'s memory for its own lifetime.
class LentBuffers {
public:
    LentBuffers(Connection& connection, ReceiveBuffers& lender) : connection_(connection)
    {
        connection_.lend_buffers(&lender);
    }
    LentBuffers(const LentBuffers&) = delete;
    LentBuffers& operator=(const LentBuffers&) = delete;
    ~LentBuffers() { connection_.lend_buffers(nullptr); }

private:
    Connection& connection_;
};

// The Error carried by a server message that was not the reply expected
// (typically an error sent in the middle of an upload).
Error unexpected_message(std::string_view json_text);

} // namespace ferry::client
