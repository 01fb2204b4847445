// The listener, the signal handlers and the set of live connections on one
// libuv loop. Stopping is graceful: no new connections, every session told
// to finish (uploads made resumable), then the loop runs dry and returns.
#pragma once

#include "address.hpp"
#include "config.hpp"
#include "library.hpp"

#include <uv.h>

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace ferry::server {

class Connection;

class Server {
public:
    Server(uv_loop_t* loop, const Library& library, const Config& config);
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds and listens; returns the bound address ("127.0.0.1:7021").
    Result<std::string> start();
    void stop();

    uv_loop_t* loop() const { return loop_; }
    const Library& library() const { return library_; }
    const Config& config() const { return config_; }
    Counters& counters() { return counters_; }
    std::array<char, 64 * 1024>& read_buffer() { return read_buffer_; }
    std::size_t connection_count() const { return connections_.size(); }
    // A connection's handle is closed and it is about to be freed.
    void forget(Connection* connection);

private:
    static void on_connection(uv_stream_t* listener, int status);
    static void on_signal(uv_signal_t* handle, int signal);
    static void on_sighup(uv_signal_t* handle, int signal);
    static void on_cleanup_timer(uv_timer_t* timer);
    static void on_drain_timer(uv_timer_t* timer);
    static void on_sweep_timer(uv_timer_t* timer);
    std::optional<Error> check_limits(const Connection& connection) const;
    void close_service_handles();
    void close_handle(uv_handle_t* handle);

    uv_loop_t* loop_;
    const Library& library_;
    const Config& config_;
    uv_tcp_t listener_{};
    uv_signal_t sigint_{};
    uv_signal_t sigterm_{};
    uv_signal_t sighup_{};
    uv_timer_t cleanup_timer_{};
    uv_timer_t drain_timer_{};
    uv_timer_t sweep_timer_{};
    bool stopping_ = false;
    Counters counters_;
    std::unordered_set<Connection*> connections_;
    std::unordered_map<std::string, std::size_t> connections_per_address_;
    std::array<char, 64 * 1024> read_buffer_{};
};

} // namespace ferry::server
