#include "line_editor.hpp"

#include "interrupt.hpp"
#include "local_files.hpp"
#include "shell_words.hpp"

#include <dirent.h>
#include <editline/readline.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ferry::client {

namespace {

constexpr int kHistoryLines = 1000;

// libedit's callbacks take no context: the one editor.
LineEditor* g_editor = nullptr;

char* copy(const std::string& text)
{
    return ::strdup(text.c_str()); // libedit frees what it is given
}

// libedit deletes line[start, end) (its own idea of the word, which knows
// nothing of our quotes) and inserts matches[0]; with one match it appends
// rl_completion_append_character, else it lists matches[1...] on a second
// Tab. So matches[0] is our replacement cut or widened to libedit's start,
// and the blank or closing quote is already in it.
char** complete_with_quotes(const char* /*text*/, int start, int end)
{
    rl_attempted_completion_over = 1; // never libedit's own guesses
    rl_completion_append_character = '\0';
    const std::string line = rl_line_buffer != nullptr ? rl_line_buffer : "";
    const auto cursor = std::min(static_cast<std::size_t>(std::max(end, 0)), line.size());
    const auto from = std::min(static_cast<std::size_t>(std::max(start, 0)), cursor);
    const auto completion = g_editor->complete(line, cursor);
    if (!completion) {
        return nullptr;
    }
    std::string first;
    if (from >= completion->start) {
        first = completion->text.substr(std::min(from - completion->start, completion->text.size()));
    } else {
        first = line.substr(from, completion->start - from) + completion->text;
    }
    const std::size_t listed = completion->names.size() > 1 ? completion->names.size() : 0;
    // One spare NULL: libedit reads matches[2] even when matches[1] is NULL.
    auto** matches = static_cast<char**>(std::calloc(listed + 3, sizeof(char*)));
    if (matches == nullptr) {
        return nullptr;
    }
    matches[0] = copy(first);
    for (std::size_t i = 0; i < listed; ++i) {
        matches[i + 1] = copy(completion->names[i]);
    }
    return matches;
}

// Local paths starting with `text`: folders end in '/', hidden entries
// show only when asked for with a leading dot.
std::vector<std::string> local_paths(const std::string& text)
{
    const auto slash = text.rfind('/');
    const std::string folder = slash == std::string::npos ? "" : text.substr(0, slash + 1);
    const std::string prefix = slash == std::string::npos ? text : text.substr(slash + 1);
    std::vector<std::string> paths;
    DIR* dir = ::opendir(folder.empty() ? "." : folder.c_str());
    if (dir == nullptr) {
        return paths;
    }
    while (const dirent* entry = ::readdir(dir)) {
        const std::string name = entry->d_name;
        if (name == "." || name == ".." || !name.starts_with(prefix) ||
            (name.front() == '.' && !prefix.starts_with('.'))) {
            continue;
        }
        const std::string path = folder + name;
        paths.push_back(is_directory(path) ? path + "/" : path);
    }
    ::closedir(dir);
    std::sort(paths.begin(), paths.end());
    return paths;
}

bool make_folder(const std::string& path)
{
    return ::mkdir(path.c_str(), 0700) == 0 || errno == EEXIST;
}

} // namespace

LineEditor::LineEditor(std::string prompt, std::vector<std::string> commands, NameSource remote_names)
    : prompt_(std::move(prompt)), commands_(std::move(commands)), source_(std::move(remote_names)),
      history_(history_path())
{
    g_editor = this;
    // Ctrl-C stays ours (interrupt.hpp): libedit must not catch it and
    // re-raise it at our whole process group.
    rl_catch_signals = 0;
    rl_readline_name = "ferry";
    rl_attempted_completion_function = complete_with_quotes;
    using_history();
    stifle_history(kHistoryLines);
    if (!history_.empty()) {
        read_history(history_.c_str()); // none yet is fine
    }
}

LineEditor::~LineEditor()
{
    rl_attempted_completion_function = nullptr;
    g_editor = nullptr;
}

std::string LineEditor::history_path()
{
    const char* state = std::getenv("XDG_STATE_HOME");
    if (state != nullptr && *state == '/') {
        const std::string folder = std::string(state) + "/ferry";
        if (make_folder(state) && make_folder(folder)) {
            return folder + "/history";
        }
        return {};
    }
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0') {
        return {};
    }
    return std::string(home) + "/.ferry_history";
}

LineStatus LineEditor::next(std::string& line)
{
    char* read = ::readline(prompt_.c_str());
    if (read == nullptr) {
        if (interrupted()) {
            clear_interrupt();
            return LineStatus::interrupted;
        }
        return LineStatus::end;
    }
    line = read;
    std::free(read);
    if (line.find_first_not_of(" \t") != std::string::npos) {
        add_history(line.c_str());
        if (!history_.empty()) {
            // Written at once, so that a killed shell keeps what was typed.
            write_history(history_.c_str());
        }
    }
    return LineStatus::line;
}

std::vector<std::string> LineEditor::candidates(const std::vector<std::string>& before, const std::string& value)
{
    auto found = names_for(before, value);
    // A name that begins with '-' (a server may list "-o.bashrc") would be
    // read as an option where it lands: "get a.txt -o.bashrc" writes a.txt
    // onto ./.bashrc. Such names are offered only after a "--", past which
    // every word is a name (ferry.1).
    if (std::find(before.begin(), before.end(), "--") == before.end()) {
        std::erase_if(found, [](const std::string& name) { return name.starts_with('-'); });
    }
    return found;
}

std::vector<std::string> LineEditor::names_for(const std::vector<std::string>& before, const std::string& value)
{
    std::vector<std::string> remote;
    const std::vector<std::string>* pool = nullptr;
    if (before.empty()) {
        pool = &commands_;
    } else {
        const std::string& command = before.front();
        const std::string& previous = before.back();
        const bool put_target = command == "put" && (previous == "--as" || previous == "-C" || previous == "--directory");
        static const std::vector<std::string> kRemoteCommands{"get", "stat", "list", "ls", "rm", "mv", "rename",
                                                              "mkdir", "digest", "cd"};
        if (!put_target && (previous == "-o" || previous == "--output" || previous == "-C" || previous == "--directory")) {
            return local_paths(value);
        }
        if (put_target ||
            std::find(kRemoteCommands.begin(), kRemoteCommands.end(), command) != kRemoteCommands.end()) {
            const auto slash = value.rfind('/');
            remote = source_(slash == std::string::npos ? std::string() : value.substr(0, slash + 1));
            pool = &remote;
        } else if (command == "put" || command == "lcd") {
            return local_paths(value);
        } else {
            return {};
        }
    }
    std::vector<std::string> matches;
    for (const auto& candidate : *pool) {
        if (candidate.starts_with(value)) {
            matches.push_back(candidate);
        }
    }
    return matches;
}

std::optional<LineEditor::Completion> LineEditor::complete(const std::string& line, std::size_t cursor)
{
    const std::string_view typed = std::string_view(line).substr(0, std::min(cursor, line.size()));
    PartialWord word = partial_word(typed);
    const auto names = candidates(word.before, word.value);
    if (names.empty()) {
        return std::nullopt;
    }
    // The longest start all candidates share.
    std::string shared = names.front();
    for (const auto& name : names) {
        std::size_t same = 0;
        while (same < shared.size() && same < name.size() && shared[same] == name[same]) {
            ++same;
        }
        shared.resize(same);
    }
    const bool single = names.size() == 1;
    Completion completion;
    completion.start = word.start;
    completion.text = std::string(typed.substr(word.start));
    const std::string rest = shared.substr(word.value.size());
    if (word.escaped && rest.empty() && single) {
        // A lone backslash at the end escapes nothing that is left: drop it
        // rather than let it escape the closing quote or blank.
        completion.text.pop_back();
        word.escaped = false;
    }
    // A folder ends in '/': the next component follows, so no closing quote
    // and no blank yet.
    const bool finished = single && !shared.ends_with('/');
    completion.text += continue_word(word, rest, finished);
    if (finished) {
        completion.text += ' ';
    }
    for (const auto& name : names) {
        completion.names.push_back(continue_word(PartialWord{}, name, false));
    }
    return completion;
}

} // namespace ferry::client
