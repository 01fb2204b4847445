// The interactive shell, on a pseudo-terminal (it only starts when standard
// input is one): commands over one connection, reopened after the server
// dropped it; with libedit when its output is a terminal too (completion,
// history).
#include "binary_paths.hpp"
#include "support.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

using namespace ferry::test;

namespace {

// The controlling side of a pseudo-terminal; the child opens `slave_path`.
class Terminal {
public:
    Terminal()
    {
        master_ = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        REQUIRE(master_ >= 0);
        REQUIRE(::grantpt(master_) == 0);
        REQUIRE(::unlockpt(master_) == 0);
        slave_path_ = ::ptsname(master_);
    }
    ~Terminal() { close(); }
    Terminal(const Terminal&) = delete;
    Terminal& operator=(const Terminal&) = delete;

    const std::string& slave_path() const { return slave_path_; }
    void type(const std::string& text) const
    {
        REQUIRE(::write(master_, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    }
    // Reads what the child wrote to the terminal until `text` shows up;
    // all of it, or "" at the deadline.
    std::string read_until(const std::string& text, std::chrono::seconds timeout)
    {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (screen_.find(text) == std::string::npos) {
            if (std::chrono::steady_clock::now() >= deadline) {
                return {};
            }
            pollfd pfd{master_, POLLIN, 0};
            if (::poll(&pfd, 1, 100) > 0) {
                char buffer[4096];
                const ssize_t got = ::read(master_, buffer, sizeof buffer);
                if (got <= 0) {
                    return {};
                }
                screen_.append(buffer, static_cast<std::size_t>(got));
            }
        }
        return screen_;
    }
    void close()
    {
        if (master_ >= 0) {
            ::close(master_);
            master_ = -1;
        }
    }

private:
    int master_ = -1;
    std::string slave_path_;
    std::string screen_;
};

bool wait_for_text(const std::string& path, const std::string& text, std::chrono::seconds timeout)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (read_file(path).find(text) != std::string::npos) {
            return true;
        }
        std::this_thread::sleep_for(20ms);
    }
    return false;
}

} // namespace

TEST_CASE("the shell runs list, put, get, stat and help until quit")
{
    Fixture f;
    write_file(f.root_file("hello.txt"), "hello");
    write_random_file(f.local_file("up load.bin"), 300000, 41);
    Terminal terminal;
    ChildProcess::Options options;
    options.stdin_path = terminal.slave_path();
    options.extra_env = {"HOME=" + f.dir.path(), "XDG_STATE_HOME="};
    ChildProcess shell({ferry_path(), "--server", f.server.address()}, options);

    terminal.type("help\nlist\nput \"" + f.local_file("up load.bin") + "\" --as up.bin\nget up.bin -o " +
                  f.local_file("back.bin") + "\nstat up.bin\nstat .nope\nfrobnicate\nquit\n");
    const auto result = shell.wait(120s);
    INFO(result.out);
    INFO(result.err);
    CHECK(result.exit_code == 0);
    CHECK(result.out.find("ferry> ") != std::string::npos);
    CHECK(result.out.find("hello.txt") != std::string::npos);
    // help lists the commands of the command line's definitions (command_line.cpp).
    CHECK(result.out.find("Upload files; each replaces its name only once") != std::string::npos);
    CHECK(result.out.find("quit, exit") != std::string::npos);
    CHECK(result.out.find("300000") != std::string::npos);
    CHECK(result.err.find("ferry: invalid_name: ") != std::string::npos);
    CHECK(result.err.find("unknown command") != std::string::npos);
    CHECK(files_equal(f.local_file("up load.bin"), f.root_file("up.bin")));
    CHECK(files_equal(f.local_file("up load.bin"), f.local_file("back.bin")));
}

TEST_CASE("on a terminal the shell completes commands and remote names with Tab and keeps its history")
{
    Fixture f;
    write_file(f.root_file("quarterly-report.txt"), "numbers");
    write_file(f.local_file("upload-me.txt"), "local bytes");
    Terminal terminal;
    ChildProcess::Options options;
    options.stdin_path = terminal.slave_path();
    options.stdout_path = terminal.slave_path(); // libedit edits only on a terminal
    options.extra_env = {"HOME=" + f.dir.path(), "XDG_STATE_HOME=" + f.dir.path() + "/state", "TERM=xterm"};
    ChildProcess shell({ferry_path(), "--server", f.server.address()}, options);

    REQUIRE_FALSE(terminal.read_until("ferry> ", 60s).empty());
    // "stat" is a prefix of "stats": Tab stops there; "qu" + Tab completes
    // the one remote name, listed on demand.
    terminal.type("stat\t");
    terminal.type(" qu\t\n");
    const std::string screen = terminal.read_until("name:     quarterly-report.txt", 60s);
    CHECK_MESSAGE(!screen.empty(), read_file(f.log));
    // Local paths for put; after the upload the remote names are fetched again.
    terminal.type("put " + f.local + "/upl\t--as fresh.txt\n");
    CHECK_FALSE(terminal.read_until("-> fresh.txt", 60s).empty());
    terminal.type("stat fre\t\n");
    CHECK_FALSE(terminal.read_until("name:     fresh.txt", 60s).empty());
    terminal.type("quit\n");
    const auto result = shell.wait(120s);
    INFO(result.err);
    CHECK(result.exit_code == 0);
    // The history outlives the shell, where XDG_STATE_HOME says.
    CHECK(read_file(f.dir / "state/ferry/history").find("quarterly-report.txt") != std::string::npos);
    CHECK_FALSE(exists(f.dir / ".ferry_history"));
    CHECK(read_file(f.root_file("fresh.txt")) == "local bytes");
}

TEST_CASE("the shell reconnects after the server dropped its idle connection, and ends at end of input")
{
    TempDir dir;
    const std::string root = dir / "root";
    REQUIRE(::mkdir(root.c_str(), 0755) == 0);
    write_file(root + "/hello.txt", "hello");
    const std::string log = dir / "server.log";
    ServerProcess server(root, log, {"--idle-timeout", "1"});
    REQUIRE(server.running());

    Terminal terminal;
    ChildProcess::Options options;
    options.stdin_path = terminal.slave_path();
    options.extra_env = {"HOME=" + dir.path(), "XDG_STATE_HOME="};
    ChildProcess shell({ferry_path(), "--server", server.address()}, options);
    terminal.type("list\n");
    // The server closes the shell's connection once it has been idle.
    REQUIRE_MESSAGE(wait_for_text(log, "idle_timeout", 60s), read_file(log));
    terminal.type("list\n");
    terminal.type("\x04"); // Ctrl-D: end of input
    const auto result = shell.wait(120s);
    INFO(result.out);
    INFO(result.err);
    CHECK(result.exit_code == 0);
    CHECK(result.err.empty());
    std::size_t listed = 0;
    for (std::size_t at = result.out.find("hello.txt"); at != std::string::npos;
         at = result.out.find("hello.txt", at + 1)) {
        ++listed;
    }
    CHECK(listed == 2);
}
