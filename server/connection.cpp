#include "connection.hpp"

#include "log.hpp"
#include "server.hpp"

#include "frame.hpp"
#include "messages.hpp"

#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>

namespace ferry::server {

struct Connection::WriteRequest {
    uv_write_t request{};
    std::string bytes;
    Connection* connection = nullptr;
};

struct Connection::JobRequest {
    uv_work_t request{};
    std::unique_ptr<PoolJob> job;
    Connection* connection = nullptr;
};

Connection::Connection(Server& server, uv_loop_t* loop)
    : server_(server), session_(*this, server.library(), server.config(), server.counters())
{
    uv_tcp_init(loop, &tcp_);
    tcp_.data = this;
}

// The session asks for the time while it is constructed, before tcp_ is
// initialised, so the clock comes from the server's loop.
std::uint64_t Connection::now_ms() const
{
    return uv_now(server_.loop());
}

void Connection::start()
{
    connected_at_ = now_ms();
    uv_tcp_nodelay(&tcp_, 1);
    sockaddr_storage address{};
    int length = sizeof address;
    if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
        peer_ = format_address(reinterpret_cast<const sockaddr*>(&address));
        address_ = peer_.substr(0, peer_.rfind(':'));
    }
}

void Connection::refuse(const Error& error)
{
    // A TLS client could not read a plaintext frame: it just sees the close.
    if (!server_.config().tls) {
        write_raw(encode_control_frame(encode_error(std::nullopt, error)));
    }
    close();
}

void Connection::deliver(std::span<const char> bytes)
{
    if (transport_ == Transport::undecided) {
        if (!server_.config().tls) {
            transport_ = Transport::plain;
        } else if (static_cast<unsigned char>(bytes[0]) == kTlsHandshakeRecord) {
            transport_ = Transport::tls;
        } else {
            // Said in plaintext, so that a plaintext client learns why.
            log_event("refused", {{"peer", peer_}, {"code", "tls_required"}});
            write_raw(encode_control_frame(encode_error(
                std::nullopt, Error{ErrorCode::tls_required, "this server requires TLS; connect with --tls"})));
            close();
            return;
        }
    }
    if (transport_ == Transport::plain) {
        session_.on_bytes(bytes);
        return;
    }
    if (!tls_) {
        // The TLS engine costs tens of KiB from its first byte on, so it
        // starts only once the client's first record (its ClientHello, a
        // few hundred bytes) is whole: a peer that stops half-way holds
        // just the bytes it sent, until the handshake deadline.
        first_record_.append(bytes.data(), bytes.size());
        const auto wanted = tls_record_size(first_record_);
        if (!wanted) {
            log_event("close", {{"peer", peer_},
                                {"code", "tls"},
                                {"message", "the first TLS record is longer than a ClientHello can be"}});
            force_close();
            return;
        }
        if (*wanted == 0 || first_record_.size() < *wanted) {
            return;
        }
        tls_ = std::make_unique<TlsChannel>(*server_.config().tls);
        std::string record;
        record.swap(first_record_);
        receive_tls(record);
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
        session_.on_bytes(plain);
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
    return server_.config().tls && (!tls_ || !tls_->handshake_done());
}

std::string Connection::handshake_stage() const
{
    if (transport_ == Transport::undecided) {
        return "no byte received";
    }
    if (!tls_) {
        return "ClientHello incomplete: " + std::to_string(first_record_.size()) + " bytes received";
    }
    return "stopped at \"" + std::string(tls_->stage()) + "\"";
}

void Connection::check_timeouts(std::uint64_t now_ms, std::uint64_t unwatched_ms)
{
    if (handle_closing_) {
        return;
    }
    if (close_requested_) {
        close_requested_at_ = std::min(now_ms, close_requested_at_ + unwatched_ms);
        if (now_ms - close_requested_at_ >= kCloseLingerMs) {
            force_close();
        }
        return;
    }
    // Like the session's clocks, the handshake's deadline skips the time
    // the server itself did not run.
    connected_at_ = std::min(now_ms, connected_at_ + unwatched_ms);
    const auto handshake_limit = static_cast<std::uint64_t>(server_.config().handshake_timeout.count());
    if (handshake_pending() && now_ms - connected_at_ >= handshake_limit) {
        // Nothing can be said to a peer without a finished handshake.
        guarded([&] {
            char waited[32];
            std::snprintf(waited, sizeof waited, "%.1f s", static_cast<double>(now_ms - connected_at_) / 1000.0);
            log_event("close", {{"peer", peer_},
                                {"code", "tls_handshake_timeout"},
                                {"message", "TLS handshake not finished after " + std::string(waited) + " (" +
                                                handshake_stage() + ")"}});
        });
        force_close();
        return;
    }
    guarded([&] { session_.check_timeouts(now_ms, unwatched_ms); });
}

// What was written minus what still waits: in libuv's queue, or in the
// kernel's send queue unacknowledged (SIOCOUTQ counts both the unsent and
// the unacknowledged bytes there).
std::uint64_t Connection::acknowledged_bytes() const
{
    uv_os_fd_t fd = -1;
    int queued = 0;
    if (uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd) != 0 || ::ioctl(fd, SIOCOUTQ, &queued) != 0) {
        return acknowledged_;
    }
    const std::uint64_t waiting =
        uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(&tcp_)) + static_cast<std::uint64_t>(queued);
    // Acknowledgements never go back; the figure must not either.
    if (written_ > waiting) {
        acknowledged_ = std::max(acknowledged_, written_ - waiting);
    }
    return acknowledged_;
}

template <typename Transition>
void Connection::guarded(Transition&& transition)
{
    try {
        transition();
    } catch (const std::exception& error) {
        log_event("close", {{"peer", peer_}, {"code", "internal"}, {"message", error.what()}});
        force_close();
    } catch (...) {
        log_event("close", {{"peer", peer_}, {"code", "internal"}, {"message", "unknown exception"}});
        force_close();
    }
}

void Connection::on_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf)
{
    // One buffer per loop serves every connection: libuv calls read_cb right
    // after alloc_cb, and the session copies out what it keeps. An idle
    // connection therefore holds no read buffer at all.
    auto* self = static_cast<Connection*>(handle->data);
    auto& shared = self->server_.read_buffer();
    *buf = uv_buf_init(shared.data(), static_cast<unsigned int>(shared.size()));
}

void Connection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf)
{
    auto* self = static_cast<Connection*>(stream->data);
    if (self->lingering_) {
        if (nread < 0) {
            self->close_handle(); // the peer has read our last words and left
        }
        return; // whatever else the peer still sends is dropped
    }
    if (nread > 0) {
        self->guarded([&] { self->deliver(std::span<const char>(buf->base, static_cast<std::size_t>(nread))); });
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
    if (peer_closed_) {
        return;
    }
    peer_closed_ = true;
    if (reading_) {
        uv_read_stop(stream());
        reading_ = false;
    }

    guarded([&] { session_.on_peer_closed(); });
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
        if (sending_file_range() || !waiting_.empty()) {
            unsent_ += bytes.size();
            waiting_.emplace_back(std::move(bytes));
            return;
        }
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
    std::string header_bytes(reinterpret_cast<const char*>(header.data()), header.size());
    FileRange range{std::move(file), offset, length};
    if (sending_file_range() || !waiting_.empty()) {
        unsent_ += header_bytes.size() + length;
        waiting_.emplace_back(std::move(header_bytes));
        waiting_.emplace_back(std::move(range));
        return;
    }
    write_raw(std::move(header_bytes));
    unsent_ += length;
    file_range_ = std::move(range);
    pump_file_range(); // waits for the header's write to complete first
}

void Connection::pump_file_range()
{
    // The range's header (and anything before it) must have left libuv's
    // write queue, or the file's bytes would overtake it.
    if (!file_range_ || pending_writes_ > 0 || handle_closing_) {
        return;
    }
    uv_os_fd_t socket_fd = -1;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &socket_fd) != 0) {
        force_close();
        return;
    }
    FileRange& range = *file_range_;
    std::size_t moved = 0;
    while (range.length > 0) {
        auto offset = static_cast<off_t>(range.offset);
        const ssize_t sent = ::sendfile(socket_fd, range.file->fd(), &offset, range.length);
        if (sent > 0) {
            range.offset += static_cast<std::uint64_t>(sent);
            range.length -= static_cast<std::size_t>(sent);
            unsent_ -= static_cast<std::size_t>(sent);
            written_ += static_cast<std::uint64_t>(sent);
            moved += static_cast<std::size_t>(sent);
            continue;
        }
        if (sent < 0 && errno == EINTR) {
            continue;
        }
        if (sent < 0 && errno == EAGAIN) {
            watch_writable();
            break;
        }
        if (sent < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            peer_gone();
            return;
        }
        // The file shrank under a frame whose size is already on the wire,
        // or could not be read: the frame cannot be finished, so neither
        // can the connection.
        const std::string reason =
            sent == 0 ? "the file shrank while it was being sent" : std::string("sendfile: ") + std::strerror(errno);
        log_event("close", {{"peer", peer_}, {"code", "io_error"}, {"message", reason}});
        force_close();
        return;
    }
    if (range.length == 0) {
        file_range_.reset();
        stop_watching_writable();
        flush_waiting();
    }
    if (moved > 0 && !close_requested_) {
        guarded([&] { session_.on_sent(); });
    }
    if (close_requested_ && pending_writes_ == 0 && !sending_file_range() && waiting_.empty() && !handle_closing_) {
        finish_close();
    }
}

void Connection::flush_waiting()
{
    while (!waiting_.empty() && !file_range_) {
        auto next = std::move(waiting_.front());
        waiting_.pop_front();
        if (auto* bytes = std::get_if<std::string>(&next)) {
            unsent_ -= bytes->size();
            write_raw(std::move(*bytes));
        } else {
            file_range_ = std::move(std::get<FileRange>(next)); // still counted in unsent_
        }
    }
}

void Connection::watch_writable()
{
    if (writable_poll_ == nullptr) {
        uv_os_fd_t socket_fd = -1;
        if (uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &socket_fd) != 0) {
            force_close();
            return;
        }
        writable_fd_ = ::fcntl(socket_fd, F_DUPFD_CLOEXEC, 0);
        if (writable_fd_ < 0) {
            log_event("close", {{"peer", peer_}, {"code", "internal"}, {"message", std::strerror(errno)}});
            force_close();
            return;
        }
        writable_poll_ = new uv_poll_t;
        writable_poll_->data = this;
        if (uv_poll_init(tcp_.loop, writable_poll_, writable_fd_) != 0) {
            delete writable_poll_;
            writable_poll_ = nullptr;
            ::close(writable_fd_);
            writable_fd_ = -1;
            force_close();
            return;
        }
    }
    if (!writable_watched_ && uv_poll_start(writable_poll_, UV_WRITABLE, on_writable) == 0) {
        writable_watched_ = true;
    }
}

void Connection::stop_watching_writable()
{
    if (writable_watched_) {
        uv_poll_stop(writable_poll_);
        writable_watched_ = false;
    }
}

void Connection::on_writable(uv_poll_t* poll, int, int)
{
    // An error shows again in sendfile's result, which says what to do.
    static_cast<Connection*>(poll->data)->pump_file_range();
}

void Connection::release_writable_watch()
{
    if (writable_poll_ == nullptr) {
        return;
    }
    writable_watched_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(writable_poll_), [](uv_handle_t* handle) {
        auto* self = static_cast<Connection*>(handle->data);
        delete reinterpret_cast<uv_poll_t*>(handle);
        ::close(self->writable_fd_);
        self->writable_fd_ = -1;
        self->writable_poll_ = nullptr;
        self->free_if_done();
    });
}

void Connection::write_raw(std::string bytes)
{
    if (handle_closing_) {
        return;
    }
    // Behind a write in flight, bytes join one buffer instead of a write
    // request each: thousands of small replies to a peer that does not read
    // would otherwise cost a request (~250 bytes) apiece beyond their bytes,
    // memory that unsent_bytes() and so the reply high-water do not see.
    if (pending_writes_ > 0) {
        unsent_ += bytes.size();
        behind_.append(bytes);
        return;
    }
    start_write(std::move(bytes));
}

void Connection::start_write(std::string bytes)
{
    auto* write = new WriteRequest;
    write->bytes = std::move(bytes);
    write->connection = this;
    write->request.data = write;
    uv_buf_t buf = uv_buf_init(write->bytes.data(), static_cast<unsigned int>(write->bytes.size()));
    const int status = uv_write(&write->request, stream(), &buf, 1, on_write);
    if (status != 0) {
        delete write;
        peer_gone();
        return;
    }
    unsent_ += buf.len;
    written_ += buf.len;
    ++pending_writes_;
}

void Connection::on_write(uv_write_t* request, int status)
{
    auto* write = static_cast<WriteRequest*>(request->data);
    Connection* self = write->connection;
    self->unsent_ -= write->bytes.size();
    --self->pending_writes_;
    delete write;
    if (status >= 0 && self->pending_writes_ == 0 && !self->behind_.empty() && !self->handle_closing_) {
        std::string next;
        next.swap(self->behind_);
        self->unsent_ -= next.size(); // start_write counts it again
        self->start_write(std::move(next));
    }
    if (status < 0) {
        if (!self->handle_closing_) {
            self->peer_gone();
        }
    } else {
        if (!self->close_requested_) {
            self->guarded([&] { self->session_.on_sent(); });
        }
        if (self->sending_file_range()) {
            self->pump_file_range(); // it finishes a requested close itself
            return;
        }
    }
    if (self->close_requested_ && self->pending_writes_ == 0 && !self->sending_file_range() && self->waiting_.empty()) {
        self->finish_close();
    }
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
    if (self->handle_closing_) {
        self->free_if_done();
    }
}

void Connection::pause_reading()
{
    if (reading_) {
        uv_read_stop(stream());
        reading_ = false;
    }
}

void Connection::resume_reading()
{
    if (!reading_ && !peer_closed_ && !close_requested_ && !handle_closing_) {
        if (uv_read_start(stream(), on_alloc, on_read) == 0) {
            reading_ = true;
        }
    }
}

void Connection::close()
{
    if (!close_requested_) {
        close_requested_at_ = now_ms();
    }
    close_requested_ = true;
    pause_reading();
    if (pending_writes_ == 0 && !sending_file_range() && waiting_.empty()) {
        finish_close();
    }
}

// Closing a socket whose peer is still sending makes the kernel answer with
// a reset, which can destroy our last reply (say, no_space) before the peer
// reads it. So the server half-closes, drops what still arrives, and closes
// once the peer does, or when the linger time of the sweep runs out.
void Connection::finish_close()
{
    if (peer_closed_ || handle_closing_ || lingering_) {
        if (!lingering_) {
            close_handle();
        }
        return;
    }
    if (tls_) {
        std::string cipher;
        tls_->close_notify(cipher);
        if (!cipher.empty()) {
            write_raw(std::move(cipher));
        }
    }
    lingering_ = true;
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
    if (uv_read_start(stream(), on_alloc, on_read) == 0) {
        reading_ = true;
    }
}

void Connection::force_close()
{
    close_requested_ = true;
    close_handle();
}

void Connection::discard()
{
    close_requested_ = true;
    close_handle();
}

void Connection::close_handle()
{
    if (handle_closing_) {
        return;
    }
    handle_closing_ = true;
    reading_ = false;
    file_range_.reset();
    waiting_.clear();
    std::string().swap(behind_);
    release_writable_watch();
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
}

void Connection::on_close(uv_handle_t* handle)
{
    auto* self = static_cast<Connection*>(handle->data);
    self->handle_closed_ = true;
    self->free_if_done();
}

// The object outlives both its handle and any job that holds a pointer to it.
void Connection::free_if_done()
{
    if (handle_closed_ && !job_running_ && writable_poll_ == nullptr) {
        server_.forget(this);
        delete this;
    }
}

} // namespace ferry::server
