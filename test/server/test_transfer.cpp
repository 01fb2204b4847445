// Download and Upload alone, with a fake host in place of the Session: each
// owns its start, progress and finish, and ends in exactly one transfer line.
#include "download.hpp"
#include "log.hpp"
#include "session_fixture.hpp"
#include "upload.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <chrono>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

using namespace ferry;
using namespace ferry::server;
using namespace ferry::server::session_test;

namespace {

// What a Session gives a transfer, recorded; the transfer itself lives in
// `transfer`, which transfer_ended() empties as the Session does.
class FakeHost final : public TransferHost {
public:
    explicit FakeHost(FakeIo& io) : io_(io) {}

    void submit(std::unique_ptr<PoolJob> job) override
    {
        in_flight = true;
        io_.submit(std::move(job));
    }
    bool job_in_flight() const override { return in_flight; }
    std::uint32_t protocol_version() const override { return kMaxProtocolVersion; }
    void send_json(std::string json_text) override { io_.send(encode_control_frame(json_text)); }
    void send_error(std::optional<std::uint64_t> id, const Error& error) override
    {
        errors.push_back(error.code);
        send_json(encode_error(id, error));
    }
    void input_room() override { ++rooms; }
    void end_connection() override { ended_connection = true; }
    bool closing() const override { return ended_connection; }
    void release_slot() override { ++slots_released; }
    void defer_folder_sync(PendingFolderSync pending) override { deferred.push_back(std::move(pending)); }
    void transfer_ended() override
    {
        ++endings;
        transfer.emplace<std::monostate>();
    }

    // Runs the queued jobs as the IO would, the host's flag following.
    void run_jobs()
    {
        while (!io_.jobs.empty()) {
            auto job = std::move(io_.jobs.front());
            io_.jobs.pop_front();
            job->work();
            in_flight = false;
            job->done();
        }
    }

    std::variant<std::monostate, Download, Upload> transfer;
    bool in_flight = false;
    std::vector<ErrorCode> errors;
    int rooms = 0;
    int endings = 0;
    int slots_released = 0;
    std::vector<PendingFolderSync> deferred;
    bool ended_connection = false;

private:
    FakeIo& io_;
};

// The log's transfer lines while alive (JSON, one per line).
class LogCapture {
public:
    LogCapture() : root_(), path_(root_.path() + "/log") { REQUIRE_FALSE(configure_log(LogFormat::json, path_).has_value()); }
    ~LogCapture() { configure_log(LogFormat::text, ""); }

    std::vector<std::string> transfers() const
    {
        std::ifstream in(path_);
        std::vector<std::string> lines;
        for (std::string line; std::getline(in, line);) {
            if (line.find("\"event\":\"transfer\"") != std::string::npos) {
                lines.push_back(line);
            }
        }
        return lines;
    }

private:
    TempRoot root_;
    std::string path_;
};

struct Parts {
    Parts() : library(std::move(Library::open(root.path()).value())), host(io) {}

    Download& download(const std::string& name, std::uint64_t offset = 0)
    {
        auto opened = Download::open(*library, name, HashKind::sha256, offset, Download::FirstRange{});
        REQUIRE(opened.file);
        return host.transfer.emplace<Download>(static_cast<TransferHost&>(host), io, *library, config, counters,
                                               "alice", 7, HashKind::sha256, std::move(opened), offset);
    }

    Upload& upload(const std::string& name, std::uint64_t size)
    {
        PutRequest put;
        put.name = name;
        put.size = size;
        auto begun = Upload::begin(*library, put, kAnonymousOwner);
        REQUIRE(begun.partial);
        return host.transfer.emplace<Upload>(static_cast<TransferHost&>(host), io, config, counters, "", 9, put,
                                             std::move(begun));
    }

    TempRoot root;
    Config config;
    Counters counters;
    FakeIo io;
    std::unique_ptr<Library> library;
    FakeHost host;
};

} // namespace

TEST_CASE("a get from the file's end takes no digest remembered at publish, which no byte it sends checks")
{
    // A published upload's digest is kept for downloads only (digest_cache.hpp):
    // their clients check every byte against it. A get from the end sends
    // none (a version-1 client's digest request): settled entries only.
    Parts parts;
    const std::string path = parts.root.path() + "/up.txt";
    {
        std::ofstream(path) << "uploaded";
    }
    const struct timespec old_times[2] = {{0, UTIME_OMIT}, {1'000'000'000, 0}}; // the sender's older mtime
    REQUIRE(::utimensat(AT_FDCWD, path.c_str(), old_times, 0) == 0);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    parts.library->digests().remember_published(FileIdentity::of(st), HashKind::sha256, "remembered at publish");
    const auto from = [&](std::uint64_t offset) {
        auto opened = Download::open(*parts.library, "up.txt", HashKind::sha256, offset, Download::FirstRange{});
        REQUIRE(opened.file);
        return opened.cached_digest;
    };
    CHECK(from(0) == std::optional<std::string>("remembered at publish"));
    CHECK(from(3) == std::optional<std::string>("remembered at publish"));
    CHECK_FALSE(from(8).has_value());
    parts.library->digests().remember(FileIdentity::of(st), HashKind::sha256, "settled",
                                      std::chrono::system_clock::now() + std::chrono::seconds(5));
    CHECK(from(8) == std::optional<std::string>("settled"));
}

TEST_CASE("a download sends its reply, its chunks and its trailer, then ends once")
{
    LogCapture log;
    Parts parts;
    parts.config.chunk_size = 4;
    parts.root.write("f.txt", "0123456789");
    parts.download("f.txt", 3).begin();
    parts.host.run_jobs();
    const Sent sent = parts.io.drain();
    REQUIRE(sent.controls.size() == 2);
    CHECK(parse_get_reply(sent.controls[0])->body.offset == 3);
    CHECK(sent.data == "3456789");
    const auto trailer = parse_trailer(sent.controls[1]);
    REQUIRE(trailer);
    CHECK(trailer->body.digest == sha256_of("0123456789"));
    CHECK(parts.host.endings == 1);
    CHECK(std::holds_alternative<std::monostate>(parts.host.transfer));
    const auto lines = log.transfers();
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("\"result\":\"ok\"") != std::string::npos);
    CHECK(lines[0].find("\"token\":\"alice\"") != std::string::npos);
    CHECK(lines[0].find("\"bytes\":7") != std::string::npos);
}

TEST_CASE("a download dropped midway writes one interrupted line, with the bytes the socket took")
{
    LogCapture log;
    Parts parts;
    parts.config.chunk_size = 4;
    parts.config.send_high_water = 1; // one chunk at a time
    parts.io.hold_writes = true;
    parts.root.write("f.txt", std::string(100, 'x'));
    Download& download = parts.download("f.txt");
    download.begin(); // the reply waits in the socket: nothing is read
    CHECK(parts.io.jobs.empty());
    for (int chunk = 0; chunk < 2; ++chunk) {
        parts.io.unsent = 0; // the socket took everything
        download.continue_sending();
        parts.host.run_jobs();
    }
    parts.io.unsent = 4; // of the second chunk's frame, 4 bytes are still ours
    SUBCASE("cut by the session, saying why")
    {
        std::get<Download>(parts.host.transfer).interrupt("the peer closed the connection");
    }
    SUBCASE("dropped without a word (a forced close)") {}
    parts.host.transfer.emplace<std::monostate>();
    const auto lines = log.transfers();
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("\"result\":\"interrupted\"") != std::string::npos);
    CHECK(lines[0].find("\"bytes\":4") != std::string::npos); // 8 read, 4 never left
    CHECK(parts.host.endings == 0);
}

TEST_CASE("an upload writes what arrives, commits once, and ends once")
{
    LogCapture log;
    Parts parts;
    Upload& upload = parts.upload("u.txt", 6);
    upload.send_reply();
    CHECK(parse_put_reply(parts.io.replies(1)[0])->body.offset == 0);
    CHECK_FALSE(upload.take_data(std::span(reinterpret_cast<const std::uint8_t*>("abc"), 3), 3));
    CHECK(upload.can_take_data());
    parts.host.run_jobs();
    CHECK_FALSE(upload.take_data(std::span(reinterpret_cast<const std::uint8_t*>("def"), 3), 3));
    // The bytes that complete the file wait for the commit, whose job writes them.
    CHECK(parts.io.jobs.empty());
    upload.commit(sha256_of("abcdef"));
    parts.host.run_jobs();
    CHECK(parts.root.read("u.txt") == "abcdef");
    CHECK(parse_commit_reply(parts.io.replies(1)[0]));
    CHECK(parts.host.endings == 1);
    const auto lines = log.transfers();
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("\"result\":\"ok\"") != std::string::npos);
    CHECK(lines[0].find("\"token\"") == std::string::npos); // a token without a label
}

TEST_CASE("an upload sent too much: one size_mismatch line, kept for resume, nothing more")
{
    LogCapture log;
    Parts parts;
    Upload& upload = parts.upload("u.txt", 2);
    // The first byte of a 3-byte frame would fit, yet the frame is refused
    // whole at that first piece.
    auto error = upload.take_data(std::span(reinterpret_cast<const std::uint8_t*>("a"), 1), 3);
    REQUIRE(error);
    CHECK(error->code == ErrorCode::size_mismatch);
    upload.keep("the connection closes");
    REQUIRE(upload.has_work());
    upload.continue_receiving();
    parts.host.run_jobs();
    CHECK(parts.host.endings == 1);
    // The kept data file; no byte arrived, so no state records any (a
    // resume starts at 0 either way).
    CHECK(parts.root.hidden_entries() == 1);
    const auto lines = log.transfers();
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("\"result\":\"size_mismatch\"") != std::string::npos);
}
