// "HOST:PORT" and "[IPv6]:PORT" to socket addresses and back.
#pragma once

#include "error.hpp"

#include <sys/socket.h>

#include <string>
#include <string_view>

namespace ferry::server {

Result<sockaddr_storage> parse_listen_address(std::string_view text);
std::string format_address(const sockaddr* address);
bool is_loopback(const sockaddr* address);
// Whether a connection's peer runs on this host: a loopback address, or the
// connection's own local address (a client that dialled one of the host's
// addresses). Such a peer's data never leaves the machine's memory.
bool same_host(const sockaddr* peer, const sockaddr* local);

} // namespace ferry::server
