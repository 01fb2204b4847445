// The shell's local operands (put LOCAL...) as a POSIX shell would give
// them: the ferry shell reads its own lines, so no other shell expands
// `put *.log` first.
#pragma once

#include "status.hpp"

#include <string>
#include <vector>

namespace ferry::client {

// Each word of `typed`, as sh would give it (glob(3); POSIX.1-2017, XCU
// 2.13):
// - with a wildcard (*, ? or [) not escaped by a backslash: its matches,
//   sorted, in its place. A name's leading '.' is matched only by the
//   pattern's own, and "." and ".." never (as bash 5.2 and zsh leave
//   them). A match starting with '-' comes as "./-...": a file, never
//   standard input or an option. A word that names a file as typed is
//   that file, since the shell's quotes are gone by then: put '[x]' sends
//   "[x]", not "x";
// - without one: itself, its escapes undone as a remote name's are
//   (remote_paths.hpp: "m\[1]" names "m[1]"); glob(3) takes the same
//   backslash rule in a pattern.
// Errors (local_io): "no match for 'PATTERN' on this machine", refused
// before anything moves as zsh refuses it; a folder glob(3) could not read
// (GLOB_ABORTED, with errno's words).
Result<std::vector<std::string>> expand_local_wildcards(const std::vector<std::string>& typed);

} // namespace ferry::client
