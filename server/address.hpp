// "HOST:PORT" and "[IPv6]:PORT" to socket addresses and back.
#pragma once

#include "error.hpp"

#include <sys/socket.h>

#include <string>
#include <string_view>

namespace ferry::server {

Result<sockaddr_storage> parse_listen_address(std::string_view text);
std::string format_address(const sockaddr* address);
// `address`, an IPv4-mapped IPv6 address (::ffff:a.b.c.d, RFC 4291 section
// 2.5.5.2: how a dual-stack socket, such as one bound to [::], shows an IPv4
// peer) made the IPv4 address it stands for, with its port; any other as
// it is. So one IPv4 host is one peer, named one way in the log and counted
// once against its address's limits, whichever listener it reached.
sockaddr_storage unmapped(const sockaddr_storage& address);
bool is_loopback(const sockaddr* address);
// Whether two addresses to listen on claim the same socket: one family, one
// port other than 0 (each 0 picks a free port of its own), and the same
// address or a wildcard (0.0.0.0, [::]) that covers the other. Binding both
// fails with EADDRINUSE, which would blame someone else for the port.
bool overlapping(const sockaddr_storage& a, const sockaddr_storage& b);
// Whether a connection's peer runs on this host: a loopback address, or the
// connection's own local address (a client that dialled one of the host's
// addresses). Such a peer's data never leaves the machine's memory.
bool same_host(const sockaddr* peer, const sockaddr* local);

} // namespace ferry::server
