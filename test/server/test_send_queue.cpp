// SendQueue on a real socket: one end of a Unix socketpair is a libuv pipe
// the queue writes to, the test reads the other end by hand. Small socket
// buffers make the kernel take the output in pieces, as a slow peer does.
#include "library.hpp"
#include "send_queue.hpp"
#include "temp_root.hpp"
#include "uv_handle.hpp"

#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

using namespace ferry;
using namespace ferry::server;

namespace {

// Open descriptors of this process: the dup'd one shows up here.
std::size_t open_descriptors()
{
    std::size_t count = 0;
    if (DIR* dir = ::opendir("/proc/self/fd")) {
        while (::readdir(dir) != nullptr) {
            ++count;
        }
        ::closedir(dir);
    }
    return count;
}

struct Events final : SendQueue::Owner {
    int sent = 0;
    int drained = 0;
    std::vector<SendFailure> failures;
    // What the owner does on an event, to check re-entrant use.
    std::function<void()> react_to_sent;

    void on_queue_sent() override
    {
        ++sent;
        if (react_to_sent) {
            react_to_sent();
        }
    }
    void on_queue_drained() override { ++drained; }
    void on_queue_failed(const SendFailure& failure) override { failures.push_back(failure); }
};

class Pair {
public:
    // `buffer` > 0 shrinks both ends' socket buffers to about that much.
    explicit Pair(int buffer = 0)
    {
        // As in ferryd: a write to a closed peer is EPIPE, not a signal.
        std::signal(SIGPIPE, SIG_IGN);
        uv_loop_init(&loop_);
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
        if (buffer > 0) {
            ::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
            ::setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
        }
        peer_ = fds[1];
        ::fcntl(peer_, F_SETFL, ::fcntl(peer_, F_GETFL) | O_NONBLOCK);
        uv_pipe_init(&loop_, &pipe_, 0);
        REQUIRE(uv_pipe_open(&pipe_, fds[0]) == 0);
        queue_ = std::make_unique<SendQueue>(reinterpret_cast<uv_stream_t*>(&pipe_), events);
    }
    Pair(const Pair&) = delete;
    Pair& operator=(const Pair&) = delete;
    ~Pair()
    {
        // The owner's order: the queue closes first, then the stream; the
        // queue lives on until the stream's write callbacks have run.
        queue_->close();
        uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), nullptr);
        uv_run(&loop_, UV_RUN_DEFAULT);
        queue_.reset();
        // Every handle the queue opened is closed and freed by now.
        CHECK(uv_loop_close(&loop_) == 0);
        if (peer_ >= 0) {
            ::close(peer_);
        }
    }

    SendQueue& queue() { return *queue_; }
    uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&pipe_); }
    // One turn of the loop, without blocking.
    void turn() { uv_run(&loop_, UV_RUN_NOWAIT); }

    // Reads what the peer has, at most `limit` bytes.
    std::size_t read_some(std::size_t limit = SIZE_MAX)
    {
        char buf[16384];
        std::size_t total = 0;
        while (total < limit) {
            const ssize_t got = ::read(peer_, buf, std::min(sizeof buf, limit - total));
            if (got <= 0) {
                break;
            }
            received.append(buf, static_cast<std::size_t>(got));
            total += static_cast<std::size_t>(got);
        }
        return total;
    }

    // Turns the loop and reads until `done()` or a generous deadline.
    bool run_until(const std::function<bool()>& done, bool read = true)
    {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) {
                return false;
            }
            turn();
            if (read) {
                read_some();
            }
            ::usleep(200);
        }
        return true;
    }

    void close_peer()
    {
        ::close(peer_);
        peer_ = -1;
    }

    Events events;
    std::string received;

private:
    uv_loop_t loop_{};
    uv_pipe_t pipe_{};
    int peer_ = -1;
    std::unique_ptr<SendQueue> queue_;
};

// A file of `size` bytes whose byte i is 'a' + i % 26, open for sending.
std::shared_ptr<const OpenFile> make_file(TempRoot& root, std::size_t size)
{
    std::string content(size, '\0');
    for (std::size_t i = 0; i < size; ++i) {
        content[i] = static_cast<char>('a' + i % 26);
    }
    root.write("data", content);
    const int fd = ::open((root.path() + "/data").c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    return std::make_shared<const OpenFile>(fd, FileInfo{"data", size, 0}, FileIdentity{});
}

std::string file_bytes(std::uint64_t offset, std::size_t length)
{
    std::string bytes(length, '\0');
    for (std::size_t i = 0; i < length; ++i) {
        bytes[i] = static_cast<char>('a' + (offset + i) % 26);
    }
    return bytes;
}

} // namespace

TEST_CASE("send queue: bytes and file ranges leave in the order they were queued")
{
    TempRoot root;
    Pair pair;
    auto file = make_file(root, 100000);
    pair.queue().send("head:");
    pair.queue().send_file(file, 10, 30000);
    pair.queue().send("|middle|");
    pair.queue().send_file(file, 0, 5);
    pair.queue().send_file(file, 99990, 10); // a range right after a range
    pair.queue().send(":tail");
    const std::string expected =
        "head:" + file_bytes(10, 30000) + "|middle|" + file_bytes(0, 5) + file_bytes(99990, 10) + ":tail";

    // Everything counts as unsent until its write completes or sendfile
    // moves it, and no event came from inside the calls.
    CHECK(pair.queue().unsent_bytes() == expected.size());
    CHECK(pair.events.sent == 0);
    CHECK(pair.events.drained == 0);
    CHECK_FALSE(pair.queue().idle());

    REQUIRE(pair.run_until([&] { return pair.events.drained > 0 && pair.received.size() == expected.size(); }));
    CHECK(pair.received == expected);
    CHECK(pair.queue().idle());
    CHECK(pair.queue().unsent_bytes() == 0);
    CHECK(pair.queue().written_bytes() == expected.size());
    CHECK(pair.events.failures.empty());
}

TEST_CASE("send queue: a range of a file alone starts on writability, not inside the call")
{
    TempRoot root;
    Pair pair;
    auto file = make_file(root, 4096);
    pair.queue().send_file(file, 0, 4096);
    CHECK(pair.events.sent == 0);
    CHECK(pair.queue().written_bytes() == 0);
    REQUIRE(pair.run_until([&] { return pair.events.drained > 0; }));
    CHECK(pair.received == file_bytes(0, 4096));
    CHECK(pair.events.sent >= 1);
}

TEST_CASE("send queue: a small socket buffer takes a range in pieces, through the watch on a dup'd descriptor")
{
    TempRoot root;
    Pair pair(4096);
    const std::size_t size = 1 << 20;
    auto file = make_file(root, size);
    const std::size_t descriptors = open_descriptors();
    pair.queue().send("H");
    pair.queue().send_file(file, 0, size);

    // The peer reads nothing: the range stops part-way and waits for room.
    for (int i = 0; i < 50; ++i) {
        pair.turn();
    }
    const std::size_t unsent = pair.queue().unsent_bytes();
    CHECK(unsent > 0);
    CHECK(unsent < size);
    CHECK(pair.queue().written_bytes() == 1 + size - unsent);
    CHECK(pair.events.drained == 0);
    CHECK(open_descriptors() == descriptors + 1); // the watch's dup

    // Read in small bites: each bite lets sendfile move a little more.
    REQUIRE(pair.run_until([&] {
        pair.read_some(8192);
        return pair.events.drained > 0 && pair.received.size() == size + 1;
    }, false));
    CHECK(pair.received == "H" + file_bytes(0, size));
    CHECK(pair.events.sent > 2); // progress was reported piece by piece
    CHECK(pair.queue().unsent_bytes() == 0);
}

// Issue 15's E: a connection between downloads (and every idle one) keeps
// neither the poll handle nor the dup'd descriptor that waited for room.
TEST_CASE("send queue: once drained, the watch and its dup'd descriptor are released")
{
    TempRoot root;
    Pair pair(4096);
    const std::size_t size = 256 << 10;
    auto file = make_file(root, size);
    const std::size_t descriptors = open_descriptors();
    pair.queue().send_file(file, 0, size);
    for (int i = 0; i < 50; ++i) {
        pair.turn();
    }
    REQUIRE(pair.queue().unsent_bytes() > 0); // waited for room: watched
    CHECK(open_descriptors() == descriptors + 1);
    REQUIRE(pair.run_until([&] {
        pair.read_some(8192);
        return pair.events.drained > 0 && pair.received.size() == size;
    }, false));
    pair.turn(); // the watch's close callback
    CHECK(open_descriptors() == descriptors);

    // The next range makes what it needs again.
    pair.queue().send_file(file, 0, size);
    REQUIRE(pair.run_until([&] {
        pair.read_some(8192);
        return pair.events.drained > 1 && pair.received.size() == 2 * size;
    }, false));
    CHECK(pair.received == file_bytes(0, size) + file_bytes(0, size));
    pair.turn();
    CHECK(open_descriptors() == descriptors);
}

TEST_CASE("send queue: backpressure is counted, and bytes behind a write in flight go out as one write")
{
    Pair pair(4096);
    const std::string chunk(100000, 'x');
    pair.queue().send(chunk);
    pair.queue().send(std::string(100000, 'y'));
    pair.queue().send(std::string(100000, 'z'));
    // The first write went to libuv; the others wait in one buffer behind it.
    CHECK(pair.queue().unsent_bytes() == 300000);
    CHECK(pair.queue().written_bytes() == 100000);
    for (int i = 0; i < 20; ++i) {
        pair.turn();
    }
    CHECK(pair.queue().unsent_bytes() == 300000); // the peer read nothing
    CHECK(pair.queue().acknowledged_bytes() == 0);
    CHECK(pair.events.sent == 0);

    REQUIRE(pair.run_until([&] { return pair.events.drained > 0 && pair.received.size() == 300000; }));
    CHECK(pair.received == chunk + std::string(100000, 'y') + std::string(100000, 'z'));
    CHECK(pair.events.sent == 2); // two writes: the first, and the 200000 behind it
    CHECK(pair.queue().written_bytes() == 300000);
    CHECK(pair.queue().acknowledged_bytes() == 300000);
}

TEST_CASE("send queue: bytes sent while held leave together, as one write, once the last hold is released")
{
    Pair pair;
    pair.queue().hold();
    pair.queue().hold(); // holds nest
    pair.queue().send("reply|");
    pair.queue().send(std::string(5000, 'd'));
    pair.queue().send("|trailer");
    const std::string expected = "reply|" + std::string(5000, 'd') + "|trailer";
    CHECK(pair.queue().unsent_bytes() == expected.size());
    CHECK(pair.queue().written_bytes() == 0);
    CHECK_FALSE(pair.queue().idle()); // an owner waiting for idle() waits for these too
    pair.queue().release();
    for (int i = 0; i < 5; ++i) {
        pair.turn();
    }
    CHECK(pair.read_some() == 0); // still held by the outer hold
    CHECK(pair.queue().written_bytes() == 0);
    pair.queue().release();
    CHECK(pair.queue().written_bytes() == expected.size());
    CHECK(pair.events.sent == 0); // reported from the write's callback, never from the release
    REQUIRE(pair.run_until([&] { return pair.events.drained > 0 && pair.received.size() == expected.size(); }));
    CHECK(pair.received == expected);
    CHECK(pair.events.sent == 1); // one write of three buffers
    pair.queue().release();       // one release too many changes nothing
    CHECK(pair.queue().idle());
}

TEST_CASE("send queue: held bytes keep their place before a file range and behind a write in flight")
{
    TempRoot root;
    Pair pair;
    auto file = make_file(root, 10000);
    pair.queue().send("first|"); // in flight
    pair.queue().hold();
    pair.queue().send("head|");
    pair.queue().send_file(file, 0, 10000); // sends what was held first
    pair.queue().send("|tail");             // behind the range
    pair.queue().release();
    const std::string expected = "first|head|" + file_bytes(0, 10000) + "|tail";
    CHECK(pair.queue().unsent_bytes() == expected.size());
    REQUIRE(pair.run_until([&] { return pair.events.drained > 0 && pair.received.size() == expected.size(); }));
    CHECK(pair.received == expected);
    CHECK(pair.queue().unsent_bytes() == 0);
    CHECK(pair.events.failures.empty());
}

TEST_CASE("send queue: flush_held writes what is held at once, the hold staying on")
{
    Pair pair;
    pair.queue().hold();
    pair.queue().send("close_notify"); // what goes out before a half-close
    pair.queue().flush_held();
    CHECK(pair.queue().written_bytes() == 12);
    pair.queue().send("|later");
    CHECK(pair.queue().written_bytes() == 12); // held again
    pair.queue().release();
    REQUIRE(pair.run_until([&] { return pair.events.drained > 0 && pair.received.size() == 18; }));
    CHECK(pair.received == "close_notify|later");
}

TEST_CASE("send queue: a queue closed while it holds bytes drops them")
{
    Pair pair;
    pair.queue().hold();
    pair.queue().send("never sent");
    pair.queue().close();
    CHECK(pair.queue().unsent_bytes() == 0);
    pair.queue().release();
    CHECK(pair.queue().written_bytes() == 0);
    for (int i = 0; i < 5; ++i) {
        pair.turn();
    }
    CHECK(pair.read_some() == 0);
    CHECK(pair.events.sent == 0);
}

TEST_CASE("send queue: await_acknowledgement says sent once the peer has taken every byte, not before")
{
    // On a Unix socket the kernel's count of unacknowledged bytes is what
    // the peer has not read: the stand-in for a TCP peer's acknowledgement.
    Pair pair;
    pair.queue().send(std::string(1000, 'x'));
    REQUIRE(pair.run_until([&] { return pair.events.drained > 0; }, false));
    const int sent_before = pair.events.sent;
    CHECK(pair.queue().acknowledged_bytes() < pair.queue().written_bytes());

    pair.queue().await_acknowledgement();
    pair.queue().await_acknowledgement(); // a second call while waiting changes nothing
    CHECK(pair.events.sent == sent_before); // never inside the call
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(150);
    while (std::chrono::steady_clock::now() < until) {
        pair.turn();
        ::usleep(1000);
    }
    CHECK(pair.events.sent == sent_before); // the peer read nothing

    REQUIRE(pair.run_until([&] { return pair.events.sent > sent_before; }));
    CHECK(pair.events.sent == sent_before + 1);
    CHECK(pair.queue().acknowledged_bytes() == pair.queue().written_bytes());
    CHECK(pair.received == std::string(1000, 'x'));

    SUBCASE("already acknowledged: said on a later loop turn")
    {
        pair.queue().await_acknowledgement();
        CHECK(pair.events.sent == sent_before + 1);
        REQUIRE(pair.run_until([&] { return pair.events.sent > sent_before + 1; }));
    }
    SUBCASE("closed while waiting: nothing is said, and the timer is freed (the loop closes)")
    {
        pair.queue().send(std::string(10, 'y'));
        REQUIRE(pair.run_until([&] { return pair.events.drained > 1; }, false));
        pair.queue().await_acknowledgement();
        pair.queue().close();
        for (int i = 0; i < 5; ++i) {
            pair.turn();
        }
        CHECK(pair.events.sent == sent_before + 2); // the write's own event only
    }
}

TEST_CASE("send queue: the owner may queue more from inside an event")
{
    TempRoot root;
    Pair pair;
    auto file = make_file(root, 1000);
    int rounds = 0;
    pair.events.react_to_sent = [&] {
        if (rounds < 3) {
            ++rounds;
            pair.queue().send("#");
            pair.queue().send_file(file, 0, 1000);
        }
    };
    pair.queue().send("start");
    REQUIRE(pair.run_until([&] { return rounds == 3 && pair.queue().idle() && pair.received.size() == 5 + 3 * 1001; }));
    std::string expected = "start";
    for (int i = 0; i < 3; ++i) {
        expected += "#" + file_bytes(0, 1000);
    }
    CHECK(pair.received == expected);
}

TEST_CASE("send queue: a peer that closes midway is one connection_lost failure, reported from a callback")
{
    TempRoot root;
    Pair pair(4096);
    const std::size_t size = 1 << 20;
    auto file = make_file(root, size);
    pair.queue().send("H");
    pair.queue().send_file(file, 0, size);
    pair.queue().send("after");
    REQUIRE(pair.run_until([&] { return pair.received.size() > 10000; }));
    pair.close_peer();
    REQUIRE(pair.run_until([&] { return !pair.events.failures.empty(); }, false));
    for (int i = 0; i < 20; ++i) {
        pair.turn();
    }
    REQUIRE(pair.events.failures.size() == 1);
    CHECK(pair.events.failures[0].code == ErrorCode::connection_lost);
    CHECK(pair.queue().failed());
    // What waited was dropped; nothing is counted as unsent any more.
    CHECK(pair.queue().unsent_bytes() == 0);
    CHECK(pair.events.drained == 0);
    // A failed queue takes nothing more and says nothing more.
    const int sent = pair.events.sent;
    pair.queue().send("ignored");
    for (int i = 0; i < 5; ++i) {
        pair.turn();
    }
    CHECK(pair.events.sent == sent);
    CHECK(pair.events.failures.size() == 1);
}

TEST_CASE("send queue: a write that fails at once is reported on a later loop turn, never inside the call")
{
    Pair pair;
    // After a shutdown libuv refuses writes synchronously (UV_EPIPE).
    uv_shutdown_t shutdown{};
    REQUIRE(uv_shutdown(&shutdown, pair.stream(), nullptr) == 0);
    pair.queue().send("too late");
    CHECK(pair.events.failures.empty()); // not from inside send()
    CHECK(pair.queue().failed());
    pair.turn();
    REQUIRE(pair.events.failures.size() == 1);
    CHECK(pair.events.failures[0].code == ErrorCode::connection_lost);
    CHECK(pair.events.failures[0].message().find("write") == 0);
}

TEST_CASE("send queue: bytes a file that shrank under its ranges no longer holds go as zeros, and the stream stays whole")
{
    // Frames whose sizes are on the wire must be finished, or the peer is
    // left a cut stream (and a resumable prefix) instead of the owner's
    // file_changed after them.
    TempRoot root;
    Pair pair;
    auto file = make_file(root, 3000);
    pair.queue().send("H");
    pair.queue().send_file(file, 0, 1500);
    pair.queue().send_file(file, 1500, 1500);
    pair.queue().send("T");
    REQUIRE(::truncate((root.path() + "/data").c_str(), 1000) == 0);
    const std::string expected = "H" + file_bytes(0, 1000) + std::string(2000, '\0') + "T";
    REQUIRE(pair.run_until([&] { return pair.events.drained > 0 && pair.received.size() == expected.size(); }));
    CHECK(pair.events.failures.empty());
    CHECK(pair.received == expected);
    CHECK(pair.queue().unsent_bytes() == 0);
    CHECK(pair.queue().written_bytes() == expected.size());
}

TEST_CASE("send queue: the dup'd descriptor is closed in the poll handle's close callback")
{
    TempRoot root;
    Pair pair(4096);
    auto file = make_file(root, 1 << 20);
    const std::size_t descriptors = open_descriptors();
    pair.queue().send_file(file, 0, 1 << 20);
    for (int i = 0; i < 50; ++i) {
        pair.turn();
    }
    REQUIRE(pair.queue().unsent_bytes() > 0); // waiting for room, watched
    CHECK(open_descriptors() == descriptors + 1);
    pair.queue().close();
    // Still open: libuv has not yet taken the handle off epoll.
    CHECK(open_descriptors() == descriptors + 1);
    CHECK(pair.queue().unsent_bytes() == 0);
    pair.turn(); // runs the close callback
    CHECK(open_descriptors() == descriptors);
    CHECK(pair.events.failures.empty());
    CHECK(pair.events.drained == 0);
}

namespace {

int timer_nodes_freed = 0;

struct TimerNode {
    uv_timer_t handle{};
    TimerNode() = default;
    TimerNode(const TimerNode&) = delete;
    TimerNode& operator=(const TimerNode&) = delete;
    ~TimerNode() { ++timer_nodes_freed; }
};

} // namespace

TEST_CASE("handle owner: the node is freed in the close callback, once, whoever held it last")
{
    uv_loop_t loop{};
    uv_loop_init(&loop);
    timer_nodes_freed = 0;
    {
        auto node = std::make_unique<TimerNode>();
        uv_timer_init(&loop, &node->handle);
        HandleOwner<TimerNode> first(std::move(node));
        CHECK(static_cast<bool>(first));
        HandleOwner<TimerNode> second(std::move(first));
        CHECK_FALSE(static_cast<bool>(first));
        second.reset();
        CHECK_FALSE(static_cast<bool>(second));
        CHECK(timer_nodes_freed == 0); // libuv still holds the handle
        auto other = std::make_unique<TimerNode>();
        uv_timer_init(&loop, &other->handle);
        second = HandleOwner<TimerNode>(std::move(other));
    } // the destructor begins closing the second node
    CHECK(timer_nodes_freed == 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(timer_nodes_freed == 2);
    CHECK(uv_loop_close(&loop) == 0);
}
