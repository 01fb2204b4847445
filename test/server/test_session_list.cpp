// The Session driven without sockets (see session_fixture.hpp).
// list, stat and stats: the small operations, paged lists included.
#include "session_fixture.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace ferry;
using namespace ferry::server;
using namespace ferry::server::session_test;

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
        auto after = f.io.replies(1);
        CHECK(parse_stats_reply(after[0])->id == 6);
    }

    // Without pages: one sorted reply, or list_too_large past the cap.
    f.io.hold_writes = false;
    f.feed(control(Request{7, ListRequest{}}));
    f.io.run_jobs();
    auto refused = f.io.replies(1);
    auto error = parse_list_reply(refused[0]);
    REQUIRE_FALSE(error);
    CHECK(error.error().code == ErrorCode::list_too_large);
    CHECK(f.session.state() == Session::State::awaiting_request);
    f.config.max_list_reply = 1 << 20;
    f.feed(control(Request{8, ListRequest{}}));
    f.io.run_jobs();
    auto whole = f.io.replies(1);
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
    auto replies = f.io.replies(1);
    auto stalled = parse_list_reply(replies[0]);
    REQUIRE_FALSE(stalled);
    CHECK(stalled.error().code == ErrorCode::stalled);
    f.io.run_jobs();
    CHECK(f.io.closed);
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
    auto replies = f.io.replies(1);
    auto stats = parse_stats_reply(replies[0]);
    REQUIRE(stats);
    CHECK(stats->body.connections_now == 1);
    CHECK(stats->body.transfers_total == 2);
    CHECK(stats->body.transfers_now == 0);
    CHECK(stats->body.bytes_out == 5);
    CHECK(stats->body.bytes_in == 3);
    CHECK(stats->body.errors == std::map<std::string, std::uint64_t>{{"not_found", 1}});
}
