// Where the server is: "HOST:PORT", "[IPv6]:PORT", or a bare host (or
// "[IPv6]", or an unbracketed IPv6 address) for the default port.
#pragma once

#include "error.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::client {

inline constexpr std::uint16_t kDefaultPort = 7021;
inline constexpr std::string_view kDefaultServer = "127.0.0.1:7021";

struct Endpoint {
    std::string host; // a name or an address, without brackets
    std::uint16_t port = kDefaultPort;

    // "host:port", or "[v6]:port" when the host holds a ':'.
    std::string to_string() const;
};

// Refuses empty hosts, port 0, ports over 65535 and trailing garbage, with
// bad_request and a message naming the text.
Result<Endpoint> parse_endpoint(std::string_view text);

} // namespace ferry::client
