// How much room text takes on a terminal, by display width (columns), not
// bytes: a CJK character takes two columns, a combining accent none. Widths
// come from libutf8proc's Unicode tables (Debian: libutf8proc-dev).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ferry::client {

// `text` made safe to print: control characters and bytes that are not
// UTF-8 become '?', so that a file name cannot move the cursor or break
// the line it is shown on.
std::string printable(std::string_view text);

// Columns the printable() form of `text` takes.
std::size_t display_width(std::string_view text);

// printable(text) in at most `columns` columns: whole when it fits, else
// its start and end around an ellipsis ("…" when the locale's character set
// is UTF-8, "..." otherwise). Never splits a character or a grapheme
// (a letter and its accents).
std::string fit_middle(std::string_view text, std::size_t columns);

} // namespace ferry::client
