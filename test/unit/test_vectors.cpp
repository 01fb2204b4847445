// docs/protocol-vectors/vectors.json, checked from C++: the same bytes the
// Python conformance suite checks, so the document, this codec and any
// client written from the document cannot drift apart.
#include "frame.hpp"
#include "hex.hpp"
#include "messages.hpp"
#include "vectors_path.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

using nlohmann::json;

namespace {

std::vector<std::uint8_t> from_hex(const std::string& hex)
{
    const auto bytes = ferry::from_hex(hex);
    REQUIRE(bytes.has_value());
    return {bytes->begin(), bytes->end()};
}

json load_vectors()
{
    std::ifstream file(ferry::test::vectors_path());
    REQUIRE(file.good());
    return json::parse(file);
}

struct Decoded {
    std::vector<std::string> controls;
    std::vector<std::uint8_t> data;
    std::optional<ferry::ErrorCode> error;
    std::size_t consumed = 0;
};

Decoded decode(const std::vector<std::uint8_t>& bytes)
{
    ferry::FrameDecoder decoder;
    Decoded out;
    std::span<const std::uint8_t> rest(bytes);
    while (!rest.empty()) {
        auto event = decoder.next(rest);
        out.consumed += event.consumed;
        rest = rest.subspan(event.consumed);
        if (event.kind == ferry::DecodeEvent::Kind::error) {
            out.error = event.error.code;
            break;
        }
        if (event.kind == ferry::DecodeEvent::Kind::control) {
            out.controls.push_back(event.text);
        } else if (event.kind == ferry::DecodeEvent::Kind::data) {
            out.data.insert(out.data.end(), event.bytes.begin(), event.bytes.end());
        }
    }
    return out;
}

} // namespace

TEST_CASE("every protocol vector decodes to what the document says")
{
    const json vectors = load_vectors();
    REQUIRE(vectors.size() >= 15);
    for (const auto& vector : vectors) {
        const std::string name = vector.at("name");
        CAPTURE(name);
        const auto decoded = decode(from_hex(vector.at("hex")));
        if (vector.contains("error")) {
            const std::string code = vector.at("error");
            if (code == "bad_json") {
                REQUIRE(decoded.controls.size() == 1);
                const auto parsed = ferry::parse_request(decoded.controls[0]);
                REQUIRE_FALSE(parsed.request.ok());
                CHECK(ferry::to_string(parsed.request.error().code) == code);
            } else {
                REQUIRE(decoded.error.has_value());
                CHECK(ferry::to_string(*decoded.error) == code);
            }
            continue;
        }
        REQUIRE_FALSE(decoded.error.has_value());
        if (vector.at("kind") == "data") {
            CHECK(decoded.controls.empty());
            CHECK(decoded.data == from_hex(vector.at("data_hex")));
            continue;
        }
        REQUIRE(decoded.controls.size() == 1);
        CHECK(json::parse(decoded.controls[0]) == vector.at("json"));
        if (vector.at("direction") == "client") {
            // Our own encoder says the same thing; it may spell out an
            // optional field the vector leaves to its default.
            const auto parsed = ferry::parse_request(decoded.controls[0]);
            REQUIRE(parsed.request.ok());
            const json encoded = json::parse(ferry::encode_request(*parsed.request));
            for (const auto& [key, value] : vector.at("json").items()) {
                // CAPTURE takes a reference in a lambda, which clang before
                // 16 cannot take of a structured binding.
                const std::string& field = key;
                CAPTURE(field);
                CHECK(encoded.at(field) == value);
            }
        }
    }
}

namespace {

// The reply to a request of `op`, parsed and written again by this codec.
std::optional<std::string> reencode(const std::string& op, const std::string& text)
{
    const auto again = [&](auto parsed) -> std::optional<std::string> {
        if (!parsed) {
            const json message = json::parse(text);
            return ferry::encode_error(message.at("id").get<std::uint64_t>(), parsed.error());
        }
        return ferry::encode_reply(parsed->id, parsed->body);
    };
    if (op == "hello") {
        return again(ferry::parse_hello_reply(text));
    }
    if (op == "list") {
        return again(ferry::parse_list_reply(text));
    }
    if (op == "stat" || op == "set_mtime") {
        return again(ferry::parse_stat_reply(text));
    }
    if (op == "put") {
        return again(ferry::parse_put_reply(text));
    }
    if (op == "abort") {
        return again(ferry::parse_abort_reply(text));
    }
    if (op == "commit") {
        return again(ferry::parse_commit_reply(text));
    }
    if (op == "mkdir") {
        return again(ferry::parse_mkdir_reply(text));
    }
    if (op == "delete") {
        return again(ferry::parse_delete_reply(text));
    }
    if (op == "rename") {
        return again(ferry::parse_rename_reply(text));
    }
    if (op == "digest") {
        return again(ferry::parse_digest_reply(text));
    }
    if (op == "sync") {
        return again(ferry::parse_sync_reply(text));
    }
    return std::nullopt;
}

} // namespace

TEST_CASE("the version-2 vectors are what this codec reads and writes, byte for byte")
{
    const json vectors = load_vectors();
    std::string op;
    std::size_t checked = 0;
    for (const auto& vector : vectors) {
        if (vector.value("version", 1) != 2) {
            continue;
        }
        const std::string name = vector.at("name");
        CAPTURE(name);
        const auto decoded = decode(from_hex(vector.at("hex")));
        REQUIRE(decoded.controls.size() == 1);
        const std::string& text = decoded.controls[0];
        if (vector.at("direction") == "client") {
            const auto parsed = ferry::parse_request(text);
            REQUIRE(parsed.request.ok());
            op = std::string(ferry::op_name(parsed.request->body));
            CHECK(ferry::encode_request(*parsed.request) == text);
            ++checked;
            continue;
        }
        const auto written = reencode(op, text);
        REQUIRE(written.has_value());
        CHECK(*written == text);
        ++checked;
    }
    CHECK(checked >= 25);
}
