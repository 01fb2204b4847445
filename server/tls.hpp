// TLS 1.3 for ferryd without touching the state machine: OpenSSL runs over
// two memory BIOs, ciphertext in from the socket and out to it, plaintext
// to and from the Session. Pure bytes in, bytes out: no sockets, no libuv,
// so the loop never blocks on it and it is testable on its own.
#pragma once

#include "error.hpp"

#include <openssl/ssl.h>

#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace ferry::server {

// The server's certificate and key, loaded once and shared by connections.
class TlsContext {
public:
    static Result<std::shared_ptr<TlsContext>> load(const std::string& cert_file, const std::string& key_file);
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;
    ~TlsContext();

    SSL_CTX* get() const { return ctx_; }

private:
    explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
    SSL_CTX* ctx_;
};

// The first byte of every TLS connection: a handshake record. A Ferry frame
// starts with 0x01 or 0x02, so one byte tells which the client speaks.
inline constexpr unsigned char kTlsHandshakeRecord = 0x16;

// The whole size (header included) of the TLS record at the front of
// `bytes`: 0 while its 5-byte header is incomplete; nullopt when its length
// exceeds what a record may carry (RFC 8446 5.1: 2^14 bytes of plaintext).
std::optional<std::size_t> tls_record_size(std::string_view bytes);

class TlsChannel {
public:
    explicit TlsChannel(const TlsContext& context);
    TlsChannel(const TlsChannel&) = delete;
    TlsChannel& operator=(const TlsChannel&) = delete;
    ~TlsChannel();

    // Ciphertext from the peer; plaintext it yields is appended to `plain`,
    // and anything the engine must answer (handshake, alerts) to `cipher`.
    std::optional<Error> receive(std::span<const char> ciphertext, std::string& plain, std::string& cipher);
    // Plaintext for the peer, encrypted onto `cipher`.
    std::optional<Error> send(std::string_view plain, std::string& cipher);
    // A close_notify alert onto `cipher`.
    void close_notify(std::string& cipher);
    bool handshake_done() const { return SSL_is_init_finished(ssl_) == 1; }
    // Where the handshake stands, in OpenSSL's words, for logs.
    std::string_view stage() const { return SSL_state_string_long(ssl_); }

private:
    void drain(std::string& cipher);

    SSL* ssl_;
    BIO* from_peer_; // owned by ssl_
    BIO* to_peer_;   // owned by ssl_
};

} // namespace ferry::server
