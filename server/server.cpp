#include "server.hpp"

#include "connection.hpp"
#include "log.hpp"

#include <malloc.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <vector>

namespace ferry::server {

Server::Server(uv_loop_t* loop, const Library& library, const Config& config, Counters& counters)
    : loop_(loop), library_(library), config_(config), counters_(counters)
{
}

namespace {

// libuv 1.44 cannot set SO_REUSEPORT itself: the socket is made here and
// handed over with uv_tcp_open.
int open_listening_socket(const sockaddr_storage& address, bool share_port)
{
    const int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
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

} // namespace

Result<std::string> Server::start(const sockaddr_storage& address, bool share_port)
{
    const std::string wanted = format_address(reinterpret_cast<const sockaddr*>(&address));
    uv_tcp_init(loop_, &listener_);
    listener_.data = this;
    const int fd = open_listening_socket(address, share_port);
    int status = fd < 0 ? fd : uv_tcp_open(&listener_, fd);
    if (status == 0) {
        status = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), SOMAXCONN, on_connection);
    }
    if (status != 0) {
        close_handle(reinterpret_cast<uv_handle_t*>(&listener_));
        return Error{ErrorCode::io_error, "cannot listen on " + wanted + ": " + uv_strerror(status)};
    }
    sockaddr_storage bound{};
    int length = sizeof bound;
    uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &length);

    uv_async_init(loop_, &commands_, on_command);
    commands_.data = this;
    commands_open_ = true;
    uv_timer_init(loop_, &drain_timer_);
    drain_timer_.data = this;

    // Timeouts are checked by one sweep over all connections rather than a
    // timer each: a few times per shortest timeout, at most once a second.
    auto shortest = std::min(config_.idle_timeout, config_.stall_timeout).count();
    if (config_.tls) {
        shortest = std::min(shortest, config_.handshake_timeout.count());
    }
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

void Server::on_connection(uv_stream_t* listener, int status)
{
    auto* self = static_cast<Server*>(listener->data);
    if (status < 0) {
        log_event("accept_failed", {{"message", uv_strerror(status)}});
        return;
    }
    auto* connection = new Connection(*self, self->loop_);
    if (uv_accept(listener, connection->stream()) != 0) {
        connection->discard();
        return;
    }
    connection->start();
    // A refused connection costs one small write and a close: no read
    // buffer, no session work.
    if (auto refused = self->counters_.admit(connection->address(), self->config_)) {
        log_event("refused", {{"peer", connection->peer()}, {"code", to_string(refused->code)}});
        self->counters_.count_error(to_string(refused->code));
        self->refused_.insert(connection);
        connection->refuse(*refused);
        return;
    }
    log_event("connect", {{"peer", connection->peer()}});
    self->connections_.insert(connection);
    connection->serve();
}

void Server::forget(Connection* connection)
{
    if (connections_.erase(connection) == 0) {
        // A refused connection was never counted.
        refused_.erase(connection);
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
        if (counters_.connections_now == 0) {
            ::malloc_trim(0);
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
    // A check may close (but never free) connections, so iterate a copy.
    std::vector<Connection*> live(self->connections_.begin(), self->connections_.end());
    live.insert(live.end(), self->refused_.begin(), self->refused_.end());
    for (Connection* connection : live) {
        connection->check_timeouts(now, unwatched);
    }
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
    close_handle(reinterpret_cast<uv_handle_t*>(&listener_));
    const std::vector<Connection*> refused(refused_.begin(), refused_.end());
    for (Connection* connection : refused) {
        connection->force_close();
    }
    // Sessions may finish (and forget themselves) while we iterate.
    const std::vector<Connection*> live(connections_.begin(), connections_.end());
    for (Connection* connection : live) {
        if (connections_.contains(connection)) {
            connection->shutdown();
        }
    }
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
    const std::vector<Connection*> live(connections_.begin(), connections_.end());
    for (Connection* connection : live) {
        connection->abandon();
    }
}

void Server::close_handle(uv_handle_t* handle)
{
    if (!uv_is_closing(handle)) {
        uv_close(handle, nullptr);
    }
}

} // namespace ferry::server
