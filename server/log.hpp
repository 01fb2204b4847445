// One line per event on stderr: "2026-11-28T10:00:00Z ferryd: <text>".
#pragma once

#include <string_view>

namespace ferry::server {

void log_line(std::string_view text);

} // namespace ferry::server
