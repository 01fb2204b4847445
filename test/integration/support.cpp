#include "support.hpp"
#include "binary_paths.hpp"

#include "digest.hpp"

#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <utility>

extern char** environ;

namespace ferry::test {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kChunk = 1024 * 1024;

int remaining_ms(Clock::time_point deadline)
{
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, 1000));
}

// Reads what is there into `into`; false at EOF or on an error.
bool drain(int fd, std::string& into)
{
    char buffer[65536];
    for (;;) {
        const ssize_t got = ::read(fd, buffer, sizeof buffer);
        if (got > 0) {
            into.append(buffer, static_cast<std::size_t>(got));
            return true;
        }
        if (got < 0 && errno == EINTR) {
            continue;
        }
        return false;
    }
}

void close_fd(int& fd)
{
    if (fd >= 0) {
        ::close(fd);
        fd = -1;
    }
}

std::string make_folder(const std::string& path)
{
    if (::mkdir(path.c_str(), 0755) != 0) {
        throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
    }
    return path;
}

} // namespace

// ---- TempDir --------------------------------------------------------------------

TempDir::TempDir()
{
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/ferry-it-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
        throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
    }
    path_ = pattern;
}

TempDir::~TempDir()
{
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

// ---- ChildProcess ---------------------------------------------------------------

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const Options& options)
{
    int out_pipe[2] = {-1, -1};
    int err_pipe[2] = {-1, -1};
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe2 failed");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string input = options.stdin_path.empty() ? "/dev/null" : options.stdin_path;
    posix_spawn_file_actions_addopen(&actions, 0, input.c_str(), O_RDWR | O_NOCTTY, 0);
    if (options.stdout_path.empty()) {
        posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    } else {
        posix_spawn_file_actions_addopen(&actions, 1, options.stdout_path.c_str(), O_RDWR | O_NOCTTY, 0);
    }
    if (options.stderr_file.empty()) {
        posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
    } else {
        posix_spawn_file_actions_addopen(&actions, 2, options.stderr_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    }

    if (!options.cwd.empty()) {
        posix_spawn_file_actions_addchdir_np(&actions, options.cwd.c_str());
    }

    std::vector<std::string> env;
    for (char** entry = environ; *entry != nullptr; ++entry) {
        const std::string_view item(*entry);
        const auto overridden = std::any_of(options.extra_env.begin(), options.extra_env.end(), [&](const auto& extra) {
            const auto eq = extra.find('=');
            return item.substr(0, item.find('=')) == std::string_view(extra).substr(0, eq);
        });
        if (!overridden) {
            env.emplace_back(item);
        }
    }
    env.insert(env.end(), options.extra_env.begin(), options.extra_env.end());
    std::vector<char*> env_pointers;
    for (auto& item : env) {
        env_pointers.push_back(item.data());
    }
    env_pointers.push_back(nullptr);
    std::vector<std::string> args = argv;
    std::vector<char*> arg_pointers;
    for (auto& item : args) {
        arg_pointers.push_back(item.data());
    }
    arg_pointers.push_back(nullptr);

    const int rc = ::posix_spawn(&pid_, arg_pointers[0], &actions, nullptr, arg_pointers.data(), env_pointers.data());
    posix_spawn_file_actions_destroy(&actions);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    out_fd_ = out_pipe[0];
    err_fd_ = err_pipe[0];
    if (rc != 0) {
        pid_ = -1;
        close_fd(out_fd_);
        close_fd(err_fd_);
        throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
    }
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), out_fd_(std::exchange(other.out_fd_, -1)),
      err_fd_(std::exchange(other.err_fd_, -1)), reaped_(other.reaped_), status_(other.status_),
      out_buffer_(std::move(other.out_buffer_))
{
}

ChildProcess::~ChildProcess()
{
    if (pid_ > 0 && !reaped_) {
        ::kill(pid_, SIGKILL);
        reap_blocking();
    }
    close_fd(out_fd_);
    close_fd(err_fd_);
}

void ChildProcess::signal(int signal_number) const
{
    if (pid_ > 0 && !reaped_) {
        ::kill(pid_, signal_number);
    }
}

void ChildProcess::reap_blocking()
{
    while (!reaped_) {
        const pid_t done = ::waitpid(pid_, &status_, 0);
        if (done == pid_ || (done < 0 && errno != EINTR)) {
            reaped_ = true;
        }
    }
}

bool ChildProcess::exited()
{
    if (reaped_) {
        return true;
    }
    const pid_t done = ::waitpid(pid_, &status_, WNOHANG);
    if (done == pid_) {
        reaped_ = true;
    }
    return reaped_;
}

std::string ChildProcess::read_line(std::chrono::milliseconds timeout)
{
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        const auto newline = out_buffer_.find('\n');
        if (newline != std::string::npos) {
            std::string line = out_buffer_.substr(0, newline);
            out_buffer_.erase(0, newline + 1);
            return line;
        }
        if (out_fd_ < 0 || Clock::now() >= deadline) {
            return {};
        }
        pollfd pfd{out_fd_, POLLIN, 0};
        if (::poll(&pfd, 1, remaining_ms(deadline)) > 0 && !drain(out_fd_, out_buffer_)) {
            close_fd(out_fd_);
        }
    }
}

ProcessResult ChildProcess::wait(std::chrono::milliseconds timeout)
{
    ProcessResult result;
    result.out = std::move(out_buffer_);
    out_buffer_.clear();
    auto deadline = Clock::now() + timeout;
    bool killed = false;
    while (out_fd_ >= 0 || err_fd_ >= 0) {
        if (Clock::now() >= deadline) {
            if (killed) {
                break; // a grandchild holds the pipes open: give up on them
            }
            ::kill(pid_, SIGKILL);
            killed = true;
            result.timed_out = true;
            deadline = Clock::now() + 10s;
        }
        pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
        if (::poll(fds, 2, remaining_ms(deadline)) <= 0) {
            continue;
        }
        if (fds[0].revents != 0 && !drain(out_fd_, result.out)) {
            close_fd(out_fd_);
        }
        if (fds[1].revents != 0 && !drain(err_fd_, result.err)) {
            close_fd(err_fd_);
        }
    }
    close_fd(out_fd_);
    close_fd(err_fd_);
    if (!reaped_) {
        // The pipes closed, so the child is exiting; still, never block forever.
        const auto reap_deadline = Clock::now() + 30s;
        while (!exited() && Clock::now() < reap_deadline) {
            std::this_thread::sleep_for(5ms);
        }
        if (!reaped_) {
            ::kill(pid_, SIGKILL);
            result.timed_out = true;
            reap_blocking();
        }
    }
    if (WIFEXITED(status_)) {
        result.exit_code = WEXITSTATUS(status_);
    } else if (WIFSIGNALED(status_)) {
        result.term_signal = WTERMSIG(status_);
    }
    return result;
}

// ---- ServerProcess ----------------------------------------------------------------

ServerProcess::ServerProcess(const std::string& root, const std::string& log_file, std::vector<std::string> extra_args)
    : process_(
          [&] {
              std::vector<std::string> argv{ferryd_path(), "--root", root, "--listen", "127.0.0.1:0"};
              argv.insert(argv.end(), extra_args.begin(), extra_args.end());
              return argv;
          }(),
          ChildProcess::Options{{}, log_file, {}, {}, {}})
{
    const std::string line = process_.read_line(30s);
    constexpr std::string_view kPrefix = "listening on 127.0.0.1:";
    if (line.starts_with(kPrefix)) {
        port_ = static_cast<std::uint16_t>(std::stoul(line.substr(kPrefix.size())));
    }
}

ServerProcess::~ServerProcess()
{
    if (!stopped_) {
        const int code = stop();
        CHECK_MESSAGE(code == 0, "ferryd did not exit cleanly after SIGTERM");
    }
}

int ServerProcess::stop()
{
    if (!stopped_) {
        stopped_ = true;
        process_.signal(SIGTERM);
        const ProcessResult result = process_.wait(90s);
        exit_code_ = result.timed_out ? -1 : result.exit_code;
    }
    return exit_code_;
}

Fixture::Fixture()
    : root(make_folder(dir / "root")), local(make_folder(dir / "local")), log(dir / "server.log"), server(root, log)
{
    REQUIRE_MESSAGE(server.running(), "ferryd did not report its port; see " << log);
}

// ---- ferry --------------------------------------------------------------------------

namespace {

std::vector<std::string> ferry_argv(const std::string& server, const std::vector<std::string>& args)
{
    std::vector<std::string> argv{ferry_path()};
    if (!server.empty()) {
        argv.insert(argv.end(), {"--server", server});
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

} // namespace

ProcessResult run_ferry(const std::string& server, const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout, std::vector<std::string> extra_env)
{
    ChildProcess child(ferry_argv(server, args), ChildProcess::Options{std::move(extra_env), {}, {}, {}, {}});
    auto result = child.wait(timeout);
    CHECK_MESSAGE(!result.timed_out, "ferry timed out");
    return result;
}

ProcessResult run_ferry_with(const std::vector<std::string>& args, const ChildProcess::Options& options,
                             std::chrono::milliseconds timeout)
{
    ChildProcess child(ferry_argv({}, args), options);
    auto result = child.wait(timeout);
    CHECK_MESSAGE(!result.timed_out, "ferry timed out");
    return result;
}

ChildProcess start_ferry(const std::string& server, const std::vector<std::string>& args)
{
    return ChildProcess(ferry_argv(server, args), ChildProcess::Options{});
}

nlohmann::json parse_output(const ProcessResult& result)
{
    INFO("stdout: " << result.out);
    INFO("stderr: " << result.err);
    nlohmann::json value;
    try {
        value = nlohmann::json::parse(result.out);
    } catch (const nlohmann::json::exception& error) {
        FAIL_CHECK("--json output is not JSON: " << error.what());
        return nlohmann::json(nlohmann::json::value_t::discarded);
    }
    CHECK(value.is_object());
    // Exactly one object, on one line.
    CHECK(std::count(result.out.begin(), result.out.end(), '\n') == 1);
    if (value.contains("error")) {
        CHECK(result.exit_code != 0);
        CHECK(value["error"].is_object());
        CHECK(value["error"]["code"].is_string());
        CHECK(value["error"]["message"].is_string());
    } else {
        CHECK(result.exit_code == 0);
    }
    return value;
}

nlohmann::json only_file(const nlohmann::json& output)
{
    if (!output.is_object() || !output.contains("files") || !output["files"].is_array() ||
        output["files"].size() != 1) {
        FAIL_CHECK("not the output of a one-file get or put: " << output.dump());
        return nlohmann::json::object();
    }
    return output["files"][0];
}

std::string error_code(const nlohmann::json& output)
{
    if (!output.is_object() || !output.contains("error") || !output["error"].is_object() ||
        !output["error"].contains("code") || !output["error"]["code"].is_string()) {
        return {};
    }
    return output["error"]["code"].get<std::string>();
}

// ---- Files ----------------------------------------------------------------------------

void write_random_file(const std::string& path, std::uint64_t size, std::uint64_t seed)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE_MESSAGE(fd >= 0, "cannot create " << path);
    std::vector<std::uint8_t> buffer(kChunk);
    std::uint64_t state = seed * 0x9E3779B97F4A7C15ULL + 1;
    std::uint64_t left = size;
    while (left > 0) {
        for (std::size_t i = 0; i < buffer.size(); i += 8) {
            // splitmix64
            std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
            z ^= z >> 31;
            std::memcpy(buffer.data() + i, &z, 8);
        }
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buffer.size()));
        std::size_t done = 0;
        while (done < n) {
            const ssize_t wrote = ::write(fd, buffer.data() + done, n - done);
            REQUIRE(wrote > 0);
            done += static_cast<std::size_t>(wrote);
        }
        left -= n;
    }
    ::close(fd);
}

void write_file(const std::string& path, std::string_view content)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE_MESSAGE(fd >= 0, "cannot create " << path);
    std::size_t done = 0;
    while (done < content.size()) {
        const ssize_t wrote = ::write(fd, content.data() + done, content.size() - done);
        REQUIRE(wrote > 0);
        done += static_cast<std::size_t>(wrote);
    }
    ::close(fd);
}

std::string read_file(const std::string& path)
{
    std::string content;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return content;
    }
    while (drain(fd, content)) {
    }
    ::close(fd);
    return content;
}

std::string sha256_of_file(const std::string& path)
{
    ferry::Sha256 hash;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return {};
    }
    std::vector<std::uint8_t> buffer(kChunk);
    for (;;) {
        const ssize_t got = ::read(fd, buffer.data(), buffer.size());
        if (got <= 0) {
            break;
        }
        hash.update(buffer.data(), static_cast<std::size_t>(got));
    }
    ::close(fd);
    return hash.hex_digest();
}

bool files_equal(const std::string& a, const std::string& b)
{
    if (!exists(a) || !exists(b) || file_size(a) != file_size(b)) {
        return false;
    }
    const int fa = ::open(a.c_str(), O_RDONLY | O_CLOEXEC);
    const int fb = ::open(b.c_str(), O_RDONLY | O_CLOEXEC);
    bool same = fa >= 0 && fb >= 0;
    std::vector<char> ba(kChunk);
    std::vector<char> bb(kChunk);
    std::uint64_t offset = 0;
    while (same) {
        const ssize_t ga = ::pread(fa, ba.data(), ba.size(), static_cast<off_t>(offset));
        const ssize_t gb = ::pread(fb, bb.data(), bb.size(), static_cast<off_t>(offset));
        if (ga != gb || ga < 0) {
            same = false;
        } else if (ga == 0) {
            break;
        } else {
            same = std::memcmp(ba.data(), bb.data(), static_cast<std::size_t>(ga)) == 0;
            offset += static_cast<std::uint64_t>(ga);
        }
    }
    if (fa >= 0) {
        ::close(fa);
    }
    if (fb >= 0) {
        ::close(fb);
    }
    return same;
}

bool exists(const std::string& path)
{
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

std::uint64_t file_size(const std::string& path)
{
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

std::vector<std::string> folder_entries(const std::string& path)
{
    std::vector<std::string> names;
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) {
        return names;
    }
    while (const dirent* entry = ::readdir(dir)) {
        const std::string name = entry->d_name;
        if (name != "." && name != "..") {
            names.push_back(name);
        }
    }
    ::closedir(dir);
    std::sort(names.begin(), names.end());
    return names;
}

std::vector<std::string> partial_uploads(const std::string& root)
{
    std::vector<std::string> partials;
    for (const auto& name : folder_entries(root)) {
        if (name.starts_with(".ferry-partial-")) {
            partials.push_back(name);
        }
    }
    return partials;
}

} // namespace ferry::test
