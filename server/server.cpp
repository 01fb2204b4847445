#include "server.hpp"

#include "chunk_cache.hpp"
#include "connection.hpp"
#include "heap_trim.hpp"
#include "log.hpp"
#include "messages.hpp"
#include "posix_io.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <vector>

namespace ferry::server {

Server::Server(uv_loop_t* loop, const Library& library, const Config& config, Counters& counters)
    : loop_(loop), library_(library), config_(config), counters_(counters)
{
    // How a connection finds its server (Server::of): one pointer per loop
    // rather than one in each of thousands of connections.
    loop_->data = this;
}

// libuv 1.44 cannot set SO_REUSEPORT itself: the socket is made here and
// handed over with uv_tcp_open.
int bind_socket(const sockaddr_storage& address, bool share_port, bool v6_only)
{
    const int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (v6_only && address.ss_family == AF_INET6 && ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) != 0) {
        const int error = errno;
        ::close(fd);
        return -error;
    }
    if (share_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
        const int error = errno;
        ::close(fd);
        return -error;
    }
    const socklen_t length = address.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0) {
        const int error = errno;
        ::close(fd);
        return -error;
    }
    return fd;
}

namespace {

// Held only to be given up: when accept fails for want of a descriptor,
// closing this one lets the connection be accepted, told server_full and
// closed, instead of waiting unanswered in the backlog (or, as libuv does,
// being closed without a word). A directory: nothing can block opening it.
int open_reserve_descriptor()
{
    return ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

} // namespace

Result<std::string> Server::start(const sockaddr_storage& address, bool share_port, bool v6_only)
{
    const std::string wanted = format_address(reinterpret_cast<const sockaddr*>(&address));
    const int fd = bind_socket(address, share_port, v6_only);
    int status = fd;
    if (fd >= 0) {
        status = ::listen(fd, SOMAXCONN) == 0 ? 0 : uv_translate_sys_error(errno);
        if (status == 0) {
            status = uv_poll_init(loop_, &listener_, fd);
        }
        if (status != 0) {
            ::close(fd);
        }
    }
    if (status != 0) {
        return Error{ErrorCode::io_error, "cannot listen on " + wanted + ": " + uv_strerror(status)};
    }
    return serve(fd);
}

Result<std::string> Server::adopt(int fd)
{
    const int status = uv_poll_init(loop_, &listener_, fd);
    if (status != 0) {
        ::close(fd);
        return Error{ErrorCode::io_error, std::string("cannot poll a passed listening socket: ") + uv_strerror(status)};
    }
    return serve(fd);
}

Result<std::string> Server::serve(int fd)
{
    listen_fd_ = fd;
    listener_.data = this;
    // libuv opens a reserve descriptor of its own with a loop's first stream;
    // take it now, so that the count of descriptors is flat from the start.
    uv_tcp_init(loop_, &first_stream_);
    uv_poll_start(&listener_, UV_READABLE, on_listen_readable);
    reserve_fd_ = open_reserve_descriptor();
    sockaddr_storage bound{};
    socklen_t length = sizeof bound;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);

    uv_async_init(loop_, &commands_, on_command);
    commands_.data = this;
    commands_open_ = true;
    uv_timer_init(loop_, &drain_timer_);
    drain_timer_.data = this;

    // Timeouts are checked by one sweep over all connections rather than a
    // timer each: a few times per shortest timeout, at most once a second.
    // The handshake timeout bounds the TLS handshake and, on every
    // connection, the wait for hello.
    const auto shortest = std::min({config_.idle_timeout, config_.stall_timeout, config_.handshake_timeout}).count();
    sweep_ms_ = static_cast<std::uint64_t>(std::clamp<long long>(shortest / 4, 50, 1000));
    uv_timer_init(loop_, &sweep_timer_);
    sweep_timer_.data = this;
    uv_update_time(loop_);
    last_sweep_ms_ = uv_now(loop_);
    uv_timer_start(&sweep_timer_, on_sweep_timer, sweep_ms_, sweep_ms_);
    return format_address(reinterpret_cast<const sockaddr*>(&bound));
}

void Server::request_stop()
{
    const std::lock_guard lock(commands_mutex_);
    stop_requested_ = true;
    if (commands_open_) {
        uv_async_send(&commands_);
    }
}

void Server::request_abandon()
{
    const std::lock_guard lock(commands_mutex_);
    abandon_requested_ = true;
    if (commands_open_) {
        uv_async_send(&commands_);
    }
}

void Server::on_command(uv_async_t* handle)
{
    auto* self = static_cast<Server*>(handle->data);
    if (self->stop_requested_) {
        self->stop();
    }
    if (self->abandon_requested_) {
        self->abandon();
    }
}

// Accepts what the backlog holds, a bounded number per wake-up so that one
// busy listener cannot starve the connections already served on this loop.
void Server::on_listen_readable(uv_poll_t* handle, int status, int)
{
    auto* self = static_cast<Server*>(handle->data);
    if (status < 0) {
        log_event("accept_failed", {{"message", uv_strerror(status)}});
        return;
    }
    for (int accepted = 0; accepted < 64 && !self->stopping_; ++accepted) {
        const int fd = sys::retry_on_eintr(
            [&] { return ::accept4(self->listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC); });
        if (fd >= 0) {
            self->on_connection(fd);
            continue;
        }
        if (errno == ECONNABORTED) {
            continue;
        }
        if (errno == EMFILE || errno == ENFILE) {
            if (!self->refuse_for_want_of_descriptors(errno)) {
                return;
            }
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            log_event("accept_failed", {{"message", uv_strerror(uv_translate_sys_error(errno))}});
        }
        return;
    }
}

// Out of descriptors: one connection is accepted with the reserve
// descriptor, told server_full and closed, counted, and logged at most once
// a second (with how many were refused since). False if none could be.
bool Server::refuse_for_want_of_descriptors(int error)
{
    if (reserve_fd_ >= 0) {
        ::close(reserve_fd_);
        reserve_fd_ = -1;
    }
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        // Nothing waiting, or still no descriptor (another thread took the
        // one freed): try again on the next wake-up.
        reserve_fd_ = open_reserve_descriptor();
        return false;
    }
    const std::string frame = encode_control_frame(
        encode_error(std::nullopt, Error{ErrorCode::server_full, std::string("the server is out of file descriptors (") +
                                                                     std::strerror(error) + "); try again later"}));
    // Counted before it is sent: a client that reads the refusal and asks
    // for stats through another worker finds it counted (PROTOCOL.md 4.8).
    counters_.count_error(to_string(ErrorCode::server_full));
    // A new socket's send buffer takes this small frame whole; if not, the
    // peer just sees the close.
    [[maybe_unused]] const ssize_t sent = ::send(fd, frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    ::close(fd);
    reserve_fd_ = open_reserve_descriptor();
    ++refused_no_descriptor_;
    refused_no_descriptor_errno_ = error;
    log_descriptor_refusals(false);
    return true;
}

// The refusals for want of descriptors since the last such line, at most
// one line a second; the sweep and the stop say what is left (`final`), so
// that a count is never lost when the refusals stop.
void Server::log_descriptor_refusals(bool final)
{
    if (refused_no_descriptor_ == 0) {
        return;
    }
    const std::uint64_t now = uv_now(loop_);
    if (final || refused_no_descriptor_logged_at_ == 0 || now - refused_no_descriptor_logged_at_ >= 1000) {
        log_event("refused", {{"code", to_string(ErrorCode::server_full)},
                              {"message", std::string("out of file descriptors: ") +
                                              std::strerror(refused_no_descriptor_errno_)},
                              {"count", refused_no_descriptor_}});
        refused_no_descriptor_logged_at_ = now == 0 ? 1 : now;
        refused_no_descriptor_ = 0;
    }
}

void Server::on_connection(int fd)
{
    auto* connection = new Connection(*this);
    if (uv_tcp_open(reinterpret_cast<uv_tcp_t*>(connection->stream()), fd) != 0) {
        ::close(fd);
        connection->discard();
        return;
    }
    connection->start();
    // A refused connection costs one small write and a close: no read
    // buffer, no session work.
    if (auto refused = counters_.admit(connection->address(), config_)) {
        log_event("refused", {{"peer", connection->peer()}, {"code", to_string(refused->code)}});
        counters_.count_error(to_string(refused->code));
        connection->listed_ = Connection::Listed::refused;
        refused_.add(connection);
        connection->refuse(*refused);
        return;
    }
    log_event("connect", {{"peer", connection->peer()}});
    connection->listed_ = Connection::Listed::serving;
    connections_.add(connection);
    connection->serve();
}

void Server::ConnectionList::add(Connection* connection)
{
    connection->prev_ = nullptr;
    connection->next_ = head_;
    if (head_ != nullptr) {
        head_->prev_ = connection;
    }
    head_ = connection;
    ++size_;
}

void Server::ConnectionList::remove(Connection* connection)
{
    if (connection->prev_ != nullptr) {
        connection->prev_->next_ = connection->next_;
    } else {
        head_ = connection->next_;
    }
    if (connection->next_ != nullptr) {
        connection->next_->prev_ = connection->prev_;
    }
    connection->prev_ = nullptr;
    connection->next_ = nullptr;
    --size_;
}

template <typename Visit>
void Server::ConnectionList::for_each(Visit&& visit) const
{
    // Connections are freed only from their close callbacks, never inside
    // a visit; the next one is taken first in case the visit removes this.
    for (Connection* connection = head_; connection != nullptr;) {
        Connection* next = connection->next_;
        visit(connection);
        connection = next;
    }
}

void Server::forget(Connection* connection)
{
    const auto listed = connection->listed_;
    connection->listed_ = Connection::Listed::none;
    if (listed == Connection::Listed::serving) {
        connections_.remove(connection);
    } else {
        // A refused connection was never counted.
        if (listed == Connection::Listed::refused) {
            refused_.remove(connection);
        }
        if (stopping_ && connections_.empty() && refused_.empty()) {
            close_service_handles();
        }
        return;
    }
    log_event("disconnect", {{"peer", connection->peer()}});
    counters_.release(connection->address());
    if (connections_.empty()) {
        // Transfers leave freed chunk buffers in malloc's arenas; when the
        // last client leaves, hand them back so an idle server stays small.
        ChunkCache::of_this_thread().release();
        if (counters_.connections_now == 0) {
            trim_heap(); // the last client of every worker has left
        }
        if (stopping_ && refused_.empty()) {
            close_service_handles();
        }
    }
}

void Server::on_sweep_timer(uv_timer_t* timer)
{
    auto* self = static_cast<Server*>(timer->data);
    const std::uint64_t now = uv_now(self->loop_);
    // The one place that notices the server's own pauses: whatever the gap
    // between two sweeps holds beyond one period, the server was not
    // watching, so no timeout counts it (a peer that was fine before the
    // pause keeps the time it had left).
    const std::uint64_t gap = now - self->last_sweep_ms_;
    const std::uint64_t unwatched = gap > self->sweep_ms_ ? gap - self->sweep_ms_ : 0;
    self->last_sweep_ms_ = now;
    if (unwatched >= 1000) {
        log_event("resumed", {{"seconds_not_running", static_cast<double>(unwatched) / 1000.0},
                              {"connections", static_cast<std::uint64_t>(self->connections_.size())}});
    }
    // A check may close (but never free) connections.
    const auto check = [&](Connection* connection) { connection->check_timeouts(now, unwatched); };
    self->connections_.for_each(check);
    self->refused_.for_each(check);
    // Staging chunks kept for the next uploads go once uploads stop.
    ChunkCache::of_this_thread().release_if_unused();
    self->log_descriptor_refusals(false);
    log_unlogged_lines();
}

void Server::close_service_handles()
{
    close_handle(reinterpret_cast<uv_handle_t*>(&sweep_timer_));
    close_handle(reinterpret_cast<uv_handle_t*>(&drain_timer_));
    const std::lock_guard lock(commands_mutex_);
    commands_open_ = false;
    close_handle(reinterpret_cast<uv_handle_t*>(&commands_));
}

void Server::stop()
{
    if (stopping_) {
        return;
    }
    stopping_ = true;
    log_descriptor_refusals(true);
    // Closing the poll handle stops the polling at once, so the socket may go.
    close_handle(reinterpret_cast<uv_handle_t*>(&listener_));
    close_handle(reinterpret_cast<uv_handle_t*>(&first_stream_));
    ::close(listen_fd_);
    listen_fd_ = -1;
    if (reserve_fd_ >= 0) {
        ::close(reserve_fd_);
        reserve_fd_ = -1;
    }
    refused_.for_each([](Connection* connection) { connection->force_close(); });
    // Sessions may finish while we iterate; they are freed only later.
    connections_.for_each([](Connection* connection) { connection->shutdown(); });
    if (connections_.empty()) {
        if (refused_.empty()) {
            close_service_handles();
        }
    } else {
        log_event("draining", {{"connections", static_cast<std::uint64_t>(connections_.size())},
                               {"seconds", std::chrono::duration<double>(config_.drain_timeout).count()}});
        uv_timer_start(&drain_timer_, on_drain_timer, static_cast<std::uint64_t>(config_.drain_timeout.count()), 0);
    }
}

void Server::on_drain_timer(uv_timer_t* timer)
{
    static_cast<Server*>(timer->data)->abandon();
}

void Server::abandon()
{
    if (connections_.empty()) {
        return;
    }
    log_event("drain_over", {{"connections", static_cast<std::uint64_t>(connections_.size())}});
    connections_.for_each([](Connection* connection) { connection->abandon(); });
}

void Server::close_handle(uv_handle_t* handle)
{
    if (!uv_is_closing(handle)) {
        uv_close(handle, nullptr);
    }
}

} // namespace ferry::server
