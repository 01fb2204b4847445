// What counts as a file name in Ferry. Every operation that takes a name (list
// filtering included) asks this one place, so its test table is the spec.
#pragma once

#include "error.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ferry {

inline constexpr std::size_t kMaxNameBytes = 255; // NAME_MAX on Linux file systems

bool is_valid_utf8(std::string_view text);

// A name is a plain file name in the served folder: valid UTF-8, 1..255 bytes,
// no '/' or '\\', no leading '.' (which also rules out "." and ".." and keeps
// the server's hidden partial files unreachable), and nothing that lets a
// name pass for another (PROTOCOL.md 5): no character of general category Cc,
// Cf, Zl, Zp, Cs, Co or Cn, none that Unicode calls default-ignorable, and
// the text in NFC. Returns the reason when the name is refused.
std::optional<Error> check_file_name(std::string_view name);

// `text` (a name or message from a server) made safe for a terminal: the code
// points check_file_name() refuses become \u{XXXX}, bytes that are not
// UTF-8 become \xXX, the rest is kept as it is.
std::string printable(std::string_view text);

} // namespace ferry
