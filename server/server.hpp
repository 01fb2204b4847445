// One worker: a listener and the live connections on one libuv loop, run by
// one thread. ferryd runs --workers of them, the workers of each listening
// address on one port (SO_REUSEPORT: the kernel spreads new connections
// over them); the Supervisor on the main thread owns the signals and tells
// each worker to stop. Stopping is graceful: no new connections, every
// session told to finish (uploads made resumable), then the loop runs dry
// and returns.
#pragma once

#include "address.hpp"
#include "config.hpp"
#include "counters.hpp"
#include "library.hpp"

#include <uv.h>

#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>

namespace ferry::server {

class Connection;

// A non-blocking TCP socket bound to `address`, not yet listening, with
// SO_REUSEADDR; with `share_port` SO_REUSEPORT (other sockets of this user
// may bind the same port), with `v6_only` IPV6_V6ONLY for an IPv6 address
// (ipv6(7): it then serves IPv6 alone, and an IPv4 address of the same port
// can be bound beside it). Returns the descriptor, or -errno.
int bind_socket(const sockaddr_storage& address, bool share_port, bool v6_only);

class Server {
public:
    Server(uv_loop_t* loop, const Library& library, const Config& config, Counters& counters);
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds and listens on `address`; with `share_port` other workers may
    // listen on the same port; with `v6_only` an IPv6 address serves IPv6
    // alone (IPV6_V6ONLY, ipv6(7)), so that an IPv4 address of the same
    // port can be bound beside it. Returns the bound address
    // ("127.0.0.1:7021"). Call before the loop runs, on any thread.
    Result<std::string> start(const sockaddr_storage& address, bool share_port, bool v6_only = false);
    // Serves `fd`, a socket already listening (one systemd passed, or a
    // duplicate of it that other workers poll too); takes ownership.
    Result<std::string> adopt(int fd);

    // Thread-safe: the supervisor calls these from the main thread.
    void request_stop();
    void request_abandon();

    uv_loop_t* loop() const { return loop_; }
    // The Server of `loop` (a loop has at most one).
    static Server& of(const uv_loop_t* loop) { return *static_cast<Server*>(loop->data); }
    const Library& library() const { return library_; }
    const Config& config() const { return config_; }
    Counters& counters() { return counters_; }
    std::array<char, 64 * 1024>& read_buffer() { return read_buffer_; }
    std::size_t connection_count() const { return connections_.size(); }
    // Connections of one kind, in a list threaded through the connections
    // themselves: no node to allocate, which each of thousands of idle
    // connections would pay (a node and a bucket, about 48 bytes).
    class ConnectionList {
    public:
        void add(Connection* connection);
        void remove(Connection* connection);
        bool empty() const { return size_ == 0; }
        std::size_t size() const { return size_; }
        // Calls `visit` on each; a visit may close (not free) any of them,
        // or remove the one it is given.
        template <typename Visit>
        void for_each(Visit&& visit) const;

    private:
        Connection* head_ = nullptr;
        std::size_t size_ = 0;
    };

    // A connection's handle is closed and it is about to be freed.
    void forget(Connection* connection);

private:
    // The rest of start() and adopt(): `fd` listens and listener_ polls it.
    Result<std::string> serve(int fd);
    static void on_listen_readable(uv_poll_t* handle, int status, int events);
    void on_connection(int fd);
    bool refuse_for_want_of_descriptors(int error);
    void log_descriptor_refusals(bool final);
    static void on_command(uv_async_t* handle);
    static void on_drain_timer(uv_timer_t* timer);
    static void on_sweep_timer(uv_timer_t* timer);
    void stop();
    void abandon();
    void close_service_handles();
    void close_handle(uv_handle_t* handle);

    uv_loop_t* loop_;
    const Library& library_;
    const Config& config_;
    Counters& counters_;
    // The listening socket is accepted by hand (not uv_listen) so that a
    // want of descriptors can be answered: see refuse_for_want_of_descriptors.
    uv_poll_t listener_{};
    uv_tcp_t first_stream_{};
    int listen_fd_ = -1;
    int reserve_fd_ = -1;
    std::uint64_t refused_no_descriptor_ = 0;
    std::uint64_t refused_no_descriptor_logged_at_ = 0;
    int refused_no_descriptor_errno_ = 0;
    uv_async_t commands_{};
    // Guards commands_ against a send after the worker closed it.
    std::mutex commands_mutex_;
    bool commands_open_ = false;
    std::atomic<bool> stop_requested_{false};
    std::atomic<bool> abandon_requested_{false};
    uv_timer_t drain_timer_{};
    uv_timer_t sweep_timer_{};
    std::uint64_t sweep_ms_ = 1000;
    // When the sweep last ran: a sweep much later than its period means the
    // process did not run in between (SIGSTOP, a cgroup freeze, a debugger,
    // a paused VM), which no peer is to blame for.
    std::uint64_t last_sweep_ms_ = 0;
    bool stopping_ = false;
    ConnectionList connections_;
    // Turned away by a limit, saying why before they close: the sweep
    // closes those whose peer does not, and stop() closes them at once.
    ConnectionList refused_;
    std::array<char, 64 * 1024> read_buffer_{};
};

} // namespace ferry::server
