// A file under a download's part name (NAME.ferry-part) is ferry's only if
// ferry made it: marked at its creation (the user.ferry.part extended
// attribute) or, where the file system keeps no such attribute, named by a
// sidecar written before its first byte. Anything else there is the
// user's own file: every download path (get, get -r, sync's pull) leaves it
// byte for byte and fails that file with a refusal that says what to do.
// A part ferry made keeps today's contract: killed (SIGKILL, before or
// after its first checkpoint), it is resumed or restarted by the next get.
// The kills are made deterministic by a scripted server that sends part of
// a file and then holds the connection open.
#include "raw_frames.hpp"
#include "support.hpp"

#include "connection.hpp"
#include "frame.hpp"
#include "local_files.hpp"
#include "messages.hpp"
#include "operations.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <functional>
#include <thread>

using namespace ferry::test;
using ferry::client::Connection;
using ferry::client::Endpoint;

namespace {

constexpr std::uint64_t kMiB = 1024 * 1024;

// One connection: hello, then a get of `content` (announced with `mtime`)
// answered with its first `sent` bytes; then the connection is held open,
// silent, until the client goes away (is killed).
class StallingServer {
public:
    StallingServer(const std::string& content, std::int64_t mtime, std::uint64_t sent)
        : content_(content), mtime_(mtime), sent_(sent)
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
    StallingServer(const StallingServer&) = delete;
    StallingServer& operator=(const StallingServer&) = delete;
    ~StallingServer()
    {
        ::shutdown(listener_, SHUT_RDWR); // unblocks an accept() still waiting
        if (thread_.joinable()) {
            thread_.join();
        }
        ::close(listener_);
    }

    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

private:
    void serve()
    {
        const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            return;
        }
        answer(fd);
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
        reply.server = "stalling";
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
        for (std::size_t at = 0; at < sent_; at += ferry::kPreferredDataChunk) {
            const std::size_t n = std::min<std::size_t>(ferry::kPreferredDataChunk, sent_ - at);
            const auto header = ferry::encode_frame_header(ferry::FrameKind::data, static_cast<std::uint32_t>(n));
            if (!send_all(fd, reinterpret_cast<const char*>(header.data()), header.size()) ||
                !send_all(fd, content_.data() + at, n)) {
                return;
            }
        }
    }

    const std::string& content_;
    std::int64_t mtime_;
    std::uint64_t sent_;
    int listener_ = -1;
    std::uint16_t port_ = 0;
    std::thread thread_;
};

std::uint64_t size_or_zero(const std::string& path)
{
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

// `ferry get NAME -o DEST` from a server that stops sending after `sent`
// bytes, killed with SIGKILL once the part holds some of them (the last
// ones may wait in a block that is not full yet) and, with `checkpointed`,
// once a sidecar vouches for some of them.
void killed_get(const std::string& content, std::int64_t mtime, std::uint64_t sent, const std::string& name,
                const std::string& dest, bool checkpointed)
{
    StallingServer stalling(content, mtime, sent);
    auto client = start_ferry(stalling.address(), {"--json", "get", name, "-o", dest});
    const std::string part = ferry::client::part_path(dest);
    const std::string state = ferry::client::state_path(dest);
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    bool reached = false;
    while (!reached && !client.exited() && std::chrono::steady_clock::now() < deadline) {
        reached = size_or_zero(part) > 0 && (!checkpointed || exists(state));
        if (!reached) {
            std::this_thread::sleep_for(2ms);
        }
    }
    client.signal(SIGKILL);
    const auto killed = client.wait(60s);
    REQUIRE_MESSAGE(reached, "the part never held the bytes (or the get ended first): " << size_or_zero(part) << " bytes; " << killed.out
                                                                                             << killed.err);
    CHECK(killed.term_signal == SIGKILL);
    REQUIRE(exists(part));
}

bool has_mark(const std::string& path)
{
    char value[16];
    return ::getxattr(path.c_str(), "user.ferry.part", value, sizeof value) >= 0;
}

std::int64_t mtime_of(const std::string& path)
{
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mtim.tv_sec;
}

void check_refusal(const ProcessResult& result, const std::string& part)
{
    CAPTURE(result.out);
    CAPTURE(result.err);
    CHECK(result.exit_code == 3); // a local refusal (README "Exit status")
    const std::string said = result.out + result.err;
    // The part's name in quotes, raw on the terminal, escaped in JSON.
    const std::string told = "the name this download's partial file goes by, is a file ferry did not make";
    const bool named = said.find(part + "\", " + told) != std::string::npos ||
                       said.find(part + "\\\", " + told) != std::string::npos;
    CHECK(named);
    CHECK(said.find("move it away") != std::string::npos);
}

// ramfs keeps no user extended attributes (setxattr says EOPNOTSUPP);
// mounted for the test, detached on the way out.
class RamfsMount {
public:
    explicit RamfsMount(std::string path) : path_(std::move(path))
    {
        REQUIRE(::mkdir(path_.c_str(), 0755) == 0);
        mounted_ = ::mount("ferry-test", path_.c_str(), "ramfs", 0, "mode=0755") == 0;
    }
    ~RamfsMount()
    {
        if (mounted_) {
            ::umount2(path_.c_str(), MNT_DETACH);
        }
    }
    RamfsMount(const RamfsMount&) = delete;
    RamfsMount& operator=(const RamfsMount&) = delete;
    bool mounted() const { return mounted_; }

private:
    std::string path_;
    bool mounted_ = false;
};

} // namespace

TEST_CASE("a user's own file under a part's name survives get, get -r and sync's pull, byte for byte")
{
    Fixture f;
    REQUIRE(::mkdir((f.root + "/tree").c_str(), 0755) == 0);
    write_random_file(f.root_file("tree/x.bin"), 2 * kMiB + 3, 41);
    write_file(f.root_file("tree/y.bin"), "why\n");
    write_random_file(f.root_file("x.bin"), 2 * kMiB + 3, 41);
    // The server's first MiB and then the user's own lines: a part whose
    // beginning hashes right, so only who made it can tell.
    const std::string mine = read_file(f.root_file("x.bin")).substr(0, kMiB) + "\nmy own notes\n";

    const std::string single = f.local_file("x.bin");
    const std::string copy = f.local + "/copy";
    const std::string in_tree = copy + "/tree/x.bin";
    const std::string pulled = f.local + "/pulled";
    const std::string in_pull = pulled + "/x.bin";
    REQUIRE(::mkdir(copy.c_str(), 0755) == 0);
    REQUIRE(::mkdir((copy + "/tree").c_str(), 0755) == 0);
    REQUIRE(::mkdir(pulled.c_str(), 0755) == 0);
    const std::vector<std::string> dests{single, in_tree, in_pull};

    // Plants the user's file under each destination's part name.
    std::function<void(const std::string&)> plant = [&](const std::string& dest) {
        write_file(ferry::client::part_path(dest), mine);
    };
    SUBCASE("alone")
    {
    }
    SUBCASE("beside a sidecar that a download of ferry's left for another file there")
    {
        // A real interrupted download (marked part, sidecar vouching for a
        // MiB), whose part was then removed and replaced by the user's
        // file: the sidecar names a file that is gone (or whose inode
        // number the user's file took, born later).
        plant = [&](const std::string& dest) {
            auto connection = Connection::open(Endpoint{"127.0.0.1", f.server.port()});
            REQUIRE(connection.ok());
            ferry::client::GetOptions options;
            options.name = "x.bin";
            options.dest = dest;
            options.stop_after = kMiB;
            REQUIRE_FALSE(ferry::client::get_file(connection.value(), options).ok());
            REQUIRE(ferry::client::read_download_state(ferry::client::state_path(dest)).ok());
            REQUIRE(::unlink(ferry::client::part_path(dest).c_str()) == 0);
            write_file(ferry::client::part_path(dest), mine);
        };
    }
    SUBCASE("beside a sidecar copied from another download")
    {
        const std::string other = f.local_file("other.bin");
        auto connection = Connection::open(Endpoint{"127.0.0.1", f.server.port()});
        REQUIRE(connection.ok());
        ferry::client::GetOptions options;
        options.name = "x.bin";
        options.dest = other;
        options.stop_after = kMiB;
        REQUIRE_FALSE(ferry::client::get_file(connection.value(), options).ok());
        const std::string sidecar = read_file(ferry::client::state_path(other));
        plant = [&, sidecar](const std::string& dest) {
            write_file(ferry::client::part_path(dest), mine);
            write_file(ferry::client::state_path(dest), sidecar);
            REQUIRE(::chmod(ferry::client::state_path(dest).c_str(), 0600) == 0);
        };
    }
    for (const auto& dest : dests) {
        plant(dest);
    }

    for (const std::vector<std::string>& flags : {std::vector<std::string>{}, {"--resume"}, {"--no-resume"}}) {
        std::vector<std::string> args{"--json", "get"};
        args.insert(args.end(), flags.begin(), flags.end());
        args.insert(args.end(), {"x.bin", "-o", single});
        const auto get = run_ferry(f.server.address(), args);
        check_refusal(get, ferry::client::part_path(single));
        CHECK(error_code(parse_output(get)) == "local_io");
        CHECK(read_file(ferry::client::part_path(single)) == mine);
        CHECK_FALSE(exists(single));
    }

    const auto tree = run_ferry(f.server.address(), {"--json", "get", "-r", "tree", "-C", copy});
    check_refusal(tree, ferry::client::part_path(in_tree));
    CHECK(read_file(ferry::client::part_path(in_tree)) == mine);
    CHECK_FALSE(exists(in_tree));
    CHECK(read_file(copy + "/tree/y.bin") == "why\n"); // the other file is not held up

    const auto sync = run_ferry(f.server.address(), {"sync", ":tree", pulled});
    check_refusal(sync, ferry::client::part_path(in_pull));
    CHECK(read_file(ferry::client::part_path(in_pull)) == mine);
    CHECK_FALSE(exists(in_pull));
    CHECK(read_file(pulled + "/y.bin") == "why\n");

    // Moved away as the message says, the file downloads.
    REQUIRE(::rename(ferry::client::part_path(single).c_str(), f.local_file("mine.txt").c_str()) == 0);
    const auto again = run_ferry(f.server.address(), {"--json", "get", "x.bin", "-o", single});
    REQUIRE_MESSAGE(again.exit_code == 0, again.out);
    CHECK(files_equal(f.root_file("x.bin"), single));
    CHECK(read_file(f.local_file("mine.txt")) == mine);
    CHECK_FALSE(has_mark(single));
    CHECK_FALSE(has_mark(copy + "/tree/y.bin")); // published by a batch
}

TEST_CASE("a part ferry made is marked, and once killed (before or after a checkpoint) the next get restarts or "
          "resumes it")
{
    Fixture f;
    // More than one checkpoint interval (64 MiB), so that one can be passed.
    const std::uint64_t size = ferry::client::kDownloadCheckpointInterval + 3 * kMiB + 5;
    write_random_file(f.root_file("big.bin"), size, 42);
    const std::string content = read_file(f.root_file("big.bin"));
    const std::int64_t mtime = mtime_of(f.root_file("big.bin"));
    const std::string dest = f.local_file("big.bin");
    const std::string part = ferry::client::part_path(dest);
    const std::string state = ferry::client::state_path(dest);

    std::uint64_t resumed_from = 0;
    SUBCASE("killed before its first checkpoint: no sidecar, the mark alone says it is ferry's")
    {
        killed_get(content, mtime, 2 * kMiB, "big.bin", dest, false);
        CHECK_FALSE(exists(state));
        CHECK(has_mark(part));
    }
    SUBCASE("killed after a checkpoint")
    {
        killed_get(content, mtime, ferry::client::kDownloadCheckpointInterval + kMiB, "big.bin", dest, true);
        CHECK(has_mark(part));
        const auto recorded = ferry::client::read_download_state(state);
        REQUIRE(recorded.ok());
        resumed_from = recorded->bytes_held;
        CHECK(resumed_from >= ferry::client::kDownloadCheckpointInterval);
    }

    const auto get = run_ferry(f.server.address(), {"--json", "get", "big.bin", "-o", dest});
    REQUIRE_MESSAGE(get.exit_code == 0, get.out);
    CHECK(only_file(parse_output(get))["resumed_from"] == resumed_from);
    CHECK(files_equal(f.root_file("big.bin"), dest));
    CHECK_FALSE(has_mark(dest)); // taken off before the publish
    CHECK_FALSE(exists(part));
    CHECK_FALSE(exists(state));
}

TEST_CASE("where the file system keeps no mark (ramfs), a sidecar written at the part's creation names it")
{
    Fixture f;
    RamfsMount ramfs(f.dir / "ramfs");
    if (!ramfs.mounted()) {
        MESSAGE("ramfs cannot be mounted here (not root, or no CAP_SYS_ADMIN): the fallback is not exercised");
        return;
    }
    const std::string local = f.dir / "ramfs";
    REQUIRE(::setxattr(local.c_str(), "user.ferry.probe", "1", 1, 0) != 0); // really keeps none
    write_random_file(f.root_file("big.bin"), 5 * kMiB + 1, 43);
    const std::string content = read_file(f.root_file("big.bin"));
    const std::int64_t mtime = mtime_of(f.root_file("big.bin"));
    const std::string dest = local + "/big.bin";
    const std::string part = ferry::client::part_path(dest);
    const std::string state = ferry::client::state_path(dest);

    // Killed before its first checkpoint: the creation's sidecar names it.
    killed_get(content, mtime, 2 * kMiB, "big.bin", dest, false);
    const auto recorded = ferry::client::read_download_state(state);
    REQUIRE(recorded.ok());
    CHECK(recorded->bytes_held == 0);
    struct stat st {};
    REQUIRE(::stat(part.c_str(), &st) == 0);
    CHECK(recorded->part.inode == static_cast<std::uint64_t>(st.st_ino));
    auto get = run_ferry(f.server.address(), {"--json", "get", "big.bin", "-o", dest});
    REQUIRE_MESSAGE(get.exit_code == 0, get.out);
    CHECK(files_equal(f.root_file("big.bin"), dest));
    CHECK_FALSE(exists(part));
    CHECK_FALSE(exists(state));

    // The user's own file there is still not ferry's.
    REQUIRE(::unlink(dest.c_str()) == 0);
    write_file(part, "mine\n");
    get = run_ferry(f.server.address(), {"--json", "get", "big.bin", "-o", dest});
    check_refusal(get, part);
    CHECK(read_file(part) == "mine\n");
    CHECK_FALSE(exists(dest));
}
