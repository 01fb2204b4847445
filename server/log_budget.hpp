// A bound on the log lines that clients cause by merely connecting or
// misbehaving (connect, disconnect, refused, close, a request's error,
// auth_failed, errors_not_logged): at most a fixed number a second across
// the whole process. Each connection already writes at most
// kLoggedErrorsPerConnection error lines, but a client that connects again
// and again (from one address or from many) would otherwise grow the log by
// megabytes a second. Past the budget, lines are counted by event and one
// summary line a second (events_not_logged) says how many of each were left
// out; the stats operation counts every refusal either way. Lines about
// the server itself, and about transfers that moved a byte or succeeded,
// are never held back (a transfer refused or aborted before any byte is a
// client-caused line: log_client_event).
//
// Pure: the caller passes the time (ms, monotonic) and holds a lock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::server {

// Lines and bytes a second clients may cause, server-wide (ferryd(8),
// LOG): lines are about 150 bytes, but a client chooses how long the text
// it sends is (round 76: lines of 294 KB made 11.6 MB/s from one client),
// so the bytes are bounded too: 32 KiB a second, 2.8 GB a day at the
// worst, plus the one line that crosses the bound.
inline constexpr std::uint32_t kClientLogLinesPerSecond = 100;
inline constexpr std::uint64_t kClientLogBytesPerSecond = 32 * 1024;
// auth_failed lines have a budget of their own, so that a flood of
// connections cannot crowd out the lines that name who guesses tokens.
inline constexpr std::uint32_t kAuthLogLinesPerSecond = 20;
inline constexpr std::uint64_t kAuthLogBytesPerSecond = 8 * 1024;

// Which budget lines of an event come under: none (the server's own, and
// transfers), the clients' (see above), or authentication failures'.
enum class LogBudgetClass { none, client, authentication };
LogBudgetClass budget_class_of(std::string_view event);

// Whether lines of `event` are of the kind clients cause (see above).
inline bool is_client_caused(std::string_view event)
{
    return budget_class_of(event) != LogBudgetClass::none;
}

class LogBudget {
public:
    // Events left out of the log in one or more past windows, by event.
    using Unlogged = std::map<std::string, std::uint64_t, std::less<>>;

    LogBudget(std::uint32_t lines_per_second, std::uint64_t bytes_per_second)
        : lines_per_second_(lines_per_second), bytes_per_second_(bytes_per_second)
    {
    }

    // Whether a line of `event`, `bytes` long, may be written at `now_ms`
    // (while the window's lines and bytes are under their bounds); if not,
    // it is counted among the unlogged.
    bool admit(std::string_view event, std::uint64_t now_ms, std::uint64_t bytes = 0);

    // Counts `bytes` more against the window of the line admitted last:
    // for a caller that formats a line only once it is admitted.
    void charge(std::uint64_t bytes) { written_bytes_ += bytes; }

    // What was left out, once its window is over (or at once with
    // `final`, at the server's stop), to be said in one line; nothing when
    // nothing was left out or its window is still running.
    std::optional<Unlogged> take_unlogged(std::uint64_t now_ms, bool final = false);

private:
    void roll(std::uint64_t now_ms);

    std::uint32_t lines_per_second_;
    std::uint64_t bytes_per_second_;
    std::uint64_t window_start_ms_ = 0;
    bool started_ = false;
    std::uint32_t written_ = 0;
    std::uint64_t written_bytes_ = 0;
    Unlogged unlogged_;
};

} // namespace ferry::server
