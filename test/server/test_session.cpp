// The connection state machine driven without sockets: a FakeIo records what
// the Session sends and holds its thread-pool jobs until the test runs them.
#include "digest.hpp"
#include "frame.hpp"
#include "library.hpp"
#include "messages.hpp"
#include "session.hpp"
#include "session_io.hpp"
#include "temp_root.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <set>
#include <functional>
#include <tuple>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace ferry;
using namespace ferry::server;

namespace {

class FakeIo final : public SessionIo {
public:
    void send(std::string bytes) override
    {
        outbox.append(bytes);
        if (hold_writes) {
            unsent += bytes.size();
        }
    }
    std::size_t unsent_bytes() const override { return unsent; }
    std::uint64_t acknowledged_bytes() const override { return acknowledged; }
    // Like the socket's sendfile: the file's bytes at the time of sending.
    bool supports_file_frames() const override { return file_frames; }
    void send_file_frame(std::shared_ptr<const OpenFile> file, std::uint64_t offset, std::size_t length) override
    {
        std::string payload(length, '\0');
        REQUIRE(::pread(file->fd(), payload.data(), length, static_cast<off_t>(offset)) ==
                static_cast<ssize_t>(length));
        const auto header = encode_frame_header(FrameKind::data, static_cast<std::uint32_t>(length));
        outbox.append(reinterpret_cast<const char*>(header.data()), header.size());
        outbox.append(payload);
        ++file_frames_sent;
        largest_file_frame = std::max(largest_file_frame, length);
        if (hold_writes) {
            unsent += header.size() + length;
        }
    }
    void run_job(std::function<void()> work, std::function<void()> done) override
    {
        jobs.emplace_back(std::move(work), std::move(done));
    }
    void pause_reading() override { reading = false; }
    void resume_reading() override { reading = true; }
    void close() override { closed = true; }
    const std::string& peer() const override { return name; }
    const std::string& address() const override { return client_address; }
    std::uint64_t now_ms() const override { return clock_ms; }

    // Runs queued jobs (and the jobs their completions queue) to the end.
    void run_jobs()
    {
        while (!jobs.empty()) {
            auto job = std::move(jobs.front());
            jobs.pop_front();
            job.first();
            job.second();
        }
    }

    void run_one_job()
    {
        REQUIRE_FALSE(jobs.empty());
        auto job = std::move(jobs.front());
        jobs.pop_front();
        job.first();
        job.second();
    }

    // Splits everything sent so far into control texts and data bytes.
    void drain(std::vector<std::string>& controls, std::string& data)
    {
        FrameDecoder decoder(16 * 1024 * 1024);
        std::size_t at = 0;
        while (at < outbox.size()) {
            auto event =
                decoder.next(std::span(reinterpret_cast<const std::uint8_t*>(outbox.data()) + at, outbox.size() - at));
            REQUIRE(event.kind != DecodeEvent::Kind::error);
            at += event.consumed;
            if (event.kind == DecodeEvent::Kind::control) {
                controls.push_back(event.text);
            } else if (event.kind == DecodeEvent::Kind::data) {
                data.append(reinterpret_cast<const char*>(event.bytes.data()), event.bytes.size());
            } else {
                break;
            }
        }
        outbox.clear();
    }

    std::vector<std::string> controls()
    {
        std::vector<std::string> texts;
        std::string ignored;
        drain(texts, ignored);
        return texts;
    }

    std::string outbox;
    bool file_frames = false;
    int file_frames_sent = 0;
    std::size_t largest_file_frame = 0;
    std::size_t unsent = 0;
    bool hold_writes = false;
    std::deque<std::pair<std::function<void()>, std::function<void()>>> jobs;
    bool reading = true;
    bool closed = false;
    std::string name = "test-peer";
    std::string client_address = "192.0.2.1";
    // What the peer's TCP stack acknowledged: tests move it by hand.
    std::uint64_t acknowledged = 0;
    std::uint64_t clock_ms = 1000;
};

std::string control(const Request& request)
{
    return encode_control_frame(encode_request(request));
}

std::string data_frame(std::string_view bytes)
{
    const auto header = encode_frame_header(FrameKind::data, static_cast<std::uint32_t>(bytes.size()));
    return std::string(reinterpret_cast<const char*>(header.data()), header.size()) + std::string(bytes);
}

std::string sha256_of(std::string_view bytes)
{
    Sha256 hash;
    hash.update(bytes.data(), bytes.size());
    return hash.hex_digest();
}

std::string pattern(std::size_t size, unsigned seed)
{
    std::string bytes(size, '\0');
    std::uint32_t state = seed * 2654435761u + 1;
    for (auto& byte : bytes) {
        state = state * 1664525u + 1013904223u;
        byte = static_cast<char>(state >> 24);
    }
    return bytes;
}

struct Fixture {
    Fixture() : Fixture(std::string()) {}
    // With a path, serves that folder instead of a fresh one.
    explicit Fixture(const std::string& served)
        : library(std::move(Library::open(served.empty() ? root.path() : served).value())),
          session(io, *library, config, counters)
    {
    }

    void feed(std::string_view bytes) { session.on_bytes(std::span(bytes.data(), bytes.size())); }

    void hello()
    {
        feed(control(Request{0, HelloRequest{}}));
        const auto replies = io.controls();
        REQUIRE(replies.size() == 1);
        REQUIRE(parse_hello_reply(replies[0]));
    }

    TempRoot root;
    Config config;
    Counters counters;
    FakeIo io;
    std::unique_ptr<Library> library;
    Session session;
};

// A put of `content` whose connection drops after `sent` bytes: what it
// leaves in `served` is a kept upload to resume.
void interrupt_upload(const TempRoot& served, const std::string& name, const std::string& content, std::size_t sent)
{
    Fixture first(served.path());
    first.hello();
    first.feed(control(Request{1, PutRequest{name, content.size(), false}}));
    first.io.run_jobs();
    first.feed(data_frame(content.substr(0, sent)));
    first.session.on_peer_closed();
    first.io.run_jobs();
    CHECK(first.io.closed);
    CHECK(first.session.state() == Session::State::closed);
}

} // namespace

TEST_CASE("a request before hello is refused and the connection stays usable")
{
    Fixture f;
    f.feed(control(Request{1, ListRequest{}}));
    auto replies = f.io.controls();
    REQUIRE(replies.size() == 1);
    auto refused = parse_list_reply(replies[0]);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == ErrorCode::hello_required);
    CHECK_FALSE(f.io.closed);

    f.hello();
    f.feed(control(Request{2, ListRequest{}}));
    CHECK(f.session.state() == Session::State::working);
    f.io.run_jobs();
    replies = f.io.controls();
    REQUIRE(replies.size() == 1);
    auto listed = parse_list_reply(replies[0]);
    REQUIRE(listed);
    CHECK(listed->id == 2);
    CHECK(f.session.state() == Session::State::awaiting_request);
}

TEST_CASE("hello with another protocol version is refused, then the connection closes")
{
    Fixture f;
    f.feed(control(Request{9, HelloRequest{2, "future", ""}}));
    auto replies = f.io.controls();
    REQUIRE(replies.size() == 1);
    auto refused = parse_hello_reply(replies[0]);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == ErrorCode::unsupported_version);
    CHECK(f.io.closed);
    CHECK(f.session.state() == Session::State::closed);
}

TEST_CASE("a request fed one byte at a time moves through reading_request")
{
    Fixture f;
    f.hello();
    f.root.write("a.txt", "hello");
    const std::string frame = control(Request{3, StatRequest{"a.txt"}});
    for (std::size_t i = 0; i + 1 < frame.size(); ++i) {
        f.feed(frame.substr(i, 1));
        CHECK(f.session.state() == Session::State::reading_request);
    }
    f.feed(frame.substr(frame.size() - 1));
    CHECK(f.session.state() == Session::State::working);
    f.io.run_jobs();
    auto replies = f.io.controls();
    REQUIRE(replies.size() == 1);
    auto stat = parse_stat_reply(replies[0]);
    REQUIRE(stat);
    CHECK(stat->body.file.size == 5);
}

TEST_CASE("pipelined requests are answered in order; input waits while a job runs")
{
    Fixture f;
    f.hello();
    f.root.write("a", "1");
    f.root.write("b", "22");
    f.feed(control(Request{10, StatRequest{"a"}}) + control(Request{11, StatRequest{"b"}}) +
           control(Request{12, StatRequest{"missing"}}));
    // The first stat's job is queued; the rest of the input waits unread.
    CHECK(f.io.jobs.size() == 1);
    CHECK_FALSE(f.io.reading);
    f.io.run_jobs();
    CHECK(f.io.reading);
    auto replies = f.io.controls();
    REQUIRE(replies.size() == 3);
    CHECK(parse_stat_reply(replies[0])->id == 10);
    CHECK(parse_stat_reply(replies[1])->body.file.size == 2);
    auto missing = parse_stat_reply(replies[2]);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().code == ErrorCode::not_found);
}

TEST_CASE("requests wait while the peer leaves a high-water of replies unread, before hello and after")
{
    for (const bool said_hello : {false, true}) {
        CAPTURE(said_hello);
        Fixture f;
        f.config.reply_high_water = 1000;
        // 200 hello_required are protocol errors; this test is about the
        // high-water, not about --max-protocol-errors.
        f.config.max_protocol_errors = 1000;
        if (said_hello) {
            f.hello();
        }
        f.io.hold_writes = true;
        // Each stats reply (or hello_required) is far larger than its request.
        std::string requests;
        for (std::uint64_t id = 1; id <= 200; ++id) {
            requests += control(Request{id, StatsRequest{}});
        }
        f.feed(requests);
        CHECK_FALSE(f.io.reading);
        const auto first = f.io.controls();
        CHECK(first.size() < 20);
        CHECK(f.io.unsent < 1000 + 400);
        // The peer reads: the waiting requests are taken, in order.
        std::size_t answered = first.size();
        while (answered < 200) {
            f.io.unsent = 0;
            f.session.on_sent();
            const auto more = f.io.controls();
            REQUIRE_FALSE(more.empty());
            answered += more.size();
        }
        CHECK(answered == 200);
        CHECK(f.io.reading);
        CHECK_FALSE(f.io.closed);
    }
}

TEST_CASE("a paged list sends bounded pages as the peer reads them; an unpaged one is capped")
{
    Fixture f;
    f.config.list_page_bytes = 2000;
    f.config.reply_high_water = 3000;
    f.config.max_list_reply = 20000;
    std::set<std::string> expected;
    for (int i = 0; i < 300; ++i) {
        const std::string name = "file-" + std::to_string(i) + std::string(40, 'x');
        f.root.write(name, "");
        expected.insert(name);
    }
    f.hello();
    f.io.hold_writes = true;
    f.feed(control(Request{5, ListRequest{true}}) + control(Request{6, StatsRequest{}}));
    std::set<std::string> listed;
    std::size_t pages = 0;
    bool last_seen = false;
    bool stats_answered = false;
    while (!last_seen) {
        f.io.run_jobs();
        // Pages stop at the high-water until the peer reads.
        CHECK(f.io.unsent < f.config.reply_high_water + f.config.list_page_bytes + 200);
        for (const auto& text : f.io.controls()) {
            CHECK(text.size() < f.config.list_page_bytes + 200);
            if (last_seen) {
                // The pipelined request is answered only after the last page.
                auto stats = parse_stats_reply(text);
                REQUIRE(stats);
                CHECK(stats->id == 6);
                stats_answered = true;
                continue;
            }
            auto page = parse_list_reply(text);
            REQUIRE(page);
            REQUIRE(page->id == 5);
            ++pages;
            for (const auto& file : page->body.files) {
                CHECK(listed.insert(file.name).second);
            }
            if (!page->body.more) {
                last_seen = true;
            }
        }
        if (!last_seen) {
            CHECK(f.session.state() == Session::State::sending_list);
            CHECK(f.io.jobs.empty());
            f.io.unsent = 0;
            f.session.on_sent();
        }
    }
    CHECK(pages > 5);
    CHECK(listed == expected);
    if (!stats_answered) {
        f.io.unsent = 0;
        f.session.on_sent();
        f.io.run_jobs();
        auto after = f.io.controls();
        REQUIRE(after.size() == 1);
        CHECK(parse_stats_reply(after[0])->id == 6);
    }

    // Without pages: one sorted reply, or list_too_large past the cap.
    f.io.hold_writes = false;
    f.feed(control(Request{7, ListRequest{}}));
    f.io.run_jobs();
    auto refused = f.io.controls();
    REQUIRE(refused.size() == 1);
    auto error = parse_list_reply(refused[0]);
    REQUIRE_FALSE(error);
    CHECK(error.error().code == ErrorCode::list_too_large);
    CHECK(f.session.state() == Session::State::awaiting_request);
    f.config.max_list_reply = 1 << 20;
    f.feed(control(Request{8, ListRequest{}}));
    f.io.run_jobs();
    auto whole = f.io.controls();
    REQUIRE(whole.size() == 1);
    auto reply = parse_list_reply(whole[0]);
    REQUIRE(reply);
    CHECK_FALSE(reply->body.more);
    REQUIRE(reply->body.files.size() == expected.size());
    CHECK(std::is_sorted(reply->body.files.begin(), reply->body.files.end(),
                         [](const FileInfo& a, const FileInfo& b) { return a.name < b.name; }));
}

TEST_CASE("a paged list whose reader stops reading stalls and closes, with the list's id")
{
    Fixture f;
    f.config.list_page_bytes = 500;
    f.config.reply_high_water = 600;
    for (int i = 0; i < 100; ++i) {
        f.root.write("f" + std::to_string(i), "");
    }
    f.hello();
    f.io.hold_writes = true;
    f.feed(control(Request{5, ListRequest{true}}));
    f.io.run_jobs();
    CHECK(f.session.state() == Session::State::sending_list);
    f.io.controls();
    f.io.clock_ms += static_cast<std::uint64_t>(f.config.stall_timeout.count()) + 1;
    f.session.check_timeouts(f.io.clock_ms);
    auto replies = f.io.controls();
    REQUIRE(replies.size() == 1);
    auto stalled = parse_list_reply(replies[0]);
    REQUIRE_FALSE(stalled);
    CHECK(stalled.error().code == ErrorCode::stalled);
    f.io.run_jobs();
    CHECK(f.io.closed);
}

TEST_CASE("bad JSON and unknown operations get an error; broken framing closes")
{
    Fixture f;
    f.hello();
    f.feed(encode_control_frame("{not json"));
    f.feed(encode_control_frame(R"({"op":"dance","id":4})"));
    auto replies = f.io.controls();
    REQUIRE(replies.size() == 2);
    CHECK(parse_list_reply(replies[0]).error().code == ErrorCode::bad_json);
    CHECK(parse_list_reply(replies[1]).error().code == ErrorCode::unknown_op);
    CHECK_FALSE(f.io.closed);

    f.feed(std::string("\x07\x00\x00\x00\x01x", 6));
    replies = f.io.controls();
    REQUIRE(replies.size() == 1);
    CHECK(parse_list_reply(replies[0]).error().code == ErrorCode::bad_frame);
    CHECK(f.io.closed);
}

TEST_CASE("a control frame over the limit is refused and closes the connection")
{
    Fixture f;
    f.hello();
    const auto header = encode_frame_header(FrameKind::control, f.config.max_control_frame + 1);
    f.feed(std::string(reinterpret_cast<const char*>(header.data()), header.size()));
    auto replies = f.io.controls();
    REQUIRE(replies.size() == 1);
    CHECK(parse_list_reply(replies[0]).error().code == ErrorCode::frame_too_large);
    CHECK(f.io.closed);
}

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
        std::vector<std::string> controls;
        std::string data;
        f.io.drain(controls, data);
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
        std::vector<std::string> controls;
        std::string data;
        f.io.drain(controls, data);
        REQUIRE(controls.size() == 2);
        CHECK(data == content.substr(1234));
        CHECK(parse_trailer(controls[1])->body.digest == sha256_of(content));
    }
    SUBCASE("past the end")
    {
        f.feed(control(Request{7, GetRequest{"data.bin", 4501}}));
        f.io.run_jobs();
        auto replies = f.io.controls();
        REQUIRE(replies.size() == 1);
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
    std::vector<std::string> controls;
    std::string data;
    f.io.drain(controls, data);
    CHECK(data == f.root.read("big.bin"));
}

TEST_CASE("put publishes only after a matching commit")
{
    Fixture f;
    f.config.chunk_size = 1000;
    f.hello();
    f.root.write("doc.txt", "old content");
    const std::string content = pattern(3500, 3);

    f.feed(control(Request{8, PutRequest{"doc.txt", content.size(), false}}));
    f.io.run_jobs();
    auto replies = f.io.controls();
    REQUIRE(replies.size() == 1);
    auto accepted = parse_put_reply(replies[0]);
    REQUIRE(accepted);
    CHECK(accepted->body.offset == 0);
    CHECK(f.session.state() == Session::State::receiving_file);

    f.feed(data_frame(content.substr(0, 2000)));
    f.feed(data_frame(content.substr(2000)));
    f.io.run_jobs();
    CHECK(f.root.read("doc.txt") == "old content");

    SUBCASE("matching hash")
    {
        f.feed(control(Request{8, CommitRequest{sha256_of(content)}}));
        f.io.run_jobs();
        replies = f.io.controls();
        REQUIRE(replies.size() == 1);
        auto committed = parse_commit_reply(replies[0]);
        REQUIRE(committed);
        CHECK(committed->body.file.size == content.size());
        CHECK(f.root.read("doc.txt") == content);
    }
    SUBCASE("wrong hash: nothing published, no partial left")
    {
        f.feed(control(Request{8, CommitRequest{sha256_of("something else")}}));
        f.io.run_jobs();
        replies = f.io.controls();
        REQUIRE(replies.size() == 1);
        CHECK(parse_commit_reply(replies[0]).error().code == ErrorCode::hash_mismatch);
        CHECK(f.root.read("doc.txt") == "old content");
        CHECK(f.root.hidden_entries() == 0);
        CHECK_FALSE(f.io.closed);
    }
    CHECK(f.session.state() == Session::State::awaiting_request);
}

TEST_CASE("an interrupted put is kept, then resumed from where it stopped")
{
    const std::string content = pattern(5000, 4);
    TempRoot served;
    interrupt_upload(served, "r.bin", content, 3000);
    CHECK_FALSE(served.exists("r.bin"));
    CHECK(served.hidden_entries() == 2); // the data and its state
    Fixture second(served.path());
    second.hello();
    second.feed(control(Request{2, PutRequest{"r.bin", content.size(), true}}));
    second.io.run_jobs();
    auto replies = second.io.controls();
    REQUIRE(replies.size() == 1);
    auto resumed = parse_put_reply(replies[0]);
    REQUIRE(resumed);
    CHECK(resumed->body.offset == 3000);
    REQUIRE(resumed->body.prefix_digest);
    CHECK(*resumed->body.prefix_digest == sha256_of(content.substr(0, 3000)));

    second.feed(data_frame(content.substr(3000)));
    second.feed(control(Request{2, CommitRequest{sha256_of(content)}}));
    second.io.run_jobs();
    replies = second.io.controls();
    REQUIRE(replies.size() == 1);
    REQUIRE(parse_commit_reply(replies[0]));
    CHECK(served.read("r.bin") == content);
    CHECK(served.hidden_entries() == 0);
}

TEST_CASE("put stops reading the socket while the disk lags")
{
    Fixture f;
    f.config.chunk_size = 1000;
    f.config.receive_high_water = 2500;
    f.hello();
    const std::string content = pattern(10000, 5);
    f.feed(control(Request{3, PutRequest{"slow.bin", content.size(), false}}));
    f.io.run_jobs();
    f.io.controls();
    std::string frames;
    for (std::size_t at = 0; at < content.size(); at += 500) {
        frames += data_frame(content.substr(at, 500));
    }
    frames += control(Request{3, CommitRequest{sha256_of(content)}});
    f.feed(frames); // the disk "lags": no job runs yet
    CHECK_FALSE(f.io.reading);
    CHECK(f.session.state() == Session::State::receiving_file);
    f.io.run_jobs();
    auto replies = f.io.controls();
    REQUIRE(replies.size() == 1);
    REQUIRE(parse_commit_reply(replies[0]));
    CHECK(f.root.read("slow.bin") == content);
    CHECK(f.io.reading);
}

TEST_CASE("data beyond the declared size fails the upload and closes")
{
    Fixture f;
    f.hello();
    f.feed(control(Request{3, PutRequest{"x", 4, false}}));
    f.io.run_jobs();
    f.io.controls();
    f.feed(data_frame("12345"));
    f.io.run_jobs();
    auto replies = f.io.controls();
    REQUIRE(replies.size() == 1);
    CHECK(parse_commit_reply(replies[0]).error().code == ErrorCode::size_mismatch);
    CHECK(f.io.closed);
    CHECK_FALSE(f.root.exists("x"));
}

TEST_CASE("requests other than commit or abort during an upload are refused, the upload goes on")
{
    Fixture f;
    f.hello();
    f.feed(control(Request{3, PutRequest{"y", 2, false}}));
    f.io.run_jobs();
    f.io.controls();
    f.feed(control(Request{4, ListRequest{}}));
    f.feed(data_frame("ok"));
    f.feed(control(Request{3, AbortRequest{true}}));
    f.io.run_jobs();
    auto replies = f.io.controls();
    REQUIRE(replies.size() == 2);
    CHECK(parse_list_reply(replies[0]).error().code == ErrorCode::unexpected_frame);
    auto aborted = parse_abort_reply(replies[1]);
    REQUIRE(aborted);
    CHECK_FALSE(aborted->body.kept);
    CHECK(f.root.hidden_entries() == 0);
    CHECK_FALSE(f.root.exists("y"));
}

TEST_CASE("invalid names never reach the file system")
{
    Fixture f;
    f.hello();
    for (const char* name : {"../etc/passwd", "/etc/passwd", ".hidden", "a/b", "..", "a\\b"}) {
        f.feed(control(Request{1, GetRequest{name, 0}}));
        f.feed(control(Request{2, PutRequest{name, 1, false}}));
        f.feed(control(Request{3, StatRequest{name}}));
        CHECK(f.io.jobs.empty());
        const auto replies = f.io.controls();
        REQUIRE(replies.size() == 3);
        for (const auto& reply : replies) {
            CHECK(parse_stat_reply(reply).error().code == ErrorCode::invalid_name);
        }
    }
}

TEST_CASE("shutdown lets a running download finish, then closes; abandon cuts it")
{
    Fixture f;
    f.config.chunk_size = 100;
    f.hello();
    const std::string content = pattern(1000, 6);
    f.root.write("f", content);
    f.feed(control(Request{1, GetRequest{"f", 0}}));
    f.io.run_one_job(); // the open; the first read is now in flight
    REQUIRE(f.session.state() == Session::State::sending_file);
    REQUIRE(f.session.job_in_flight());

    SUBCASE("drain")
    {
        f.session.shutdown();
        CHECK(f.session.state() == Session::State::sending_file);
        f.io.run_jobs();
        CHECK(f.io.closed);
        std::vector<std::string> controls;
        std::string data;
        f.io.drain(controls, data);
        CHECK(data == content);
        REQUIRE(controls.size() == 3); // reply, trailer, shutting_down
        CHECK(parse_trailer(controls[1]));
        CHECK(parse_trailer(controls[2]).error().code == ErrorCode::shutting_down);
    }
    SUBCASE("abandon")
    {
        f.session.abandon();
        CHECK(f.session.state() == Session::State::closing);
        CHECK_FALSE(f.io.closed);
        f.io.run_jobs();
        CHECK(f.io.closed);
        std::vector<std::string> controls;
        std::string data;
        f.io.drain(controls, data);
        CHECK(data.empty()); // the chunk read after abandon is dropped
        CHECK(parse_trailer(controls.back()).error().code == ErrorCode::shutting_down);
    }
    CHECK(f.counters.active_transfers == 0);
}

TEST_CASE("an idle connection times out; a half-sent frame or a quiet transfer stalls")
{
    Fixture f;
    f.config.idle_timeout = std::chrono::milliseconds(5000);
    f.config.stall_timeout = std::chrono::milliseconds(2000);
    f.hello();

    SUBCASE("idle")
    {
        f.session.check_timeouts(f.io.clock_ms + 4999);
        CHECK_FALSE(f.io.closed);
        f.session.check_timeouts(f.io.clock_ms + 5000);
        CHECK(f.io.closed);
        CHECK(parse_list_reply(f.io.controls().back()).error().code == ErrorCode::idle_timeout);
    }
    SUBCASE("half a frame")
    {
        f.feed(control(Request{1, ListRequest{}}).substr(0, 7));
        f.session.check_timeouts(f.io.clock_ms + 2000);
        CHECK(f.io.closed);
        CHECK(parse_list_reply(f.io.controls().back()).error().code == ErrorCode::stalled);
    }
    SUBCASE("an upload whose data stops; its bytes are kept")
    {
        f.feed(control(Request{2, PutRequest{"u", 100, false}}));
        f.io.run_jobs();
        f.feed(data_frame("0123456789"));
        f.io.clock_ms += 1500;
        f.feed(data_frame("0123456789")); // progress resets the clock
        f.session.check_timeouts(f.io.clock_ms + 1999);
        CHECK_FALSE(f.io.closed);
        f.session.check_timeouts(f.io.clock_ms + 2000);
        f.io.run_jobs();
        CHECK(f.io.closed);
        CHECK(parse_put_reply(f.io.controls().back()).error().code == ErrorCode::stalled);
        CHECK(f.root.hidden_entries() == 2);
    }
    SUBCASE("a long transfer that keeps moving never times out")
    {
        f.root.write("big", pattern(50000, 7));
        f.config.chunk_size = 1000;
        f.config.send_high_water = 1000;
        f.io.hold_writes = true;
        f.feed(control(Request{3, GetRequest{"big", 0}}));
        for (int step = 0; step < 200 && f.session.state() != Session::State::awaiting_request; ++step) {
            f.io.run_jobs();
            f.io.clock_ms += 1000; // 1 s per chunk: far longer than the stall timeout in total
            f.io.unsent = 0;
            f.session.on_sent();
            f.session.check_timeouts(f.io.clock_ms);
        }
        CHECK_FALSE(f.io.closed);
        CHECK(f.session.state() == Session::State::awaiting_request);
    }
}

TEST_CASE("transfer and upload-size limits refuse with their own codes, then close")
{
    Fixture f;
    f.hello();
    SUBCASE("too many transfers")
    {
        f.config.max_transfers = 1;
        f.counters.active_transfers = 1; // another connection holds the only slot
        f.root.write("f", "x");
        f.feed(control(Request{1, GetRequest{"f", 0}}));
        CHECK(f.io.closed);
        CHECK(parse_get_reply(f.io.controls().back()).error().code == ErrorCode::too_many_transfers);
        CHECK(f.counters.active_transfers == 1);
    }
    SUBCASE("upload too large")
    {
        f.config.max_upload_size = 1000;
        f.feed(control(Request{1, PutRequest{"f", 1001, false}}));
        CHECK(f.io.closed);
        CHECK(parse_put_reply(f.io.controls().back()).error().code == ErrorCode::upload_too_large);
        CHECK(f.root.hidden_entries() == 0);
    }
    SUBCASE("a transfer holds a slot only while it runs")
    {
        f.root.write("f", "abc");
        f.feed(control(Request{1, GetRequest{"f", 0}}));
        CHECK(f.counters.active_transfers == 1);
        f.io.run_jobs();
        CHECK(f.counters.active_transfers == 0);
    }
}

TEST_CASE("stats count connections, transfers, bytes and errors")
{
    Fixture f;
    f.counters.connections_now = 1;
    f.counters.connections_total = 1;
    f.hello();
    f.root.write("a", "12345");
    f.feed(control(Request{1, GetRequest{"a", 0}}));
    f.io.run_jobs();
    f.feed(control(Request{2, PutRequest{"b", 3, false}}));
    f.io.run_jobs();
    f.feed(data_frame("xyz"));
    f.feed(control(Request{2, CommitRequest{sha256_of("xyz")}}));
    f.io.run_jobs();
    f.feed(control(Request{3, StatRequest{"missing"}}));
    f.io.run_jobs();
    f.io.controls();
    f.feed(control(Request{4, StatsRequest{}}));
    auto replies = f.io.controls();
    REQUIRE(replies.size() == 1);
    auto stats = parse_stats_reply(replies[0]);
    REQUIRE(stats);
    CHECK(stats->body.connections_now == 1);
    CHECK(stats->body.transfers_total == 2);
    CHECK(stats->body.transfers_now == 0);
    CHECK(stats->body.bytes_out == 5);
    CHECK(stats->body.bytes_in == 3);
    CHECK(stats->body.errors == std::map<std::string, std::uint64_t>{{"not_found", 1}});
}

TEST_CASE("with a token file, hello needs a token; a read-only token cannot put")
{
    Fixture f;
    f.config.tokens = std::make_shared<TokenTable>(
        "", AccessList::parse("writer-0123456789abcdef rw\nreader-0123456789abcdef ro\n").value());
    f.config.auth_failure_delay = std::chrono::milliseconds(1000);

    SUBCASE("a wrong or missing token is refused after the delay, then closes")
    {
        f.feed(control(Request{0, HelloRequest{1, "", "guess-0123456789abcdef"}}));
        CHECK(f.io.controls().empty());
        CHECK(f.session.state() == Session::State::refusing);
        f.feed(control(Request{1, ListRequest{}})); // ignored while refusing
        f.session.check_timeouts(f.io.clock_ms + 999);
        CHECK(f.io.controls().empty());
        f.session.check_timeouts(f.io.clock_ms + 1000);
        auto replies = f.io.controls();
        REQUIRE(replies.size() == 1);
        CHECK(parse_hello_reply(replies[0]).error().code == ErrorCode::unauthorized);
        CHECK(f.io.closed);
    }
    SUBCASE("a read-write token")
    {
        f.feed(control(Request{0, HelloRequest{1, "", "writer-0123456789abcdef"}}));
        auto hello = parse_hello_reply(f.io.controls().at(0));
        REQUIRE(hello);
        CHECK(hello->body.access == "rw");
        f.feed(control(Request{1, PutRequest{"w", 1, false}}));
        f.io.run_jobs();
        CHECK(parse_put_reply(f.io.controls().at(0)));
    }
    SUBCASE("a read-only token reads but cannot put")
    {
        f.feed(control(Request{0, HelloRequest{1, "", "reader-0123456789abcdef"}}));
        CHECK(parse_hello_reply(f.io.controls().at(0))->body.access == "ro");
        f.feed(control(Request{1, PutRequest{"w", 1, false}}));
        CHECK(parse_put_reply(f.io.controls().at(0)).error().code == ErrorCode::forbidden);
        CHECK_FALSE(f.io.closed);
        f.feed(control(Request{2, ListRequest{}}));
        f.io.run_jobs();
        CHECK(parse_list_reply(f.io.controls().at(0)));
    }
}

TEST_CASE("a read-only server refuses every put")
{
    Fixture f;
    f.config.read_only = true;
    f.feed(control(Request{0, HelloRequest{}}));
    CHECK(parse_hello_reply(f.io.controls().at(0))->body.access == "ro");
    f.feed(control(Request{1, PutRequest{"w", 1, false}}));
    CHECK(parse_put_reply(f.io.controls().at(0)).error().code == ErrorCode::forbidden);
    CHECK(f.root.hidden_entries() == 0);
}

namespace {

std::string xxh3_of(std::string_view bytes)
{
    TransferHash hash(HashKind::xxh3_128);
    hash.update(bytes.data(), bytes.size());
    return hash.hex_digest();
}

} // namespace

TEST_CASE("hello offers sha256 and xxh3-128")
{
    Fixture f;
    f.feed(control(Request{0, HelloRequest{}}));
    const auto replies = f.io.controls();
    REQUIRE(replies.size() == 1);
    const auto hello = parse_hello_reply(replies[0]);
    REQUIRE(hello);
    CHECK(hello->body.hashes == std::vector<std::string>{"sha256", "xxh3-128"});
}

TEST_CASE("a get with xxh3-128 ends with the whole file's XXH3, also from an offset")
{
    Fixture f;
    f.config.chunk_size = 1000;
    f.hello();
    const std::string content = pattern(4500, 9);
    f.root.write("data.bin", content);
    for (const std::uint64_t offset : {std::uint64_t{0}, std::uint64_t{1234}}) {
        CAPTURE(offset);
        f.feed(control(Request{5, GetRequest{"data.bin", offset, HashKind::xxh3_128}}));
        f.io.run_jobs();
        std::vector<std::string> controls;
        std::string data;
        f.io.drain(controls, data);
        REQUIRE(controls.size() == 2);
        CHECK(data == content.substr(offset));
        const auto trailer = parse_trailer(controls[1]);
        REQUIRE(trailer);
        CHECK(trailer->body.hash == HashKind::xxh3_128);
        CHECK(trailer->body.digest == xxh3_of(content));
    }
}

TEST_CASE("a put with xxh3-128 commits with an XXH3 digest; a SHA-256 one is refused")
{
    Fixture f;
    f.config.chunk_size = 1000;
    f.hello();
    const std::string content = pattern(3500, 10);
    f.feed(control(Request{8, PutRequest{"fast.bin", content.size(), false, HashKind::xxh3_128}}));
    f.io.run_jobs();
    auto replies = f.io.controls();
    REQUIRE(replies.size() == 1);
    REQUIRE(parse_put_reply(replies[0]));
    f.feed(data_frame(content));
    f.io.run_jobs();

    f.feed(control(Request{8, CommitRequest{sha256_of(content)}}));
    f.io.run_jobs();
    replies = f.io.controls();
    REQUIRE(replies.size() == 1);
    CHECK(parse_commit_reply(replies[0]).error().code == ErrorCode::bad_request);
    CHECK(f.session.state() == Session::State::receiving_file);
    CHECK_FALSE(f.root.exists("fast.bin"));

    f.feed(control(Request{8, CommitRequest{xxh3_of(content), HashKind::xxh3_128}}));
    f.io.run_jobs();
    replies = f.io.controls();
    REQUIRE(replies.size() == 1);
    const auto committed = parse_commit_reply(replies[0]);
    REQUIRE(committed);
    CHECK(committed->body.hash == HashKind::xxh3_128);
    CHECK(committed->body.digest == xxh3_of(content));
    CHECK(f.root.read("fast.bin") == content);
}

TEST_CASE("resuming an upload with another hash hashes the kept bytes again")
{
    const std::string content = pattern(5000, 11);
    TempRoot served;
    interrupt_upload(served, "r.bin", content, 3000);
    Fixture second(served.path());
    second.hello();
    second.feed(control(Request{2, PutRequest{"r.bin", content.size(), true, HashKind::xxh3_128}}));
    second.io.run_jobs();
    auto replies = second.io.controls();
    REQUIRE(replies.size() == 1);
    const auto resumed = parse_put_reply(replies[0]);
    REQUIRE(resumed);
    CHECK(resumed->body.offset == 3000);
    CHECK(resumed->body.hash == HashKind::xxh3_128);
    REQUIRE(resumed->body.prefix_digest);
    CHECK(*resumed->body.prefix_digest == xxh3_of(content.substr(0, 3000)));

    second.feed(data_frame(content.substr(3000)));
    second.feed(control(Request{2, CommitRequest{xxh3_of(content), HashKind::xxh3_128}}));
    second.io.run_jobs();
    replies = second.io.controls();
    REQUIRE(replies.size() == 1);
    REQUIRE(parse_commit_reply(replies[0]));
    CHECK(served.read("r.bin") == content);
}

TEST_CASE("a repeated get of an unchanged file takes its digest from the cache")
{
    Fixture f;
    f.config.chunk_size = 1000;
    f.hello();
    const std::string content = pattern(4500, 12);
    f.root.write("kept.bin", content);
    // The cache only trusts files whose last change is over a second old.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));

    const auto get = [&](HashKind hash) {
        f.feed(control(Request{5, GetRequest{"kept.bin", 0, hash}}));
        f.io.run_jobs();
        std::vector<std::string> controls;
        std::string data;
        f.io.drain(controls, data);
        REQUIRE(controls.size() == 2);
        CHECK(data == content);
        const auto trailer = parse_trailer(controls[1]);
        REQUIRE(trailer);
        return trailer->body.digest;
    };
    CHECK(f.library->digests().size() == 0);
    CHECK(get(HashKind::sha256) == sha256_of(content));
    CHECK(f.library->digests().size() == 1);

    // Proof that the second get hashes nothing: a planted entry is what it sends.
    struct ::stat st {};
    REQUIRE(::stat((f.root.path() + "/kept.bin").c_str(), &st) == 0);
    f.library->digests().remember(FileIdentity::of(st), HashKind::sha256, std::string(64, 'a'));
    CHECK(get(HashKind::sha256) == std::string(64, 'a'));
    // Another hash is another entry.
    CHECK(get(HashKind::xxh3_128) == xxh3_of(content));
    CHECK(f.library->digests().size() == 2);

    // New content (even of the same size) is a new file to the cache.
    const std::string changed = pattern(4500, 13);
    f.root.write("kept.bin", changed);
    f.feed(control(Request{6, GetRequest{"kept.bin", 0}}));
    f.io.run_jobs();
    std::vector<std::string> controls;
    std::string data;
    f.io.drain(controls, data);
    REQUIRE(controls.size() == 2);
    CHECK(data == changed);
    CHECK(parse_trailer(controls[1])->body.digest == sha256_of(changed));
}

TEST_CASE("a download whose digest is known goes out as file frames, the rest as read chunks")
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
        std::vector<std::string> controls;
        std::string data;
        f.io.drain(controls, data);
        REQUIRE(controls.size() == 2);
        CHECK(data == content.substr(offset));
        const auto trailer = parse_trailer(controls[1]);
        REQUIRE(trailer);
        CHECK(trailer->body.digest == sha256_of(content));
    };
    get(0); // first time: read and hashed, which fills the cache
    CHECK(f.io.file_frames_sent == 0);
    get(0);
    // Ranges of 1500, 1500 and 1000, each in frames of at most chunk_size
    // (PROTOCOL.md 2): 1000 + 500, 1000 + 500, 1000.
    CHECK(f.io.file_frames_sent == 5);
    CHECK(f.io.largest_file_frame == 1000);
    get(2500); // a resumed download needs no prefix hashing either
    CHECK(f.io.file_frames_sent == 7);

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
        std::vector<std::string> controls;
        std::string data;
        f.io.drain(controls, data);
        REQUIRE(controls.size() == 2);
        CHECK(data.empty()); // the change is seen before the first frame's size goes out
        CHECK(parse_trailer(controls[1]).error().code == ErrorCode::file_changed);
    }
}

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

enum class SendPath { read_chunks, file_frames, resumed };

// One get of a 5000-byte file that `change` alters after the first chunk
// has gone out; returns what the session sent in place of the trailer.
void check_changed_get(SendPath path_kind, const std::function<void(const std::string&)>& change,
                       const std::string& expected_message)
{
    Fixture f;
    f.config.chunk_size = 1000;
    f.config.file_frame_size = 1000;
    f.config.send_high_water = 1; // one chunk at a time: the file changes between two
    f.hello();
    const std::string content = pattern(5000, 21);
    const std::string path = f.root.path() + "/live.bin";
    f.root.write("live.bin", content);
    // Older than any timestamp tick, so that the change below moves the times.
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    std::uint64_t offset = 0;
    if (path_kind == SendPath::file_frames) {
        f.io.file_frames = true;
        f.feed(control(Request{4, GetRequest{"live.bin", 0}})); // fills the cache
        f.io.run_jobs();
        REQUIRE(parse_trailer(f.io.controls().back()));
    } else if (path_kind == SendPath::resumed) {
        offset = 1500;
    }

    f.io.hold_writes = true;
    f.feed(control(Request{5, GetRequest{"live.bin", offset}}));
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
    std::vector<std::string> controls;
    std::string data;
    f.io.drain(controls, data);
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
    for (const auto path_kind : {SendPath::read_chunks, SendPath::file_frames, SendPath::resumed}) {
        for (const auto& [what, change, message] : changes) {
            CAPTURE(static_cast<int>(path_kind));
            CAPTURE(what);
            check_changed_get(path_kind, change, message);
        }
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
    f.io.hold_writes = true;
    f.feed(control(Request{5, GetRequest{"tail.bin", 0}}));
    f.io.run_jobs();
    CHECK(f.io.file_frames_sent == 1);
    CHECK(f.session.state() == Session::State::sending_file);
    CHECK(f.io.jobs.empty());
    overwrite_in_place(path, pattern(100, 25));
    f.io.unsent = 0;
    f.session.on_sent();
    f.io.run_jobs();
    const auto controls = f.io.controls();
    REQUIRE(controls.size() == 2);
    CHECK(parse_trailer(controls.back()).error().code == ErrorCode::file_changed);
    CHECK(f.session.state() == Session::State::awaiting_request);
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

TEST_CASE("a transfer below the minimum rate gives its slot to a waiting one; a steady one keeps it")
{
    Fixture f;
    f.config.max_transfers = 1;
    f.config.min_rate = 1000;
    f.config.stall_timeout = std::chrono::milliseconds(2000);
    f.root.write("f", "content");
    f.hello();
    FakeIo other_io;
    other_io.client_address = "192.0.2.2";
    Session other(other_io, *f.library, f.config, f.counters);
    other.on_bytes(control(Request{0, HelloRequest{}}));
    other_io.controls();

    f.feed(control(Request{1, PutRequest{"up", 100000, false}}));
    f.io.run_jobs();
    REQUIRE(f.session.state() == Session::State::receiving_file);
    f.io.controls();
    // Half a second apart, `bytes` each time, checked by the sweep.
    const auto send_for = [&](std::uint64_t milliseconds, std::size_t bytes) {
        for (std::uint64_t at = 0; at < milliseconds; at += 500) {
            f.io.clock_ms += 500;
            other_io.clock_ms = f.io.clock_ms;
            f.feed(data_frame(std::string(bytes, 'x')));
            f.io.run_jobs();
            f.session.check_timeouts(f.io.clock_ms);
        }
    };
    const auto other_get = [&] {
        other.on_bytes(control(Request{2, GetRequest{"f", 0}}));
        return other_io.controls();
    };

    SUBCASE("a trickle is judged only over a whole window, then loses its slot")
    {
        send_for(1500, 1); // a trickle, but not yet a whole window of one
        auto replies = other_get();
        CHECK(other_io.closed);
        CHECK(parse_get_reply(replies.back()).error().code == ErrorCode::too_many_transfers);
    }
    SUBCASE("a trickle loses its slot once a whole window was too slow")
    {
        send_for(2500, 1);
        other_get();
        CHECK_FALSE(other_io.closed); // it took the trickle's slot: still one in use
        CHECK(f.counters.active_transfers == 1);
        // The trickle learns it at its next sweep; its bytes stay resumable.
        f.session.check_timeouts(f.io.clock_ms);
        f.io.run_jobs();
        CHECK(f.io.closed);
        CHECK(parse_put_reply(f.io.controls().back()).error().code == ErrorCode::too_slow);
        CHECK(f.root.hidden_entries() == 2);
        other_io.run_jobs();
        CHECK(parse_get_reply(other_io.controls().front()));
        CHECK(other.state() == Session::State::awaiting_request);
        CHECK(f.counters.active_transfers == 0);
    }
    SUBCASE("a slow but steady transfer above the minimum keeps its slot")
    {
        send_for(6000, 600); // 1200 bytes/s
        auto replies = other_get();
        CHECK(other_io.closed);
        CHECK(parse_get_reply(replies.back()).error().code == ErrorCode::too_many_transfers);
        CHECK_FALSE(f.io.closed);
    }
    SUBCASE("with no minimum rate, nothing is taken")
    {
        f.config.min_rate = 0;
        send_for(6000, 1);
        other_get();
        CHECK(other_io.closed);
        CHECK_FALSE(f.io.closed);
    }
}

TEST_CASE("one address holds at most its share of the transfer slots")
{
    Counters counters;
    Config config;
    config.max_transfers = 4; // a share of 2 by default
    auto first = counters.take_transfer("192.0.2.1", config);
    auto second = counters.take_transfer("192.0.2.1", config);
    REQUIRE(first);
    REQUIRE(second);
    auto third = counters.take_transfer("192.0.2.1", config);
    REQUIRE_FALSE(third);
    CHECK(third.error().code == ErrorCode::too_many_transfers);
    CHECK(counters.take_transfer("192.0.2.2", config));
    counters.give_back_transfer(first.value());
    CHECK(counters.take_transfer("192.0.2.1", config));
    config.max_transfers_per_address = 5;
    CHECK(counters.take_transfer("192.0.2.1", config));
}

TEST_CASE("time in which the server did not run is not held against its peers")
{
    Fixture f;
    f.config.idle_timeout = std::chrono::milliseconds(5000);
    f.config.stall_timeout = std::chrono::milliseconds(2000);
    f.hello();
    SUBCASE("a running upload")
    {
        f.feed(control(Request{1, PutRequest{"u", 100, false}}));
        f.io.run_jobs();
        f.feed(data_frame("0123456789"));
        // 1 s watched, then 9 s stopped: the peer still has 1 s left.
        f.session.check_timeouts(f.io.clock_ms + 10000, 9000);
        CHECK_FALSE(f.io.closed);
        f.session.check_timeouts(f.io.clock_ms + 10999);
        CHECK_FALSE(f.io.closed);
        f.session.check_timeouts(f.io.clock_ms + 11000);
        f.io.run_jobs();
        CHECK(f.io.closed);
    }
    SUBCASE("an idle connection")
    {
        f.session.check_timeouts(f.io.clock_ms + 60000, 59000);
        CHECK_FALSE(f.io.closed);
        f.session.check_timeouts(f.io.clock_ms + 64000);
        CHECK(f.io.closed);
    }
}

namespace {

// A file system of 8 MiB of its own (tmpfs; the tests run as root), so that
// a full disk is tested without filling a real one. Unmounted whatever happens.
class SmallDisk {
public:
    SmallDisk()
    {
        std::string pattern = (std::filesystem::temp_directory_path() / "ferry-small-XXXXXX").string();
        path_ = ::mkdtemp(pattern.data());
        mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, "size=8m") == 0;
        REQUIRE_MESSAGE(mounted_, "mount tmpfs: " << std::strerror(errno));
    }
    SmallDisk(const SmallDisk&) = delete;
    SmallDisk& operator=(const SmallDisk&) = delete;
    ~SmallDisk()
    {
        if (mounted_) {
            ::umount2(path_.c_str(), MNT_DETACH);
        }
        ::rmdir(path_.c_str());
    }
    const std::string& path() const { return path_; }
    int hidden_entries() const
    {
        int count = 0;
        for (const auto& entry : std::filesystem::directory_iterator(path_)) {
            count += entry.path().filename().string().starts_with(".") ? 1 : 0;
        }
        return count;
    }

private:
    std::string path_;
    bool mounted_ = false;
};

std::optional<Error> put_refusal(Fixture& f, std::uint64_t id, const std::string& name, std::uint64_t size,
                                 bool resume = false)
{
    f.feed(control(Request{id, PutRequest{name, size, resume}}));
    f.io.run_jobs();
    const auto replies = f.io.controls();
    REQUIRE(replies.size() == 1);
    const auto reply = parse_put_reply(replies[0]);
    if (reply) {
        return std::nullopt;
    }
    return reply.error();
}

} // namespace

TEST_CASE("a put that cannot fit is refused at once; an accepted one holds its space")
{
    SmallDisk disk;
    constexpr std::uint64_t MiB = 1024 * 1024;

    Fixture too_big(disk.path());
    too_big.hello();
    const auto refused = put_refusal(too_big, 1, "huge.bin", 16 * MiB);
    REQUIRE(refused);
    CHECK(refused->code == ErrorCode::no_space);
    CHECK(too_big.session.state() == Session::State::awaiting_request);
    CHECK_FALSE(too_big.io.closed);
    CHECK(disk.hidden_entries() == 0); // nothing left to keep the disk full

    // Two uploads that fit one at a time but not together: the second is
    // refused at its put, not after the first has filled the disk.
    Fixture first(disk.path());
    first.hello();
    REQUIRE_FALSE(put_refusal(first, 2, "a.bin", 5 * MiB));
    Fixture second(disk.path());
    second.hello();
    const auto crowded = put_refusal(second, 3, "b.bin", 5 * MiB);
    REQUIRE(crowded);
    CHECK(crowded->code == ErrorCode::no_space);

    // The first is cut after 1 MiB: kept for resume, it gives back the rest
    // of its reservation, and the second now fits.
    const std::string content = pattern(5 * MiB, 31);
    first.feed(data_frame(content.substr(0, MiB)));
    first.session.on_peer_closed();
    first.io.run_jobs();
    REQUIRE(first.session.state() == Session::State::closed);
    CHECK(disk.hidden_entries() == 2);
    REQUIRE_FALSE(put_refusal(second, 4, "b.bin", 5 * MiB));

    // Resuming the first needs 4 MiB more, which the second holds: refused,
    // and the kept megabyte stays for a resume once space returns.
    Fixture again(disk.path());
    again.hello();
    const auto resume_refused = put_refusal(again, 5, "a.bin", 5 * MiB, true);
    REQUIRE(resume_refused);
    CHECK(resume_refused->code == ErrorCode::no_space);
    second.feed(control(Request{4, AbortRequest{true}}));
    second.io.run_jobs();
    CHECK(disk.hidden_entries() == 2);
    REQUIRE_FALSE(put_refusal(again, 6, "a.bin", 5 * MiB, true));
    again.feed(data_frame(content.substr(MiB)));
    again.feed(control(Request{6, CommitRequest{sha256_of(content)}}));
    again.io.run_jobs();
    const auto committed = again.io.controls();
    REQUIRE(committed.size() == 1);
    CHECK(parse_commit_reply(committed[0]));
}
