// The interactive shell (`ferry` with no command, on a terminal): a
// `ferry> ` prompt running list, stat, get, put, stats, help and quit over
// one connection, reopened when it drops, with history and tab completion
// (line_editor.hpp). Ctrl-C stops the running transfer (a download keeps
// its partial for get --resume) and returns to the prompt.
#pragma once

#include "connection.hpp"
#include "endpoint.hpp"
#include "output.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::client {

// Reads commands from standard input until quit or end of input; returns
// the process exit status (0).
int run_shell(const Endpoint& endpoint, const ConnectOptions& options, const Output& output, HashKind hash);

// Splits a command line into words: blanks separate, "double" or 'single'
// quotes keep blanks, a backslash escapes the next character. nullopt when
// a quote is left open.
std::optional<std::vector<std::string>> split_words(std::string_view line);

} // namespace ferry::client
