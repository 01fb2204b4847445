// "--name=" with nothing after the '=' is the option with an empty value,
// as GNU getopt_long(3) reads it. CLI11 2.1 (Debian 12's) splits "--name="
// and "--name" alike (detail::split_long gives the value "" for both), so
// an option written with an empty value took the next word as its value:
// `ferry --token=$TOKEN list` with TOKEN unset ran the interactive shell on
// the script's standard input, with the token "list", and exited 0. Each
// such word is handed to CLI11 as two, "--name" and "", so that the
// option's own checks judge the empty value (an empty --tls-pin is refused,
// an empty --token is no token) and the next word keeps its place.
#pragma once

#include <string>
#include <vector>

namespace ferry::option_values {

// `words` (the arguments after the program's name, in order) with every
// "--name=" before a bare "--" made "--name", "". A word after "--" is an
// operand, whatever it looks like, and stays as it is.
inline std::vector<std::string> with_empty_values_spelled_out(const std::vector<std::string>& words)
{
    std::vector<std::string> out;
    out.reserve(words.size());
    bool operands = false;
    for (const auto& word : words) {
        if (!operands && word == "--") {
            operands = true;
        }
        // "--=" names no option: CLI11's own error says so.
        if (!operands && word.size() > 3 && word.starts_with("--") && word.ends_with('=') &&
            word.find('=') == word.size() - 1) {
            out.push_back(word.substr(0, word.size() - 1));
            out.emplace_back();
            continue;
        }
        out.push_back(word);
    }
    return out;
}

} // namespace ferry::option_values
