#include "shell_words.hpp"

namespace ferry::client {

namespace {

bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

// Characters the rule gives a meaning outside quotes.
bool special_outside(char c)
{
    return is_blank(c) || c == '"' || c == '\'' || c == '\\';
}

// One pass over the line; split_words and partial_word read its end state.
struct Scan {
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    std::size_t word_start = 0;
    char quote = 0;
    bool escaped = false;
};

Scan scan(std::string_view line)
{
    Scan s;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (s.escaped) {
            s.word += c;
            s.escaped = false;
            continue;
        }
        if (!s.in_word && !is_blank(c)) {
            s.in_word = true;
            s.word_start = i;
        }
        if (s.quote == '\'') {
            if (c == '\'') {
                s.quote = 0;
            } else {
                s.word += c;
            }
        } else if (s.quote == '"') {
            if (c == '"') {
                s.quote = 0;
            } else if (c == '\\') {
                s.escaped = true;
            } else {
                s.word += c;
            }
        } else if (c == '"' || c == '\'') {
            s.quote = c;
        } else if (c == '\\') {
            s.escaped = true;
        } else if (is_blank(c)) {
            if (s.in_word) {
                s.words.push_back(std::move(s.word));
                s.word.clear();
                s.in_word = false;
            }
        } else {
            s.word += c;
        }
    }
    return s;
}

} // namespace

std::string single_quoted(std::string_view word)
{
    std::string quoted = "'";
    for (const char c : word) {
        quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return quoted + "'";
}

std::optional<std::vector<std::string>> split_words(std::string_view line)
{
    Scan s = scan(line);
    if (s.quote != 0) {
        return std::nullopt;
    }
    if (s.escaped) { // a backslash at the very end stands for itself
        s.word += '\\';
    }
    if (s.in_word) {
        s.words.push_back(std::move(s.word));
    }
    return std::move(s.words);
}

PartialWord partial_word(std::string_view line)
{
    Scan s = scan(line);
    PartialWord word;
    word.before = std::move(s.words);
    if (s.in_word) {
        word.start = s.word_start;
        word.value = std::move(s.word);
        word.quote = s.quote;
        word.escaped = s.escaped;
    } else {
        word.start = line.size();
    }
    return word;
}

std::string continue_word(const PartialWord& word, std::string_view rest, bool finish)
{
    std::string raw;
    bool escaped = word.escaped;
    for (const char c : rest) {
        if (escaped) { // the line's own backslash takes this one
            raw += c;
            escaped = false;
        } else if (word.quote == '\'') {
            // Nothing escapes inside single quotes: close, escape, reopen.
            raw += c == '\'' ? std::string("'\\''") : std::string(1, c);
        } else if (word.quote == '"') {
            if (c == '"' || c == '\\') {
                raw += '\\';
            }
            raw += c;
        } else {
            if (special_outside(c)) {
                raw += '\\';
            }
            raw += c;
        }
    }
    if (finish && word.quote != 0) {
        raw += word.quote;
    }
    return raw;
}

} // namespace ferry::client
