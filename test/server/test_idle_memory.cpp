// What an idle connection costs ferryd: a real Server on its own loop,
// clients on loopback, and every operator new of the process counted (this
// executable replaces the global allocation functions, which is why it is
// a program of its own). Issue 15 asks for nginx's 0.5 KiB of memory per
// idle connection; the C++ objects a connection keeps must fit well inside
// that, with room for libuv's own per-descriptor arrays (malloc, uncounted).
#include "address.hpp"
#include "config.hpp"
#include "counters.hpp"
#include "library.hpp"
#include "server.hpp"
#include "temp_root.hpp"

#include "frame.hpp"
#include "messages.hpp"

#include <doctest/doctest.h>

#include <malloc.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

// Bytes the process holds through operator new, as malloc sizes them,
// leaving out the test's own thread (its clients): what is left is the
// server's loop and pool.
std::atomic<long long> g_live_bytes{0};
thread_local bool t_not_counted = false;

void* counted_new(std::size_t size)
{
    void* pointer = std::malloc(size == 0 ? 1 : size);
    if (pointer == nullptr) {
        throw std::bad_alloc();
    }
    if (!t_not_counted) {
        g_live_bytes.fetch_add(static_cast<long long>(malloc_usable_size(pointer)), std::memory_order_relaxed);
    }
    return pointer;
}

void counted_delete(void* pointer) noexcept
{
    if (pointer == nullptr) {
        return;
    }
    if (!t_not_counted) {
        g_live_bytes.fetch_sub(static_cast<long long>(malloc_usable_size(pointer)), std::memory_order_relaxed);
    }
    // Freed on every thread: only the count leaves the test's own out.
    std::free(pointer);
}

} // namespace

void* operator new(std::size_t size)
{
    return counted_new(size);
}
void* operator new[](std::size_t size)
{
    return counted_new(size);
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept
{
    try {
        return counted_new(size);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept
{
    try {
        return counted_new(size);
    } catch (...) {
        return nullptr;
    }
}
void operator delete(void* pointer) noexcept
{
    counted_delete(pointer);
}
void operator delete[](void* pointer) noexcept
{
    counted_delete(pointer);
}
void operator delete(void* pointer, std::size_t) noexcept
{
    counted_delete(pointer);
}
void operator delete[](void* pointer, std::size_t) noexcept
{
    counted_delete(pointer);
}

namespace ferry::server {
namespace {

using namespace std::chrono_literals;

// A Server on a loop of its own thread, serving a fresh folder on a free
// loopback port.
class RunningServer {
public:
    explicit RunningServer(Config config)
        : config_(std::move(config)), library_(std::move(Library::open(root_.path()).value()))
    {
        uv_loop_init(&loop_);
        server_ = std::make_unique<Server>(&loop_, *library_, config_, counters_);
        auto address = parse_listen_address("127.0.0.1:0");
        REQUIRE(address);
        auto bound = server_->start(address.value(), false);
        REQUIRE(bound);
        port_ = static_cast<std::uint16_t>(std::stoi(bound.value().substr(bound.value().rfind(':') + 1)));
        thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
    }
    ~RunningServer()
    {
        server_->request_stop();
        thread_.join();
        server_.reset();
        uv_loop_close(&loop_);
    }
    RunningServer(const RunningServer&) = delete;
    RunningServer& operator=(const RunningServer&) = delete;

    std::uint16_t port() const { return port_; }

private:
    TempRoot root_;
    Config config_;
    Counters counters_;
    std::unique_ptr<Library> library_;
    uv_loop_t loop_{};
    std::unique_ptr<Server> server_;
    std::uint16_t port_ = 0;
    std::thread thread_;
};

class Client {
public:
    explicit Client(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0))
    {
        REQUIRE(fd_ >= 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    }
    ~Client() { ::close(fd_); }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    void send(const RequestBody& body, std::uint64_t id)
    {
        const std::string frame = encode_control_frame(encode_request(Request{id, body}));
        REQUIRE(::send(fd_, frame.data(), frame.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(frame.size()));
    }

    // The next control frame's JSON, or nothing at the deadline or EOF.
    std::optional<std::string> receive(std::chrono::milliseconds timeout)
    {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (true) {
            while (!pending_.empty()) {
                DecodeEvent event = decoder_.next(
                    std::span(reinterpret_cast<const std::uint8_t*>(pending_.data()), pending_.size()));
                pending_.erase(0, event.consumed);
                if (event.kind == DecodeEvent::Kind::control) {
                    return event.text;
                }
                if (event.kind != DecodeEvent::Kind::need_more || event.consumed == 0) {
                    break;
                }
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            pollfd poll_fd{fd_, POLLIN, 0};
            if (left.count() <= 0 || ::poll(&poll_fd, 1, static_cast<int>(left.count())) <= 0) {
                return std::nullopt;
            }
            char buffer[4096];
            const ssize_t got = ::recv(fd_, buffer, sizeof buffer, 0);
            if (got <= 0) {
                return std::nullopt;
            }
            pending_.append(buffer, static_cast<std::size_t>(got));
        }
    }

private:
    int fd_;
    FrameDecoder decoder_;
    std::string pending_;
};

// Waits until the counted bytes stop moving (the server parks a connection
// once its reply has left, on its own thread).
long long settled_live_bytes()
{
    long long last = g_live_bytes.load();
    for (int quiet = 0, round = 0; quiet < 5 && round < 100; ++round) {
        std::this_thread::sleep_for(20ms);
        const long long now = g_live_bytes.load();
        quiet = now == last ? quiet + 1 : 0;
        last = now;
    }
    return last;
}

HelloRequest hello()
{
    HelloRequest request;
    request.version = 1;
    request.client = "idle-memory-test";
    return request;
}

TEST_CASE("an idle connection after hello keeps less than 512 bytes of C++ objects in the server")
{
    RunningServer server{Config{}};
    t_not_counted = true;
    constexpr std::size_t kConnections = 200;
    std::vector<std::unique_ptr<Client>> clients;
    clients.reserve(kConnections);
    const long long before = settled_live_bytes();
    for (std::size_t i = 0; i < kConnections; ++i) {
        clients.push_back(std::make_unique<Client>(server.port()));
    }
    for (auto& client : clients) {
        client->send(hello(), 0);
    }
    for (auto& client : clients) {
        const auto reply = client->receive(10s);
        REQUIRE(reply);
        REQUIRE(parse_hello_reply(*reply));
    }
    const long long after = settled_live_bytes();
    const long long per_connection = (after - before) / static_cast<long long>(kConnections);
    MESSAGE("bytes held per idle connection: " << per_connection);
    CHECK(per_connection > 0);
    CHECK(per_connection < 512);
}

TEST_CASE("a parked connection keeps its hello, and its idle timeout")
{
    Config config;
    config.idle_timeout = std::chrono::milliseconds(1500);
    RunningServer server{config};
    t_not_counted = true;
    Client client(server.port());
    client.send(hello(), 0);
    const auto greeted = client.receive(10s);
    REQUIRE(greeted);
    REQUIRE(parse_hello_reply(*greeted));
    settled_live_bytes(); // parked by now
    // A request after parking is served (no hello_required): the session
    // came back with what hello settled.
    client.send(StatsRequest{}, 1);
    const auto stats = client.receive(10s);
    REQUIRE(stats);
    CHECK(parse_stats_reply(*stats));
    settled_live_bytes();
    // Left alone, the parked connection is closed by the idle timeout,
    // which it says, as before.
    const auto closing = client.receive(20s);
    REQUIRE(closing);
    CHECK(closing->find("idle_timeout") != std::string::npos);
    CHECK_FALSE(client.receive(10s));
}

} // namespace
} // namespace ferry::server
