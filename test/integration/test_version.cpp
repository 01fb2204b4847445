// The client's side of version negotiation (PROTOCOL.md 8), against a
// scripted server on loopback: a ferryd that speaks version 1 only cannot
// be started from this tree, so a small fake plays it, one answer per
// connection.
#include "connection.hpp"
#include "frame.hpp"
#include "messages.hpp"
#include "raw_frames.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace ferry;
using namespace ferry::client;

namespace {

// Accepts one connection per scripted answer: reads the hello, records the
// version it offers, sends what the script makes of it, and closes.
class ScriptedServer {
public:
    using Answer = std::function<std::string(const HelloRequest&)>;

    explicit ScriptedServer(std::vector<Answer> answers) : answers_(std::move(answers))
    {
        listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(listener_ >= 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        REQUIRE(::listen(listener_, 4) == 0);
        socklen_t length = sizeof address;
        REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) == 0);
        port_ = ntohs(address.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    ScriptedServer(const ScriptedServer&) = delete;
    ScriptedServer& operator=(const ScriptedServer&) = delete;
    ~ScriptedServer()
    {
        // Unblocks an accept() still waiting for a connection that never came.
        ::shutdown(listener_, SHUT_RDWR);
        if (thread_.joinable()) {
            thread_.join();
        }
        ::close(listener_);
    }

    Endpoint endpoint() const { return Endpoint{"127.0.0.1", port_}; }
    // The versions offered, one per connection, once every scripted
    // connection has come and gone.
    const std::vector<std::uint32_t>& offered()
    {
        if (thread_.joinable()) {
            thread_.join();
        }
        return offered_;
    }

private:
    void serve()
    {
        for (const auto& answer : answers_) {
            const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) {
                return;
            }
            const std::string payload = ferry::test::read_control(fd);
            if (!payload.empty()) {
                const auto parsed = parse_request(payload);
                if (parsed.request.ok() && std::holds_alternative<HelloRequest>(parsed.request->body)) {
                    const auto& hello = std::get<HelloRequest>(parsed.request->body);
                    offered_.push_back(hello.version);
                    const std::string frame = encode_control_frame(answer(hello));
                    (void)ferry::test::send_all(fd, frame.data(), frame.size());
                }
            }
            ::shutdown(fd, SHUT_WR);
            char drain[256];
            while (::recv(fd, drain, sizeof drain, 0) > 0) {
            }
            ::close(fd);
        }
    }

    std::vector<Answer> answers_;
    int listener_ = -1;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::vector<std::uint32_t> offered_;
};

// What an old ferryd, which speaks version 1 only, answers.
std::string old_server(const HelloRequest& hello)
{
    if (hello.version != 1) {
        return encode_error(0, Error{ErrorCode::unsupported_version,
                                     "this server speaks protocol version 1, not " + std::to_string(hello.version)});
    }
    HelloReply reply;
    reply.version = 1;
    reply.server = "ferryd/0.0.9";
    reply.capabilities = {"list", "stat", "get", "put", "resume", "stats"};
    reply.hashes = {"sha256"};
    reply.max_control_frame = 65536;
    reply.max_data_frame = 16777216;
    return encode_reply(0, reply);
}

ScriptedServer::Answer answering_version(std::uint32_t version)
{
    return [version](const HelloRequest&) {
        HelloReply reply;
        reply.version = version;
        reply.server = "scripted";
        reply.hashes = {"sha256"};
        reply.max_control_frame = 65536;
        reply.max_data_frame = 16777216;
        return encode_reply(0, reply);
    };
}

ConnectOptions quick()
{
    ConnectOptions options;
    options.timeouts.connect = std::chrono::milliseconds(10'000);
    options.timeouts.hello = std::chrono::milliseconds(10'000);
    options.timeouts.io = std::chrono::milliseconds(10'000);
    return options;
}

} // namespace

TEST_CASE("the client offers version 2 and speaks what the server answers")
{
    ScriptedServer server({answering_version(2)});
    auto connection = Connection::open(server.endpoint(), quick());
    REQUIRE(connection.ok());
    CHECK(connection->protocol_version() == 2);
    connection->close();
    CHECK(server.offered() == std::vector<std::uint32_t>{2});
}

TEST_CASE("an old server's unsupported_version to version 2: the client reconnects once with version 1")
{
    ScriptedServer server({old_server, old_server});
    auto connection = Connection::open(server.endpoint(), quick());
    REQUIRE(connection.ok());
    CHECK(connection->protocol_version() == 1);
    CHECK(connection->server_hello().server == "ferryd/0.0.9");
    connection->close();
    CHECK(server.offered() == std::vector<std::uint32_t>{2, 1});
}

TEST_CASE("a server that refuses version 1 too: the client gives up after one retry, with the server's error")
{
    const auto refuse = [](const HelloRequest&) {
        return encode_error(0, Error{ErrorCode::unsupported_version, "this server speaks version 7 only"});
    };
    ScriptedServer server({refuse, refuse});
    auto connection = Connection::open(server.endpoint(), quick());
    REQUIRE_FALSE(connection.ok());
    CHECK(connection.error().code == ErrorCode::unsupported_version);
    CHECK(connection.error().message == "this server speaks version 7 only");
    CHECK(server.offered() == std::vector<std::uint32_t>{2, 1});
}

TEST_CASE("a hello reply with a version the client did not offer, or 0, breaks the protocol")
{
    for (const std::uint32_t answered : {3u, 0u}) {
        CAPTURE(answered);
        ScriptedServer server({answering_version(answered)});
        auto connection = Connection::open(server.endpoint(), quick());
        REQUIRE_FALSE(connection.ok());
        CHECK(connection.error().code == ErrorCode::internal);
        CHECK(connection.error().message.find("version " + std::to_string(answered)) != std::string::npos);
        CHECK(server.offered() == std::vector<std::uint32_t>{2});
    }
}
