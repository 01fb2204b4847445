#include "supervisor.hpp"

#include "address.hpp"
#include "log.hpp"
#include "partial_upload.hpp"
#include "path_resolver.hpp"
#include "systemd.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ferry::server {

namespace {

// Kept uploads are looked at twice per TTL, at most hourly, at least every second.
std::uint64_t cleanup_interval_ms(std::chrono::seconds ttl)
{
    // Halved in seconds, clamped, and only then in milliseconds: a TTL of
    // centuries (--partial-ttl saturates at the largest count of seconds)
    // would overflow as milliseconds and sweep every second.
    const auto half_seconds = std::clamp<std::int64_t>(ttl.count() / 2, 1, 60 * 60);
    return static_cast<std::uint64_t>(half_seconds) * 1000;
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

// Binds a socket without SO_REUSEPORT on `address`, which fails if any
// socket holds the port, and returns it, to be held while the other
// addresses are claimed; sets the port of `address` to the one bound (port
// 0: a free one). `v6_only` as Server::start's.
Result<UniqueFd> claim_port(sockaddr_storage& address, bool v6_only)
{
    const auto failed = [&](int error) {
        // ipv6(7): an IPV6_V6ONLY socket takes no IPv4-mapped address.
        const bool mapped = v6_only && address.ss_family == AF_INET6 &&
                            IN6_IS_ADDR_V4MAPPED(&reinterpret_cast<const sockaddr_in6&>(address).sin6_addr);
        return Error{ErrorCode::io_error, "cannot listen on " +
                                              format_address(reinterpret_cast<const sockaddr*>(&address)) + ": " +
                                              uv_strerror(uv_translate_sys_error(error)) +
                                              (mapped ? " (beside other addresses an IPv6 address serves IPv6 "
                                                        "only: give this one in its IPv4 form)"
                                                      : "")};
    };
    const int bound_fd = bind_socket(address, /*share_port=*/false, v6_only);
    if (bound_fd < 0) {
        return failed(-bound_fd);
    }
    UniqueFd fd(bound_fd);
    sockaddr_storage bound{};
    socklen_t bound_length = sizeof bound;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_length) != 0) {
        return failed(errno);
    }
    set_port(address, bound);
    return fd;
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

Result<std::string> Supervisor::start(const std::vector<int>& passed)
{
    auto bound = passed.empty() ? bind_workers() : adopt_passed(passed);
    if (!bound) {
        for (auto& opened : workers_) {
            close_every_handle(&opened->loop);
            uv_loop_close(&opened->loop);
        }
        workers_.clear();
        return bound;
    }
    install_handles();
    return bound;
}

// Worker i listens on address i % count (main.cpp makes at least one worker
// per address), so the workers spread evenly over the addresses.
Result<std::string> Supervisor::bind_workers()
{
    const std::size_t count = config_.listen.size();
    // With several addresses an IPv6 one serves IPv6 alone, as nginx's
    // ipv6only=on, so that 0.0.0.0:7021 and [::]:7021 may be given
    // together; alone, [::]:7021 also takes IPv4 where the system lets it
    // (net.ipv6.bindv6only), as it always did.
    const bool v6_only = count > 1;
    // Every port is first proven free by a socket that does not share it,
    // all of them held at once: if anything holds a port (an address
    // listed twice included), its bind fails with "address already in use"
    // before any address listens, so no client is let in and then cut off
    // by the failure of a later address. It also picks the port for port 0.
    // The workers' sockets then set SO_REUSEPORT so the kernel spreads an
    // address's connections over them; SO_REUSEPORT would just as well let
    // a second ferryd (same user) join the port and take part of the
    // clients, which the first bind rules out. (A lone worker does not
    // share its port at all.)
    std::vector<sockaddr_storage> addresses;
    {
        std::vector<UniqueFd> claimed;
        for (const std::string& text : config_.listen) {
            auto address = parse_listen_address(text);
            if (!address) {
                return address.error();
            }
            auto held = claim_port(address.value(), v6_only);
            if (!held) {
                return held.error();
            }
            claimed.push_back(std::move(held.value()));
            addresses.push_back(address.value());
        }
    }
    std::string bound;
    for (std::size_t index = 0; index < count; ++index) {
        // The address's workers are index, index + count, ...: it shares
        // its port when there is a second.
        const bool share_port = index + count < workers_.size();
        std::string bound_here;
        for (std::size_t i = index; i < workers_.size(); i += count) {
            auto started = workers_[i]->server->start(addresses[index], share_port, v6_only);
            if (!started) {
                return started.error();
            }
            if (bound_here.empty()) {
                bound_here = started.value();
            }
        }
        bound += (bound.empty() ? "" : ",") + bound_here;
    }
    return bound;
}

// Several descriptors of one socket (dup) share its one accept queue: each
// worker polls its own descriptor and accepts (non-blocking) until the
// queue is empty, so a connection goes to whichever worker wakes first and
// a busy worker, slower to wake, takes fewer. Binding more sockets with
// SO_REUSEPORT next to systemd's instead would spread the load by hash, but
// those sockets would close with ferryd and drop the connections queued on
// them, where systemd's socket keeps them for the next start.
Result<std::string> Supervisor::adopt_passed(const std::vector<int>& passed)
{
    std::string bound;
    for (std::size_t i = 0; i < workers_.size(); ++i) {
        const int socket = passed[i % passed.size()];
        const int fd = i < passed.size() ? socket : ::fcntl(socket, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) {
            return Error{ErrorCode::io_error,
                         std::string("cannot share a socket systemd passed: ") + std::strerror(errno)};
        }
        auto adopted = workers_[i]->server->adopt(fd);
        if (!adopted) {
            // The rest were never handed over to a worker.
            for (std::size_t j = i + 1; j < passed.size(); ++j) {
                ::close(passed[j]);
            }
            return adopted.error();
        }
        if (i < passed.size()) {
            bound += (bound.empty() ? "" : ",") + adopted.value();
        }
    }
    return bound;
}

void Supervisor::install_handles()
{
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
    if (!config_.read_only) {
        // A read-only ferryd expires and settles nothing (see main.cpp).
        uv_timer_start(&cleanup_timer_, on_cleanup_timer, cleanup_ms, cleanup_ms);
    }
    uv_async_init(loop_, &worker_finished_, on_worker_finished);
    worker_finished_.data = this;
    uv_timer_init(loop_, &status_timer_);
    status_timer_.data = this;
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
    // Every worker's socket listens since start(): a connection made from
    // now on waits in its backlog until the worker's loop, starting now,
    // takes it. So systemd may order clients after us.
    if (systemd::notify_wanted()) {
        last_status_ = status_line();
        systemd::notify("READY=1\n" + last_status_);
        uv_timer_start(&status_timer_, on_status_timer, 1000, 1000);
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
                         reinterpret_cast<uv_handle_t*>(&status_timer_),
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
    if (systemd::notify_wanted()) {
        self->last_status_ = self->status_line();
        systemd::notify("STOPPING=1\n" + self->last_status_);
    }
    uv_timer_stop(&self->cleanup_timer_);
    for (auto& worker : self->workers_) {
        worker->server->request_stop();
    }
}

// Log rotation: the old file has been moved away; start a new one. Like
// sshd and nginx, also re-read the token file: connections already
// admitted keep running, a bad new file leaves the old tokens in force.
void Supervisor::on_sighup(uv_signal_t* handle, int)
{
    auto* self = static_cast<Supervisor*>(handle->data);
    if (auto failed = reopen_log()) {
        log_event("log_reopen_failed", {{"message", *failed}});
    } else if (!log_is_stderr()) {
        log_event("log_reopened", {}); // said only where there is a file to reopen (round 76, F10)
    }
    if (!self->config_.tokens) {
        return;
    }
    auto reloaded = self->config_.tokens->reload();
    if (!reloaded) {
        log_event("tokens_kept", {{"code", to_string(reloaded.error().code)},
                                  {"message", reloaded.error().message + "; the tokens read before stay in force"}});
        return;
    }
    for (const auto& warning : reloaded.value()->warnings()) {
        log_event("warning", {{"message", warning}});
    }
    log_event("tokens_reloaded", {{"path", self->config_.tokens->path()},
                                  {"tokens", static_cast<std::uint64_t>(reloaded.value()->size())}});
}

std::string Supervisor::status_line() const
{
    const auto count = [](std::size_t n, const char* what) {
        return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
    };
    return std::string("STATUS=") + (stopping_ ? "Draining: " : "Serving ") +
           count(counters_.connections_now.load(), "connection") + ", " +
           count(counters_.active_transfers.load(), "transfer");
}

void Supervisor::on_status_timer(uv_timer_t* timer)
{
    auto* self = static_cast<Supervisor*>(timer->data);
    std::string status = self->status_line();
    if (status != self->last_status_) {
        systemd::notify(status);
        self->last_status_ = std::move(status);
    }
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
