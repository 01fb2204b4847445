// The shell's input on a terminal, through libedit: line editing, a history
// kept across sessions ($XDG_STATE_HOME/ferry/history, else ~/.ferry_history)
// and tab completion of commands and of remote paths. The entries of the
// remote folder being completed (the word up to its last '/') are asked of
// the shell when a completion needs them; the shell keeps a listing only
// briefly, since any command (a put here, another client's anywhere) may
// change the folder.
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
    // The words that complete a remote path in the folder `typed` (the
    // word as typed up to and with its last '/'; "" for the current folder):
    // `typed` followed by each entry's name, and '/' after a folder's.
    using NameSource = std::function<std::vector<std::string>(const std::string& typed)>;

    LineEditor(std::string prompt, std::vector<std::string> commands, NameSource remote_names);
    ~LineEditor();
    LineEditor(const LineEditor&) = delete;
    LineEditor& operator=(const LineEditor&) = delete;

    // One line, without its newline; non-blank lines go into the history.
    LineStatus next(std::string& line);

    // Where the history lives; empty when there is no home to keep it in.
    static std::string history_path();

    // What Tab does at `cursor` in `line`: replace line[start, cursor) with
    // `text` (the word as typed, continued by the longest completion all
    // candidates share, quoted; for a single candidate also the closing
    // quote and a blank, or nothing after a folder's '/'). `names`: the
    // candidates, to list when there are several. nullopt: none.
    struct Completion {
        std::size_t start = 0;
        std::string text;
        // The candidates as they are listed on a second Tab: each the
        // whole word to type for it (continue_word from an empty word), so
        // that typing what is listed names what was listed ("m\\[1\\]",
        // which the shell reads as the escaped name m\[1\], never the
        // pattern m[1] that matches m1: a new user's trial, round 72).
        std::vector<std::string> names;
    };
    std::optional<Completion> complete(const std::string& line, std::size_t cursor);

private:
    // Candidates for a word that reads `value` after the words `before`: a
    // command name for the first word; a remote path for the PATHs of get,
    // stat, list, rm, mv, mkdir, digest and cd, and for put's --as and -C;
    // a local path for put's files, get's -o and -C, and lcd.
    std::vector<std::string> candidates(const std::vector<std::string>& before, const std::string& value);
    // candidates() before its rule on names that begin with '-'.
    std::vector<std::string> names_for(const std::vector<std::string>& before, const std::string& value);

    std::string prompt_;
    std::vector<std::string> commands_;
    NameSource source_;
    std::string history_;
};

} // namespace ferry::client
