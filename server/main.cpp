// ferryd: serve one folder over the Ferry protocol with --workers libuv loops.
#include "access.hpp"
#include "address.hpp"
#include "config.hpp"
#include "library.hpp"
#include "log.hpp"
#include "partial_upload.hpp"
#include "supervisor.hpp"

#include <CLI/CLI.hpp>
#include <uv.h>

#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace {

constexpr const char* kDefaultRoot = "files";

// The quick start serves ./files; a missing default folder is created with
// a welcome file so that the first `ferry list` shows something.
bool create_default_root(const std::string& root)
{
    struct stat st {};
    if (::stat(root.c_str(), &st) == 0) {
        return true;
    }
    if (::mkdir(root.c_str(), 0755) != 0) {
        return false;
    }
    std::ofstream welcome(root + "/WELCOME.txt");
    welcome << "Welcome to Ferry.\n\n"
               "This folder is served by ferryd. Try:\n"
               "  ferry list\n"
               "  ferry get WELCOME.txt\n"
               "  ferry put some-file.txt\n";
    return static_cast<bool>(welcome);
}

// Each connection is a descriptor; the usual soft limit of 1024 would cap
// the server far below --max-connections.
void raise_descriptor_limit()
{
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
}

// Without tokens anyone who reaches the port reads and writes everything,
// and without TLS tokens and data cross the network in clear: fine on
// loopback, worth a loud word anywhere else.
void warn_about_exposure(const ferry::server::Config& config, const std::string& bound)
{
    auto address = ferry::server::parse_listen_address(config.listen);
    const bool loopback = address && ferry::server::is_loopback(reinterpret_cast<const sockaddr*>(&address.value()));
    if (!config.tokens && loopback) {
        ferry::server::log_event("notice", {{"message", "no --token-file: serving " + bound +
                                                            " to this machine only, without authentication"}});
    } else if (!config.tokens) {
        ferry::server::log_event(
            "warning", {{"message", "no --token-file: anyone who can reach " + bound + " can " +
                                        (config.read_only ? "read every file" : "read and replace every file") +
                                        "; use --token-file (and --tls-cert) or listen on 127.0.0.1"}});
    } else if (!config.tls && !loopback) {
        ferry::server::log_event("warning", {{"message", "no --tls-cert: tokens and files cross the network to " +
                                                             bound + " in clear text"}});
    }
}

} // namespace

int main(int argc, char** argv)
{
    ferry::server::Config config;
    config.root = kDefaultRoot;
    std::uint64_t partial_ttl_seconds = static_cast<std::uint64_t>(config.partial_ttl.count());
    double idle_timeout = 300;
    double stall_timeout = 60;
    double drain_timeout = 30;
    double handshake_timeout = 5;
    std::string log_format = "text";
    std::string log_file;
    std::string token_file;
    std::string tls_cert;
    std::string tls_key;
    std::size_t workers = std::max(1u, uv_available_parallelism());

    CLI::App app{"ferryd: a small, fast file server speaking the Ferry protocol (docs/PROTOCOL.md)."};
    app.set_version_flag("--version", std::string("ferryd ") + FERRY_VERSION);
    app.add_option("--root", config.root, "Folder to serve (./files is created with a welcome file if missing)")
        ->capture_default_str();
    app.add_option("--listen", config.listen, "Address to listen on: HOST:PORT or [IPv6]:PORT; port 0 picks a free one")
        ->capture_default_str();
    app.add_option("--max-control-frame", config.max_control_frame, "Largest control frame accepted, in bytes")
        ->capture_default_str()
        ->check(CLI::Range(1024u, 16u * 1024u * 1024u));
    app.add_option("--partial-ttl", partial_ttl_seconds,
                   "Seconds an interrupted upload is kept for resume before it is deleted")
        ->capture_default_str();
    app.add_option("--max-connections", config.max_connections, "Connections held at once; more are refused")
        ->capture_default_str();
    app.add_option("--max-connections-per-address", config.max_connections_per_address,
                   "Connections held at once from one client IP address")
        ->capture_default_str();
    app.add_option("--max-transfers", config.max_transfers, "Gets and puts running at once, server-wide")
        ->capture_default_str();
    app.add_option("--max-transfers-per-address", config.max_transfers_per_address,
                   "Gets and puts running at once from one client IP address [default: half of "
                   "--max-transfers, at least 1]");
    app.add_option("--min-rate", config.min_rate,
                   "Bytes per second a transfer must move, over each --stall-timeout window, to keep its slot "
                   "while another get or put waits for one (too_slow); 0: never taken")
        ->capture_default_str();
    app.add_option("--max-upload-size", config.max_upload_size, "Largest upload accepted, in bytes")
        ->capture_default_str();
    app.add_option("--max-protocol-errors", config.max_protocol_errors,
                   "Malformed or out-of-place requests one connection may send before it is closed")
        ->capture_default_str()
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 32));
    app.add_option("--idle-timeout", idle_timeout, "Seconds a connection may wait between requests")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--stall-timeout", stall_timeout,
                   "Seconds a half-sent frame or a transfer may make no progress: no byte received, or for a "
                   "get none acknowledged by the peer (never a cap on total time; time ferryd was stopped "
                   "does not count)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--handshake-timeout", handshake_timeout,
                   "Seconds a TLS client has to finish its handshake after connecting")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--drain-timeout", drain_timeout, "Seconds running transfers may finish after SIGTERM/SIGINT")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    app.add_option("--log-format", log_format, "Log lines as readable text or JSON (one object per line)")
        ->capture_default_str()
        ->check(CLI::IsMember({"text", "json"}));
    app.add_option("--log-file", log_file, "Append the log to this file (reopened on SIGHUP) instead of stderr");
    app.add_option("--token-file", token_file,
                   "Require a token in hello: one \"TOKEN rw\" or \"TOKEN ro\" per line (see README)");
    app.add_flag("--read-only", config.read_only, "Refuse every upload, whatever the token");
    app.add_option("--workers", workers, "Event loops (threads) serving clients; default: the number of CPU cores")
        ->check(CLI::Range(1u, 256u));
    auto* cert_option = app.add_option("--tls-cert", tls_cert, "Require TLS 1.3: the certificate chain (PEM)");
    auto* key_option = app.add_option("--tls-key", tls_key, "The private key (PEM) of --tls-cert");
    cert_option->needs(key_option);
    key_option->needs(cert_option);
    CLI11_PARSE(app, argc, argv);
    if (!ferry::server::configure_log(
            log_format == "json" ? ferry::server::LogFormat::json : ferry::server::LogFormat::text, log_file)) {
        std::fprintf(stderr, "ferryd: cannot open log file \"%s\"\n", log_file.c_str());
        return 1;
    }
    config.partial_ttl = std::chrono::seconds(partial_ttl_seconds);
    const auto to_ms = [](double seconds) { return std::chrono::milliseconds(static_cast<long long>(seconds * 1000)); };
    config.idle_timeout = to_ms(idle_timeout);
    config.stall_timeout = to_ms(stall_timeout);
    config.drain_timeout = to_ms(drain_timeout);
    config.handshake_timeout = to_ms(handshake_timeout);

    // libuv reports EPIPE as a write error; the signal would kill us first.
    std::signal(SIGPIPE, SIG_IGN);
    // A file size limit (RLIMIT_FSIZE) must fail the write (EFBIG), not kill us.
    std::signal(SIGXFSZ, SIG_IGN);
    raise_descriptor_limit();

    if (config.root == kDefaultRoot && !create_default_root(config.root)) {
        std::fprintf(stderr, "ferryd: cannot create folder \"%s\"\n", config.root.c_str());
        return 1;
    }
    if (!token_file.empty()) {
        auto tokens = ferry::server::AccessList::load(token_file);
        if (!tokens) {
            std::fprintf(stderr, "ferryd: %s\n", tokens.error().message.c_str());
            return 1;
        }
        for (const auto& warning : tokens->warnings()) {
            ferry::server::log_event("warning", {{"message", warning}});
        }
        config.tokens = std::make_shared<ferry::server::TokenTable>(token_file, std::move(tokens.value()));
    }
    if (!tls_cert.empty()) {
        auto tls = ferry::server::TlsContext::load(tls_cert, tls_key);
        if (!tls) {
            std::fprintf(stderr, "ferryd: %s\n", tls.error().message.c_str());
            return 1;
        }
        config.tls = std::move(tls.value());
    }
    auto library = ferry::server::Library::open(config.root);
    if (!library) {
        std::fprintf(stderr, "ferryd: %s\n", library.error().message.c_str());
        return 1;
    }
    const std::size_t stale = ferry::server::remove_stale_partials(*library.value(), config.partial_ttl);
    if (stale > 0) {
        ferry::server::log_event("expired_uploads", {{"count", static_cast<std::uint64_t>(stale)}});
    }

    // Every worker's file jobs share libuv's one thread pool (4 threads
    // unless UV_THREADPOOL_SIZE says otherwise): at least one per worker.
    if (std::getenv("UV_THREADPOOL_SIZE") == nullptr) {
        ::setenv("UV_THREADPOOL_SIZE", std::to_string(std::max<std::size_t>(4, workers)).c_str(), 1);
    }
    ferry::server::Supervisor supervisor(*library.value(), config, workers);
    auto bound = supervisor.start();
    if (!bound) {
        std::fprintf(stderr, "ferryd: %s\n", bound.error().message.c_str());
        return 1;
    }
    // Tests and scripts read this first line to learn the port.
    std::printf("listening on %s\n", bound.value().c_str());
    std::fflush(stdout);
    ferry::server::log_event("start", {{"version", FERRY_VERSION},
                                       {"root", config.root},
                                       {"listen", bound.value()},
                                       {"access", config.read_only ? "read-only" : "read-write"},
                                       {"tls", config.tls ? "required" : "off"},
                                       {"workers", static_cast<std::uint64_t>(workers)}});
    warn_about_exposure(config, bound.value());

    supervisor.run();
    ferry::server::log_event("stopped", {});
    return 0;
}
