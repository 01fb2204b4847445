#include "shell.hpp"

#include "commands.hpp"
#include "interrupt.hpp"
#include "line_editor.hpp"
#include "operations.hpp"
#include "transfers.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace ferry::client {

namespace {

constexpr const char* kPrompt = "ferry> ";

constexpr const char* kHelp =
    "Commands:\n"
    "  list                                        the server's files: size, date, name\n"
    "  stat NAME                                   one file's size and date\n"
    "  get [--no-resume] NAME... [-o LOCAL | -C DIR]  download to ./NAME, to LOCAL (one NAME) or into DIR\n"
    "  put [--no-resume] LOCAL... [--as NAME]         upload each LOCAL under its file name (or NAME)\n"
    "  stats                                       the server's counters since it started\n"
    "  help                                        this list\n"
    "  quit                                        leave (also exit, or Ctrl-D)\n"
    "Quote names with blanks: get \"my file.txt\". Tab completes commands and names; Ctrl-C stops a\n"
    "transfer.\n";

const std::vector<std::string> kCommands{"list", "stat", "get", "put", "stats", "help", "quit"};

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
            const ssize_t got = ::read(STDIN_FILENO, buffer, sizeof buffer);
            if (got > 0) {
                pending_.append(buffer, static_cast<std::size_t>(got));
                continue;
            }
            if (got < 0 && errno == EINTR) {
                if (interrupted()) {
                    clear_interrupt();
                    pending_.clear();
                    return LineStatus::interrupted;
                }
                continue;
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
    std::optional<std::string> as;     // put --as
    std::vector<std::string> positional;
};

// Takes the options a command allows (each with its value) and "--" out of
// the words after the command.
std::optional<Arguments> parse_arguments(const std::vector<std::string>& words, const Output& output)
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
        } else if (!options_done && command == "put" && word == "--as") {
            takes_value = &arguments.as;
        }
        if (takes_value != nullptr) {
            if (i + 1 == words.size()) {
                output.error(Error{ErrorCode::bad_request, word + " needs a value (type help)"});
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
            output.error(Error{ErrorCode::bad_request, "unknown option " + word + " (type help)"});
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

std::optional<std::vector<std::string>> split_words(std::string_view line)
{
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    char quote = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (quote != 0) {
            if (c == quote) {
                quote = 0;
            } else if (c == '\\' && quote == '"' && i + 1 < line.size()) {
                word += line[++i];
            } else {
                word += c;
            }
        } else if (c == '"' || c == '\'') {
            quote = c;
            in_word = true;
        } else if (c == '\\' && i + 1 < line.size()) {
            word += line[++i];
            in_word = true;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            if (in_word) {
                words.push_back(std::move(word));
                word.clear();
                in_word = false;
            }
        } else {
            word += c;
            in_word = true;
        }
    }
    if (quote != 0) {
        return std::nullopt;
    }
    if (in_word) {
        words.push_back(std::move(word));
    }
    return words;
}

int run_shell(const Endpoint& endpoint, const ConnectOptions& options, const Output& output, HashKind hash)
{
    std::optional<Connection> connection;
    // The shell's one connection, replaced when it dropped or the server
    // said something unasked (an idle timeout or shutdown notice).
    const auto connected = [&]() -> Connection* {
        if (connection && connection->is_open() && !connection->has_unsolicited_input()) {
            return &*connection;
        }
        connection.reset();
        auto opened = Connection::open(endpoint, options);
        if (!opened) {
            output.error(opened.error());
            return nullptr;
        }
        connection.emplace(std::move(opened.value()));
        return &*connection;
    };
    // For completion: a failure only means nothing to offer.
    const auto remote_names = [&]() {
        std::vector<std::string> names;
        if (Connection* server = connected()) {
            if (auto listed = list_files(*server)) {
                for (auto& file : listed->files) {
                    names.push_back(std::move(file.name));
                }
            }
        }
        return names;
    };

    if (Connection* first = connected()) {
        output.note("connected to " + endpoint.to_string() + " (" + first->server_hello().server +
                    "); type help for commands");
    }
    // libedit when a person sits at a terminal; plain reads otherwise (libedit
    // without a terminal for its output would not even show the prompt).
    std::optional<LineEditor> editor;
    std::optional<LineReader> reader;
    if (::isatty(STDIN_FILENO) == 1 && ::isatty(STDOUT_FILENO) == 1) {
        editor.emplace(kPrompt, kCommands, remote_names);
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
        const auto words = split_words(line);
        if (!words) {
            output.error(Error{ErrorCode::bad_request, "a quote is not closed"});
            continue;
        }
        if (words->empty()) {
            continue;
        }
        const std::string& command = words->front();
        if (command == "quit" || command == "exit") {
            return 0;
        }
        if (command == "help" || command == "?") {
            std::fputs(kHelp, stdout);
            continue;
        }
        if (command != "list" && command != "ls" && command != "stat" && command != "stats" && command != "get" &&
            command != "put") {
            output.error(Error{ErrorCode::bad_request, "unknown command \"" + command + "\" (type help)"});
            continue;
        }
        const auto arguments = parse_arguments(*words, output);
        if (!arguments) {
            continue;
        }
        if (const auto usage = misuse(command, *arguments)) {
            output.error(Error{ErrorCode::bad_request, "usage: " + *usage});
            continue;
        }
        Connection* server = connected();
        if (server == nullptr) {
            continue;
        }
        if (command == "list" || command == "ls") {
            run_list(*server, output);
        } else if (command == "stat") {
            run_stat(*server, output, arguments->positional[0]);
        } else if (command == "stats") {
            run_stats(*server, output);
        } else if (command == "get") {
            run_gets(*server, output, arguments->positional, GetPlacement{arguments->output, arguments->folder},
                     arguments->resume, hash);
        } else {
            run_puts(*server, output, arguments->positional, arguments->as, arguments->resume, hash);
            if (editor) {
                editor->forget_names(); // the folder changed
            }
        }
        clear_interrupt(); // a Ctrl-C that stopped the transfer is spent
    }
}

} // namespace ferry::client
