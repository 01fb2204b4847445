// The Session driven without sockets (see session_fixture.hpp).
// Uploads: staging, commit, resume, and reading the socket only as fast as
// the disk writes.
#include "session_fixture.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace ferry;
using namespace ferry::server;
using namespace ferry::server::session_test;

TEST_CASE("put publishes only after a matching commit")
{
    Fixture f;
    f.config.chunk_size = 1000;
    f.hello();
    f.root.write("doc.txt", "old content");
    const std::string content = pattern(3500, 3);

    f.feed(control(Request{8, PutRequest{"doc.txt", content.size(), false}}));
    f.io.run_jobs();
    auto replies = f.io.replies(1);
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
        replies = f.io.replies(1);
        auto committed = parse_commit_reply(replies[0]);
        REQUIRE(committed);
        CHECK(committed->body.file.size == content.size());
        CHECK(f.root.read("doc.txt") == content);
    }
    SUBCASE("wrong hash: nothing published, no partial left")
    {
        f.feed(control(Request{8, CommitRequest{sha256_of("something else")}}));
        f.io.run_jobs();
        replies = f.io.replies(1);
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
    auto replies = second.io.replies(1);
    auto resumed = parse_put_reply(replies[0]);
    REQUIRE(resumed);
    CHECK(resumed->body.offset == 3000);
    REQUIRE(resumed->body.prefix_digest);
    CHECK(*resumed->body.prefix_digest == sha256_of(content.substr(0, 3000)));

    second.feed(data_frame(content.substr(3000)));
    second.feed(control(Request{2, CommitRequest{sha256_of(content)}}));
    second.io.run_jobs();
    replies = second.io.replies(1);
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
    auto replies = f.io.replies(1);
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
    auto replies = f.io.replies(1);
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
    auto replies = f.io.replies(2);
    CHECK(parse_list_reply(replies[0]).error().code == ErrorCode::unexpected_frame);
    auto aborted = parse_abort_reply(replies[1]);
    REQUIRE(aborted);
    CHECK_FALSE(aborted->body.kept);
    CHECK(f.root.hidden_entries() == 0);
    CHECK_FALSE(f.root.exists("y"));
}
