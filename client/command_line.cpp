#include "command_line.hpp"

#include "empty_values.hpp"
#include "option_values.hpp"
#include "remote_paths.hpp"
#include "shell_words.hpp"
#include "text_width.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>
#include <set>
#include <string_view>
#include <utility>

namespace ferry::client {

namespace {

// The longest timeout (about 31 years) stays far from overflow once in
// nanoseconds and added to a clock reading; the shortest is the 1 ms that
// poll() counts in (below it a timeout would be 0: no wait at all).
constexpr double kMinTimeoutSeconds = 0.001;
constexpr double kMaxTimeoutSeconds = 1e9;

// Prose is one line per paragraph: the help formatter wraps it to the width.
constexpr const char* kFooter = R"(Commands (global options may also follow the command):
  list [PATH] [-r]            a folder on the server (default the root): size,
                              date, name; folders end in /; -r everything below;
                              also named ls
  stat PATH                   one file's or folder's size, date and mode
  get [-r] [-p] PATH... [-o LOCAL | -C DIR]
                              download to ./NAME, to LOCAL (one PATH; a folder
                              gets NAME inside; - is standard output) or into
                              DIR (made when missing); -r: folders as trees
  put [-r] [-p] LOCAL... [--as PATH | -C DIR]
                              upload each LOCAL under its file name (or PATH),
                              or into the server's DIR; -r: folders as trees
  rm [-r] PATH...             delete files and empty folders (-r: whole trees)
  mv FROM TO [--replace]      rename or move, atomically; also named rename
  mkdir [-p] PATH...          make folders (-p: with their parents)
  digest PATH...              the server's digest of files (--hash picks it)
  sync [--delete] [--checksum] [--dry-run] [-j N] LOCAL_DIR :REMOTE_DIR
  sync [...] :REMOTE_DIR LOCAL_DIR
                              make the second folder a copy of the first,
                              sending only what differs (":" is the root)
  stats                       the server's counters since it started
  help [COMMAND]              this help, or a command's: ferry help get

With no command, ferry is a shell on a terminal (type help there); otherwise it reads the same commands from standard input, one a line, like sftp -b: the first that fails ends ferry with its exit status, and a leading - (-get a.txt) lets a command fail.
  printf 'get a.txt\nput b.txt\n' | ferry --server HOST

Paths on the server are folder/sub/name. Quoted wildcards (*, ? and [...]: ferry get 'logs/*.gz') in get, rm, list, stat and digest are matched against the server's listing; no match is an error. -p (--preserve) keeps modification times. A server that speaks only protocol version 1 has no folders: the folder commands say so.

Downloads are written to LOCAL.ferry-part (with its state in LOCAL.ferry-part.state; a name too long for that, .HEX.ferry-part), checked against the server's SHA-256 (or XXH3-128 with --hash xxh3-128: faster, catches corruption but not tampering) and only then renamed onto LOCAL; a file at LOCAL.ferry-part that ferry did not make (parts carry the user.ferry.part attribute) is left alone and that file fails; a FIFO or device is written straight through, a folder is refused. An interrupted download or upload continues where it stopped when it is run again (the part's bytes and the server's kept bytes are checked first); --no-resume starts over and discards them. Several files share one connection (gets are pipelined); one failed file does not stop the others, and a summary ends the command.

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

private:
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

// The shell's help ends with what is the shell's own.
constexpr const char* kShellFooter =
    "quit, exit: leave (also Ctrl-D). help COMMAND, or COMMAND --help: a command's flags.\n"
    "Paths on the server are relative to the current folder (cd, pwd; /logs starts at the root, .. is the folder "
    "above); local paths to the local one (lcd, lpwd). Quote wildcards only where a name holds a blank: get "
    "logs/*.gz.\n"
    "Quote names with blanks: get \"my file.txt\" or get my\\ file.txt; a name holding a wildcard keeps its "
    "backslash: rm 'm\\[1]' removes m[1]. Tab completes commands and names, quoted. "
    "Ctrl-C stops a transfer. Lines starting with # are comments. From a script (standard input not a terminal) "
    "the first command that fails ends ferry; a leading - (-get a.txt) lets it fail. The global options (--server, "
    "--token, --hash, --json...) are given when ferry starts.";

} // namespace

CommandLine::CommandLine(Grammar grammar)
    : app("ferry: the Ferry file-transfer client. List, fetch and send files on a ferryd server; every transfer is "
          "checked end to end with SHA-256 and can be resumed."),
      grammar_(grammar)
{
    const bool shell = grammar == Grammar::shell;
    if (!shell) {
        app.set_version_flag("--version", std::string("ferry ") + FERRY_VERSION);
    }
    app.formatter(std::make_shared<FittedFormatter>()); // before the commands, which copy it

    // The environment speaks for the command line only: in the shell these
    // options were settled when ferry started, and an environment variable
    // must not make every line look as if it named one.
    const auto from_env = [shell](CLI::Option* option, const char* variable) {
        if (!shell) {
            option->envname(variable);
        }
        return option;
    };
    auto& security = global.security;
    server_option = from_env(app.add_option("-s,--server", global.server,
                                            "Server: HOST:PORT, [IPv6]:PORT (default port 7021), ferry://HOST:PORT, "
                                            "or a NAME from the config file (default: FERRY_SERVER, the file's "
                                            "default, else 127.0.0.1:7021)"),
                             "FERRY_SERVER");
    globals_.push_back(server_option);
    globals_.push_back(
        app.add_flag("--json", global.json, "Print one JSON object per command on stdout (docs/ferry-json.schema.json)"));
    globals_.push_back(from_env(app.add_option("--hash", global.hash_text,
                                               "Transfer hash: sha256 (cryptographic, like sha256sum) or xxh3-128 "
                                               "(many times faster; catches corruption, not tampering; like "
                                               "xxh128sum)"),
                                "FERRY_HASH")
                           ->capture_default_str()
                           ->check(CLI::IsMember({"sha256", "xxh3-128"})));
    globals_.push_back(
        app.add_option("--timeout", global.timeout_seconds, "Seconds the server may make no progress before giving up")
            ->capture_default_str()
            ->check(option_values::seconds(kMinTimeoutSeconds, kMaxTimeoutSeconds)));
    globals_.push_back(app.add_option("--hello-timeout", global.hello_timeout_seconds,
                                      "Seconds to wait for the server's first answer (a silent peer is likely no "
                                      "Ferry server)")
                           ->capture_default_str()
                           ->check(option_values::seconds(kMinTimeoutSeconds, kMaxTimeoutSeconds)));
    globals_.push_back(app.add_option("--retry", global.retries,
                                      "Try files that failed for a passing reason (exit status 6) up to N more "
                                      "times, after 1, 2, 4... s, resuming where they stopped")
                           ->capture_default_str()
                           ->check(option_values::whole_number(0, 100)));
    auto* quiet_flag = app.add_flag("-q,--quiet", global.quiet, "Print only errors (and what list, stat, stats show)");
    globals_.push_back(quiet_flag);
    globals_.push_back(
        app.add_flag("-v,--verbose", global.verbose, "Also tell each step on stderr: connecting, the server, retries")
            ->excludes(quiet_flag));
    globals_.push_back(app.add_flag("--no-progress", global.no_progress, "Draw no progress bar"));
    auto* token = app.add_option("--token", security.token,
                                 "Token to present to the server (visible to other users in ps; prefer "
                                 "--token-file or FERRY_TOKEN)");
    globals_.push_back(token);
    globals_.push_back(
        app.add_option("--token-file", security.token_file, "Read the token from the first line of this file")
            ->excludes(token));
    globals_.push_back(
        app.add_flag("--tls", security.tls, "Speak TLS 1.3; check the server against the system's CA store"));
    // Round 76, F2: `--tls-pin "$PIN"` with PIN unset spoke plaintext and
    // sent the token in clear, as if no TLS option had been given.
    const std::string trust_needed = "this option makes ferry speak TLS, and without a value it would not";
    globals_.push_back(from_env(
        app.add_option("--tls-ca", security.tls_ca, "Speak TLS; trust this CA (or server certificate) file (PEM)")
            ->check(option_values::not_empty(trust_needed)),
        "FERRY_TLS_CA"));
    globals_.push_back(from_env(app.add_option("--tls-pin", security.tls_pin,
                                               "Speak TLS; accept only the certificate whose DER has this SHA-256 "
                                               "(sha256:HEX, colons optional)")
                                    ->check(option_values::not_empty(trust_needed)),
                                "FERRY_TLS_PIN"));

    auto& a = arguments;
    list = app.add_subcommand("list", "List a folder on the server (size, date, name; folders end in /)")->alias("ls");
    list->add_option("PATH", a.name, "Folder on the server (default: the root; in the shell the current folder); a "
                                     "wildcard lists what matches");
    list->add_flag("-r,--recursive", a.recursive, "List everything below the folder, paths relative to it");
    stat = app.add_subcommand("stat", "Show one file's or folder's name, size, modification time and permission bits");
    stat->add_option("PATH", a.name, "Path on the server (or ferry://HOST:PORT/PATH); a wildcard shows each match")
        ->required();
    get = app.add_subcommand("get", "Download files (or with -r folders), each verified by SHA-256");
    auto* get_resume =
        get->add_flag("--resume", a.resume, "Continue interrupted downloads from their .ferry-part files (the default)");
    get->add_flag("--no-resume", a.no_resume, "Start over: discard the .ferry-part files of interrupted downloads")
        ->excludes(get_resume);
    get->add_option("PATH", a.names,
                    "Paths on the server (or ferry://HOST:PORT/PATH); wildcards (quoted: 'logs/*.gz') match the "
                    "server's names")
        ->required();
    auto* output_option = get->add_option(
        "-o,--output", a.output_path,
        "Where to write the one PATH (an existing folder gets PATH's last name inside; - is standard output; "
        "one path typed twice, as f and ./f, is one)");
    get->add_option("-C,--directory", a.folder, "Folder to write every PATH into (made when missing)")
        ->excludes(output_option);
    get->add_flag("-r,--recursive", a.recursive, "Download folders with everything in them, as local folders");
    get->add_flag("-p,--preserve", a.preserve, "Give each file (and with -r each folder) the server's modification time");
    auto* get_no_clobber =
        get->add_flag("-n,--no-clobber", a.no_clobber, "Leave an existing local file alone (reported as skipped)");
    get->add_flag("--skip-identical", a.skip_identical,
                  "Skip a file whose local copy has the same size and digest; replace one that differs")
        ->excludes(get_no_clobber);
    put = app.add_subcommand("put", "Upload files; each replaces its name only once complete and verified (-r: "
                                    "folders too)");
    auto* put_resume = put->add_flag(
        "--resume", a.resume, "Continue interrupted uploads of the same name and size, once checked (the default)");
    put->add_flag("--no-resume", a.no_resume, "Start over: discard the server's kept upload of the same name and size")
        ->excludes(put_resume);
    put->add_option("LOCAL", a.locals, "Local files (with -r folders) to send (- is standard input, with --as)")
        ->required();
    auto* as_option = put->add_option(
        "--as", a.as,
        "Path on the server of the one LOCAL (default: its file name; or ferry://HOST:PORT/PATH; one file "
        "typed twice, as x and ./x, is one)");
    put->add_option("-C,--directory", a.folder, "Folder on the server to put every LOCAL into (made when missing)")
        ->excludes(as_option);
    put->add_flag("-r,--recursive", a.recursive,
                  "Send folders with everything in them (symbolic links are skipped, with a note)");
    put->add_flag("-p,--preserve", a.preserve, "Give each file on the server the local file's modification time");
    auto* put_no_clobber = put->add_flag("-n,--no-clobber", a.no_clobber,
                                         "Leave a file the server already has alone (reported as skipped)");
    put->add_flag("--skip-identical", a.skip_identical,
                  "Skip a file the server holds with the same size and digest; replace one that differs")
        ->excludes(put_no_clobber);
    remove = app.add_subcommand("rm", "Delete files, empty folders, or with -r folders and everything in them");
    remove->add_option("PATH", a.names, "Paths on the server; wildcards (quoted) match the server's names")->required();
    remove->add_flag("-r,--recursive", a.recursive, "Also delete folders that are not empty, with what is in them");
    move = app.add_subcommand("mv", "Rename or move a file or folder on the server, atomically")->alias("rename");
    move->add_option("FROM", a.from, "Path on the server")->required();
    move->add_option("TO", a.to, "New path (an existing folder is refused, not entered, unless TO ends in / or is . or ..; its folder must exist)")
        ->required();
    move->add_flag("--replace", a.replace,
                   "Replace what TO names: a file, or an empty folder (without it an existing TO is refused)");
    make_folder = app.add_subcommand("mkdir", "Make folders on the server");
    make_folder->add_option("PATH", a.names, "Folders to make")->required();
    make_folder->add_flag("-p,--parents", a.parents,
                          "Make missing parent folders too; a folder already there is no error");
    digest = app.add_subcommand("digest", "Show files' digests as the server computes them (--hash picks the hash)");
    digest->add_option("PATH", a.names, "Files on the server; wildcards (quoted) match the server's names")
        ->required();
    sync = app.add_subcommand("sync", "Make a server folder a copy of a local one (push), or the reverse (pull), "
                                      "sending only the files that differ (same size and mtime: skipped)");
    sync->add_option("SOURCE", a.sync_source,
                     "The folder to copy: LOCAL_DIR (a push) or :REMOTE_DIR (a pull); a leading ':' names the "
                     "server's folder, ':' alone its root")
        ->required();
    sync->add_option("DEST", a.sync_dest, "The folder made its copy: :REMOTE_DIR (a push) or LOCAL_DIR (a pull)")
        ->required();
    sync->add_flag("--checksum", a.checksum,
                   "Compare files of the same size by digest (the transfer hash, computed on both sides) instead "
                   "of by mtime");
    sync->add_flag("--delete", a.delete_extras,
                   "Also remove from the receiving side (the server's folder on a push, the local one on a pull) "
                   "every file and folder the sending side does not have, a folder with everything in it, and "
                   "whatever stands where the sending side has an entry of the other kind; never a symbolic link, "
                   "FIFO, socket or device (nor the folders holding one), a partial download (NAME.ferry-part) or "
                   "a name a Ferry server cannot hold. A folder holding such an entry stays, with it (on a push, one "
                   "holding what the server does not list); the rest of it goes, and a note names the folder and why. "
                   "It removes only what it listed, one entry at a time: a file written into a folder after the "
                   "listing stays, and so does the folder. On a pull, no extra directly in a folder the server says "
                   "holds entries it does not list is removed. With --dry-run: listed, and counted as the real run would "
                   "count them (a folder that stays is named with what goes inside it; a push to an older "
                   "ferryd, which cannot say which folders hold what it does not list, names a folder it would "
                   "delete \"unless it holds entries the server does not list\" and counts only the files); "
                   "nothing removed");
    sync->add_flag("-n,--dry-run", a.dry_run,
                   "Show what would be deleted, made and sent (a pull: received), and the modification times that "
                   "would be set "
                   "(folders, the synced folder itself, --checksum's equal files); change nothing. Under --json "
                   "these lines are the summary's notes. On a connection that may only read, a push and its dry "
                   "run stop at once with one forbidden error, as the real run would");
    sync->add_option("-j,--jobs", a.jobs, "Connections used at once (each pipelines its files)")
        ->capture_default_str()
        ->check(option_values::whole_number(1, kMaxSyncJobs));
    stats = app.add_subcommand("stats", "Show the server's counters: uptime, connections, transfers, bytes, "
                                        "errors");
    help = app.add_subcommand("help", "Show this help, or a command's (help get)");
    if (shell) {
        help->alias("?");
        change_folder = app.add_subcommand("cd", "Change the current folder on the server (paths are relative to it)");
        change_folder->add_option("PATH", a.name, "Folder on the server (default: the root; .. is the one above)");
        print_folder = app.add_subcommand("pwd", "Show the current folder on the server");
        change_local_folder = app.add_subcommand("lcd", "Change the local current folder");
        change_local_folder->add_option("LOCAL", a.name, "Local folder (default: your home folder)");
        print_local_folder = app.add_subcommand("lpwd", "Show the local current folder");
        quit = app.add_subcommand("quit", "Leave the shell (also Ctrl-D)")->alias("exit");
    }
    std::vector<std::string> topics;
    for (const CLI::App* command : commands()) {
        topics.push_back(command->get_name());
        for (const auto& alias : command->get_aliases()) {
            topics.push_back(alias);
        }
    }
    help->add_option("COMMAND", a.help_topic, "The command to explain")->check(CLI::IsMember(topics));
    for (auto* command : commands()) {
        command->fallthrough(); // global options also after the command
        command->footer(kCommandFooter);
    }
    app.footer(shell ? kShellFooter : kFooter); // after the commands: they would copy it
    app.require_subcommand(0, 1);

    // Every option with a value takes guard_brackets()'s guard off first
    // (a transform runs before the option's checks).
    std::vector<CLI::App*> scopes = commands();
    scopes.push_back(&app);
    for (CLI::App* scope : scopes) {
        for (CLI::Option* option : scope->get_options()) {
            if (option->get_items_expected_max() > 0) {
                option->transform(unguard_brackets);
            }
        }
    }
}

void CommandLine::parse(int argc, const char* const* argv)
{
    std::vector<std::string> guarded;
    for (int i = 1; i < argc; ++i) {
        guarded.push_back(guard_brackets(argv[i]));
    }
    // Before CLI11, which would take the next word as the value.
    option_values::refuse_empty_value_after_equals(guarded, option_values::options_of(app));
    std::vector<const char*> pointers{argc > 0 ? argv[0] : "ferry"};
    for (const auto& word : guarded) {
        pointers.push_back(word.c_str());
    }
    app.parse(static_cast<int>(pointers.size()), pointers.data());
}

void CommandLine::parse(const std::vector<std::string>& words)
{
    option_values::refuse_empty_value_after_equals(words, option_values::options_of(app));
    std::vector<std::string> reversed; // CLI11 takes them last first
    for (auto word = words.rbegin(); word != words.rend(); ++word) {
        reversed.push_back(guard_brackets(*word));
    }
    app.parse(std::move(reversed));
}

std::string guard_brackets(std::string word)
{
    const bool bracketed = word.size() >= 2 && word.front() == '[' && word.back() == ']';
    if (bracketed || word.starts_with(kBracketGuard)) {
        word.insert(word.begin(), kBracketGuard);
    }
    return word;
}

std::string unguard_brackets(std::string value)
{
    if (value.starts_with(kBracketGuard)) {
        value.erase(0, 1);
    }
    return value;
}

std::string unguarded(const std::string& message)
{
    std::string shown;
    for (std::size_t i = 0; i < message.size(); ++i) {
        if (message[i] == kBracketGuard && i + 1 < message.size()) {
            ++i; // what it guards, shown as given
        }
        shown += message[i];
    }
    return shown;
}

CLI::App* CommandLine::command() const
{
    const auto chosen = app.get_subcommands();
    return chosen.empty() ? nullptr : chosen.front();
}

std::vector<CLI::App*> CommandLine::commands() const
{
    std::vector<CLI::App*> all;
    for (CLI::App* command : {list, stat, get, put, remove, move, make_folder, digest, sync, change_folder, print_folder,
                              change_local_folder, print_local_folder, stats, help, quit}) {
        if (command != nullptr) {
            all.push_back(command);
        }
    }
    return all;
}

std::vector<std::string> CommandLine::command_names() const
{
    std::vector<std::string> names;
    for (const CLI::App* command : commands()) {
        names.push_back(command->get_name());
        for (const auto& alias : command->get_aliases()) {
            names.push_back(alias);
        }
    }
    return names;
}

bool CommandLine::is_command(const std::string& word) const
{
    const auto names = command_names();
    return std::find(names.begin(), names.end(), word) != names.end();
}

const CLI::Option* CommandLine::global_given() const
{
    for (const CLI::Option* option : globals_) {
        if (option->count() > 0) {
            return option;
        }
    }
    return nullptr;
}

std::string CommandLine::help_text(const std::string& topic, const std::string& program) const
{
    if (!topic.empty()) {
        const CLI::App* command = app.get_subcommand(topic);
        const std::string name = program.empty() ? command->get_name() : program + " " + command->get_name();
        return command->get_formatter()->make_help(command, name, CLI::AppFormatMode::Normal);
    }
    if (grammar_ == Grammar::command_line) {
        return app.get_formatter()->make_help(&app, program, CLI::AppFormatMode::Normal);
    }
    // The shell: its commands, from the same definitions, and its own notes
    // (the global options are the command line's).
    const FittedFormatter formatter;
    std::string text = "Commands:\n";
    for (const CLI::App* command : commands()) {
        text += formatter.make_subcommand(command);
    }
    return text + "\n" + FittedFormatter::fit(app.get_footer()) + "\n";
}

namespace {

// How many paths `paths` names once "." components and repeated slashes
// are read away ("x", "./x" and ".//x" are one; "a/../x" stays its own, as
// a link at "a" would lead elsewhere): -o and --as name one file, and one
// file typed twice, or typed and matched by a wildcard, is one file. Put's
// "-" is standard input, never the file "./-" (get's "-" is a server
// name, like any other). With -r every word counts:
// -o and --as name where one tree goes.
std::size_t spelled_paths(const std::vector<std::string>& paths, bool recursive, bool dash_is_stdin)
{
    if (recursive) {
        return paths.size();
    }
    std::set<std::string> distinct;
    for (const std::string& path : paths) {
        if (dash_is_stdin && path == "-") {
            distinct.insert(std::string(1, '\0')); // no path is spelled so
            continue;
        }
        const std::filesystem::path typed(path);
        const bool climbs = std::any_of(typed.begin(), typed.end(), [](const auto& part) { return part == ".."; });
        distinct.insert(climbs ? path : typed.lexically_normal().generic_string());
    }
    return distinct.size();
}

} // namespace

std::optional<std::string> CommandLine::misuse() const
{
    const auto& a = arguments;
    // An empty value given (--as "$NAME" with NAME unset) would otherwise
    // read as no value, and the file would go under its own name.
    if (get->parsed() && get->count("--output") > 0 && a.output_path.empty()) {
        return "get: -o was given an empty path; name a file, a folder or - (standard output)";
    }
    if (put->parsed() && put->count("--as") > 0 && a.as.empty()) {
        return "put: --as was given an empty path; name the file on the server";
    }
    if (get->parsed() && !a.output_path.empty() && spelled_paths(a.names, a.recursive, false) > 1) {
        return "get: -o names one file; use -C DIR for several";
    }
    if (get->parsed() && a.output_path == "-" && grammar_ == Grammar::shell) {
        return "get: -o - is for the command line (the shell's standard output shows its commands' results)";
    }
    if (get->parsed() && a.output_path == "-" && a.resume) {
        return "get: -o - cannot resume (standard output keeps no partial file)";
    }
    if (get->parsed() && a.output_path == "-" && a.recursive) {
        return "get: -o - writes one file; -r makes folders";
    }
    if (put->parsed() && !a.as.empty() && spelled_paths(a.locals, a.recursive, true) > 1) {
        return "put: --as names one file; several keep their own names";
    }
    const bool from_stdin = std::find(a.locals.begin(), a.locals.end(), "-") != a.locals.end();
    if (put->parsed() && from_stdin && grammar_ == Grammar::shell) {
        return "put -: standard input is for the command line (the shell reads its commands there)";
    }
    if (put->parsed() && from_stdin && a.recursive) {
        return "put -: standard input is one file; -r sends folders";
    }
    if (put->parsed() && from_stdin && a.as.empty()) {
        return "put -: standard input has no file name; give one with --as NAME";
    }
    if (sync->parsed()) {
        // Only the operands' shape: :REMOTE_DIR is settled ('..' included)
        // by sync_arguments, as any remote path is, and its error is the
        // path's own, not a usage error.
        SyncArguments sides;
        if (auto bad = parse_sync_operands(a.sync_source, a.sync_dest, sides)) {
            return bad;
        }
    }
    return std::nullopt;
}

namespace {

// `word` as a POSIX shell (and the ferry shell, whose quotes are the same)
// needs it typed to read it back: as it is when plain, else single_quoted.
std::string shell_quoted(const std::string& word)
{
    const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
               std::string_view("-_./:=@+,").find(c) != std::string_view::npos;
    });
    return plain ? word : single_quoted(word);
}

} // namespace

std::optional<std::string> CommandLine::operand_taken_for_option(const std::vector<std::string>& words,
                                                                   const std::string& program) const
{
    const CLI::App* chosen = command();
    if (chosen == nullptr) {
        return std::nullopt;
    }
    auto word = std::find(words.begin(), words.end(), chosen->get_name());
    for (const auto& alias : chosen->get_aliases()) {
        word = std::min(word, std::find(words.begin(), words.end(), alias));
    }
    // The command as it was typed (ls, not list), for the message.
    const std::string typed_command = word != words.end() ? *word : chosen->get_name();
    const auto option_named = [&](const std::string& name) -> const CLI::Option* {
        const CLI::Option* option = chosen->get_option_no_throw(name);
        return option != nullptr ? option : app.get_option_no_throw(name);
    };
    bool value_next = false; // the word after an option that takes one (-j -1) is its value
    for (; word != words.end() && *word != "--"; ++word) {
        const std::string& text = *word;
        if (std::exchange(value_next, false)) {
            continue;
        }
        if (text.size() < 2 || !text.starts_with('-')) {
            continue;
        }
        // The option it would be: --name (before any =value), or the first
        // of a cluster of short flags (-rp) or of a value given with it (-oFILE).
        const bool long_form = text.starts_with("--");
        std::string name = long_form ? text.substr(0, text.find('=')) : text.substr(0, 2);
        const CLI::Option* option = option_named(name);
        // In a cluster, each flag in turn (-rZ: -r, then -Z), up to one
        // that takes a value: the rest of the word is that value (-j2).
        std::size_t end = name.size(); // where the option's part of the word ends
        for (; option != nullptr && !long_form && end < text.size() && option->get_items_expected_min() == 0;
             ++end) {
            name = std::string("-") + text[end];
            option = option_named(name);
        }
        if (option != nullptr) {
            // Its value follows as the next word unless given with it (--jobs=2, -j2, -rj2).
            value_next = option->get_items_expected_min() > 0 && end == text.size();
            continue;
        }
        // An unknown --word is named too: nothing after it is judged, as it
        // may be that option's value (get --jobs -1), and it is the word
        // that the command has no option of. Shown printable (a control byte
        // never reaches the terminal), and a pasted megabyte is not echoed
        // back whole.
        const std::string typed = text.size() <= 64 ? text : text.substr(0, 64) + "...";
        const std::string shown = printable(typed);
        // The flag of a cluster that is none (-rZ: "-Z"), else the word.
        const bool in_cluster = !long_form && end > 2 && std::isalnum(static_cast<unsigned char>(name[1])) != 0;
        const std::string unknown = in_cluster ? name : shown;
        const std::string in_word = unknown == shown ? "" : " (in \"" + shown + "\")";
        const std::string command_name = program.empty() ? typed_command : program + " " + typed_command;
        // The form to type names that very word, or no word at all: what
        // printable() changed ('?' for a byte it cannot show) or cut would
        // name another path, '?' being a wildcard of ferry's (rm -- '-?'
        // would remove -a, -b and -c).
        const std::string example = shown == text ? shell_quoted(text) : std::string("PATH");
        // First what happened (the flag may just be mistyped: ls -l), then
        // how to name a path that starts with '-', as a shell reads it back.
        return typed_command + " has no option \"" + unknown + "\"" + in_word +
               "; a path that starts with - goes after --, as in " + command_name + " -- " + example;
    }
    return std::nullopt;
}

Result<SyncArguments> CommandLine::sync_arguments(HashKind hash, unsigned retries, std::string_view current) const
{
    const auto& a = arguments;
    SyncArguments sync_arguments;
    (void)parse_sync_operands(a.sync_source, a.sync_dest, sync_arguments); // misuse() checked the shape
    const std::string& remote = sync_arguments.direction == SyncDirection::pull ? a.sync_source : a.sync_dest;
    auto settled = settle_remote_folder(current, std::string_view(remote).substr(1)); // after its ':'
    if (!settled) {
        return settled.error();
    }
    sync_arguments.remote = std::move(settled.value());
    sync_arguments.remote_typed = remote.substr(1);
    sync_arguments.current = current;
    sync_arguments.checksum = a.checksum;
    sync_arguments.delete_extras = a.delete_extras;
    sync_arguments.dry_run = a.dry_run;
    sync_arguments.jobs = a.jobs;
    sync_arguments.hash = hash;
    sync_arguments.retries = retries;
    return sync_arguments;
}

TransferFlags CommandLine::transfer_flags(HashKind hash, unsigned retries) const
{
    TransferFlags flags;
    flags.resume = !arguments.no_resume;
    flags.hash = hash;
    flags.clobber = arguments.no_clobber       ? Clobber::keep_existing
                    : arguments.skip_identical ? Clobber::skip_identical
                                               : Clobber::replace;
    flags.retries = retries;
    flags.recursive = arguments.recursive;
    flags.preserve = arguments.preserve;
    return flags;
}

std::string typed_flag(const std::vector<std::string>& args, const std::string& short_name,
                       const std::string& long_name)
{
    std::string typed = long_name;
    for (const std::string_view arg : args) {
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

} // namespace ferry::client
