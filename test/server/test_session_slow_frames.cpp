// The Session driven without sockets (see session_fixture.hpp).
// A frame that is not an upload's file data must arrive whole within the
// stall timeout of its first byte, however the peer spaces its bytes (a
// slowloris peer sends one now and then to hold its connection forever);
// an upload progresses only with file bytes.
#include "session_fixture.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>

using namespace ferry;
using namespace ferry::server;
using namespace ferry::server::session_test;

namespace {

constexpr std::uint64_t kStallMs = 2000;

void configure(Fixture& f)
{
    f.config.idle_timeout = std::chrono::milliseconds(60000);
    f.config.stall_timeout = std::chrono::milliseconds(kStallMs);
}

// Closing or closed: an upload's close waits for its last write, so
// FakeIo::closed may come only once the jobs run.
bool ended(const Fixture& f)
{
    return f.session.state() == Session::State::closing || f.session.state() == Session::State::closed;
}

// Feeds `bytes` one at a time, `step_ms` apart, with a sweep after each, and
// stops once the session closes: how long after the first byte it did
// (nullopt if it never did, though every byte but the last came).
std::optional<std::uint64_t> trickle(Fixture& f, const std::string& bytes, std::uint64_t step_ms)
{
    const std::uint64_t first = f.io.clock_ms;
    for (std::size_t i = 0; i + 1 < bytes.size(); ++i) {
        if (i > 0) {
            f.io.clock_ms += step_ms;
        }
        f.session.check_timeouts(f.io.clock_ms);
        if (ended(f)) {
            return f.io.clock_ms - first;
        }
        // The pool finishes what the session started meanwhile (an upload
        // writes its last chunk while it waits for the commit).
        f.io.run_jobs();
        f.feed(bytes.substr(i, 1));
    }
    // The last byte stays away: the sweep alone must end it.
    for (int sweeps = 0; sweeps < 100 && !ended(f); ++sweeps) {
        f.io.run_jobs();
        f.io.clock_ms += step_ms;
        f.session.check_timeouts(f.io.clock_ms);
    }
    return ended(f) ? std::optional(f.io.clock_ms - first) : std::nullopt;
}

// Whether an error reply names the request `id` (null: none).
bool has_id(const std::string& reply, std::optional<std::uint64_t> id)
{
    return reply.find("\"id\":" + (id ? std::to_string(*id) : std::string("null"))) != std::string::npos;
}

// The connection closed at the deadline (within one step of it) with
// `stalled`, said with `id`, and closed before the frame could end.
void check_stalled_at_deadline(Fixture& f, std::optional<std::uint64_t> closed_after, std::uint64_t step_ms,
                               std::optional<std::uint64_t> id)
{
    REQUIRE(closed_after);
    CHECK(*closed_after >= kStallMs);
    CHECK(*closed_after < kStallMs + step_ms);
    f.io.run_jobs();
    CHECK(f.io.closed);
    const auto controls = f.io.controls();
    REQUIRE_FALSE(controls.empty());
    const auto error = parse_list_reply(controls.back());
    REQUIRE_FALSE(error);
    CHECK(error.error().code == ErrorCode::stalled);
    CHECK(error.error().message.find("of its first byte") != std::string::npos);
    CHECK(has_id(controls.back(), id));
}

} // namespace

TEST_CASE("a request trickled in closes the connection at the stall timeout from its first byte")
{
    Fixture f;
    configure(f);
    const std::uint64_t step = 100; // far more often than the stall timeout

    SUBCASE("the hello")
    {
        const std::string frame = control(Request{1, HelloRequest{2, "", ""}});
        REQUIRE(frame.size() * step > kStallMs + 2 * step); // it cannot end before the deadline
        check_stalled_at_deadline(f, trickle(f, frame, step), step, std::nullopt);
    }
    SUBCASE("a request on a version-1 connection")
    {
        f.hello(1);
        const std::string frame = control(Request{2, StatRequest{"a-longer-name.txt"}});
        REQUIRE(frame.size() * step > kStallMs + 2 * step); // it cannot end before the deadline
        check_stalled_at_deadline(f, trickle(f, frame, step), step, std::nullopt);
    }
    SUBCASE("a request on a version-2 connection, after a served one")
    {
        f.hello();
        f.root.write("a.txt", "hello");
        f.feed(control(Request{2, StatRequest{"a.txt"}}));
        f.io.run_jobs();
        REQUIRE(parse_stat_reply(f.io.replies(1)[0]));
        f.io.clock_ms += 500;
        const std::string frame = control(Request{3, ListRequest{}});
        REQUIRE(frame.size() * step > kStallMs + 2 * step); // it cannot end before the deadline
        check_stalled_at_deadline(f, trickle(f, frame, step), step, std::nullopt);
    }
    SUBCASE("the header alone, a byte a second")
    {
        f.hello();
        const std::string frame = control(Request{2, ListRequest{}});
        check_stalled_at_deadline(f, trickle(f, frame.substr(0, 5), 600), 600, std::nullopt);
    }
    SUBCASE("a data frame outside an upload")
    {
        f.hello();
        check_stalled_at_deadline(f, trickle(f, data_frame(std::string(100, 'x')), step), step, std::nullopt);
    }
}

TEST_CASE("during an upload a trickled commit or data frame header ends it at the deadline; it stays resumable")
{
    Fixture f;
    configure(f);
    f.hello();
    const std::string content = pattern(100, 3);
    f.feed(control(Request{7, PutRequest{"u", content.size(), false}}));
    f.io.run_jobs();
    REQUIRE(parse_put_reply(f.io.replies(1)[0]));
    REQUIRE(f.session.state() == Session::State::receiving_file);

    SUBCASE("the commit")
    {
        f.feed(data_frame(content));
        f.io.run_jobs();
        const std::string frame = control(Request{7, CommitRequest{sha256_of(content)}});
        check_stalled_at_deadline(f, trickle(f, frame, 100), 100, 7);
    }
    SUBCASE("a data frame's header")
    {
        f.feed(data_frame(content.substr(0, 50)));
        f.io.run_jobs();
        check_stalled_at_deadline(f, trickle(f, data_frame(content.substr(50)).substr(0, 5), 600), 600, 7);
    }
    CHECK(f.root.hidden_entries() == 2); // kept for resume
}

TEST_CASE("an upload's file bytes are its progress; empty data frames are not")
{
    Fixture f;
    configure(f);
    f.hello();
    f.feed(control(Request{4, PutRequest{"u", 100, false}}));
    f.io.run_jobs();
    REQUIRE(parse_put_reply(f.io.replies(1)[0]));

    SUBCASE("empty data frames keep nothing alive")
    {
        f.feed(data_frame("0123456789"));
        f.io.run_jobs();
        const std::uint64_t last_file_byte = f.io.clock_ms;
        while (!ended(f) && f.io.clock_ms - last_file_byte < 10 * kStallMs) {
            f.io.clock_ms += 300;
            f.feed(data_frame(""));
            f.session.check_timeouts(f.io.clock_ms);
        }
        REQUIRE(ended(f));
        CHECK(f.io.clock_ms - last_file_byte >= kStallMs);
        CHECK(f.io.clock_ms - last_file_byte < kStallMs + 300);
        f.io.run_jobs();
        CHECK(f.io.closed);
        const auto controls = f.io.controls();
        REQUIRE_FALSE(controls.empty());
        CHECK(parse_put_reply(controls.back()).error().code == ErrorCode::stalled);
        CHECK(has_id(controls.back(), 4));
    }
    SUBCASE("a slow upload whose frames each come whole in time keeps going")
    {
        // A byte of file data every 1.5 s, each in its own frame sent at
        // once: slow (the rate rule's business), not stalled.
        for (int i = 0; i < 10; ++i) {
            f.io.clock_ms += 1500;
            f.feed(data_frame("x"));
            f.io.run_jobs();
            f.session.check_timeouts(f.io.clock_ms);
        }
        CHECK_FALSE(f.io.closed);
        CHECK(f.session.state() == Session::State::receiving_file);
    }
}

TEST_CASE("a frame's deadline is its own: each frame gets the whole of it, and idle time between frames is not held against the next")
{
    Fixture f;
    configure(f);
    f.hello();
    f.root.write("a.txt", "hello");
    for (int round = 0; round < 3; ++round) {
        f.io.clock_ms += 30000; // idle, below the idle timeout
        f.session.check_timeouts(f.io.clock_ms);
        const std::string frame = control(Request{static_cast<std::uint64_t>(10 + round), StatRequest{"a.txt"}});
        // The frame's bytes spread over just under the deadline.
        const std::uint64_t step = (kStallMs - 100) / (frame.size() - 1);
        for (std::size_t i = 0; i < frame.size(); ++i) {
            if (i > 0) {
                f.io.clock_ms += step;
            }
            f.session.check_timeouts(f.io.clock_ms);
            REQUIRE_FALSE(f.io.closed);
            f.feed(frame.substr(i, 1));
        }
        f.io.run_jobs();
        REQUIRE(parse_stat_reply(f.io.replies(1)[0]));
    }
}

TEST_CASE("a frame that waited in the inbox behind a job starts its deadline when it is read")
{
    Fixture f;
    configure(f);
    f.hello();
    f.root.write("a.txt", "hello");
    const std::string next = control(Request{3, ListRequest{}});
    f.feed(control(Request{2, StatRequest{"a.txt"}}) + next.substr(0, 3));
    REQUIRE(f.session.state() == Session::State::working);
    f.io.clock_ms += 3 * kStallMs; // our own disk was slow
    f.session.check_timeouts(f.io.clock_ms);
    f.io.run_jobs();
    REQUIRE(parse_stat_reply(f.io.replies(1)[0]));
    CHECK(f.session.reading_request());
    f.session.check_timeouts(f.io.clock_ms + kStallMs - 1);
    CHECK_FALSE(f.io.closed);
    f.session.check_timeouts(f.io.clock_ms + kStallMs);
    CHECK(f.io.closed);
}

TEST_CASE("time in which the server did not run does not count against a frame")
{
    Fixture f;
    configure(f);
    f.hello();
    f.feed(control(Request{2, ListRequest{}}).substr(0, 3));
    // 1 s watched, then 9 s stopped: the frame still has 1 s.
    f.session.check_timeouts(f.io.clock_ms + 10000, 9000);
    CHECK_FALSE(f.io.closed);
    f.session.check_timeouts(f.io.clock_ms + 10999);
    CHECK_FALSE(f.io.closed);
    f.session.check_timeouts(f.io.clock_ms + 11000);
    CHECK(f.io.closed);
}
