#include "tls.hpp"

#include "file_trust.hpp"

#include "operator_file.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

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

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;

Bio memory_bio(const std::string& text)
{
    return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), &BIO_free);
}

// SSL_CTX_use_certificate_chain_file from text already read: the first
// certificate is the server's, the rest its chain. The files are read with
// read_operator_file rather than by OpenSSL's fopen, which a FIFO at the
// path would block for ever.
bool use_certificate_chain(SSL_CTX* ctx, const std::string& pem)
{
    Bio bio = memory_bio(pem);
    if (!bio) {
        return false;
    }
    X509* leaf = PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr);
    if (leaf == nullptr) {
        return false;
    }
    const bool used = SSL_CTX_use_certificate(ctx, leaf) == 1;
    X509_free(leaf);
    if (!used || SSL_CTX_clear_chain_certs(ctx) != 1) {
        return false;
    }
    while (X509* next = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
        if (SSL_CTX_add0_chain_cert(ctx, next) != 1) {
            X509_free(next);
            return false;
        }
    }
    // The loop ends at the text's end (no more PEM start line), which is
    // not an error; anything else is.
    const unsigned long last = ERR_peek_last_error();
    if (ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        return true;
    }
    return last == 0;
}

// OpenSSL's default for an encrypted key prompts on the terminal, or reads
// standard input, where a daemon has neither (round 76, F8: a prompt at
// start, a spin on an endless input): no passphrase is given, and the
// caller says why the key could not be read.
int refuse_passphrase(char* /*buffer*/, int /*size*/, int /*writing*/, void* asked)
{
    *static_cast<bool*>(asked) = true;
    return -1;
}

// Whether the key was used; `encrypted` says a passphrase was asked for.
bool use_private_key(SSL_CTX* ctx, const std::string& pem, bool& encrypted)
{
    Bio bio = memory_bio(pem);
    if (!bio) {
        return false;
    }
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, &encrypted);
    if (key == nullptr) {
        return false;
    }
    const bool used = SSL_CTX_use_PrivateKey(ctx, key) == 1;
    EVP_PKEY_free(key);
    return used;
}

// Whoever may read the key may be this server to its clients, pinned or
// not; whoever may write it or replace it, too. As sshd refuses an
// "UNPROTECTED PRIVATE KEY FILE": the owner and writers rules of every
// operator's file (file_trust.hpp), and no reading by others; a group may
// read it (Debian's ssl-cert group). Round 76, F6.
std::optional<Error> key_readers_problem(const std::string& key_file, int fd, const struct ::stat& st)
{
    if (auto problem = writers_problem("key", key_file, fd, st)) {
        return problem;
    }
    if ((st.st_mode & S_IROTH) != 0) {
        return Error{ErrorCode::forbidden, "key \"" + key_file + "\" has mode " + mode_text(st.st_mode) +
                                               ": anyone may read it and so be this server to its clients "
                                               "(chmod o-r it)"};
    }
    // With an ACL the group bits are its mask, the most a named user or
    // group gets: a read there may be anyone's the ACL names (round 77).
    if ((st.st_mode & S_IRGRP) != 0 && ::fgetxattr(fd, "system.posix_acl_access", nullptr, 0) > 0) {
        return Error{ErrorCode::forbidden, "key \"" + key_file +
                                               "\" has an ACL that lets users or groups "
                                               "other than its owner read it (mode " +
                                               mode_text(st.st_mode) +
                                               "), who may so be this server to its clients (setfacl -b it; "
                                               "its own group may read it by its mode)"};
    }
    return std::nullopt;
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
    auto cert = read_operator_file(cert_file, "certificate");
    if (!cert) {
        return cert.error();
    }
    if (!use_certificate_chain(ctx, cert.value())) {
        return Error{ErrorCode::io_error, openssl_error("cannot load certificate \"" + cert_file + "\"")};
    }
    auto opened = open_operator_file(key_file, O_RDONLY, "key");
    if (!opened) {
        return opened.error();
    }
    if (auto problem = key_readers_problem(key_file, opened->fd, opened->st)) {
        ::close(opened->fd);
        return *problem;
    }
    auto key = read_to_end(opened->fd, key_file, "key");
    ::close(opened->fd);
    if (!key) {
        return key.error();
    }
    bool encrypted = false;
    const bool key_used = use_private_key(ctx, key.value(), encrypted);
    OPENSSL_cleanse(key->data(), key->size()); // no copy of the key outlives its use
    if (!key_used && encrypted) {
        ERR_clear_error();
        return Error{ErrorCode::io_error, "key \"" + key_file +
                                              "\" is encrypted: ferryd reads no passphrase, so it takes the key "
                                              "unencrypted (openssl pkey -in KEY -out PLAIN, then keep PLAIN "
                                              "chmod 600)"};
    }
    if (!key_used) {
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
