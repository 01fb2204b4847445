// Messages of docs/PROTOCOL.md sections 3, 4 and 6: requests and replies in
// both directions, the wire spelling of the examples in the document, and the
// error vocabulary of error.hpp.
#include "error.hpp"
#include "messages.hpp"
#include "names.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using ferry::Error;
using ferry::ErrorCode;
using nlohmann::json;

namespace {

constexpr std::uint64_t kMaxId = std::numeric_limits<std::uint64_t>::max();
const std::string kHashA = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const std::string kHashB = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

// Every code, in declaration order, with its spelling from PROTOCOL.md section 6
// (connection_lost and local_io are the client's own).
struct CodeSpelling {
    ErrorCode code;
    std::string_view spelling;
    bool closes;
};
const std::vector<CodeSpelling> kCodes{
    {ErrorCode::bad_frame, "bad_frame", true},
    {ErrorCode::frame_too_large, "frame_too_large", true},
    {ErrorCode::bad_json, "bad_json", false},
    {ErrorCode::bad_request, "bad_request", false},
    {ErrorCode::unknown_op, "unknown_op", false},
    {ErrorCode::unsupported_version, "unsupported_version", true},
    {ErrorCode::hello_required, "hello_required", false},
    {ErrorCode::unexpected_frame, "unexpected_frame", false},
    {ErrorCode::invalid_name, "invalid_name", false},
    {ErrorCode::not_found, "not_found", false},
    {ErrorCode::not_regular_file, "not_regular_file", false},
    {ErrorCode::bad_offset, "bad_offset", false},
    {ErrorCode::size_mismatch, "size_mismatch", false},
    {ErrorCode::hash_mismatch, "hash_mismatch", false},
    {ErrorCode::busy, "busy", false},
    {ErrorCode::no_space, "no_space", false},
    {ErrorCode::io_error, "io_error", false},
    {ErrorCode::internal, "internal", false},
    {ErrorCode::aborted, "aborted", false},
    {ErrorCode::shutting_down, "shutting_down", true},
    {ErrorCode::connection_lost, "connection_lost", false},
    {ErrorCode::local_io, "local_io", false},
    {ErrorCode::server_full, "server_full", true},
    {ErrorCode::address_limit, "address_limit", true},
    {ErrorCode::idle_timeout, "idle_timeout", true},
    {ErrorCode::stalled, "stalled", true},
    {ErrorCode::upload_too_large, "upload_too_large", true},
    {ErrorCode::too_many_transfers, "too_many_transfers", true},
    {ErrorCode::unauthorized, "unauthorized", true},
    {ErrorCode::forbidden, "forbidden", false},
    {ErrorCode::tls_required, "tls_required", true},
    {ErrorCode::not_ferry, "not_ferry", false},
    {ErrorCode::tls_failed, "tls_failed", false},
    {ErrorCode::file_changed, "file_changed", false},
    {ErrorCode::list_too_large, "list_too_large", false},
    {ErrorCode::too_slow, "too_slow", true},
    {ErrorCode::too_many_errors, "too_many_errors", true},
    {ErrorCode::root_unavailable, "root_unavailable", false},
    {ErrorCode::not_empty, "not_empty", false},
    {ErrorCode::exists, "exists", false},
    {ErrorCode::not_a_folder, "not_a_folder", false},
    {ErrorCode::invalid_move, "invalid_move", false},
    {ErrorCode::name_clash, "name_clash", false},
};

ferry::Request round_trip(const ferry::Request& request)
{
    const std::string text = ferry::encode_request(request);
    INFO(text);
    const auto parsed = ferry::parse_request(text);
    REQUIRE(parsed.request.ok());
    CHECK(parsed.id == std::optional<std::uint64_t>(request.id));
    CHECK(parsed.request->id == request.id);
    CHECK(parsed.request->body.index() == request.body.index());
    return parsed.request.value();
}

template <typename T>
const T& body_as(const ferry::Request& request)
{
    REQUIRE(std::holds_alternative<T>(request.body));
    return std::get<T>(request.body);
}

ferry::Request parse_ok(std::string_view text)
{
    INFO(text);
    const auto parsed = ferry::parse_request(text);
    REQUIRE(parsed.request.ok());
    return parsed.request.value();
}

void check_request_error(std::string_view text, ErrorCode code, std::optional<std::uint64_t> id)
{
    INFO("request: " << text);
    const auto parsed = ferry::parse_request(text);
    REQUIRE_FALSE(parsed.request.ok());
    CHECK(ferry::to_string(parsed.request.error().code) == ferry::to_string(code));
    CHECK(parsed.id.has_value() == id.has_value());
    if (id && parsed.id) {
        CHECK(*parsed.id == *id);
    }
    CHECK_FALSE(parsed.request.error().message.empty());
}

bool same_json(std::string_view encoded, std::string_view expected)
{
    return json::parse(encoded) == json::parse(expected);
}

void check_file(const ferry::FileInfo& actual, const ferry::FileInfo& expected)
{
    CHECK(actual.name == expected.name);
    CHECK(actual.size == expected.size);
    CHECK(actual.mtime == expected.mtime);
}

template <typename T>
void check_reply_error(const ferry::Result<T>& result, ErrorCode code)
{
    REQUIRE_FALSE(result.ok());
    CHECK(ferry::to_string(result.error().code) == ferry::to_string(code));
}

// One entry per reply parser, so error handling is checked for all of them.
struct ReplyParser {
    std::string_view name;
    std::function<std::optional<Error>(std::string_view)> parse_error;
};

template <typename T>
std::optional<Error> error_of(const ferry::Result<T>& result)
{
    if (result.ok()) {
        return std::nullopt;
    }
    return result.error();
}

const std::vector<ReplyParser> kReplyParsers{
    {"hello", [](std::string_view t) { return error_of(ferry::parse_hello_reply(t)); }},
    {"list", [](std::string_view t) { return error_of(ferry::parse_list_reply(t)); }},
    {"stat", [](std::string_view t) { return error_of(ferry::parse_stat_reply(t)); }},
    {"get", [](std::string_view t) { return error_of(ferry::parse_get_reply(t)); }},
    {"trailer", [](std::string_view t) { return error_of(ferry::parse_trailer(t)); }},
    {"put", [](std::string_view t) { return error_of(ferry::parse_put_reply(t)); }},
    {"commit", [](std::string_view t) { return error_of(ferry::parse_commit_reply(t)); }},
    {"abort", [](std::string_view t) { return error_of(ferry::parse_abort_reply(t)); }},
};

} // namespace

// ---- error.hpp ---------------------------------------------------------------

TEST_CASE("error codes: wire spelling round trip for every code")
{
    REQUIRE(kCodes.size() == static_cast<std::size_t>(ErrorCode::name_clash) + 1);
    for (std::size_t i = 0; i < kCodes.size(); ++i) {
        const auto& entry = kCodes[i];
        INFO("code " << entry.spelling);
        CHECK(static_cast<std::size_t>(entry.code) == i);
        CHECK(ferry::to_string(entry.code) == entry.spelling);
        const auto back = ferry::error_code_from_string(entry.spelling);
        REQUIRE(back.has_value());
        CHECK(*back == entry.code);
    }
}

TEST_CASE("error codes: unknown spellings are refused")
{
    CHECK_FALSE(ferry::error_code_from_string("").has_value());
    CHECK_FALSE(ferry::error_code_from_string("NOT_FOUND").has_value());
    CHECK_FALSE(ferry::error_code_from_string("not_found ").has_value());
    CHECK_FALSE(ferry::error_code_from_string("notfound").has_value());
    CHECK_FALSE(ferry::error_code_from_string("quota_exceeded").has_value());
}

TEST_CASE("error codes: closes_connection follows PROTOCOL.md section 6")
{
    CHECK(ferry::closes_connection(ErrorCode::bad_frame));
    CHECK(ferry::closes_connection(ErrorCode::frame_too_large));
    CHECK(ferry::closes_connection(ErrorCode::unsupported_version));
    CHECK(ferry::closes_connection(ErrorCode::shutting_down));
    CHECK_FALSE(ferry::closes_connection(ErrorCode::not_found));
    CHECK_FALSE(ferry::closes_connection(ErrorCode::bad_json));
    CHECK_FALSE(ferry::closes_connection(ErrorCode::hello_required));
    for (const auto& entry : kCodes) {
        INFO("code " << entry.spelling);
        CHECK(ferry::closes_connection(entry.code) == entry.closes);
    }
}

TEST_CASE("Result holds a value or an Error")
{
    ferry::Result<int> good(42);
    CHECK(good.ok());
    CHECK(static_cast<bool>(good));
    CHECK(*good == 42);
    ferry::Result<int> bad(Error{ErrorCode::busy, "held elsewhere"});
    CHECK_FALSE(bad.ok());
    CHECK(bad.error().code == ErrorCode::busy);
    CHECK(bad.error().message == "held elsewhere");
}

// ---- requests ----------------------------------------------------------------

TEST_CASE("op_name names every request")
{
    CHECK(ferry::op_name(ferry::HelloRequest{}) == "hello");
    CHECK(ferry::op_name(ferry::ListRequest{}) == "list");
    CHECK(ferry::op_name(ferry::StatRequest{}) == "stat");
    CHECK(ferry::op_name(ferry::GetRequest{}) == "get");
    CHECK(ferry::op_name(ferry::PutRequest{}) == "put");
    CHECK(ferry::op_name(ferry::CommitRequest{}) == "commit");
    CHECK(ferry::op_name(ferry::AbortRequest{}) == "abort");
    CHECK(ferry::op_name(ferry::StatsRequest{}) == "stats");
}

TEST_CASE("request round trip: stats")
{
    const auto request = round_trip({9, ferry::StatsRequest{}});
    CHECK(std::holds_alternative<ferry::StatsRequest>(request.body));
}

TEST_CASE("request round trip: hello")
{
    const auto request = round_trip({0, ferry::HelloRequest{1, "ferry/0.1.0", ""}});
    CHECK(body_as<ferry::HelloRequest>(request).version == 1);
    CHECK(body_as<ferry::HelloRequest>(request).client == "ferry/0.1.0");

    const auto other =
        round_trip({77, ferry::HelloRequest{4000000000u, "b\u00e9ta \"quoted\"\n", "a-token-of-16-chars"}});
    CHECK(body_as<ferry::HelloRequest>(other).version == 4000000000u);
    CHECK(body_as<ferry::HelloRequest>(other).client == "b\u00e9ta \"quoted\"\n");
    CHECK(body_as<ferry::HelloRequest>(other).token == "a-token-of-16-chars");
    CHECK(body_as<ferry::HelloRequest>(request).token.empty());
}

TEST_CASE("request round trip: list")
{
    const auto request = round_trip({1, ferry::ListRequest{}});
    CHECK(request.id == 1);
    CHECK(std::holds_alternative<ferry::ListRequest>(request.body));
}

TEST_CASE("request round trip: stat")
{
    const auto request = round_trip({2, ferry::StatRequest{"r\u00e9sum\u00e9.pdf"}});
    CHECK(body_as<ferry::StatRequest>(request).name == "r\u00e9sum\u00e9.pdf");
}

TEST_CASE("request round trip: get")
{
    const auto start = round_trip({3, ferry::GetRequest{"report.pdf", 0}});
    CHECK(body_as<ferry::GetRequest>(start).name == "report.pdf");
    CHECK(body_as<ferry::GetRequest>(start).offset == 0);

    const auto far = round_trip({kMaxId, ferry::GetRequest{"big.iso", 0xFFFFFFFFFFFFFFFEull}});
    CHECK(far.id == kMaxId);
    CHECK(body_as<ferry::GetRequest>(far).name == "big.iso");
    CHECK(body_as<ferry::GetRequest>(far).offset == 0xFFFFFFFFFFFFFFFEull);
}

TEST_CASE("request round trip: put")
{
    const auto fresh = round_trip({5, ferry::PutRequest{"data.bin", 1048577, false}});
    CHECK(body_as<ferry::PutRequest>(fresh).name == "data.bin");
    CHECK(body_as<ferry::PutRequest>(fresh).size == 1048577);
    CHECK_FALSE(body_as<ferry::PutRequest>(fresh).resume);

    const auto resumed = round_trip({6, ferry::PutRequest{"\xe6\x97\xa5\xe6\x9c\xac.txt", 5000000000ull, true}});
    CHECK(body_as<ferry::PutRequest>(resumed).name == "\xe6\x97\xa5\xe6\x9c\xac.txt");
    CHECK(body_as<ferry::PutRequest>(resumed).size == 5000000000ull);
    CHECK(body_as<ferry::PutRequest>(resumed).resume);

    const auto empty = round_trip({7, ferry::PutRequest{"empty", 0, false}});
    CHECK(body_as<ferry::PutRequest>(empty).size == 0);
}

TEST_CASE("request round trip: commit")
{
    const auto request = round_trip({5, ferry::CommitRequest{kHashA}});
    CHECK(body_as<ferry::CommitRequest>(request).digest == kHashA);
}

TEST_CASE("request round trip: abort")
{
    CHECK(body_as<ferry::AbortRequest>(round_trip({5, ferry::AbortRequest{true}})).discard);
    CHECK_FALSE(body_as<ferry::AbortRequest>(round_trip({5, ferry::AbortRequest{false}})).discard);
}

TEST_CASE("requests are spelled as in PROTOCOL.md")
{
    CHECK(same_json(ferry::encode_request({0, ferry::HelloRequest{1, "ferry/0.1.0", ""}}),
                    R"({"op": "hello", "id": 0, "version": 1, "client": "ferry/0.1.0"})"));
    CHECK(same_json(ferry::encode_request({1, ferry::ListRequest{}}), R"({"op": "list", "id": 1})"));
    CHECK(same_json(ferry::encode_request({2, ferry::StatRequest{"report.pdf"}}),
                    R"({"op": "stat", "id": 2, "name": "report.pdf"})"));
    CHECK(same_json(ferry::encode_request({3, ferry::GetRequest{"report.pdf", 0}}),
                    R"({"op": "get", "id": 3, "name": "report.pdf", "offset": 0})"));
    CHECK(same_json(ferry::encode_request({5, ferry::PutRequest{"data.bin", 1048577, false}}),
                    R"({"op": "put", "id": 5, "name": "data.bin", "size": 1048577, "resume": false})"));
    CHECK(same_json(ferry::encode_request({5, ferry::CommitRequest{kHashA}}),
                    R"({"op": "commit", "id": 5, "sha256": ")" + kHashA + "\"}"));
    CHECK(same_json(ferry::encode_request({5, ferry::AbortRequest{false}}),
                    R"({"op": "abort", "id": 5, "discard": false})"));
}

TEST_CASE("the request examples of PROTOCOL.md parse")
{
    const auto hello = parse_ok(R"({"op": "hello", "id": 0, "version": 1, "client": "ferry/0.1.0"})");
    CHECK(hello.id == 0);
    CHECK(body_as<ferry::HelloRequest>(hello).version == 1);
    CHECK(body_as<ferry::HelloRequest>(hello).client == "ferry/0.1.0");

    const auto get = parse_ok(R"({"op": "get", "id": 3, "name": "report.pdf", "offset": 0})");
    CHECK(get.id == 3);
    CHECK(body_as<ferry::GetRequest>(get).name == "report.pdf");

    const auto put = parse_ok(R"({"op": "put", "id": 5, "name": "data.bin", "size": 1048577, "resume": false})");
    CHECK(body_as<ferry::PutRequest>(put).size == 1048577);

    const auto abort = parse_ok(R"({"op": "abort", "id": 5, "discard": false})");
    CHECK(abort.id == 5);
    CHECK_FALSE(body_as<ferry::AbortRequest>(abort).discard);
}

TEST_CASE("optional request fields take their defaults")
{
    CHECK(body_as<ferry::GetRequest>(parse_ok(R"({"op":"get","id":3,"name":"a"})")).offset == 0);
    CHECK_FALSE(body_as<ferry::PutRequest>(parse_ok(R"({"op":"put","id":4,"name":"a","size":9})")).resume);
    CHECK(body_as<ferry::PutRequest>(parse_ok(R"({"op":"put","id":4,"name":"a","size":9})")).size == 9);
    CHECK_FALSE(body_as<ferry::AbortRequest>(parse_ok(R"({"op":"abort","id":5})")).discard);
    CHECK(body_as<ferry::HelloRequest>(parse_ok(R"({"op":"hello","id":0,"version":1})")).client == "");
}

TEST_CASE("request errors: null is no optional field's value, for every optional field (PROTOCOL.md 3.1)")
{
    check_request_error(R"({"op":"hello","id":0,"version":1,"client":null})", ErrorCode::bad_request, 0);
    check_request_error(R"({"op":"hello","id":0,"version":1,"token":null})", ErrorCode::bad_request, 0);
    check_request_error(R"({"op":"get","id":1,"name":"a","hash":null})", ErrorCode::bad_request, 1);
    check_request_error(R"({"op":"get","id":1,"name":"a","offset":null})", ErrorCode::bad_request, 1);
    check_request_error(R"({"op":"put","id":2,"name":"a","size":1,"hash":null})", ErrorCode::bad_request, 2);
    check_request_error(R"({"op":"put","id":2,"name":"a","size":1,"resume":null})", ErrorCode::bad_request, 2);
    check_request_error(R"({"op":"abort","id":3,"discard":null})", ErrorCode::bad_request, 3);
}

TEST_CASE("request errors: only whitespace may follow the object; a NUL or a byte order mark is bad_json")
{
    using namespace std::string_literals;
    check_request_error("{\"op\":\"stats\",\"id\":5}\0{\"op\":\"list\",\"id\":6}"s, ErrorCode::bad_json,
                        std::nullopt);
    check_request_error("{\"op\":\"stats\",\"id\":5}\0"s, ErrorCode::bad_json, std::nullopt);
    check_request_error("{\"op\":\"stats\",\"id\":5} \0 "s, ErrorCode::bad_json, std::nullopt);
    check_request_error("\0{\"op\":\"stats\",\"id\":5}"s, ErrorCode::bad_json, std::nullopt);
    check_request_error("\xEF\xBB\xBF{\"op\":\"stats\",\"id\":5}"s, ErrorCode::bad_json, std::nullopt);
    CHECK(parse_ok(" \t\r\n{\"op\":\"stats\",\"id\":5} \t\r\n").id == 5);
}

TEST_CASE("request errors: an unknown op or hash is named by its first 64 bytes, whatever its length")
{
    // Round 76: the whole of an op a peer made 64 KiB long went into the
    // reply and the server's log line (294 KB once escaped).
    for (const std::string& long_value : {std::string(70000, 'x'), [] {
                                              std::string c1;
                                              for (int i = 0; i < 32000; ++i) {
                                                  c1 += "\xC2\x85"; // U+0085, a C1 control
                                              }
                                              return c1;
                                          }()}) {
        for (const std::string& request :
             {"{\"op\":\"" + long_value + "\",\"id\":7}",
              "{\"op\":\"get\",\"id\":7,\"name\":\"f\",\"hash\":\"" + long_value + "\"}"}) {
            const auto parsed = ferry::parse_request(request);
            REQUIRE_FALSE(parsed.request.ok());
            const std::string& message = parsed.request.error().message;
            CHECK(message.size() < 64 * 8 + 200); // the excerpt, escaped, and the words around it
            CHECK(message.find("...\" (" + std::to_string(long_value.size()) + " bytes)") != std::string::npos);
            CHECK(message.find("\xC2\x85") == std::string::npos); // escaped as \u{0085}
        }
    }
    // A short one is named whole, as before.
    const auto parsed = ferry::parse_request("{\"op\":\"frobnicate\",\"id\":7}");
    REQUIRE_FALSE(parsed.request.ok());
    CHECK(parsed.request.error().message == "unknown operation \"frobnicate\"");
    CHECK(ferry::quoted_excerpt("ab\xC3\xA9"
                                "cd",
                                3) == "\"ab...\" (6 bytes)"); // never half a code point
    CHECK(ferry::quoted_excerpt("abc", 3) == "\"abc\"");
}

TEST_CASE("request errors: a key repeated within one object is bad_json, at any depth")
{
    check_request_error(R"({"op":"stats","id":5,"id":6})", ErrorCode::bad_json, std::nullopt);
    check_request_error(R"({"op":"stats","op":"stats","id":5})", ErrorCode::bad_json, std::nullopt);
    check_request_error(R"({"op":"stats","id":5,"x":{"a":1,"a":1}})", ErrorCode::bad_json, std::nullopt);
    check_request_error(R"({"op":"stats","id":5,"x":[{"a":1},{"b":2,"b":2}]})", ErrorCode::bad_json, std::nullopt);
    // The same key in different objects is no repetition.
    CHECK(parse_ok(R"({"op":"stats","id":5,"x":{"id":1,"op":2},"y":[{"id":1},{"id":1}]})").id == 5);
    CHECK(ferry::parse_stat_reply(R"({"id":1,"ok":true,"name":"a","size":1,"mtime":1,"size":2})").error().code ==
          ErrorCode::bad_json);
    // After a number a double cannot hold (parsed again with it capped), and
    // after many sibling objects: still found.
    check_request_error(R"({"op":"stats","id":5,"n":1e400,"x":{"a":1,"a":1}})", ErrorCode::bad_json, std::nullopt);
    std::string many = R"({"op":"stats","id":5,"x":[)";
    for (int i = 0; i < 20000; ++i) {
        many += R"({"a":1},)";
    }
    check_request_error(many + R"({"a":1,"a":2}]})", ErrorCode::bad_json, std::nullopt);
    CHECK(parse_ok(many + R"({"a":1}]})").id == 5);
    // Found as the second key is read, in the one pass that builds the
    // value: a frame that breaks off after it is refused for the repetition.
    for (const char* cut : {R"({"op":"stat","id":3,"op":"get")", R"({"op":"stat","id":3,"id":4,)",
                            R"({"op":"stats","id":5,"x":{"a":1,"a":[}})"}) {
        const auto parsed = ferry::parse_request(cut);
        REQUIRE_FALSE(parsed.request.ok());
        CHECK(parsed.request.error().code == ErrorCode::bad_json);
        CHECK(parsed.request.error().message == "control frame repeats a key within one object");
    }
}

TEST_CASE("request errors: integers are digits only, 0 to 2^64-1; other valid numbers are bad_request")
{
    // Not integer literals: a fraction, an exponent, a sign.
    for (const char* number : {"7.0", "1e2", "1E2", "7e0", "-0", "-7", "0.0", "1.5"}) {
        const std::string with_id = std::string(R"({"op":"get","id":4,"name":"a","offset":)") + number + "}";
        check_request_error(with_id, ErrorCode::bad_request, 4);
        check_request_error(std::string(R"({"op":"stats","id":)") + number + "}", ErrorCode::bad_request,
                            std::nullopt);
    }
    // Valid JSON however large: out of range, never bad_json, and the id is
    // kept when it is not the bad field.
    const std::string digits1000(1000, '9');
    for (const std::string& number :
         {std::string("1e400"), std::string("-1e400"), std::string("1E+999"), digits1000, "-" + digits1000,
          std::string("18446744073709551616"), std::string("1e-400"), digits1000 + ".5e10"}) {
        check_request_error(R"({"op":"get","id":4,"name":"a","offset":)" + number + "}", ErrorCode::bad_request, 4);
        check_request_error(R"({"op":"put","id":4,"name":"a","size":)" + number + "}", ErrorCode::bad_request, 4);
        check_request_error(R"({"op":"stats","id":)" + number + "}", ErrorCode::bad_request, std::nullopt);
        check_request_error(R"({"id":)" + number + R"(,"op":"stats"})", ErrorCode::bad_request, std::nullopt);
        // In a field nobody reads it is just an unknown field.
        CHECK(parse_ok(R"({"op":"stats","id":4,"later":[)" + number + "]}").id == 4);
    }
    // Numbers in strings are strings; a huge number does not hide broken JSON.
    CHECK(parse_ok(R"({"op":"stats","id":4,"s":"1e400 \" 1e400"})").id == 4);
    check_request_error(R"({"op":"stats","id":4,"x":1e400,})", ErrorCode::bad_json, std::nullopt);
    check_request_error(R"({"op":"stats","id":4,"x":1e400,"x":1})", ErrorCode::bad_json, std::nullopt);
    for (const char* broken : {"01e400", "1e400-5", "1.e400", "-e400", "1e+", "--1e400", "1e400.5"}) {
        check_request_error(std::string(R"({"op":"stats","id":4,"x":1e400,"y":)") + broken + "}", ErrorCode::bad_json,
                            std::nullopt);
    }
    CHECK(parse_ok(R"({"op":"get","id":4,"name":"a","offset":18446744073709551615})").id == 4);
    // A server's signed field (mtime) stays within 64 signed bits.
    CHECK(ferry::parse_stat_reply(R"({"id":1,"ok":true,"name":"a","size":1,"mtime":9223372036854775808})")
              .error()
              .code == ErrorCode::bad_request);
    CHECK(ferry::parse_stat_reply(R"({"id":1,"ok":true,"name":"a","size":1,"mtime":-9223372036854775808})")
              .value()
              .body.file.mtime == std::numeric_limits<std::int64_t>::min());
}

TEST_CASE("unknown extra request fields are ignored")
{
    const auto get =
        parse_ok(R"({"op":"get","id":3,"name":"a.txt","offset":12,"future":{"x":[1,2]},"compress":"zstd","n":-1})");
    CHECK(get.id == 3);
    CHECK(body_as<ferry::GetRequest>(get).name == "a.txt");
    CHECK(body_as<ferry::GetRequest>(get).offset == 12);

    const auto list = parse_ok(R"({"filter":"*.pdf","id":1,"op":"list"})");
    CHECK(list.id == 1);
    CHECK(std::holds_alternative<ferry::ListRequest>(list.body));
}

TEST_CASE("request errors: not a JSON object is bad_json without an id")
{
    check_request_error(R"({"op":"list","id":1)", ErrorCode::bad_json, std::nullopt);
    check_request_error("", ErrorCode::bad_json, std::nullopt);
    check_request_error("not json", ErrorCode::bad_json, std::nullopt);
    check_request_error(R"({"op":"list","id":1} {})", ErrorCode::bad_json, std::nullopt);
    check_request_error(R"({"op":"list","id":1,})", ErrorCode::bad_json, std::nullopt);
    check_request_error(std::string("{\"op\":\"stat\",\"id\":1,\"name\":\"\xC3\"}"), ErrorCode::bad_json, std::nullopt);
    check_request_error(R"([{"op":"list","id":1}])", ErrorCode::bad_json, std::nullopt);
    check_request_error("[]", ErrorCode::bad_json, std::nullopt);
    check_request_error(R"("list")", ErrorCode::bad_json, std::nullopt);
    check_request_error("42", ErrorCode::bad_json, std::nullopt);
    check_request_error("null", ErrorCode::bad_json, std::nullopt);
}

TEST_CASE("request errors: a missing or mistyped id is bad_request without an id")
{
    check_request_error(R"({"op":"list"})", ErrorCode::bad_request, std::nullopt);
    check_request_error(R"({"op":"list","id":-1})", ErrorCode::bad_request, std::nullopt);
    check_request_error(R"({"op":"list","id":"1"})", ErrorCode::bad_request, std::nullopt);
    check_request_error(R"({"op":"list","id":1.5})", ErrorCode::bad_request, std::nullopt);
    check_request_error(R"({"op":"list","id":null})", ErrorCode::bad_request, std::nullopt);
    check_request_error(R"({"op":"list","id":true})", ErrorCode::bad_request, std::nullopt);
    // One past 2^64-1 does not fit the id's range.
    check_request_error(R"({"op":"list","id":18446744073709551616})", ErrorCode::bad_request, std::nullopt);
    // The largest id is fine.
    CHECK(parse_ok(R"({"op":"list","id":18446744073709551615})").id == kMaxId);
}

TEST_CASE("request errors: a missing or mistyped op keeps the id")
{
    check_request_error(R"({"id":9})", ErrorCode::bad_request, 9);
    check_request_error(R"({"id":9,"op":7})", ErrorCode::bad_request, 9);
    check_request_error(R"({"id":9,"op":null})", ErrorCode::bad_request, 9);
}

TEST_CASE("request errors: an unknown op is unknown_op and keeps the id")
{
    check_request_error(R"({"op":"remove","id":10})", ErrorCode::unknown_op, 10);
    check_request_error(R"({"op":"","id":11})", ErrorCode::unknown_op, 11);
    check_request_error(R"({"op":"LIST","id":12})", ErrorCode::unknown_op, 12);
    check_request_error(R"({"op":"list ","id":13})", ErrorCode::unknown_op, 13);
}

TEST_CASE("request errors: wrong field types are bad_request and keep the id")
{
    check_request_error(R"({"op":"stat","id":20,"name":5})", ErrorCode::bad_request, 20);
    check_request_error(R"({"op":"stat","id":20,"name":null})", ErrorCode::bad_request, 20);
    check_request_error(R"({"op":"stat","id":20,"name":["a"]})", ErrorCode::bad_request, 20);
    check_request_error(R"({"op":"get","id":21,"name":"a","offset":-1})", ErrorCode::bad_request, 21);
    check_request_error(R"({"op":"get","id":21,"name":"a","offset":"0"})", ErrorCode::bad_request, 21);
    check_request_error(R"({"op":"get","id":21,"name":"a","offset":1.5})", ErrorCode::bad_request, 21);
    check_request_error(R"({"op":"get","id":21,"name":7,"offset":0})", ErrorCode::bad_request, 21);
    check_request_error(R"({"op":"put","id":22,"name":"a","size":"10"})", ErrorCode::bad_request, 22);
    check_request_error(R"({"op":"put","id":22,"name":"a","size":-10})", ErrorCode::bad_request, 22);
    check_request_error(R"({"op":"put","id":22,"name":"a","size":10,"resume":"true"})", ErrorCode::bad_request, 22);
    check_request_error(R"({"op":"put","id":22,"name":"a","size":10,"resume":1})", ErrorCode::bad_request, 22);
    check_request_error(R"({"op":"abort","id":23,"discard":"yes"})", ErrorCode::bad_request, 23);
    check_request_error(R"({"op":"abort","id":23,"discard":0})", ErrorCode::bad_request, 23);
    check_request_error(R"({"op":"hello","id":0,"version":"1"})", ErrorCode::bad_request, 0);
    check_request_error(R"({"op":"hello","id":0,"version":-1})", ErrorCode::bad_request, 0);
    check_request_error(R"({"op":"hello","id":0,"version":1,"client":5})", ErrorCode::bad_request, 0);
    check_request_error(R"({"op":"commit","id":24,"sha256":5})", ErrorCode::bad_request, 24);
}

TEST_CASE("request errors: missing required fields are bad_request and keep the id")
{
    check_request_error(R"({"op":"hello","id":0})", ErrorCode::bad_request, 0);
    check_request_error(R"({"op":"stat","id":30})", ErrorCode::bad_request, 30);
    check_request_error(R"({"op":"get","id":31})", ErrorCode::bad_request, 31);
    check_request_error(R"({"op":"put","id":32,"size":1})", ErrorCode::bad_request, 32);
    check_request_error(R"({"op":"put","id":32,"name":"a"})", ErrorCode::bad_request, 32);
    check_request_error(R"({"op":"commit","id":33})", ErrorCode::bad_request, 33);
}

TEST_CASE("request errors: commit needs 64 lowercase hex digits")
{
    const auto commit = [](const std::string& digest) {
        return R"({"op":"commit","id":40,"sha256":")" + digest + "\"}";
    };
    CHECK(body_as<ferry::CommitRequest>(parse_ok(commit(kHashB))).digest == kHashB);
    check_request_error(commit(""), ErrorCode::bad_request, 40);
    check_request_error(commit(kHashA.substr(0, 63)), ErrorCode::bad_request, 40);
    check_request_error(commit(kHashA + "0"), ErrorCode::bad_request, 40);
    check_request_error(commit(kHashA.substr(0, 32)), ErrorCode::bad_request, 40);
    check_request_error(commit("g" + kHashA.substr(1)), ErrorCode::bad_request, 40);
    check_request_error(commit(kHashA.substr(0, 63) + "-"), ErrorCode::bad_request, 40);
    check_request_error(commit(kHashA.substr(0, 62) + " a"), ErrorCode::bad_request, 40);
    check_request_error(commit("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"),
                        ErrorCode::bad_request, 40);
}

TEST_CASE("a commit of several hashes' digests decodes each as sent; the upload's hash picks one")
{
    const std::string xxh3(32, 'a');
    // A field of another hash is checked by no one but the session, which
    // knows the upload's hash (PROTOCOL.md 4.5): here even a malformed one
    // or one of another type decodes.
    const auto both = body_as<ferry::CommitRequest>(
        parse_ok(R"({"op":"commit","id":41,"sha256":"zz","xxh3-128":")" + xxh3 + "\"}"));
    CHECK(ferry::commit_digest(both, ferry::HashKind::xxh3_128) == xxh3);
    CHECK(ferry::commit_digest(both, ferry::HashKind::sha256) == "zz");
    const auto typed = body_as<ferry::CommitRequest>(
        parse_ok(R"({"op":"commit","id":42,"sha256":5,"xxh3-128":")" + xxh3 + "\"}"));
    CHECK(ferry::commit_digest(typed, ferry::HashKind::xxh3_128) == xxh3);
    CHECK_FALSE(ferry::commit_digest(typed, ferry::HashKind::sha256));
    // One digest: its form is the decoder's to check, and it is the only one.
    const auto one = body_as<ferry::CommitRequest>(parse_ok(R"({"op":"commit","id":43,"xxh3-128":")" + xxh3 + "\"}"));
    CHECK(one.digests.empty());
    CHECK(ferry::commit_digest(one, ferry::HashKind::xxh3_128) == xxh3);
    CHECK_FALSE(ferry::commit_digest(one, ferry::HashKind::sha256));
    check_request_error(R"({"op":"commit","id":44,"xxh3-128":"zz"})", ErrorCode::bad_request, 44);
}

// ---- replies -----------------------------------------------------------------

TEST_CASE("reply round trip: hello")
{
    ferry::HelloReply hello;
    hello.version = 1;
    hello.server = "ferryd/0.1.0";
    hello.capabilities = {"list", "stat", "get", "put", "resume"};
    hello.hashes = {"sha256"};
    hello.max_control_frame = 65536;
    hello.max_data_frame = 16777216;
    const auto parsed = ferry::parse_hello_reply(ferry::encode_reply(0, hello));
    REQUIRE(parsed.ok());
    CHECK(parsed->id == 0);
    CHECK(parsed->body.version == 1);
    CHECK(parsed->body.server == "ferryd/0.1.0");
    CHECK(parsed->body.capabilities == hello.capabilities);
    CHECK(parsed->body.hashes == hello.hashes);
    CHECK(parsed->body.max_control_frame == 65536);
    CHECK(parsed->body.max_data_frame == 16777216);

    ferry::HelloReply bare;
    bare.version = 3;
    bare.max_control_frame = 1;
    bare.max_data_frame = 0xFFFFFFFFu;
    const auto empty = ferry::parse_hello_reply(ferry::encode_reply(kMaxId, bare));
    REQUIRE(empty.ok());
    CHECK(empty->id == kMaxId);
    CHECK(empty->body.version == 3);
    CHECK(empty->body.server == "");
    CHECK(empty->body.capabilities.empty());
    CHECK(empty->body.hashes.empty());
    CHECK(empty->body.max_control_frame == 1);
    CHECK(empty->body.max_data_frame == 0xFFFFFFFFu);
}

TEST_CASE("reply round trip: list")
{
    ferry::ListReply list;
    list.files = {{"a.txt", 0, 0},
                  {"r\u00e9sum\u00e9.pdf", 5120, 1764370000},
                  {"old", 18446744073709551615ull, -86400},
                  {"\xf0\x9f\x98\x80", 1, 9223372036854775807ll}};
    list.skipped_invalid_names = 3;
    const auto parsed = ferry::parse_list_reply(ferry::encode_reply(1, list));
    REQUIRE(parsed.ok());
    CHECK(parsed->id == 1);
    CHECK(parsed->body.skipped_invalid_names == 3);
    REQUIRE(parsed->body.files.size() == list.files.size());
    for (std::size_t i = 0; i < list.files.size(); ++i) {
        INFO("file " << i);
        check_file(parsed->body.files[i], list.files[i]);
    }

    const auto empty = ferry::parse_list_reply(ferry::encode_reply(2, ferry::ListReply{}));
    REQUIRE(empty.ok());
    CHECK(empty->id == 2);
    CHECK(empty->body.files.empty());
    CHECK(empty->body.skipped_invalid_names == 0);
}

TEST_CASE("a paged list: the request says so, pages say more, the last one counts skipped names")
{
    // An old-style request stays byte for byte what old servers know.
    CHECK(same_json(ferry::encode_request({1, ferry::ListRequest{}}), R"({"op": "list", "id": 1})"));
    CHECK(same_json(ferry::encode_request({1, ferry::ListRequest{true}}), R"({"op": "list", "id": 1, "paged": true})"));
    CHECK(std::get<ferry::ListRequest>(round_trip({1, ferry::ListRequest{true}}).body).paged);
    CHECK_FALSE(std::get<ferry::ListRequest>(round_trip({1, ferry::ListRequest{}}).body).paged);
    const auto mistyped = ferry::parse_request(R"({"op": "list", "id": 4, "paged": "yes"})");
    REQUIRE_FALSE(mistyped.request.ok());
    CHECK(mistyped.request.error().code == ErrorCode::bad_request);

    ferry::ListReply page;
    page.files = {{"b", 2, 20}, {"a", 1, 10}};
    page.more = true;
    page.skipped_invalid_names = 7; // not sent on a page that is not the last
    const std::string text = ferry::encode_reply(3, page);
    CHECK(same_json(text, R"({"id": 3, "ok": true, "more": true,
        "files": [{"name": "b", "size": 2, "mtime": 20}, {"name": "a", "size": 1, "mtime": 10}]})"));
    CHECK(text == json::parse(text).dump()); // written as dump() writes it
    const auto parsed = ferry::parse_list_reply(text);
    REQUIRE(parsed.ok());
    CHECK(parsed->body.more);
    CHECK(parsed->body.files.size() == 2);

    page.more = false;
    const auto last = ferry::parse_list_reply(ferry::encode_reply(3, page));
    REQUIRE(last.ok());
    CHECK_FALSE(last->body.more);
    CHECK(last->body.skipped_invalid_names == 7);
    CHECK(last->body.skipped_too_deep == 0);
    // skipped_too_deep (version 2) only on the last page and only when not 0,
    // so a version-1 reply is what it always was.
    CHECK(ferry::encode_reply(3, page).find("skipped_too_deep") == std::string::npos);
    page.skipped_too_deep = 2;
    const std::string deep = ferry::encode_reply(3, page);
    CHECK(deep == json::parse(deep).dump());
    const auto deep_parsed = ferry::parse_list_reply(deep);
    REQUIRE(deep_parsed.ok());
    CHECK(deep_parsed->body.skipped_too_deep == 2);
    page.more = true;
    CHECK(ferry::encode_reply(3, page).find("skipped_too_deep") == std::string::npos);
    page.more = false;
    page.skipped_too_deep = 0;
    // A reply without "more" (any server's single reply) is the last page.
    const auto single = ferry::parse_list_reply(R"({"id": 3, "ok": true, "files": []})");
    REQUIRE(single.ok());
    CHECK_FALSE(single->body.more);
    CHECK_FALSE(ferry::parse_list_reply(R"({"id": 3, "ok": true, "files": [], "more": 1})").ok());
}

TEST_CASE("reply round trip: stat")
{
    const ferry::FileInfo file{"report.pdf", 5120, 1764370000};
    const auto parsed = ferry::parse_stat_reply(ferry::encode_reply(2, ferry::StatReply{file}));
    REQUIRE(parsed.ok());
    CHECK(parsed->id == 2);
    check_file(parsed->body.file, file);
}

TEST_CASE("reply round trip: get")
{
    const ferry::FileInfo file{"report.pdf", 5120, 1764370000};
    const auto parsed = ferry::parse_get_reply(ferry::encode_reply(3, ferry::GetReply{file, 4096}));
    REQUIRE(parsed.ok());
    CHECK(parsed->id == 3);
    check_file(parsed->body.file, file);
    CHECK(parsed->body.offset == 4096);
}

TEST_CASE("reply round trip: trailer")
{
    const auto parsed = ferry::parse_trailer(ferry::encode_reply(3, ferry::Trailer{5120, kHashA}));
    REQUIRE(parsed.ok());
    CHECK(parsed->id == 3);
    CHECK(parsed->body.size == 5120);
    CHECK(parsed->body.digest == kHashA);
}

TEST_CASE("reply round trip: put")
{
    const auto fresh = ferry::parse_put_reply(ferry::encode_reply(5, ferry::PutReply{0, std::nullopt, "9f2c01"}));
    REQUIRE(fresh.ok());
    CHECK(fresh->id == 5);
    CHECK(fresh->body.offset == 0);
    CHECK_FALSE(fresh->body.prefix_digest.has_value());
    CHECK(fresh->body.token == "9f2c01");

    const auto resumed = ferry::parse_put_reply(ferry::encode_reply(6, ferry::PutReply{524288, kHashB, "77aa"}));
    REQUIRE(resumed.ok());
    CHECK(resumed->id == 6);
    CHECK(resumed->body.offset == 524288);
    REQUIRE(resumed->body.prefix_digest.has_value());
    CHECK(*resumed->body.prefix_digest == kHashB);
    CHECK(resumed->body.token == "77aa");
}

TEST_CASE("reply round trip: commit")
{
    const ferry::FileInfo file{"data.bin", 1048577, 1764370000};
    const auto parsed = ferry::parse_commit_reply(ferry::encode_reply(5, ferry::CommitReply{file, kHashA}));
    REQUIRE(parsed.ok());
    CHECK(parsed->id == 5);
    check_file(parsed->body.file, file);
    CHECK(parsed->body.digest == kHashA);
}

TEST_CASE("reply round trip: abort")
{
    const auto kept = ferry::parse_abort_reply(ferry::encode_reply(5, ferry::AbortReply{true, 524288}));
    REQUIRE(kept.ok());
    CHECK(kept->id == 5);
    CHECK(kept->body.kept);
    CHECK(kept->body.offset == 524288);

    const auto dropped = ferry::parse_abort_reply(ferry::encode_reply(8, ferry::AbortReply{false, 0}));
    REQUIRE(dropped.ok());
    CHECK(dropped->id == 8);
    CHECK_FALSE(dropped->body.kept);
    CHECK(dropped->body.offset == 0);
}

TEST_CASE("reply round trip: stats")
{
    ferry::StatsReply stats;
    stats.uptime_seconds = 3600;
    stats.connections_now = 3;
    stats.connections_total = 120;
    stats.transfers_now = 1;
    stats.transfers_total = 87;
    stats.bytes_in = 1048576;
    stats.bytes_out = 73400320;
    stats.errors = {{"not_found", 4}, {"server_full", 1}};
    const std::string text = ferry::encode_reply(9, stats);
    // The nesting of PROTOCOL.md 4.8.
    const json spelled = json::parse(text);
    CHECK(spelled["connections"]["total"] == 120);
    CHECK(spelled["bytes"]["out"] == 73400320);
    CHECK(spelled["errors"]["not_found"] == 4);
    const auto parsed = ferry::parse_stats_reply(text);
    REQUIRE(parsed.ok());
    CHECK(parsed->id == 9);
    CHECK(parsed->body.uptime_seconds == 3600);
    CHECK(parsed->body.connections_now == 3);
    CHECK(parsed->body.connections_total == 120);
    CHECK(parsed->body.transfers_now == 1);
    CHECK(parsed->body.transfers_total == 87);
    CHECK(parsed->body.bytes_in == 1048576);
    CHECK(parsed->body.bytes_out == 73400320);
    CHECK(parsed->body.errors == stats.errors);
    CHECK_FALSE(ferry::parse_stats_reply(R"({"id":1,"ok":true,"uptime_seconds":1})").ok());
}

TEST_CASE("replies are spelled as in PROTOCOL.md")
{
    ferry::HelloReply hello;
    hello.version = 1;
    hello.server = "ferryd/0.1.0";
    hello.capabilities = {"list", "stat", "get", "put", "resume", "stats"};
    hello.hashes = {"sha256"};
    hello.max_control_frame = 65536;
    hello.max_data_frame = 16777216;
    CHECK(same_json(ferry::encode_reply(0, hello),
                    R"({"id": 0, "ok": true, "version": 1, "server": "ferryd/0.1.0",
                        "capabilities": ["list", "stat", "get", "put", "resume", "stats"],
                        "hashes": ["sha256"], "max_control_frame": 65536, "max_data_frame": 16777216,
                        "access": "rw"})"));

    ferry::ListReply list;
    list.files = {{"report.pdf", 5120, 1764370000}};
    CHECK(same_json(ferry::encode_reply(1, list),
                    R"({"id": 1, "ok": true, "files": [{"name": "report.pdf", "size": 5120, "mtime": 1764370000}],
                        "skipped_invalid_names": 0})"));

    const ferry::FileInfo report{"report.pdf", 5120, 1764370000};
    CHECK(same_json(ferry::encode_reply(2, ferry::StatReply{report}),
                    R"({"id": 2, "ok": true, "name": "report.pdf", "size": 5120, "mtime": 1764370000})"));
    CHECK(same_json(ferry::encode_reply(3, ferry::GetReply{report, 0}),
                    R"({"id": 3, "ok": true, "name": "report.pdf", "size": 5120, "mtime": 1764370000, "offset": 0})"));
    CHECK(same_json(ferry::encode_reply(3, ferry::Trailer{5120, kHashA}),
                    R"({"id": 3, "ok": true, "done": true, "size": 5120, "sha256": ")" + kHashA + "\"}"));
    CHECK(same_json(ferry::encode_reply(5, ferry::PutReply{0, std::nullopt, "9f2c"}),
                    R"({"id": 5, "ok": true, "offset": 0, "token": "9f2c"})"));
    CHECK(same_json(ferry::encode_reply(5, ferry::PutReply{10, kHashB, "9f2c"}),
                    R"({"id": 5, "ok": true, "offset": 10, "prefix_sha256": ")" + kHashB + R"(", "token": "9f2c"})"));
    // The file is built apart, not nested: see test_hash_choice.cpp.
    const ferry::FileInfo committed{"data.bin", 1048577, 1764370000};
    CHECK(same_json(ferry::encode_reply(5, ferry::CommitReply{committed, kHashA}),
                    R"({"id": 5, "ok": true, "name": "data.bin", "size": 1048577, "mtime": 1764370000, "sha256": ")" +
                        kHashA + "\"}"));
    CHECK(same_json(ferry::encode_reply(5, ferry::AbortReply{true, 524288}),
                    R"({"id": 5, "ok": true, "kept": true, "offset": 524288})"));
}

TEST_CASE("errors are spelled as in PROTOCOL.md")
{
    CHECK(same_json(ferry::encode_error(7, Error{ErrorCode::not_found, "no file named \"a.txt\""}),
                    R"({"id": 7, "ok": false, "error": {"code": "not_found", "message": "no file named \"a.txt\""}})"));
    CHECK(same_json(ferry::encode_error(std::nullopt, Error{ErrorCode::bad_json, "broken"}),
                    R"({"id": null, "ok": false, "error": {"code": "bad_json", "message": "broken"}})"));
}

TEST_CASE("the reply examples of PROTOCOL.md parse")
{
    const auto hello = ferry::parse_hello_reply(
        R"({"id": 0, "ok": true, "version": 1, "server": "ferryd/0.1.0",
            "capabilities": ["list", "stat", "get", "put", "resume"],
            "hashes": ["sha256"], "max_control_frame": 65536, "max_data_frame": 16777216})");
    REQUIRE(hello.ok());
    CHECK(hello->body.capabilities == std::vector<std::string>{"list", "stat", "get", "put", "resume"});
    CHECK(hello->body.max_data_frame == 16777216);

    const auto stat =
        ferry::parse_stat_reply(R"({"id": 2, "ok": true, "name": "report.pdf", "size": 5120, "mtime": 1764370000})");
    REQUIRE(stat.ok());
    check_file(stat->body.file, {"report.pdf", 5120, 1764370000});

    const auto abort = ferry::parse_abort_reply(R"({"id": 5, "ok": true, "kept": true, "offset": 524288})");
    REQUIRE(abort.ok());
    CHECK(abort->body.kept);
    CHECK(abort->body.offset == 524288);

    const auto error = ferry::parse_stat_reply(
        R"({"id": 7, "ok": false, "error": {"code": "not_found", "message": "no file named \"a.txt\""}})");
    check_reply_error(error, ErrorCode::not_found);
    CHECK(error.error().message == "no file named \"a.txt\"");
}

TEST_CASE("encode_error then any reply parser yields that Error")
{
    for (const auto& parser : kReplyParsers) {
        for (const auto& entry : kCodes) {
            INFO("parser " << parser.name << ", code " << entry.spelling);
            const Error sent{entry.code, "message for " + std::string(entry.spelling) + " \xe2\x9c\x93"};
            const auto error = parser.parse_error(ferry::encode_error(42, sent));
            REQUIRE(error.has_value());
            CHECK(error->code == sent.code);
            CHECK(error->message == sent.message);
        }
    }
}

TEST_CASE("an error reply with a null id parses to its Error")
{
    // PROTOCOL.md 3.2: when the server could not read the request's id the
    // error's id is null, e.g. bad_frame or frame_too_large before the server
    // closes, or bad_json. The client must still see that code and message.
    for (const auto& parser : kReplyParsers) {
        for (const auto code : {ErrorCode::bad_frame, ErrorCode::frame_too_large, ErrorCode::bad_json}) {
            INFO("parser " << parser.name << ", code " << ferry::to_string(code));
            const Error sent{code, "the stream broke"};
            const std::string text = ferry::encode_error(std::nullopt, sent);
            INFO(text);
            const auto error = parser.parse_error(text);
            REQUIRE(error.has_value());
            CHECK(ferry::to_string(error->code) == ferry::to_string(code));
            CHECK(error->message == "the stream broke");
        }
    }
}

TEST_CASE("an unknown error code from the server maps to internal and keeps its text")
{
    const std::string text =
        R"({"id": 4, "ok": false, "error": {"code": "quota_exceeded", "message": "over the 10 GiB quota"}})";
    for (const auto& parser : kReplyParsers) {
        INFO("parser " << parser.name);
        const auto error = parser.parse_error(text);
        REQUIRE(error.has_value());
        CHECK(error->code == ErrorCode::internal);
        CHECK(error->message.find("over the 10 GiB quota") != std::string::npos);
        CHECK(error->message.find("quota_exceeded") != std::string::npos);
    }
}

TEST_CASE("unknown extra reply fields are ignored")
{
    const auto stat = ferry::parse_stat_reply(
        R"({"id": 2, "ok": true, "name": "a", "size": 1, "mtime": 2, "perm": "0644", "etag": {"v": [1]}})");
    REQUIRE(stat.ok());
    check_file(stat->body.file, {"a", 1, 2});

    const auto list = ferry::parse_list_reply(
        R"({"id": 1, "ok": true, "files": [{"name": "a", "size": 1, "mtime": 2, "owner": "x"}], "more": false})");
    REQUIRE(list.ok());
    REQUIRE(list->body.files.size() == 1);
    check_file(list->body.files[0], {"a", 1, 2});

    const auto error = ferry::parse_get_reply(
        R"({"id": 3, "ok": false, "retry_after": 5, "error": {"code": "busy", "message": "m", "detail": 1}})");
    check_reply_error(error, ErrorCode::busy);
    CHECK(error.error().message == "m");
}

TEST_CASE("malformed server messages")
{
    SUBCASE("not a JSON object is bad_json for every parser")
    {
        for (const auto& parser : kReplyParsers) {
            for (const std::string_view text : {"", "{", "[]", "null", "\"ok\"", R"([{"id":1,"ok":true}])"}) {
                INFO("parser " << parser.name << ", text " << text);
                const auto error = parser.parse_error(text);
                REQUIRE(error.has_value());
                CHECK(error->code == ErrorCode::bad_json);
            }
        }
    }
    SUBCASE("missing or mistyped id or ok is bad_request for every parser")
    {
        for (const auto& parser : kReplyParsers) {
            for (const std::string_view text :
                 {R"({"ok": true})", R"({"id": 1})", R"({"id": -1, "ok": true})", R"({"id": "1", "ok": true})",
                  R"({"id": 1, "ok": "true"})", R"({"id": 1, "ok": 1})"}) {
                INFO("parser " << parser.name << ", text " << text);
                const auto error = parser.parse_error(text);
                REQUIRE(error.has_value());
                CHECK(error->code == ErrorCode::bad_request);
            }
        }
    }
    SUBCASE("a broken error object is bad_request")
    {
        for (const std::string_view text :
             {R"({"id": 1, "ok": false})", R"({"id": 1, "ok": false, "error": "not_found"})",
              R"({"id": 1, "ok": false, "error": {"message": "m"}})", R"({"id": 1, "ok": false, "error": {"code": 4}})",
              R"({"id": 1, "ok": false, "error": {"code": "not_found"}})"}) {
            INFO(text);
            check_reply_error(ferry::parse_stat_reply(text), ErrorCode::bad_request);
        }
    }
    SUBCASE("missing or mistyped body fields are bad_request")
    {
        check_reply_error(ferry::parse_stat_reply(R"({"id": 2, "ok": true, "name": "a", "size": 1})"),
                          ErrorCode::bad_request);
        check_reply_error(ferry::parse_stat_reply(R"({"id": 2, "ok": true, "name": "a", "size": -1, "mtime": 0})"),
                          ErrorCode::bad_request);
        check_reply_error(ferry::parse_stat_reply(R"({"id": 2, "ok": true, "name": 1, "size": 1, "mtime": 0})"),
                          ErrorCode::bad_request);
        check_reply_error(ferry::parse_stat_reply(R"({"id": 2, "ok": true, "name": "a", "size": 1, "mtime": 1.5})"),
                          ErrorCode::bad_request);
        check_reply_error(
            ferry::parse_get_reply(R"({"id": 3, "ok": true, "name": "a", "size": 1, "mtime": 0, "offset": "0"})"),
            ErrorCode::bad_request);
        check_reply_error(ferry::parse_get_reply(R"({"id": 3, "ok": true, "name": "a", "size": 1, "mtime": 0})"),
                          ErrorCode::bad_request);
        check_reply_error(ferry::parse_put_reply(R"({"id": 5, "ok": true, "offset": 0})"), ErrorCode::bad_request);
        check_reply_error(
            ferry::parse_put_reply(R"({"id": 5, "ok": true, "offset": 0, "token": "t", "prefix_sha256": 5})"),
            ErrorCode::bad_request);
        check_reply_error(ferry::parse_commit_reply(R"({"id": 5, "ok": true, "name": "a", "size": 1, "mtime": 0})"),
                          ErrorCode::bad_request);
        check_reply_error(ferry::parse_abort_reply(R"({"id": 5, "ok": true, "kept": "yes", "offset": 0})"),
                          ErrorCode::bad_request);
        check_reply_error(ferry::parse_hello_reply(R"({"id": 0, "ok": true, "version": 1, "server": "s",
            "capabilities": ["list", 2], "hashes": [], "max_control_frame": 1, "max_data_frame": 1})"),
                          ErrorCode::bad_request);
        check_reply_error(ferry::parse_hello_reply(R"({"id": 0, "ok": true, "version": 1, "server": "s",
            "capabilities": "list", "hashes": [], "max_control_frame": 1, "max_data_frame": 1})"),
                          ErrorCode::bad_request);
        check_reply_error(ferry::parse_hello_reply(R"({"id": 0, "ok": true, "version": 1, "server": "s",
            "capabilities": [], "hashes": []})"),
                          ErrorCode::bad_request);
    }
    SUBCASE("a list reply with a broken files array is bad_request")
    {
        check_reply_error(ferry::parse_list_reply(R"({"id": 1, "ok": true})"), ErrorCode::bad_request);
        check_reply_error(ferry::parse_list_reply(R"({"id": 1, "ok": true, "files": {}})"), ErrorCode::bad_request);
        check_reply_error(ferry::parse_list_reply(R"({"id": 1, "ok": true, "files": ["a"]})"), ErrorCode::bad_request);
        check_reply_error(ferry::parse_list_reply(R"({"id": 1, "ok": true, "files": [{"name": "a", "size": 1}]})"),
                          ErrorCode::bad_request);
    }
    SUBCASE("a trailer must say done: true")
    {
        const std::string hash = kHashA;
        check_reply_error(ferry::parse_trailer(R"({"id": 3, "ok": true, "size": 1, "sha256": ")" + hash + "\"}"),
                          ErrorCode::bad_request);
        check_reply_error(
            ferry::parse_trailer(R"({"id": 3, "ok": true, "done": false, "size": 1, "sha256": ")" + hash + "\"}"),
            ErrorCode::bad_request);
        // A get reply is not a trailer: the client must not mistake one for the other.
        check_reply_error(ferry::parse_trailer(ferry::encode_reply(3, ferry::GetReply{{"a", 1, 0}, 0})),
                          ErrorCode::bad_request);
    }
}

TEST_CASE("a deeply nested unknown field within the control frame limit is harmless")
{
    // About 32000 levels of nesting fill a 64 KiB control frame; parsing and
    // dropping them must neither crash nor change the answer.
    std::string text = R"({"id":1,"op":"list","x":)";
    const std::size_t depth = (65536 - text.size() - 1) / 2;
    text += std::string(depth, '[') + std::string(depth, ']') + "}";
    REQUIRE(text.size() <= 65536);
    const auto list = parse_ok(text);
    CHECK(list.id == 1);
    CHECK(std::holds_alternative<ferry::ListRequest>(list.body));

    check_request_error(std::string(depth, '[') + std::string(depth, ']'), ErrorCode::bad_json, std::nullopt);
    std::string unclosed = R"({"id":2,"op":"list","x":)" + std::string(depth, '[');
    check_request_error(unclosed, ErrorCode::bad_json, std::nullopt);
}

TEST_CASE("the list reply, written directly, is byte for byte the JSON tree's dump")
{
    ferry::ListReply reply;
    reply.skipped_invalid_names = 3;
    const std::vector<std::string> names{"a.txt",          "r\u00e9sum\u00e9.pdf", "quote\"back\\slash",
                                         "tab\there",      "\u65e5\u672c\u8a9e",   std::string(255, 'x'),
                                         "emoji\U0001F600"};
    std::int64_t mtime = -5;
    std::uint64_t size = 0;
    for (const auto& name : names) {
        reply.files.push_back(ferry::FileInfo{name, size, mtime});
        size = size * 7 + 0xFFFFFFFFFull;
        mtime += 1764370000;
    }
    for (const std::size_t count : {std::size_t{0}, std::size_t{1}, names.size()}) {
        ferry::ListReply part = reply;
        part.files.resize(count);
        json tree{{"id", 42}, {"ok", true}, {"skipped_invalid_names", 3}, {"files", json::array()}};
        for (const auto& file : part.files) {
            tree["files"].push_back(json{{"name", file.name}, {"size", file.size}, {"mtime", file.mtime}});
        }
        CHECK(ferry::encode_reply(42, part) == tree.dump(-1, ' ', false, json::error_handler_t::replace));
        const auto parsed = ferry::parse_list_reply(ferry::encode_reply(42, part));
        REQUIRE(parsed.ok());
        CHECK(parsed->body.files.size() == count);
    }
}

TEST_CASE("a list page's unreadable_folders: written as dump() writes it, on any page, and read back")
{
    ferry::ListReply page;
    page.files = {{"a", 0, 10, ferry::EntryType::folder}};
    page.more = true;
    page.unreadable_folders = {{"a", ErrorCode::forbidden}, {"b\"c", ErrorCode::io_error}};
    for (const bool more : {true, false}) {
        page.more = more;
        const std::string text = ferry::encode_reply(4, page);
        CHECK(text == json::parse(text).dump());
        const auto parsed = ferry::parse_list_reply(text);
        REQUIRE(parsed.ok());
        REQUIRE(parsed->body.unreadable_folders.size() == 2);
        CHECK(parsed->body.unreadable_folders[0].path == "a");
        CHECK(parsed->body.unreadable_folders[0].code == ErrorCode::forbidden);
        CHECK(parsed->body.unreadable_folders[1].path == "b\"c");
        CHECK(parsed->body.unreadable_folders[1].code == ErrorCode::io_error);
    }
    // None: no field, so a reply without it is what it always was.
    CHECK(ferry::encode_reply(4, ferry::ListReply{}).find("unreadable_folders") == std::string::npos);
    // Only objects of a path and a code of the two: anything else is refused.
    for (const char* bad : {R"({"id": 4, "ok": true, "files": [], "unreadable_folders": "a"})",
                            R"({"id": 4, "ok": true, "files": [], "unreadable_folders": ["a"]})",
                            R"({"id": 4, "ok": true, "files": [], "unreadable_folders": [{"path": "a"}]})",
                            R"({"id": 4, "ok": true, "files": [], "unreadable_folders": [{"code": "forbidden"}]})",
                            R"({"id": 4, "ok": true, "files": [],
                                "unreadable_folders": [{"path": "a", "code": "not_found"}]})",
                            R"({"id": 4, "ok": true, "files": [],
                                "unreadable_folders": [{"path": 1, "code": "io_error"}]})"}) {
        CAPTURE(bad);
        CHECK_FALSE(ferry::parse_list_reply(bad).ok());
    }
}
