// The Session driven without sockets (see session_fixture.hpp).
// Limits on transfers: slots, per-address shares, minimum rate, upload size
// and the disk's free space.
#include "session_fixture.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <sys/mount.h>
#include <unistd.h>

using namespace ferry;
using namespace ferry::server;
using namespace ferry::server::session_test;

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
    const auto replies = f.io.replies(1);
    const auto reply = parse_put_reply(replies[0]);
    if (reply) {
        return std::nullopt;
    }
    return reply.error();
}

} // namespace

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
    const auto committed = again.io.replies(1);
    CHECK(parse_commit_reply(committed[0]));
}

// A client may start its next transfer on another connection, served by
// another worker thread, the moment it reads a transfer's last reply: by
// then the slot must be free, or that transfer is refused with
// too_many_transfers for a slot nobody uses any more.
TEST_CASE("a transfer's slot is free before its last reply can reach the peer")
{
    Fixture f;
    f.config.max_transfers = 1;
    f.config.chunk_size = 1000;
    f.hello();
    f.root.write("kept.bin", pattern(2500, 4));
    std::vector<std::size_t> active_at_send;
    f.io.on_send = [&] { active_at_send.push_back(f.counters.active_transfers.load()); };

    SUBCASE("a committed put")
    {
        const std::string content = pattern(1500, 5);
        f.feed(control(Request{2, PutRequest{"new.bin", content.size(), false}}));
        f.io.run_jobs();
        f.feed(data_frame(content));
        f.io.run_jobs();
        f.io.controls();
        active_at_send.clear();
        f.feed(control(Request{2, CommitRequest{sha256_of(content)}}));
        f.io.run_jobs();
        REQUIRE(parse_commit_reply(f.io.replies(1)[0]));
    }
    SUBCASE("a failed commit")
    {
        f.feed(control(Request{2, PutRequest{"new.bin", 3, false}}));
        f.io.run_jobs();
        f.feed(data_frame("abc"));
        f.io.run_jobs();
        f.io.controls();
        active_at_send.clear();
        f.feed(control(Request{2, CommitRequest{sha256_of("xyz")}}));
        f.io.run_jobs();
        REQUIRE_FALSE(parse_commit_reply(f.io.replies(1)[0]));
    }
    SUBCASE("a get's trailer")
    {
        f.feed(control(Request{2, GetRequest{"kept.bin", 0}}));
        f.io.run_jobs(); // the reply, every chunk, then the trailer
        const auto sent = f.io.drain();
        REQUIRE(parse_trailer(sent.controls.back()));
    }
    REQUIRE_FALSE(active_at_send.empty());
    CHECK(active_at_send.back() == 0);
    CHECK(f.counters.active_transfers.load() == 0);
}
