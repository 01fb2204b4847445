// The interactive shell (`ferry` with no command, on a terminal): a
// `ferry> ` prompt running list, stat, get, put, stats, help and quit over
// one connection, reopened when it drops, with history and tab completion
// (line_editor.hpp). Ctrl-C stops the running transfer (a download keeps
// its partial for get --resume) and returns to the prompt.
//
// Batch mode (`ferry` with no command and standard input not a terminal,
// like `sftp -b -`): the same commands, one a line, without prompt or
// greeting; the first command that fails ends ferry with its status,
// unless the line starts with '-' (as in sftp), which lets that command
// fail. Blank lines and lines starting with '#' are skipped.
#pragma once

#include "connection.hpp"
#include "endpoint.hpp"
#include "output.hpp"
#include "shell_words.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::client {

// Reads commands from standard input until quit or end of input; returns
// the process exit status (0).
int run_shell(const Endpoint& endpoint, const ConnectOptions& options, const Output& output, HashKind hash);

// Runs the commands of standard input (batch mode); returns 0 when all
// succeeded (or quit came first), else the exit status of the command that
// failed (status.hpp; 2 for a line that is no valid command), 130 when
// interrupted.
int run_batch(const Endpoint& endpoint, const ConnectOptions& options, const Output& output, HashKind hash);

} // namespace ferry::client
