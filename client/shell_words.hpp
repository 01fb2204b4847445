// How the shell reads a line into words, and how completion writes a name
// back into a line so that reading gives the name again. One rule for both:
// blanks separate words; 'single quotes' keep every character; "double
// quotes" keep every character but \, which takes the next one as it is;
// outside quotes \ takes the next character as it is (so my\ file.txt is
// one word). Nothing else is special: no globbing, no variables, so a
// remote name like *.txt or $HOME means itself (the reason this is not
// wordexp(3), which would expand both against the local machine).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::client {

// The words of `line`; nullopt when a quote is left open.
std::optional<std::vector<std::string>> split_words(std::string_view line);

// `word` in single quotes, each ' in it closed, escaped and reopened
// ('\''): one word that split_words, and a POSIX shell (XCU 2.2.2), read
// back as `word` whatever it holds.
std::string single_quoted(std::string_view word);

// The word being typed at the end of an unfinished line (what Tab
// completes): empty when the line ends in a blank.
struct PartialWord {
    std::vector<std::string> before; // the finished words in front of it
    std::size_t start = 0;           // where its raw text begins in the line
    std::string value;               // what it reads as so far
    char quote = 0;                  // the quote still open at the end, or 0
    bool escaped = false;            // the line ends in a lone backslash
};
PartialWord partial_word(std::string_view line);

// Raw text that, typed after `word`, makes it read as word.value + rest;
// with `finish`, also closes the open quote.
std::string continue_word(const PartialWord& word, std::string_view rest, bool finish);

} // namespace ferry::client
