// The byte stream under a Connection: a connected non-blocking TCP socket,
// plain or wrapped in TLS. It owns the socket. Reads and writes never block;
// a would_block result names the poll(2) events to wait for, which for TLS
// need not be the obvious ones (a TLS read may have to write first).
#pragma once

#include "tls.hpp"

#include <optional>
#include <span>
#include <vector>

namespace ferry::client {

class Transport {
public:
    Transport() = default;
    explicit Transport(int fd) : fd_(fd) {}
    Transport(Transport&& other) noexcept;
    Transport& operator=(Transport&& other) noexcept;
    Transport(const Transport&) = delete;
    Transport& operator=(const Transport&) = delete;
    ~Transport();

    int fd() const { return fd_; }
    bool is_open() const { return fd_ >= 0; }
    // From now on every byte goes through `tls`, which sits on this socket.
    void adopt_tls(TlsSession tls) { tls_ = std::move(tls); }
    void close();

    IoResult read(std::span<std::uint8_t> buffer);
    // Writes a prefix of head followed by body (a frame header and its payload).
    IoResult write(std::span<const std::uint8_t> head, std::span<const std::uint8_t> body);
    // Bytes already received and decrypted that poll(2) cannot see.
    bool has_pending() const { return tls_ && tls_->has_pending(); }

private:
    int fd_ = -1;
    std::optional<TlsSession> tls_;
    // TLS writes one buffer at a time: a header and its payload are joined
    // here so that they share records instead of costing one each.
    std::vector<std::uint8_t> joined_;
};

} // namespace ferry::client
