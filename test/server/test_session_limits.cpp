// The Session driven without sockets (see session_fixture.hpp).
// Limits on transfers: slots, per-address shares, minimum rate, upload size
// and the disk's free space.
#include "partial_upload.hpp"
#include "session_fixture.hpp"

#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <thread>

using namespace ferry;
using namespace ferry::server;
using namespace ferry::server::session_test;

namespace {

// A file system of 8 MiB of its own (tmpfs; the tests run as root), so that
// a full disk is tested without filling a real one. Unmounted whatever happens.
class SmallDisk {
public:
    explicit SmallDisk(const char* options = "size=8m")
    {
        std::string pattern = (std::filesystem::temp_directory_path() / "ferry-small-XXXXXX").string();
        path_ = ::mkdtemp(pattern.data());
        mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, options) == 0;
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

TEST_CASE("a put refused for space takes it from the slowest uploads that hold some, and no more of them")
{
    Counters counters;
    Config config;
    config.max_transfers = 8;
    const auto take = [&](const char* address, std::int64_t slow_rate, std::uint64_t reserved) {
        auto ticket = counters.take_transfer(address, config);
        REQUIRE(ticket);
        ticket.value()->slow_rate = slow_rate;
        ticket.value()->reserved = reserved;
        return ticket.value();
    };
    const auto steady = take("192.0.2.1", -1, 900);     // fast enough: never taken
    const auto slow = take("192.0.2.2", 100, 300);      // slow
    const auto slowest = take("192.0.2.3", 5, 200);     // slowest: first
    const auto nothing_held = take("192.0.2.4", 0, 0);  // holds no space
    const auto slow_too = take("192.0.2.5", 1000, 50);  // not needed once 500 are found
    CHECK(counters.take_slow_reservations(450) == 500);
    CHECK(slowest->space_taken);
    CHECK(slow->space_taken);
    CHECK_FALSE(slow_too->space_taken);
    CHECK_FALSE(steady->space_taken);
    CHECK_FALSE(nothing_held->space_taken);
    // Their slots stay theirs until they end (no slot changed hands).
    CHECK_FALSE(slowest->preempted);
    CHECK(counters.active_transfers == 5);
    // Those taken count first for the next put: enough of them, and none
    // more is taken; too few, and the rest must come from others.
    CHECK(counters.take_slow_reservations(300) == 500);
    CHECK_FALSE(slow_too->space_taken);
    CHECK(counters.take_slow_reservations(1000) == 0);
    CHECK_FALSE(slow_too->space_taken);
    CHECK(counters.take_slow_reservations(520) == 550);
    CHECK(slow_too->space_taken);
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

namespace {

// Takes what is left of `disk`: blocks into one file, then inodes into
// empty ones, each until the file system says no (ENOSPC).
void fill(const SmallDisk& disk)
{
    const std::string filler = disk.path() + "/filler";
    const int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    const std::string block(64 * 1024, 'f');
    for (std::size_t size = block.size(); size > 0; size /= 2) {
        while (::write(fd, block.data(), size) == static_cast<ssize_t>(size)) {
        }
    }
    ::close(fd);
    for (int i = 0;; ++i) {
        const int more = ::open((disk.path() + "/inode-" + std::to_string(i)).c_str(), O_WRONLY | O_CREAT, 0600);
        if (more < 0) {
            REQUIRE(errno == ENOSPC);
            break;
        }
        ::close(more);
    }
}

std::unique_ptr<Library> open_disk(const SmallDisk& disk)
{
    auto library = Library::open(disk.path());
    REQUIRE(library);
    return std::move(library.value());
}

} // namespace

TEST_CASE("a reserved upload's checkpoints and keep need no space beyond its reservation, blocks or inodes")
{
    for (const char* options : {"size=8m", "size=8m,nr_inodes=8"}) {
        CAPTURE(options);
        SmallDisk disk(options);
        auto library = open_disk(disk);
        constexpr std::uint64_t size = 1024 * 1024;
        const std::string content = pattern(size, 7);
        {
            auto upload = PartialUpload::begin(*library, "x.bin", size, false);
            REQUIRE(upload);
            // Another writer takes every block and inode left after the put.
            fill(disk);
            REQUIRE_FALSE(upload.value()->append(std::span(content.data(), size / 4)));
            const auto checkpoint = upload.value()->checkpoint();
            CHECK_MESSAGE(!checkpoint, checkpoint->message);
            REQUIRE_FALSE(upload.value()->append(std::span(content.data() + size / 4, size / 4)));
            REQUIRE_FALSE(upload.value()->checkpoint());
            REQUIRE_FALSE(upload.value()->append(std::span(content.data() + size / 2, size / 4)));
            // The connection drops: its bytes are recorded, still on a full disk.
            const auto kept = upload.value()->keep();
            CHECK_MESSAGE(!kept, kept->message);
        }
        auto resumed = PartialUpload::begin(*library, "x.bin", size, true);
        REQUIRE_MESSAGE(resumed, resumed.error().message);
        CHECK(resumed.value()->received() == 3 * size / 4);
    }
}

TEST_CASE("a checkpoint whose state cannot be written keeps its bytes: a resume starts from the last state")
{
    SmallDisk disk;
    auto library = open_disk(disk);
    // Large enough to take its state's room at the put (kStateRoomFrom).
    const std::string content = pattern(kStateRoomFrom + 1000, 9);
    {
        auto upload = PartialUpload::begin(*library, "y.bin", content.size(), false);
        REQUIRE(upload);
        REQUIRE_FALSE(upload.value()->append(std::span(content.data(), 300)));
        REQUIRE_FALSE(upload.value()->checkpoint());
        REQUIRE_FALSE(upload.value()->append(std::span(content.data() + 300, 300)));
        // The spare the next state goes into is taken away: that state
        // cannot be put in place.
        const std::string spare =
            disk.path() + "/" + partial_entry(upload.value()->token(), PartialFile::spare);
        REQUIRE(::unlink(spare.c_str()) == 0);
        REQUIRE(upload.value()->checkpoint());
        upload.value()->drop_after_failure();
    }
    auto resumed = PartialUpload::begin(*library, "y.bin", content.size(), true);
    REQUIRE(resumed);
    CHECK(resumed.value()->received() == 300);
}

TEST_CASE("two puts that each fit alone, reserved at once: one of them gets its space, and a refusal is true when said")
{
    constexpr std::uint64_t MiB = 1024 * 1024;
    for (int round = 0; round < 20; ++round) {
        SmallDisk disk;
        auto library = open_disk(disk);
        std::atomic<int> ready{0};
        std::optional<Error> refusals[2];
        std::unique_ptr<PartialUpload> held[2];
        const auto put = [&](int which) {
            ++ready;
            while (ready < 2) {
            }
            auto upload = PartialUpload::begin(*library, "f" + std::to_string(which), 5 * MiB, false);
            if (upload) {
                held[which] = std::move(upload.value());
            } else {
                refusals[which] = upload.error();
            }
        };
        std::thread first(put, 0);
        std::thread second(put, 1);
        first.join();
        second.join();
        CAPTURE(round);
        CHECK((held[0] != nullptr) + (held[1] != nullptr) == 1);
        for (const auto& refused : refusals) {
            if (refused) {
                CAPTURE(refused->message);
                CHECK(refused->code == ErrorCode::no_space);
                // "needs N more bytes; the disk has F free": F < N.
                const auto needs = refused->message.find(" needs ");
                const auto has = refused->message.find("the disk has ");
                REQUIRE(needs != std::string::npos);
                REQUIRE(has != std::string::npos);
                CHECK(std::stoull(refused->message.substr(has + 13)) < std::stoull(refused->message.substr(needs + 7)));
            }
        }
    }
}
