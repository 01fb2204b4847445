// The shell's input on a terminal, through libedit: line editing, a history
// kept across sessions ($XDG_STATE_HOME/ferry/history, else ~/.ferry_history)
// and tab completion of commands and of remote file names, which are asked
// of the server only when a completion needs them and then kept until
// forget_names() (after an upload changed the folder).
//
// libedit keeps its state in globals, so there is at most one LineEditor.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace ferry::client {

enum class LineStatus { line, end, interrupted };

class LineEditor {
public:
    using NameSource = std::function<std::vector<std::string>()>;

    LineEditor(std::string prompt, std::vector<std::string> commands, NameSource remote_names);
    ~LineEditor();
    LineEditor(const LineEditor&) = delete;
    LineEditor& operator=(const LineEditor&) = delete;

    // One line, without its newline; non-blank lines go into the history.
    LineStatus next(std::string& line);
    void forget_names() { names_loaded_ = false; }

    // Where the history lives; empty when there is no home to keep it in.
    static std::string history_path();
    // Completions of `text`, the word at `start` in `line`: a command name
    // for the first word; a remote name for get's and stat's NAME and for
    // --as; a local path for put's files, -o and -C.
    std::vector<std::string> candidates(const std::string& line, std::size_t start, const std::string& text);

private:
    const std::vector<std::string>& remote_names();

    std::string prompt_;
    std::vector<std::string> commands_;
    NameSource source_;
    std::vector<std::string> names_;
    bool names_loaded_ = false;
    std::string history_;
};

} // namespace ferry::client
