#include "log.hpp"

#include <cstdio>
#include <ctime>

namespace ferry::server {

void log_line(std::string_view text)
{
    char stamp[32];
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    ::gmtime_r(&now, &utc);
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
    std::fprintf(stderr, "%s ferryd: %.*s\n", stamp, static_cast<int>(text.size()), text.data());
}

} // namespace ferry::server
