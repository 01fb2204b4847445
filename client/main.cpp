// ferry: the command-line client of ferryd (docs/PROTOCOL.md).
// Exit status: see status.hpp (0 ok, 2 usage, 3-8 by kind of failure, 130 on Ctrl-C).
#include "commands.hpp"
#include "config_file.hpp"
#include "operations.hpp"
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
using ferry::client::Timeouts;
using ferry::client::TlsSettings;

using ferry::client::kExitOk;
using ferry::client::kExitUsage;

// Prose is one line per paragraph: the help formatter wraps it to the width.
constexpr const char* kFooter = R"(Commands (global options may also follow the command):
  list                        files on the server: size, date, name
  stat NAME                   one file's size and date
  get [--no-resume] NAME... [-o LOCAL | -C DIR]
                              download to ./NAME, to LOCAL (one NAME; a folder
                              gets NAME inside; - is standard output) or into
                              DIR (made when missing)
  put [--no-resume] LOCAL... [--as NAME]
                              upload each LOCAL under its file name (or NAME)
  stats                       the server's counters since it started
  help [COMMAND]              this help, or a command's: ferry help get

With no command, ferry is a shell on a terminal (type help there); otherwise it reads the same commands from standard input, one a line, like sftp -b: the first that fails ends ferry with its exit status, and a leading - (-get a.txt) lets a command fail.
  printf 'get a.txt\nput b.txt\n' | ferry --server HOST

Downloads are written to LOCAL.ferry-part (with its state in LOCAL.ferry-part.state; a name too long for that, .HEX.ferry-part), checked against the server's SHA-256 (or XXH3-128 with --hash xxh3-128: faster, catches corruption but not tampering) and only then renamed onto LOCAL; a FIFO or device is written straight through, a folder is refused. An interrupted download or upload continues where it stopped when it is run again (the part's bytes and the server's kept bytes are checked first); --no-resume starts over and discards them. Several files share one connection (gets are pipelined); one failed file does not stop the others, and a summary ends the command.

TLS: --tls checks the server against the system's CA store and its name; --tls-ca FILE against FILE (a CA or the server's own certificate); --tls-pin accepts exactly one certificate, by the SHA-256 of its DER. Get the fingerprint on the server with:
  openssl x509 -in cert.pem -noout -fingerprint -sha256

Environment: FERRY_SERVER (default server, else 127.0.0.1:7021), FERRY_TOKEN (token, when neither --token nor --token-file is given), FERRY_TLS_CA and FERRY_TLS_PIN (as --tls-ca, --tls-pin), FERRY_HASH (as --hash), FERRY_CONFIG (the config file).

Named servers: ~/.config/ferry/config.toml ($XDG_CONFIG_HOME honoured) holds [servers.NAME] tables (address, token_file, tls, tls_ca, tls_pin) and default = "NAME"; -s NAME picks one. Flags (and FERRY_TLS_CA, FERRY_TLS_PIN) win over the file. ferry://HOST:PORT/NAME is accepted by --server (without NAME) and in place of a NAME (get, stat, put --as).

--json: one JSON object per command on stdout (with -o -, on stderr); get and put always give {"files": [...], "summary": {...}}; the shapes are in docs/ferry-json.schema.json.
Exit status: 0 success; 1 several files failed in different ways; 2 usage; 3 local file error; 4 refused by the server (not_found, forbidden...); 5 token or TLS trust refused; 6 transient (network, busy, stalled: try again); 7 disk full; 8 not a Ferry server or protocol broken; 130 interrupted (Ctrl-C).)";

// A command's own help points at the rest instead of repeating it.
constexpr const char* kCommandFooter = "ferry --help: the shell, TLS, environment and exit status.";

// Help text fits an 80-column terminal. CLI11 2.1 lays out its columns but
// never wraps, so this formatter wraps each option's description within its
// column, and every other line (usage, description, footer) at a blank,
// continuing at the line's own indentation.
class FittedFormatter : public CLI::Formatter {
public:
    static constexpr std::size_t kWidth = 80;

    std::string make_help(const CLI::App* app, std::string name, CLI::AppFormatMode mode) const override
    {
        return fit(CLI::Formatter::make_help(app, std::move(name), mode));
    }
    std::string make_option(const CLI::Option* option, bool is_positional) const override
    {
        return entry(make_option_name(option, is_positional) + make_option_opts(option), make_option_desc(option));
    }
    std::string make_subcommand(const CLI::App* command) const override
    {
        return entry(command->get_display_name(true), command->get_description());
    }
    // The top level lists its commands in its footer, with their arguments.
    std::string make_subcommands(const CLI::App* app, CLI::AppFormatMode mode) const override
    {
        return app->get_parent() == nullptr ? std::string() : CLI::Formatter::make_subcommands(app, mode);
    }

private:
    // Lines of at most `width` columns, broken at blanks (a word longer
    // than the width keeps its own line).
    static std::vector<std::string> wrap(const std::string& text, std::size_t width)
    {
        std::vector<std::string> lines;
        std::string line;
        std::size_t at = 0;
        while (at < text.size()) {
            const auto word_start = text.find_first_not_of(' ', at);
            if (word_start == std::string::npos) {
                break;
            }
            auto word_end = text.find(' ', word_start);
            if (word_end == std::string::npos) {
                word_end = text.size();
            }
            const std::string word = text.substr(word_start, word_end - word_start);
            if (!line.empty() && line.size() + 1 + word.size() > width) {
                lines.push_back(std::move(line));
                line.clear();
            }
            line += (line.empty() ? "" : " ") + word;
            at = word_end;
        }
        if (!line.empty() || lines.empty()) {
            lines.push_back(std::move(line));
        }
        return lines;
    }

    // Each line that is too long, wrapped at its own indentation.
    static std::string fit(const std::string& text)
    {
        std::string out;
        std::size_t at = 0;
        while (at < text.size()) {
            auto end = text.find('\n', at);
            const bool newline = end != std::string::npos;
            if (!newline) {
                end = text.size();
            }
            const std::string line = text.substr(at, end - at);
            at = newline ? end + 1 : end;
            if (line.size() <= kWidth) {
                out += line;
            } else {
                const std::size_t indent = std::min(line.find_first_not_of(' '), kWidth / 2);
                const auto lines = wrap(line.substr(indent), kWidth - indent);
                for (std::size_t i = 0; i < lines.size(); ++i) {
                    out += (i == 0 ? "" : "\n") + std::string(indent, ' ') + lines[i];
                }
            }
            if (newline) {
                out += '\n';
            }
        }
        return out;
    }

    // "  NAME  description" with the description in its column, on the next
    // line when the name fills the column.
    std::string entry(const std::string& name, const std::string& description) const
    {
        const std::size_t column = get_column_width();
        std::string out = "  " + name;
        if (description.empty()) {
            return out + "\n";
        }
        if (out.size() >= column) {
            out += "\n" + std::string(column, ' ');
        } else {
            out.resize(column, ' ');
        }
        const auto lines = wrap(description, kWidth - column);
        for (std::size_t i = 0; i < lines.size(); ++i) {
            out += (i == 0 ? "" : "\n" + std::string(column, ' ')) + lines[i];
        }
        return out + "\n";
    }
};

// The spelling of a flag as the user typed it (the last one wins, as in
// CLI11), so that an error about its value names what is on the command
// line: -C or --directory.
std::string typed_flag(int argc, char** argv, const std::string& short_name, const std::string& long_name)
{
    std::string typed = long_name;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--") {
            break;
        }
        if (arg == long_name || arg.starts_with(long_name + "=")) {
            typed = long_name;
        } else if (arg.starts_with(short_name)) {
            typed = short_name;
        }
    }
    return typed;
}

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
    // The terminal's character set: libedit edits and the progress line
    // measures UTF-8 names only in a UTF-8 locale. Only LC_CTYPE: numbers
    // and messages stay as they are.
    std::setlocale(LC_CTYPE, "");

    CLI::App app{"ferry: the Ferry file-transfer client. List, fetch and send files on a ferryd server; every "
                 "transfer is checked end to end with SHA-256 and can be resumed."};
    app.set_version_flag("--version", std::string("ferry ") + FERRY_VERSION);
    app.formatter(std::make_shared<FittedFormatter>()); // before the commands, which copy it

    std::string server;
    bool json = false;
    double timeout_seconds = 120;
    double hello_timeout_seconds = 5;
    unsigned retries = 0;
    bool quiet = false;
    bool verbose = false;
    bool no_progress = false;
    SecurityArguments security;
    auto* server_option =
        app.add_option("-s,--server", server,
                       "Server: HOST:PORT, [IPv6]:PORT (default port 7021), ferry://HOST:PORT, or a NAME from the "
                       "config file (default: FERRY_SERVER, the file's default, else 127.0.0.1:7021)")
            ->envname("FERRY_SERVER");
    app.add_flag("--json", json, "Print one JSON object per command on stdout (docs/ferry-json.schema.json)");
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
    app.add_option("--hello-timeout", hello_timeout_seconds,
                   "Seconds to wait for the server's first answer (a silent peer is likely no Ferry server)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--retry", retries,
                   "Try files that failed for a passing reason (exit status 6) up to N more times, after 1, 2, 4... "
                   "s, resuming where they stopped")
        ->capture_default_str()
        ->check(CLI::Range(0U, 100U));
    auto* quiet_flag = app.add_flag("-q,--quiet", quiet, "Print only errors (and what list, stat, stats show)");
    app.add_flag("-v,--verbose", verbose, "Also tell each step on stderr: connecting, the server, retries")
        ->excludes(quiet_flag);
    app.add_flag("--no-progress", no_progress, "Draw no progress bar");
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
    bool resume = false;    // --resume: the default, kept for scripts that say it
    bool no_resume = false; // --no-resume: start over, discarding what an interrupted transfer left
    bool no_clobber = false;
    bool skip_identical = false;

    auto* list = app.add_subcommand("list", "List the server's files (size, date, name)");
    auto* stat = app.add_subcommand("stat", "Show one file's name, size and modification time");
    stat->add_option("NAME", name, "File name on the server (or ferry://HOST:PORT/NAME)")->required();
    auto* get = app.add_subcommand("get", "Download files, each verified by SHA-256");
    auto* get_resume =
        get->add_flag("--resume", resume, "Continue interrupted downloads from their .ferry-part files (the default)");
    get->add_flag("--no-resume", no_resume, "Start over: discard the .ferry-part files of interrupted downloads")
        ->excludes(get_resume);
    get->add_option("NAME", names, "File names on the server (or ferry://HOST:PORT/NAME)")->required();
    auto* output_option =
        get->add_option("-o,--output", output_path,
                        "Where to write the one NAME (an existing folder gets NAME inside; - is standard output)");
    get->add_option("-C,--directory", folder, "Folder to write every NAME into (made when missing)")
        ->excludes(output_option);
    auto* get_no_clobber =
        get->add_flag("-n,--no-clobber", no_clobber, "Leave an existing local file alone (reported as skipped)");
    get->add_flag("--skip-identical", skip_identical,
                  "Skip a file whose local copy has the same size and digest; replace one that differs")
        ->excludes(get_no_clobber);
    auto* put = app.add_subcommand("put", "Upload files; each replaces its name only once complete and verified");
    auto* put_resume = put->add_flag(
        "--resume", resume, "Continue interrupted uploads of the same name and size, once checked (the default)");
    put->add_flag("--no-resume", no_resume, "Start over: discard the server's kept upload of the same name and size")
        ->excludes(put_resume);
    put->add_option("LOCAL", locals, "Local files to send (- is standard input, with --as)")->required();
    put->add_option("--as", as, "Name on the server of the one LOCAL (default: its file name; or ferry://HOST:PORT/NAME)");
    auto* put_no_clobber =
        put->add_flag("-n,--no-clobber", no_clobber, "Leave a file the server already has alone (reported as skipped)");
    put->add_flag("--skip-identical", skip_identical,
                  "Skip a file the server holds with the same size and digest; replace one that differs")
        ->excludes(put_no_clobber);
    auto* stats = app.add_subcommand("stats", "Show the server's counters: uptime, connections, transfers, bytes, "
                                              "errors");
    auto* help = app.add_subcommand("help", "Show this help, or a command's (help get)");
    std::string help_topic;
    help->add_option("COMMAND", help_topic, "The command to explain")
        ->check(CLI::IsMember({"list", "stat", "get", "put", "stats", "help"}));
    for (auto* command : {list, stat, get, put, stats, help}) {
        command->fallthrough(); // global options also after the command
        command->footer(kCommandFooter);
    }
    app.footer(kFooter); // after the commands: they would copy it
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
    if (help->parsed()) { // ferry help [COMMAND]: what --help prints, on stdout
        const CLI::App* topic = help_topic.empty() ? &app : app.get_subcommand(help_topic);
        const std::string name = help_topic.empty() ? app.get_name() : app.get_name() + " " + help_topic;
        std::fputs(topic->get_formatter()->make_help(topic, name, CLI::AppFormatMode::Normal).c_str(), stdout);
        return kExitOk;
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
    if (put->parsed() && std::find(locals.begin(), locals.end(), "-") != locals.end() && as.empty()) {
        return usage_error("put -: standard input has no file name; give one with --as NAME");
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

    TransferFlags flags;
    flags.resume = !no_resume;
    flags.hash = hash;
    flags.clobber = no_clobber ? Clobber::keep_existing : skip_identical ? Clobber::skip_identical : Clobber::replace;
    flags.retries = retries;

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
        if (!folder.empty()) {
            if (const auto failed = make_folders(folder, typed_flag(argc, argv, "-C", "--directory"))) {
                output.error(*failed);
                return exit_status(failed->code);
            }
            placement.folder = folder;
        }
        return run_gets(server_connection, output, names, placement, flags);
    }
    if (put->parsed()) {
        return run_puts(server_connection, output, locals, as.empty() ? std::nullopt : std::optional<std::string>(as),
                        flags);
    }
    // list, stat, stats: one request, tried again (on a fresh connection)
    // after a passing failure; one output either way.
    for (unsigned attempt = 1;; ++attempt) {
        std::optional<ferry::Error> failure;
        if (list->parsed()) {
            auto reply = list_files(server_connection);
            if (reply) {
                output.list(reply.value());
                return kExitOk;
            }
            failure = reply.error();
        } else if (stat->parsed()) {
            auto reply = stat_file(server_connection, name);
            if (reply) {
                output.stat(reply.value());
                return kExitOk;
            }
            failure = reply.error();
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
