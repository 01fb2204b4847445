// docs/protocol-vectors/vectors.json, checked from C++: the same bytes the
// Python conformance suite checks, so the document, this codec and any
// client written from the document cannot drift apart.
#include "frame.hpp"
#include "hex.hpp"
#include "messages.hpp"

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
    std::ifstream file(FERRY_VECTORS);
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
