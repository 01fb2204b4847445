#include "log.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>

namespace ferry::server {

namespace {

struct LogTarget {
    LogFormat format = LogFormat::text;
    std::string path; // empty: stderr
    std::FILE* file = stderr;
};

LogTarget& target()
{
    static LogTarget log;
    return log;
}

std::string timestamp()
{
    char stamp[32];
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    ::gmtime_r(&now, &utc);
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return stamp;
}

// Text values are quoted when they would not read back as one word.
void append_text_value(std::string& line, std::string_view value)
{
    const bool plain = !value.empty() && value.find_first_of(" \"=\\\n\t") == std::string_view::npos;
    if (plain) {
        line += value;
        return;
    }
    line += '"';
    for (const char c : value) {
        if (c == '"' || c == '\\') {
            line += '\\';
        }
        line += c == '\n' ? ' ' : c;
    }
    line += '"';
}

std::string text_line(std::string_view event, std::span<const LogField> fields)
{
    std::string line = timestamp() + " ferryd: ";
    line += event;
    for (const auto& field : fields) {
        line += ' ';
        line += field.key;
        line += '=';
        if (const auto* text = std::get_if<std::string_view>(&field.value)) {
            append_text_value(line, *text);
        } else if (const auto* number = std::get_if<std::uint64_t>(&field.value)) {
            line += std::to_string(*number);
        } else {
            char value[32];
            std::snprintf(value, sizeof value, "%.3f", std::get<double>(field.value));
            line += value;
        }
    }
    return line;
}

std::string json_line(std::string_view event, std::span<const LogField> fields)
{
    nlohmann::ordered_json line{{"time", timestamp()}, {"event", event}};
    for (const auto& field : fields) {
        std::visit([&](const auto& value) { line[std::string(field.key)] = value; }, field.value);
    }
    // Peer-supplied text (names) is valid UTF-8 by the time it is logged;
    // `replace` keeps a stray byte from ever throwing here.
    return line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

} // namespace

bool configure_log(LogFormat format, const std::string& path)
{
    auto& log = target();
    log.format = format;
    log.path = path;
    if (path.empty()) {
        return true;
    }
    std::FILE* file = std::fopen(path.c_str(), "a");
    if (file == nullptr) {
        return false;
    }
    log.file = file;
    return true;
}

// Worker loops log from their own threads; a line is written whole.
std::mutex& log_mutex()
{
    static std::mutex mutex;
    return mutex;
}

std::optional<std::string> reopen_log()
{
    const std::lock_guard lock(log_mutex());
    auto& log = target();
    if (log.path.empty()) {
        return std::nullopt;
    }
    std::FILE* file = std::fopen(log.path.c_str(), "a");
    if (file == nullptr) {
        // The old file stays open: a line in a rotated-away file is better
        // than a lost one, and the operator is told on stderr.
        const std::string why = "cannot reopen log file \"" + log.path + "\": " + std::strerror(errno) +
                                "; still writing to the file opened before";
        std::fprintf(stderr, "ferryd: %s\n", why.c_str());
        std::fflush(stderr);
        return why;
    }
    std::fclose(log.file);
    log.file = file;
    return std::nullopt;
}

void log_event(std::string_view event, std::span<const LogField> fields)
{
    auto& log = target();
    const std::string line = log.format == LogFormat::json ? json_line(event, fields) : text_line(event, fields);
    const std::lock_guard lock(log_mutex());
    std::fprintf(log.file, "%s\n", line.c_str());
    std::fflush(log.file);
}

} // namespace ferry::server
