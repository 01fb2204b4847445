#include "log.hpp"

#include "file_trust.hpp"
#include "log_budget.hpp"

#include "names.hpp"
#include "operator_file.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace ferry::server {

namespace {

struct LogTarget {
    LogFormat format = LogFormat::text;
    std::string path; // empty: stderr
    std::FILE* file = stderr;
    // stderr is a stream into systemd's journal: lines start with "<N>".
    bool journal = false;
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

// A text value is cut past this many bytes, where a code point starts, and
// the cut said with its length: what a request can make legitimately is
// shorter (a path is at most 4,095 bytes), and past that a peer's text
// would only grow the log (round 76: a 64 KiB op made a 294 KB line).
constexpr std::size_t kMaxLoggedValueBytes = 8192;
// A text line is cut past this many bytes: under journald's LineMax (48K
// by default), which would split a longer line, and start its next entry
// with text a peer chose.
constexpr std::size_t kMaxTextLineBytes = 32 * 1024;

// `raw` as logged: whole, or its first kMaxLoggedValueBytes and the cut.
std::string_view within_bound(std::string_view raw, std::string& cut_copy)
{
    if (raw.size() <= kMaxLoggedValueBytes) {
        return raw;
    }
    cut_copy = std::string(raw.substr(0, code_point_cut(raw, kMaxLoggedValueBytes))) +
               "... (cut: " + std::to_string(raw.size()) + " bytes)";
    return cut_copy;
}

// Text values are quoted when they would not read back as one word. A
// peer's text (a name, an unknown op, a name read from the disk) may hold
// terminal controls or bytes that are not UTF-8: they are written escaped
// as the client shows names (printable(): \u{1B}, \xFF), so a log read in
// a terminal cannot retitle it, move its cursor or hide text, and stays
// UTF-8. (The JSON format escapes every character past ASCII.)
void append_text_value(std::string& line, std::string_view whole)
{
    std::string cut_copy;
    const std::string_view raw = within_bound(whole, cut_copy);
    const bool ascii = std::all_of(raw.begin(), raw.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
    std::string escaped;
    if (!ascii) {
        escaped = printable(raw);
    }
    const std::string_view value = ascii ? raw : std::string_view(escaped);
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

// systemd sets JOURNAL_STREAM to the device and inode of the stream it
// connected to stdout/stderr; a match (not just the variable, which a child
// of a service inherits with other descriptors) means stderr is the journal.
bool stderr_is_journal()
{
    const char* stream = std::getenv("JOURNAL_STREAM");
    unsigned long long device = 0;
    unsigned long long inode = 0;
    struct stat st {};
    if (stream == nullptr || std::sscanf(stream, "%llu:%llu", &device, &inode) != 2 ||
        ::fstat(STDERR_FILENO, &st) != 0) {
        return false;
    }
    return st.st_dev == device && st.st_ino == inode;
}

std::string text_line(Severity severity, std::string_view event, std::span<const LogField> fields)
{
    std::string line = timestamp() + " ";
    line += to_string(severity);
    line += " ferryd: ";
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
    if (line.size() > kMaxTextLineBytes) {
        const std::size_t whole = line.size();
        line.resize(code_point_cut(line, kMaxTextLineBytes));
        line += " ... (line cut: " + std::to_string(whole) + " bytes)";
    }
    return line;
}

std::string json_line(Severity severity, std::string_view event, std::span<const LogField> fields)
{
    nlohmann::ordered_json line{{"time", timestamp()}, {"level", to_string(severity)}, {"event", event}};
    for (const auto& field : fields) {
        std::string cut_copy;
        if (const auto* text = std::get_if<std::string_view>(&field.value)) {
            line[std::string(field.key)] = within_bound(*text, cut_copy);
        } else {
            std::visit([&](const auto& value) { line[std::string(field.key)] = value; }, field.value);
        }
    }
    // Every character past ASCII is written \uXXXX (ensure_ascii): a C1
    // control (U+009B), a bidi override or a line separator a peer sent
    // would act on a terminal that shows the log, or split it for a reader
    // (round 76). Peer-supplied text (names) is valid UTF-8 by the time it
    // is logged; `replace` keeps a stray byte from ever throwing here.
    return line.dump(-1, ' ', true, nlohmann::ordered_json::error_handler_t::replace);
}

} // namespace

std::string_view to_string(Severity severity)
{
    switch (severity) {
    case Severity::error:
        return "error";
    case Severity::warning:
        return "warning";
    case Severity::notice:
        return "notice";
    case Severity::info:
        break;
    }
    return "info";
}

// What is not listed is info: a connection, a transfer, a client's error.
// Above it: what an operator should read (notice), what may need action
// (warning) and what failed on the server's side (error).
Severity severity_of(std::string_view event)
{
    static const std::unordered_map<std::string_view, Severity> table{
        {"start_failed", Severity::error},     {"accept_failed", Severity::error},
        {"log_reopen_failed", Severity::error}, {"root_unavailable", Severity::error},
        {"warning", Severity::warning},         {"tokens_kept", Severity::warning},
        {"drain_over", Severity::warning},      {"notice", Severity::notice},
        {"start", Severity::notice},            {"stop", Severity::notice},
        {"draining", Severity::notice},         {"stopped", Severity::notice},
        {"log_reopened", Severity::notice},     {"tokens_reloaded", Severity::notice},
        {"root_available", Severity::notice},   {"resumed", Severity::notice},
        {"refused", Severity::notice},          {"auth_failed", Severity::notice},
        {"errors_not_logged", Severity::notice}, {"events_not_logged", Severity::notice}};
    const auto found = table.find(event);
    return found == table.end() ? Severity::info : found->second;
}

// The log file is opened as open_operator_file does (never blocking, a
// regular file only), appending, and never through a symbolic link at its
// name: a root ferryd whose log lies in a folder another user may write
// would otherwise append its lines, which carry clients' text, to whatever
// file that user points the name at when the log is rotated. Nor is a file
// at the name adopted when another user owns it or others may write it
// (file_trust.hpp): one made there between a rotation and its SIGHUP, in a
// folder others may add names to, would take the lines, and its owner
// could rewrite them (round 76, F5). Created 0640 whatever the umask (less
// what the umask takes): peers' addresses and names are no one else's.
static Result<std::FILE*> open_log_file(const std::string& path)
{
    auto opened = open_operator_file(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, "log file", 0640);
    if (!opened) {
        return opened.error();
    }
    if (auto problem = file_writers_problem("log file", path, opened->fd, opened->st)) {
        ::close(opened->fd);
        return Error{ErrorCode::io_error, problem->message + "; ferryd writes its log only into a file no one "
                                                             "else may write"};
    }
    // A hard link is the symbolic link's twin where fs.protected_hardlinks
    // is off: a user who may write the log's folder could give a file they
    // cannot write (another user's, a system file) the log's name.
    if (opened->st.st_nlink > 1) {
        ::close(opened->fd);
        return Error{ErrorCode::io_error, "log file \"" + path + "\" has " + std::to_string(opened->st.st_nlink) +
                                              " names (hard links); ferryd appends only to a file that is its log "
                                              "alone (another name could be any file)"};
    }
    std::FILE* file = ::fdopen(opened->fd, "a");
    if (file == nullptr) {
        const int error = errno;
        ::close(opened->fd);
        return Error{ErrorCode::io_error, "cannot open log file \"" + path + "\": " + std::strerror(error)};
    }
    return file;
}

std::optional<std::string> configure_log(LogFormat format, const std::string& path)
{
    auto& log = target();
    log.format = format;
    if (path.empty()) {
        if (log.file != stderr) {
            std::fclose(log.file);
        }
        log.path.clear();
        log.file = stderr;
        log.journal = stderr_is_journal();
        return std::nullopt;
    }
    auto file = open_log_file(path);
    if (!file) {
        log.journal = stderr_is_journal();
        return file.error().message;
    }
    if (log.file != stderr) {
        std::fclose(log.file);
    }
    log.path = path;
    log.file = file.value();
    log.journal = false;
    return std::nullopt;
}

bool log_is_stderr()
{
    return target().file == stderr;
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
    auto file = open_log_file(log.path);
    if (!file) {
        // The old file stays open: a line in a rotated-away file is better
        // than a lost one, and the operator is told on stderr and in it.
        std::string why = file.error().message;
        if (why.starts_with("cannot open ")) {
            why.replace(0, 11, "cannot reopen"); // the words operators and log readers know
        }
        why += "; still writing to the file opened before";
        std::fprintf(stderr, "ferryd: %s\n", why.c_str());
        std::fflush(stderr);
        return why;
    }
    std::fclose(log.file);
    log.file = file.value();
    return std::nullopt;
}

namespace {

std::uint64_t monotonic_ms()
{
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}

// Under log_mutex(), as every write.
LogBudget& log_budget(LogBudgetClass budget_class)
{
    static LogBudget client(kClientLogLinesPerSecond, kClientLogBytesPerSecond);
    static LogBudget authentication(kAuthLogLinesPerSecond, kAuthLogBytesPerSecond);
    return budget_class == LogBudgetClass::authentication ? authentication : client;
}

void write_line(Severity severity, std::string_view event, std::span<const LogField> fields);

// "events_not_logged connect=812 disconnect=812 count=1624": what the
// budget left out, said once its window is over.
void write_unlogged(const LogBudget::Unlogged& unlogged)
{
    std::vector<LogField> fields;
    std::uint64_t total = 0;
    for (const auto& [event, count] : unlogged) {
        fields.emplace_back(event, count);
        total += count;
    }
    fields.emplace_back("count", total);
    write_line(severity_of("events_not_logged"), "events_not_logged", fields);
}

std::string format_line(Severity severity, std::string_view event, std::span<const LogField> fields)
{
    return target().format == LogFormat::json ? json_line(severity, event, fields) : text_line(severity, event, fields);
}

void write_formatted(Severity severity, std::string line)
{
    auto& log = target();
    if (log.journal) {
        line.insert(0, "<" + std::to_string(static_cast<int>(severity)) + ">");
    }
    std::fprintf(log.file, "%s\n", line.c_str());
    std::fflush(log.file);
}

void write_line(Severity severity, std::string_view event, std::span<const LogField> fields)
{
    write_formatted(severity, format_line(severity, event, fields));
}

} // namespace

void log_unlogged_lines(bool final)
{
    const std::lock_guard lock(log_mutex());
    const std::uint64_t now = monotonic_ms();
    for (const auto budget_class : {LogBudgetClass::client, LogBudgetClass::authentication}) {
        if (auto unlogged = log_budget(budget_class).take_unlogged(now, final)) {
            write_unlogged(*unlogged);
        }
    }
}

namespace {

void log_under(LogBudgetClass budget_class, std::string_view event, std::span<const LogField> fields)
{
    const std::lock_guard lock(log_mutex());
    LogBudget* budget = nullptr;
    if (budget_class != LogBudgetClass::none) {
        budget = &log_budget(budget_class);
        const std::uint64_t now = monotonic_ms();
        if (auto unlogged = budget->take_unlogged(now)) {
            write_unlogged(*unlogged);
        }
        if (!budget->admit(event, now)) {
            return; // not even formatted: a flood's lines cost no more than their count
        }
    }
    const Severity severity = severity_of(event);
    std::string line = format_line(severity, event, fields);
    if (budget != nullptr) {
        budget->charge(line.size() + 1);
    }
    write_formatted(severity, std::move(line));
}

} // namespace

void log_event(std::string_view event, std::span<const LogField> fields)
{
    log_under(budget_class_of(event), event, fields);
}

void log_client_event(std::string_view event, std::span<const LogField> fields)
{
    log_under(LogBudgetClass::client, event, fields);
}

} // namespace ferry::server
