// ferry: the command-line client of ferryd (docs/PROTOCOL.md).
// Exit status: 0 on success, 1 on any failure, 2 for a usage error.
#include "commands.hpp"
#include "connection.hpp"
#include "endpoint.hpp"
#include "interrupt.hpp"
#include "output.hpp"
#include "shell.hpp"

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

constexpr const char* kFooter = R"(Commands:
  ferry [OPTIONS] list                          files on the server: size, date, name
  ferry [OPTIONS] stat NAME                     one file's size and date
  ferry [OPTIONS] get [--resume] NAME [LOCAL]   download to ./NAME, to LOCAL, or into folder LOCAL
  ferry [OPTIONS] put [--resume] LOCAL [NAME]   upload LOCAL as NAME (default: its file name)
  ferry [OPTIONS]                               interactive shell (when standard input is a terminal)

Downloads are written to LOCAL.ferry-part (with its state in LOCAL.ferry-part.state), checked
against the server's SHA-256 and only then renamed onto LOCAL. --resume continues an interrupted
download or upload where it stopped.

Environment: FERRY_SERVER sets the default server (else 127.0.0.1:7021).
--json: every result and every error is one JSON object on stdout.
Exit status: 0 on success, 1 on failure, 2 for a usage error.)";

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
    app.add_option("--server", server, "Server address: HOST:PORT or [IPv6]:PORT (default port 7021)")
        ->envname("FERRY_SERVER")
        ->capture_default_str();
    app.add_flag("--json", json, "Print each result or error as one JSON object on stdout");
    app.add_option("--timeout", timeout_seconds, "Seconds the server may make no progress before giving up")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);

    std::string name;
    std::string local;
    bool resume = false;

    auto* list = app.add_subcommand("list", "List the server's files (size, date, name)");
    auto* stat = app.add_subcommand("stat", "Show one file's name, size and modification time");
    stat->add_option("NAME", name, "File name on the server")->required();
    auto* get = app.add_subcommand("get", "Download a file, verified by SHA-256");
    get->add_flag("--resume", resume, "Continue an interrupted download from its .ferry-part file");
    get->add_option("NAME", name, "File name on the server")->required();
    get->add_option("LOCAL_PATH", local, "Where to write it (default ./NAME; a folder gets NAME inside)");
    auto* put = app.add_subcommand("put", "Upload a file; it replaces NAME only once complete and verified");
    put->add_flag("--resume", resume, "Continue an interrupted upload of the same name and size");
    put->add_option("LOCAL_PATH", local, "The local file to send")->required();
    put->add_option("NAME", name, "Name on the server (default: LOCAL_PATH's file name)");
    for (auto* command : {list, stat, get, put}) {
        command->fallthrough(); // --server and --json also after the command
    }
    app.require_subcommand(0, 1);

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

    const Output output(json);
    const auto endpoint = parse_endpoint(server);
    if (!endpoint) {
        output.error(endpoint.error());
        return kExitUsage;
    }
    Timeouts timeouts;
    timeouts.io = std::chrono::milliseconds(static_cast<long long>(timeout_seconds * 1000));
    install_interrupt_handlers();

    if (app.get_subcommands().empty()) {
        if (::isatty(STDIN_FILENO) != 1) {
            std::fputs(app.help().c_str(), stderr);
            return kExitUsage;
        }
        return run_shell(endpoint.value(), timeouts, Output(false));
    }

    auto connection = Connection::open(endpoint.value(), timeouts);
    if (!connection) {
        output.error(connection.error());
        return kExitFailure;
    }
    Connection& server_connection = connection.value();
    const std::optional<std::string> local_arg = local.empty() ? std::nullopt : std::optional<std::string>(local);
    const std::optional<std::string> name_arg = name.empty() ? std::nullopt : std::optional<std::string>(name);
    bool ok = false;
    if (list->parsed()) {
        ok = run_list(server_connection, output);
    } else if (stat->parsed()) {
        ok = run_stat(server_connection, output, name);
    } else if (get->parsed()) {
        ok = run_get(server_connection, output, name, local_arg, resume);
    } else {
        ok = run_put(server_connection, output, local, name_arg, resume);
    }
    return ok ? 0 : kExitFailure;
}
