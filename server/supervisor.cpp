#include "supervisor.hpp"

#include "address.hpp"
#include "log.hpp"
#include "partial_upload.hpp"

#include <algorithm>

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

void set_port(sockaddr_storage& address, const sockaddr_storage& bound)
{
    if (address.ss_family == AF_INET6) {
        reinterpret_cast<sockaddr_in6&>(address).sin6_port = reinterpret_cast<const sockaddr_in6&>(bound).sin6_port;
    } else {
        reinterpret_cast<sockaddr_in&>(address).sin_port = reinterpret_cast<const sockaddr_in&>(bound).sin_port;
    }
}

} // namespace

void close_every_handle(uv_loop_t* loop)
{
    uv_walk(
        loop,
        [](uv_handle_t* handle, void*) {
            if (!uv_is_closing(handle)) {
                uv_close(handle, nullptr);
            }
        },
        nullptr);
    uv_run(loop, UV_RUN_DEFAULT);
}

Supervisor::Supervisor(const Library& library, const Config& config, std::size_t workers)
    : library_(library), config_(config), loop_(uv_default_loop())
{
    for (std::size_t i = 0; i < std::max<std::size_t>(workers, 1); ++i) {
        auto worker = std::make_unique<Worker>();
        uv_loop_init(&worker->loop);
        worker->server = std::make_unique<Server>(&worker->loop, library_, config_, counters_);
        workers_.push_back(std::move(worker));
    }
}

Supervisor::~Supervisor()
{
    for (auto& worker : workers_) {
        if (worker->thread.joinable()) {
            worker->thread.join();
        }
    }
}

Result<std::string> Supervisor::start()
{
    auto address = parse_listen_address(config_.listen);
    if (!address) {
        return address.error();
    }
    // One port for all: the first worker binds (perhaps port 0, a free one),
    // the others join it. A lone worker does not share its port, so that a
    // second ferryd on the same port fails instead of splitting the clients.
    const bool share_port = workers_.size() > 1;
    std::string bound;
    for (auto& worker : workers_) {
        auto started = worker->server->start(address.value(), share_port);
        if (!started) {
            for (auto& opened : workers_) {
                close_every_handle(&opened->loop);
                uv_loop_close(&opened->loop);
            }
            workers_.clear();
            return started.error();
        }
        if (bound.empty()) {
            bound = started.value();
            auto actual = parse_listen_address(bound);
            if (actual) {
                set_port(address.value(), actual.value());
            }
        }
    }

    uv_signal_init(loop_, &sigint_);
    uv_signal_init(loop_, &sigterm_);
    uv_signal_init(loop_, &sighup_);
    sigint_.data = sigterm_.data = sighup_.data = this;
    uv_signal_start(&sigint_, on_signal, SIGINT);
    uv_signal_start(&sigterm_, on_signal, SIGTERM);
    uv_signal_start(&sighup_, on_sighup, SIGHUP);
    uv_timer_init(loop_, &cleanup_timer_);
    cleanup_timer_.data = this;
    const std::uint64_t cleanup_ms = cleanup_interval_ms(config_.partial_ttl);
    uv_timer_start(&cleanup_timer_, on_cleanup_timer, cleanup_ms, cleanup_ms);
    uv_async_init(loop_, &worker_finished_, on_worker_finished);
    worker_finished_.data = this;
    return bound;
}

void Supervisor::run()
{
    for (auto& worker : workers_) {
        Worker* running = worker.get();
        worker->thread = std::thread([this, running] {
            uv_run(&running->loop, UV_RUN_DEFAULT);
            close_every_handle(&running->loop);
            uv_loop_close(&running->loop);
            ++finished_;
            uv_async_send(&worker_finished_);
        });
    }
    uv_run(loop_, UV_RUN_DEFAULT);
    for (auto& worker : workers_) {
        worker->thread.join();
    }
    close_every_handle(loop_);
}

void Supervisor::on_worker_finished(uv_async_t* handle)
{
    auto* self = static_cast<Supervisor*>(handle->data);
    if (self->finished_ == self->workers_.size()) {
        self->close_handles();
    }
}

void Supervisor::close_handles()
{
    for (auto* handle : {reinterpret_cast<uv_handle_t*>(&sigint_), reinterpret_cast<uv_handle_t*>(&sigterm_),
                         reinterpret_cast<uv_handle_t*>(&sighup_), reinterpret_cast<uv_handle_t*>(&cleanup_timer_),
                         reinterpret_cast<uv_handle_t*>(&worker_finished_)}) {
        if (!uv_is_closing(handle)) {
            uv_close(handle, nullptr);
        }
    }
}

void Supervisor::on_signal(uv_signal_t* handle, int signal)
{
    auto* self = static_cast<Supervisor*>(handle->data);
    const std::string name = signal == SIGINT ? "SIGINT" : "SIGTERM";
    if (self->stopping_) {
        // A second signal: the operator does not want to wait for the drain.
        log_event("stop", {{"signal", name}, {"message", "second signal: stopping now"}});
        for (auto& worker : self->workers_) {
            worker->server->request_abandon();
        }
        return;
    }
    self->stopping_ = true;
    log_event("stop", {{"signal", name}, {"message", "draining running transfers"}});
    uv_timer_stop(&self->cleanup_timer_);
    for (auto& worker : self->workers_) {
        worker->server->request_stop();
    }
}

// Log rotation: the old file has been moved away; start a new one.
void Supervisor::on_sighup(uv_signal_t*, int)
{
    reopen_log();
    log_event("log_reopened", {});
}

void Supervisor::on_cleanup_timer(uv_timer_t* timer)
{
    auto* self = static_cast<Supervisor*>(timer->data);
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

} // namespace ferry::server
