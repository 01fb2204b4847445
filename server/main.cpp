// ferryd: serve one folder over the Ferry protocol with --workers libuv loops.
#include "access.hpp"
#include "address.hpp"
#include "config.hpp"
#include "config_reader.hpp"
#include "empty_values.hpp"
#include "library.hpp"
#include "log.hpp"
#include "option_values.hpp"
#include "partial_upload.hpp"
#include "supervisor.hpp"
#include "systemd.hpp"

#include <CLI/CLI.hpp>
#include <uv.h>

#include <malloc.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

constexpr const char* kDefaultRoot = "files";

namespace values = ferry::option_values;
// The longest timeout (about 31 years): far beyond any use, and small
// enough that its milliseconds (libuv's timers, the sessions' clocks) and
// their sums with a clock reading never overflow. The shortest, 1 ms, is
// the timers' resolution: below it a timeout would be 0 and fire at once.
constexpr double kMinTimeoutSeconds = 0.001;
constexpr double kMaxTimeoutSeconds = 1e9;
// --workers' largest value: each worker is a thread with its own loop.
constexpr std::uint64_t kMaxWorkers = 256;
// Counts of connections and transfers: 0 would refuse every client (or
// every transfer), so the least is 1; the most is beyond any machine.
constexpr std::uint64_t kMaxCount = 1'000'000'000;
// Byte counts are compared with file offsets and sizes (off_t, signed).
constexpr std::uint64_t kMaxBytes = INT64_MAX;

// ferryd's exit statuses (ferryd(8) lists them): 2 is every usage error,
// whether on the command line or in --config's file, as for most tools; each
// start-up failure an operator must fix in a different place has its own.
namespace exit_status {
constexpr int failure = 1;     // anything else
constexpr int usage = 2;       // a bad flag, config key or value
constexpr int log_file = 3;    // --log-file cannot be opened
constexpr int root = 4;        // --root cannot be created or opened
constexpr int token_file = 5;  // --token-file unreadable or invalid
constexpr int tls = 6;         // --tls-cert / --tls-key cannot be loaded
constexpr int listen = 7;      // cannot listen (port in use, bad LISTEN_FDS)
} // namespace exit_status

// A missing --root is created (with its parents), so that a first run and a
// fresh machine both work; the quick start's default ./files also gets a
// welcome file so that the first `ferry list` shows something.
std::optional<std::string> create_root(const std::string& root, bool welcome_file, bool read_only)
{
    std::error_code error;
    if (std::filesystem::exists(root, error)) {
        return std::nullopt;
    }
    if (read_only) {
        // A read-only ferryd makes nothing: a folder it would make is empty.
        return "folder \"" + root + "\" does not exist (a --read-only ferryd does not create it)";
    }
    std::filesystem::create_directories(root, error);
    if (error) {
        return "cannot create folder \"" + root + "\": " + error.message();
    }
    if (welcome_file) {
        std::ofstream welcome(root + "/WELCOME.txt");
        welcome << "Welcome to Ferry.\n\n"
                   "This folder is served by ferryd. Try:\n"
                   "  ferry list\n"
                   "  ferry get WELCOME.txt\n"
                   "  ferry put some-file.txt\n";
        if (!welcome) {
            return "cannot write \"" + root + "/WELCOME.txt\"";
        }
    }
    return std::nullopt;
}

// A start-up failure goes where the log was asked to go, in its format (a
// service's log is the one place its operator looks); a log file is not
// where a person at a terminal looks, so stderr hears it too.
int fail(int status, const std::string& message)
{
    ferry::server::log_event("start_failed", {{"message", message}, {"exit_status", static_cast<std::uint64_t>(status)}});
    if (!ferry::server::log_is_stderr()) {
        std::fprintf(stderr, "ferryd: %s\n", message.c_str());
    }
    return status;
}

// The last raw value given to an option, read even when the parse stopped
// on an error before it was stored (a usage error is still logged in the
// --log-format and --log-file asked for, when those were readable).
std::string raw_value(const CLI::App& app, const std::string& name)
{
    const CLI::Option* option = app.get_option_no_throw(name);
    if (option == nullptr || option->results().empty()) {
        return {};
    }
    return option->results().back();
}

// A switch's value as an operator writes one, in any case: true, false,
// yes, no, on, off, 1, 0 (and CLI11's "true" for the bare flag).
bool is_switch_word(std::string word)
{
    std::transform(word.begin(), word.end(), word.begin(), [](unsigned char c) { return std::tolower(c); });
    for (const char* known : {"true", "false", "yes", "no", "on", "off", "1", "0"}) {
        if (word == known) {
            return true;
        }
    }
    return false;
}

// CLI11's words for an unknown key in the config file name its INI parser;
// an operator needs the key and the file.
std::string usage_message(const CLI::ParseError& error, const std::string& config_file)
{
    std::string message = error.what();
    const std::string unknown = "INI was not able to parse ";
    if (message.starts_with(unknown)) {
        std::string key = message.substr(unknown.size());
        // CLI11 reports a [section] by the marker "section.++" it opens with.
        if (key.ends_with(".++")) {
            return "unknown section [" + key.substr(0, key.size() - 3) + "] in config file \"" + config_file +
                   "\" (ferryd's keys stand outside any section)";
        }
        return "unknown key " + key + " in config file \"" + config_file +
               "\" (keys are the long options without their dashes; see ferryd --help)";
    }
    if (dynamic_cast<const CLI::ConfigError*>(&error) != nullptr || dynamic_cast<const CLI::FileError*>(&error) != nullptr) {
        return "config file \"" + config_file + "\": " + message;
    }
    return message;
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
    // The addresses actually served (systemd's sockets may differ from
    // --listen), comma-separated: one that is not loopback exposes them all.
    bool loopback = true;
    for (std::size_t start = 0; start <= bound.size();) {
        const std::size_t comma = std::min(bound.find(',', start), bound.size());
        auto address = ferry::server::parse_listen_address(bound.substr(start, comma - start));
        loopback =
            loopback && address && ferry::server::is_loopback(reinterpret_cast<const sockaddr*>(&address.value()));
        start = comma + 1;
    }
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
    // New files and folders take their modes less the umask (PROTOCOL.md
    // 4.5, 4.10): under a umask that keeps others' write bit, every folder
    // made is one anyone on this machine may change (round 76, F11).
    const mode_t umask_now = ::umask(0);
    ::umask(umask_now);
    if (!config.read_only && (umask_now & S_IWOTH) == 0) {
        char shown[16];
        std::snprintf(shown, sizeof shown, "%03o", static_cast<unsigned>(umask_now & 0777));
        ferry::server::log_event(
            "warning", {{"message", std::string("umask ") + shown +
                                        ": the folders and files ferryd makes are writable by every local user; "
                                        "set umask 022 or 027 (systemd: UMask=)"}});
    }
}

} // namespace

namespace {
int serve(int argc, char** argv);
} // namespace

// Whatever escapes (memory exhausted, a library's exception) still ends in
// a start_failed line and a documented status, not std::terminate's abort.
namespace {

// Every worker's file jobs share libuv's one thread pool (UV_THREADPOOL_SIZE
// when set). Most of a small upload's time is spent waiting in fsync (of
// its data, of its folder), and the file system's journal commits the
// fsyncs that wait together at once (jbd2, XFS's log force): so the pool
// has kPoolThreads threads rather than libuv's 4, letting the uploads of
// many connections wait together (a push of 1,000 small files took 4.0-4.5 s
// with 16 threads instead of 6.1-7.7 s with 4; docs/BENCHMARKS.md). At least
// one per worker.
constexpr std::size_t kPoolThreads = 16;
// glibc gives each thread that allocates its own malloc arena, up to 8 per
// core: each arena keeps what its thread freed, so 16 pool threads that
// each built a listing page once would hold 16 pages' worth (the hostile
// memory test's paged listing measured 23.8 bytes per entry with 16 arenas
// against 13.3 with 4 pool threads). The arenas stay as many as with 4 pool
// threads: the main thread's, one per worker, and 4 that the pool threads
// share (they allocate little: their buffers come from the loops).
constexpr std::size_t kPoolArenas = 4;

void size_thread_pool(std::size_t workers)
{
    if (std::getenv("UV_THREADPOOL_SIZE") != nullptr) {
        return; // the operator's choice, arenas included
    }
    ::setenv("UV_THREADPOOL_SIZE", std::to_string(std::max(kPoolThreads, workers)).c_str(), 1);
    // Before any thread exists (the supervisor starts them); an arena limit
    // set in the environment (MALLOC_ARENA_MAX, GLIBC_TUNABLES) wins.
    const char* tunables = std::getenv("GLIBC_TUNABLES");
    if (std::getenv("MALLOC_ARENA_MAX") == nullptr &&
        (tunables == nullptr || std::string_view(tunables).find("arena_max") == std::string_view::npos)) {
        ::mallopt(M_ARENA_MAX, static_cast<int>(1 + workers + kPoolArenas));
    }
}

} // namespace

int main(int argc, char** argv)
{
    try {
        return serve(argc, argv);
    } catch (const std::exception& error) {
        return fail(exit_status::failure, std::string("internal error: ") + error.what());
    }
}

namespace {

int serve(int argc, char** argv)
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
    std::size_t workers = 0;

    CLI::App app{"ferryd: a small, fast file server speaking the Ferry protocol (docs/PROTOCOL.md)."};
    app.set_version_flag("--version", std::string("ferryd ") + FERRY_VERSION);
    // Every option below may also be set in this file as `key = value`
    // (the long name without its dashes); the command line wins over it.
    app.config_formatter(std::make_shared<ferry::server::ConfigReader>(std::set<std::string>{"listen"}));
    app.set_config("--config", "",
                   "Read options from this file, one \"key = value\" per line (e.g. workers = 4, read-only = true); "
                   "options on the command line override it")
        ->check(CLI::Validator(ferry::server::check_config_file, "FILE"));
    // As with most Unix tools, an option given twice takes its last value:
    // a wrapper's or a drop-in's flag overrides an earlier one.
    app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    // A misspelt key must stop ferryd, not be silently ignored.
    app.allow_config_extras(CLI::config_extras_mode::error);
    app.add_option("--root", config.root, "Folder to serve (created if missing; ./files also gets a welcome file)")
        ->capture_default_str()
        // An empty root is a mistake in the invocation (an unset variable, a
        // `root = ""` line), not a folder that failed to open: usage, exit 2.
        ->check([](const std::string& root) { return root.empty() ? std::string("is empty; name the folder to serve") : std::string(); });
    app.add_option("--listen", config.listen,
                   "Address to listen on: HOST:PORT or [IPv6]:PORT; port 0 picks a free one; repeat it (or give "
                   "the config file an array) for several (unused when systemd passes the listening sockets)")
        ->capture_default_str()
        // One address per --listen, each kept: CLI11's default for a list
        // would let `--listen A B` swallow B, and a single string kept
        // only the last of several (a config file's array included).
        ->allow_extra_args(false)
        // A malformed address is a usage error (exit 2), not a failure to
        // listen (7): the same parser the listener uses says why.
        ->check(CLI::Validator(
            [](std::string& text) -> std::string {
                auto parsed = ferry::server::parse_listen_address(text);
                return parsed ? std::string() : parsed.error().message;
            },
            "HOST:PORT"));
    app.add_option("--max-control-frame", config.max_control_frame, "Largest control frame accepted, in bytes")
        ->capture_default_str()
        ->check(values::whole_number(1024, 16 * 1024 * 1024, "bytes"));
    app.add_option("--partial-ttl", partial_ttl_seconds,
                   "Seconds an interrupted upload is kept for resume before it is deleted; a TTL too long "
                   "for the clock to reach keeps it for good")
        ->capture_default_str()
        ->check(values::whole_number(0, UINT64_MAX, "seconds"));
    app.add_option("--max-connections", config.max_connections, "Connections held at once; more are refused")
        ->capture_default_str()
        ->check(values::whole_number(1, kMaxCount));
    app.add_option("--max-connections-per-address", config.max_connections_per_address,
                   "Connections held at once from one client IP address")
        ->capture_default_str()
        ->check(values::whole_number(1, kMaxCount));
    app.add_option("--max-transfers", config.max_transfers, "Gets and puts running at once, server-wide")
        ->capture_default_str()
        ->check(values::whole_number(1, kMaxCount));
    app.add_option("--max-transfers-per-address", config.max_transfers_per_address,
                   "Gets and puts running at once from one client IP address; 0: half of --max-transfers, at "
                   "least 1")
        ->capture_default_str()
        ->check(values::whole_number(0, kMaxCount));
    app.add_option("--min-rate", config.min_rate,
                   "Bytes per second a transfer must move, over each --stall-timeout window, to keep its slot "
                   "while another get or put waits for one, and an upload its reserved disk space while a put "
                   "lacks it (too_slow); 0: never taken")
        ->capture_default_str()
        ->check(values::whole_number(0, kMaxBytes, "bytes per second"));
    app.add_option("--max-upload-size", config.max_upload_size, "Largest upload accepted, in bytes")
        ->capture_default_str()
        ->check(values::whole_number(0, kMaxBytes, "bytes"));
    app.add_option("--max-protocol-errors", config.max_protocol_errors,
                   "Malformed or out-of-place requests one connection may send before it is closed")
        ->capture_default_str()
        ->check(values::whole_number(1, std::uint64_t{1} << 32));
    app.add_option("--idle-timeout", idle_timeout, "Seconds a connection may wait between requests")
        ->capture_default_str()
        ->check(values::seconds(kMinTimeoutSeconds, kMaxTimeoutSeconds));
    app.add_option("--stall-timeout", stall_timeout,
                   "Seconds a transfer may make no progress: no file byte received, or for a get none "
                   "acknowledged by the peer (never a cap on total time); also the time a request frame "
                   "has to arrive whole, counted from its first byte (time ferryd was stopped does not count)")
        ->capture_default_str()
        ->check(values::seconds(kMinTimeoutSeconds, kMaxTimeoutSeconds));
    app.add_option("--handshake-timeout", handshake_timeout,
                   "Seconds a client has after connecting to finish its TLS handshake (with --tls-cert) and, "
                   "after that, to send its hello")
        ->capture_default_str()
        ->check(values::seconds(kMinTimeoutSeconds, kMaxTimeoutSeconds));
    app.add_option("--drain-timeout", drain_timeout, "Seconds running transfers may finish after SIGTERM/SIGINT")
        ->capture_default_str()
        ->check(values::seconds(0, kMaxTimeoutSeconds));
    app.add_option("--log-format", log_format, "Log lines as readable text or JSON (one object per line)")
        ->capture_default_str()
        ->check(CLI::IsMember({"text", "json"}));
    app.add_option("--log-file", log_file,
                   "Append the log to this file (reopened on SIGHUP) instead of stderr; empty: stderr");
    app.add_option("--token-file", token_file,
                   "Require a token in hello: one \"TOKEN rw\" or \"TOKEN ro\" per line, optionally followed by a "
                   "label naming its holder in the log (see README); empty: no tokens");
    auto* read_only_flag = app.add_flag("--read-only", config.read_only, "Refuse every upload, whatever the token");
    app.add_option("--workers", workers,
                   "Event loops (threads) serving clients; 0: the number of CPU cores (at least one per --listen "
                   "address, or per socket systemd passes)")
        ->capture_default_str()
        ->check(values::whole_number(0, kMaxWorkers));
    auto* cert_option =
        app.add_option("--tls-cert", tls_cert, "Require TLS 1.3: the certificate chain (PEM); empty: no TLS");
    auto* key_option = app.add_option("--tls-key", tls_key, "The private key (PEM) of --tls-cert");
    cert_option->needs(key_option);
    key_option->needs(cert_option);
    try {
        // "--name=" with nothing after the '=' (empty_values.hpp): refused
        // before CLI11, which would take the next word as the value.
        values::refuse_empty_value_after_equals(std::vector<std::string>(argv + std::min(argc, 1), argv + argc),
                                                values::options_of(app));
        app.parse(argc, argv);
        // CLI11 reads a switch's value as a number where it can: -1 and 0x1
        // meant false, 1.5 and "t" true (round 76, F9). A switch that
        // decides whether clients may write takes a plain yes or no.
        for (const std::string& given : read_only_flag->results()) {
            if (!is_switch_word(given)) {
                throw CLI::ValidationError("--read-only",
                                           "takes true or false (or yes/no, on/off, 1/0), not \"" + given + "\"");
            }
        }
        // Each address takes a worker (a thread and its loop) of its own.
        if (config.listen.size() > kMaxWorkers) {
            throw CLI::ValidationError("--listen", "at most " + std::to_string(kMaxWorkers) +
                                                       " addresses (one worker each), not " +
                                                       std::to_string(config.listen.size()));
        }
        // The same address twice would fail to listen as "address already in
        // use": by ferryd itself, which no operator would look for.
        // Named as written; one that does not parse was refused by the
        // option's check already.
        std::vector<std::pair<std::string, sockaddr_storage>> addresses;
        for (const std::string& text : config.listen) {
            const auto parsed = ferry::server::parse_listen_address(text);
            if (!parsed) {
                continue;
            }
            const sockaddr_storage& address = parsed.value();
            for (const auto& [earlier_text, earlier] : addresses) {
                if (ferry::server::overlapping(earlier, address)) {
                    const bool same = ferry::server::format_address(reinterpret_cast<const sockaddr*>(&earlier)) ==
                                      ferry::server::format_address(reinterpret_cast<const sockaddr*>(&address));
                    throw CLI::ValidationError("--listen",
                                               earlier_text + " and " + text +
                                                   (same ? " are the same address: give each address once"
                                                         : " claim the same port, one address covering the other: give "
                                                           "the wildcard alone, or each address without it"));
                }
            }
            addresses.emplace_back(text, address);
        }
    } catch (const CLI::ParseError& error) {
        if (error.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
            return app.exit(error); // --help, --version
        }
        const std::string format = raw_value(app, "--log-format");
        ferry::server::configure_log(format == "json" ? ferry::server::LogFormat::json : ferry::server::LogFormat::text,
                                     raw_value(app, "--log-file"));
        const int status = fail(exit_status::usage, usage_message(error, raw_value(app, "--config")));
        if (ferry::server::log_is_stderr() && format != "json") {
            std::fprintf(stderr, "Run with --help for the options.\n");
        }
        return status;
    }
    if (auto failed = ferry::server::configure_log(
            log_format == "json" ? ferry::server::LogFormat::json : ferry::server::LogFormat::text, log_file)) {
        return fail(exit_status::log_file, *failed);
    }
    if (workers == 0) {
        workers = std::max(1u, uv_available_parallelism());
    }
    // A TTL beyond what std::chrono::seconds holds is as good as forever.
    config.partial_ttl = std::chrono::seconds(
        static_cast<std::int64_t>(std::min<std::uint64_t>(partial_ttl_seconds, INT64_MAX)));
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

    if (auto failed = create_root(config.root, config.root == kDefaultRoot, config.read_only)) {
        return fail(exit_status::root, *failed);
    }
    if (!token_file.empty()) {
        auto tokens = ferry::server::AccessList::load(token_file);
        if (!tokens) {
            return fail(exit_status::token_file, tokens.error().message);
        }
        for (const auto& warning : tokens->warnings()) {
            ferry::server::log_event("warning", {{"message", warning}});
        }
        config.tokens = std::make_shared<ferry::server::TokenTable>(token_file, std::move(tokens.value()));
    }
    if (!tls_cert.empty() || !tls_key.empty()) {
        auto tls = ferry::server::TlsContext::load(tls_cert, tls_key);
        if (!tls) {
            return fail(exit_status::tls, tls.error().message);
        }
        config.tls = std::move(tls.value());
    }
    // FERRYD_RESOLVE=walk: a test knob, not a feature. It forces the
    // component-by-component path walk that kernels without openat2 use, so
    // that the hostile confinement suite exercises both resolvers on one
    // kernel. Anything else (or unset) uses openat2 where the kernel has it.
    const char* resolve = std::getenv("FERRYD_RESOLVE");
    const auto resolve_mode = resolve != nullptr && std::string_view(resolve) == "walk"
                                  ? ferry::server::ResolveMode::walk
                                  : ferry::server::ResolveMode::automatic;
    auto library = ferry::server::Library::open(config.root, resolve_mode, config.read_only);
    if (!library) {
        return fail(exit_status::root, library.error().message);
    }
    // A read-only ferryd changes nothing in its folder (ferryd.8): the kept
    // uploads and publish records there are a writable ferryd's to expire
    // and settle, under that one's --partial-ttl.
    if (!config.read_only) {
        const std::size_t stale = ferry::server::remove_stale_partials(*library.value(), config.partial_ttl);
        if (stale > 0) {
            ferry::server::log_event("expired_uploads", {{"count", static_cast<std::uint64_t>(stale)}});
        }
    }

    // Socket activation: systemd holds the listening sockets (ferryd.socket)
    // and passes them; --listen is then not used. Every socket, passed or
    // to bind, needs a worker of its own.
    auto passed = ferry::server::systemd::listening_sockets();
    if (!passed) {
        return fail(exit_status::listen, passed.error().message);
    }
    workers = std::max(workers, passed->empty() ? config.listen.size() : passed->size());

    size_thread_pool(workers);
    ferry::server::Supervisor supervisor(*library.value(), config, workers);
    auto bound = supervisor.start(passed.value());
    if (!bound) {
        return fail(exit_status::listen, bound.error().message);
    }
    // Tests and scripts read this first line to learn the port.
    std::printf("listening on %s\n", bound.value().c_str());
    std::fflush(stdout);
    ferry::server::log_event("start", {{"version", FERRY_VERSION},
                                       {"root", config.root},
                                       {"listen", bound.value()},
                                       {"sockets", passed->empty() ? "bound" : "systemd"},
                                       {"access", config.read_only ? "read-only" : "read-write"},
                                       {"tls", config.tls ? "required" : "off"},
                                       {"workers", static_cast<std::uint64_t>(workers)}});
    warn_about_exposure(config, bound.value());

    supervisor.run();
    ferry::server::log_unlogged_lines(/*final=*/true);
    ferry::server::log_event("stopped", {});
    return 0;
}

} // namespace
