#include "shell.hpp"

#include "command_line.hpp"
#include "commands.hpp"
#include "interrupt.hpp"
#include "line_editor.hpp"
#include "local_wildcards.hpp"
#include "names.hpp"
#include "operations.hpp"
#include "posix_io.hpp"
#include "remote_paths.hpp"
#include "remote_tree.hpp"
#include "status.hpp"
#include "text_width.hpp"
#include "transfers.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>

namespace ferry::client {

namespace {

constexpr const char* kPrompt = "ferry> ";

// Reads standard input with read(2) so that Ctrl-C (EINTR) can be told
// apart from the end of input, which std::getline cannot do.
class LineReader {
public:
    LineStatus next(std::string& line)
    {
        for (;;) {
            const auto newline = pending_.find('\n');
            if (newline != std::string::npos) {
                line = pending_.substr(0, newline);
                pending_.erase(0, newline + 1);
                return LineStatus::line;
            }
            char buffer[4096];
            const ssize_t got =
                sys::retry_on_eintr([&] { return ::read(STDIN_FILENO, buffer, sizeof buffer); }, interrupted);
            if (got > 0) {
                pending_.append(buffer, static_cast<std::size_t>(got));
                continue;
            }
            if (got < 0 && errno == EINTR) { // only when interrupted() said so
                clear_interrupt();
                pending_.clear();
                return LineStatus::interrupted;
            }
            if (!pending_.empty()) { // a last line without a newline
                line = std::move(pending_);
                pending_.clear();
                return LineStatus::line;
            }
            return LineStatus::end;
        }
    }

private:
    std::string pending_;
};

// What the user typed, as an error message shows it: printable (a NUL or
// an escape sequence shows as '?', never cutting the line or moving the
// cursor) and at most `most` bytes, so a pasted megabyte is not echoed back.
std::string shown_typed(std::string_view typed, std::size_t most = 64)
{
    if (typed.size() <= most) {
        return printable(typed);
    }
    return printable(typed.substr(0, most)) + "... (" + std::to_string(typed.size()) + " bytes)";
}

// A mistake in what was typed, said plainly: no error code, since nothing
// went wrong between client and server. One line on stderr; `text` may
// quote what was typed, so it goes through shown_typed as a whole too
// (CLI11's messages quote arguments). Under --json it is said as the
// command line says a usage error (one object, bad_request), so that a
// script reading one JSON object per command gets one here too.
void complain(const Output& output, std::string_view text)
{
    const std::string line = shown_typed(text, 400);
    if (output.json()) {
        output.error(Error{ErrorCode::bad_request, line});
        return;
    }
    std::fprintf(stderr, "ferry: %s\n", line.c_str());
    std::fflush(stderr);
}

} // namespace

namespace {

// What a line did: its exit status (status.hpp; kExitUsage when it was no
// valid command), or quit.
struct Outcome {
    int status = kExitOk;
    bool quit = false;
};

// What the shell and batch mode share: one connection, reopened when it
// dropped, and the commands run over it.
class Runner {
public:
    Runner(const Endpoint& endpoint, const ConnectOptions& options, const Output& output, HashKind hash)
        : endpoint_(endpoint), options_(options), output_(output), hash_(hash)
    {
    }

    // The shell's one connection, replaced when it dropped or the server
    // said something unasked (an idle timeout or shutdown notice). nullptr
    // when it cannot be opened, with the error shown and its exit status in
    // `status`.
    Connection* connected(int* status = nullptr)
    {
        if (connection_ && connection_->is_open() && !connection_->has_unsolicited_input()) {
            return &*connection_;
        }
        connection_.reset();
        auto opened = Connection::open(endpoint_, options_);
        if (!opened) {
            output_.error(opened.error());
            if (status != nullptr) {
                *status = exit_status(opened.error().code);
            }
            return nullptr;
        }
        connection_.emplace(std::move(opened.value()));
        return &*connection_;
    }

    // For completion: the entries of the folder `typed` names (as typed,
    // up to its last '/'; "" is the current folder), as words to type: that
    // folder's part, then the name, and '/' after a folder. A listing is
    // kept a few seconds, so that Tab after Tab does not ask again. A
    // failure only means nothing to offer.
    std::vector<std::string> remote_names(const std::string& typed)
    {
        auto resolved = resolve_remote_path(current_, typed.empty() ? "." : typed);
        if (!resolved) {
            return {};
        }
        // A folder part typed as a pattern ("s/[ab]/") is a pattern when the
        // line runs, so the names of a folder really called "[ab]" would be
        // the wrong ones to offer: completed and run, they name files in
        // every folder the pattern matches. Like a typed name pattern, it
        // completes to nothing.
        if (has_wildcard(resolved.value())) {
            return {};
        }
        const std::string folder = unescape_wildcards(resolved.value());
        const auto now = std::chrono::steady_clock::now();
        auto cached = listings_.find(folder);
        if (cached == listings_.end() || now - cached->second.when > kListingKept) {
            Connection* server = connected();
            if (server == nullptr) {
                return {};
            }
            std::vector<FileInfo> files;
            if (server->protocol_version() >= 2) {
                if (auto listed = list_folder(*server, folder, false)) {
                    files = std::move(listed->files);
                }
            } else if (folder.empty()) {
                if (auto listed = list_files(*server)) {
                    files = std::move(listed->files);
                }
            }
            cached = listings_.insert_or_assign(folder, Listing{now, std::move(files)}).first;
        }
        std::vector<std::string> words;
        for (const auto& file : cached->second.files) {
            // As typed: a name's wildcard characters escaped, so that "m[1]"
            // completed and run removes m[1], never the m1 it would match.
            words.push_back(typed + escape_wildcards(file.name) + (is_folder(file) ? "/" : ""));
        }
        return words;
    }

    const Endpoint& endpoint() const { return endpoint_; }

    Outcome execute(const std::string& line)
    {
        // No argument can hold a NUL (argv cannot, nor a name on the wire),
        // and CLI11's messages, C strings, would be cut short at it.
        if (line.find('\0') != std::string::npos) {
            complain(output_, "the line holds a NUL byte, which no command, name or path can hold");
            return Outcome{kExitUsage};
        }
        const auto words = split_words(line);
        if (!words) {
            complain(output_, "a quote is not closed");
            return Outcome{kExitUsage};
        }
        if (words->empty()) {
            return Outcome{};
        }
        // The command line's grammar (command_line.hpp), afresh for each
        // line: CLI11 keeps what it parsed.
        CommandLine grammar(Grammar::shell);
        const std::string& first = words->front();
        if (!first.starts_with("-") && !grammar.is_command(first)) {
            complain(output_, "unknown command '" + shown_typed(first) + "' (try: help)");
            return Outcome{kExitUsage};
        }
        try {
            grammar.parse(*words);
        } catch (const CLI::CallForHelp&) { // COMMAND --help, or --help
            const CLI::App* command = grammar.command();
            std::fputs(grammar.help_text(command == nullptr ? "" : command->get_name(), "").c_str(), stdout);
            std::fflush(stdout);
            return Outcome{};
        } catch (const CLI::ParseError& error) {
            if (const auto operand = grammar.operand_taken_for_option(*words, "")) {
                complain(output_, *operand + " (try: help " + grammar.command()->get_name() + ")");
                return Outcome{kExitUsage};
            }
            const CLI::App* command = grammar.command();
            complain(output_, shown_typed(unguarded(error.what()), 300) + " (try: help" +
                     (command == nullptr ? "" : " " + command->get_name()) + ")");
            return Outcome{kExitUsage};
        }
        if (const CLI::Option* global = grammar.global_given()) {
            complain(output_, global->get_name() + " is given when ferry starts, not to a command in the shell");
            return Outcome{kExitUsage};
        }
        const CLI::App* command = grammar.command();
        if (command == nullptr) { // "--" alone, say
            complain(output_, "no command (try: help)");
            return Outcome{kExitUsage};
        }
        if (command == grammar.quit) {
            return Outcome{kExitOk, true};
        }
        if (command == grammar.help) {
            std::fputs(grammar.help_text(grammar.arguments.help_topic, "").c_str(), stdout);
            std::fflush(stdout);
            return Outcome{};
        }
        if (command == grammar.put) {
            // No other shell expanded this line's local wildcards; expanded
            // before the checks of the command's shape, so that a pattern
            // matching several files is refused with --as as several typed
            // names are, before anything moves.
            auto locals = expand_local_wildcards(grammar.arguments.locals);
            if (!locals) {
                output_.error(locals.error());
                return Outcome{exit_status(locals.error().code)};
            }
            grammar.arguments.locals = std::move(locals.value());
        }
        if (const auto misuse = grammar.misuse()) {
            complain(output_, *misuse);
            return Outcome{kExitUsage};
        }
        const CommandArguments& arguments = grammar.arguments;
        if (command == grammar.print_local_folder) {
            return Outcome{print_local_folder()};
        }
        if (command == grammar.change_local_folder) {
            return Outcome{change_local_folder(arguments.name)};
        }
        if (command == grammar.print_folder) {
            output_.current_folder("/" + current_, false);
            return Outcome{};
        }
        MadeFolders made;
        if (command == grammar.get && !arguments.folder.empty()) {
            made = make_folders(arguments.folder, typed_flag(*words, "-C", "--directory"));
            if (made.error) {
                output_.error(*made.error);
                return Outcome{exit_status(made.error->code)};
            }
        }
        int status = kExitOk;
        Connection* server = connected(&status);
        if (server == nullptr) {
            remove_made_folders(made);
            return Outcome{status};
        }
        listings_.clear(); // a command may change any folder
        const auto optional = [](const std::string& text) {
            return text.empty() ? std::nullopt : std::optional<std::string>(text);
        };
        if (command == grammar.change_folder) {
            status = change_folder(*server, arguments.name);
        } else if (command == grammar.list) {
            status = run_list(*server, output_, arguments.name, arguments.recursive, current_);
        } else if (command == grammar.stat) {
            status = run_stat(*server, output_, arguments.name, current_);
        } else if (command == grammar.stats) {
            status = run_stats(*server, output_);
        } else if (command == grammar.remove) {
            status = run_remove(*server, output_, arguments.names, arguments.recursive, current_);
        } else if (command == grammar.move) {
            status = run_move(*server, output_, arguments.from, arguments.to, arguments.replace, current_);
        } else if (command == grammar.make_folder) {
            status = run_make_folders(*server, output_, arguments.names, arguments.parents, current_);
        } else if (command == grammar.digest) {
            status = run_digests(*server, output_, arguments.names, hash_, current_);
        } else if (command == grammar.sync) {
            status = sync_from_here(*server, grammar);
        } else if (command == grammar.get) {
            status = run_gets(*server, output_, arguments.names,
                              GetPlacement{optional(arguments.output_path), optional(arguments.folder)},
                              grammar.transfer_flags(hash_, 0), current_);
            if (status != kExitOk) {
                remove_made_folders(made);
            }
        } else {
            status = run_puts(*server, output_, arguments.locals,
                              PutPlacement{optional(arguments.as), optional(arguments.folder), current_},
                              grammar.transfer_flags(hash_, 0));
        }
        return Outcome{status};
    }

private:
    // How long a folder's listing answers completion before it is asked again.
    static constexpr std::chrono::seconds kListingKept{5};
    struct Listing {
        std::chrono::steady_clock::time_point when;
        std::vector<FileInfo> files;
    };

    // sync: its :REMOTE_DIR is a path like any other typed here, relative
    // to the current folder unless it starts with '/' (":" alone is the
    // current folder, as `ls` with no argument is).
    int sync_from_here(Connection& server, const CommandLine& grammar)
    {
        auto sync = grammar.sync_arguments(hash_, 0, current_);
        if (!sync) {
            output_.error(sync.error());
            return exit_status(sync.error().code);
        }
        return run_sync(server, options_, output_, sync.value());
    }

    // cd: the folder must be one on the server ('..' is settled here, never sent).
    int change_folder(Connection& server, const std::string& typed)
    {
        // POSIX cd (step 8.b) too refuses a '..' out of what is not a folder.
        auto path = resolve_remote_path_checked(server, current_, typed.empty() ? "/" : typed, false);
        if (!path) {
            output_.error(path.error());
            return exit_status(path.error().code);
        }
        if (!path->empty()) {
            if (auto old = require_folders(server)) {
                output_.error(*old);
                return exit_status(old->code);
            }
            auto looked = look_for_folder(server, unescape_wildcards(path.value()));
            if (looked && looked->kind != FolderLook::Kind::folder) {
                // Named from the root, as the server names paths: named_as_typed shows it.
                looked = Error{ErrorCode::not_a_folder,
                               ferry::quoted(unescape_wildcards(path.value())) + " is not a folder"};
            }
            if (!looked) {
                // cd asks for a folder: the server's stat speaks of a file.
                Error error = missing_named(looked.error(), "no folder named ");
                error = named_as_typed(std::move(error), unescape_wildcards(path.value()), typed, current_);
                output_.error(error);
                return exit_status(error.code);
            }
        }
        current_ = unescape_wildcards(path.value());
        return kExitOk;
    }

    int change_local_folder(const std::string& typed)
    {
        std::string folder = typed;
        if (folder.empty()) {
            const char* home = std::getenv("HOME");
            folder = home != nullptr && *home != '\0' ? home : "/";
        }
        if (::chdir(folder.c_str()) != 0) {
            const Error error = local_error("lcd \"" + folder + "\"", errno);
            output_.error(error);
            return exit_status(error.code);
        }
        return kExitOk;
    }

    int print_local_folder() const
    {
        char here[PATH_MAX];
        if (::getcwd(here, sizeof here) == nullptr) {
            const Error error = local_error("cannot tell the local current folder", errno);
            output_.error(error);
            return exit_status(error.code);
        }
        output_.current_folder(here, true);
        return kExitOk;
    }

    const Endpoint& endpoint_;
    const ConnectOptions& options_;
    const Output& output_;
    HashKind hash_;
    std::optional<Connection> connection_;
    std::string current_; // the remote current folder, from the root ("" is the root)
    std::map<std::string, Listing> listings_;
};

// The first blank-separated word of `text` ("" when there is none).
std::string first_word(std::string_view text)
{
    const auto begin = text.find_first_not_of(" \t");
    if (begin == std::string_view::npos) {
        return {};
    }
    const auto end = text.find_first_of(" \t", begin);
    return std::string(text.substr(begin, end == std::string_view::npos ? end : end - begin));
}

bool is_comment(const std::string& line)
{
    const auto first = line.find_first_not_of(" \t");
    return first != std::string::npos && line[first] == '#';
}

} // namespace

int run_shell(const Endpoint& endpoint, const ConnectOptions& options, const Output& output, HashKind hash)
{
    Runner runner(endpoint, options, output, hash);
    if (Connection* first = runner.connected()) {
        output.note("connected to " + endpoint.to_string() + " (" + first->server_hello().server +
                    "); type help for commands");
    }
    // libedit when a person sits at a terminal; plain reads otherwise (libedit
    // without a terminal for its output would not even show the prompt).
    std::optional<LineEditor> editor;
    std::optional<LineReader> reader;
    if (::isatty(STDIN_FILENO) == 1 && ::isatty(STDOUT_FILENO) == 1) {
        editor.emplace(kPrompt, CommandLine(Grammar::shell).command_names(), [&runner](const std::string& folder) { return runner.remote_names(folder); });
    } else {
        reader.emplace();
    }
    std::string line;
    for (;;) {
        LineStatus status = LineStatus::end;
        if (editor) {
            status = editor->next(line);
        } else {
            std::fputs(kPrompt, stdout);
            std::fflush(stdout);
            status = reader->next(line);
        }
        if (status == LineStatus::end) {
            std::fputs("\n", stdout);
            return 0;
        }
        if (status == LineStatus::interrupted) {
            std::fputs("\n", stdout);
            continue;
        }
        if (is_comment(line)) {
            continue;
        }
        if (runner.execute(line).quit) {
            return 0;
        }
        clear_interrupt(); // a Ctrl-C that stopped the transfer is spent
    }
}

int run_batch(const Endpoint& endpoint, const ConnectOptions& options, const Output& output, HashKind hash)
{
    Runner runner(endpoint, options, output, hash);
    const CommandLine grammar(Grammar::shell);
    LineReader reader;
    std::string line;
    for (;;) {
        const LineStatus status = reader.next(line);
        if (status == LineStatus::end) {
            return 0;
        }
        if (status == LineStatus::interrupted) {
            return kExitInterrupted;
        }
        if (is_comment(line)) {
            continue;
        }
        // sftp's rule: "-get a.txt" may fail without ending the batch. Only
        // a command's name may follow the dash: "--hash x" or "-s HOST" is
        // an option, which the shell refuses (and a refusal ends the batch).
        const auto first = line.find_first_not_of(" \t");
        const bool may_fail = first != std::string::npos && line[first] == '-' &&
                              grammar.is_command(first_word(std::string_view(line).substr(first + 1)));
        if (may_fail) {
            line.erase(0, first + 1);
        }
        const Outcome outcome = runner.execute(line);
        if (interrupted()) {
            return kExitInterrupted;
        }
        if (outcome.quit) {
            return kExitOk;
        }
        if (!may_fail && outcome.status != kExitOk) {
            return outcome.status;
        }
    }
}

} // namespace ferry::client
