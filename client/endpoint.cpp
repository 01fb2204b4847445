#include "endpoint.hpp"

#include <charconv>

namespace ferry::client {

namespace {

Error bad(std::string_view text, const std::string& why)
{
    return Error{ErrorCode::bad_request, "bad server address \"" + std::string(text) + "\": " + why};
}

} // namespace

std::string Endpoint::to_string() const
{
    const std::string shown = host.find(':') == std::string::npos ? host : "[" + host + "]";
    return shown + ":" + std::to_string(port);
}

Result<Endpoint> parse_endpoint(std::string_view text)
{
    Endpoint endpoint;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) {
            return bad(text, "missing ']'");
        }
        endpoint.host = std::string(text.substr(1, close - 1));
        const std::string_view rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') {
                return bad(text, "expected ':' after ']'");
            }
            port_text = rest.substr(1);
            if (port_text.empty()) {
                return bad(text, "missing port after ':'");
            }
        }
    } else {
        const auto first = text.find(':');
        const auto last = text.rfind(':');
        if (first != last) {
            // Several colons without brackets: an IPv6 address on the default port.
            endpoint.host = std::string(text);
        } else if (first != std::string_view::npos) {
            endpoint.host = std::string(text.substr(0, first));
            port_text = text.substr(first + 1);
            if (port_text.empty()) {
                return bad(text, "missing port after ':'");
            }
        } else {
            endpoint.host = std::string(text);
        }
    }
    if (endpoint.host.empty()) {
        return bad(text, "missing host");
    }
    if (!port_text.empty()) {
        unsigned port = 0;
        const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
        if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
            return bad(text, "port must be a number from 1 to 65535");
        }
        endpoint.port = static_cast<std::uint16_t>(port);
    }
    return endpoint;
}

} // namespace ferry::client
