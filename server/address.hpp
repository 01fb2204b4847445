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

} // namespace ferry::server
