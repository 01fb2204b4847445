// How results and errors are shown: text for people, or with --json exactly
// one JSON object per command on stdout (errors included), for scripts.
// Human errors read "ferry: <code>: <message>" on stderr.
#pragma once

#include "error.hpp"
#include "messages.hpp"
#include "operations.hpp"

#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ferry::client {

// How much ferry tells people: -q only errors (and what a command is
// asked for: a listing, a stat); -v also each step (connecting, retries).
enum class Verbosity { quiet, normal, verbose };

// How one file of a get or put ended.
struct FileOutcome {
    std::string name;  // on the server
    std::string local; // the local path ("-": standard input or output)
    std::optional<Error> error;
    // Not transferred, on purpose (--no-clobber): "exists" or "identical".
    std::optional<std::string> skipped;
    // Set once transferred.
    std::optional<TransferResult> done;
    // Failed only because a folder above it could not be made
    // (FolderFailure::follows_its_folder): never the error that speaks for
    // the command.
    bool follows_its_folder = false;
};

// How one path of rm, mkdir or digest ended: the server's reply, or an error.
struct PathOutcome {
    std::string path; // on the server (as typed when it matched nothing)
    std::optional<Error> error;
    std::optional<DeleteReply> removed;
    std::optional<MkdirReply> made;
    std::optional<DigestReply> digest;
};

// A folder of get -r or put -r that could not be made (a link stands at
// its local name, the server refused it, its own folder was not made). It
// is no file, so it is not among a summary's files: the files below it
// fail there each on their own, and it is counted here.
struct FolderFailure {
    std::string name;  // on the server
    std::string local; // the local path
    Error error;
    // Failed only because a folder above it did: that folder's line says
    // why, so text output prints none for this one (--json lists it).
    bool follows_its_folder = false;
};

struct TransferSummary {
    std::vector<FileOutcome> files;
    std::vector<FolderFailure> failed_folders;
    // What was left out on purpose and why (a link, a FIFO, a hidden name
    // put -r does not send...): text mode prints each as a note on stderr
    // as it comes; --json has them here, as sync's summary has its notes.
    std::vector<std::string> notes;
    double seconds = 0;
    std::size_t failed() const;
    std::size_t skipped() const; // not failed, and not moved on purpose
    std::uint64_t moved() const;
};

// What a sync did (or, with --dry-run, would do): docs/ferry-json.schema.json's "sync".
struct SyncSummary {
    bool push = true;
    std::uint64_t sent = 0;    // files sent (or to send)
    std::uint64_t skipped = 0; // files the same on both sides
    std::uint64_t deleted = 0; // files and folders removed (or to remove)
    // A pull's --delete: partial downloads (NAME.ferry-part with its state)
    // of files the server no longer has, removed (or to remove); apart
    // from `deleted`, which counts what the server's side decides.
    std::uint64_t parts_deleted = 0;
    // Entries of the sending side that sync cannot carry and left out, each
    // with a note: a push's links, FIFOs, devices, names the server refuses,
    // paths too deep; a pull's entries the server could not show or list
    // (its hidden names are no entries of its library). Not an error: a
    // script that needs the trees equal tests it.
    std::uint64_t left_out = 0;
    std::uint64_t bytes = 0;   // file bytes that crossed the network (or would)
    double seconds = 0;
    bool dry_run = false;
    // Each failure with the path it concerns ("" for the sync as a whole).
    std::vector<std::pair<std::string, Error>> errors;
    // What text mode prints as it goes (links and special files passed
    // over, what was deleted, a dry run's plan): --json has them here.
    std::vector<std::string> notes;
};

class Output {
public:
    explicit Output(bool json, std::FILE* out = stdout, std::FILE* err = stderr) : json_(json), out_(out), err_(err) {}

    bool json() const { return json_; }
    Verbosity verbosity() const { return verbosity_; }
    void set_verbosity(Verbosity verbosity) { verbosity_ = verbosity; }
    // Whether transfers draw a progress bar (also needs a terminal, no --json).
    bool progress() const;
    void set_progress(bool progress) { progress_ = progress; }

    // A listing; folders end in '/' for people and carry "type" in JSON.
    // `unread`: the folders the listing could not read (by their paths as
    // listed), each with its error; shown after the listing.
    void list(const ListReply& reply, const std::vector<std::pair<std::string, Error>>& unread = {}) const;
    void stat(const FileInfo& file) const;
    // What a wildcard of stat matched: each one's stat for people, one
    // {"files": [...]} with --json.
    void stat_many(const std::vector<FileInfo>& files) const;
    // Each as it happens, for people (nothing with --json or -q).
    void removed(const DeleteReply& reply) const;
    void made(const MkdirReply& reply) const;
    void moved(const RenameReply& reply) const;
    // The shell's pwd and lpwd: the folder, as it is for people (shown even
    // with -q, since it is what was asked for); {"folder": "/logs"} or
    // {"local_folder": "/home/me"} with --json.
    void current_folder(const std::string& path, bool local) const;
    // "DIGEST  PATH", as sha256sum prints it (so that sha256sum -c reads it);
    // shown even with -q, since it is what was asked for.
    void digested(const DigestReply& reply) const;
    // The end of rm, mkdir or digest with --json: one object, the replies
    // under `key` ("removed", "made", "files"), the failures under "failed"
    // and, when any failed, "error" (the first failure).
    void path_summary(const std::string& key, const std::vector<PathOutcome>& outcomes) const;
    // A warning for people on stderr ("ferry: note: ..."): something left
    // out on purpose (a symlink put -r does not follow). Nothing with -q or --json.
    void warning(const std::string& text) const;
    // The same for a command that ends in one JSON object: with --json the
    // text goes to that object's `notes` (stdout holds nothing else).
    void warning(std::string text, std::vector<std::string>& json_notes) const;
    // "FROM -> TO: size, hash digest": the server's name on the left of a get,
    // the local path on the left of a put.
    void transferred(const TransferResult& result, bool upload) const;
    void error(const Error& error) const;
    // A file that --no-clobber left alone (people only; --json has it in the summary).
    void skipped(const FileOutcome& file, bool upload) const;
    // The end of a get or put: with --json the one object of the whole
    // command, whatever the number of files (docs/ferry-json.schema.json);
    // for people, with several files, a closing line (the files were shown
    // as they ended).
    void summary(const TransferSummary& summary, bool upload) const;
    void stats(const StatsReply& stats) const;
    // The end of a sync: with --json its one object, for people one line
    // (the errors were shown as they happened).
    void sync(const SyncSummary& summary) const;
    // A line of information for people (the shell's greeting), printable(); nothing with --json.
    void note(const std::string& text) const;
    // A step worth telling with -v ("connected to ..."), printable(), on stderr; else nothing.
    void detail(const std::string& text) const;

private:
    void emit_json(const std::string& text) const;

    bool json_;
    Verbosity verbosity_ = Verbosity::normal;
    bool progress_ = true;
    std::FILE* out_;
    std::FILE* err_;
};

// `message` led by the quoted `name` ("\"d/f\": permission denied"), unless
// it names it already ("no file named \"d/f\""), raw or as printable()
// shows it (find_named): each line and --json message names its path once.
std::string named_once(const std::string& name, const std::string& message);

// Where `message` names `quoted_path` (a path in its double quotes) as a
// whole, from `from` on: at the start or after a space or '(', and before
// the end, a space or one of ":,;.)". Quotes are not escaped in a name, so
// a name holding them ("q\"x\"/x") never passes for another path ("x").
// std::string::npos where it is not named.
std::size_t find_named(const std::string& message, const std::string& quoted_path, std::size_t from = 0);

// The note for entries a listing left out for the path bounds (PROTOCOL.md
// 5.1): "N entries not listed: deeper than 64 folders or longer than 4,095 bytes".
std::string too_deep_note(std::uint64_t count);

// "1 entry", "2 entries": a count of entries in a note or message.
std::string entries(std::uint64_t count);

// "1.5 MiB", "312 B": for people only.
std::string human_size(std::uint64_t bytes);
// A Unix time as a local "YYYY-MM-DD HH:MM".
std::string local_date(std::int64_t seconds);

// The note that a copy's file system did not keep the time asked (get -p,
// put -p, sync: TransferResult::time_not_kept), naming the file `name`
// and where the copy is (`on_server`: a put's): reported, never hidden.
std::string time_not_kept_note(const std::string& name, const TransferResult::TimeNotKept& times, bool on_server);

} // namespace ferry::client
