// The Session driven without sockets (see session_fixture.hpp).
// Lifecycle and timeouts: shutdown and abandon, idle and stall timeouts, and
// time in which the server did not run.
#include "session_fixture.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

using namespace ferry;
using namespace ferry::server;
using namespace ferry::server::session_test;

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
        auto [controls, data] = f.io.drain();
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
        auto [controls, data] = f.io.drain();
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

TEST_CASE("a completion is dropped once the connection is torn down, or while closing without an upload")
{
    SUBCASE("torn down under the session: the stat's answer is never sent, nothing more starts")
    {
        Fixture f;
        f.hello();
        f.feed(control(Request{1, StatRequest{"missing.txt"}}));
        REQUIRE(f.io.jobs.size() == 1);
        f.io.torn = true;
        f.io.run_jobs();
        CHECK(f.io.controls().empty());
        CHECK_FALSE(f.session.job_in_flight());
    }
    SUBCASE("closing: the list job's page goes nowhere, the close goes on")
    {
        Fixture f;
        f.hello();
        f.feed(control(Request{2, ListRequest{}}));
        REQUIRE(f.io.jobs.size() == 1);
        f.session.on_peer_closed();
        CHECK_FALSE(f.io.closed); // waits for the job
        f.io.run_jobs();
        CHECK(f.io.controls().empty());
        CHECK(f.io.closed);
        CHECK(f.session.state() == Session::State::closed);
    }
}

// A server holds thousands of idle sessions (issue 15's E): between
// requests a session keeps no heap of its own, whatever it did before.
TEST_CASE("an idle session holds no heap after its replies, a list, a get and a put included")
{
    Fixture f;
    f.config.chunk_size = 1000;
    CHECK(f.session.held_bytes() == 0);
    f.hello();
    CHECK(f.session.held_bytes() == 0);

    f.root.write("data.bin", pattern(4500, 1));
    f.feed(control(Request{1, ListRequest{}}));
    f.io.run_jobs();
    CHECK(f.io.replies(1).size() == 1);
    CHECK(f.session.state() == Session::State::awaiting_request);
    CHECK(f.session.held_bytes() == 0);

    f.feed(control(Request{2, GetRequest{"data.bin", 0}}));
    f.io.run_one_job(); // opened: the download now runs
    CHECK(f.session.state() == Session::State::sending_file);
    CHECK(f.session.held_bytes() > 0);
    f.io.run_jobs();
    CHECK(f.io.drain().controls.size() == 2);
    CHECK(f.session.state() == Session::State::awaiting_request);
    CHECK(f.session.held_bytes() == 0);

    const std::string content = pattern(3500, 3);
    f.feed(control(Request{3, PutRequest{"up.bin", content.size(), false}}));
    f.io.run_jobs();
    CHECK(f.session.state() == Session::State::receiving_file);
    CHECK(f.session.held_bytes() > 0);
    f.feed(data_frame(content.substr(0, 2000)));
    f.feed(data_frame(content.substr(2000)));
    f.io.run_jobs();
    f.feed(control(Request{3, CommitRequest{sha256_of(content)}}));
    f.io.run_jobs();
    CHECK(parse_commit_reply(f.io.replies(2)[1]));
    CHECK(f.session.state() == Session::State::awaiting_request);
    CHECK(f.session.held_bytes() == 0);
}

// An idle connection parks its session (connection.hpp): the Standing is
// all it keeps, so a session made again from it must go on as before.
TEST_CASE("a session parked between requests and woken from its Standing goes on as before")
{
    Fixture f;
    f.config.tokens = std::make_shared<TokenTable>(
        "", AccessList::parse("reader-0123456789abcdef ro carol\n").value());
    CHECK(f.session.parkable());
    f.feed(control(Request{0, HelloRequest{2, "", "reader-0123456789abcdef"}}));
    REQUIRE(parse_hello_reply(f.io.controls().at(0)));
    f.feed(control(Request{1, StatRequest{"missing"}}));
    f.io.run_jobs();
    REQUIRE(f.io.controls().size() == 1);

    SUBCASE("only between requests with nothing in hand")
    {
        const std::string frame = control(Request{2, StatsRequest{}});
        f.feed(frame.substr(0, 3)); // part of a frame
        CHECK_FALSE(f.session.parkable());
        f.feed(frame.substr(3));
        CHECK(f.session.parkable());
        f.feed(control(Request{3, ListRequest{}}));
        CHECK_FALSE(f.session.parkable()); // its job runs
        f.io.run_jobs();
        CHECK(f.session.parkable());
        f.session.shutdown();
        CHECK_FALSE(f.session.parkable());
    }
    SUBCASE("hello, version, access, label and counts come back")
    {
        REQUIRE(f.session.parkable());
        Session::Standing standing = f.session.park();
        CHECK(sizeof(Session::Standing) <= 32);
        REQUIRE(standing.who);
        CHECK(standing.who->label == "carol");
        CHECK(standing.who->owner.has_value());
        f.io.clock_ms += 5;
        Session woken(f.io, *f.library, f.config, f.counters, std::move(standing));
        CHECK(woken.token_label() == "carol");
        CHECK(woken.protocol_version() == 2);
        CHECK(woken.held_bytes() == 0);
        f.io.drain();
        // Version 2's mkdir is known, the read-only token still forbids it.
        woken.on_bytes(control(Request{4, MkdirRequest{"d", false}}));
        f.io.run_jobs();
        auto refused = parse_mkdir_reply(f.io.controls().at(0));
        REQUIRE_FALSE(refused);
        CHECK(refused.error().code == ErrorCode::forbidden);
        // No hello_required: the hello holds.
        woken.on_bytes(control(Request{5, StatsRequest{}}));
        CHECK(parse_stats_reply(f.io.controls().at(0)));
        // The idle clock runs from the last activity, not from waking.
        const auto idle = static_cast<std::uint64_t>(f.config.idle_timeout.count());
        Session::Standing again = woken.park();
        CHECK_FALSE(again.idle_expired(f.io.clock_ms + idle - 1, 0, f.config));
        CHECK(again.idle_expired(f.io.clock_ms + idle, 0, f.config));
    }
}
