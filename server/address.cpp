#include "address.hpp"

#include <uv.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace ferry::server {

Result<sockaddr_storage> parse_listen_address(std::string_view text)
{
    const auto bad = [&](const std::string& why) {
        return Error{ErrorCode::bad_request, "bad address \"" + std::string(text) + "\": " + why};
    };
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
        return bad("expected HOST:PORT");
    }
    std::string host(text.substr(0, colon));
    const std::string_view port_text = text.substr(colon + 1);
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535 || port_text.empty()) {
        return bad("port must be a number from 0 to 65535");
    }
    sockaddr_storage address{};
    const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
    if (bracketed) {
        host = host.substr(1, host.size() - 2);
        if (uv_ip6_addr(host.c_str(), static_cast<int>(port), reinterpret_cast<sockaddr_in6*>(&address)) != 0) {
            return bad("not an IPv6 address");
        }
        return address;
    }
    if (host == "localhost") {
        host = "127.0.0.1";
    }
    if (uv_ip4_addr(host.c_str(), static_cast<int>(port), reinterpret_cast<sockaddr_in*>(&address)) != 0) {
        return bad("not an IPv4 address (write IPv6 as [addr]:port)");
    }
    return address;
}

std::string format_address(const sockaddr* address)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (address->sa_family == AF_INET6) {
        const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
        uv_ip6_name(v6, host, sizeof host);
        return "[" + std::string(host) + "]:" + std::to_string(ntohs(v6->sin6_port));
    }
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    uv_ip4_name(v4, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(v4->sin_port));
}

sockaddr_storage unmapped(const sockaddr_storage& address)
{
    if (address.ss_family != AF_INET6) {
        return address;
    }
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
    if (!IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr)) {
        return address;
    }
    sockaddr_storage plain{};
    auto& v4 = reinterpret_cast<sockaddr_in&>(plain);
    v4.sin_family = AF_INET;
    v4.sin_port = v6.sin6_port;
    // The IPv4 address is the last 4 of the 16 bytes, in network order.
    std::memcpy(&v4.sin_addr, v6.sin6_addr.s6_addr + 12, sizeof v4.sin_addr);
    return plain;
}

bool is_loopback(const sockaddr* address)
{
    if (address->sa_family == AF_INET6) {
        const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
        return IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr);
    }
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    return (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
}

bool overlapping(const sockaddr_storage& a, const sockaddr_storage& b)
{
    if (a.ss_family != b.ss_family) {
        return false;
    }
    if (a.ss_family == AF_INET6) {
        const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
        const auto& y = reinterpret_cast<const sockaddr_in6&>(b);
        return x.sin6_port != 0 && x.sin6_port == y.sin6_port &&
               (IN6_IS_ADDR_UNSPECIFIED(&x.sin6_addr) || IN6_IS_ADDR_UNSPECIFIED(&y.sin6_addr) ||
                IN6_ARE_ADDR_EQUAL(&x.sin6_addr, &y.sin6_addr));
    }
    const auto& x = reinterpret_cast<const sockaddr_in&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in&>(b);
    return x.sin_port != 0 && x.sin_port == y.sin_port &&
           (x.sin_addr.s_addr == INADDR_ANY || y.sin_addr.s_addr == INADDR_ANY ||
            x.sin_addr.s_addr == y.sin_addr.s_addr);
}

bool same_host(const sockaddr* peer, const sockaddr* local)
{
    if (is_loopback(peer)) {
        return true;
    }
    if (peer->sa_family != local->sa_family) {
        return false;
    }
    if (peer->sa_family == AF_INET6) {
        const auto& a = reinterpret_cast<const sockaddr_in6*>(peer)->sin6_addr;
        const auto& b = reinterpret_cast<const sockaddr_in6*>(local)->sin6_addr;
        return std::memcmp(&a, &b, sizeof a) == 0;
    }
    return reinterpret_cast<const sockaddr_in*>(peer)->sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in*>(local)->sin_addr.s_addr;
}

} // namespace ferry::server
