// The Session driven without sockets (see session_fixture.hpp).
// Access: tokens at hello and a read-only server.
#include "session_fixture.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

using namespace ferry;
using namespace ferry::server;
using namespace ferry::server::session_test;

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
        auto replies = f.io.replies(1);
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
