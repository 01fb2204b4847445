// The main thread of ferryd: it starts the worker loops (each a Server on
// its own thread, each on one of the listening addresses), owns the signals and the
// periodic removal of stale uploads, and returns once every worker has
// drained. SIGINT/SIGTERM stop the workers gracefully, a second one cuts
// the drain short, SIGHUP reopens the log file.
#pragma once

#include "config.hpp"
#include "counters.hpp"
#include "library.hpp"
#include "server.hpp"

#include <uv.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace ferry::server {

class Supervisor {
public:
    Supervisor(const Library& library, const Config& config, std::size_t workers);
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;
    ~Supervisor();

    // Binds every worker's listener to one of Config::listen's addresses,
    // worker i to address i % count (port 0: one free port for all the
    // workers of that address); returns the bound addresses, comma-separated,
    // in Config::listen's order. With `passed` (the
    // sockets of socket activation, at most one per worker) nothing is
    // bound: worker i serves passed[i % passed.size()], so every socket has
    // a worker, and workers that share a socket share its one accept queue
    // (see ferryd(8)). Returns the addresses, comma-separated.
    Result<std::string> start(const std::vector<int>& passed = {});
    // Runs the workers and the signal loop until every worker has stopped;
    // tells the service manager (if any) READY=1 once they run, their
    // connections and transfers as they change, and STOPPING=1 at a stop.
    void run();

private:
    struct Worker {
        uv_loop_t loop{};
        std::unique_ptr<Server> server;
        std::thread thread;
    };

    Result<std::string> bind_workers();
    Result<std::string> adopt_passed(const std::vector<int>& passed);
    void install_handles();
    static void on_signal(uv_signal_t* handle, int signal);
    static void on_sighup(uv_signal_t* handle, int signal);
    static void on_cleanup_timer(uv_timer_t* timer);
    static void on_status_timer(uv_timer_t* timer);
    // "STATUS=Serving 3 connections, 1 transfer" for the service manager.
    std::string status_line() const;
    static void on_worker_finished(uv_async_t* handle);
    void close_handles();

    const Library& library_;
    const Config& config_;
    Counters counters_;
    uv_loop_t* loop_;
    std::vector<std::unique_ptr<Worker>> workers_;
    uv_signal_t sigint_{};
    uv_signal_t sigterm_{};
    uv_signal_t sighup_{};
    uv_timer_t cleanup_timer_{};
    // Polls the counters for STATUS= (only under a service manager): at
    // most one notification a second, and none while nothing changes.
    uv_timer_t status_timer_{};
    std::string last_status_;
    uv_async_t worker_finished_{};
    std::atomic<std::size_t> finished_{0};
    bool stopping_ = false;
};

// Closes whatever handles are left on a loop that has stopped, and runs
// their close callbacks, so that uv_loop_close succeeds.
void close_every_handle(uv_loop_t* loop);

} // namespace ferry::server
