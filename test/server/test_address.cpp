// Which peers run on this host (SessionIo::peer_on_this_host).
#include "address.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

using namespace ferry::server;

namespace {

sockaddr_storage v4(const std::string& ip)
{
    sockaddr_storage storage{};
    auto* address = reinterpret_cast<sockaddr_in*>(&storage);
    address->sin_family = AF_INET;
    REQUIRE(::inet_pton(AF_INET, ip.c_str(), &address->sin_addr) == 1);
    return storage;
}

sockaddr_storage v6(const std::string& ip)
{
    sockaddr_storage storage{};
    auto* address = reinterpret_cast<sockaddr_in6*>(&storage);
    address->sin6_family = AF_INET6;
    REQUIRE(::inet_pton(AF_INET6, ip.c_str(), &address->sin6_addr) == 1);
    return storage;
}

bool same(const sockaddr_storage& peer, const sockaddr_storage& local)
{
    return same_host(reinterpret_cast<const sockaddr*>(&peer), reinterpret_cast<const sockaddr*>(&local));
}

} // namespace

TEST_CASE("a peer on a loopback address or on the connection's own address is on this host")
{
    CHECK(same(v4("127.0.0.1"), v4("127.0.0.1")));
    CHECK(same(v4("127.0.0.2"), v4("192.0.2.7")));
    CHECK(same(v6("::1"), v6("::1")));
    CHECK(same(v4("192.0.2.7"), v4("192.0.2.7")));
    CHECK(same(v6("2001:db8::5"), v6("2001:db8::5")));
    CHECK_FALSE(same(v4("192.0.2.8"), v4("192.0.2.7")));
    CHECK_FALSE(same(v6("2001:db8::6"), v6("2001:db8::5")));
    CHECK_FALSE(same(v4("192.0.2.7"), v6("2001:db8::5")));
}
