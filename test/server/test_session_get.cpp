// The Session driven without sockets (see session_fixture.hpp).
// Downloads: read chunks and file frames, flow control, and a file that
// changes while it is sent.
#include "session_fixture.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

using namespace ferry;
using namespace ferry::server;
using namespace ferry::server::session_test;

namespace {

// Writes `bytes` over the start of the file without truncating it: an
// in-place rewrite that keeps the file's inode (and, here, its size).
void overwrite_in_place(const std::string& path, std::string_view bytes)
{
    const int fd = ::open(path.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    REQUIRE(::pwrite(fd, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size()));
    ::close(fd);
}

// file_frames: the digest is cached; hashed_file_frames: each range is
// hashed by its job before the kernel sends it.
enum class SendPath { read_chunks, file_frames, hashed_file_frames, resumed };

// One get of a 5000-byte file that `change` alters after the first chunk
// has gone out; returns what the session sent in place of the trailer.
void check_changed_get(SendPath path_kind, const std::function<void(const std::string&)>& change,
                       const std::string& expected_message, const std::string& name = "live.bin")
{
    Fixture f;
    f.config.chunk_size = 1000;
    f.config.file_frame_size = 1000;
    f.config.send_high_water = 1; // one chunk at a time: the file changes between two
    f.hello();
    const std::string content = pattern(5000, 21);
    const std::string path = f.root.path() + "/" + name;
    if (const auto slash = name.rfind('/'); slash != std::string::npos) {
        REQUIRE(::mkdir((f.root.path() + "/" + name.substr(0, slash)).c_str(), 0755) == 0);
    }
    f.root.write(name, content);
    // Older than any timestamp tick, so that the change below moves the times.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    std::uint64_t offset = 0;
    if (path_kind == SendPath::file_frames) {
        f.io.file_frames = true;
        f.feed(control(Request{4, GetRequest{name, 0}})); // fills the cache
        f.io.run_jobs();
        REQUIRE(parse_trailer(f.io.controls().back()));
    } else if (path_kind == SendPath::hashed_file_frames) {
        f.io.file_frames = true;
    } else if (path_kind == SendPath::resumed) {
        offset = 1500;
    }

    f.io.hold_writes = true;
    f.feed(control(Request{5, GetRequest{name, offset}}));
    f.io.run_jobs();
    f.io.unsent = 0; // the reply left; one chunk goes out, then the change
    f.session.on_sent();
    f.io.run_jobs();
    REQUIRE(f.session.state() == Session::State::sending_file);
    change(path);
    for (int round = 0; round < 20 && f.session.state() == Session::State::sending_file; ++round) {
        f.io.unsent = 0;
        f.session.on_sent();
        f.io.run_jobs();
    }
    auto [controls, data] = f.io.drain();
    REQUIRE(controls.size() >= 2);
    const auto ending = parse_trailer(controls.back());
    REQUIRE_FALSE(ending);
    CHECK(ending.error().code == ErrorCode::file_changed);
    CHECK(ending.error().message.find(expected_message) != std::string::npos);
    CHECK(data.size() == 1000); // stopped at the next chunk, not at the end
    CHECK_FALSE(f.io.closed);
    CHECK(f.session.state() == Session::State::awaiting_request);
    CHECK(f.counters.errors().contains("file_changed"));
}

} // namespace

TEST_CASE("get streams the file in chunks, ends with the whole file's SHA-256")
{
    Fixture f;
    f.config.chunk_size = 1000;
    f.hello();
    const std::string content = pattern(4500, 1);
    f.root.write("data.bin", content);

    SUBCASE("from the start")
    {
        f.feed(control(Request{5, GetRequest{"data.bin", 0}}));
        f.io.run_jobs();
        auto [controls, data] = f.io.drain();
        REQUIRE(controls.size() == 2);
        auto reply = parse_get_reply(controls[0]);
        REQUIRE(reply);
        CHECK(reply->body.file.size == 4500);
        CHECK(data == content);
        auto trailer = parse_trailer(controls[1]);
        REQUIRE(trailer);
        CHECK(trailer->id == 5);
        CHECK(trailer->body.digest == sha256_of(content));
    }
    SUBCASE("from an offset: only the rest is sent, the trailer still covers the whole file")
    {
        f.feed(control(Request{6, GetRequest{"data.bin", 1234}}));
        f.io.run_jobs();
        auto [controls, data] = f.io.drain();
        REQUIRE(controls.size() == 2);
        CHECK(data == content.substr(1234));
        CHECK(parse_trailer(controls[1])->body.digest == sha256_of(content));
    }
    SUBCASE("past the end")
    {
        f.feed(control(Request{7, GetRequest{"data.bin", 4501}}));
        f.io.run_jobs();
        auto replies = f.io.replies(1);
        CHECK(parse_get_reply(replies[0]).error().code == ErrorCode::bad_offset);
        CHECK(f.session.state() == Session::State::awaiting_request);
    }
}

TEST_CASE("get stops reading the file while the socket's queue is full")
{
    Fixture f;
    f.config.chunk_size = 1000;
    f.config.send_high_water = 3000;
    f.hello();
    f.root.write("big.bin", pattern(20000, 2));
    f.io.hold_writes = true;
    f.feed(control(Request{5, GetRequest{"big.bin", 0}}));
    f.io.run_jobs();
    // Three chunks (plus the small reply) fill the queue; no read is pending.
    CHECK(f.session.state() == Session::State::sending_file);
    CHECK(f.io.jobs.empty());
    CHECK(f.io.unsent >= 3000);
    CHECK(f.io.unsent < 3000 + 1000 + 200);

    // The peer reads: each drain lets the session read more, until done.
    for (int round = 0; round < 100 && f.session.state() == Session::State::sending_file; ++round) {
        f.io.unsent = 0;
        f.session.on_sent();
        f.io.run_jobs();
    }
    CHECK(f.session.state() == Session::State::awaiting_request);
    auto [controls, data] = f.io.drain();
    CHECK(data == f.root.read("big.bin"));
}

TEST_CASE("a download goes out as file frames, hashed on the pool unless its digest is known")
{
    Fixture f;
    f.config.chunk_size = 1000;
    f.config.file_frame_size = 1500;
    f.io.file_frames = true;
    f.hello();
    const std::string content = pattern(4000, 14);
    f.root.write("zero.bin", content);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));

    const auto get = [&](std::uint64_t offset) {
        f.feed(control(Request{5, GetRequest{"zero.bin", offset}}));
        f.io.run_jobs();
        auto [controls, data] = f.io.drain();
        REQUIRE(controls.size() == 2);
        CHECK(data == content.substr(offset));
        const auto trailer = parse_trailer(controls[1]);
        REQUIRE(trailer);
        CHECK(trailer->body.digest == sha256_of(content));
    };
    // First time: each range is hashed by its job, then sent by the kernel
    // like a cached one (no copy through the server's memory), and the
    // digest fills the cache. Ranges of 1500, 1500 and 1000, each in frames
    // of at most chunk_size (PROTOCOL.md 2): 1000 + 500, 1000 + 500, 1000.
    get(0);
    CHECK(f.io.file_frames_sent == 5);
    CHECK(f.io.largest_file_frame == 1000);
    const auto identity = f.library->open_for_read("zero.bin").value()->identity();
    CHECK(f.library->digests().find(identity, HashKind::sha256) == sha256_of(content));
    get(0);
    CHECK(f.io.file_frames_sent == 10);
    get(2500); // a resumed download needs no prefix hashing either
    CHECK(f.io.file_frames_sent == 12);

    SUBCASE("a file changed within the second before the open is read and sent from memory")
    {
        // Its last check cannot see a write in the same timestamp tick, so
        // only bytes that went out from the memory they were hashed in are
        // vouched for (and the file is hashed again before the trailer).
        const std::string fresh = pattern(3000, 15);
        f.root.write("fresh.bin", fresh);
        const int before = f.io.file_frames_sent;
        f.feed(control(Request{7, GetRequest{"fresh.bin", 0}}));
        f.io.run_jobs();
        auto [controls, data] = f.io.drain();
        REQUIRE(controls.size() == 2);
        CHECK(data == fresh);
        CHECK(parse_trailer(controls[1])->body.digest == sha256_of(fresh));
        CHECK(f.io.file_frames_sent == before);
    }

    SUBCASE("a file that shrinks before its frame is sent fails with file_changed, not a short frame")
    {
        f.io.hold_writes = true;
        f.config.send_high_water = 1;
        f.feed(control(Request{6, GetRequest{"zero.bin", 0}}));
        f.io.run_jobs(); // the first frame goes out, then the queue is full
        REQUIRE(f.session.state() == Session::State::sending_file);
        REQUIRE(::truncate((f.root.path() + "/zero.bin").c_str(), 2000) == 0);
        for (int round = 0; round < 10 && f.session.state() == Session::State::sending_file; ++round) {
            f.io.unsent = 0;
            f.session.on_sent();
            f.io.run_jobs();
        }
        auto [controls, data] = f.io.drain();
        REQUIRE(controls.size() == 2);
        CHECK(data.empty()); // the change is seen before the first frame's size goes out
        CHECK(parse_trailer(controls[1]).error().code == ErrorCode::file_changed);
    }
}

TEST_CASE("a get whose file changes while it is sent ends with file_changed, never a trailer")
{
    const std::vector<std::tuple<std::string, std::function<void(const std::string&)>, std::string>> changes{
        {"rewritten in place, same size", [](const std::string& path) { overwrite_in_place(path, pattern(5000, 22)); },
         "was modified"},
        {"truncated and written again (cp over it)",
         [](const std::string& path) { std::ofstream(path, std::ios::binary) << pattern(5000, 23); }, "live.bin"},
        {"shrunk", [](const std::string& path) { REQUIRE(::truncate(path.c_str(), 1200) == 0); },
         "shrank from 5000 to 1200 bytes"},
        {"grown beyond the announced size",
         [](const std::string& path) {
             const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND);
             REQUIRE(::write(fd, "more", 4) == 4);
             ::close(fd);
         },
         "grew from 5000 to 5004 bytes"},
        {"replaced under its name by another file",
         [](const std::string& path) {
             std::ofstream(path + ".new", std::ios::binary) << pattern(5000, 21);
             REQUIRE(::rename((path + ".new").c_str(), path.c_str()) == 0);
         },
         "was replaced by another file"},
        {"removed", [](const std::string& path) { REQUIRE(::unlink(path.c_str()) == 0); }, "was removed or renamed"},
    };
    for (const auto path_kind :
         {SendPath::read_chunks, SendPath::file_frames, SendPath::hashed_file_frames, SendPath::resumed}) {
        for (const auto& [what, change, message] : changes) {
            CAPTURE(static_cast<int>(path_kind));
            // CAPTURE's lambda cannot take a structured binding in clang before 16.
            const auto& changed = what;
            CAPTURE(changed);
            check_changed_get(path_kind, change, message);
        }
    }
}

TEST_CASE("a get whose folder is moved while the file is sent says so, not that the file was removed")
{
    // Attack round 70 (F2): the file stayed as it was; its path no longer leads to it.
    for (const auto path_kind :
         {SendPath::read_chunks, SendPath::file_frames, SendPath::hashed_file_frames, SendPath::resumed}) {
        CAPTURE(static_cast<int>(path_kind));
        check_changed_get(
            path_kind,
            [](const std::string& path) {
                const std::string folder = path.substr(0, path.rfind('/'));
                REQUIRE(::rename(folder.c_str(), (folder + "-moved").c_str()) == 0);
            },
            "\"sub/live.bin\" is no longer at its path: a folder on it was removed or renamed", "sub/live.bin");
    }
}

TEST_CASE("a change after the last byte left, before the trailer, is seen too")
{
    Fixture f;
    f.config.file_frame_size = 4000;
    f.io.file_frames = true;
    f.hello();
    const std::string content = pattern(4000, 24);
    const std::string path = f.root.path() + "/tail.bin";
    f.root.write("tail.bin", content);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    f.feed(control(Request{4, GetRequest{"tail.bin", 0}})); // fills the cache
    f.io.run_jobs();
    REQUIRE(parse_trailer(f.io.controls().back()));

    // One file frame: the kernel copies it when the socket takes it, so the
    // server looks at the file again only once nothing is left unsent.
    const int before = f.io.file_frames_sent; // the first get's frame (hashed by its job)
    f.io.hold_writes = true;
    f.feed(control(Request{5, GetRequest{"tail.bin", 0}}));
    f.io.run_jobs();
    CHECK(f.io.file_frames_sent == before + 1);
    CHECK(f.session.state() == Session::State::sending_file);
    CHECK(f.io.jobs.empty());
    overwrite_in_place(path, pattern(100, 25));
    f.io.unsent = 0;
    f.session.on_sent();
    f.io.run_jobs();
    const auto controls = f.io.replies(2);
    CHECK(parse_trailer(controls.back()).error().code == ErrorCode::file_changed);
    CHECK(f.session.state() == Session::State::awaiting_request);
}

TEST_CASE("a change after sendfile took the last byte, before the peer acknowledged it, is seen too")
{
    // sendfile gives the socket the page cache's pages, not copies: a write
    // before they are transmitted changes what the peer gets, so the last
    // check waits for the peer's acknowledgement, not only for the socket.
    Fixture f;
    f.config.file_frame_size = 4000;
    f.io.file_frames = true;
    f.hello();
    const std::string path = f.root.path() + "/tail.bin";
    f.root.write("tail.bin", pattern(4000, 26));
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    f.feed(control(Request{4, GetRequest{"tail.bin", 0}})); // fills the cache
    f.io.run_jobs();
    REQUIRE(parse_trailer(f.io.controls().back()));

    f.io.hold_writes = true;
    f.feed(control(Request{5, GetRequest{"tail.bin", 0}}));
    f.io.run_jobs();
    REQUIRE(f.session.state() == Session::State::sending_file);
    (void)f.io.controls(); // the reply (controls() takes what it returns)
    // The socket took everything; the peer has not acknowledged it yet.
    f.io.unacknowledged = f.io.unsent;
    f.io.unsent = 0;
    f.session.on_sent();
    f.io.run_jobs();
    CHECK(f.io.controls().empty()); // no trailer yet
    CHECK(f.session.state() == Session::State::sending_file);
    CHECK(f.io.acknowledgement_waits > 0); // the connection is asked to look for it
    overwrite_in_place(path, pattern(100, 27));
    f.io.clock_ms += 100;
    f.session.check_timeouts(f.io.clock_ms);
    f.io.run_jobs();
    CHECK(f.io.controls().empty()); // still unacknowledged
    f.io.unacknowledged = 0;
    f.io.clock_ms += 100;
    f.session.check_timeouts(f.io.clock_ms);
    f.io.run_jobs();
    const auto controls = f.io.controls();
    REQUIRE(controls.size() == 1);
    CHECK(parse_trailer(controls.back()).error().code == ErrorCode::file_changed);
    CHECK(f.session.state() == Session::State::awaiting_request);
}

TEST_CASE("a sendfile get's trailer goes once the peer acknowledges; a peer that never does stalls")
{
    Fixture f;
    f.config.file_frame_size = 4000;
    f.config.stall_timeout = std::chrono::milliseconds(2000);
    f.io.file_frames = true;
    f.hello();
    f.root.write("tail.bin", pattern(4000, 28));
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    f.feed(control(Request{4, GetRequest{"tail.bin", 0}})); // fills the cache
    f.io.run_jobs();
    REQUIRE(parse_trailer(f.io.controls().back()));

    f.io.hold_writes = true;
    f.feed(control(Request{5, GetRequest{"tail.bin", 0}}));
    f.io.run_jobs();
    REQUIRE(f.session.state() == Session::State::sending_file);
    (void)f.io.controls();
    f.io.unacknowledged = f.io.unsent;
    f.io.unsent = 0;
    f.session.on_sent();
    f.io.run_jobs();
    REQUIRE(f.io.acknowledgement_waits > 0);
    CHECK(f.io.controls().empty());

    SUBCASE("the connection's word that all is acknowledged ends it, no sweep needed")
    {
        f.io.unacknowledged = 0;
        f.session.on_sent(); // what the connection says then
        f.io.run_jobs();
        const auto controls = f.io.controls();
        REQUIRE(controls.size() == 1);
        const auto trailer = parse_trailer(controls.back());
        REQUIRE(trailer);
        CHECK(trailer->body.digest == sha256_of(pattern(4000, 28)));
        CHECK(f.session.state() == Session::State::awaiting_request);
    }
    SUBCASE("a peer on this host is not waited for: there an acknowledgement proves nothing")
    {
        Fixture local;
        local.config.file_frame_size = 4000;
        local.io.file_frames = true;
        local.io.on_this_host = true;
        local.hello();
        local.root.write("tail.bin", pattern(4000, 28));
        std::this_thread::sleep_for(std::chrono::milliseconds(1100));
        local.io.hold_writes = true;
        local.feed(control(Request{5, GetRequest{"tail.bin", 0}}));
        local.io.run_jobs();
        (void)local.io.controls();
        local.io.unacknowledged = local.io.unsent;
        local.io.unsent = 0;
        local.session.on_sent();
        local.io.run_jobs();
        CHECK(local.io.acknowledgement_waits == 0);
        const auto controls = local.io.controls();
        REQUIRE(controls.size() == 1);
        CHECK(parse_trailer(controls.back()));
        CHECK(local.session.state() == Session::State::awaiting_request);
    }
    SUBCASE("no acknowledgement: the stall timeout ends the wait")
    {
        f.session.check_timeouts(f.io.clock_ms + 1999);
        f.io.run_jobs();
        CHECK_FALSE(f.io.closed);
        f.session.check_timeouts(f.io.clock_ms + 2000);
        f.io.run_jobs();
        CHECK(f.io.closed);
        CHECK(parse_trailer(f.io.controls().back()).error().code == ErrorCode::stalled);
    }
}

TEST_CASE("a download progresses while the peer acknowledges bytes, though no write finishes")
{
    Fixture f;
    f.config.stall_timeout = std::chrono::milliseconds(2000);
    f.config.chunk_size = 1000;
    f.config.send_high_water = 3000;
    f.hello();
    f.root.write("big.bin", pattern(20000, 3));
    f.io.hold_writes = true; // the socket's buffers are full: no on_sent()
    f.feed(control(Request{1, GetRequest{"big.bin", 0}}));
    f.io.run_jobs();
    REQUIRE(f.session.state() == Session::State::sending_file);
    // A steady, slow reader: its TCP stack acknowledges a little each second.
    for (int second = 0; second < 10; ++second) {
        f.io.clock_ms += 1000;
        f.io.acknowledged += 300;
        f.session.check_timeouts(f.io.clock_ms);
        REQUIRE_FALSE(f.io.closed);
    }
    // A reader that takes nothing for the stall timeout is cut.
    f.session.check_timeouts(f.io.clock_ms + 1999);
    CHECK_FALSE(f.io.closed);
    f.session.check_timeouts(f.io.clock_ms + 2000);
    CHECK(f.io.closed);
    CHECK(parse_trailer(f.io.controls().back()).error().code == ErrorCode::stalled);
}

TEST_CASE("a small file's get takes two pool jobs: the open makes its one range ready")
{
    Fixture f;
    f.config.chunk_size = 1000;
    f.config.file_frame_size = 4096;
    f.io.file_frames = true;
    f.hello();
    const std::string content = pattern(3000, 21);
    f.root.write("small.bin", content);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100)); // settled: sent with file frames

    const auto get = [&] {
        f.feed(control(Request{9, GetRequest{"small.bin", 0}}));
        int jobs = 0;
        while (!f.io.jobs.empty()) {
            f.io.run_one_job();
            ++jobs;
        }
        auto [controls, data] = f.io.drain();
        REQUIRE(controls.size() == 2);
        CHECK(data == content);
        const auto trailer = parse_trailer(controls[1]);
        REQUIRE(trailer);
        CHECK(trailer->body.digest == sha256_of(content));
        return jobs;
    };
    // The first get hashes the range in the open's job; the second finds
    // the digest cached and only reads ahead. Either way: the open, then
    // the check after the last byte left (three before: a job per range).
    CHECK(get() == 2);
    CHECK(get() == 2);
    CHECK(f.io.file_frames_sent == 6);
}

TEST_CASE("a small file's get takes one pool job: the open reads it whole, checked unchanged after the read")
{
    Fixture f;
    f.config.whole_read_max = 4096;
    f.config.file_frame_size = 4096;
    f.hello();
    const std::string content = pattern(3000, 31);
    const std::string path = f.root.path() + "/small.bin";
    f.root.write("small.bin", content);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100)); // settled: no read again before the trailer

    // The open's job runs; then the file changes before any byte leaves:
    // what goes is the version read, and the trailer vouches for it.
    const auto get = [&](bool file_frames, std::uint64_t id) {
        f.io.file_frames = file_frames;
        f.feed(control(Request{id, GetRequest{"small.bin", 0}}));
        int jobs = 0;
        while (!f.io.jobs.empty()) {
            f.io.run_one_job();
            ++jobs;
        }
        auto [controls, data] = f.io.drain();
        REQUIRE(controls.size() == 2);
        CHECK(data == content);
        const auto trailer = parse_trailer(controls[1]);
        REQUIRE(trailer);
        CHECK(trailer->body.digest == sha256_of(content));
        CHECK(f.session.state() == Session::State::awaiting_request);
        return jobs;
    };
    const int frames_before = f.io.file_frames_sent;
    CHECK(get(true, 9) == 1);  // hashed by the open's job
    CHECK(get(true, 10) == 1); // the digest cached: read, not hashed
    CHECK(get(false, 11) == 1); // a connection without file frames (TLS) too
    CHECK(f.io.file_frames_sent == frames_before); // all from memory

    // Larger than whole_read_max: file frames, and the check after the last byte left.
    f.config.whole_read_max = 2999;
    CHECK(get(true, 12) == 2);
}

TEST_CASE("a resumed get is never read whole: its prefix is hashed by a job of its own first")
{
    Fixture f;
    f.config.whole_read_max = 8192;
    f.hello();
    const std::string path = f.root.path() + "/moving.bin";
    f.root.write("moving.bin", pattern(5000, 32));
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    f.feed(control(Request{3, GetRequest{"moving.bin", 1000}}));
    int jobs = 0;
    while (!f.io.jobs.empty()) {
        f.io.run_one_job();
        ++jobs;
    }
    CHECK(jobs >= 2);
    auto [controls, data] = f.io.drain();
    REQUIRE(controls.size() == 2);
    CHECK(data == pattern(5000, 32).substr(1000));
    REQUIRE(parse_trailer(controls[1]));
}
