// ferry: the command-line client of ferryd (docs/PROTOCOL.md).
// Exit status: see status.hpp (0 ok, 2 usage, 3-8 by kind of failure, 130 on Ctrl-C).
#include "command_line.hpp"
#include "commands.hpp"
#include "config_file.hpp"
#include "operations.hpp"
#include "connection.hpp"
#include "endpoint.hpp"
#include "interrupt.hpp"
#include "output.hpp"
#include "shell.hpp"
#include "sync.hpp"
#include "tls.hpp"
#include "transfers.hpp"

#include <CLI/CLI.hpp>

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cctype>
#include <clocale>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using ferry::Error;
using ferry::ErrorCode;
using ferry::Result;
using ferry::client::ConnectOptions;
using ferry::client::parse_pin;
using ferry::client::SecurityArguments;
using ferry::client::Timeouts;
using ferry::client::TlsSettings;

using ferry::client::kExitOk;
using ferry::client::kExitUsage;

// glibc's M_TOP_PAD for the client (mallopt(3)); main_with says why.
constexpr int kHeapPadBytes = 16 << 20;

// Usage errors are shown like every other error, so that --json stays JSON.
bool wants_json(int argc, char** argv)
{
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--") == 0) {
            return false;
        }
        if (std::strcmp(argv[i], "--json") == 0) {
            return true;
        }
    }
    return false;
}

// Reads the token from the first line of a file, so that it need not
// appear in the process list.
Result<std::string> read_token_file(const std::string& path)
{
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line)) {
        return Error{ErrorCode::local_io, "cannot read a token from \"" + path + "\""};
    }
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back())) != 0) {
        line.pop_back();
    }
    if (line.empty()) {
        return Error{ErrorCode::bad_request, "the first line of \"" + path + "\" holds no token"};
    }
    return line;
}

// What the config file's server entry adds where no flag spoke.
void apply_entry(SecurityArguments& arguments, const ferry::client::ServerEntry& entry)
{
    if (arguments.token.empty() && arguments.token_file.empty()) {
        arguments.token_file = entry.token_file;
    }
    arguments.tls = arguments.tls || entry.tls;
    if (arguments.tls_ca.empty() && arguments.tls_pin.empty()) {
        arguments.tls_ca = entry.tls_ca;
        arguments.tls_pin = entry.tls_pin;
    }
}

// A flag wins over the environment; --tls-ca and --tls-pin imply --tls.
Result<ConnectOptions> connect_options(const SecurityArguments& arguments, Timeouts timeouts)
{
    ConnectOptions options;
    options.timeouts = timeouts;
    if (!arguments.token.empty()) {
        options.token = arguments.token;
    } else if (!arguments.token_file.empty()) {
        auto token = read_token_file(arguments.token_file);
        if (!token) {
            return token.error();
        }
        options.token = std::move(token.value());
    } else if (const char* from_env = std::getenv("FERRY_TOKEN"); from_env != nullptr) {
        options.token = from_env;
    }
    if (arguments.tls || !arguments.tls_ca.empty() || !arguments.tls_pin.empty()) {
        TlsSettings tls;
        tls.ca_file = arguments.tls_ca;
        if (!arguments.tls_pin.empty()) {
            auto pin = parse_pin(arguments.tls_pin);
            if (!pin) {
                return pin.error();
            }
            tls.pin = pin.value();
        }
        options.tls = std::move(tls);
    }
    return options;
}

} // namespace

namespace {
int main_with(int argc, char** argv);

// A download holds its folder open from its plan to its publish
// (GetOptions::folder), and a command plans all its files first: a tree of
// many folders holds one descriptor per folder, which the usual soft limit
// of 1024 would cap.
void raise_descriptor_limit()
{
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
}
} // namespace

int main(int argc, char** argv)
{
    const int status = main_with(argc, argv);
    // Ctrl-C (or SIGTERM) ended the command after its cleanup: end by that
    // signal, so that the shell sees 130 and a loop of ferry commands stops.
    ferry::client::end_by_interrupt();
    return status;
}

namespace {

int main_with(int argc, char** argv)
{
    using namespace ferry::client;
    std::signal(SIGPIPE, SIG_IGN);
    raise_descriptor_limit();
    // A sync holds a few hundred bytes per entry of both trees, allocated
    // by two threads (the local scan's and this one's). glibc commits a
    // thread's arena one page-aligned step at a time (an mprotect each) and
    // grows the main one by 128 KiB brk steps: at 10,000 files that was 632
    // system calls, 9% of a no-change sync's CPU on a virtual machine,
    // where each costs a page-table update. A larger pad commits memory in
    // steps of this size (touched only as used), and is what a trim keeps.
    // (Setting it also fixes glibc's mmap threshold at 128 KiB.)
    ::mallopt(M_TOP_PAD, kHeapPadBytes);
    // The terminal's character set: libedit edits and the progress line
    // measures UTF-8 names only in a UTF-8 locale. Only LC_CTYPE: numbers
    // and messages stay as they are.
    std::setlocale(LC_CTYPE, "");

    CommandLine command_line(Grammar::command_line);
    CLI::App& app = command_line.app;
    auto& server = command_line.global.server;
    auto& json = command_line.global.json;
    auto& hash_text = command_line.global.hash_text;
    auto& timeout_seconds = command_line.global.timeout_seconds;
    auto& hello_timeout_seconds = command_line.global.hello_timeout_seconds;
    auto& retries = command_line.global.retries;
    auto& quiet = command_line.global.quiet;
    auto& verbose = command_line.global.verbose;
    auto& no_progress = command_line.global.no_progress;
    auto& security = command_line.global.security;
    auto& name = command_line.arguments.name;
    auto& names = command_line.arguments.names;
    auto& locals = command_line.arguments.locals;
    auto& output_path = command_line.arguments.output_path;
    auto& folder = command_line.arguments.folder;
    auto& as = command_line.arguments.as;
    auto& help_topic = command_line.arguments.help_topic;
    auto* server_option = command_line.server_option;
    auto* get = command_line.get;
    auto* put = command_line.put;
    auto* help = command_line.help;
    const std::vector<std::string> args(argv + 1, argv + argc);

    const auto usage_error = [&](const std::string& message) {
        // Coded as every other error line is ("ferry: bad_request: ..."),
        // and as --json gives it.
        const bool json = wants_json(argc, argv);
        Output(json).error(ferry::Error{ferry::ErrorCode::bad_request, message});
        if (!json) {
            std::fputs("Run with --help for more information.\n", stderr);
        }
        return kExitUsage;
    };
    try {
        command_line.parse(argc, argv);
    } catch (const CLI::ParseError& error) {
        if (error.get_exit_code() == 0) { // --help, --version
            return app.exit(error);
        }
        if (const auto operand = command_line.operand_taken_for_option(args, "ferry")) {
            return usage_error(*operand); // CLI11's own message ("PATH is required") would mislead
        }
        return usage_error(unguarded(error.what()));
    }
    if (help->parsed()) { // ferry help [COMMAND]: what --help prints, on stdout
        std::fputs(command_line.help_text(help_topic, app.get_name()).c_str(), stdout);
        return kExitOk;
    }
    const ferry::HashKind hash = ferry::hash_from_name(hash_text).value_or(ferry::HashKind::sha256);
    if (const auto misuse = command_line.misuse()) {
        return usage_error(*misuse);
    }
    // CLI11 takes an empty environment variable for an unset one; a TLS
    // trust variable set empty (a CI secret that is missing) must not mean
    // plaintext, as an empty --tls-pin does not (round 76, F2).
    for (const auto& [variable, given] :
         {std::pair{"FERRY_TLS_CA", &security.tls_ca}, std::pair{"FERRY_TLS_PIN", &security.tls_pin}}) {
        if (const char* value = std::getenv(variable); value != nullptr && *value == '\0' && given->empty()) {
            return usage_error(std::string(variable) +
                               " is set but empty: it makes ferry speak TLS, and without a value it would not; "
                               "give it a value, or unset it");
        }
    }

    // The server: ferry:// in a NAME, else --server / FERRY_SERVER, else the
    // config file's default, else the default address.
    const auto config = load_config(config_path());
    if (!config) {
        return usage_error(config.error().message);
    }
    std::optional<Endpoint> from_url;
    const auto take_url = [&](std::string& text) -> std::optional<std::string> {
        if (!is_ferry_url(text)) {
            return std::nullopt;
        }
        auto url = parse_ferry_url(text);
        if (!url) {
            return url.error().message;
        }
        if (url->name.empty()) {
            return "\"" + text + "\" names a server but no file";
        }
        if (from_url && from_url->to_string() != url->endpoint.to_string()) {
            return "one command talks to one server: \"" + text + "\" names another than " + from_url->to_string();
        }
        from_url = url->endpoint;
        text = url->name;
        return std::nullopt;
    };
    for (std::string* text : std::vector<std::string*>{&name, &as}) {
        if (auto bad = take_url(*text)) {
            return usage_error(*bad);
        }
    }
    for (auto& text : names) {
        if (auto bad = take_url(text)) {
            return usage_error(*bad);
        }
    }
    Endpoint endpoint;
    if (from_url) {
        endpoint = *from_url;
    } else {
        std::string chosen = server;
        if (chosen.empty() && server_option->count() == 0 && config->default_server) {
            chosen = *config->default_server;
        }
        if (chosen.empty()) {
            chosen = std::string(kDefaultServer);
        }
        if (const auto entry = config->servers.find(chosen); entry != config->servers.end()) {
            apply_entry(security, entry->second);
            chosen = entry->second.address;
        }
        Result<Endpoint> parsed = Error{ferry::ErrorCode::bad_request, ""};
        if (is_ferry_url(chosen)) {
            auto url = parse_ferry_url(chosen);
            if (url && !url->name.empty()) {
                return usage_error("--server takes a server, not a file: \"" + chosen + "\"");
            }
            parsed = url ? Result<Endpoint>(url->endpoint) : Result<Endpoint>(url.error());
        } else {
            parsed = parse_endpoint(chosen);
        }
        if (!parsed) {
            const Output output(json);
            output.error(parsed.error());
            return kExitUsage;
        }
        endpoint = parsed.value();
    }

    const bool to_stdout = get->parsed() && output_path == "-";
    // Standard output carries the file: results and errors go to stderr.
    Output output = to_stdout ? Output(json, stderr, stderr) : Output(json);
    output.set_verbosity(quiet ? Verbosity::quiet : verbose ? Verbosity::verbose : Verbosity::normal);
    output.set_progress(!no_progress);
    Timeouts timeouts;
    timeouts.io = std::chrono::milliseconds(static_cast<long long>(timeout_seconds * 1000));
    timeouts.hello = std::chrono::milliseconds(static_cast<long long>(hello_timeout_seconds * 1000));
    auto options = connect_options(security, timeouts);
    if (!options) {
        output.error(options.error());
        return options.error().code == ferry::ErrorCode::bad_request ? kExitUsage : exit_status(options.error().code);
    }
    install_interrupt_handlers();

    if (app.get_subcommands().empty()) {
        if (::isatty(STDIN_FILENO) != 1) {
            return run_batch(endpoint, options.value(), output, hash);
        }
        const int status = run_shell(endpoint, options.value(), Output(false), hash);
        clear_interrupt(); // the shell's Ctrl-C stopped transfers, not the shell
        return status;
    }

    // Connects, trying again after a passing failure as --retry allows.
    const auto connect = [&]() -> Result<Connection> {
        for (unsigned attempt = 1;; ++attempt) {
            output.detail("connecting to " + endpoint.to_string() + (options->tls ? " (TLS)" : ""));
            auto opened = Connection::open(endpoint, options.value());
            if (opened) {
                output.detail("connected to " + endpoint.to_string() + " (" + opened->server_hello().server + ")");
                return opened;
            }
            if (attempt > retries || exit_status(opened.error().code) != kExitTransient || interrupted()) {
                return opened;
            }
            output.detail(std::string(ferry::to_string(opened.error().code)) + ": " + opened.error().message);
            const auto delay = retry_delay(attempt);
            output.detail("retrying in " + std::to_string(delay.count() / 1000) + " s (retry " +
                          std::to_string(attempt) + " of " + std::to_string(retries) + ")");
            const auto until = std::chrono::steady_clock::now() + delay;
            while (std::chrono::steady_clock::now() < until && !interrupted()) {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
            if (interrupted()) {
                return opened;
            }
        }
    };

    const TransferFlags flags = command_line.transfer_flags(hash, retries);
    // sync's :REMOTE_DIR is settled ('..' included) before any connection:
    // one that names nothing the server could hold is refused as ls would.
    std::optional<SyncArguments> sync_arguments;
    if (command_line.sync->parsed()) {
        auto settled = command_line.sync_arguments(hash, retries);
        if (!settled) {
            output.error(settled.error());
            return exit_status(settled.error().code);
        }
        sync_arguments = std::move(settled.value());
    }

    auto connection = connect();
    if (!connection) {
        if (get->parsed()) {
            std::vector<std::string> dests;
            for (const auto& each : names) {
                dests.push_back(output_path.empty() ? (folder.empty() ? each : folder + "/" + each) : output_path);
            }
            return report_unstarted(output, names, dests, connection.error(), false);
        }
        if (put->parsed()) {
            std::vector<std::string> remote;
            for (const auto& each : locals) {
                remote.push_back(as.empty() ? base_name(each) : as);
            }
            return report_unstarted(output, remote, locals, connection.error(), true);
        }
        output.error(connection.error());
        return exit_status(connection.error().code);
    }
    Connection& server_connection = connection.value();
    if (get->parsed()) {
        GetPlacement placement;
        if (!output_path.empty()) {
            placement.output = output_path;
        }
        MadeFolders made;
        if (!folder.empty()) {
            made = make_folders(folder, typed_flag(args, "-C", "--directory"));
            if (made.error) {
                output.error(*made.error);
                return exit_status(made.error->code);
            }
            placement.folder = folder;
        }
        const int status = run_gets(server_connection, output, names, placement, flags);
        if (status != kExitOk) {
            remove_made_folders(made);
        }
        return status;
    }
    if (command_line.sync->parsed()) {
        return run_sync(server_connection, options.value(), output, *sync_arguments);
    }
    if (put->parsed()) {
        PutPlacement placement;
        if (!as.empty()) {
            placement.as = as;
        }
        if (!folder.empty()) {
            placement.folder = folder;
        }
        return run_puts(server_connection, output, locals, placement, flags);
    }
    const auto& arguments = command_line.arguments;
    if (command_line.remove->parsed()) {
        return run_remove(server_connection, output, names, arguments.recursive, "");
    }
    if (command_line.move->parsed()) {
        return run_move(server_connection, output, arguments.from, arguments.to, arguments.replace, "");
    }
    if (command_line.make_folder->parsed()) {
        return run_make_folders(server_connection, output, names, arguments.parents, "");
    }
    if (command_line.digest->parsed()) {
        return run_digests(server_connection, output, names, hash, "");
    }
    // list, stat, stats: one request, tried again (on a fresh connection)
    // after a passing failure; one output either way.
    for (unsigned attempt = 1;; ++attempt) {
        std::optional<ferry::Error> failure;
        if (command_line.list->parsed()) {
            auto reply = list_entries(server_connection, name, command_line.arguments.recursive, "", "");
            if (reply) {
                return show_list(output, reply.value(), name, "");
            }
            failure = named_as_typed(reply.error(), name, "");
        } else if (command_line.stat->parsed()) {
            auto reply = stat_entries(server_connection, name, "", "");
            if (reply) {
                show_stat(output, reply.value(), name);
                return kExitOk;
            }
            failure = stat_error(reply.error(), name, "");
        } else {
            auto reply = server_stats(server_connection);
            if (reply) {
                output.stats(reply.value());
                return kExitOk;
            }
            failure = reply.error();
        }
        const int status = exit_status(failure->code);
        if (attempt > retries || status != kExitTransient || interrupted()) {
            output.error(*failure);
            return status;
        }
        output.detail(std::string(ferry::to_string(failure->code)) + ": " + failure->message);
        std::this_thread::sleep_for(retry_delay(attempt));
        if (auto again = server_connection.reconnect(); !again) {
            failure = again.error();
        }
    }
}

} // namespace
