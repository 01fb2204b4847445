// Helpers for the integration tests: a temporary folder, a real ferryd on a
// free loopback port, the ferry binary run as a child process with its
// output captured, and file helpers. Every wait here has a deadline.
#pragma once

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::test {

using namespace std::chrono_literals;

// A fresh folder (mkdtemp), removed with everything in it on destruction.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& path() const { return path_; }
    std::string operator/(std::string_view name) const { return path_ + "/" + std::string(name); }

private:
    std::string path_;
};

struct ProcessResult {
    int exit_code = -1;  // -1 when killed by a signal
    int term_signal = 0; // the signal that ended it, if any
    bool timed_out = false;
    std::string out;
    std::string err;
};

// A child started with posix_spawn: stdin from /dev/null, stdout and
// stderr captured through pipes (or stderr into a file). Killed and
// reaped on destruction if still running.
class ChildProcess {
public:
    struct Options {
        std::vector<std::string> extra_env; // "NAME=value", added to ours
        std::string stderr_file;            // empty: captured
        std::string cwd;                    // empty: ours
        std::string stdin_path;             // empty: /dev/null
        std::string stdout_path;            // empty: captured
    };
    ChildProcess(const std::vector<std::string>& argv, const Options& options);
    ChildProcess(ChildProcess&& other) noexcept;
    ChildProcess& operator=(ChildProcess&&) = delete;
    ChildProcess(const ChildProcess&) = delete;
    ~ChildProcess();

    pid_t pid() const { return pid_; }
    bool started() const { return pid_ > 0; }
    // Reads one line of stdout (without the newline), or "" at the deadline or EOF.
    std::string read_line(std::chrono::milliseconds timeout);
    void signal(int signal_number) const;
    // Collects the output until the child exits; SIGKILL at the deadline.
    ProcessResult wait(std::chrono::milliseconds timeout);
    // True once the child has exited (reaps it; wait() still reports it).
    bool exited();

private:
    void reap_blocking();

    pid_t pid_ = -1;
    int out_fd_ = -1;
    int err_fd_ = -1;
    bool reaped_ = false;
    int status_ = 0;
    std::string out_buffer_;
};

// ferryd --root ROOT --listen 127.0.0.1:0, its stderr in LOG. Waits for its
// first stdout line, "listening on 127.0.0.1:PORT". Stopped with SIGTERM on
// destruction, which must end it with status 0.
class ServerProcess {
public:
    ServerProcess(const std::string& root, const std::string& log_file, std::vector<std::string> extra_args = {});
    ~ServerProcess();
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;

    bool running() const { return port_ != 0; }
    std::uint16_t port() const { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    // SIGTERM and wait; returns the exit status (or -1), once.
    int stop();

private:
    ChildProcess process_;
    std::uint16_t port_ = 0;
    bool stopped_ = false;
    int exit_code_ = -1;
};

// A served folder, a local work folder and a running server.
struct Fixture {
    Fixture();
    TempDir dir;
    std::string root;  // served by ferryd
    std::string local; // the client's side
    std::string log;   // ferryd's stderr
    ServerProcess server;

    std::string root_file(std::string_view name) const { return root + "/" + std::string(name); }
    std::string local_file(std::string_view name) const { return local + "/" + std::string(name); }
};

inline constexpr auto kFerryTimeout = 300s;

// Runs `ferry --server SERVER ARGS...` to completion.
ProcessResult run_ferry(const std::string& server, const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout = kFerryTimeout, std::vector<std::string> extra_env = {});
// Starts it without waiting.
ChildProcess start_ferry(const std::string& server, const std::vector<std::string>& args);
// Runs ferry with any options (working folder, environment); no --server added.
ProcessResult run_ferry_with(const std::vector<std::string>& args, const ChildProcess::Options& options,
                             std::chrono::milliseconds timeout = kFerryTimeout);

// stdout as the one JSON object --json promises (CHECKs it; a discarded
// value when it is not).
nlohmann::json parse_output(const ProcessResult& result);
// The one file of a --json get or put ({"files": [ONE], "summary": ...}).
nlohmann::json only_file(const nlohmann::json& output);
// The error code of a --json error object, or "" if there is none.
std::string error_code(const nlohmann::json& output);

// ---- Files ---------------------------------------------------------------------

// `size` pseudo-random bytes from `seed` (a fast PRNG, no holes).
void write_random_file(const std::string& path, std::uint64_t size, std::uint64_t seed);
void write_file(const std::string& path, std::string_view content);
std::string read_file(const std::string& path);
std::string sha256_of_file(const std::string& path);
bool files_equal(const std::string& a, const std::string& b);
bool exists(const std::string& path);
std::uint64_t file_size(const std::string& path);
// Every entry of a folder but "." and "..", hidden ones included, sorted.
std::vector<std::string> folder_entries(const std::string& path);
// Entries starting with ".ferry-partial-".
std::vector<std::string> partial_uploads(const std::string& root);

} // namespace ferry::test
