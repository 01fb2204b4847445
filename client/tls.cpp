#include "tls.hpp"

#include "hex.hpp"
#include "interrupt.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

namespace ferry::client {

namespace {

constexpr std::chrono::milliseconds kWakeInterval{200};
// A Ferry frame starts with its kind, 0x01 for control: a server that sends
// one in answer to our ClientHello speaks plaintext (PROTOCOL.md section 1).
constexpr std::uint8_t kFerryControlKind = 0x01;

struct SslCtxFree {
    void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslFree {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
};
struct X509Free {
    void operator()(X509* cert) const { X509_free(cert); }
};

// The oldest queued OpenSSL error as text (and the queue cleared), so that
// one failure never leaks into the next call's report.
std::string openssl_reason()
{
    const unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (code == 0) {
        return "unknown TLS error";
    }
    std::array<char, 256> text{};
    ERR_error_string_n(code, text.data(), text.size());
    return text.data();
}

bool is_ip_literal(const std::string& host)
{
    std::array<std::uint8_t, 16> scratch{};
    return ::inet_pton(AF_INET, host.c_str(), scratch.data()) == 1 ||
           ::inet_pton(AF_INET6, host.c_str(), scratch.data()) == 1;
}

Error handshake_error(const std::string& address, const std::string& why)
{
    return Error{ErrorCode::connection_lost, "TLS with " + address + " failed: " + why};
}

// A server at its connection limits closes a TLS connection before the
// handshake without a word (PROTOCOL.md 7): nothing it said could be read.
Error closed_during_handshake(const std::string& address)
{
    ERR_clear_error();
    return handshake_error(address, "the server closed the connection during the handshake (a server at its "
                                    "connection limit, in all or for this address, does so; try again later)");
}

// Whether the server has closed its end: what is left to read ends there.
bool peer_closed(int fd)
{
    std::uint8_t next = 0;
    return ::recv(fd, &next, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

// A failure that trying again cannot cure: the certificate, the pin, or a
// server without TLS (exit status 5, not 6).
Error trust_error(const std::string& address, const std::string& why)
{
    return Error{ErrorCode::tls_failed, "TLS with " + address + " failed: " + why};
}

Result<std::unique_ptr<SSL_CTX, SslCtxFree>> make_context(const TlsSettings& settings)
{
    std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) {
        return Error{ErrorCode::connection_lost, "cannot set up TLS: " + openssl_reason()};
    }
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
    // A server that closes without close_notify has still said all it meant
    // to (an error frame, then close): treat it as an ordinary end.
    SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
    // Our writes go out in pieces on a non-blocking socket, retried from a
    // buffer that may have moved (Connection resends the same bytes).
    SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (settings.pin) {
        // The pin replaces chain and name checks; it is compared after the handshake.
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
        return ctx;
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (settings.ca_file.empty()) {
        if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
            return Error{ErrorCode::connection_lost, "cannot load the system's CA certificates: " + openssl_reason()};
        }
        return ctx;
    }
    if (SSL_CTX_load_verify_locations(ctx.get(), settings.ca_file.c_str(), nullptr) != 1) {
        return Error{ErrorCode::local_io, "cannot load CA file \"" + settings.ca_file + "\": " + openssl_reason()};
    }
    // --tls-ca may name the server's own self-signed certificate: let any
    // certificate in the file be a trust anchor, not only a root CA.
    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx.get()), X509_V_FLAG_PARTIAL_CHAIN);
    return ctx;
}

Status expect_name(SSL* ssl, const std::string& host)
{
    if (is_ip_literal(host)) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) != 1) {
            return Error{ErrorCode::connection_lost, "cannot check the certificate for " + host};
        }
        return success();
    }
    if (SSL_set1_host(ssl, host.c_str()) != 1 || SSL_set_tlsext_host_name(ssl, host.c_str()) != 1) {
        return Error{ErrorCode::connection_lost, "cannot check the certificate for " + host};
    }
    return success();
}

Status check_pin(SSL* ssl, const Sha256Fingerprint& pin, const std::string& address)
{
    std::unique_ptr<X509, X509Free> cert(SSL_get1_peer_certificate(ssl));
    if (!cert) {
        return handshake_error(address, "the server showed no certificate");
    }
    Sha256Fingerprint actual{};
    unsigned int length = 0;
    if (X509_digest(cert.get(), EVP_sha256(), actual.data(), &length) != 1 || length != actual.size()) {
        return handshake_error(address, "cannot hash the server's certificate: " + openssl_reason());
    }
    if (actual != pin) {
        return trust_error(address, "the server's certificate has SHA-256 fingerprint sha256:" + to_hex(actual) +
                                            ", not the pinned sha256:" + to_hex(pin));
    }
    return success();
}

// Why the handshake stopped, in words: the first bytes the server sent say
// whether it spoke TLS at all.
Error explain_failure(int fd, bool server_spoke, const std::string& address, SSL* ssl)
{
    const long verified = SSL_get_verify_result(ssl);
    if (verified != X509_V_OK) {
        ERR_clear_error();
        return trust_error(address, std::string("the server's certificate is not trusted: ") +
                                            X509_verify_cert_error_string(verified) + " (see --tls-ca and --tls-pin)");
    }
    std::uint8_t first = 0;
    const bool ferry_frame_waits =
        !server_spoke && ::recv(fd, &first, 1, MSG_PEEK | MSG_DONTWAIT) == 1 && first == kFerryControlKind;
    // When the answer came within the first SSL_connect call, OpenSSL has
    // read it already and can only say that it was no TLS record.
    if (ferry_frame_waits || ERR_GET_REASON(ERR_peek_error()) == SSL_R_WRONG_VERSION_NUMBER) {
        ERR_clear_error();
        return trust_error(address, "the server answered in plaintext: it does not speak TLS (leave out --tls)");
    }
    if (!server_spoke && peer_closed(fd)) {
        return closed_during_handshake(address);
    }
    return handshake_error(address, openssl_reason());
}

} // namespace

Result<Sha256Fingerprint> parse_pin(std::string_view text)
{
    const Error bad{ErrorCode::bad_request,
                    "--tls-pin wants sha256: and 64 hex digits (colons allowed), not \"" + std::string(text) + "\""};
    constexpr std::string_view kPrefix = "sha256:";
    if (text.size() >= kPrefix.size() && std::equal(kPrefix.begin(), kPrefix.end(), text.begin(), [](char a, char b) {
            return a == (b >= 'A' && b <= 'Z' ? static_cast<char>(b - 'A' + 'a') : b);
        })) {
        text.remove_prefix(kPrefix.size());
    }
    std::string digits(text);
    std::erase(digits, ':');
    const auto bytes = from_hex(digits);
    Sha256Fingerprint pin{};
    if (!bytes || bytes->size() != pin.size()) {
        return bad;
    }
    std::copy(bytes->begin(), bytes->end(), pin.begin());
    return pin;
}

TlsSession::TlsSession(TlsSession&& other) noexcept : ssl_(std::exchange(other.ssl_, nullptr)) {}

TlsSession& TlsSession::operator=(TlsSession&& other) noexcept
{
    if (this != &other) {
        SSL_free(ssl_);
        ssl_ = std::exchange(other.ssl_, nullptr);
    }
    return *this;
}

TlsSession::~TlsSession()
{
    SSL_free(ssl_);
}

Result<TlsSession> TlsSession::connect(int fd, const std::string& host, const std::string& address,
                                       const TlsSettings& settings, std::chrono::steady_clock::time_point deadline)
{
    ERR_clear_error();
    auto ctx = make_context(settings);
    if (!ctx) {
        return ctx.error();
    }
    std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx->get())); // holds its own reference to the context
    if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) {
        return Error{ErrorCode::connection_lost, "cannot set up TLS: " + openssl_reason()};
    }
    if (!settings.pin) {
        if (auto named = expect_name(ssl.get(), host); !named) {
            return named.error();
        }
    } else if (!is_ip_literal(host)) {
        SSL_set_tlsext_host_name(ssl.get(), host.c_str());
    }

    bool server_spoke = false;
    for (;;) {
        const int rc = SSL_connect(ssl.get());
        if (rc == 1) {
            break;
        }
        const int reason = SSL_get_error(ssl.get(), rc);
        if (reason != SSL_ERROR_WANT_READ && reason != SSL_ERROR_WANT_WRITE) {
            if (reason == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
                return errno != 0 ? handshake_error(address, std::strerror(errno)) : closed_during_handshake(address);
            }
            return explain_failure(fd, server_spoke, address, ssl.get());
        }
        // Before OpenSSL reads the server's first bytes, look at them: a
        // plaintext Ferry server answers a ClientHello with a bad_frame error.
        const short events = reason == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        for (;;) {
            if (interrupted()) {
                return Error{ErrorCode::aborted, "interrupted"};
            }
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                return handshake_error(address, "no TLS handshake within the connect timeout");
            }
            pollfd pfd{fd, events, 0};
            if (::poll(&pfd, 1, static_cast<int>(std::min(left, kWakeInterval).count())) > 0) {
                break;
            }
        }
        if (events == POLLIN && !server_spoke) {
            std::uint8_t first = 0;
            if (::recv(fd, &first, 1, MSG_PEEK | MSG_DONTWAIT) == 1) {
                server_spoke = true;
                if (first == kFerryControlKind) {
                    return trust_error(address,
                                       "the server answered in plaintext: it does not speak TLS (leave out --tls)");
                }
            }
        }
    }
    if (settings.pin) {
        if (auto pinned = check_pin(ssl.get(), *settings.pin, address); !pinned) {
            return pinned.error();
        }
    }
    return TlsSession(ssl.release());
}

IoResult TlsSession::outcome(int rc, std::size_t done)
{
    if (rc == 1) {
        return IoResult{IoResult::Kind::progress, done, 0, 0, {}};
    }
    const int saved_errno = errno;
    switch (SSL_get_error(ssl_, rc)) {
    case SSL_ERROR_WANT_READ:
        return IoResult{IoResult::Kind::would_block, 0, POLLIN, 0, {}};
    case SSL_ERROR_WANT_WRITE:
        return IoResult{IoResult::Kind::would_block, 0, POLLOUT, 0, {}};
    case SSL_ERROR_ZERO_RETURN:
        return IoResult{IoResult::Kind::eof, 0, 0, 0, {}};
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0) {
            if (saved_errno == 0) {
                return IoResult{IoResult::Kind::eof, 0, 0, 0, {}};
            }
            return IoResult{IoResult::Kind::failed, 0, 0, saved_errno, std::strerror(saved_errno)};
        }
        return IoResult{IoResult::Kind::failed, 0, 0, 0, openssl_reason()};
    default:
        return IoResult{IoResult::Kind::failed, 0, 0, 0, "TLS: " + openssl_reason()};
    }
}

IoResult TlsSession::read(std::span<std::uint8_t> buffer)
{
    ERR_clear_error();
    errno = 0;
    std::size_t done = 0;
    const int rc = SSL_read_ex(ssl_, buffer.data(), buffer.size(), &done);
    return outcome(rc, done);
}

IoResult TlsSession::write(std::span<const std::uint8_t> bytes)
{
    ERR_clear_error();
    errno = 0;
    std::size_t done = 0;
    const int rc = SSL_write_ex(ssl_, bytes.data(), bytes.size(), &done);
    return outcome(rc, done);
}

bool TlsSession::has_pending() const
{
    return ssl_ != nullptr && SSL_pending(ssl_) > 0;
}

} // namespace ferry::client
