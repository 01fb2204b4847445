// The shell's local operands (put LOCAL...) as a POSIX shell would give
// them: the ferry shell reads its own lines, so no other shell expands
// `put *.log` first.
#pragma once

#include "status.hpp"

#include <string>
#include <vector>

namespace ferry::client {

// Each word of `typed`, expanded with glob(3) (POSIX.1-2017, XCU 2.13: the
// pattern rules of sh; a leading '.' of a name is matched only by a
// pattern's own '.', so hidden files stay out of `*`), where it holds a
// wildcard (*, ? or [) not escaped by a backslash: its matches, sorted,
// in its place ("." and ".." left out, as bash 5.2 and zsh leave them),
// unless a file is named so as typed: the shell's quotes are
// gone by then, so put '[x]' must still send "[x]", not "x". A match
// starting with '-' comes as "./-...": a file, never standard input. A word without one is itself with its escapes
// undone, as a remote name's are (remote_paths.hpp: "m\[1]" names "m[1]"); the same backslash rule holds in a pattern,
// since glob(3) takes it too. Errors: local_io "no match for 'PATTERN' on this machine" for a pattern that matches
// nothing (refused before anything moves, as zsh refuses it), or that glob(3) could not read (GLOB_ABORTED, with
// errno's words).
Result<std::vector<std::string>> expand_local_wildcards(const std::vector<std::string>& typed);

} // namespace ferry::client
