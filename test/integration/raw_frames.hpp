// Blocking socket helpers for the integration tests' scripted servers: whole
// reads and writes, and one control frame's payload (PROTOCOL.md 2: a kind
// byte and a big-endian 32-bit length before it).
#pragma once

#include "frame.hpp"

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace ferry::test {

// Reads exactly `size` bytes; false when the peer left or failed first.
inline bool read_exact(int fd, char* out, std::size_t size)
{
    while (size > 0) {
        const ssize_t got = ::recv(fd, out, size, 0);
        if (got <= 0) {
            return false;
        }
        out += got;
        size -= static_cast<std::size_t>(got);
    }
    return true;
}

// Sends all of `data`; false when the peer is gone (no SIGPIPE).
inline bool send_all(int fd, const char* data, std::size_t size)
{
    while (size > 0) {
        const ssize_t sent = ::send(fd, data, size, MSG_NOSIGNAL);
        if (sent <= 0) {
            return false;
        }
        data += sent;
        size -= static_cast<std::size_t>(sent);
    }
    return true;
}

// The payload of the next frame; empty when the peer left.
inline std::string read_control(int fd)
{
    char header[kFrameHeaderSize];
    if (!read_exact(fd, header, sizeof header)) {
        return {};
    }
    const std::uint32_t size = (std::uint32_t(std::uint8_t(header[1])) << 24) |
                               (std::uint32_t(std::uint8_t(header[2])) << 16) |
                               (std::uint32_t(std::uint8_t(header[3])) << 8) | std::uint8_t(header[4]);
    std::string payload(size, '\0');
    return read_exact(fd, payload.data(), size) ? payload : std::string();
}

} // namespace ferry::test
