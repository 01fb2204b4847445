// A client connection on the libuv loop: the SessionIo that moves bytes
// between a TCP handle and a Session. Callbacks only move bytes and call the
// session's transitions.
//
// Ownership follows libuv: the Connection embeds its uv_tcp_t and is freed
// only in the close callback, and only once no thread-pool job it started
// is still running. Its output, zero-copy file ranges included, is a
// SendQueue (send_queue.hpp), whose writes own their bytes.
//
// An idle connection is parked: between requests, once its output has
// left, the Session and the SendQueue are freed and only the Session's
// Standing is kept; the next bytes from the peer (or the sweep's idle
// timeout, or a shutdown) make them again. A server holding thousands of
// idle connections so pays for each about its uv_tcp_t and a few dozen
// bytes (issue 15: nginx's 0.5 KiB per idle connection).
#pragma once

#include "send_queue.hpp"
#include "session.hpp"
#include "session_io.hpp"
#include "tls.hpp"

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

namespace ferry::server {

class Server;

class Connection final : public SessionIo {
public:
    // Where the connection stands in its life. Each phase says what may
    // still happen; the transitions are the functions named beside them.
    enum class Phase : std::uint8_t {
        accepted,           // open, nothing read yet: serve() or refuse() decides
        serving,            // reading (unless the session paused it) and sending
        peer_gone,          // the peer closed or reset (peer_gone()): no reading; the
                            // session was told and closes when its job is done
        flushing,           // close() was asked: no reading; queued output still
                            // leaves, then begin_linger()
        flushing_peer_gone, // close() after the peer left, or the peer left while
                            // flushing: queued output leaves, then close_handle()
        lingering,          // our side shut down (FIN sent): reading and dropping
                            // until the peer's EOF or the linger time, then close_handle()
        closing,            // uv_close was called (close_handle()): waiting for on_close
        closed,             // the handle is closed; freed once no pool job points here
    };

    // On `server`'s loop; the server is found again through it (Server::of).
    explicit Connection(Server& server);
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
    // Called once the handle has been accepted: learns the peer's address.
    void start();
    // Begins reading requests (the connection passed the server's limits).
    void serve();
    // The server is stopping: close once the running transfer is done.
    void shutdown();
    // The drain time is over: cut the running transfer.
    void abandon();
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
    std::size_t unsent_bytes() const override { return live_ ? live_->output.unsent_bytes() : 0; }
    std::uint64_t acknowledged_bytes() const override { return live_ ? live_->output.acknowledged_bytes() : 0; }
    std::uint64_t unacknowledged_bytes() const override
    {
        return live_ ? live_->output.written_bytes() - live_->output.acknowledged_bytes() : 0;
    }
    void await_acknowledgement() override { live().output.await_acknowledgement(); }
    bool peer_on_this_host() const override { return peer_on_this_host_; }
    bool supports_file_frames() const override { return transport_ == Transport::plain; }
    void send_file_frame(std::shared_ptr<const OpenFile> file, std::uint64_t offset, std::size_t length) override;
    void submit(std::unique_ptr<PoolJob> job) override;
    bool torn_down() const override { return handle_closing(); }
    void pause_reading() override;
    void resume_reading() override;
    void close() override;
    const std::string& peer() const override { return peer_; }
    std::string address() const override;
    std::uint64_t now_ms() const override;

    // Whether the session is parked (freed with its output queue, see above).
    bool parked() const { return !live_; }
    // What a parked connection keeps of its session.
    const Session::Standing& standing() const { return parked_; }

private:
    // The Server threads its lists through its connections (prev_, next_,
    // listed_): see Server::ConnectionList.
    friend class Server;

    ~Connection() override = default;

    struct JobRequest;
    // What a connection holds only while it is not parked. It, not the
    // Connection, is the queue's owner: a second vtable pointer in every
    // parked connection would be 8 bytes of each thousand idle ones.
    struct Live final : private SendQueue::Owner {
        Live(Connection& connection, Session::Standing standing);
        void on_queue_sent() override { connection.on_queue_sent(); }
        void on_queue_drained() override { connection.on_queue_drained(); }
        void on_queue_failed(const SendFailure& failure) override { connection.on_queue_failed(failure); }

        Connection& connection;
        Session session;
        SendQueue output;
    };

    // The session and output queue, made again from the Standing if parked.
    Live& live();
    Session& session() { return live().session; }
    // Parks the connection if it is serving, its output has left and the
    // session is between requests (Session::parkable()).
    void park_if_idle();

    static void on_alloc(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buf);
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
    static void on_work(uv_work_t* request);
    static void on_work_done(uv_work_t* request, int status);
    static void on_close(uv_handle_t* handle);

    // The queue's events (Live passes them on), always from its callbacks.
    void on_queue_sent();
    void on_queue_drained();
    void on_queue_failed(const SendFailure& failure);

    // Transitions (see Phase).
    void peer_gone();
    void finish_flushing();
    void begin_linger();
    void close_handle();
    void free_if_done();
    bool handle_closing() const { return phase_ == Phase::closing || phase_ == Phase::closed; }
    // On a TLS server: whether the handshake has finished (nothing can be
    // sent before), and where an unfinished one stands, for logs.
    bool handshake_pending() const;
    std::string handshake_stage() const;
    // Bytes from the socket: decrypted first on a TLS connection.
    void deliver(std::span<const char> bytes);
    void receive_tls(std::span<const char> bytes);
    // Bytes to the socket as they are (ciphertext on a TLS connection).
    void write_raw(std::string bytes) { live().output.send(std::move(bytes)); }
    // Runs a transition; an escaping exception (bad_alloc, a bug) closes
    // this connection instead of unwinding through libuv's C frames.
    template <typename Transition>
    void guarded(Transition&& transition);

    Server& server() const;

    uv_tcp_t tcp_{};
    std::string peer_ = "?";
    // While open: when the connection was accepted (the TLS handshake's
    // deadline runs from it). From close() on: when the close was asked
    // (the linger time runs from it). One field, since no phase needs both.
    std::uint64_t phase_since_ms_ = 0;
    // One byte each, side by side: a server holds thousands of these.
    Phase phase_ = Phase::accepted;
    // A pool job holds a pointer to this object until its completion runs,
    // whether or not the completion is dropped (see on_work_done).
    bool job_running_ = false;
    // See SessionIo::peer_on_this_host(); learnt in start().
    bool peer_on_this_host_ = false;
    enum class Transport : std::uint8_t { undecided, plain, tls };
    Transport transport_ = Transport::undecided;
    // Which of the server's lists holds this connection, if any.
    enum class Listed : std::uint8_t { none, serving, refused };
    Listed listed_ = Listed::none;
    Connection* prev_ = nullptr;
    Connection* next_ = nullptr;
    std::unique_ptr<TlsChannel> tls_;
    // A TLS client's first record while it is incomplete (see deliver());
    // on the heap only then, since plain connections never need it.
    std::unique_ptr<std::string> first_record_;
    // Null while parked. Its queue is closed (close_handle()) before tcp_ is.
    std::unique_ptr<Live> live_;
    // The parked session's state; moved into the session while live_ is set.
    Session::Standing parked_;
};

} // namespace ferry::server
