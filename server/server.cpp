#include "server.hpp"

#include "connection.hpp"
#include "log.hpp"
#include "partial_upload.hpp"

#include <malloc.h>

#include <algorithm>
#include <vector>

namespace ferry::server {

namespace {

// Kept uploads are looked at twice per TTL, at most hourly, at least every second.
std::uint64_t cleanup_interval_ms(std::chrono::seconds ttl)
{
    const auto half = std::chrono::duration_cast<std::chrono::milliseconds>(ttl).count() / 2;
    return static_cast<std::uint64_t>(std::clamp<long long>(half, 1000, 60LL * 60 * 1000));
}

struct CleanupJob {
    uv_work_t request{};
    const Library* library = nullptr;
    std::chrono::seconds ttl{};
    std::size_t removed = 0;
};

} // namespace

Server::Server(uv_loop_t* loop, const Library& library, const Config& config)
    : loop_(loop), library_(library), config_(config)
{
}

Result<std::string> Server::start()
{
    auto address = parse_listen_address(config_.listen);
    if (!address) {
        return address.error();
    }
    uv_tcp_init(loop_, &listener_);
    listener_.data = this;
    const auto* socket_address = reinterpret_cast<const sockaddr*>(&address.value());
    int status = uv_tcp_bind(&listener_, socket_address, 0);
    if (status == 0) {
        status = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), SOMAXCONN, on_connection);
    }
    if (status != 0) {
        close_handle(reinterpret_cast<uv_handle_t*>(&listener_));
        return Error{ErrorCode::io_error, "cannot listen on " + config_.listen + ": " + uv_strerror(status)};
    }
    sockaddr_storage bound{};
    int length = sizeof bound;
    uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &length);

    uv_signal_init(loop_, &sigint_);
    uv_signal_init(loop_, &sigterm_);
    sigint_.data = sigterm_.data = this;
    uv_signal_start(&sigint_, on_signal, SIGINT);
    uv_signal_start(&sigterm_, on_signal, SIGTERM);
    uv_signal_init(loop_, &sighup_);
    uv_signal_start(&sighup_, on_sighup, SIGHUP);

    uv_timer_init(loop_, &cleanup_timer_);
    cleanup_timer_.data = this;
    const std::uint64_t cleanup_ms = cleanup_interval_ms(config_.partial_ttl);
    uv_timer_start(&cleanup_timer_, on_cleanup_timer, cleanup_ms, cleanup_ms);
    uv_timer_init(loop_, &drain_timer_);
    drain_timer_.data = this;

    // Timeouts are checked by one sweep over all connections rather than a
    // timer each: a few times per shortest timeout, at most once a second.
    const auto shortest = std::min(config_.idle_timeout, config_.stall_timeout).count();
    const auto sweep_ms = static_cast<std::uint64_t>(std::clamp<long long>(shortest / 4, 50, 1000));
    uv_timer_init(loop_, &sweep_timer_);
    sweep_timer_.data = this;
    uv_timer_start(&sweep_timer_, on_sweep_timer, sweep_ms, sweep_ms);
    return format_address(reinterpret_cast<const sockaddr*>(&bound));
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
    if (auto refused = self->check_limits(*connection)) {
        log_event("refused", {{"peer", connection->peer()}, {"code", to_string(refused->code)}});
        ++self->counters_.errors[std::string(to_string(refused->code))];
        connection->refuse(*refused);
        return;
    }
    log_event("connect", {{"peer", connection->peer()}});
    self->connections_.insert(connection);
    ++self->connections_per_address_[connection->address()];
    ++self->counters_.connections_total;
    self->counters_.connections_now = self->connections_.size();
    connection->serve();
}

// A refused connection costs one small write and a close: no read buffer,
// no session work.
std::optional<Error> Server::check_limits(const Connection& connection) const
{
    if (connections_.size() >= config_.max_connections) {
        return Error{ErrorCode::server_full,
                     "the server holds its maximum of " + std::to_string(config_.max_connections) + " connections"};
    }
    const auto counted = connections_per_address_.find(connection.address());
    if (counted != connections_per_address_.end() && counted->second >= config_.max_connections_per_address) {
        return Error{ErrorCode::address_limit, "your address holds its maximum of " +
                                                   std::to_string(config_.max_connections_per_address) +
                                                   " connections"};
    }
    return std::nullopt;
}

void Server::forget(Connection* connection)
{
    if (connections_.erase(connection) == 0) {
        return; // a refused connection was never counted
    }
    log_event("disconnect", {{"peer", connection->peer()}});
    counters_.connections_now = connections_.size();
    const auto counted = connections_per_address_.find(connection->address());
    if (counted != connections_per_address_.end() && --counted->second == 0) {
        connections_per_address_.erase(counted);
    }
    if (connections_.empty()) {
        // Transfers leave freed chunk buffers in malloc's arenas; when the
        // last client leaves, hand them back so an idle server stays small.
        ::malloc_trim(0);
        if (stopping_) {
            close_service_handles();
        }
    }
}

void Server::on_sweep_timer(uv_timer_t* timer)
{
    auto* self = static_cast<Server*>(timer->data);
    const std::uint64_t now = uv_now(self->loop_);
    // A check may close (but never free) connections, so iterate a copy.
    const std::vector<Connection*> live(self->connections_.begin(), self->connections_.end());
    for (Connection* connection : live) {
        connection->check_timeouts(now);
    }
}

void Server::close_service_handles()
{
    close_handle(reinterpret_cast<uv_handle_t*>(&sweep_timer_));
    close_handle(reinterpret_cast<uv_handle_t*>(&drain_timer_));
    close_handle(reinterpret_cast<uv_handle_t*>(&sigint_));
    close_handle(reinterpret_cast<uv_handle_t*>(&sigterm_));
    close_handle(reinterpret_cast<uv_handle_t*>(&sighup_));
}

void Server::on_signal(uv_signal_t* handle, int signal)
{
    auto* self = static_cast<Server*>(handle->data);
    const std::string name = signal == SIGINT ? "SIGINT" : "SIGTERM";
    if (self->stopping_) {
        // A second signal: the operator does not want to wait for the drain.
        log_event("stop", {{"signal", name}, {"message", "second signal: stopping now"}});
        on_drain_timer(&self->drain_timer_);
        return;
    }
    log_event("stop", {{"signal", name}, {"message", "draining running transfers"}});
    self->stop();
}

// Log rotation: the old file has been moved away; start a new one.
void Server::on_sighup(uv_signal_t*, int)
{
    reopen_log();
    log_event("log_reopened", {});
}

void Server::stop()
{
    if (stopping_) {
        return;
    }
    stopping_ = true;
    close_handle(reinterpret_cast<uv_handle_t*>(&listener_));
    close_handle(reinterpret_cast<uv_handle_t*>(&cleanup_timer_));
    // Sessions may finish (and forget themselves) while we iterate.
    const std::vector<Connection*> live(connections_.begin(), connections_.end());
    for (Connection* connection : live) {
        if (connections_.contains(connection)) {
            connection->shutdown();
        }
    }
    if (connections_.empty()) {
        close_service_handles();
    } else {
        log_event("draining", {{"connections", static_cast<std::uint64_t>(connections_.size())},
                               {"seconds", std::chrono::duration<double>(config_.drain_timeout).count()}});
        uv_timer_start(&drain_timer_, on_drain_timer, static_cast<std::uint64_t>(config_.drain_timeout.count()), 0);
    }
}

void Server::on_drain_timer(uv_timer_t* timer)
{
    auto* self = static_cast<Server*>(timer->data);
    log_event("drain_over", {{"connections", static_cast<std::uint64_t>(self->connections_.size())}});
    const std::vector<Connection*> live(self->connections_.begin(), self->connections_.end());
    for (Connection* connection : live) {
        connection->abandon();
    }
}

void Server::on_cleanup_timer(uv_timer_t* timer)
{
    auto* self = static_cast<Server*>(timer->data);
    auto* job = new CleanupJob;
    job->request.data = job;
    job->library = &self->library_;
    job->ttl = self->config_.partial_ttl;
    uv_queue_work(
        self->loop_, &job->request,
        [](uv_work_t* request) {
            auto* work = static_cast<CleanupJob*>(request->data);
            work->removed = remove_stale_partials(*work->library, work->ttl);
        },
        [](uv_work_t* request, int) {
            auto* work = static_cast<CleanupJob*>(request->data);
            if (work->removed > 0) {
                log_event("expired_uploads", {{"count", static_cast<std::uint64_t>(work->removed)}});
            }
            delete work;
        });
}

void Server::close_handle(uv_handle_t* handle)
{
    if (!uv_is_closing(handle)) {
        uv_close(handle, nullptr);
    }
}

} // namespace ferry::server
