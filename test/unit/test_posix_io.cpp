// sys/posix_io: the EINTR and short-transfer loops, on pipes and socket
// pairs, with real signals interrupting blocked calls and real short writes.
#include "posix_io.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace sys = ferry::sys;

namespace {

std::atomic<int> g_signals{0};

void count_signal(int)
{
    g_signals.fetch_add(1);
}

// SIGUSR1 without SA_RESTART, so that a blocked read or write returns EINTR
// (as the client's Ctrl-C handler does); the old action is put back after.
class InterruptingSignal {
public:
    InterruptingSignal()
    {
        struct sigaction action {};
        action.sa_handler = count_signal;
        sigemptyset(&action.sa_mask);
        action.sa_flags = 0;
        ::sigaction(SIGUSR1, &action, &old_);
        g_signals = 0;
    }
    ~InterruptingSignal() { ::sigaction(SIGUSR1, &old_, nullptr); }
    InterruptingSignal(const InterruptingSignal&) = delete;
    InterruptingSignal& operator=(const InterruptingSignal&) = delete;

private:
    struct sigaction old_ {};
};

struct Fds {
    int a = -1;
    int b = -1;
    ~Fds()
    {
        if (a >= 0) {
            ::close(a);
        }
        if (b >= 0) {
            ::close(b);
        }
    }
};

// A connected AF_UNIX stream pair, closed with `pair`.
void open_socket_pair(Fds& pair)
{
    std::array<int, 2> fds{};
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds.data()) == 0);
    pair.a = fds[0];
    pair.b = fds[1];
}

std::vector<std::uint8_t> pattern(std::size_t size)
{
    std::vector<std::uint8_t> bytes(size);
    for (std::size_t i = 0; i < size; ++i) {
        bytes[i] = static_cast<std::uint8_t>((i * 131 + i / 251) & 0xff);
    }
    return bytes;
}

// Signals `thread` until the handler has run `count` times: the thread is
// blocked in a call that nothing can finish yet, so each one interrupts it.
void interrupt(pthread_t thread, int count)
{
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (g_signals.load() < count && std::chrono::steady_clock::now() < give_up) {
        ::pthread_kill(thread, SIGUSR1);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

} // namespace

TEST_CASE("retry_on_eintr calls again after EINTR and returns the first other outcome")
{
    int calls = 0;
    const int result = sys::retry_on_eintr([&] {
        ++calls;
        if (calls < 4) {
            errno = EINTR;
            return -1;
        }
        return 7;
    });
    CHECK(result == 7);
    CHECK(calls == 4);

    calls = 0;
    const int failed = sys::retry_on_eintr([&] {
        ++calls;
        errno = calls < 2 ? EINTR : EBADF;
        return -1;
    });
    CHECK(failed == -1);
    CHECK(errno == EBADF);
    CHECK(calls == 2);
}

TEST_CASE("retry_on_eintr gives up on EINTR when the stop check says so")
{
    static bool stop_now = false;
    stop_now = false;
    int calls = 0;
    const auto result = sys::retry_on_eintr(
        [&] {
            if (++calls == 3) {
                stop_now = true;
            }
            errno = EINTR;
            return -1L;
        },
        [] { return stop_now; });
    CHECK(result == -1);
    CHECK(errno == EINTR);
    CHECK(calls == 3);
}

TEST_CASE("read_full gathers short reads up to the end of the file")
{
    Fds pipe_fds;
    std::array<int, 2> fds{};
    REQUIRE(::pipe(fds.data()) == 0);
    pipe_fds.a = fds[0];
    pipe_fds.b = fds[1];
    const auto sent = pattern(10000);
    std::thread writer([&] {
        // Dribbled out in uneven pieces, so each read(2) returns a part.
        for (std::size_t at = 0; at < sent.size();) {
            const std::size_t piece = std::min<std::size_t>(sent.size() - at, 1 + at % 977);
            REQUIRE(::write(pipe_fds.b, sent.data() + at, piece) == static_cast<ssize_t>(piece));
            at += piece;
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        ::close(pipe_fds.b);
        pipe_fds.b = -1;
    });
    std::vector<std::uint8_t> got(sent.size() + 100);
    const auto transfer = sys::read_full(pipe_fds.a, std::span(got));
    writer.join();
    CHECK(transfer.ok());
    CHECK(transfer.done == sent.size()); // the end came before the buffer was full
    got.resize(transfer.done);
    CHECK(got == sent);
}

TEST_CASE("write_all finishes short writes on a socket with a small buffer")
{
    Fds pair;
    open_socket_pair(pair);
    const int small = 4096;
    ::setsockopt(pair.a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    const auto sent = pattern(4 * 1024 * 1024);
    std::vector<std::uint8_t> got(sent.size());
    std::thread reader([&] {
        const auto transfer = sys::read_full(pair.b, std::span(got));
        CHECK(transfer.ok());
        CHECK(transfer.done == got.size());
    });
    const auto transfer = sys::write_all(pair.a, std::span<const std::uint8_t>(sent));
    reader.join();
    CHECK(transfer.ok());
    CHECK(transfer.done == sent.size());
    CHECK(got == sent);
}

TEST_CASE("read_full and write_all carry on through signals that interrupt them")
{
    InterruptingSignal signal;
    Fds pair;
    open_socket_pair(pair);
    const auto sent = pattern(64 * 1024);

    SUBCASE("a read blocked with nothing to read")
    {
        std::vector<std::uint8_t> got(sent.size());
        sys::Transfer transfer;
        std::thread reader([&] { transfer = sys::read_full(pair.b, std::span(got)); });
        interrupt(reader.native_handle(), 5);
        REQUIRE(::write(pair.a, sent.data(), sent.size()) == static_cast<ssize_t>(sent.size()));
        reader.join();
        CHECK(g_signals.load() >= 5);
        CHECK(transfer.ok());
        CHECK(transfer.done == sent.size());
        CHECK(got == sent);
    }
    SUBCASE("a write blocked on a full socket")
    {
        const auto big = pattern(8 * 1024 * 1024);
        sys::Transfer transfer;
        std::thread writer([&] { transfer = sys::write_all(pair.a, std::span<const std::uint8_t>(big)); });
        interrupt(writer.native_handle(), 5);
        std::vector<std::uint8_t> got(big.size());
        const auto read = sys::read_full(pair.b, std::span(got));
        writer.join();
        CHECK(g_signals.load() >= 5);
        CHECK(read.done == big.size());
        CHECK(transfer.ok());
        CHECK(transfer.done == big.size());
        CHECK(got == big);
    }
}

TEST_CASE("a stop check turns an interrupted read into EINTR with what was read so far")
{
    InterruptingSignal signal;
    Fds pair;
    open_socket_pair(pair);
    REQUIRE(::write(pair.a, "abc", 3) == 3);
    std::vector<char> got(10);
    sys::Transfer transfer;
    std::atomic<bool> finished{false};
    std::thread reader([&] {
        transfer = sys::read_full(pair.b, std::span(got), [] { return g_signals.load() > 0; });
        finished = true;
    });
    // A signal that lands between two reads interrupts nothing, so signals
    // go on until the read has returned.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!finished && std::chrono::steady_clock::now() < give_up) {
        ::pthread_kill(reader.native_handle(), SIGUSR1);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!finished) {
        REQUIRE(::write(pair.a, "defghij", 7) == 7); // lets the read end, so the test fails instead of hanging
    }
    reader.join();
    CHECK(transfer.error == EINTR);
    CHECK(transfer.done == 3);
    CHECK(std::string(got.data(), 3) == "abc");
}

TEST_CASE("pread_full and pwrite_all work at an offset and report the end and errors")
{
    char path[] = "/tmp/ferry-posix-io-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::unlink(path);
    const std::string text = "0123456789";
    CHECK(sys::pwrite_all(fd, std::span<const char>(text), 5).done == text.size());
    std::array<char, 8> head{};
    const auto read = sys::pread_full(fd, std::span(head), 10);
    CHECK(read.ok());
    CHECK(read.done == 5); // the file ends at 15
    CHECK(std::string(head.data(), 5) == "56789");
    CHECK(::lseek(fd, 0, SEEK_CUR) == 0); // the file position is untouched
    ::close(fd);

    const auto failed = sys::pread_full(fd, std::span(head), 0);
    CHECK(failed.error == EBADF);
    CHECK(failed.done == 0);
    CHECK(sys::write_all(fd, std::span<const char>(text)).error == EBADF);
}
