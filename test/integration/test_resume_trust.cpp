// What a resumed download may build on. A checkpoint vouches for the bytes
// that arrived, not for what a trailer would have confirmed: ferryd pads
// with zeros the frames of a file that shrank under sendfile before it says
// file_changed (PROTOCOL.md 4.4), and a connection cut between the two
// leaves a part whose checkpoint covers those zeros. A scripted server on
// loopback plays that cut; the resume then goes to a real ferryd.
#include "raw_frames.hpp"
#include "support.hpp"

#include "connection.hpp"
#include "frame.hpp"
#include "local_files.hpp"
#include "messages.hpp"
#include "operations.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

using namespace ferry::test;
using ferry::ErrorCode;
using ferry::client::Connection;
using ferry::client::Endpoint;

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

// One connection: hello (version 2), then a get of `content` announced
// with `mtime`, answered with its first `genuine` bytes and then `zeros`
// zero bytes in 256 KiB frames, and then the connection is cut, where
// ferryd would have sent file_changed.
class PaddingServer {
public:
    PaddingServer(std::string content, std::int64_t mtime, std::uint64_t genuine, std::uint64_t zeros)
        : content_(std::move(content)), mtime_(mtime), genuine_(genuine), zeros_(zeros)
    {
        listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(listener_ >= 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
        REQUIRE(::listen(listener_, 1) == 0);
        socklen_t length = sizeof address;
        REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) == 0);
        port_ = ntohs(address.sin_port);
        thread_ = std::thread([this] { serve(); });
    }
    PaddingServer(const PaddingServer&) = delete;
    PaddingServer& operator=(const PaddingServer&) = delete;
    ~PaddingServer()
    {
        ::shutdown(listener_, SHUT_RDWR); // unblocks an accept() still waiting
        if (thread_.joinable()) {
            thread_.join();
        }
        ::close(listener_);
    }

    Endpoint endpoint() const { return Endpoint{"127.0.0.1", port_}; }

private:
    void serve()
    {
        const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        answer(fd);
        ::shutdown(fd, SHUT_WR); // the cut: no trailer, no file_changed
        char drain[256];
        while (::recv(fd, drain, sizeof drain, 0) > 0) {
        }
        ::close(fd);
    }

    void answer(int fd)
    {
        const auto hello = ferry::parse_request(read_control(fd));
        if (!hello.request.ok()) {
            return;
        }
        ferry::HelloReply reply;
        reply.version = 2;
        reply.server = "padding";
        reply.capabilities = {"list", "stat", "get", "put", "resume", "stats"};
        reply.hashes = {"sha256"};
        reply.max_control_frame = 65536;
        reply.max_data_frame = 16777216;
        std::string frame = ferry::encode_control_frame(ferry::encode_reply(hello.request->id, reply));
        if (!send_all(fd, frame.data(), frame.size())) {
            return;
        }
        const auto get = ferry::parse_request(read_control(fd));
        if (!get.request.ok() || !std::holds_alternative<ferry::GetRequest>(get.request->body)) {
            return;
        }
        const auto& asked = std::get<ferry::GetRequest>(get.request->body);
        ferry::GetReply got;
        got.file = ferry::FileInfo{asked.name, content_.size(), mtime_, ferry::EntryType::file};
        got.offset = 0;
        frame = ferry::encode_control_frame(ferry::encode_reply(get.request->id, got));
        if (!send_all(fd, frame.data(), frame.size())) {
            return;
        }
        std::string bytes = content_.substr(0, genuine_) + std::string(zeros_, '\0');
        for (std::size_t at = 0; at < bytes.size(); at += ferry::kPreferredDataChunk) {
            const std::size_t n = std::min<std::size_t>(ferry::kPreferredDataChunk, bytes.size() - at);
            const auto header = ferry::encode_frame_header(ferry::FrameKind::data, static_cast<std::uint32_t>(n));
            if (!send_all(fd, reinterpret_cast<const char*>(header.data()), header.size()) ||
                !send_all(fd, bytes.data() + at, n)) {
                return;
            }
        }
    }

    std::string content_;
    std::int64_t mtime_;
    std::uint64_t genuine_;
    std::uint64_t zeros_;
    int listener_ = -1;
    std::uint16_t port_ = 0;
    std::thread thread_;
};

// A get of `name` into `dest` from the padding server: cut after the
// zeros, it leaves a part and a sidecar whose checkpoint covers them.
void get_padded(const std::string& name, const std::string& dest, const std::string& content, std::int64_t mtime,
                std::uint64_t genuine, std::uint64_t zeros)
{
    PaddingServer padding(content, mtime, genuine, zeros);
    auto connection = Connection::open(padding.endpoint());
    REQUIRE_MESSAGE(connection.ok(), (connection.ok() ? "" : connection.error().message));
    ferry::client::GetOptions options;
    options.name = name;
    options.dest = dest;
    options.resume = true;
    options.checkpoint_interval = kMiB;
    const auto got = ferry::client::get_file(connection.value(), options);
    REQUIRE_FALSE(got.ok());
    CHECK(got.error().code == ErrorCode::connection_lost);
    const auto state = ferry::client::read_download_state(ferry::client::state_path(dest));
    REQUIRE(state.ok());
    CHECK(state->bytes_held == genuine + zeros); // the zeros are vouched for
    CHECK(state->remote_size == content.size());
    CHECK(state->remote_mtime == mtime);
}

bool has_zero_run(const std::string& data, std::size_t length)
{
    return data.find(std::string(length, '\0')) != std::string::npos;
}

} // namespace

TEST_CASE("a resume built on a cut transfer's zero padding never publishes the zeros, and starts over cleanly")
{
    Fixture f;
    const std::string remote = f.root_file("data.bin");
    const std::uint64_t size = 4 * kMiB + 17;
    write_random_file(remote, size, 41);
    const std::string content = read_file(remote);
    REQUIRE_FALSE(has_zero_run(content, 4096));
    struct stat st {};
    REQUIRE(::stat(remote.c_str(), &st) == 0);
    const std::string dest = f.local_file("data.bin");
    const std::string part = ferry::client::part_path(dest);
    const std::string state = ferry::client::state_path(dest);

    // The file is back at the size and mtime the sidecar recorded (the
    // shrink undone, its time put back): the get reply matches, only the
    // whole file's hash can tell. The resume is refuted, and the same get
    // downloads the file again from its start: no error, no loop.
    get_padded("data.bin", dest, content, st.st_mtime, 2 * kMiB, kMiB);
    auto get = run_ferry(f.server.address(), {"--json", "get", "data.bin", "-o", dest});
    auto json = only_file(parse_output(get));
    REQUIRE_MESSAGE(get.exit_code == 0, (get.out + get.err));
    CHECK(json["resumed_from"] == 0);
    CHECK(json["digest"]["value"] == sha256_of_file(remote));
    CHECK(files_equal(remote, dest));
    CHECK_FALSE(has_zero_run(read_file(dest), 4096));
    CHECK_FALSE(exists(part));
    CHECK_FALSE(exists(state));

    // The usual case: the file stays shrunk. The reply's size tells at once.
    REQUIRE(::unlink(dest.c_str()) == 0);
    get_padded("data.bin", dest, content, st.st_mtime, 2 * kMiB, kMiB);
    REQUIRE(::truncate(remote.c_str(), static_cast<off_t>(2 * kMiB + 5)) == 0);
    get = run_ferry(f.server.address(), {"--json", "get", "data.bin", "-o", dest});
    json = only_file(parse_output(get));
    REQUIRE_MESSAGE(get.exit_code == 0, (get.out + get.err));
    CHECK(json["resumed_from"] == 0);
    CHECK(files_equal(remote, dest));
    CHECK_FALSE(exists(part));
    CHECK_FALSE(exists(state));

    // Shrunk below what the part holds: bad_offset, then from the start.
    REQUIRE(::unlink(dest.c_str()) == 0);
    write_random_file(remote, size, 41);
    get_padded("data.bin", dest, content, st.st_mtime, 2 * kMiB, kMiB);
    REQUIRE(::truncate(remote.c_str(), static_cast<off_t>(kMiB)) == 0);
    get = run_ferry(f.server.address(), {"--json", "get", "data.bin", "-o", dest});
    json = only_file(parse_output(get));
    REQUIRE_MESSAGE(get.exit_code == 0, (get.out + get.err));
    CHECK(json["resumed_from"] == 0);
    CHECK(files_equal(remote, dest));
}

TEST_CASE("sync's pull, too, starts a refuted resume over and never publishes the zeros")
{
    Fixture f;
    const std::string remote = f.root_file("tree/data.bin");
    REQUIRE(::mkdir(f.root_file("tree").c_str(), 0755) == 0);
    const std::uint64_t size = 3 * kMiB + 9;
    write_random_file(remote, size, 42);
    const std::string content = read_file(remote);
    struct stat st {};
    REQUIRE(::stat(remote.c_str(), &st) == 0);
    const std::string copy = f.local_file("copy");
    REQUIRE(::mkdir(copy.c_str(), 0755) == 0);
    const std::string dest = copy + "/data.bin";
    get_padded("tree/data.bin", dest, content, st.st_mtime, kMiB, kMiB);

    const auto sync = run_ferry(f.server.address(), {"--json", "sync", ":tree", copy});
    const auto json = parse_output(sync);
    REQUIRE_MESSAGE(sync.exit_code == 0, (sync.out + sync.err));
    CHECK(json["sync"]["sent"] == 1);
    CHECK(files_equal(remote, dest));
    CHECK(folder_entries(copy) == std::vector<std::string>{"data.bin"});
}

TEST_CASE("a link at the sidecar's temporary name is neither followed nor written through")
{
    Fixture f;
    write_random_file(f.root_file("big.bin"), 3 * kMiB, 43);
    const std::string dest = f.local_file("big.bin");
    const std::string victim = f.dir / "victim";
    write_file(victim, "ORIGINAL");
    const std::string temporary = ferry::client::state_path(dest) + ".tmp";
    REQUIRE(::symlink(victim.c_str(), temporary.c_str()) == 0);

    auto connection = Connection::open(Endpoint{"127.0.0.1", f.server.port()});
    REQUIRE(connection.ok());
    ferry::client::GetOptions options;
    options.name = "big.bin";
    options.dest = dest;
    options.stop_after = 2 * kMiB;
    options.checkpoint_interval = kMiB;
    const auto result = ferry::client::get_file(connection.value(), options);
    REQUIRE_FALSE(result.ok());
    CHECK(result.error().code == ErrorCode::aborted);
    CHECK(read_file(victim) == "ORIGINAL");
    const auto state = ferry::client::read_download_state(ferry::client::state_path(dest));
    REQUIRE(state.ok());
    CHECK(state->bytes_held == 2 * kMiB);

    // And a link standing at the sidecar's own name is no sidecar: the get
    // is refused before anything is sent, the link neither followed nor
    // removed; once it is gone, the get starts over.
    REQUIRE(::unlink(ferry::client::state_path(dest).c_str()) == 0);
    REQUIRE(::symlink(victim.c_str(), ferry::client::state_path(dest).c_str()) == 0);
    auto get = run_ferry(f.server.address(), {"--json", "get", "big.bin", "-o", dest});
    CHECK(get.exit_code == 3);
    CHECK(error_code(parse_output(get)) == "local_io");
    struct stat link {};
    REQUIRE(::lstat(ferry::client::state_path(dest).c_str(), &link) == 0);
    CHECK(S_ISLNK(link.st_mode));
    CHECK(read_file(victim) == "ORIGINAL");
    REQUIRE(::unlink(ferry::client::state_path(dest).c_str()) == 0);
    get = run_ferry(f.server.address(), {"--json", "get", "big.bin", "-o", dest});
    const auto json = only_file(parse_output(get));
    REQUIRE_MESSAGE(get.exit_code == 0, (get.out + get.err));
    CHECK(json["resumed_from"] == 0);
    CHECK(files_equal(f.root_file("big.bin"), dest));
    CHECK(read_file(victim) == "ORIGINAL");
}
