// What counts as a file name in Ferry. Every operation that takes a name (list
// filtering included) asks this one place, so its test table is the spec.
#pragma once

#include "error.hpp"

#include <cstddef>
#include <optional>
#include <string_view>

namespace ferry {

inline constexpr std::size_t kMaxNameBytes = 255; // NAME_MAX on Linux file systems

bool is_valid_utf8(std::string_view text);

// A name is a plain file name in the served folder: valid UTF-8, 1..255 bytes,
// no '/', '\\' or NUL, no control characters, and no leading '.' (which also
// rules out "." and ".." and keeps the server's hidden partial files
// unreachable). Returns the reason when the name is refused.
std::optional<Error> check_file_name(std::string_view name);

} // namespace ferry
