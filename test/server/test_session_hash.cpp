// The Session driven without sockets (see session_fixture.hpp).
// Transfer hashes: the choice at hello, xxh3-128 on get, put and resume, and
// the digest cache.
#include "session_fixture.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>

using namespace ferry;
using namespace ferry::server;
using namespace ferry::server::session_test;

TEST_CASE("hello offers sha256 and xxh3-128")
{
    Fixture f;
    f.feed(control(Request{0, HelloRequest{}}));
    const auto replies = f.io.replies(1);
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
        auto [controls, data] = f.io.drain();
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
    auto replies = f.io.replies(1);
    REQUIRE(parse_put_reply(replies[0]));
    f.feed(data_frame(content));
    f.io.run_jobs();

    f.feed(control(Request{8, CommitRequest{sha256_of(content)}}));
    f.io.run_jobs();
    replies = f.io.replies(1);
    CHECK(parse_commit_reply(replies[0]).error().code == ErrorCode::bad_request);
    CHECK(f.session.state() == Session::State::receiving_file);
    CHECK_FALSE(f.root.exists("fast.bin"));

    f.feed(control(Request{8, CommitRequest{xxh3_of(content), HashKind::xxh3_128}}));
    f.io.run_jobs();
    replies = f.io.replies(1);
    const auto committed = parse_commit_reply(replies[0]);
    REQUIRE(committed);
    CHECK(committed->body.hash == HashKind::xxh3_128);
    CHECK(committed->body.digest == xxh3_of(content));
    CHECK(f.root.read("fast.bin") == content);
}

TEST_CASE("a commit's digest of another hash beside the upload's own is ignored, whatever it holds")
{
    // PROTOCOL.md 4.5: a field of another hash beside it is ignored, as
    // unknown fields are; only the upload's own hash's field counts.
    for (const HashKind upload_hash : {HashKind::xxh3_128, HashKind::sha256}) {
        const bool fast = upload_hash == HashKind::xxh3_128;
        const std::string own_key = fast ? "xxh3-128" : "sha256";
        const std::string other_key = fast ? "sha256" : "xxh3-128";
        const std::string content = pattern(3500, 11);
        const std::string own = fast ? xxh3_of(content) : sha256_of(content);
        const std::string other_of_other_bytes = fast ? sha256_of("other") : xxh3_of("other");
        for (const std::string& beside :
             {"\"" + other_of_other_bytes + "\"", std::string(R"("zz")"), std::string("null"), std::string("5")}) {
            CAPTURE(own_key);
            CAPTURE(beside);
            Fixture f;
            f.hello();
            f.feed(control(Request{8, PutRequest{"both.bin", content.size(), false, upload_hash}}));
            f.io.run_jobs();
            REQUIRE(parse_put_reply(f.io.replies(1)[0]));
            f.feed(data_frame(content));
            f.io.run_jobs();
            f.feed(encode_control_frame(R"({"op":"commit","id":8,")" + other_key + "\":" + beside + ",\"" +
                                        own_key + "\":\"" + own + "\"}"));
            f.io.run_jobs();
            const auto committed = parse_commit_reply(f.io.replies(1)[0]);
            REQUIRE_MESSAGE(committed, committed.error().message);
            CHECK(committed->body.hash == upload_hash);
            CHECK(f.root.read("both.bin") == content);
        }
    }
}

TEST_CASE("beside another hash's digest, the upload's own must still be well formed")
{
    Fixture f;
    f.hello();
    const std::string content = pattern(3500, 12);
    f.feed(control(Request{8, PutRequest{"own.bin", content.size(), false, HashKind::xxh3_128}}));
    f.io.run_jobs();
    REQUIRE(parse_put_reply(f.io.replies(1)[0]));
    f.feed(data_frame(content));
    f.io.run_jobs();
    f.feed(encode_control_frame(R"({"op":"commit","id":8,"sha256":")" + sha256_of(content) +
                                R"(","xxh3-128":"XYZ"})"));
    f.io.run_jobs();
    const auto refused = parse_commit_reply(f.io.replies(1)[0]);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().code == ErrorCode::bad_request);
    CHECK(refused.error().message == "field \"xxh3-128\" must be 32 lowercase hex digits");
    // The upload goes on: the right digest commits it.
    CHECK(f.session.state() == Session::State::receiving_file);
    f.feed(encode_control_frame(R"({"op":"commit","id":8,"sha256":5,"xxh3-128":")" + xxh3_of(content) + "\"}"));
    f.io.run_jobs();
    REQUIRE(parse_commit_reply(f.io.replies(1)[0]));
    CHECK(f.root.read("own.bin") == content);
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
    auto replies = second.io.replies(1);
    const auto resumed = parse_put_reply(replies[0]);
    REQUIRE(resumed);
    CHECK(resumed->body.offset == 3000);
    CHECK(resumed->body.hash == HashKind::xxh3_128);
    REQUIRE(resumed->body.prefix_digest);
    CHECK(*resumed->body.prefix_digest == xxh3_of(content.substr(0, 3000)));

    second.feed(data_frame(content.substr(3000)));
    second.feed(control(Request{2, CommitRequest{xxh3_of(content), HashKind::xxh3_128}}));
    second.io.run_jobs();
    replies = second.io.replies(1);
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
        auto [controls, data] = f.io.drain();
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
    auto [controls, data] = f.io.drain();
    REQUIRE(controls.size() == 2);
    CHECK(data == changed);
    CHECK(parse_trailer(controls[1])->body.digest == sha256_of(changed));
}
