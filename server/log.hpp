// ferryd's log: one line per event, readable text by default or JSON lines
// (--log-format json), to stderr or --log-file (reopened on SIGHUP, for log
// rotation). Error codes in it are the wire's codes. Every line carries a
// severity, a property of its event (one table in log.cpp, listed in
// ferryd(8)); when stderr is systemd's journal, lines start with the
// journal's "<N>" priority prefix so that `journalctl -p warning` works.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace ferry::server {

enum class LogFormat { text, json };

struct LogField {
    std::string_view key;
    std::variant<std::string_view, std::uint64_t, double> value;

    LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
    LogField(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
    LogField(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
    LogField(std::string_view k, std::uint64_t v) : key(k), value(v) {}
    LogField(std::string_view k, double v) : key(k), value(v) {}
};

// syslog's numbers, which the journal's "<N>" prefix uses.
enum class Severity { error = 3, warning = 4, notice = 5, info = 6 };

std::string_view to_string(Severity severity);
// The severity lines of this event carry.
Severity severity_of(std::string_view event);

// Where lines go. A file is opened with O_NOFOLLOW and must be a regular
// file (operator_file.hpp); if it cannot be opened, stderr is kept and the
// reason returned. The same holds for every reopen_log().
std::optional<std::string> configure_log(LogFormat format, const std::string& path);
// Lines go to stderr (no --log-file, or it could not be opened).
bool log_is_stderr();
// Reopens the log file by name, so a rotated file is let go. If it cannot
// be opened, the old file is kept, stderr is told, and the reason returned.
std::optional<std::string> reopen_log();

// "2026-11-28T10:00:00Z info ferryd: transfer peer=127.0.0.1:5 op=get ..." or
// {"time":"2026-11-28T10:00:00Z","level":"info","event":"transfer","peer":"127.0.0.1:5",...}
void log_event(std::string_view event, std::span<const LogField> fields);
inline void log_event(std::string_view event, std::initializer_list<LogField> fields)
{
    log_event(event, std::span(fields.begin(), fields.size()));
}

// Lines that clients cause (connect, refused, a request's error...) are
// bounded server-wide (log_budget.hpp); what the bound left out is said in
// one events_not_logged line once its second is over, by the next line or by
// this call (each loop's sweep; `final` at the stop, whatever the time).
void log_unlogged_lines(bool final = false);
// A line of `event` under the clients' budget whatever the event: a
// transfer refused or aborted before its first byte is a client's doing,
// as cheap to repeat as a connection.
void log_client_event(std::string_view event, std::span<const LogField> fields);

} // namespace ferry::server
