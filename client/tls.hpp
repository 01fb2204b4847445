// How the client trusts a TLS server (docs/PROTOCOL.md section 1), and the
// TLS 1.3 session over the client's non-blocking socket (OpenSSL's libssl).
//
// Trust is one of three: the system's CA store (--tls), a CA or certificate
// file (--tls-ca; the certificate itself may be the trust anchor), or a
// pinned SHA-256 fingerprint of the server certificate's DER (--tls-pin),
// which replaces chain and name checks. Without a pin the server's name or
// IP address must match its certificate.
#pragma once

#include "status.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

struct ssl_st;

namespace ferry::client {

using Sha256Fingerprint = std::array<std::uint8_t, 32>;

struct TlsSettings {
    std::string ca_file;                  // empty: the system's CA store
    std::optional<Sha256Fingerprint> pin; // set: only this certificate is accepted
};

// "sha256:AB:CD:..." or plain hex, colons optional, any case: what
// `openssl x509 -noout -fingerprint -sha256` prints, with or without its prefix.
Result<Sha256Fingerprint> parse_pin(std::string_view text);

// What a read or write on the socket came to. Never blocks: `would_block`
// says which poll(2) events to wait for before trying again.
struct IoResult {
    enum class Kind { progress, would_block, eof, failed };
    Kind kind = Kind::progress;
    std::size_t bytes = 0; // with progress
    short events = 0;      // with would_block
    int err = 0;           // with failed: errno, when there is one
    std::string why;       // with failed: for people
};

// One TLS session on a connected non-blocking socket it does not own.
class TlsSession {
public:
    TlsSession() = default;
    TlsSession(TlsSession&& other) noexcept;
    TlsSession& operator=(TlsSession&& other) noexcept;
    TlsSession(const TlsSession&) = delete;
    TlsSession& operator=(const TlsSession&) = delete;
    ~TlsSession();

    // Handshakes with `host` on `fd` until done, `deadline`, or Ctrl-C.
    // Failures are connection_lost (aborted for Ctrl-C), with a message that
    // says whether the server spoke plaintext, closed, or showed a
    // certificate that is not trusted.
    static Result<TlsSession> connect(int fd, const std::string& host, const std::string& address,
                                      const TlsSettings& settings, std::chrono::steady_clock::time_point deadline);

    IoResult read(std::span<std::uint8_t> buffer);
    IoResult write(std::span<const std::uint8_t> bytes);
    // Decrypted bytes waiting inside OpenSSL, which poll(2) cannot see.
    bool has_pending() const;

private:
    explicit TlsSession(ssl_st* ssl) : ssl_(ssl) {}
    IoResult outcome(int rc, std::size_t done);

    ssl_st* ssl_ = nullptr;
};

} // namespace ferry::client
