// What counts as a file name in Ferry. Every operation that takes a name (list
// filtering included) asks this one place, so its test table is the spec.
#pragma once

#include "error.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

inline constexpr std::size_t kMaxNameBytes = 255; // NAME_MAX on Linux file systems
// Bounds of a path (protocol version 2, PROTOCOL.md 5.1): PATH_MAX less its
// NUL, so every path fits the kernel's calls; and a depth that keeps a
// recursive walk's open folders (one descriptor each) few.
inline constexpr std::size_t kMaxPathBytes = 4095;
inline constexpr std::size_t kMaxPathDepth = 64;

bool is_valid_utf8(std::string_view text);

// A name is a plain file name in the served folder: valid UTF-8, 1..255 bytes,
// no '/' or '\\', no leading '.' (which also rules out "." and ".." and keeps
// the server's hidden partial files unreachable), and nothing that lets a
// name pass for another (PROTOCOL.md 5): no character of general category Cc,
// Cf, Zl, Zp, Cs, Co or Cn, none that Unicode calls default-ignorable, and
// the text in NFC. Returns the reason when the name is refused.
std::optional<Error> check_file_name(std::string_view name);

// `text` in Unicode normalization form C (libutf8proc's NFC, the form
// check_file_name() asks for); nullopt when it is not valid UTF-8. Also
// for a path: '/' is left as it is. Where a name the server refuses as not
// NFC meets its NFC twin (sync --delete), this says they are one text.
std::optional<std::string> nfc_form(std::string_view text);

// A path is one or more names (each passing check_file_name) joined by single
// '/': no empty component (so no leading, trailing or doubled '/'), no '.'
// or '..' component, no '\\', at most kMaxPathBytes bytes and kMaxPathDepth
// components. The root's empty path is refused here; the operations that
// accept it check for it first. Returns the reason when the path is refused;
// the message names the component and the rule or bound it breaks.
std::optional<Error> check_path(std::string_view path);

// The components of a path that passed check_path(), in order; views into
// `path`.
std::vector<std::string_view> path_components(std::string_view path);

// `text` (a name or message from a server) made safe for a terminal: the code
// points check_file_name() refuses become \u{XXXX}, bytes that are not
// UTF-8 become \xXX, the rest is kept as it is.
std::string printable(std::string_view text);

// `text` in double quotes, printable(): how a server's message names a
// path, so a name read from the disk (which no request could hold) cannot
// carry a terminal control or a byte that is not UTF-8 into a reply or the
// log.
std::string quoted(std::string_view text);

// Where `text` may be cut at or before `most` bytes without splitting a
// UTF-8 sequence: `most` itself, or the start of the code point it falls in
// (the length of `text` when it is shorter).
std::size_t code_point_cut(std::string_view text, std::size_t most);

// quoted(), but of at most `max_bytes` of `text` (cut where a code point
// starts), the cut said with its whole length: "abc..." (70000 bytes). For
// a peer's value that a reply and the log name only to say that it is not
// known (an op, a hash), whose length the peer chooses up to a whole
// control frame.
std::string quoted_excerpt(std::string_view text, std::size_t max_bytes);

} // namespace ferry
