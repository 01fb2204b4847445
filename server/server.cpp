#include "server.hpp"

#include "connection.hpp"
#include "log.hpp"
#include "partial_upload.hpp"

#include <vector>

namespace ferry::server {

namespace {

// How long stopping waits for sessions to flush their last bytes before
// sockets are closed regardless.
constexpr std::uint64_t kDrainMilliseconds = 5000;
constexpr std::uint64_t kCleanupMilliseconds = 60 * 60 * 1000;

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

    uv_timer_init(loop_, &cleanup_timer_);
    cleanup_timer_.data = this;
    uv_timer_start(&cleanup_timer_, on_cleanup_timer, kCleanupMilliseconds, kCleanupMilliseconds);
    uv_timer_init(loop_, &drain_timer_);
    drain_timer_.data = this;
    return format_address(reinterpret_cast<const sockaddr*>(&bound));
}

void Server::on_connection(uv_stream_t* listener, int status)
{
    auto* self = static_cast<Server*>(listener->data);
    if (status < 0) {
        log_line(std::string("accept failed: ") + uv_strerror(status));
        return;
    }
    auto* connection = new Connection(*self, self->loop_);
    if (uv_accept(listener, connection->stream()) != 0) {
        connection->discard();
        return;
    }
    self->connections_.insert(connection);
    connection->start();
}

void Server::on_signal(uv_signal_t* handle, int signal)
{
    auto* self = static_cast<Server*>(handle->data);
    log_line(std::string("received ") + (signal == SIGINT ? "SIGINT" : "SIGTERM") + ", stopping");
    self->stop();
}

void Server::stop()
{
    if (stopping_) {
        return;
    }
    stopping_ = true;
    close_handle(reinterpret_cast<uv_handle_t*>(&listener_));
    close_handle(reinterpret_cast<uv_handle_t*>(&sigint_));
    close_handle(reinterpret_cast<uv_handle_t*>(&sigterm_));
    close_handle(reinterpret_cast<uv_handle_t*>(&cleanup_timer_));
    // Sessions may finish (and forget themselves) while we iterate.
    const std::vector<Connection*> live(connections_.begin(), connections_.end());
    for (Connection* connection : live) {
        if (connections_.contains(connection)) {
            connection->shutdown();
        }
    }
    if (connections_.empty()) {
        close_handle(reinterpret_cast<uv_handle_t*>(&drain_timer_));
    } else {
        uv_timer_start(&drain_timer_, on_drain_timer, kDrainMilliseconds, 0);
        uv_unref(reinterpret_cast<uv_handle_t*>(&drain_timer_));
    }
}

void Server::on_drain_timer(uv_timer_t* timer)
{
    auto* self = static_cast<Server*>(timer->data);
    const std::vector<Connection*> live(self->connections_.begin(), self->connections_.end());
    for (Connection* connection : live) {
        if (self->connections_.contains(connection)) {
            connection->force_close();
        }
    }
    self->close_handle(reinterpret_cast<uv_handle_t*>(timer));
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
                log_line("removed " + std::to_string(work->removed) + " stale interrupted upload(s)");
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
