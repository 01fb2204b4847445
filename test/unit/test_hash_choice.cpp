// The transfer hash on the wire (PROTOCOL.md 4.1, 4.4, 4.5): a get or put
// names it in "hash", and every digest travels under the hash's name.
#include "messages.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <string>

using ferry::ErrorCode;
using ferry::HashKind;
using json = nlohmann::json;

namespace {

const std::string kXxh = "99aa06d3014798d86001c324468d497f";
const std::string kSha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

ferry::Request parse_ok(const std::string& text)
{
    INFO(text);
    auto parsed = ferry::parse_request(text);
    REQUIRE(parsed.request.ok());
    return parsed.request.value();
}

std::string commit_text(const std::string& key, const std::string& digest)
{
    return json{{"op", "commit"}, {"id", 5}, {key, digest}}.dump();
}

ErrorCode request_error(const std::string& text)
{
    INFO(text);
    auto parsed = ferry::parse_request(text);
    REQUIRE_FALSE(parsed.request.ok());
    return parsed.request.error().code;
}

} // namespace

TEST_CASE("get and put default to sha256 and may name another offered hash")
{
    CHECK(std::get<ferry::GetRequest>(parse_ok(R"({"op":"get","id":1,"name":"a"})").body).hash == HashKind::sha256);
    CHECK(std::get<ferry::GetRequest>(parse_ok(R"({"op":"get","id":1,"name":"a","hash":"xxh3-128"})").body).hash ==
          HashKind::xxh3_128);
    CHECK(
        std::get<ferry::PutRequest>(parse_ok(R"({"op":"put","id":1,"name":"a","size":1,"hash":"sha256"})").body).hash ==
        HashKind::sha256);
    CHECK(std::get<ferry::PutRequest>(parse_ok(R"({"op":"put","id":1,"name":"a","size":1,"hash":"xxh3-128"})").body)
              .hash == HashKind::xxh3_128);
}

TEST_CASE("an unknown or mistyped hash is a bad request")
{
    CHECK(request_error(R"({"op":"get","id":1,"name":"a","hash":"md5"})") == ErrorCode::bad_request);
    CHECK(request_error(R"({"op":"get","id":1,"name":"a","hash":"XXH3-128"})") == ErrorCode::bad_request);
    CHECK(request_error(R"({"op":"get","id":1,"name":"a","hash":5})") == ErrorCode::bad_request);
    CHECK(request_error(R"({"op":"put","id":1,"name":"a","size":1,"hash":""})") == ErrorCode::bad_request);
}

TEST_CASE("the default hash is not spelled out, so older servers understand the request")
{
    const json plain = json::parse(ferry::encode_request({3, ferry::GetRequest{"a", 0}}));
    CHECK_FALSE(plain.contains("hash"));
    const json fast = json::parse(ferry::encode_request({3, ferry::GetRequest{"a", 0, HashKind::xxh3_128}}));
    CHECK(fast.at("hash") == "xxh3-128");
    const json put = json::parse(ferry::encode_request({4, ferry::PutRequest{"a", 1, true, HashKind::xxh3_128}}));
    CHECK(put.at("hash") == "xxh3-128");
}

TEST_CASE("a commit carries its digest under the hash's name")
{
    const auto fast = std::get<ferry::CommitRequest>(parse_ok(commit_text("xxh3-128", kXxh)).body);
    CHECK(fast.hash == HashKind::xxh3_128);
    CHECK(fast.digest == kXxh);
    const json encoded = json::parse(ferry::encode_request({5, ferry::CommitRequest{kXxh, HashKind::xxh3_128}}));
    CHECK(encoded.at("xxh3-128") == kXxh);
    CHECK_FALSE(encoded.contains("sha256"));
    // Each hash has its own digest length.
    CHECK(request_error(commit_text("xxh3-128", kSha)) == ErrorCode::bad_request);
    CHECK(request_error(commit_text("sha256", kXxh)) == ErrorCode::bad_request);
    CHECK(request_error(R"({"op":"commit","id":5})") == ErrorCode::bad_request);
}

TEST_CASE("trailer, put reply and commit reply round trip with xxh3-128")
{
    const auto trailer_text = ferry::encode_reply(3, ferry::Trailer{10, kXxh, HashKind::xxh3_128});
    CHECK(json::parse(trailer_text).at("xxh3-128") == kXxh);
    const auto trailer = ferry::parse_trailer(trailer_text);
    REQUIRE(trailer.ok());
    CHECK(trailer->body.hash == HashKind::xxh3_128);
    CHECK(trailer->body.digest == kXxh);

    const ferry::PutReply put{4, kXxh, std::string(16, 't'), HashKind::xxh3_128};
    const auto put_text = ferry::encode_reply(5, put);
    CHECK(json::parse(put_text).at("prefix_xxh3-128") == kXxh);
    const auto put_parsed = ferry::parse_put_reply(put_text);
    REQUIRE(put_parsed.ok());
    CHECK(put_parsed->body.hash == HashKind::xxh3_128);
    REQUIRE(put_parsed->body.prefix_digest.has_value());
    CHECK(*put_parsed->body.prefix_digest == kXxh);

    // The file is built apart, not as a nested braced member: GCC 12 at -O3
    // takes the nested aggregate's string for uninitialized (a false
    // -Wmaybe-uninitialized that stops a release build).
    const ferry::FileInfo file{"a", 10, 7};
    const auto commit_text = ferry::encode_reply(5, ferry::CommitReply{file, kXxh, HashKind::xxh3_128});
    const auto commit = ferry::parse_commit_reply(commit_text);
    REQUIRE(commit.ok());
    CHECK(commit->body.hash == HashKind::xxh3_128);
    CHECK(commit->body.digest == kXxh);
}

TEST_CASE("a trailer with a malformed digest is refused")
{
    CHECK_FALSE(ferry::parse_trailer(R"({"id":3,"ok":true,"done":true,"size":1,"xxh3-128":"zz"})").ok());
    CHECK_FALSE(ferry::parse_trailer(R"({"id":3,"ok":true,"done":true,"size":1})").ok());
}
