#include "shell.hpp"

#include "commands.hpp"
#include "interrupt.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace ferry::client {

namespace {

constexpr const char* kPrompt = "ferry> ";

constexpr const char* kHelp =
    "Commands:\n"
    "  list                          the server's files: size, date, name\n"
    "  stat NAME                     one file's size and date\n"
    "  get [--resume] NAME [LOCAL]   download NAME to ./NAME, to LOCAL, or into folder LOCAL\n"
    "  put [--resume] LOCAL [NAME]   upload LOCAL as NAME (default: its file name)\n"
    "  help                          this list\n"
    "  quit                          leave (also exit, or Ctrl-D)\n"
    "Quote names with blanks: get \"my file.txt\". Ctrl-C stops a transfer.\n";

enum class LineStatus { line, end, interrupted };

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
    bool resume = false;
    std::vector<std::string> positional;
};

// Takes "--resume" (where allowed) and "--" out of the words after the command.
std::optional<Arguments> parse_arguments(const std::vector<std::string>& words, bool allow_resume, const Output& output)
{
    Arguments arguments;
    bool options_done = false;
    for (std::size_t i = 1; i < words.size(); ++i) {
        const std::string& word = words[i];
        if (!options_done && word == "--") {
            options_done = true;
        } else if (!options_done && allow_resume && word == "--resume") {
            arguments.resume = true;
        } else if (!options_done && word.size() > 1 && word.front() == '-') {
            output.error(Error{ErrorCode::bad_request, "unknown option " + word + " (type help)"});
            return std::nullopt;
        } else {
            arguments.positional.push_back(word);
        }
    }
    return arguments;
}

bool count_ok(const Arguments& arguments, std::size_t least, std::size_t most, const std::string& usage,
              const Output& output)
{
    if (arguments.positional.size() < least || arguments.positional.size() > most) {
        output.error(Error{ErrorCode::bad_request, "usage: " + usage});
        return false;
    }
    return true;
}

std::optional<std::string> optional_at(const Arguments& arguments, std::size_t index)
{
    if (index < arguments.positional.size()) {
        return arguments.positional[index];
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

int run_shell(const Endpoint& endpoint, const Timeouts& timeouts, const Output& output)
{
    std::optional<Connection> connection;
    // The shell's one connection, replaced when it dropped or the server
    // said something unasked (an idle timeout or shutdown notice).
    const auto connected = [&]() -> Connection* {
        if (connection && connection->is_open() && !connection->has_unsolicited_input()) {
            return &*connection;
        }
        connection.reset();
        auto opened = Connection::open(endpoint, timeouts);
        if (!opened) {
            output.error(opened.error());
            return nullptr;
        }
        connection.emplace(std::move(opened.value()));
        return &*connection;
    };

    if (Connection* first = connected()) {
        output.note("connected to " + endpoint.to_string() + " (" + first->server_hello().server +
                    "); type help for commands");
    }
    LineReader reader;
    std::string line;
    for (;;) {
        std::fputs(kPrompt, stdout);
        std::fflush(stdout);
        const LineStatus status = reader.next(line);
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
        const bool transfer = command == "get" || command == "put";
        if (command != "list" && command != "ls" && command != "stat" && !transfer) {
            output.error(Error{ErrorCode::bad_request, "unknown command \"" + command + "\" (type help)"});
            continue;
        }
        const auto arguments = parse_arguments(*words, transfer, output);
        if (!arguments) {
            continue;
        }
        if ((command == "list" || command == "ls") && !count_ok(*arguments, 0, 0, "list", output)) {
            continue;
        }
        if (command == "stat" && !count_ok(*arguments, 1, 1, "stat NAME", output)) {
            continue;
        }
        if (command == "get" && !count_ok(*arguments, 1, 2, "get [--resume] NAME [LOCAL]", output)) {
            continue;
        }
        if (command == "put" && !count_ok(*arguments, 1, 2, "put [--resume] LOCAL [NAME]", output)) {
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
        } else if (command == "get") {
            run_get(*server, output, arguments->positional[0], optional_at(*arguments, 1), arguments->resume);
        } else {
            run_put(*server, output, arguments->positional[0], optional_at(*arguments, 1), arguments->resume);
        }
        clear_interrupt(); // a Ctrl-C that stopped the transfer is spent
    }
}

} // namespace ferry::client
