// The messages protocol version 2 adds (PROTOCOL.md 4.2, 4.3, 4.5, 4.9 to
// 4.12): the new fields of list and put, the tree operations and their
// replies, and the entry type; and that version-1 messages keep their bytes.
#include "error.hpp"
#include "messages.hpp"
#include "names.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

using ferry::EntryType;
using ferry::ErrorCode;
using nlohmann::json;

namespace {

const std::string kSha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const std::string kXxh = "06b05ab6733a618578af5f94892f3950";

ferry::Request parse_ok(std::string_view text)
{
    INFO(text);
    const auto parsed = ferry::parse_request(text);
    REQUIRE(parsed.request.ok());
    return parsed.request.value();
}

template <typename T>
T parse_as(std::string_view text)
{
    const auto request = parse_ok(text);
    REQUIRE(std::holds_alternative<T>(request.body));
    return std::get<T>(request.body);
}

template <typename T>
T round_trip(std::uint64_t id, const T& body)
{
    const std::string text = ferry::encode_request({id, body});
    INFO(text);
    const auto request = parse_ok(text);
    CHECK(request.id == id);
    REQUIRE(std::holds_alternative<T>(request.body));
    return std::get<T>(request.body);
}

void check_bad_request(std::string_view text, std::uint64_t id)
{
    INFO("request: " << text);
    const auto parsed = ferry::parse_request(text);
    REQUIRE_FALSE(parsed.request.ok());
    CHECK(ferry::to_string(parsed.request.error().code) == "bad_request");
    REQUIRE(parsed.id.has_value());
    CHECK(*parsed.id == id);
}

bool same_json(std::string_view encoded, std::string_view expected)
{
    return json::parse(encoded) == json::parse(expected);
}

} // namespace

TEST_CASE("protocol versions: 1 is the lowest, 2 the highest, and hello offers the highest")
{
    CHECK(ferry::kMinProtocolVersion == 1);
    CHECK(ferry::kMaxProtocolVersion == 2);
    CHECK(ferry::HelloRequest{}.version == 2);
    CHECK(same_json(ferry::encode_request({0, ferry::HelloRequest{}}),
                    R"({"op": "hello", "id": 0, "version": 2, "client": ""})"));
}

TEST_CASE("op_name names the operations of version 2, and only they need it")
{
    CHECK(ferry::op_name(ferry::MkdirRequest{}) == "mkdir");
    CHECK(ferry::op_name(ferry::DeleteRequest{}) == "delete");
    CHECK(ferry::op_name(ferry::RenameRequest{}) == "rename");
    CHECK(ferry::op_name(ferry::DigestRequest{}) == "digest");
    CHECK(ferry::op_name(ferry::SetMtimeRequest{}) == "set_mtime");
    CHECK(ferry::op_name(ferry::SyncRequest{}) == "sync");
    CHECK(ferry::needs_version_2(ferry::SyncRequest{}));
    CHECK(ferry::needs_version_2(ferry::SetMtimeRequest{}));
    CHECK(ferry::needs_version_2(ferry::MkdirRequest{}));
    CHECK(ferry::needs_version_2(ferry::DeleteRequest{}));
    CHECK(ferry::needs_version_2(ferry::RenameRequest{}));
    CHECK(ferry::needs_version_2(ferry::DigestRequest{}));
    CHECK_FALSE(ferry::needs_version_2(ferry::ListRequest{}));
    CHECK_FALSE(ferry::needs_version_2(ferry::PutRequest{}));
    CHECK_FALSE(ferry::needs_version_2(ferry::StatRequest{}));
    CHECK_FALSE(ferry::needs_version_2(ferry::HelloRequest{}));
}

TEST_CASE("on a version-1 connection the new operations are unknown_op and the new fields unknown")
{
    for (const std::string text : {R"({"op":"mkdir","id":3,"path":"a"})", R"({"op":"delete","id":3})",
                                   R"({"op":"rename","id":3,"from":null})", R"({"op":"digest","id":3,"name":"a"})",
                                   R"({"op":"set_mtime","id":3,"path":"a","mtime":1})", R"({"op":"sync","id":3})"}) {
        INFO(text);
        const auto parsed = ferry::parse_request(text, 1);
        REQUIRE_FALSE(parsed.request.ok());
        CHECK(parsed.request.error().code == ErrorCode::unknown_op);
        CHECK(parsed.request.error().message.find("protocol version 2") != std::string::npos);
        CHECK(parsed.id == std::optional<std::uint64_t>(3));
    }
    const auto list = ferry::parse_request(R"({"op":"list","id":1,"path":null,"recursive":"x","paged":true})", 1);
    REQUIRE(list.request.ok());
    CHECK(std::get<ferry::ListRequest>(list.request->body).path.empty());
    CHECK_FALSE(std::get<ferry::ListRequest>(list.request->body).recursive);
    CHECK(std::get<ferry::ListRequest>(list.request->body).paged);
    const auto put = ferry::parse_request(R"({"op":"put","id":1,"name":"a","size":1,"parents":null,"mtime":1.5})", 1);
    REQUIRE(put.request.ok());
    CHECK_FALSE(std::get<ferry::PutRequest>(put.request->body).parents);
    CHECK_FALSE(std::get<ferry::PutRequest>(put.request->body).mtime.has_value());
    // Version 2 reads them.
    CHECK(ferry::parse_request(R"({"op":"put","id":1,"name":"a","size":1,"parents":null})", 2).request.error().code ==
          ErrorCode::bad_request);
}

TEST_CASE("list: path and recursive round trip, and are left out when not set")
{
    ferry::ListRequest list;
    list.paged = true;
    list.path = "logs/2026";
    list.recursive = true;
    const auto back = round_trip(1, list);
    CHECK(back.paged);
    CHECK(back.path == "logs/2026");
    CHECK(back.recursive);
    CHECK(same_json(ferry::encode_request({1, list}),
                    R"({"op":"list","id":1,"path":"logs/2026","recursive":true,"paged":true})"));
    // A version-1 list is spelled as it always was.
    CHECK(ferry::encode_request({1, ferry::ListRequest{}}) == R"({"id":1,"op":"list"})");
    const auto plain = parse_as<ferry::ListRequest>(R"({"op":"list","id":1})");
    CHECK(plain.path.empty());
    CHECK_FALSE(plain.recursive);
    CHECK_FALSE(plain.paged);
}

TEST_CASE("list: path and recursive of the wrong type, null included, are bad_request")
{
    check_bad_request(R"({"op":"list","id":3,"path":null})", 3);
    check_bad_request(R"({"op":"list","id":3,"path":7})", 3);
    check_bad_request(R"({"op":"list","id":3,"path":["a"]})", 3);
    check_bad_request(R"({"op":"list","id":3,"recursive":null})", 3);
    check_bad_request(R"({"op":"list","id":3,"recursive":1})", 3);
    check_bad_request(R"({"op":"list","id":3,"recursive":"true"})", 3);
}

TEST_CASE("put: parents and mtime round trip, and a version-1 put keeps its bytes")
{
    ferry::PutRequest put;
    put.name = "a/b/c.bin";
    put.size = 5;
    put.parents = true;
    put.mtime = 1764370000;
    const auto back = round_trip(5, put);
    CHECK(back.name == "a/b/c.bin");
    CHECK(back.parents);
    REQUIRE(back.mtime.has_value());
    CHECK(*back.mtime == 1764370000);
    CHECK(same_json(ferry::encode_request({5, put}), R"({"op":"put","id":5,"name":"a/b/c.bin","size":5,
        "resume":false,"parents":true,"mtime":1764370000})"));

    // mtime is the one signed field: the whole range of int64 passes.
    put.mtime = -9223372036854775807ll - 1;
    CHECK(*round_trip(5, put).mtime == -9223372036854775807ll - 1);
    put.mtime = 9223372036854775807ll;
    CHECK(*round_trip(5, put).mtime == 9223372036854775807ll);
    put.mtime = -1;
    CHECK(*round_trip(5, put).mtime == -1);

    const ferry::PutRequest old{"data.bin", 3, false};
    CHECK(ferry::encode_request({5, old}) == R"({"id":5,"name":"data.bin","op":"put","resume":false,"size":3})");
    const auto plain = parse_as<ferry::PutRequest>(R"({"op":"put","id":5,"name":"a","size":1})");
    CHECK_FALSE(plain.parents);
    CHECK_FALSE(plain.mtime.has_value());
}

TEST_CASE("put: parents and mtime follow the rules of 3.1")
{
    const std::string head = R"({"op":"put","id":8,"name":"a","size":1,)";
    for (const std::string bad : {R"("parents":null})", R"("parents":1})", R"("parents":"yes"})",
                                  R"("mtime":null})", R"("mtime":1.5})", R"("mtime":1e3})", R"("mtime":"1"})",
                                  R"("mtime":9223372036854775808})", R"("mtime":-9223372036854775809})",
                                  R"("mtime":1e400})", R"("mtime":true})"}) {
        check_bad_request(head + bad, 8);
    }
    CHECK(*parse_as<ferry::PutRequest>(head + R"("mtime":0})").mtime == 0);
    CHECK(*parse_as<ferry::PutRequest>(head + R"("mtime":-0})").mtime == 0);
}

TEST_CASE("put: mode round trips as permission bits, and a version-1 put ignores it")
{
    ferry::PutRequest put;
    put.name = "bin/tool";
    put.size = 5;
    put.mode = 0755;
    CHECK(same_json(ferry::encode_request({5, put}), R"({"op":"put","id":5,"name":"bin/tool","size":5,
        "resume":false,"mode":493})"));
    CHECK(round_trip(5, put).mode == std::optional<std::uint32_t>(0755));
    for (const std::uint32_t mode : {0U, 0600U, 0777U, 07777U}) {
        put.mode = mode;
        CHECK(round_trip(5, put).mode == std::optional<std::uint32_t>(mode));
    }
    CHECK_FALSE(parse_as<ferry::PutRequest>(R"({"op":"put","id":5,"name":"a","size":1})").mode.has_value());
    // Version 1 does not know the field: ignored whatever it holds (3.1).
    const auto v1 = ferry::parse_request(R"({"op":"put","id":1,"name":"a","size":1,"mode":"rw"})", 1);
    REQUIRE(v1.request.ok());
    CHECK_FALSE(std::get<ferry::PutRequest>(v1.request->body).mode.has_value());
}

TEST_CASE("put: a mode that is not permission bits is bad_request with the id")
{
    const std::string head = R"({"op":"put","id":8,"name":"a","size":1,)";
    for (const std::string bad : {R"("mode":null})", R"("mode":-1})", R"("mode":4096})", R"("mode":"0644"})",
                                  R"("mode":420.0})", R"("mode":4.2e2})", R"("mode":true})", R"("mode":[420]})",
                                  R"("mode":18446744073709551616})", R"("mode":-0})"}) {
        check_bad_request(head + bad, 8);
    }
    CHECK(*parse_as<ferry::PutRequest>(head + R"("mode":4095})").mode == 07777U);
}

TEST_CASE("folder_modes: mkdir's and put's round trip, are left out when empty, and version 1 ignores put's")
{
    ferry::MkdirRequest mkdir{"a/b/c", true, {0700, 0750}};
    CHECK(same_json(ferry::encode_request({4, mkdir}),
                    R"({"op":"mkdir","id":4,"path":"a/b/c","parents":true,"folder_modes":[448,488]})"));
    CHECK(round_trip(4, mkdir).folder_modes == ferry::FolderModes{0700, 0750});
    CHECK(same_json(ferry::encode_request({4, ferry::MkdirRequest{"a", false}}),
                    R"({"op":"mkdir","id":4,"path":"a","parents":false})"));
    CHECK(parse_as<ferry::MkdirRequest>(R"({"op":"mkdir","id":1,"path":"a"})").folder_modes.empty());

    ferry::PutRequest put;
    put.name = "d/e/f";
    put.size = 1;
    put.parents = true;
    put.folder_modes = {0, 07777};
    CHECK(same_json(ferry::encode_request({5, put}), R"({"op":"put","id":5,"name":"d/e/f","size":1,
        "resume":false,"parents":true,"folder_modes":[0,4095]})"));
    CHECK(round_trip(5, put).folder_modes == ferry::FolderModes{0, 07777});
    const ferry::FolderModes deepest(ferry::kMaxPathDepth, 0700);
    put.folder_modes = deepest;
    CHECK(round_trip(5, put).folder_modes == deepest);
    const auto v1 = ferry::parse_request(R"({"op":"put","id":1,"name":"a","size":1,"folder_modes":"x"})", 1);
    REQUIRE(v1.request.ok());
    CHECK(std::get<ferry::PutRequest>(v1.request->body).folder_modes.empty());
}

TEST_CASE("folder_modes: anything but an array of at most 64 permission bits is bad_request with the id")
{
    std::string too_many = "[";
    for (std::size_t i = 0; i <= ferry::kMaxPathDepth; ++i) {
        too_many += i == 0 ? "448" : ",448";
    }
    too_many += "]";
    for (const std::string& head : {std::string(R"({"op":"mkdir","id":9,"path":"a","parents":true,)"),
                                    std::string(R"({"op":"put","id":9,"name":"a/b","size":1,"parents":true,)")}) {
        for (const std::string& bad :
             {std::string("null"), std::string("448"), std::string(R"("0700")"), std::string("[-1]"),
              std::string("[4096]"), std::string("[448.0]"), std::string(R"(["448"])"), std::string("[null]"),
              std::string("[[448]]"), std::string("{}"), std::string("[448,true]"), too_many}) {
            CAPTURE(bad);
            check_bad_request(head + R"("folder_modes":)" + bad + "}", 9);
        }
    }
    CHECK(parse_as<ferry::MkdirRequest>(R"({"op":"mkdir","id":1,"path":"a","folder_modes":[]})").folder_modes.empty());
}

TEST_CASE("folder_create_mode_of: the source's permission bits, the owner's rwx always, 0777 when unknown")
{
    CHECK(ferry::folder_create_mode_of(std::nullopt) == 0777U);
    CHECK(ferry::folder_create_mode_of(0700U) == 0700U);
    CHECK(ferry::folder_create_mode_of(0500U) == 0700U);
    CHECK(ferry::folder_create_mode_of(0055U) == 0755U);
    CHECK(ferry::folder_create_mode_of(07750U) == 0750U); // no set-ID or sticky bit
}

TEST_CASE("mkdir, delete, rename, digest: requests round trip with every field")
{
    const auto mkdir = round_trip(4, ferry::MkdirRequest{"a/b", true});
    CHECK(mkdir.path == "a/b");
    CHECK(mkdir.parents);
    CHECK(same_json(ferry::encode_request({4, ferry::MkdirRequest{"a/b", false}}),
                    R"({"op":"mkdir","id":4,"path":"a/b","parents":false})"));

    const auto del = round_trip(5, ferry::DeleteRequest{"a/b", true});
    CHECK(del.path == "a/b");
    CHECK(del.recursive);
    CHECK(same_json(ferry::encode_request({5, ferry::DeleteRequest{"a/b", false}}),
                    R"({"op":"delete","id":5,"path":"a/b","recursive":false})"));

    const auto rename = round_trip(6, ferry::RenameRequest{"a.txt", "b/c.txt", true});
    CHECK(rename.from == "a.txt");
    CHECK(rename.to == "b/c.txt");
    CHECK(rename.replace);
    CHECK(same_json(ferry::encode_request({6, ferry::RenameRequest{"a.txt", "b/c.txt", false}}),
                    R"({"op":"rename","id":6,"from":"a.txt","to":"b/c.txt","replace":false})"));

    const auto digest = round_trip(7, ferry::DigestRequest{"a/b.bin", ferry::HashKind::xxh3_128});
    CHECK(digest.name == "a/b.bin");
    CHECK(digest.hash == ferry::HashKind::xxh3_128);
    CHECK(same_json(ferry::encode_request({7, ferry::DigestRequest{"a/b.bin", ferry::HashKind::xxh3_128}}),
                    R"({"op":"digest","id":7,"name":"a/b.bin","hash":"xxh3-128"})"));
    CHECK(same_json(ferry::encode_request({7, ferry::DigestRequest{"a/b.bin"}}),
                    R"({"op":"digest","id":7,"name":"a/b.bin"})"));
}

TEST_CASE("delete's expect: a file by type, size and mtime, a folder by type alone; round trip")
{
    const ferry::ExpectedEntry file{EntryType::file, 5, -7};
    const auto del = round_trip(5, ferry::DeleteRequest{"a/b", false, file});
    REQUIRE(del.expect.has_value());
    CHECK(del.expect->type == EntryType::file);
    CHECK(del.expect->size == 5);
    CHECK(del.expect->mtime == -7);
    CHECK(same_json(ferry::encode_request({5, ferry::DeleteRequest{"a/b", false, file}}),
                    R"({"op":"delete","id":5,"path":"a/b","recursive":false,)"
                    R"("expect":{"type":"file","size":5,"mtime":-7}})"));
    // A folder's mtime changes as its listed entries go: not sent, not kept.
    const ferry::ExpectedEntry folder{EntryType::folder, 9, 9};
    CHECK(same_json(ferry::encode_request({5, ferry::DeleteRequest{"a", false, folder}}),
                    R"({"op":"delete","id":5,"path":"a","recursive":false,"expect":{"type":"folder"}})"));
    const auto listed = parse_as<ferry::DeleteRequest>(
        R"({"op":"delete","id":5,"path":"a","expect":{"name":"a","type":"folder","size":0,"mtime":1764370000}})");
    REQUIRE(listed.expect.has_value());
    CHECK(listed.expect->type == EntryType::folder);
    CHECK(listed.expect->mtime == 0);
    // Absent: a delete by name, as before.
    CHECK_FALSE(parse_as<ferry::DeleteRequest>(R"({"op":"delete","id":5,"path":"a"})").expect.has_value());
    CHECK(same_json(ferry::encode_request({5, ferry::DeleteRequest{"a", false}}),
                    R"({"op":"delete","id":5,"path":"a","recursive":false})"));
}

TEST_CASE("delete's expect: a bad one, or one with recursive, is bad_request with the id")
{
    const std::string head = R"({"op":"delete","id":6,"path":"a",)";
    for (const std::string bad : {
             R"("expect":null})",
             R"("expect":"file"})",
             R"("expect":[]})",
             R"("expect":{}})",
             R"("expect":{"type":"link","size":1,"mtime":1}})",
             R"("expect":{"type":null}})",
             R"("expect":{"type":"file"}})",
             R"("expect":{"type":"file","size":1}})",
             R"("expect":{"type":"file","mtime":1}})",
             R"("expect":{"type":"file","size":-1,"mtime":1}})",
             R"("expect":{"type":"file","size":1.0,"mtime":1}})",
             R"("expect":{"type":"file","size":1,"mtime":"1"}})",
             R"("expect":{"type":"file","size":1,"mtime":9223372036854775808}})",
             R"("expect":{"type":"folder","size":null}})",
             R"("expect":{"type":"folder","mtime":1.5}})",
             R"("recursive":true,"expect":{"type":"folder"}})",
             R"("recursive":true,"expect":{"type":"file","size":1,"mtime":1}})",
         }) {
        check_bad_request(head + bad, 6);
    }
    const auto recursive = ferry::parse_request(head + R"("recursive":true,"expect":{"type":"folder"}})");
    REQUIRE_FALSE(recursive.request.ok());
    CHECK(recursive.request.error().message.find("recursive") != std::string::npos);
}

TEST_CASE("set_mtime: a path and a signed mtime, both required")
{
    const auto set = round_trip(8, ferry::SetMtimeRequest{"a/b", -5});
    CHECK(set.path == "a/b");
    CHECK(set.mtime == -5);
    CHECK(same_json(ferry::encode_request({8, ferry::SetMtimeRequest{"", 1764370000}}),
                    R"({"op":"set_mtime","id":8,"path":"","mtime":1764370000})"));
    for (const std::string text :
         {R"({"op":"set_mtime","id":8,"path":"a"})", R"({"op":"set_mtime","id":8,"mtime":1})",
          R"({"op":"set_mtime","id":8,"path":"a","mtime":"1"})", R"({"op":"set_mtime","id":8,"path":"a","mtime":1.5})",
          R"({"op":"set_mtime","id":8,"path":"a","mtime":null})",
          R"({"op":"set_mtime","id":8,"path":"a","mtime":9223372036854775808})"}) {
        INFO(text);
        const auto parsed = ferry::parse_request(text);
        REQUIRE_FALSE(parsed.request.ok());
        CHECK(parsed.request.error().code == ErrorCode::bad_request);
        CHECK(parsed.id == 8U);
    }
}

TEST_CASE("set_mtime's expect: a file by type, size and mtime, a folder by type alone; round trip")
{
    const ferry::ExpectedEntry file{EntryType::file, 5, -7};
    const auto set = round_trip(8, ferry::SetMtimeRequest{"a/b", 9, file});
    REQUIRE(set.expect.has_value());
    CHECK(set.expect->type == EntryType::file);
    CHECK(set.expect->size == 5);
    CHECK(set.expect->mtime == -7);
    CHECK(same_json(ferry::encode_request({8, ferry::SetMtimeRequest{"a/b", 9, file}}),
                    R"({"op":"set_mtime","id":8,"path":"a/b","mtime":9,)"
                    R"("expect":{"type":"file","size":5,"mtime":-7}})"));
    const ferry::ExpectedEntry folder{EntryType::folder, 9, 9};
    CHECK(same_json(ferry::encode_request({8, ferry::SetMtimeRequest{"a", 9, folder}}),
                    R"({"op":"set_mtime","id":8,"path":"a","mtime":9,"expect":{"type":"folder"}})"));
    // A listing's entry, as it came: name ignored, a folder's size and mtime not kept.
    const auto listed = parse_as<ferry::SetMtimeRequest>(
        R"({"op":"set_mtime","id":8,"path":"a","mtime":9,)"
        R"("expect":{"name":"a","type":"folder","size":0,"mtime":1764370000}})");
    REQUIRE(listed.expect.has_value());
    CHECK(listed.expect->type == EntryType::folder);
    CHECK(listed.expect->mtime == 0);
    CHECK_FALSE(parse_as<ferry::SetMtimeRequest>(R"({"op":"set_mtime","id":8,"path":"a","mtime":1})")
                    .expect.has_value());
}

TEST_CASE("set_mtime's expect: a bad one is bad_request with the id")
{
    const std::string head = R"({"op":"set_mtime","id":6,"path":"a","mtime":1,)";
    for (const std::string bad : {
             R"("expect":null})",
             R"("expect":"file"})",
             R"("expect":[]})",
             R"("expect":{}})",
             R"("expect":{"type":"link","size":1,"mtime":1}})",
             R"("expect":{"type":null}})",
             R"("expect":{"type":"file"}})",
             R"("expect":{"type":"file","size":1}})",
             R"("expect":{"type":"file","mtime":1}})",
             R"("expect":{"type":"file","size":-1,"mtime":1}})",
             R"("expect":{"type":"file","size":1.0,"mtime":1}})",
             R"("expect":{"type":"file","size":1,"mtime":"1"}})",
             R"("expect":{"type":"file","size":1,"mtime":9223372036854775808}})",
             R"("expect":{"type":"folder","size":null}})",
             R"("expect":{"type":"folder","mtime":1.5}})",
         }) {
        check_bad_request(head + bad, 6);
    }
    const auto parsed = ferry::parse_request(head + R"("expect":7})");
    REQUIRE_FALSE(parsed.request.ok());
    CHECK(parsed.request.error().message.find("4.13") != std::string::npos);
}

TEST_CASE("mkdir, delete, rename, digest: optional fields take their defaults")
{
    CHECK_FALSE(parse_as<ferry::MkdirRequest>(R"({"op":"mkdir","id":1,"path":"a"})").parents);
    CHECK_FALSE(parse_as<ferry::DeleteRequest>(R"({"op":"delete","id":1,"path":"a"})").recursive);
    CHECK_FALSE(parse_as<ferry::RenameRequest>(R"({"op":"rename","id":1,"from":"a","to":"b"})").replace);
    CHECK(parse_as<ferry::DigestRequest>(R"({"op":"digest","id":1,"name":"a"})").hash == ferry::HashKind::sha256);
    // The root's empty path is for the server to refuse (invalid_name), not
    // the decoder: it is a string.
    CHECK(parse_as<ferry::MkdirRequest>(R"({"op":"mkdir","id":1,"path":""})").path.empty());
}

TEST_CASE("mkdir, delete, rename, digest: missing, null or mistyped fields are bad_request with the id")
{
    for (const std::string bad : {
             R"({"op":"mkdir","id":9})",
             R"({"op":"mkdir","id":9,"path":null})",
             R"({"op":"mkdir","id":9,"path":3})",
             R"({"op":"mkdir","id":9,"path":"a","parents":null})",
             R"({"op":"mkdir","id":9,"path":"a","parents":"no"})",
             R"({"op":"delete","id":9})",
             R"({"op":"delete","id":9,"path":null})",
             R"({"op":"delete","id":9,"path":{}})",
             R"({"op":"delete","id":9,"path":"a","recursive":null})",
             R"({"op":"delete","id":9,"path":"a","recursive":0})",
             R"({"op":"rename","id":9,"to":"b"})",
             R"({"op":"rename","id":9,"from":"a"})",
             R"({"op":"rename","id":9,"from":null,"to":"b"})",
             R"({"op":"rename","id":9,"from":"a","to":false})",
             R"({"op":"rename","id":9,"from":"a","to":"b","replace":null})",
             R"({"op":"rename","id":9,"from":"a","to":"b","replace":"yes"})",
             R"({"op":"digest","id":9})",
             R"({"op":"digest","id":9,"name":null})",
             R"({"op":"digest","id":9,"name":"a","hash":null})",
             R"({"op":"digest","id":9,"name":"a","hash":"md5"})",
             R"({"op":"digest","id":9,"name":"a","hash":1})",
         }) {
        check_bad_request(bad, 9);
    }
}

TEST_CASE("file information: type is sent only when set, as file or folder")
{
    ferry::StatReply stat;
    stat.file = {"report.pdf", 5120, 1764370000};
    // Version 1: no type, the bytes of old.
    CHECK(ferry::encode_reply(2, stat) == R"({"id":2,"mtime":1764370000,"name":"report.pdf","ok":true,"size":5120})");
    auto parsed = ferry::parse_stat_reply(ferry::encode_reply(2, stat));
    REQUIRE(parsed.ok());
    CHECK_FALSE(parsed->body.file.type.has_value());

    stat.file = {"sub", 0, 1764370000, EntryType::folder};
    CHECK(ferry::encode_reply(2, stat) ==
          R"({"id":2,"mtime":1764370000,"name":"sub","ok":true,"size":0,"type":"folder"})");
    parsed = ferry::parse_stat_reply(ferry::encode_reply(2, stat));
    REQUIRE(parsed.ok());
    CHECK(parsed->body.file.type == EntryType::folder);

    stat.file.type = EntryType::file;
    parsed = ferry::parse_stat_reply(ferry::encode_reply(2, stat));
    REQUIRE(parsed.ok());
    CHECK(parsed->body.file.type == EntryType::file);

    for (const std::string bad : {R"("type":"dir")", R"("type":null)", R"("type":1)", R"("type":"File")"}) {
        INFO(bad);
        CHECK(ferry::parse_stat_reply(R"({"id":2,"ok":true,"name":"a","size":0,"mtime":0,)" + bad + "}")
                  .error()
                  .code == ErrorCode::bad_request);
    }
}

TEST_CASE("file information: mode is sent only when set, and read only as permission bits")
{
    ferry::StatReply stat;
    stat.file = {"a.sh", 3, 7, EntryType::file, 0755};
    CHECK(ferry::encode_reply(2, stat) == R"({"id":2,"mode":493,"mtime":7,"name":"a.sh","ok":true,"size":3,)"
                                          R"("type":"file"})");
    auto parsed = ferry::parse_stat_reply(ferry::encode_reply(2, stat));
    REQUIRE(parsed.ok());
    CHECK(parsed->body.file.mode == std::optional<std::uint32_t>(0755));
    stat.file.mode.reset();
    parsed = ferry::parse_stat_reply(ferry::encode_reply(2, stat));
    REQUIRE(parsed.ok());
    CHECK_FALSE(parsed->body.file.mode.has_value());
    for (const std::string bad :
         {R"("mode":"0644")", R"("mode":null)", R"("mode":-1)", R"("mode":4096)", R"("mode":1.5)"}) {
        INFO(bad);
        CHECK(ferry::parse_stat_reply(R"({"id":2,"ok":true,"name":"a","size":0,"mtime":0,)" + bad + "}").error().code ==
              ErrorCode::bad_request);
        CHECK(ferry::parse_get_reply(R"({"id":2,"ok":true,"name":"a","size":0,"mtime":0,"offset":0,)" + bad + "}")
                  .error()
                  .code == ErrorCode::bad_request);
    }
}

TEST_CASE("list reply: entries with a type, written directly, equal the JSON tree's dump")
{
    ferry::ListReply list;
    list.files = {{"sub", 0, 1764370000, EntryType::folder, 0755},
                  {"sub/a \"q\".txt", 5, -1, EntryType::file, 0600},
                  {"flat.txt", 1, 2}};
    list.more = true;
    const std::string text = ferry::encode_reply(7, list);
    CHECK(text == json::parse(text).dump());
    CHECK(text == R"({"files":[{"mode":493,"mtime":1764370000,"name":"sub","size":0,"type":"folder"},)"
                  R"({"mode":384,"mtime":-1,"name":"sub/a \"q\".txt","size":5,"type":"file"},)"
                  R"({"mtime":2,"name":"flat.txt","size":1}],"id":7,"more":true,"ok":true})");
    const auto parsed = ferry::parse_list_reply(text);
    REQUIRE(parsed.ok());
    REQUIRE(parsed->body.files.size() == 3);
    CHECK(parsed->body.files[0].type == EntryType::folder);
    CHECK(parsed->body.files[1].type == EntryType::file);
    CHECK(parsed->body.files[1].name == "sub/a \"q\".txt");
    CHECK(parsed->body.files[1].mode == std::optional<std::uint32_t>(0600));
    CHECK_FALSE(parsed->body.files[2].type.has_value());
    CHECK_FALSE(parsed->body.files[2].mode.has_value());
    CHECK(ferry::parse_list_reply(R"({"id":7,"ok":true,"files":[{"name":"a","size":0,"mtime":0,"type":"link"}],)"
                                  R"("skipped_invalid_names":0})")
              .error()
              .code == ErrorCode::bad_request);
}

TEST_CASE("mkdir reply: round trip and spelling")
{
    const std::string text = ferry::encode_reply(4, ferry::MkdirReply{"a/b", true});
    CHECK(same_json(text, R"({"id":4,"ok":true,"path":"a/b","created":true})"));
    const auto parsed = ferry::parse_mkdir_reply(text);
    REQUIRE(parsed.ok());
    CHECK(parsed->id == 4);
    CHECK(parsed->body.path == "a/b");
    CHECK(parsed->body.created);
    CHECK_FALSE(ferry::parse_mkdir_reply(ferry::encode_reply(4, ferry::MkdirReply{"a", false}))->body.created);
    CHECK(ferry::parse_mkdir_reply(R"({"id":4,"ok":true,"path":"a"})").error().code == ErrorCode::bad_request);
    CHECK(ferry::parse_mkdir_reply(R"({"id":4,"ok":true,"created":true})").error().code == ErrorCode::bad_request);
}

TEST_CASE("delete reply: round trip and spelling")
{
    const std::string text = ferry::encode_reply(5, ferry::DeleteReply{"a/b", EntryType::folder, 3, 1});
    CHECK(same_json(text, R"({"id":5,"ok":true,"path":"a/b","type":"folder","files":3,"folders":1})"));
    const auto parsed = ferry::parse_delete_reply(text);
    REQUIRE(parsed.ok());
    CHECK(parsed->body.path == "a/b");
    CHECK(parsed->body.type == EntryType::folder);
    CHECK(parsed->body.files == 3);
    CHECK(parsed->body.folders == 1);
    const auto file = ferry::parse_delete_reply(ferry::encode_reply(5, ferry::DeleteReply{"x", EntryType::file, 1, 0}));
    REQUIRE(file.ok());
    CHECK(file->body.type == EntryType::file);
    // type is required here, and one of the two words.
    CHECK(ferry::parse_delete_reply(R"({"id":5,"ok":true,"path":"a","files":1,"folders":0})").error().code ==
          ErrorCode::bad_request);
    CHECK(ferry::parse_delete_reply(R"({"id":5,"ok":true,"path":"a","type":"dir","files":1,"folders":0})")
              .error()
              .code == ErrorCode::bad_request);
    CHECK(ferry::parse_delete_reply(R"({"id":5,"ok":true,"path":"a","type":"file","files":-1,"folders":0})")
              .error()
              .code == ErrorCode::bad_request);
}

TEST_CASE("rename reply: round trip and spelling")
{
    const std::string text = ferry::encode_reply(6, ferry::RenameReply{"a.txt", "b/c.txt"});
    CHECK(same_json(text, R"({"id":6,"ok":true,"from":"a.txt","to":"b/c.txt"})"));
    const auto parsed = ferry::parse_rename_reply(text);
    REQUIRE(parsed.ok());
    CHECK(parsed->body.from == "a.txt");
    CHECK(parsed->body.to == "b/c.txt");
    CHECK(ferry::parse_rename_reply(R"({"id":6,"ok":true,"from":"a"})").error().code == ErrorCode::bad_request);
}

TEST_CASE("digest reply: round trip in either hash, and spelling")
{
    ferry::DigestReply reply;
    reply.file = {"a/b.bin", 5, 1764370000};
    reply.hash = ferry::HashKind::xxh3_128;
    reply.digest = kXxh;
    const std::string text = ferry::encode_reply(7, reply);
    CHECK(same_json(text, R"({"id":7,"ok":true,"name":"a/b.bin","size":5,"mtime":1764370000,"xxh3-128":")" + kXxh +
                              R"("})"));
    const auto parsed = ferry::parse_digest_reply(text);
    REQUIRE(parsed.ok());
    CHECK(parsed->body.file.name == "a/b.bin");
    CHECK(parsed->body.file.size == 5);
    CHECK(parsed->body.file.mtime == 1764370000);
    CHECK(parsed->body.hash == ferry::HashKind::xxh3_128);
    CHECK(parsed->body.digest == kXxh);

    reply.hash = ferry::HashKind::sha256;
    reply.digest = kSha;
    const auto sha = ferry::parse_digest_reply(ferry::encode_reply(7, reply));
    REQUIRE(sha.ok());
    CHECK(sha->body.hash == ferry::HashKind::sha256);
    CHECK(sha->body.digest == kSha);
    CHECK(ferry::parse_digest_reply(R"({"id":7,"ok":true,"name":"a","size":5,"mtime":0,"sha256":"ABC"})")
              .error()
              .code == ErrorCode::bad_request);
    CHECK(ferry::parse_digest_reply(R"({"id":7,"ok":true,"name":"a","size":5,"mtime":0})").error().code ==
          ErrorCode::bad_request);
}

TEST_CASE("the new error codes come back from every new reply parser")
{
    for (const auto code : {ErrorCode::not_empty, ErrorCode::exists, ErrorCode::not_a_folder, ErrorCode::invalid_move}) {
        const std::string text = ferry::encode_error(3, ferry::Error{code, "why"});
        CHECK(ferry::parse_mkdir_reply(text).error().code == code);
        CHECK(ferry::parse_delete_reply(text).error().code == code);
        CHECK(ferry::parse_rename_reply(text).error().code == code);
        CHECK(ferry::parse_digest_reply(text).error().code == code);
        CHECK(ferry::parse_mkdir_reply(text).error().message == "why");
    }
}

TEST_CASE("a commit's defer_sync and the sync request, on the wire (PROTOCOL.md 4.5, 4.14)")
{
    const std::string digest(64, 'a');
    const auto commit =
        parse_as<ferry::CommitRequest>(R"({"op":"commit","id":5,"sha256":")" + digest + R"(","defer_sync":true})");
    CHECK(commit.defer_sync);
    CHECK(commit.replace);
    CHECK_FALSE(parse_as<ferry::CommitRequest>(R"({"op":"commit","id":5,"sha256":")" + digest + R"("})").defer_sync);
    // Sent only when asked, so that a commit is spelled as it always was.
    ferry::CommitRequest plain{digest, ferry::HashKind::sha256};
    CHECK(json::parse(ferry::encode_request(ferry::Request{5, plain})).count("defer_sync") == 0);
    plain.defer_sync = true;
    CHECK(json::parse(ferry::encode_request(ferry::Request{5, plain})).at("defer_sync") == true);
    // Not a boolean: bad_request, as any field of the wrong type.
    check_bad_request(R"({"op":"commit","id":5,"sha256":")" + digest + R"(","defer_sync":1})", 5);
    // Version 1 knows no such field: ignored, as unknown fields are.
    const auto v1 = ferry::parse_request(R"({"op":"commit","id":5,"sha256":")" + digest + R"(","defer_sync":1})", 1);
    REQUIRE(v1.request);
    CHECK_FALSE(std::get<ferry::CommitRequest>(v1.request->body).defer_sync);

    (void)parse_as<ferry::SyncRequest>(R"({"op":"sync","id":7})"); // REQUIREs the type
    CHECK(json::parse(ferry::encode_request(ferry::Request{7, ferry::SyncRequest{}})) ==
          json::parse(R"({"op":"sync","id":7})"));

    const auto reply = ferry::parse_sync_reply(ferry::encode_reply(7, ferry::SyncReply{3}));
    REQUIRE(reply);
    CHECK(reply->id == 7);
    CHECK(reply->body.folders == 3);

    // A commit reply says synced:false only when the sync was deferred;
    // without the field (every older server) it was synced.
    ferry::FileInfo file{"a/b", 1, 2};
    ferry::CommitReply deferred{file, digest};
    deferred.synced = false;
    const auto told = ferry::parse_commit_reply(ferry::encode_reply(5, deferred));
    REQUIRE(told);
    CHECK_FALSE(told->body.synced);
    const std::string plain_reply = ferry::encode_reply(5, ferry::CommitReply{file, digest});
    CHECK(plain_reply.find("synced") == std::string::npos);
    const auto synced = ferry::parse_commit_reply(plain_reply);
    REQUIRE(synced);
    CHECK(synced->body.synced);
}
