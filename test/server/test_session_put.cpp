// The Session driven without sockets (see session_fixture.hpp).
// Uploads: staging, commit, resume, and reading the socket only as fast as
// the disk writes.
#include "chunk_cache.hpp"
#include "session_fixture.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

using namespace ferry;
using namespace ferry::server;
using namespace ferry::server::session_test;

namespace {

// Arrays of this size that this binary allocated (a test sets it to its
// staging chunks' odd size, which nothing else asks for).
std::atomic<std::size_t> g_watched_array_size{0};
std::atomic<std::size_t> g_watched_arrays{0};

} // namespace

// Counts, then allocates as the standard one does: the staging chunks are
// page-aligned char arrays (sys::make_page_buffer).
void* operator new[](std::size_t size, std::align_val_t alignment)
{
    if (size != 0 && size == g_watched_array_size.load()) {
        ++g_watched_arrays;
    }
    const auto align = static_cast<std::size_t>(alignment);
    // aligned_alloc wants a size that is a multiple of the alignment.
    if (void* bytes = std::aligned_alloc(align, (std::max<std::size_t>(size, 1) + align - 1) / align * align)) {
        return bytes;
    }
    throw std::bad_alloc();
}

void operator delete[](void* bytes, std::align_val_t) noexcept
{
    std::free(bytes);
}

void operator delete[](void* bytes, std::size_t, std::align_val_t) noexcept
{
    std::free(bytes);
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

// The connection reads where receive_area() says: a data frame's payload
// lands in the staging chunk that is written, so the upload's bytes are
// never copied in user space; only headers and control frames pass through
// the loop's shared read buffer.
TEST_CASE("a put read where receive_area says lands every data byte in place, but for a tail that fits one read")
{
    Fixture f;
    // A chunk of 32 KiB (half the high-water) that 7000-byte frames cross.
    f.config.chunk_size = 1000;
    f.config.receive_high_water = 64 * 1024;
    f.hello();
    const std::string content = pattern(300'000, 9);
    f.feed(control(Request{4, PutRequest{"in-place.bin", content.size(), false, HashKind::xxh3_128}}));
    f.io.run_jobs();
    REQUIRE(parse_put_reply(f.io.replies(1)[0]));

    std::string stream;
    for (std::size_t at = 0; at < content.size(); at += 7000) {
        stream += data_frame(content.substr(at, 7000));
    }
    stream += control(Request{4, CommitRequest{xxh3_of(content), HashKind::xxh3_128}});

    std::array<char, 64 * 1024> scratch{};
    std::size_t in_place = 0;
    std::size_t through_scratch = 0;
    std::size_t reads = 0;
    for (std::size_t at = 0; at < stream.size(); ++reads) {
        if (!f.io.reading) {
            f.io.run_one_job(); // the disk catches up; reading resumes
            continue;
        }
        const std::span<char> area = f.session.receive_area(scratch);
        REQUIRE_FALSE(area.empty());
        const std::size_t got = std::min(area.size(), stream.size() - at);
        std::memcpy(area.data(), stream.data() + at, got); // what recv() does
        const bool scratch_used = area.data() >= scratch.data() && area.data() < scratch.data() + scratch.size();
        (scratch_used ? through_scratch : in_place) += got;
        at += got;
        f.session.on_bytes(area.first(got));
    }
    f.io.run_jobs();
    const auto replies = f.io.replies(1);
    const auto committed = parse_commit_reply(replies[0]);
    REQUIRE(committed);
    CHECK(f.root.read("in-place.bin") == content);
    // Until the rest of the file fits the scratch buffer, headers are read
    // alone (5 bytes), so payload never rides behind them. The last frames
    // and the commit then come in one read through the scratch buffer.
    const std::size_t tail = through_scratch - (stream.size() - content.size());
    CHECK(in_place + tail == content.size());
    CHECK(tail <= scratch.size());
    CHECK(in_place >= content.size() - scratch.size());
    CHECK(reads < 3 * (content.size() / 7000 + 2) + 2 * (content.size() / (32 * 1024) + 1));
}

TEST_CASE("a small upload arrives with its commit in one read")
{
    Fixture f;
    f.hello();
    const std::string content = pattern(20'000, 3);
    f.feed(control(Request{5, PutRequest{"small.bin", content.size(), false, HashKind::xxh3_128}}));
    f.io.run_jobs();
    REQUIRE(parse_put_reply(f.io.replies(1)[0]));
    const std::string stream =
        data_frame(content) + control(Request{5, CommitRequest{xxh3_of(content), HashKind::xxh3_128}});

    std::array<char, 64 * 1024> scratch{};
    const std::span<char> area = f.session.receive_area(scratch);
    // Not a 5-byte header read: the whole rest of the upload fits.
    REQUIRE(area.size() >= stream.size());
    std::memcpy(area.data(), stream.data(), stream.size());
    f.session.on_bytes(area.first(stream.size()));
    f.io.run_jobs();
    const auto committed = parse_commit_reply(f.io.replies(1)[0]);
    REQUIRE(committed);
    CHECK(f.root.read("small.bin") == content);
}

TEST_CASE("receive_area hands out the shared buffer when the upload cannot take more")
{
    Fixture f;
    f.config.chunk_size = 1000;
    f.config.receive_high_water = 8 * 1024;
    f.hello();
    const std::string content = pattern(20'000, 10);
    f.feed(control(Request{5, PutRequest{"full.bin", content.size(), false}}));
    f.io.run_jobs();
    REQUIRE(parse_put_reply(f.io.replies(1)[0]));
    std::array<char, 1024> scratch{};
    // Past the high-water the session stops reading; a read that still
    // comes (one libuv had begun) goes to the shared buffer and waits in
    // the inbox, and the next read after it never skips ahead of it.
    f.feed(data_frame(content.substr(0, 9000)));
    CHECK_FALSE(f.io.reading);
    CHECK(f.session.receive_area(scratch).data() == scratch.data());
    const std::string rest = data_frame(content.substr(9000));
    f.feed(rest.substr(0, 100));
    CHECK(f.session.receive_area(scratch).data() == scratch.data());
    f.io.run_jobs();
    CHECK(f.io.reading);
    f.feed(rest.substr(100));
    f.feed(control(Request{5, CommitRequest{sha256_of(content)}}));
    f.io.run_jobs();
    REQUIRE(parse_commit_reply(f.io.replies(1)[0]));
    CHECK(f.root.read("full.bin") == content);
}

// A frame that overflows the declared size is refused as it arrives, as
// from any other read: the bytes before it are kept for a resume, and none
// of its own (PROTOCOL.md 4.5), even when the connection reads it in place.
TEST_CASE("a data frame past the declared size is refused whole when read where receive_area says")
{
    TempRoot served;
    {
        Fixture f(served.path());
        f.hello();
        f.feed(control(Request{6, PutRequest{"long.bin", 3, false}}));
        f.io.run_jobs();
        REQUIRE(parse_put_reply(f.io.replies(1)[0]));
        const std::string stream = data_frame("ab") + data_frame("cd");
        std::array<char, 64 * 1024> scratch{};
        for (std::size_t at = 0; at < stream.size() && f.session.state() == Session::State::receiving_file;) {
            const std::span<char> area = f.session.receive_area(scratch);
            const std::size_t got = std::min(area.size(), stream.size() - at);
            std::memcpy(area.data(), stream.data() + at, got);
            at += got;
            f.session.on_bytes(area.first(got));
        }
        f.io.run_jobs();
        const auto replies = f.io.replies(1);
        CHECK(parse_commit_reply(replies[0]).error().code == ErrorCode::size_mismatch);
        CHECK(f.io.closed);
    }
    Fixture second(served.path());
    second.hello();
    second.feed(control(Request{7, PutRequest{"long.bin", 3, true}}));
    second.io.run_jobs();
    const auto resumed = parse_put_reply(second.io.replies(1)[0]);
    REQUIRE(resumed);
    CHECK(resumed->body.offset == 2);
}

// A written chunk's buffer takes the next bytes: fresh megabytes cost a page
// fault per page as the socket fills them, which on a slow disk (more chunks
// waiting, glibc giving freed ones back) cost ferryd more than its writes.
// However long the upload, it allocates no more chunks than may wait at once.
TEST_CASE("a put reuses its written staging chunks instead of allocating one per chunk")
{
    Fixture f;
    f.config.chunk_size = 1000;
    // Chunks of 33,333 bytes (half the high-water), a size nothing else allocates.
    constexpr std::size_t kChunk = 33'333;
    f.config.receive_high_water = 2 * kChunk;
    f.hello();
    const std::string content = pattern(2'000'000, 12);
    f.feed(control(Request{8, PutRequest{"reused.bin", content.size(), false, HashKind::xxh3_128}}));
    f.io.run_jobs();
    REQUIRE(parse_put_reply(f.io.replies(1)[0]));

    std::string stream;
    for (std::size_t at = 0; at < content.size(); at += 7000) {
        stream += data_frame(content.substr(at, 7000));
    }
    stream += control(Request{8, CommitRequest{xxh3_of(content), HashKind::xxh3_128}});

    g_watched_arrays = 0;
    g_watched_array_size = kChunk;
    std::array<char, 64 * 1024> scratch{};
    for (std::size_t at = 0; at < stream.size();) {
        if (!f.io.reading) {
            f.io.run_one_job(); // the disk catches up; reading resumes
            continue;
        }
        const std::span<char> area = f.session.receive_area(scratch);
        const std::size_t got = std::min(area.size(), stream.size() - at);
        std::memcpy(area.data(), stream.data() + at, got);
        at += got;
        f.session.on_bytes(area.first(got));
    }
    f.io.run_jobs();
    g_watched_array_size = 0;
    REQUIRE(parse_commit_reply(f.io.replies(1)[0]));
    CHECK(f.root.read("reused.bin") == content);
    // 60 chunks went to the disk; one filling, two waiting, one written at most.
    CHECK(content.size() / kChunk >= 60);
    CHECK(g_watched_arrays.load() <= 4);
}

TEST_CASE("uploads one after another take the staging chunks the finished ones left")
{
    // Chunks of 33,331 bytes (half the high-water), a size nothing else allocates.
    constexpr std::size_t kChunk = 33'331;
    constexpr int kUploads = 24;
    g_watched_arrays = 0;
    g_watched_array_size = kChunk;
    // Sessions on this thread one after another, as a worker's loop serves
    // them: what one session's uploads leave, the next session's take.
    for (int session = 0; session < 2; ++session) {
        Fixture f;
        f.config.chunk_size = 1000;
        f.config.receive_high_water = 2 * kChunk;
        f.hello();
        for (int i = 0; i < kUploads / 2; ++i) {
            const std::string name = "small-" + std::to_string(session) + "-" + std::to_string(i) + ".bin";
            const std::string content = pattern(3000 + static_cast<std::size_t>(i), static_cast<std::uint8_t>(i));
            f.feed(control(Request{8, PutRequest{name, content.size(), false, HashKind::xxh3_128}}));
            f.io.run_jobs();
            f.feed(data_frame(content));
            f.feed(control(Request{8, CommitRequest{xxh3_of(content), HashKind::xxh3_128}}));
            f.io.run_jobs();
            const auto replies = f.io.replies(2);
            REQUIRE(parse_put_reply(replies[0]));
            REQUIRE(parse_commit_reply(replies[1]));
            CHECK(f.root.read(name) == content);
        }
    }
    g_watched_array_size = 0;
    // One chunk per upload before; now the first upload's chunk serves all.
    CHECK(g_watched_arrays.load() <= 2);
}

TEST_CASE("the staging chunks kept for later uploads go once uploads stop")
{
    ChunkCache cache;
    auto chunk = cache.take(4096);
    // The socket's bytes are copied into it: at a page boundary, where the
    // kernel's copy runs fastest (sys/page_buffer.hpp).
    CHECK(reinterpret_cast<std::uintptr_t>(chunk.get()) % sys::kPageAlignment == 0);
    cache.give(std::move(chunk), 4096);
    cache.give(sys::make_page_buffer<char>(4096), 4096);
    CHECK(cache.kept() == 2);
    cache.release_if_unused(); // a take() came since the last sweep: kept
    CHECK(cache.kept() == 2);
    cache.release_if_unused(); // none since: freed
    CHECK(cache.kept() == 0);
    for (std::size_t i = 0; i < 2 * ChunkCache::kKept; ++i) {
        cache.give(sys::make_page_buffer<char>(4096), 4096);
    }
    CHECK(cache.kept() == ChunkCache::kKept);
    cache.give(sys::make_page_buffer<char>(100), 100); // another capacity: the old ones are useless
    CHECK(cache.kept() == 1);
    cache.release();
    CHECK(cache.kept() == 0);
}

// Each pool job is a hand-off to another thread and back, which costs more
// than a small file's write. The chunk that completes the file waits for
// the commit right behind it on the wire, and one job writes it and commits.
TEST_CASE("a small upload takes two pool jobs: its start, then one that writes its bytes and commits")
{
    Fixture f;
    f.hello();
    const std::string content = pattern(3000, 21);
    f.feed(control(Request{4, PutRequest{"small.bin", content.size(), false}}));
    REQUIRE(f.io.jobs.size() == 1);
    f.io.run_one_job();
    REQUIRE(parse_put_reply(f.io.replies(1)[0]));

    f.feed(data_frame(content.substr(0, 1000)));
    f.feed(data_frame(content.substr(1000)));
    CHECK(f.io.jobs.empty()); // the last bytes wait for the commit
    CHECK(f.io.reading);      // which may come in
    f.feed(control(Request{4, CommitRequest{sha256_of(content)}}));
    REQUIRE(f.io.jobs.size() == 1);
    f.io.run_one_job();
    CHECK(f.io.jobs.empty());
    REQUIRE(parse_commit_reply(f.io.replies(1)[0]));
    CHECK(f.root.read("small.bin") == content);
    CHECK(f.root.hidden_entries() == 0);
    CHECK(f.session.state() == Session::State::awaiting_request);
}

TEST_CASE("a larger upload writes its chunks as they fill; only the last one waits for the commit")
{
    Fixture f;
    f.config.chunk_size = 1000;
    f.config.receive_high_water = 4000; // chunks of 2,000 bytes
    f.hello();
    const std::string content = pattern(9000, 22);
    f.feed(control(Request{5, PutRequest{"larger.bin", content.size(), false}}));
    f.io.run_jobs();
    REQUIRE(parse_put_reply(f.io.replies(1)[0]));
    int writes = 0;
    for (std::size_t at = 0; at < content.size(); at += 1000) {
        f.feed(data_frame(content.substr(at, 1000)));
        while (!f.io.jobs.empty()) {
            f.io.run_one_job();
            ++writes;
        }
    }
    CHECK(writes >= 3);
    CHECK(f.root.hidden_entries() == 1); // the partial, holding all but the last chunk
    f.feed(control(Request{5, CommitRequest{sha256_of(content)}}));
    REQUIRE(f.io.jobs.size() == 1);
    f.io.run_one_job();
    REQUIRE(parse_commit_reply(f.io.replies(1)[0]));
    CHECK(f.root.read("larger.bin") == content);
}

TEST_CASE("bytes that waited for a commit that never came are kept for the resume")
{
    const std::string content = pattern(3000, 23);
    TempRoot served;
    interrupt_upload(served, "cut.bin", content, content.size()); // every byte, then the connection drops
    Fixture second(served.path());
    second.hello();
    second.feed(control(Request{2, PutRequest{"cut.bin", content.size(), true}}));
    second.io.run_jobs();
    auto resumed = parse_put_reply(second.io.replies(1)[0]);
    REQUIRE(resumed);
    CHECK(resumed->body.offset == content.size());
    second.feed(control(Request{2, CommitRequest{sha256_of(content)}}));
    second.io.run_jobs();
    REQUIRE(parse_commit_reply(second.io.replies(1)[0]));
    CHECK(served.read("cut.bin") == content);
    CHECK(served.hidden_entries() == 0);
}

TEST_CASE("an abort after every byte arrived keeps them all, or with discard keeps nothing")
{
    const std::string content = pattern(2500, 24);
    for (const bool discard : {false, true}) {
        CAPTURE(discard);
        Fixture f;
        f.hello();
        f.feed(control(Request{6, PutRequest{"a.bin", content.size(), false}}));
        f.io.run_jobs();
        f.io.controls();
        f.feed(data_frame(content));
        f.feed(control(Request{6, AbortRequest{discard}}));
        REQUIRE(f.io.jobs.size() == 1);
        f.io.run_jobs();
        const auto replies = f.io.replies(1);
        auto aborted = parse_abort_reply(replies[0]);
        REQUIRE(aborted);
        CHECK(aborted->body.kept == !discard);
        CHECK(aborted->body.offset == (discard ? 0 : content.size()));
        CHECK(f.root.hidden_entries() == (discard ? 0 : 2));
        CHECK_FALSE(f.root.exists("a.bin"));
    }
}

// ferry sends its next put in the same write as a commit: the session
// starts that put in the commit's own job, one pool job per small file.
TEST_CASE("a put right behind a commit starts in the commit's job, answered after the commit")
{
    Fixture f;
    f.hello();
    const std::string first = pattern(2000, 31);
    const std::string second = pattern(1500, 32);
    f.feed(control(Request{1, PutRequest{"one.bin", first.size(), false}}));
    f.io.run_one_job();
    REQUIRE(parse_put_reply(f.io.replies(1)[0]));

    f.feed(data_frame(first) + control(Request{1, CommitRequest{sha256_of(first)}}) +
           control(Request{2, PutRequest{"two.bin", second.size(), false}}));
    REQUIRE(f.io.jobs.size() == 1);
    f.io.run_one_job();
    CHECK(f.io.jobs.empty());
    auto replies = f.io.replies(2);
    auto committed = parse_commit_reply(replies[0]);
    REQUIRE(committed);
    CHECK(committed->id == 1);
    auto accepted = parse_put_reply(replies[1]);
    REQUIRE(accepted);
    CHECK(accepted->id == 2);
    CHECK(f.session.state() == Session::State::receiving_file);
    CHECK(f.root.read("one.bin") == first);

    f.feed(data_frame(second) + control(Request{2, CommitRequest{sha256_of(second)}}));
    REQUIRE(f.io.jobs.size() == 1);
    f.io.run_one_job();
    REQUIRE(parse_commit_reply(f.io.replies(1)[0]));
    CHECK(f.root.read("two.bin") == second);
    CHECK(f.root.hidden_entries() == 0);
    CHECK(f.session.state() == Session::State::awaiting_request);
}

TEST_CASE("a chained put refused at its start, or behind a failed commit, is answered as a lone put would be")
{
    Fixture f;
    f.hello();
    const std::string content = pattern(1000, 33);
    f.feed(control(Request{1, PutRequest{"a.bin", content.size(), false}}));
    f.io.run_one_job();
    REQUIRE(parse_put_reply(f.io.replies(1)[0]));
    // A wrong digest, then a put into a folder that does not exist.
    f.feed(data_frame(content) + control(Request{1, CommitRequest{sha256_of("other")}}) +
           control(Request{2, PutRequest{"missing/b.bin", 10, false}}));
    f.io.run_jobs();
    auto replies = f.io.replies(2);
    CHECK(parse_commit_reply(replies[0]).error().code == ErrorCode::hash_mismatch);
    auto refused = parse_put_reply(replies[1]);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == ErrorCode::not_found);
    CHECK(f.session.state() == Session::State::awaiting_request);
    CHECK_FALSE(f.root.exists("a.bin"));
    CHECK(f.root.hidden_entries() == 0);
    // The connection goes on.
    f.feed(control(Request{3, StatsRequest{}}));
    CHECK(f.io.replies(1).size() == 1);
}

TEST_CASE("a request other than a put behind a commit waits for the commit's reply")
{
    Fixture f;
    f.hello();
    const std::string content = pattern(1000, 34);
    f.feed(control(Request{1, PutRequest{"a.bin", content.size(), false}}));
    f.io.run_one_job();
    f.io.controls();
    f.feed(data_frame(content) + control(Request{1, CommitRequest{sha256_of(content)}}) +
           control(Request{2, StatRequest{"a.bin"}}));
    f.io.run_jobs();
    auto replies = f.io.replies(2);
    REQUIRE(parse_commit_reply(replies[0]));
    auto stat = parse_stat_reply(replies[1]);
    REQUIRE(stat);
    CHECK(stat->body.file.size == content.size());
}

TEST_CASE("a chained put whose connection ends before it starts leaves no partial behind")
{
    Fixture f;
    f.hello();
    const std::string first = pattern(1200, 35);
    f.feed(control(Request{1, PutRequest{"one.bin", first.size(), false}}));
    f.io.run_one_job();
    f.io.controls();
    f.feed(data_frame(first) + control(Request{1, CommitRequest{sha256_of(first)}}) +
           control(Request{2, PutRequest{"two.bin", 99, false}}));
    f.session.on_peer_closed(); // while the commit's job runs
    f.io.run_jobs();
    CHECK(f.io.closed);
    CHECK(f.session.state() == Session::State::closed);
    CHECK(f.root.read("one.bin") == first); // the commit had been asked for
    CHECK_FALSE(f.root.exists("two.bin"));
    CHECK(f.root.hidden_entries() == 0);
}

TEST_CASE("the last bytes go to the disk without the commit once the peer has been quiet a moment")
{
    Fixture f;
    f.hello();
    const std::string content = pattern(2000, 41);
    f.feed(control(Request{3, PutRequest{"quiet.bin", content.size(), false}}));
    f.io.run_jobs();
    REQUIRE(parse_put_reply(f.io.replies(1)[0]));
    f.feed(data_frame(content));
    CHECK(f.io.jobs.empty());
    f.io.clock_ms += 20;
    f.session.check_timeouts(f.io.clock_ms);
    CHECK(f.io.jobs.empty()); // the commit usually follows at once
    f.io.clock_ms += 1000;
    f.session.check_timeouts(f.io.clock_ms);
    REQUIRE(f.io.jobs.size() == 1); // so that a failing write is told while data arrives
    f.io.run_one_job();
    CHECK(f.io.controls().empty());
    f.feed(control(Request{3, CommitRequest{sha256_of(content)}}));
    REQUIRE(f.io.jobs.size() == 1);
    f.io.run_one_job();
    REQUIRE(parse_commit_reply(f.io.replies(1)[0]));
    CHECK(f.root.read("quiet.bin") == content);
}
