// ferry: the command-line client of ferryd (docs/PROTOCOL.md).
// Exit status: 0 on success, 1 on any failure, 2 for a usage error.
#include "commands.hpp"
#include "connection.hpp"
#include "endpoint.hpp"
#include "interrupt.hpp"
#include "output.hpp"
#include "shell.hpp"
#include "tls.hpp"
#include "transfers.hpp"

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace {

using ferry::Error;
using ferry::ErrorCode;
using ferry::Result;
using ferry::client::ConnectOptions;
using ferry::client::parse_pin;
using ferry::client::Timeouts;
using ferry::client::TlsSettings;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

constexpr const char* kFooter = R"(Commands:
  ferry [OPTIONS] list                                  files on the server: size, date, name
  ferry [OPTIONS] stat NAME                             one file's size and date
  ferry [OPTIONS] get [--resume] NAME... [-o LOCAL | -C DIR]
                                                        download to ./NAME, to LOCAL (one NAME; a folder
                                                        gets NAME inside; - is standard output) or into DIR
  ferry [OPTIONS] put [--resume] LOCAL... [--as NAME]   upload each LOCAL under its file name (or NAME)
  ferry [OPTIONS] stats                                 the server's counters since it started
  ferry [OPTIONS]                                       interactive shell (standard input a terminal)

Downloads are written to LOCAL.ferry-part (with its state in LOCAL.ferry-part.state; a name too
long for that, .HEX.ferry-part), checked against the server's SHA-256 (or XXH3-128 with --hash
xxh3-128: faster, catches corruption but not tampering) and only then renamed onto LOCAL; a FIFO
or device is written straight through, a folder is refused. --resume continues an interrupted
download or upload where it stopped. Several files share one connection (gets are pipelined); one
failed file does not stop the others, and a summary ends the command.

TLS: --tls checks the server against the system's CA store and its name; --tls-ca FILE against FILE
(a CA or the server's own certificate); --tls-pin accepts exactly one certificate, by the SHA-256 of
its DER. Get the fingerprint on the server with:
  openssl x509 -in cert.pem -noout -fingerprint -sha256

Environment: FERRY_SERVER (default server, else 127.0.0.1:7021), FERRY_TOKEN (token, when neither
--token nor --token-file is given), FERRY_TLS_CA and FERRY_TLS_PIN (as --tls-ca, --tls-pin),
FERRY_HASH (as --hash).
--json: every result and every error is one JSON object on stdout (with -o -, on stderr).
Exit status: 0 on success, 1 on failure (any file of several), 2 for a usage error.)";

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

struct SecurityArguments {
    std::string token;
    std::string token_file;
    bool tls = false;
    std::string tls_ca;
    std::string tls_pin;
};

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

int main(int argc, char** argv)
{
    using namespace ferry::client;
    std::signal(SIGPIPE, SIG_IGN);

    CLI::App app{"ferry: the Ferry file-transfer client. List, fetch and send files on a ferryd server; every "
                 "transfer is checked end to end with SHA-256 and can be resumed."};
    app.set_version_flag("--version", std::string("ferry ") + FERRY_VERSION);
    app.footer(kFooter);

    std::string server(kDefaultServer);
    bool json = false;
    double timeout_seconds = 120;
    SecurityArguments security;
    app.add_option("--server", server, "Server address: HOST:PORT or [IPv6]:PORT (default port 7021)")
        ->envname("FERRY_SERVER")
        ->capture_default_str();
    app.add_flag("--json", json, "Print each result or error as one JSON object on stdout");
    std::string hash_text = "sha256";
    app.add_option("--hash", hash_text,
                   "Transfer hash: sha256 (cryptographic, like sha256sum) or xxh3-128 (many times faster; catches "
                   "corruption, not tampering; like xxh128sum)")
        ->envname("FERRY_HASH")
        ->capture_default_str()
        ->check(CLI::IsMember({"sha256", "xxh3-128"}));
    app.add_option("--timeout", timeout_seconds, "Seconds the server may make no progress before giving up")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    auto* token = app.add_option("--token", security.token,
                                 "Token to present to the server (visible to other users in ps; prefer "
                                 "--token-file or FERRY_TOKEN)");
    app.add_option("--token-file", security.token_file, "Read the token from the first line of this file")
        ->excludes(token);
    app.add_flag("--tls", security.tls, "Speak TLS 1.3; check the server against the system's CA store");
    app.add_option("--tls-ca", security.tls_ca, "Speak TLS; trust this CA (or server certificate) file (PEM)")
        ->envname("FERRY_TLS_CA");
    app.add_option("--tls-pin", security.tls_pin,
                   "Speak TLS; accept only the certificate whose DER has this SHA-256 (sha256:HEX, colons "
                   "optional)")
        ->envname("FERRY_TLS_PIN");

    std::string name;
    std::vector<std::string> names;
    std::vector<std::string> locals;
    std::string output_path;
    std::string folder;
    std::string as;
    bool resume = false;

    auto* list = app.add_subcommand("list", "List the server's files (size, date, name)");
    auto* stat = app.add_subcommand("stat", "Show one file's name, size and modification time");
    stat->add_option("NAME", name, "File name on the server")->required();
    auto* get = app.add_subcommand("get", "Download files, each verified by SHA-256");
    get->add_flag("--resume", resume, "Continue interrupted downloads from their .ferry-part files");
    get->add_option("NAME", names, "File names on the server")->required();
    auto* output_option =
        get->add_option("-o,--output", output_path,
                        "Where to write the one NAME (an existing folder gets NAME inside; - is standard output)");
    get->add_option("-C,--directory", folder, "Folder to write every NAME into")
        ->check(CLI::ExistingDirectory)
        ->excludes(output_option);
    auto* put = app.add_subcommand("put", "Upload files; each replaces its name only once complete and verified");
    put->add_flag("--resume", resume, "Continue interrupted uploads of the same name and size");
    put->add_option("LOCAL", locals, "Local files to send")->required();
    put->add_option("--as", as, "Name on the server of the one LOCAL (default: its file name)");
    auto* stats = app.add_subcommand("stats", "Show the server's counters: uptime, connections, transfers, bytes, "
                                              "errors");
    for (auto* command : {list, stat, get, put, stats}) {
        command->fallthrough(); // global options also after the command
    }
    app.require_subcommand(0, 1);

    const auto usage_error = [&](const std::string& message) {
        if (wants_json(argc, argv)) {
            Output(true).error(ferry::Error{ferry::ErrorCode::bad_request, message});
        } else {
            std::fprintf(stderr, "%s\nRun with --help for more information.\n", message.c_str());
        }
        return kExitUsage;
    };
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& error) {
        if (error.get_exit_code() == 0) { // --help, --version
            return app.exit(error);
        }
        if (wants_json(argc, argv)) {
            Output(true).error(ferry::Error{ferry::ErrorCode::bad_request, error.what()});
        } else {
            app.exit(error);
        }
        return kExitUsage;
    }
    const ferry::HashKind hash = ferry::hash_from_name(hash_text).value_or(ferry::HashKind::sha256);
    if (get->parsed() && !output_path.empty() && names.size() > 1) {
        return usage_error("get: -o names one file; use -C DIR for several");
    }
    if (get->parsed() && output_path == "-" && resume) {
        return usage_error("get: -o - cannot resume (standard output keeps no partial file)");
    }
    if (put->parsed() && !as.empty() && locals.size() > 1) {
        return usage_error("put: --as names one file; several keep their own names");
    }

    const bool to_stdout = get->parsed() && output_path == "-";
    // Standard output carries the file: results and errors go to stderr.
    const Output output = to_stdout ? Output(json, stderr, stderr) : Output(json);
    const auto endpoint = parse_endpoint(server);
    if (!endpoint) {
        output.error(endpoint.error());
        return kExitUsage;
    }
    Timeouts timeouts;
    timeouts.io = std::chrono::milliseconds(static_cast<long long>(timeout_seconds * 1000));
    auto options = connect_options(security, timeouts);
    if (!options) {
        output.error(options.error());
        return options.error().code == ferry::ErrorCode::bad_request ? kExitUsage : kExitFailure;
    }
    install_interrupt_handlers();

    if (app.get_subcommands().empty()) {
        if (::isatty(STDIN_FILENO) != 1) {
            std::fputs(app.help().c_str(), stderr);
            return kExitUsage;
        }
        return run_shell(endpoint.value(), options.value(), Output(false), hash);
    }

    auto connection = Connection::open(endpoint.value(), options.value());
    if (!connection) {
        output.error(connection.error());
        return kExitFailure;
    }
    Connection& server_connection = connection.value();
    bool ok = false;
    if (list->parsed()) {
        ok = run_list(server_connection, output);
    } else if (stat->parsed()) {
        ok = run_stat(server_connection, output, name);
    } else if (stats->parsed()) {
        ok = run_stats(server_connection, output);
    } else if (get->parsed()) {
        GetPlacement placement;
        if (!output_path.empty()) {
            placement.output = output_path;
        }
        if (!folder.empty()) {
            placement.folder = folder;
        }
        ok = run_gets(server_connection, output, names, placement, resume, hash);
    } else {
        ok = run_puts(server_connection, output, locals, as.empty() ? std::nullopt : std::optional<std::string>(as),
                      resume, hash);
    }
    return ok ? 0 : kExitFailure;
}
