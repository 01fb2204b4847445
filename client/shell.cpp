#include "shell.hpp"

#include "commands.hpp"
#include "interrupt.hpp"
#include "line_editor.hpp"
#include "operations.hpp"
#include "posix_io.hpp"
#include "status.hpp"
#include "transfers.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace ferry::client {

namespace {

constexpr const char* kPrompt = "ferry> ";

// Every command and alias the shell takes, within 80 columns.
constexpr const char* kHelp =
    "Commands:\n"
    "  list, ls                   the server's files: size, date, name\n"
    "  stat NAME                  one file's size and date\n"
    "  get [--no-resume] NAME... [-o LOCAL | -C DIR]\n"
    "                             download to ./NAME, to LOCAL (one NAME) or into\n"
    "                             DIR (created when missing)\n"
    "  put [--no-resume] LOCAL... [--as NAME]\n"
    "                             upload each LOCAL under its file name (or NAME)\n"
    "  stats                      the server's counters since it started\n"
    "  help, ?                    this list\n"
    "  quit, exit                 leave (also Ctrl-D)\n"
    "Quote names with blanks: get \"my file.txt\" or get my\\ file.txt; Tab completes\n"
    "commands and names, quoted. Ctrl-C stops a transfer. Lines starting with #\n"
    "are comments. From a script (standard input not a terminal) the first\n"
    "command that fails ends ferry; a leading - (-get a.txt) lets it fail.\n";

const std::vector<std::string> kCommands{"list", "ls", "stat", "stats", "get", "put", "help", "quit", "exit"};

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

struct Arguments {
    bool resume = true; // continue what an interrupted transfer left, when sound
    std::optional<std::string> output; // get -o
    std::optional<std::string> folder; // get -C
    std::string folder_flag;           // -C or --directory, as typed
    std::optional<std::string> as;     // put --as
    std::vector<std::string> positional;
};

// A mistake in what was typed, said plainly: no error code, since nothing
// went wrong between client and server.
void complain(const std::string& text)
{
    std::fprintf(stderr, "ferry: %s\n", text.c_str());
    std::fflush(stderr);
}

// Takes the options a command allows (each with its value) and "--" out of
// the words after the command.
std::optional<Arguments> parse_arguments(const std::vector<std::string>& words)
{
    const std::string& command = words.front();
    const bool transfer = command == "get" || command == "put";
    Arguments arguments;
    bool options_done = false;
    for (std::size_t i = 1; i < words.size(); ++i) {
        const std::string& word = words[i];
        std::optional<std::string>* takes_value = nullptr;
        if (!options_done && command == "get" && (word == "-o" || word == "--output")) {
            takes_value = &arguments.output;
        } else if (!options_done && command == "get" && (word == "-C" || word == "--directory")) {
            takes_value = &arguments.folder;
            arguments.folder_flag = word;
        } else if (!options_done && command == "put" && word == "--as") {
            takes_value = &arguments.as;
        }
        if (takes_value != nullptr) {
            if (i + 1 == words.size()) {
                complain(word + " needs a value (try: help)");
                return std::nullopt;
            }
            *takes_value = words[++i];
        } else if (!options_done && word == "--") {
            options_done = true;
        } else if (!options_done && transfer && word == "--resume") {
            arguments.resume = true;
        } else if (!options_done && transfer && word == "--no-resume") {
            arguments.resume = false;
        } else if (!options_done && word.size() > 1 && word.front() == '-') {
            complain("unknown option '" + word + "' for " + command + " (try: help)");
            return std::nullopt;
        } else {
            arguments.positional.push_back(word);
        }
    }
    return arguments;
}

// The rules the command line enforces too; a usage line when broken.
std::optional<std::string> misuse(const std::string& command, const Arguments& arguments)
{
    const std::size_t count = arguments.positional.size();
    if ((command == "list" || command == "ls" || command == "stats") && count != 0) {
        return command;
    }
    if (command == "stat" && count != 1) {
        return "stat NAME";
    }
    const std::string get_usage = "get [--no-resume] NAME... [-o LOCAL | -C DIR]";
    if (command == "get" && (count == 0 || (arguments.output && arguments.folder) || (arguments.output && count > 1))) {
        return get_usage;
    }
    if (command == "get" && arguments.output == "-") {
        return get_usage + " (-o - is for the command line)";
    }
    if (command == "put" && (count == 0 || (arguments.as && count > 1))) {
        return "put [--no-resume] LOCAL... [--as NAME]";
    }
    return std::nullopt;
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

    // For completion: a failure only means nothing to offer.
    std::vector<std::string> remote_names()
    {
        std::vector<std::string> names;
        if (Connection* server = connected()) {
            if (auto listed = list_files(*server)) {
                for (auto& file : listed->files) {
                    names.push_back(std::move(file.name));
                }
            }
        }
        return names;
    }

    const Endpoint& endpoint() const { return endpoint_; }

    Outcome execute(const std::string& line)
    {
        const auto words = split_words(line);
        if (!words) {
            complain("a quote is not closed");
            return Outcome{kExitUsage};
        }
        if (words->empty()) {
            return Outcome{};
        }
        const std::string& command = words->front();
        if (command == "quit" || command == "exit") {
            return Outcome{kExitOk, true};
        }
        if (command == "help" || command == "?") {
            std::fputs(kHelp, stdout);
            std::fflush(stdout);
            return Outcome{};
        }
        if (command != "list" && command != "ls" && command != "stat" && command != "stats" && command != "get" &&
            command != "put") {
            complain("unknown command '" + command + "' (try: help)");
            return Outcome{kExitUsage};
        }
        const auto arguments = parse_arguments(*words);
        if (!arguments) {
            return Outcome{kExitUsage};
        }
        if (const auto usage = misuse(command, *arguments)) {
            complain("usage: " + *usage);
            return Outcome{kExitUsage};
        }
        if (arguments->folder) {
            if (const auto failed = make_folders(*arguments->folder, arguments->folder_flag)) {
                output_.error(*failed);
                return Outcome{exit_status(failed->code)};
            }
        }
        int status = kExitOk;
        Connection* server = connected(&status);
        if (server == nullptr) {
            return Outcome{status};
        }
        if (command == "list" || command == "ls") {
            status = run_list(*server, output_);
        } else if (command == "stat") {
            status = run_stat(*server, output_, arguments->positional[0]);
        } else if (command == "stats") {
            status = run_stats(*server, output_);
        } else if (command == "get") {
            status = run_gets(*server, output_, arguments->positional,
                              GetPlacement{arguments->output, arguments->folder}, arguments->resume, hash_);
        } else {
            status = run_puts(*server, output_, arguments->positional, arguments->as, arguments->resume, hash_);
        }
        return Outcome{status};
    }

private:
    const Endpoint& endpoint_;
    const ConnectOptions& options_;
    const Output& output_;
    HashKind hash_;
    std::optional<Connection> connection_;
};

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
        editor.emplace(kPrompt, kCommands, [&runner] { return runner.remote_names(); });
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
        // sftp's rule: "-get a.txt" may fail without ending the batch.
        const auto first = line.find_first_not_of(" \t");
        const bool may_fail = first != std::string::npos && line[first] == '-';
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
