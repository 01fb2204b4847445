#include "tls.hpp"

#include <openssl/err.h>

namespace ferry::server {

namespace {

std::string openssl_error(std::string_view what)
{
    std::string text(what);
    const unsigned long code = ERR_get_error();
    if (code != 0) {
        char reason[256];
        ERR_error_string_n(code, reason, sizeof reason);
        text += ": ";
        text += reason;
    }
    ERR_clear_error();
    return text;
}

} // namespace

Result<std::shared_ptr<TlsContext>> TlsContext::load(const std::string& cert_file, const std::string& key_file)
{
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr) {
        return Error{ErrorCode::internal, openssl_error("cannot create a TLS context")};
    }
    std::shared_ptr<TlsContext> context(new TlsContext(ctx));
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    // Read and write buffers (about 34 KiB) are freed while a connection
    // has nothing in them: idle connections and handshakes that stall
    // half-way then hold only the engine's state.
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
        return Error{ErrorCode::io_error, openssl_error("cannot load certificate \"" + cert_file + "\"")};
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        return Error{ErrorCode::io_error, openssl_error("cannot load key \"" + key_file + "\"")};
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        return Error{ErrorCode::io_error, openssl_error("the key does not match the certificate")};
    }
    return context;
}

std::optional<std::size_t> tls_record_size(std::string_view bytes)
{
    constexpr std::size_t header = 5;
    if (bytes.size() < header) {
        return std::size_t{0};
    }
    const std::size_t length = static_cast<std::size_t>(static_cast<unsigned char>(bytes[3])) << 8 |
                               static_cast<unsigned char>(bytes[4]);
    if (length > 16 * 1024) {
        return std::nullopt;
    }
    return header + length;
}

TlsContext::~TlsContext()
{
    SSL_CTX_free(ctx_);
}

TlsChannel::TlsChannel(const TlsContext& context)
    : ssl_(SSL_new(context.get())), from_peer_(BIO_new(BIO_s_mem())), to_peer_(BIO_new(BIO_s_mem()))
{
    // An empty memory BIO reports "retry" instead of EOF, which is what a
    // socket that has nothing yet looks like.
    BIO_set_mem_eof_return(from_peer_, -1);
    BIO_set_mem_eof_return(to_peer_, -1);
    SSL_set_bio(ssl_, from_peer_, to_peer_);
    SSL_set_accept_state(ssl_);
}

TlsChannel::~TlsChannel()
{
    SSL_free(ssl_); // frees both BIOs
}

void TlsChannel::drain(std::string& cipher)
{
    char chunk[16 * 1024];
    int got = 0;
    while ((got = BIO_read(to_peer_, chunk, sizeof chunk)) > 0) {
        cipher.append(chunk, static_cast<std::size_t>(got));
    }
}

std::optional<Error> TlsChannel::receive(std::span<const char> ciphertext, std::string& plain, std::string& cipher)
{
    if (BIO_write(from_peer_, ciphertext.data(), static_cast<int>(ciphertext.size())) !=
        static_cast<int>(ciphertext.size())) {
        return Error{ErrorCode::internal, "cannot buffer TLS input"};
    }
    char chunk[16 * 1024];
    while (true) {
        const int got = SSL_read(ssl_, chunk, sizeof chunk);
        if (got > 0) {
            plain.append(chunk, static_cast<std::size_t>(got));
            continue;
        }
        const int reason = SSL_get_error(ssl_, got);
        drain(cipher);
        if (reason == SSL_ERROR_WANT_READ) {
            return std::nullopt; // all input used; more must come
        }
        if (reason == SSL_ERROR_ZERO_RETURN) {
            return Error{ErrorCode::connection_lost, "the peer closed TLS"};
        }
        return Error{ErrorCode::bad_frame, openssl_error("TLS failed")};
    }
}

std::optional<Error> TlsChannel::send(std::string_view plain, std::string& cipher)
{
    if (!plain.empty() && SSL_write(ssl_, plain.data(), static_cast<int>(plain.size())) <= 0) {
        drain(cipher);
        return Error{ErrorCode::internal, openssl_error("cannot encrypt")};
    }
    drain(cipher);
    return std::nullopt;
}

void TlsChannel::close_notify(std::string& cipher)
{
    if (handshake_done()) {
        SSL_shutdown(ssl_);
    }
    drain(cipher);
}

} // namespace ferry::server
