#include "connection.hpp"

#include "log.hpp"
#include "server.hpp"

#include "frame.hpp"
#include "messages.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>

namespace ferry::server {

struct Connection::JobRequest {
    uv_work_t request{};
    std::unique_ptr<PoolJob> job;
    Connection* connection = nullptr;
};

Connection::Live::Live(Connection& connection, Session::Standing standing)
    : connection(connection),
      session(connection, connection.server().library(), connection.server().config(), connection.server().counters(),
              std::move(standing)),
      output(connection.stream(), *this)
{
}

// Born parked: a connection that never sends a byte never has a session.
Connection::Connection(Server& server)
{
    uv_tcp_init(server.loop(), &tcp_);
    tcp_.data = this;
    parked_.last_activity_ms = now_ms();
}

Server& Connection::server() const
{
    return Server::of(tcp_.loop);
}

std::uint64_t Connection::now_ms() const
{
    return uv_now(server().loop());
}

Connection::Live& Connection::live()
{
    if (!live_) {
        live_ = std::make_unique<Live>(*this, std::move(parked_));
        parked_ = Session::Standing{};
    }
    return *live_;
}

void Connection::park_if_idle()
{
    if (live_ && phase_ == Phase::serving && !job_running_ && live_->output.idle() && !live_->output.failed() &&
        live_->session.parkable()) {
        parked_ = live_->session.park();
        live_.reset();
    }
}

void Connection::shutdown()
{
    // A connection that is closing has nothing to be told.
    if (live_ || phase_ == Phase::accepted || phase_ == Phase::serving) {
        guarded([&] { session().shutdown(); }); // waking a parked one allocates
    }
}

void Connection::abandon()
{
    if (live_ || phase_ == Phase::accepted || phase_ == Phase::serving) {
        guarded([&] { session().abandon(); });
    }
}

void Connection::start()
{
    phase_since_ms_ = now_ms();
    uv_tcp_nodelay(&tcp_, 1);
    sockaddr_storage address{};
    int length = sizeof address;
    if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
        address = unmapped(address);
        peer_ = format_address(reinterpret_cast<const sockaddr*>(&address));
        sockaddr_storage local{};
        int local_length = sizeof local;
        if (uv_tcp_getsockname(&tcp_, reinterpret_cast<sockaddr*>(&local), &local_length) == 0) {
            local = unmapped(local);
            peer_on_this_host_ =
                same_host(reinterpret_cast<const sockaddr*>(&address), reinterpret_cast<const sockaddr*>(&local));
        }
    }
}

std::string Connection::address() const
{
    const auto colon = peer_.rfind(':');
    return colon == std::string::npos ? peer_ : peer_.substr(0, colon);
}

void Connection::serve()
{
    if (phase_ == Phase::accepted) {
        phase_ = Phase::serving;
        uv_read_start(stream(), on_alloc, on_read);
    }
}

void Connection::refuse(const Error& error)
{
    // A TLS client could not read a plaintext frame: it just sees the close.
    if (!server().config().tls) {
        write_raw(encode_control_frame(encode_error(std::nullopt, error)));
    }
    close();
}

void Connection::deliver(std::span<const char> bytes)
{
    if (transport_ == Transport::undecided) {
        if (!server().config().tls) {
            transport_ = Transport::plain;
        } else if (static_cast<unsigned char>(bytes[0]) == kTlsHandshakeRecord) {
            transport_ = Transport::tls;
        } else {
            // Said in plaintext, so that a plaintext client learns why;
            // counted before it is written, as every error reply
            // (PROTOCOL.md 4.8).
            log_event("refused", {{"peer", peer_}, {"code", "tls_required"}});
            server().counters().count_error(to_string(ErrorCode::tls_required));
            write_raw(encode_control_frame(encode_error(
                std::nullopt, Error{ErrorCode::tls_required, "this server requires TLS; connect with --tls"})));
            close();
            return;
        }
    }
    if (transport_ == Transport::plain) {
        session().on_bytes(bytes);
        return;
    }
    if (!tls_) {
        // The TLS engine costs tens of KiB from its first byte on, so it
        // starts only once the client's first record (its ClientHello, a
        // few hundred bytes) is whole: a peer that stops half-way holds
        // just the bytes it sent, until the handshake deadline.
        if (!first_record_) {
            first_record_ = std::make_unique<std::string>();
        }
        first_record_->append(bytes.data(), bytes.size());
        const auto wanted = tls_record_size(*first_record_);
        if (!wanted) {
            log_event("close", {{"peer", peer_},
                                {"code", "tls"},
                                {"message", "the first TLS record is longer than a ClientHello can be"}});
            force_close();
            return;
        }
        if (*wanted == 0 || first_record_->size() < *wanted) {
            return;
        }
        tls_ = std::make_unique<TlsChannel>(*server().config().tls);
        const std::unique_ptr<std::string> record = std::move(first_record_);
        receive_tls(*record);
        return;
    }
    receive_tls(bytes);
}

void Connection::receive_tls(std::span<const char> bytes)
{
    std::string plain;
    std::string cipher;
    auto failure = tls_->receive(bytes, plain, cipher);
    if (!cipher.empty()) {
        write_raw(std::move(cipher));
    }
    if (!plain.empty()) {
        session().on_bytes(plain);
    }
    if (failure) {
        if (failure->code != ErrorCode::connection_lost) {
            log_event("close", {{"peer", peer_}, {"code", "tls"}, {"message", failure->message}});
        }
        peer_gone();
    }
}

// Bytes that a peer does not read can hold a close up forever; after this
// long the socket is closed regardless.
constexpr std::uint64_t kCloseLingerMs = 2000;

bool Connection::handshake_pending() const
{
    return server().config().tls && (!tls_ || !tls_->handshake_done());
}

std::string Connection::handshake_stage() const
{
    if (transport_ == Transport::undecided) {
        return "no byte received";
    }
    if (!tls_) {
        return "ClientHello incomplete: " + std::to_string(first_record_ ? first_record_->size() : 0) + " bytes received";
    }
    return "stopped at \"" + std::string(tls_->stage()) + "\"";
}

void Connection::check_timeouts(std::uint64_t now_ms, std::uint64_t unwatched_ms)
{
    switch (phase_) {
    case Phase::accepted:
    case Phase::serving:
    case Phase::peer_gone:
        break;
    case Phase::flushing:
    case Phase::flushing_peer_gone:
    case Phase::lingering:
        phase_since_ms_ = std::min(now_ms, phase_since_ms_ + unwatched_ms);
        if (now_ms - phase_since_ms_ >= kCloseLingerMs) {
            force_close();
        }
        return;
    case Phase::closing:
    case Phase::closed:
        return;
    }
    // Like the session's clocks, the handshake's deadline skips the time
    // the server itself did not run.
    phase_since_ms_ = std::min(now_ms, phase_since_ms_ + unwatched_ms);
    const auto handshake_limit = static_cast<std::uint64_t>(server().config().handshake_timeout.count());
    if (handshake_pending() && now_ms - phase_since_ms_ >= handshake_limit) {
        // Nothing can be said to a peer without a finished handshake.
        guarded([&] {
            char waited[32];
            std::snprintf(waited, sizeof waited, "%.1f s", static_cast<double>(now_ms - phase_since_ms_) / 1000.0);
            log_event("close", {{"peer", peer_},
                                {"code", "tls_handshake_timeout"},
                                {"message", "TLS handshake not finished after " + std::string(waited) + " (" +
                                                handshake_stage() + ")"}});
        });
        force_close();
        return;
    }
    if (!live_) {
        // A parked session is woken only when its idle time is up, and
        // then says so itself; the time was already moved forward.
        if (!parked_.idle_expired(now_ms, unwatched_ms, server().config())) {
            return;
        }
        unwatched_ms = 0;
    }
    guarded([&] { session().check_timeouts(now_ms, unwatched_ms); });
}

template <typename Transition>
void Connection::guarded(Transition&& transition)
{
    // What one transition sends leaves as one write (SendQueue::hold): a
    // small get's reply, data frame and trailer, say. A parked connection
    // has no queue until the transition wakes it: its output goes as before.
    SendQueue* output = live_ ? &live_->output : nullptr;
    if (output != nullptr) {
        output->hold();
    }
    try {
        transition();
    } catch (const std::exception& error) {
        log_event("close", {{"peer", peer_}, {"code", "internal"}, {"message", error.what()}});
        force_close();
    } catch (...) {
        log_event("close", {{"peer", peer_}, {"code", "internal"}, {"message", "unknown exception"}});
        force_close();
    }
    // Only a parking frees the queue, and no transition parks (park_if_idle
    // runs after them); a queue closed meanwhile sends nothing.
    if (output != nullptr && live_ && &live_->output == output) {
        output->release();
    }
}

void Connection::on_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf)
{
    // One buffer per loop serves every connection: libuv calls read_cb right
    // after alloc_cb, and the session copies out what it keeps. An idle
    // connection therefore holds no read buffer at all. On plain TCP an
    // upload's data lands instead in the chunk that will be written
    // (Session::receive_area); TLS needs the ciphertext here first.
    auto* self = static_cast<Connection*>(handle->data);
    auto& shared = self->server().read_buffer();
    std::span<char> area(shared.data(), shared.size());
    if (self->transport_ == Transport::plain && self->phase_ == Phase::serving && self->live_) {
        self->guarded([&] { area = self->live_->session.receive_area(area); });
    }
    *buf = uv_buf_init(area.data(), static_cast<unsigned int>(area.size()));
}

void Connection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf)
{
    auto* self = static_cast<Connection*>(stream->data);
    switch (self->phase_) {
    case Phase::serving:
        break;
    case Phase::lingering:
        if (nread < 0) {
            self->close_handle(); // the peer has read our last words and left
        }
        return; // whatever else the peer still sends is dropped
    case Phase::accepted:
    case Phase::peer_gone:
    case Phase::flushing:
    case Phase::flushing_peer_gone:
    case Phase::closing:
    case Phase::closed:
        return; // not reading in these phases
    }
    if (nread > 0) {
        self->guarded([&] { self->deliver(std::span<const char>(buf->base, static_cast<std::size_t>(nread))); });
        self->park_if_idle();
    } else if (nread < 0) {
        // UV_EOF is the peer's orderly close, anything else a reset; either
        // way no more bytes will come. (nread == 0 is only EAGAIN.)
        if (self->transport_ == Transport::tls && self->handshake_pending()) {
            self->guarded([&] {
                log_event("close", {{"peer", self->peer_},
                                    {"code", "tls_handshake_incomplete"},
                                    {"message", "the peer left during the TLS handshake (" +
                                                    self->handshake_stage() + ")"}});
            });
        }
        self->peer_gone();
    }
}

void Connection::peer_gone()
{
    switch (phase_) {
    case Phase::accepted:
    case Phase::serving:
        phase_ = Phase::peer_gone;
        uv_read_stop(stream());
        guarded([&] { session().on_peer_closed(); });
        return;
    case Phase::flushing:
        // The session has finished; what is queued still goes out (a peer
        // that only half-closed reads it), then the socket closes.
        phase_ = Phase::flushing_peer_gone;
        return;
    case Phase::peer_gone:
    case Phase::flushing_peer_gone:
    case Phase::lingering: // the read side ends it
    case Phase::closing:
    case Phase::closed:
        return;
    }
}

void Connection::send(std::string bytes)
{
    if (handshake_pending()) {
        // The peer could read neither plaintext nor anything before the
        // handshake ends (an idle timeout or shutdown before it did): the
        // close that follows says it all.
        return;
    }
    if (!tls_) {
        write_raw(std::move(bytes));
        return;
    }
    std::string cipher;
    if (auto failure = tls_->send(bytes, cipher)) {
        log_event("close", {{"peer", peer_}, {"code", "tls"}, {"message", failure->message}});
        force_close();
        return;
    }
    write_raw(std::move(cipher));
}

void Connection::send_file_frame(std::shared_ptr<const OpenFile> file, std::uint64_t offset, std::size_t length)
{
    const FrameHeader header = encode_frame_header(FrameKind::data, static_cast<std::uint32_t>(length));
    Live& live = this->live();
    live.output.send(std::string(reinterpret_cast<const char*>(header.data()), header.size()));
    live.output.send_file(std::move(file), offset, length);
}

void Connection::on_queue_sent()
{
    switch (phase_) {
    case Phase::accepted:
    case Phase::serving:
    case Phase::peer_gone:
        guarded([&] { session().on_sent(); });
        return;
    case Phase::flushing:
    case Phase::flushing_peer_gone:
    case Phase::lingering:
    case Phase::closing:
    case Phase::closed:
        return; // the session has closed: nothing more to send
    }
}

// The queue's last act in its callback (SendQueue::Owner), so the queue
// (and the Live that passed this on) may be freed here: a serving
// connection whose reply has left parks.
void Connection::on_queue_drained()
{
    finish_flushing();
    park_if_idle();
}

void Connection::on_queue_failed(const SendFailure& failure)
{
    if (failure.code != ErrorCode::connection_lost) {
        guarded([&] {
            log_event("close", {{"peer", peer_}, {"code", to_string(failure.code)}, {"message", failure.message()}});
        });
        force_close();
        return;
    }
    peer_gone();
    finish_flushing(); // nothing more can leave
}

void Connection::submit(std::unique_ptr<PoolJob> job)
{
    auto* request = new JobRequest;
    request->job = std::move(job);
    request->connection = this;
    request->request.data = request;
    job_running_ = true;
    const int status = uv_queue_work(tcp_.loop, &request->request, on_work, on_work_done);
    if (status != 0) {
        // Cannot happen with a valid loop and callbacks; fail loudly rather
        // than leave the session waiting forever. The completion still goes
        // to the session, which drops it: the connection is torn down.
        job_running_ = false;
        std::unique_ptr<PoolJob> unrun = std::move(request->job);
        delete request;
        log_event("close", {{"peer", peer_}, {"code", "internal"}, {"message", uv_strerror(status)}});
        force_close();
        guarded([&] { unrun->done(); });
    }
}

void Connection::on_work(uv_work_t* request)
{
    // PoolJob::work() keeps any exception for done(): nothing unwinds here.
    static_cast<JobRequest*>(request->data)->job->work();
}

// Every completion goes to the session, torn down or not; the session's
// gate decides whether it still acts. The connection only waits for it
// before it frees itself.
void Connection::on_work_done(uv_work_t* request, int)
{
    auto* finished = static_cast<JobRequest*>(request->data);
    Connection* self = finished->connection;
    std::unique_ptr<PoolJob> job = std::move(finished->job);
    delete finished;
    self->job_running_ = false;
    self->guarded([&] { job->done(); });
    job.reset();
    if (self->handle_closing()) {
        self->free_if_done();
    } else {
        self->park_if_idle();
    }
}

// Reading is the session's to pause while it serves; in the other phases
// the connection itself has stopped it (or, lingering, reads to drop).
void Connection::pause_reading()
{
    if (phase_ == Phase::serving) {
        uv_read_stop(stream());
    }
}

void Connection::resume_reading()
{
    if (phase_ == Phase::serving) {
        uv_read_start(stream(), on_alloc, on_read); // UV_EALREADY if reading
    }
}

void Connection::close()
{
    switch (phase_) {
    case Phase::accepted:
    case Phase::serving:
        phase_ = Phase::flushing;
        break;
    case Phase::peer_gone:
        phase_ = Phase::flushing_peer_gone;
        break;
    case Phase::flushing:
    case Phase::flushing_peer_gone:
    case Phase::lingering:
    case Phase::closing:
    case Phase::closed:
        return;
    }
    phase_since_ms_ = now_ms();
    uv_read_stop(stream());
    if (live().output.idle()) {
        finish_flushing();
    }
}

// Everything queued has left (or never will: the queue failed).
void Connection::finish_flushing()
{
    switch (phase_) {
    case Phase::flushing:
        if (live().output.failed()) {
            close_handle(); // the socket is broken: no one to linger for
        } else {
            begin_linger();
        }
        return;
    case Phase::flushing_peer_gone:
        close_handle();
        return;
    case Phase::accepted:
    case Phase::serving:
    case Phase::peer_gone:
    case Phase::lingering:
    case Phase::closing:
    case Phase::closed:
        return;
    }
}

// Closing a socket whose peer is still sending makes the kernel answer with
// a reset, which can destroy our last reply (say, no_space) before the peer
// reads it. So the server half-closes, drops what still arrives, and closes
// once the peer does, or when the linger time of the sweep runs out.
void Connection::begin_linger()
{
    phase_ = Phase::lingering;
    if (tls_) {
        std::string cipher;
        tls_->close_notify(cipher);
        if (!cipher.empty()) {
            write_raw(std::move(cipher));
        }
    }
    // Inside a transition the output is held (guarded): written now, since
    // the shutdown comes after the writes in libuv's queue only, and after
    // it a write fails. The TLS close_notify above would be lost (RFC 8446
    // 6.1: the peer then sees a truncation).
    if (live_) {
        live_->output.flush_held();
    }
    auto* request = new uv_shutdown_t;
    request->data = this;
    const int status = uv_shutdown(request, stream(), [](uv_shutdown_t* done, int result) {
        auto* self = static_cast<Connection*>(done->data);
        delete done;
        if (result < 0) {
            self->close_handle();
        }
    });
    if (status != 0) {
        delete request;
        close_handle();
        return;
    }
    uv_read_start(stream(), on_alloc, on_read);
}

void Connection::force_close()
{
    close_handle();
}

void Connection::discard()
{
    close_handle();
}

void Connection::close_handle()
{
    switch (phase_) {
    case Phase::accepted:
    case Phase::serving:
    case Phase::peer_gone:
    case Phase::flushing:
    case Phase::flushing_peer_gone:
    case Phase::lingering:
        break;
    case Phase::closing:
    case Phase::closed:
        return;
    }
    phase_ = Phase::closing;
    if (live_) {
        live_->output.close(); // before the stream it writes to
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
}

void Connection::on_close(uv_handle_t* handle)
{
    auto* self = static_cast<Connection*>(handle->data);
    self->phase_ = Phase::closed;
    self->free_if_done();
}

// The object outlives both its handle and any job that holds a pointer to it.
void Connection::free_if_done()
{
    if (phase_ == Phase::closed && !job_running_) {
        if (!live_ && parked_.errors_not_logged > 0) {
            // A live session says this as it is destroyed; a parked one cannot.
            try {
                log_event("errors_not_logged", {{"peer", peer_}, {"count", static_cast<std::uint64_t>(parked_.errors_not_logged)}});
            } catch (...) {
                // Out of memory while saying so: the count is in stats anyway.
            }
        }
        server().forget(this);
        delete this;
    }
}

} // namespace ferry::server
