// A client connection on the libuv loop: the SessionIo that moves bytes
// between a TCP handle and a Session. Callbacks only move bytes and call the
// session's transitions.
//
// Ownership follows libuv: the Connection embeds its uv_tcp_t and is freed
// only in the close callback, and only once no thread-pool job it started
// is still running. Each write owns its bytes until its callback.
#pragma once

#include "session.hpp"
#include "session_io.hpp"
#include "tls.hpp"

#include <uv.h>

#include <list>
#include <memory>
#include <optional>
#include <string>
#include <variant>

namespace ferry::server {

class Server;

class Connection final : public SessionIo {
public:
    Connection(Server& server, uv_loop_t* loop);
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
    // Called once the handle has been accepted: learns the peer's address.
    void start();
    // Begins reading requests (the connection passed the server's limits).
    void serve() { resume_reading(); }
    // The server is stopping: close once the running transfer is done.
    void shutdown() { session_.shutdown(); }
    // The drain time is over: cut the running transfer.
    void abandon() { session_.abandon(); }
    // Turns the connection away (a limit): one error frame, then close.
    void refuse(const Error& error);
    // The periodic sweep: timeouts, and a close stuck behind unwritten bytes
    // (`unwatched_ms`: see Session::check_timeouts).
    void check_timeouts(std::uint64_t now_ms, std::uint64_t unwatched_ms);
    // Closes the socket now, dropping unwritten bytes (drain time is over).
    void force_close();
    // Closes a handle that was never started (accept failed).
    void discard();

    // SessionIo
    void send(std::string bytes) override;
    std::size_t unsent_bytes() const override { return unsent_; }
    std::uint64_t acknowledged_bytes() const override;
    bool supports_file_frames() const override { return transport_ == Transport::plain; }
    void send_file_frame(std::shared_ptr<const OpenFile> file, std::uint64_t offset, std::size_t length) override;
    void submit(std::unique_ptr<PoolJob> job) override;
    bool torn_down() const override { return handle_closing_; }
    void pause_reading() override;
    void resume_reading() override;
    void close() override;
    const std::string& peer() const override { return peer_; }
    const std::string& address() const override { return address_; }
    std::uint64_t now_ms() const override;

private:
    ~Connection() override = default;

    struct WriteRequest;
    struct JobRequest;
    // Part of a file being sent with sendfile(2).
    struct FileRange {
        std::shared_ptr<const OpenFile> file;
        std::uint64_t offset = 0;
        std::size_t length = 0;
    };

    static void on_alloc(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buf);
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
    static void on_write(uv_write_t* request, int status);
    static void on_work(uv_work_t* request);
    static void on_work_done(uv_work_t* request, int status);
    static void on_close(uv_handle_t* handle);
    static void on_writable(uv_poll_t* poll, int status, int events);

    void peer_gone();
    // On a TLS server: whether the handshake has finished (nothing can be
    // sent before), and where an unfinished one stands, for logs.
    bool handshake_pending() const;
    std::string handshake_stage() const;
    // Bytes from the socket: decrypted first on a TLS connection.
    void deliver(std::span<const char> bytes);
    void receive_tls(std::span<const char> bytes);
    // Bytes to the socket as they are (ciphertext on a TLS connection).
    void write_raw(std::string bytes);
    void start_write(std::string bytes);
    // Sends the current file range while the socket takes it; waits for
    // writability (a poll handle) when it does not.
    void pump_file_range();
    void watch_writable();
    void stop_watching_writable();
    void release_writable_watch();
    // Bytes and file frames queued behind a file range, in order.
    void flush_waiting();
    bool sending_file_range() const { return file_range_.has_value(); }
    void finish_close();
    void close_handle();
    void free_if_done();
    // Runs a transition; an escaping exception (bad_alloc, a bug) closes
    // this connection instead of unwinding through libuv's C frames.
    template <typename Transition>
    void guarded(Transition&& transition);

    Server& server_;
    uv_tcp_t tcp_{};
    Session session_;
    std::string peer_ = "?";
    std::string address_ = "?";
    std::uint64_t close_requested_at_ = 0;
    std::uint64_t connected_at_ = 0;
    std::size_t unsent_ = 0;
    // Bytes handed to the kernel's socket or to libuv's write queue for it.
    std::uint64_t written_ = 0;
    mutable std::uint64_t acknowledged_ = 0;
    std::size_t pending_writes_ = 0;
    bool reading_ = false;
    bool peer_closed_ = false;
    bool close_requested_ = false;
    bool lingering_ = false;
    bool handle_closing_ = false;
    bool handle_closed_ = false;
    bool job_running_ = false;
    enum class Transport { undecided, plain, tls };
    Transport transport_ = Transport::undecided;
    std::unique_ptr<TlsChannel> tls_;
    // A TLS client's first record while it is incomplete (see deliver()).
    std::string first_record_;
    // Zero-copy sending. libuv's stream owns the socket's write readiness,
    // so a second descriptor of the same socket (dup) is what the poll
    // handle watches; it exists only while a file range waits for room.
    std::optional<FileRange> file_range_;
    // A list, not a deque: an empty deque already holds ~600 bytes, which
    // every idle connection would pay for.
    std::list<std::variant<std::string, FileRange>> waiting_;
    // Bytes written while a write was in flight, in order; they go out as
    // one write when it completes. Never non-empty without a write in flight.
    std::string behind_;
    uv_poll_t* writable_poll_ = nullptr;
    int writable_fd_ = -1;
    bool writable_watched_ = false;
};

} // namespace ferry::server
