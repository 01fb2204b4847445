#include "line_editor.hpp"

#include "interrupt.hpp"
#include "local_files.hpp"
#include "shell.hpp"

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

// libedit's callbacks take no context: the one editor, and the matches of
// the completion in progress.
LineEditor* g_editor = nullptr;
std::vector<std::string> g_matches;

char* next_match(const char* /*text*/, int state)
{
    static std::size_t index = 0;
    if (state == 0) {
        index = 0;
    }
    if (index >= g_matches.size()) {
        return nullptr;
    }
    return ::strdup(g_matches[index++].c_str()); // libedit frees it
}

char** complete(const char* text, int start, int /*end*/)
{
    rl_attempted_completion_over = 1; // never libedit's own guesses
    g_matches =
        g_editor->candidates(rl_line_buffer != nullptr ? rl_line_buffer : "", static_cast<std::size_t>(start), text);
    // A folder is completed with its '/', ready for the next component.
    const bool one_folder = g_matches.size() == 1 && g_matches.front().ends_with('/');
    rl_completion_append_character = one_folder ? '\0' : ' ';
    if (g_matches.empty()) {
        return nullptr;
    }
    return rl_completion_matches(text, next_match);
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
    rl_attempted_completion_function = complete;
    rl_completer_quote_characters = "\"'";
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
    g_matches.clear();
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

const std::vector<std::string>& LineEditor::remote_names()
{
    if (!names_loaded_) {
        names_ = source_();
        names_loaded_ = true;
    }
    return names_;
}

std::vector<std::string> LineEditor::candidates(const std::string& line, std::size_t start, const std::string& text)
{
    const auto before = split_words(std::string_view(line).substr(0, std::min(start, line.size())));
    if (!before) {
        return {};
    }
    const std::vector<std::string>* pool = nullptr;
    if (before->empty()) {
        pool = &commands_;
    } else {
        const std::string& command = before->front();
        const std::string& previous = before->back();
        if (previous == "-o" || previous == "-C") {
            return local_paths(text);
        }
        if (command == "get" || command == "stat" || (command == "put" && previous == "--as")) {
            pool = &remote_names();
        } else if (command == "put") {
            return local_paths(text);
        } else {
            return {};
        }
    }
    std::vector<std::string> matches;
    for (const auto& candidate : *pool) {
        if (candidate.starts_with(text)) {
            matches.push_back(candidate);
        }
    }
    return matches;
}

} // namespace ferry::client
