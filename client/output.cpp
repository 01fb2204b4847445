#include "output.hpp"

#include "names.hpp"
#include "progress.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <ctime>
#include <tuple>

namespace ferry::client {

namespace {

using Json = nlohmann::json;

// Local paths need not be UTF-8; `replace` keeps dump() from throwing.
std::string dump(const Json& value)
{
    return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// The message printable(), as for people: JSON escapes C0 controls but
// keeps C1 ones and format characters (U+202E) as they are, which a
// terminal that shows `ferry --json ... | cat` obeys; a server's message
// may carry them (round 30). Whole, never cut.
Json error_json(const Error& error)
{
    return Json{{"code", std::string(to_string(error.code))}, {"message", printable(error.message)}};
}

Json file_json(const FileInfo& file)
{
    Json entry{{"name", file.name}, {"size", file.size}, {"mtime", file.mtime}};
    if (file.type) {
        entry["type"] = std::string(to_string(*file.type));
    }
    if (file.mode) {
        entry["mode"] = *file.mode & 0777U; // the permission bits alone, as the text shows them
    }
    return entry;
}

Json digest_json(const DigestReply& reply)
{
    Json entry = file_json(reply.file);
    entry["digest"] = Json{{"algorithm", std::string(hash_name(reply.hash))}, {"value", reply.digest}};
    return entry;
}

// "3 files, 1 folder"
std::string counted(std::uint64_t n, const char* what)
{
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

} // namespace

std::string human_size(std::uint64_t bytes)
{
    static constexpr std::array<const char*, 6> kUnits{"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) {
        return std::to_string(bytes) + " B";
    }
    auto value = static_cast<double>(bytes);
    std::size_t unit = 0;
    while (value >= 1024 && unit + 1 < kUnits.size()) {
        value /= 1024;
        ++unit;
    }
    std::array<char, 32> text{};
    std::snprintf(text.data(), text.size(), "%.1f %s", value, kUnits[unit]);
    return text.data();
}

std::string local_date(std::int64_t seconds)
{
    const auto when = static_cast<std::time_t>(seconds);
    std::tm parts{};
    if (::localtime_r(&when, &parts) == nullptr) {
        return std::to_string(seconds);
    }
    std::array<char, 32> text{};
    std::strftime(text.data(), text.size(), "%Y-%m-%d %H:%M", &parts);
    return text.data();
}

std::string time_not_kept_note(const std::string& name, const TransferResult::TimeNotKept& times, bool on_server)
{
    return "\"" + name + "\": its modification time " + std::to_string(times.asked) +
           " (seconds since 1970) could not be kept: the file system " + (on_server ? "on the server" : "here") +
           " holds " + std::to_string(times.held) + " (it clamps or rounds a time it cannot hold)";
}

void Output::emit_json(const std::string& text) const
{
    std::fprintf(out_, "%s\n", text.c_str());
    std::fflush(out_);
}

void Output::list(const ListReply& reply, const std::vector<std::pair<std::string, Error>>& unread) const
{
    if (json_) {
        Json files = Json::array();
        for (const auto& file : reply.files) {
            files.push_back(file_json(file));
        }
        Json listing{{"files", std::move(files)}, {"skipped_invalid_names", reply.skipped_invalid_names}};
        if (reply.skipped_too_deep > 0) {
            listing["skipped_too_deep"] = reply.skipped_too_deep;
        }
        // Present only when any: a complete listing's shape is as it was.
        if (!unread.empty()) {
            Json folders = Json::array();
            for (const auto& [path, error] : unread) {
                folders.push_back(Json{{"path", path}, {"error", error_json(error)}});
            }
            listing["failed_folders"] = std::move(folders);
            listing["error"] = error_json(unread.front().second);
        }
        emit_json(dump(listing));
        return;
    }
    for (const auto& file : reply.files) {
        std::fprintf(out_, "%12llu  %s  %s%s\n", static_cast<unsigned long long>(file.size),
                     local_date(file.mtime).c_str(), printable(file.name).c_str(),
                     file.type == EntryType::folder ? "/" : "");
    }
    std::fflush(out_);
    if (reply.skipped_invalid_names > 0) {
        std::fprintf(err_,
                     "ferry: note: %s not shown: their names break Ferry's rule (not UTF-8, a control or "
                     "invisible character, not in NFC, ...)\n",
                     entries(reply.skipped_invalid_names).c_str());
    }
    if (reply.skipped_too_deep > 0) {
        std::fprintf(err_, "ferry: note: %s\n", too_deep_note(reply.skipped_too_deep).c_str());
    }
    for (const auto& [path, failure] : unread) {
        error(failure);
    }
}

void Output::stat(const FileInfo& file) const
{
    if (json_) {
        emit_json(dump(file_json(file)));
        return;
    }
    std::fprintf(out_, "name:     %s\n", printable(file.name).c_str());
    if (file.type) {
        std::fprintf(out_, "type:     %s\n", std::string(to_string(*file.type)).c_str());
    }
    std::fprintf(out_, "size:     %llu (%s)\nmodified: %s\n", static_cast<unsigned long long>(file.size),
                 human_size(file.size).c_str(), local_date(file.mtime).c_str());
    if (file.mode) {
        std::fprintf(out_, "mode:     %04o\n", *file.mode & 0777U);
    }
    std::fflush(out_);
}

void Output::stat_many(const std::vector<FileInfo>& files) const
{
    if (json_) {
        Json all = Json::array();
        for (const auto& file : files) {
            all.push_back(file_json(file));
        }
        emit_json(dump(Json{{"files", std::move(all)}}));
        return;
    }
    for (std::size_t i = 0; i < files.size(); ++i) {
        if (i > 0) {
            std::fputs("\n", out_);
        }
        stat(files[i]);
    }
}

void Output::removed(const DeleteReply& reply) const
{
    if (json_ || verbosity_ == Verbosity::quiet) {
        return;
    }
    if (reply.type == EntryType::folder) {
        std::fprintf(out_, "removed %s/ (%s, %s)\n", printable(reply.path).c_str(),
                     counted(reply.files, "file").c_str(), counted(reply.folders, "folder").c_str());
    } else {
        std::fprintf(out_, "removed %s\n", printable(reply.path).c_str());
    }
    std::fflush(out_);
}

void Output::made(const MkdirReply& reply) const
{
    if (json_ || verbosity_ == Verbosity::quiet) {
        return;
    }
    std::fprintf(out_, "%s %s/\n", reply.created ? "made" : "already there:", printable(reply.path).c_str());
    std::fflush(out_);
}

void Output::moved(const RenameReply& reply) const
{
    if (json_) {
        emit_json(dump(Json{{"from", reply.from}, {"to", reply.to}}));
        return;
    }
    if (verbosity_ != Verbosity::quiet) {
        std::fprintf(out_, "%s -> %s\n", printable(reply.from).c_str(), printable(reply.to).c_str());
        std::fflush(out_);
    }
}

void Output::current_folder(const std::string& path, bool local) const
{
    if (json_) {
        emit_json(dump(Json{{local ? "local_folder" : "folder", path}}));
        return;
    }
    std::fprintf(out_, "%s\n", path.c_str());
    std::fflush(out_);
}

void Output::digested(const DigestReply& reply) const
{
    if (json_) {
        return;
    }
    std::fprintf(out_, "%s  %s\n", reply.digest.c_str(), printable(reply.file.name).c_str());
    std::fflush(out_);
}

void Output::path_summary(const std::string& key, const std::vector<PathOutcome>& outcomes) const
{
    if (!json_) {
        return;
    }
    Json done = Json::array();
    Json failed = Json::array();
    std::optional<Error> first;
    for (const auto& outcome : outcomes) {
        if (outcome.error) {
            failed.push_back(Json{{"path", outcome.path}, {"error", error_json(*outcome.error)}});
            if (!first) {
                first = outcome.error;
            }
        } else if (outcome.removed) {
            const auto& r = *outcome.removed;
            done.push_back(Json{{"path", r.path},
                                {"type", std::string(to_string(r.type))},
                                {"files", r.files},
                                {"folders", r.folders}});
        } else if (outcome.made) {
            done.push_back(Json{{"path", outcome.made->path}, {"created", outcome.made->created}});
        } else if (outcome.digest) {
            done.push_back(digest_json(*outcome.digest));
        }
    }
    Json whole{{key, std::move(done)}, {"failed", std::move(failed)}};
    if (first) {
        if (outcomes.size() > 1) {
            first->message = std::to_string(whole["failed"].size()) + " of " + std::to_string(outcomes.size()) +
                             " failed; first: " + first->message;
        }
        whole["error"] = error_json(*first);
    }
    emit_json(dump(whole));
}

void Output::warning(const std::string& text) const
{
    if (!json_ && verbosity_ != Verbosity::quiet) {
        std::fprintf(err_, "ferry: note: %s\n", printable(text).c_str());
        std::fflush(err_);
    }
}

void Output::warning(std::string text, std::vector<std::string>& json_notes) const
{
    if (json_) {
        json_notes.push_back(std::move(text));
    } else {
        warning(text);
    }
}

void Output::transferred(const TransferResult& result, bool upload) const
{
    if (json_ || verbosity_ == Verbosity::quiet) {
        return; // with --json the command's summary carries it
    }
    const std::string& from = upload ? result.local : result.file.name;
    const std::string& to = upload ? result.file.name : result.local;
    std::fprintf(out_, "%s -> %s: %s, %s %s", printable(from).c_str(), printable(to).c_str(),
                 human_size(result.file.size).c_str(), std::string(hash_name(result.hash)).c_str(),
                 result.digest.c_str());
    if (result.resumed_from > 0) {
        std::fprintf(out_, " (resumed at %s)", human_size(result.resumed_from).c_str());
    }
    std::fprintf(out_, "\n");
    std::fflush(out_);
}

void Output::skipped(const FileOutcome& file, bool upload) const
{
    if (json_ || verbosity_ == Verbosity::quiet) {
        return;
    }
    const std::string& from = upload ? file.local : file.name;
    const std::string& to = upload ? file.name : file.local;
    const char* why = file.skipped == "identical" ? "already there, identical" : "already there";
    std::fprintf(out_, "%s -> %s: skipped (%s)\n", printable(from).c_str(), printable(to).c_str(), why);
    std::fflush(out_);
}

bool Output::progress() const
{
    return progress_ && verbosity_ != Verbosity::quiet && ProgressBar::wanted(json_);
}

namespace {

// An error message for people, held to one screen's worth: a message may
// quote what was typed (a pasted megabyte as a path), so past 800 bytes its
// middle is cut, keeping the start (what failed) and the end (the reason).
// --json keeps the whole message.
std::string shown_message(std::string_view message)
{
    constexpr std::size_t kHead = 600;
    constexpr std::size_t kTail = 200;
    if (message.size() <= kHead + kTail) {
        return printable(message);
    }
    return printable(message.substr(0, kHead)) + " ... (" + std::to_string(message.size() - kHead - kTail) +
           " bytes cut) ... " + printable(message.substr(message.size() - kTail));
}

} // namespace

void Output::error(const Error& error) const
{
    const std::string code(to_string(error.code));
    if (json_) {
        emit_json(dump(Json{{"error", error_json(error)}}));
        return;
    }
    std::fprintf(err_, "ferry: %s: %s\n", code.c_str(), shown_message(error.message).c_str());
    std::fflush(err_);
}

// Notes and details are printable() whole, as errors are: they may carry a
// server's words (its hello's name, an error's message), which must not
// reach the terminal as controls (PROTOCOL.md 4.2).
void Output::note(const std::string& text) const
{
    if (!json_ && verbosity_ != Verbosity::quiet) {
        std::fprintf(out_, "%s\n", printable(text).c_str());
        std::fflush(out_);
    }
}

void Output::detail(const std::string& text) const
{
    if (verbosity_ == Verbosity::verbose) {
        std::fprintf(err_, "ferry: %s\n", printable(text).c_str());
        std::fflush(err_);
    }
}

} // namespace ferry::client

namespace ferry::client {

namespace {

std::string seconds_text(double seconds)
{
    std::array<char, 32> text{};
    std::snprintf(text.data(), text.size(), "%.2f s", seconds);
    return text.data();
}

double rate_of(std::uint64_t bytes, double seconds)
{
    return seconds > 0 ? static_cast<double>(bytes) / seconds : 0.0;
}

std::string duration_text(std::uint64_t seconds)
{
    const std::uint64_t days = seconds / 86400;
    const std::uint64_t hours = seconds % 86400 / 3600;
    const std::uint64_t minutes = seconds % 3600 / 60;
    std::string text;
    if (days > 0) {
        text += std::to_string(days) + "d ";
    }
    if (days > 0 || hours > 0) {
        text += std::to_string(hours) + "h ";
    }
    if (days > 0 || hours > 0 || minutes > 0) {
        text += std::to_string(minutes) + "m ";
    }
    return text + std::to_string(seconds % 60) + "s";
}

} // namespace

std::size_t TransferSummary::failed() const
{
    std::size_t count = 0;
    for (const auto& file : files) {
        count += file.error ? 1 : 0;
    }
    return count;
}

std::size_t TransferSummary::skipped() const
{
    std::size_t count = 0;
    for (const auto& file : files) {
        count += !file.error && file.skipped ? 1 : 0;
    }
    return count;
}

std::uint64_t TransferSummary::moved() const
{
    std::uint64_t bytes = 0;
    for (const auto& file : files) {
        if (file.done) {
            bytes += file.done->moved();
        }
    }
    return bytes;
}

namespace {

Json transfer_file_json(const FileOutcome& file)
{
    Json entry{{"name", file.name}, {"local", file.local}, {"ok", !file.error}};
    if (file.error) {
        entry["error"] = error_json(*file.error);
    } else if (file.skipped) {
        entry["skipped"] = *file.skipped;
    } else {
        const TransferResult done = file.done.value_or(TransferResult{});
        entry["size"] = done.file.size;
        entry["digest"] = Json{{"algorithm", std::string(hash_name(done.hash))}, {"value", done.digest}};
        entry["resumed_from"] = done.resumed_from;
    }
    return entry;
}

std::string plural(std::size_t count, const std::string& word)
{
    return std::to_string(count) + " " + word + (count == 1 ? "" : "s");
}

// What follows "...; first" in a summary's message: ' "NAME": MESSAGE', or
// ': MESSAGE' where the message names NAME itself (named_once).
std::string led_by_name(const std::string& name, const std::string& message)
{
    const std::string named = named_once(name, message);
    return (named == message ? ": " : " ") + named;
}

// "error" of a transfer's JSON: the first failed file's code (scripts test
// for "error" as for any other command), else the first folder's, with a
// message that counts both when there is more than the one failure.
std::optional<Error> first_transfer_error(const TransferSummary& summary)
{
    const std::size_t failed = summary.failed();
    const std::size_t folders = summary.failed_folders.size();
    if (failed + folders == 0) {
        return std::nullopt;
    }
    // The first failure with a cause of its own speaks for the command: a
    // file or folder below a folder that could not be made failed for that
    // folder's reason.
    const auto file_failed = [](const FileOutcome& outcome) { return outcome.error.has_value(); };
    const auto own_file = std::find_if(summary.files.begin(), summary.files.end(), [&](const FileOutcome& outcome) {
        return file_failed(outcome) && !outcome.follows_its_folder;
    });
    const auto own_folder = std::find_if(summary.failed_folders.begin(), summary.failed_folders.end(),
                                         [](const FolderFailure& failure) { return !failure.follows_its_folder; });
    const auto any_file = std::find_if(summary.files.begin(), summary.files.end(), file_failed);
    Error first;
    std::string name;
    if (own_file != summary.files.end()) {
        std::tie(first, name) = std::tie(*own_file->error, own_file->name);
    } else if (own_folder != summary.failed_folders.end()) {
        std::tie(first, name) = std::tie(own_folder->error, own_folder->name);
    } else if (any_file != summary.files.end()) {
        std::tie(first, name) = std::tie(*any_file->error, any_file->name);
    } else {
        std::tie(first, name) = std::tie(summary.failed_folders.front().error, summary.failed_folders.front().name);
    }
    if (summary.files.size() > 1 || failed + folders > 1) {
        std::string counted = failed == 0 && folders > 0
                                  ? plural(folders, "folder") + " failed"
                                  : std::to_string(failed) + " of " + plural(summary.files.size(), "file") + " failed";
        if (failed > 0 && folders > 0) {
            counted += " and " + plural(folders, "folder") + " failed";
        }
        first.message = counted + "; first" + led_by_name(name, first.message);
    }
    return first;
}

} // namespace

void Output::summary(const TransferSummary& summary, bool upload) const
{
    const std::size_t failed = summary.failed();
    const std::size_t ok = summary.files.size() - failed;
    const std::uint64_t moved = summary.moved();
    const double rate = rate_of(moved, summary.seconds);
    if (json_) {
        // One shape whatever the number of files (docs/ferry-json.schema.json).
        Json files = Json::array();
        for (const auto& file : summary.files) {
            files.push_back(transfer_file_json(file));
        }
        Json whole{{"files", std::move(files)},
                   {"summary",
                    {{"files", summary.files.size()},
                     {"ok", ok},
                     {"skipped", summary.skipped()},
                     {"failed", failed},
                     {"bytes", moved},
                     {"seconds", summary.seconds},
                     {"bytes_per_second", rate}}}};
        // Present only when a folder failed, so a clean run's shape is as
        // it always was.
        if (!summary.failed_folders.empty()) {
            Json folders = Json::array();
            for (const auto& folder : summary.failed_folders) {
                folders.push_back(
                    Json{{"name", folder.name}, {"local", folder.local}, {"error", error_json(folder.error)}});
            }
            whole["summary"]["failed_folders"] = summary.failed_folders.size();
            whole["failed_folders"] = std::move(folders);
        }
        // Present only when any, as failed_folders: a clean run's shape is
        // as it always was.
        if (!summary.notes.empty()) {
            whole["notes"] = summary.notes;
        }
        if (const auto first = first_transfer_error(summary)) {
            whole["error"] = error_json(*first);
        }
        emit_json(dump(whole));
        return;
    }
    if ((summary.files.size() < 2 && summary.failed_folders.empty()) || verbosity_ == Verbosity::quiet) {
        return;
    }
    // "failed", not "not made": a folder here may also be one the server
    // could not list or read (its own line above says which).
    const std::string folders =
        summary.failed_folders.empty() ? "" : "; " + plural(summary.failed_folders.size(), "folder") + " failed";
    const char* verb = upload ? "sent" : "received";
    // The verb counts only what moved: "4 files sent: 0 ok" claimed four
    // transfers where none happened, and files skipped by --skip-identical
    // or --no-clobber were not moved either, so they are counted apart.
    const std::size_t skipped = summary.skipped();
    const std::string counts = plural(summary.files.size(), "file") + ": " + std::to_string(ok - skipped) + " " + verb +
                               ", " + (skipped == 0 ? "" : std::to_string(skipped) + " skipped, ") +
                               std::to_string(failed) + " failed";
    std::fprintf(out_, "%s%s; %s in %s (%s/s)\n", counts.c_str(), folders.c_str(), human_size(moved).c_str(),
                 seconds_text(summary.seconds).c_str(), human_size(static_cast<std::uint64_t>(rate)).c_str());
    std::fflush(out_);
}

void Output::stats(const StatsReply& stats) const
{
    if (json_) {
        // The codes are the server's words: printable(), as in error_json.
        Json errors = Json::object();
        for (const auto& [code, count] : stats.errors) {
            errors[printable(code)] = count;
        }
        emit_json(dump(Json{{"uptime_seconds", stats.uptime_seconds},
                            {"connections", {{"now", stats.connections_now}, {"total", stats.connections_total}}},
                            {"transfers", {{"now", stats.transfers_now}, {"total", stats.transfers_total}}},
                            {"bytes", {{"in", stats.bytes_in}, {"out", stats.bytes_out}}},
                            {"errors", std::move(errors)}}));
        return;
    }
    std::string errors;
    for (const auto& [code, count] : stats.errors) {
        errors += (errors.empty() ? "" : ", ") + printable(code) + " " + std::to_string(count);
    }
    std::fprintf(
        out_,
        "uptime:       %s\n"
        "connections:  %llu now, %llu since start\n"
        "transfers:    %llu now, %llu since start\n"
        "bytes in:     %llu (%s) received by puts\n"
        "bytes out:    %llu (%s) sent by gets\n"
        "errors:       %s\n",
        duration_text(stats.uptime_seconds).c_str(), static_cast<unsigned long long>(stats.connections_now),
        static_cast<unsigned long long>(stats.connections_total), static_cast<unsigned long long>(stats.transfers_now),
        static_cast<unsigned long long>(stats.transfers_total), static_cast<unsigned long long>(stats.bytes_in),
        human_size(stats.bytes_in).c_str(), static_cast<unsigned long long>(stats.bytes_out),
        human_size(stats.bytes_out).c_str(), errors.empty() ? "none" : errors.c_str());
    std::fflush(out_);
}

void Output::sync(const SyncSummary& summary) const
{
    if (json_) {
        Json errors = Json::array();
        for (const auto& [path, error] : summary.errors) {
            errors.push_back(Json{{"path", path}, {"code", std::string(to_string(error.code))}, {"message", error.message}});
        }
        Json whole{{"sync",
                    {{"direction", summary.push ? "push" : "pull"},
                     {"sent", summary.sent},
                     {"skipped", summary.skipped},
                     {"deleted", summary.deleted},
                     {"bytes", summary.bytes},
                     {"seconds", summary.seconds},
                     {"dry_run", summary.dry_run},
                     {"errors", std::move(errors)},
                     {"notes", summary.notes}}}};
        if (summary.parts_deleted > 0) {
            // Only when there are any: the shape of every other sync stays as it was.
            whole["sync"]["parts_deleted"] = summary.parts_deleted;
        }
        if (summary.left_out > 0) {
            whole["sync"]["left_out"] = summary.left_out; // likewise
        }
        if (!summary.errors.empty()) {
            // As every command's: scripts test for "error"; the first says what kind.
            const auto& [path, error] = summary.errors.front();
            Error first = error;
            first.message = std::to_string(summary.errors.size()) + " error" + (summary.errors.size() == 1 ? "" : "s") +
                            "; first" + (path.empty() ? ": " + error.message : led_by_name(path, error.message));
            whole["error"] = error_json(first);
        }
        emit_json(dump(whole));
        return;
    }
    if (verbosity_ == Verbosity::quiet) {
        return;
    }
    std::string parts = summary.parts_deleted == 0
                            ? std::string()
                            : ", " + std::to_string(summary.parts_deleted) + " partial download" +
                                  (summary.parts_deleted == 1 ? "" : "s") + " deleted";
    if (summary.left_out > 0) {
        parts += ", " + std::to_string(summary.left_out) + " left out";
    }
    // A pull's files came from the server: "received" here, as get says it
    // (--json keeps one field, "sent", for both directions).
    std::fprintf(out_, "%s%s: %llu %s, %llu skipped, %llu deleted%s; %s in %s%s\n", summary.dry_run ? "dry run, " : "",
                 summary.push ? "push" : "pull", static_cast<unsigned long long>(summary.sent),
                 summary.push ? "sent" : "received",
                 static_cast<unsigned long long>(summary.skipped), static_cast<unsigned long long>(summary.deleted),
                 parts.c_str(), human_size(summary.bytes).c_str(), seconds_text(summary.seconds).c_str(),
                 summary.errors.empty() ? ""
                                        : ("; " + std::to_string(summary.errors.size()) + " error" +
                                           (summary.errors.size() == 1 ? "" : "s"))
                                              .c_str());
    std::fflush(out_);
}

std::string entries(std::uint64_t count)
{
    return std::to_string(count) + (count == 1 ? " entry" : " entries");
}

std::string named_once(const std::string& name, const std::string& message)
{
    for (const std::string& quoted_name : std::array<std::string, 2>{"\"" + name + "\"", ferry::quoted(name)}) {
        if (find_named(message, quoted_name) != std::string::npos) {
            return message;
        }
    }
    return "\"" + name + "\": " + message;
}

std::size_t find_named(const std::string& message, const std::string& quoted_path, std::size_t from)
{
    constexpr std::string_view kBefore = " (";
    constexpr std::string_view kAfter = " :,;.)";
    for (auto at = message.find(quoted_path, from); at != std::string::npos; at = message.find(quoted_path, at + 1)) {
        const std::size_t end = at + quoted_path.size();
        const bool starts = at == 0 || kBefore.find(message[at - 1]) != std::string_view::npos;
        const bool ends = end == message.size() || kAfter.find(message[end]) != std::string_view::npos;
        if (starts && ends) {
            return at;
        }
    }
    return std::string::npos;
}

std::string too_deep_note(std::uint64_t count)
{
    return entries(count) + " not listed: deeper than " + std::to_string(kMaxPathDepth) + " folders or longer than " +
           std::to_string(kMaxPathBytes) + " bytes, past what a path may name (its folders are not entered)";
}

} // namespace ferry::client
