// The shell's input on a terminal, through libedit: line editing, a history
// kept across sessions ($XDG_STATE_HOME/ferry/history, else ~/.ferry_history)
// and tab completion of commands and of remote file names. Remote names are
// asked of the server when a completion needs them and kept only while one
// line is being typed: any command (a put here, another client's anywhere)
// may change the folder, so every new line asks again.
//
// A completed name is written with the shell's quoting (shell_words.hpp):
// my\ file.txt, or inside the quote the user opened, "my file.txt".
//
// libedit keeps its state in globals, so there is at most one LineEditor.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
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

    // What Tab does at `cursor` in `line`: replace line[start, cursor) with
    // `text` (the word as typed, continued by the longest completion all
    // candidates share, quoted; for a single candidate also the closing
    // quote and a blank, or nothing after a folder's '/'). `names` are the
    // candidates as they are, to list when there are several. nullopt: none.
    struct Completion {
        std::size_t start = 0;
        std::string text;
        std::vector<std::string> names;
    };
    std::optional<Completion> complete(const std::string& line, std::size_t cursor);

private:
    // Candidates for a word that reads `value` after the words `before`: a
    // command name for the first word; a remote name for get's and stat's
    // NAME and for --as; a local path for put's files, -o and -C.
    std::vector<std::string> candidates(const std::vector<std::string>& before, const std::string& value);
    const std::vector<std::string>& remote_names();

    std::string prompt_;
    std::vector<std::string> commands_;
    NameSource source_;
    std::vector<std::string> names_;
    bool names_loaded_ = false;
    std::string history_;
};

} // namespace ferry::client
