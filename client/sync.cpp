#include "sync.hpp"

#include "descriptors.hpp"

#include "commands.hpp"
#include "interrupt.hpp"
#include "local_files.hpp"
#include "local_tree.hpp"
#include "names.hpp"
#include "operations.hpp"
#include "publish_batch.hpp"
#include "remote_paths.hpp"
#include "remote_tree.hpp"
#include "sync_local.hpp"
#include "sync_plan.hpp"
#include "transfers.hpp"
#include "unsynced_puts.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <ctime>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_set>
#include <thread>
#include <utility>

namespace ferry::client {

namespace {

using Clock = std::chrono::steady_clock;

// ---- the server's side -------------------------------------------------------------------

constexpr const char* kUnlistedEntries = "entries the server does not list";

// Every file and folder below the server's `path`, by one recursive list
// (always paged: the server reads the next page only as we read). Each
// folder the server says holds what it does not list (a hidden or invalid
// name, a link, FIFO, socket or device...) gets one entry of kind `other`
// below it, named "FOLDER/" (an empty last component, which no real entry
// has; "/" for the listed folder itself): the plan then knows, as for a
// pull's local scan, that a delete keeps that folder and those above it,
// and never replaces it; and on a pull, that the local entries in it may
// be the ones the server has there and cannot show, so --delete spares them.
struct RemoteSkipped {
    std::uint64_t names = 0;    // names that break Ferry's rule
    std::uint64_t too_deep = 0; // paths past PROTOCOL.md 5.1's bounds
    // Folders the server could not enter or read ("unreadable_folders"):
    // each also holds an `other` entry, so nothing below it is deleted.
    std::vector<UnreadableFolder> unread;
};
Result<TreeListing> list_remote_tree(Connection& connection, const std::string& path, RemoteSkipped& skipped)
{
    auto listed = list_folder(connection, path, true);
    if (!listed) {
        return listed.error();
    }
    skipped.names = listed->skipped_invalid_names;
    skipped.too_deep = listed->skipped_too_deep;
    TreeListing tree;
    tree.reserve(listed->files.size());
    for (auto& entry : listed->files) {
        const bool folder = is_folder(entry);
        tree.push_back({std::move(entry.name),
                        folder ? EntryKind::folder : EntryKind::file,
                        entry.size,
                        entry.mtime,
                        {},
                        folder ? entry.mode : std::nullopt});
    }
    // A folder the server could not read is one holding unlisted entries
    // too, even from a server that named it in only one of the two fields.
    std::set<std::string> holders(std::make_move_iterator(listed->holding_unlisted.begin()),
                                  std::make_move_iterator(listed->holding_unlisted.end()));
    for (const auto& folder : listed->unreadable_folders) {
        holders.insert(folder.path);
    }
    for (const auto& folder : holders) {
        tree.push_back({folder + "/", EntryKind::other, 0, 0, kUnlistedEntries});
    }
    skipped.unread = std::move(listed->unreadable_folders);
    return tree;
}

// ---- the summary, shared by the threads ---------------------------------------------------

class Tally {
public:
    Tally(const Output& output, bool push) : output_(output) { summary_.push = push; }
    // The shell's current folder and the sync's server folder (from the
    // root, and as typed): the lines shown name server paths as the shell's
    // other commands do (shown_path, named_as_typed); --json's summary
    // keeps its own paths.
    void shown_in(std::string current, std::string remote, std::string remote_typed)
    {
        current_ = std::move(current);
        remote_ = TypedPath{std::move(remote), std::move(remote_typed)};
    }

    void failed(const std::string& path, const Error& error)
    {
        const std::lock_guard lock(mutex_);
        if (!output_.json()) {
            const Error named = shown(error);
            output_.error(path.empty() ? named : Error{named.code, named_once(printable(path), named.message)});
        }
        summary_.errors.emplace_back(path, error);
    }
    // An error whose message already names `where` (the sync's own folder,
    // ":d" or a local path): shown as it is, and `where` is its path in the
    // JSON summary, so that no reader is left with an empty path.
    void failed_at(const std::string& where, const Error& error)
    {
        const std::lock_guard lock(mutex_);
        if (!output_.json()) {
            output_.error(shown(error));
        }
        summary_.errors.emplace_back(where, error);
    }
    // A file the plan counted skipped (equal) whose time could not be set
    // after all: failed, and no longer skipped.
    void failed_skipped(const std::string& path, const Error& error)
    {
        failed(path, error);
        const std::lock_guard lock(mutex_);
        if (summary_.skipped > 0) {
            --summary_.skipped;
        }
    }
    void sent(const TransferResult& result, bool push)
    {
        const std::lock_guard lock(mutex_);
        if (current_.empty()) {
            output_.transferred(result, push);
        } else {
            TransferResult shown = result;
            shown.file.name = shown_path(result.file.name, current_);
            output_.transferred(shown, push);
        }
        ++summary_.sent;
        summary_.bytes += result.moved();
        if (result.time_not_kept) {
            // Compared as that file system holds it, the next sync finds it
            // the same (PlanOptions::held); said once, as it is copied.
            keep_note(time_not_kept_note(push ? result.file.name : result.local, *result.time_not_kept,
                                                    push));
        }
    }
    // `count` entries removed at `shown`; `kept`: the folders left there
    // because they hold what --delete never removes, each with its reason.
    void deleted(const std::string& shown, std::uint64_t count, const std::vector<std::string>& kept = {})
    {
        const std::lock_guard lock(mutex_);
        if (kept.empty()) {
            keep_note("deleted " + printable(shown));
        } else {
            // One note, one line (a --json string each), as a dry run says it.
            // Nothing removed (a second run finds only what stays): no
            // "deleted 0 entries", the note says what is kept and why.
            std::string note = count == 0
                                   ? "kept " + printable(shown) + ", not on the sending side: "
                                   : "deleted " + entries(count) + " in " + printable(shown) + "; the folder stays: ";
            for (std::size_t i = 0; i < kept.size(); ++i) {
                note += (i == 0 ? "" : "; ") + printable(kept[i]);
            }
            keep_note(note);
        }
        summary_.deleted += count;
    }
    // `count` entries removed at `shown`, not all it held: the errors say why.
    void deleted_part(const std::string& shown, std::uint64_t count)
    {
        const std::lock_guard lock(mutex_);
        keep_note("deleted " + entries(count) + " in " + printable(shown) + "; the rest failed");
        summary_.deleted += count;
    }
    // A pull's --delete: the partial download `shown` of a file the server
    // no longer has, removed (a dry run's: to remove); counted apart.
    void deleted_part_file(const std::string& shown, bool dry_run)
    {
        const std::lock_guard lock(mutex_);
        keep_note(std::string(dry_run ? "would delete" : "deleted") + " the partial download " + printable(shown) +
                  " (its file is no longer on the server)");
        ++summary_.parts_deleted;
    }
    void deleted_leftover(const std::string& shown, bool dry_run)
    {
        const std::lock_guard lock(mutex_);
        keep_note(std::string(dry_run ? "would delete" : "deleted") + " " + printable(shown) +
                  (is_set_aside_name(base_name(shown)) ? ", left by an interrupted removal"
                                                       : ", left by an interrupted download"));
    }
    void note(const std::string& text)
    {
        const std::lock_guard lock(mutex_);
        keep_note(text);
    }
    // A caution rather than a step of the sync: "ferry: note:" on stderr
    // for people (as put's), the summary's `notes` under --json.
    void caution(const std::string& text)
    {
        const std::lock_guard lock(mutex_);
        output_.warning(text, summary_.notes);
    }

    SyncSummary& summary() { return summary_; }

private:
    // A server's error, which names its folder from the root, as the shell
    // names it, and a folder typed with '..' as typed (named_as_typed).
    Error shown(const Error& error) const { return named_as_typed(error, std::vector<TypedPath>{remote_}, current_); }
    // Printed as it comes in text mode; under --json, kept for the summary
    // (stdout holds the one JSON object).
    void keep_note(std::string text)
    {
        if (output_.json()) {
            summary_.notes.push_back(std::move(text));
        } else {
            output_.note(text);
        }
    }

    const Output& output_;
    std::mutex mutex_;
    SyncSummary summary_;
    std::string current_;
    TypedPath remote_;
};

Error interrupted_error()
{
    return Error{ErrorCode::aborted, "interrupted; run the same sync again to finish it"};
}

// ---- a pull's partial downloads of files the server no longer has --------------------------

// Why an orphan part stays, for people; `part_stands` false: the orphan
// is only a sidecar or temporaries, named in the note.
std::string orphan_left(OrphanEnd end, bool part_stands = true)
{
    switch (end) {
    case OrphanEnd::removed:
        break;
    case OrphanEnd::not_ferrys:
        if (!part_stands) {
            return "not a leftover ferry wrote (another user's, another name's, not 0600, or not a download "
                   "state): left";
        }
        return "not provably a part of ferry's (no mark, no sidecar written for it, not empty): left";
    case OrphanEnd::locked:
        return "being written by another download: left";
    }
    return "left";
}

// The pull's stray leftovers (stray_leftovers: a kill's temporaries,
// sidecars without a part, and files a removal had set aside), removed in every pull, --delete or not: they
// hold nothing a resume or a user needs, and nothing else would ever
// remove them. Each is taken out of the scan's entries, so that the
// orphan parts and the plan see what stays; one whose part another
// download holds is noted and left. A dry run lists them (`would
// delete`) and removes nothing.
void remove_stray_leftovers(Tally& tally, const SyncArguments& arguments, LocalScan& scan)
{
    std::set<std::string> gone;
    for (const auto& path : stray_leftovers(scan.entries)) {
        if (interrupted()) {
            break;
        }
        const std::string shown = local_join(arguments.local, path);
        auto removed = remove_stray_leftover(arguments.local, path, arguments.dry_run);
        if (!removed) {
            tally.failed(path, removed.error());
        } else if (removed.value() == LeftoverEnd::removed) {
            tally.deleted_leftover(shown, arguments.dry_run);
            gone.insert(path);
        } else if (removed.value() == LeftoverEnd::locked) {
            tally.note(printable(shown) + ": " + orphan_left(OrphanEnd::locked));
        }
    }
    std::erase_if(scan.entries, [&](const TreeEntry& entry) { return gone.contains(entry.path); });
}

bool part_stands(const OrphanPart& orphan)
{
    return orphan.found.empty() ||
           std::find(orphan.found.begin(), orphan.found.end(), orphan.part) != orphan.found.end();
}

// What an orphan's notes name: its part, or, where none stands (a stray
// sidecar), the first of what does.
std::string orphan_shown(const SyncArguments& arguments, const OrphanPart& orphan)
{
    return local_join(arguments.local, part_stands(orphan) ? orphan.part : orphan.found.front());
}

// The file an orphan part of a name too long for NAME.ferry-part (the
// hidden .HEX.ferry-part, which tells nothing of it) was a part of, as a
// local path: the name its sidecar holds, where one stands, is readable as
// ferry's, and names a file whose part is that very one; else nullopt.
// Read before the orphan is removed (its sidecar goes with it).
std::optional<std::string> long_named_file(const SyncArguments& arguments, const OrphanPart& orphan)
{
    const std::string sidecar = orphan.part + std::string(kStateSuffix);
    const std::string part_leaf = base_name(orphan.part);
    constexpr std::size_t kHexDigits = 64; // SHA-256's, as part_path names it
    if (part_leaf.size() != 1 + kHexDigits + kPartSuffix.size() || !part_leaf.starts_with('.') ||
        std::find(orphan.found.begin(), orphan.found.end(), sidecar) == orphan.found.end()) {
        return std::nullopt; // a part that names its file (NAME.ferry-part), or no sidecar to ask
    }
    auto folder = open_tree_folder(arguments.local, orphan.part);
    if (!folder) {
        return std::nullopt;
    }
    auto state = read_download_state(local_join(arguments.local, sidecar), folder.value().get());
    if (!state) {
        return std::nullopt;
    }
    const std::string leaf = state->name.empty() ? std::string() : base_name(state->name);
    const std::string folder_path = parent_path(orphan.part);
    const std::string file = folder_path.empty() ? leaf : folder_path + "/" + leaf;
    if (leaf.empty() || part_path(file) != orphan.part) {
        return std::nullopt;
    }
    return local_join(arguments.local, file);
}

// What an orphan's notes name: orphan_shown, with the file a hidden part
// of a long name was a part of, where it is known.
std::string orphan_named(const SyncArguments& arguments, const OrphanPart& orphan)
{
    std::string shown = orphan_shown(arguments, orphan);
    if (const auto file = long_named_file(arguments, orphan)) {
        shown += ", the part of " + *file;
    }
    return shown;
}

// The pull's orphan parts (orphan_parts), each looked at first
// (remove_orphan_part's dry run): one that is not provably ferry's, or
// that another download holds, is named with why it stays. Without
// --delete each other one is named in a note and left: nothing resumes
// it, so it would otherwise stay forever unseen. With --delete (the local side is to end as the server's), those
// remove_orphan_part would remove are taken out of the scan's entries, so
// that the plan may remove the folders holding them, and returned, to be
// removed before the plan's removals (a dry run lists and counts them);
// the others are noted and left.
std::vector<OrphanPart> settle_orphan_parts(Tally& tally, const SyncArguments& arguments, LocalScan& scan,
                                            const TreeListing& remote)
{
    std::vector<OrphanPart> removable;
    for (auto& orphan : orphan_parts(scan.entries, remote)) {
        const std::string shown = orphan_named(arguments, orphan);
        auto looked = remove_orphan_part(arguments.local, orphan, true);
        if (!looked) {
            tally.failed(orphan.part, looked.error());
            continue;
        }
        if (looked.value() != OrphanEnd::removed) {
            tally.note(printable(shown) + ": " + orphan_left(looked.value(), part_stands(orphan)));
            continue;
        }
        if (!arguments.delete_extras) {
            tally.note(printable(shown) +
                       ": the partial download of a file the server no longer has; left (--delete removes it)");
            continue;
        }
        std::erase_if(scan.entries, [&](const TreeEntry& entry) {
            return std::find(orphan.found.begin(), orphan.found.end(), entry.path) != orphan.found.end();
        });
        if (arguments.dry_run) {
            tally.deleted_part_file(shown, true);
        }
        removable.push_back(std::move(orphan));
    }
    return removable;
}

void remove_orphan_parts(Tally& tally, const SyncArguments& arguments, const std::vector<OrphanPart>& orphans)
{
    for (const auto& orphan : orphans) {
        if (interrupted()) {
            return;
        }
        const std::string shown = orphan_named(arguments, orphan);
        auto removed = remove_orphan_part(arguments.local, orphan, false);
        if (!removed) {
            tally.failed(orphan.part, removed.error());
        } else if (removed.value() == OrphanEnd::removed) {
            tally.deleted_part_file(shown, false);
        } else {
            tally.note(printable(shown) + ": " + orphan_left(removed.value(), part_stands(orphan)));
        }
    }
}

// ---- the connections ---------------------------------------------------------------------

// The command's connection and up to jobs - 1 more, opened by their own
// thread the first time it runs, kept for the next phase. A connection
// that cannot be opened leaves its share of the work to the others.
class Crew {
public:
    Crew(Connection& first, const ConnectOptions& options, unsigned jobs)
        : first_(first), options_(options), extra_(jobs > 1 ? jobs - 1 : 0)
    {
    }

    // Runs work(connection) on min(jobs, count) threads (the calling one
    // included) and waits for them all.
    template <class Work>
    void run(std::size_t count, Work work)
    {
        const std::size_t threads = std::max<std::size_t>(1, std::min(count, extra_.size() + 1));
        std::vector<std::thread> started;
        for (std::size_t i = 1; i < threads; ++i) {
            started.emplace_back([this, i, &work] {
                auto& slot = extra_[i - 1];
                if (!slot) {
                    auto opened = Connection::open(first_.endpoint(), options_);
                    if (!opened) {
                        return; // the others do its share
                    }
                    slot = std::make_unique<Connection>(std::move(opened.value()));
                }
                work(*slot);
            });
        }
        work(first_);
        for (auto& thread : started) {
            thread.join();
        }
    }

private:
    Connection& first_;
    const ConnectOptions& options_;
    std::vector<std::unique_ptr<Connection>> extra_;
};

// Hands out indices 0..count-1, once each, to any thread.
class Queue {
public:
    explicit Queue(std::size_t count) : count_(count) {}
    std::optional<std::size_t> take()
    {
        const std::size_t index = next_.fetch_add(1);
        return index < count_ ? std::optional<std::size_t>(index) : std::nullopt;
    }

private:
    std::size_t count_;
    std::atomic<std::size_t> next_{0};
};

Status ensure_open(Connection& connection)
{
    return connection.is_open() ? Status(success()) : connection.reconnect();
}

// ---- --checksum: both sides' digests of the files of the same size ------------------------

// The local digest is of the very file the scan listed (`listed`), never
// of what a path leads to now: a file that is not that one fails, and
// without its digest is never taken for equal. `hashed`: each local file
// hashed, as hashed, for a pull's set_hashed_mtime. `undecided`: the files
// whose comparison failed (the error is in the tally): the plan leaves
// them as they are, neither sent nor counted skipped, so that each is
// reported once and the next sync looks at it again.
struct GatheredDigests {
    Digests local;
    Digests remote;
    std::map<std::string, HashedFile> hashed;
    std::set<std::string> undecided;
};

void gather_digests(Crew& crew, Tally& tally, const SyncArguments& arguments, const std::vector<std::string>& paths,
                    const std::map<std::string, ListedFile>& listed, std::size_t held_folders,
                    GatheredDigests& gathered)
{
    Queue queue(paths.size());
    HeldFolders folders(held_folders); // the local files' folders, each walked to once
    std::mutex mutex;
    const auto undecided = [&](const std::string& path, const Error& error) {
        tally.failed(path, error);
        const std::lock_guard lock(mutex);
        gathered.undecided.insert(path);
    };
    crew.run(paths.size(), [&](Connection& connection) {
        while (auto index = queue.take()) {
            if (interrupted()) {
                return;
            }
            const std::string& path = paths[*index];
            const std::string local = local_join(arguments.local, path);
            const std::string remote = join_remote(arguments.remote, path);
            const auto seen = listed.find(path);
            auto mine =
                seen == listed.end()
                    ? Result<HashedFile>(about_local_files(ErrorCode::local_io, "\"" + local + "\" was not listed"))
                    : hash_local_file(seen->second, local, arguments.hash, &folders);
            if (!mine) {
                undecided(path, mine.error());
                continue;
            }
            Result<DigestReply> theirs = Error{ErrorCode::internal, ""};
            if (auto open = ensure_open(connection); !open) {
                theirs = open.error();
            } else {
                theirs = remote_digest(connection, remote, arguments.hash);
            }
            if (!theirs) {
                // Without the server's digest the file is sent: never assumed equal.
                if (theirs.error().code != ErrorCode::not_found) {
                    undecided(path, theirs.error());
                }
                continue;
            }
            if (theirs->hash != arguments.hash) {
                continue; // another hash than asked: no comparison, the file is sent
            }
            const std::lock_guard lock(mutex);
            gathered.local[path] = mine->digest;
            gathered.remote[path] = std::move(theirs->digest);
            gathered.hashed.emplace(path, std::move(mine.value()));
        }
    });
}

// ---- the transfers -----------------------------------------------------------------------

// The files of one pass that failed for a passing reason (a lost
// connection, a busy server), to be tried again; any other failure is
// final and goes to the tally at once. Shared by the pass's threads.
class Retries {
public:
    void failed(Tally& tally, const std::vector<FileTransfer>& transfers, std::size_t index, const Error& error)
    {
        if (exit_status(error.code) == kExitTransient && !interrupted()) {
            const std::lock_guard lock(mutex_);
            failed_.emplace_back(index, error);
            return;
        }
        tally.failed(transfers[index].path, error);
    }
    const std::vector<std::pair<std::size_t, Error>>& list() const { return failed_; }

private:
    std::mutex mutex_;
    std::vector<std::pair<std::size_t, Error>> failed_;
};

// The folders of the files a push did not publish, for whatever reason (a
// local file that could not be opened or changed since it was listed, a
// server busy or out of transfer slots, a lost connection): a put makes
// the folders above its file, so theirs may be missing on the server, yet
// they were listed and are made all the same (make_unsent_folders), before
// the folder times are set; a folder some other put made is asked for
// once more, and is there already. Shared by the push's threads.
class UnsentFolders {
public:
    void add(const std::string& file)
    {
        const std::lock_guard lock(mutex_);
        folders_.insert(parent_path(file));
    }
    std::set<std::string> take()
    {
        const std::lock_guard lock(mutex_);
        return std::exchange(folders_, {});
    }

private:
    std::mutex mutex_;
    std::set<std::string> folders_;
};

// One connection's share of a push: puts back to back, the next request
// sent right behind the commit so that it waits at the server while the
// commit syncs (as several-file put does). Where the server can defer a
// commit's folder sync, the commits ask it to, and every
// UnsyncedPuts::kLimit files a sync request makes their names durable.
void push_files(Connection& connection, Queue& queue, Tally& tally, const SyncArguments& arguments,
                const std::vector<FileTransfer>& transfers, Retries& retries,
                const std::map<std::string, ListedFile>& listed, HeldFolders& folders,
                const TreeFolderModes& folder_modes, UnsentFolders& unsent, bool defer_sync)
{
    const auto fail = [&](std::size_t index, const Error& error) {
        unsent.add(transfers[index].path);
        retries.failed(tally, transfers, index, error);
    };
    // Published by the server, their names not yet durable: sent once this
    // connection's sync request is answered ok, failed (and so tried again)
    // if it is not, or if the connection is lost before it.
    UnsyncedPuts unsynced;
    const auto sent = [&](std::size_t, const TransferResult& result) { tally.sent(result, true); };
    // After Ctrl-C, neither sent nor failed, as the files not started.
    const auto settle_unsynced = [&] { unsynced.settle(connection, sent, fail, [](std::size_t) {}); };
    const auto start_next = [&]() -> std::optional<std::pair<std::size_t, PendingPut>> {
        if (!connection.is_open()) {
            settle_unsynced(); // the server's promise to sync went with the connection
        }
        while (!interrupted()) {
            const auto index = queue.take();
            if (!index) {
                return std::nullopt;
            }
            const FileTransfer& transfer = transfers[*index];
            PutOptions options;
            options.local_path = local_join(arguments.local, transfer.path);
            options.name = join_remote(arguments.remote, transfer.path);
            options.resume = true;
            options.hash = arguments.hash;
            options.parents = true;
            options.folder_modes = folder_modes.of(remote_parent(transfer.path));
            options.mtime = transfer.mtime;
            // Every file a push sends was listed by the local scan; sent
            // only as the very file listed, never through a link.
            const auto seen = listed.find(transfer.path);
            if (seen == listed.end()) {
                fail(*index,
                     about_local_files(ErrorCode::local_io, "\"" + options.local_path + "\" was not listed; not sent"));
                continue;
            }
            options.listed = seen->second;
            options.folders = &folders;
            options.defer_sync = defer_sync && unsynced.deferring();
            auto prepared = prepare_put(options);
            if (!prepared) {
                fail(*index, prepared.error());
                continue;
            }
            Status sent = ensure_open(connection);
            if (sent) {
                sent = send_put(connection, prepared.value());
            }
            if (!sent && !connection.is_open()) {
                settle_unsynced();
                sent = connection.reconnect(); // lost before or now: one fresh connection, one more try
                if (sent) {
                    sent = send_put(connection, prepared.value());
                }
            }
            if (!sent) {
                fail(*index, sent.error());
                continue;
            }
            return std::pair{*index, std::move(prepared.value())};
        }
        return std::nullopt;
    };

    auto current = start_next();
    while (current) {
        auto& [index, put] = *current;
        if (auto uploaded = send_upload(connection, put); !uploaded) {
            fail(index, uploaded.error());
            current = start_next();
            continue;
        }
        // A sync is due after this commit: asked before the next put, which
        // would make it an upload's unexpected request.
        const bool sync_due = unsynced.sync_due();
        auto following = sync_due ? std::nullopt : start_next();
        if (auto committed = finish_put(connection, put)) {
            unsynced.committed(index, std::move(committed.value()), sent);
        } else {
            fail(index, committed.error());
        }
        if (sync_due) {
            settle_unsynced();
            following = start_next();
        }
        if (following && !connection.is_open()) {
            // The commit's failure took the connection, and the request behind it.
            settle_unsynced();
            Status again = connection.reconnect();
            if (again) {
                again = send_put(connection, following->second);
            }
            if (!again) {
                fail(following->first, again.error());
                following = start_next();
            }
        }
        current = std::move(following);
    }
    settle_unsynced();
}

// How a pull gets one file (its dry run asks the same of the part it
// would resume). `made`: the folders this sync made, for a first try.
GetOptions pull_options(const SyncArguments& arguments, const FileTransfer& transfer,
                        const std::set<std::string>& made = {})
{
    GetOptions options;
    options.in_made_folder = made.contains(remote_parent(transfer.path));
    options.name = join_remote(arguments.remote, transfer.path);
    options.dest = local_join(arguments.local, transfer.path);
    options.tree_root = arguments.local; // nothing below it is followed
    options.resume = true;
    options.hash = arguments.hash;
    options.preserve_mtime = true;
    options.defer_publish = true; // durable and published with a batch
    return options;
}

// What a dry run learns by the local looks the real run makes before any
// byte moves, one look per file: a push's file opened as the very file
// listed (open_listed_file: one this user may not read fails there); a
// pull's target and part inspected (resumable_prefix, prepare_get's rules:
// a file of the user's at the part's name is not ferry's), and the
// verified prefix of a partial download it would resume and not receive
// again. Nothing is written.
struct DryRunLooks {
    std::map<std::string, Error> refused;         // by path: what the real run refuses
    std::map<std::string, std::uint64_t> resumed; // by path: a pull's bytes not received again
};

DryRunLooks look_as_the_real_run(const SyncArguments& arguments, const SyncPlan& plan, const TreeListing& dest,
                                 const std::map<std::string, ListedFile>& listed)
{
    DryRunLooks looks;
    const bool push = arguments.direction == SyncDirection::push;
    // A pull's names that --delete clears before any file comes (what
    // stands there goes whole): the real run finds nothing in the way there,
    // where a look now would find the folder it removes first.
    std::set<std::string> cleared;
    HeldFolders folders; // a push's listed files opened as the real run opens them
    if (!push) {
        const auto effects = removal_effects(plan, dest);
        for (std::size_t i = 0; i < plan.removals.size(); ++i) {
            if (effects[i].kept_by == nullptr) {
                cleared.insert(plan.removals[i].path);
            }
        }
    }
    for (const auto& transfer : plan.transfers) {
        if (interrupted()) {
            break;
        }
        if (push) {
            const auto seen = listed.find(transfer.path);
            if (seen == listed.end()) {
                continue;
            }
            if (auto opened = open_listed_file(seen->second, local_join(arguments.local, transfer.path), &folders);
                !opened) {
                looks.refused.emplace(transfer.path, opened.error());
            }
            continue;
        }
        if (!is_directory(local_join(arguments.local, remote_parent(transfer.path)))) {
            continue; // a folder the real run makes first: nothing stands in it yet
        }
        if (cleared.contains(transfer.path)) {
            continue; // removed first: what stands there now is not in the real run's way
        }
        auto held = resumable_prefix(pull_options(arguments, transfer), transfer.size, transfer.mtime);
        if (!held) {
            looks.refused.emplace(transfer.path, held.error());
        } else if (held.value() > 0) {
            looks.resumed.emplace(transfer.path, held.value());
        }
    }
    return looks;
}

// One connection's share of a pull: gets pipelined, a few requests waiting
// at the server (as several-file get does). Each file's part gets the
// server's mtime, is verified, then goes to the shared PublishBatch, which
// makes a batch of parts durable together before renaming them and syncs
// each folder once per batch, not once per file.
//
// Each file's folder comes from `folders` (shared by the connections) and
// is held from here to the publish (GetOptions::folder). A file in one of
// `made_folders` (those this sync made, on a pass's first try) is planned
// without looking for what nothing could have left there.
void pull_files(Connection& connection, Queue& queue, Tally& tally, const SyncArguments& arguments,
                const std::vector<FileTransfer>& transfers, Retries& retries, PublishBatch& batch, HeldFolders& folders,
                std::size_t gets_in_flight, const std::set<std::string>& made_folders)
{
    const auto fail = [&](std::size_t index, const Error& error) {
        retries.failed(tally, transfers, index, error);
    };
    std::deque<std::pair<std::size_t, PendingGet>> waiting;   // prepared, to be sent
    std::deque<std::pair<std::size_t, PendingGet>> in_flight; // sent, replies in this order
    bool drained = false;
    for (;;) {
        while (!drained && waiting.size() + in_flight.size() < gets_in_flight && !interrupted()) {
            const auto index = queue.take();
            if (!index) {
                drained = true;
                break;
            }
            GetOptions options = pull_options(arguments, transfers[*index], made_folders);
            auto folder = folders.folder_of(options.tree_root, options.dest);
            if (!folder) {
                fail(*index, folder.error());
                continue;
            }
            options.folder = std::move(folder.value());
            auto prepared = prepare_get(options);
            if (!prepared) {
                fail(*index, prepared.error());
                continue;
            }
            waiting.emplace_back(*index, std::move(prepared.value()));
        }
        if (interrupted()) {
            return;
        }
        if (!connection.is_open()) {
            // Requests sent on the lost connection go out again on the new one.
            while (!in_flight.empty()) {
                waiting.push_front(std::move(in_flight.back()));
                in_flight.pop_back();
            }
            if (auto again = connection.reconnect(); !again) {
                for (auto& [index, get] : waiting) {
                    fail(index, again.error());
                }
                waiting.clear();
                if (drained) {
                    return;
                }
                continue;
            }
        }
        while (!waiting.empty() && connection.is_open()) {
            auto& [index, get] = waiting.front();
            if (auto sent = send_get(connection, get); !sent) {
                if (!connection.is_open()) {
                    break; // the loop above reconnects and sends it again
                }
                fail(index, sent.error());
                waiting.pop_front();
                continue;
            }
            in_flight.push_back(std::move(waiting.front()));
            waiting.pop_front();
        }
        if (in_flight.empty()) {
            if (drained && waiting.empty()) {
                return;
            }
            continue;
        }
        auto [index, get] = std::move(in_flight.front());
        in_flight.pop_front();
        auto result = finish_get(connection, get);
        if (result && get.verified) {
            const std::uint64_t bytes = result->moved();
            batch.add(std::move(*get.verified), bytes,
                      // Called by whichever thread publishes the batch, maybe after this one has
                      // returned: only what outlives the pass is captured.
                      // (an init-capture: clang before 16 cannot capture a structured binding)
                      [&tally, &retries, &transfers, slot = index,
                       sent = std::move(result.value())](const Status& published) {
                          if (published) {
                              tally.sent(sent, false);
                          } else {
                              retries.failed(tally, transfers, slot, published.error());
                          }
                      });
        } else if (result) {
            tally.sent(result.value(), false);
        } else if (get.restart) {
            waiting.emplace_front(index, std::move(get)); // the file changed: again, from its start
        } else {
            fail(index, result.error());
        }
    }
}

// `path` (from the synced folder) named on the receiving side, as every
// line of a plan names it: below the server folder as the shell shows it
// on a push, below the local folder as typed on a pull. Not printable().
std::string receiving_name(const SyncArguments& arguments, const std::string& path)
{
    return arguments.direction == SyncDirection::push
               ? shown_path(join_remote(arguments.remote, path), arguments.current)
               : local_join(arguments.local, path);
}

// What plan.spared's `folder` means, for people: the sending side holds
// there what its listing does not show, so nothing in it is deleted.
std::string shown_spared(const SyncArguments& arguments, const std::string& folder)
{
    const bool push = arguments.direction == SyncDirection::push;
    const std::string remote = ":" + join_remote(arguments.remote, folder);
    const std::string local = folder.empty() ? arguments.local : local_join(arguments.local, folder);
    if (push) {
        return "\"" + printable(local) + "\" holds what this side does not send; --delete removes nothing in \"" +
               printable(remote) + "\"";
    }
    return "\"" + printable(remote) + "\" holds entries the server does not list (too deep or too long a path to "
           "name, hidden...); --delete removes nothing in \"" + printable(local) + "\"";
}

// ---- the plan's other steps --------------------------------------------------------------

// What became of one of removal_steps()'s deletes.
enum class StepEnd { not_tried, removed, absent, stays, failed };
struct StepOutcome {
    StepEnd end = StepEnd::not_tried;
    Error error;      // `failed`
    std::string path; // what `error` concerns, when not the step's own path
};

StepOutcome outcome_of(const Result<LocalRemoved>& removed)
{
    if (!removed) {
        return {StepEnd::failed, removed.error(), {}};
    }
    switch (removed.value()) {
    case LocalRemoved::removed:
        return {StepEnd::removed, {}, {}};
    case LocalRemoved::absent:
        return {StepEnd::absent, {}, {}};
    case LocalRemoved::not_empty:
        return {StepEnd::stays, {}, {}};
    case LocalRemoved::holder_changed:
    case LocalRemoved::changed:
        break; // remove_local_steps names the folder
    }
    return {StepEnd::failed, Error{ErrorCode::internal, "unknown removal"}, {}};
}

StepOutcome outcome_of(const Result<DeleteReply>& deleted, EntryKind kind)
{
    if (deleted) {
        return {StepEnd::removed, {}, {}};
    }
    if (deleted.error().code == ErrorCode::not_found) {
        return {StepEnd::absent, {}, {}}; // gone already: nothing to do, nothing counted
    }
    if (deleted.error().code == ErrorCode::not_empty && kind == EntryKind::folder) {
        return {StepEnd::stays, {}, {}};
    }
    return {StepEnd::failed, deleted.error(), {}};
}

// Each entry removed only if it is still the one the scan listed, through
// a descriptor of the very folder listed as holding it. A folder found to
// be another than listed (renamed into the listed one's place since the
// scan) is one error, "left, with what it holds"; the steps below it are
// then not tried.
std::vector<StepOutcome> remove_local_steps(const SyncArguments& arguments, const std::vector<RemovalStep>& steps,
                                            const LocalScan& scan)
{
    const auto find = [](const std::map<std::string, ListedFile>& in, const std::string& path) {
        const auto seen = in.find(path);
        return seen == in.end() ? nullptr : &seen->second;
    };
    std::set<std::string> changed; // folders found to be others than listed
    const auto below_changed = [&](const std::string& path) {
        for (std::string at = path; !at.empty(); at = parent_path(at)) {
            if (changed.contains(at)) {
                return true;
            }
        }
        return false;
    };
    std::vector<StepOutcome> outcomes(steps.size());
    for (std::size_t i = 0; i < steps.size() && !interrupted(); ++i) {
        const RemovalStep& step = steps[i];
        if (below_changed(step.path)) {
            continue; // reported with its folder
        }
        const bool folder = step.kind == EntryKind::folder;
        const std::string holder = parent_path(step.path);
        auto removed = remove_local(arguments.local, step.path, step.kind,
                                    find(folder ? scan.folders : scan.listed, step.path),
                                    holder.empty() ? nullptr : find(scan.folders, holder));
        if (removed && (removed.value() == LocalRemoved::holder_changed || removed.value() == LocalRemoved::changed)) {
            const std::string swapped = removed.value() == LocalRemoved::changed ? step.path : holder;
            changed.insert(swapped);
            outcomes[i] = {
                StepEnd::failed,
                about_local_files(ErrorCode::local_io, "\"" + local_join(arguments.local, swapped) +
                                                           "\" changed since it was listed: another folder stands at "
                                                           "its name; left, with what it holds"),
                swapped};
            continue;
        }
        outcomes[i] = outcome_of(removed);
    }
    return outcomes;
}

// What a step's delete expects at its path: the entry as listed (a folder
// by its type alone, PROTOCOL.md 4.11).
ExpectedEntry as_listed(const RemovalStep& step)
{
    if (step.kind == EntryKind::folder) {
        return ExpectedEntry{EntryType::folder, 0, 0};
    }
    return ExpectedEntry{EntryType::file, step.size, step.mtime};
}

// Deletes the steps on the server, each alone (never recursively: what the
// listing did not show is never removed) and each only if the server still
// holds the entry listed there (`expect`: another entry put at the name
// since is left, file_changed), pipelined (delete_pipelined: a folder's
// delete comes after those of what it held). A step never sent is
// not_tried when the user interrupted, failed when the connection was lost.
std::vector<StepOutcome> remove_remote_steps(Connection& connection, const SyncArguments& arguments,
                                             const std::vector<RemovalStep>& steps)
{
    std::vector<StepOutcome> outcomes(steps.size());
    if (steps.empty()) {
        return outcomes;
    }
    if (auto open = ensure_open(connection); !open) {
        for (auto& outcome : outcomes) {
            outcome = {StepEnd::failed, open.error(), {}};
        }
        return outcomes;
    }
    std::vector<DeleteRequest> requests;
    requests.reserve(steps.size());
    for (const auto& step : steps) {
        requests.push_back(DeleteRequest{join_remote(arguments.remote, step.path), false, as_listed(step)});
    }
    const auto run = delete_pipelined(connection, requests);
    for (std::size_t i = 0; i < steps.size(); ++i) {
        if (i < run.replies.size()) {
            outcomes[i] = outcome_of(run.replies[i], steps[i].kind);
        } else if (run.lost) {
            outcomes[i] = {StepEnd::failed, *run.lost, {}};
        }
    }
    return outcomes;
}

constexpr const char* kDeletesByNameNote =
    "this server deletes by name (an older ferryd, without \"delete_expect\"): an entry put at a listed "
    "name on the server since the listing is deleted too";

// Why a removed folder stays, as the listing showed it: `kept` is the
// first entry inside that --delete never removes (removal_effects), named
// as every path of the sync is (`shown`: below the folder as typed).
std::string kept_reason(const TreeEntry& kept, const std::function<std::string(const std::string&)>& shown)
{
    const bool mark = kept.path.ends_with('/'); // a server's folder holding what it does not list
    const std::string holder = mark ? kept.path.substr(0, kept.path.size() - 1) : parent_path(kept.path);
    const std::string what = mark ? std::string(kUnlistedEntries)
                                  : "\"" + shown(kept.path) + "\"" +
                                        (kept.why.empty() ? std::string() : " (" + kept.why + ")");
    return shown(holder) + " holds " + what + ", which --delete never removes";
}

// The removals as they went, one note each: "deleted X" when it went
// whole; otherwise what went inside and why the folder stays (it holds what
// the listing showed is never removed, or what was not listed: written
// there since the listing). Counts only what was removed.
void report_removals(Tally& tally, const SyncPlan& plan, const TreeListing& dest,
                     const std::vector<RemovalStep>& steps, const std::vector<StepOutcome>& outcomes,
                     const std::function<std::string(const std::string&)>& shown)
{
    const auto effects = removal_effects(plan, dest);
    std::vector<std::uint64_t> removed(plan.removals.size(), 0);
    std::vector<std::vector<std::string>> stays(plan.removals.size());
    std::vector<bool> touched(plan.removals.size(), false); // a step was tried
    std::vector<bool> failed(plan.removals.size(), false);
    std::unordered_set<std::string> holding_stayed; // parents of folders that stayed
    for (std::size_t i = 0; i < steps.size(); ++i) {
        const std::size_t at = steps[i].removal;
        const StepOutcome& outcome = outcomes[i];
        touched[at] = touched[at] || outcome.end != StepEnd::not_tried;
        if (outcome.end == StepEnd::removed) {
            ++removed[at];
        } else if (outcome.end == StepEnd::stays) {
            // Folders come deepest first: one holding a folder that stays is named by that one.
            if (!holding_stayed.contains(steps[i].path)) {
                stays[at].push_back(shown(steps[i].path) + " holds what the listing did not show (written there "
                                    "since), which --delete never removes");
            }
            holding_stayed.insert(parent_path(steps[i].path));
        } else if (outcome.end == StepEnd::failed) {
            failed[at] = true;
            tally.failed(outcome.path.empty() ? steps[i].path : outcome.path, outcome.error);
        }
    }
    for (std::size_t i = 0; i < plan.removals.size(); ++i) {
        if (!touched[i] && interrupted()) {
            continue; // not reached
        }
        std::vector<std::string> reasons;
        if (effects[i].kept_by != nullptr) {
            reasons.push_back(kept_reason(*effects[i].kept_by, shown));
        }
        reasons.insert(reasons.end(), stays[i].begin(), stays[i].end());
        const std::string path = shown(plan.removals[i].path);
        if (!reasons.empty()) {
            tally.deleted(path, removed[i], reasons);
        } else if (failed[i] && removed[i] > 0) {
            tally.deleted_part(path, removed[i]);
        } else if (!failed[i] && removed[i] > 0) {
            // A folder with its '/', as the dry run names it.
            tally.deleted(plan.removals[i].kind == EntryKind::folder ? path + "/" : path, removed[i]);
        }
    }
}

// The synced folder's `folder` made on the server with its parents; a
// failure is the folder's, in the tally.
void make_server_folder(Connection& connection, Tally& tally, const SyncArguments& arguments,
                        const TreeFolderModes& folder_modes, const std::string& folder)
{
    Result<MkdirReply> made = Error{ErrorCode::internal, ""};
    if (auto open = ensure_open(connection); !open) {
        made = open.error();
    } else {
        made = make_remote_folder(connection, join_remote(arguments.remote, folder), true, folder_modes.of(folder));
    }
    if (!made) {
        tally.failed(folder, made.error());
    }
}

void remove_extras(Connection& connection, Tally& tally, const SyncArguments& arguments, const SyncPlan& plan,
                   const TreeListing& dest, const LocalScan& scan)
{
    const auto steps = removal_steps(plan, dest);
    const bool pull = arguments.direction == SyncDirection::pull;
    if (!pull && !steps.empty() && !checks_delete_expect(connection)) {
        tally.note(kDeletesByNameNote);
    }
    const auto outcomes =
        pull ? remove_local_steps(arguments, steps, scan) : remove_remote_steps(connection, arguments, steps);
    // Named as the dry run names them (in the shell, below its folder).
    report_removals(tally, plan, dest, steps, outcomes,
                    [&](const std::string& path) { return receiving_name(arguments, path); });
}

// A pull's files found equal by content (--checksum) whose time differs:
// each gets the server's time only as the very file hashed, unwritten
// since (set_hashed_mtime). One that changed keeps its time, and is one
// error, no longer counted skipped: the next sync looks at it again.
void set_local_file_times(Tally& tally, const SyncArguments& arguments, const SyncPlan& plan,
                          const std::map<std::string, ListedFile>& listed,
                          const std::map<std::string, HashedFile>& hashed)
{
    HeldFolders folders; // the retimed files' folders, each walked to once
    for (const auto& retime : plan.retimes) {
        if (interrupted()) {
            return;
        }
        const std::string shown = local_join(arguments.local, retime.path);
        const auto seen = listed.find(retime.path);
        const auto digest = hashed.find(retime.path);
        Status set = Error{ErrorCode::internal, "\"" + shown + "\" was found equal without being hashed"};
        if (seen != listed.end() && digest != hashed.end()) {
            set = set_hashed_mtime(seen->second, digest->second, shown, retime.mtime, &folders);
        }
        if (!set) {
            tally.failed_skipped(retime.path, set.error());
        }
    }
}

// The folder of a pull's plan that could not be made that `path` (a
// path below the synced folder) lies in, if any: what lies there has one
// cause, the folder's own error, and is reported by it (as get -r does).
std::optional<std::string> unmade_above(const std::set<std::string>& unmade, const std::string& path)
{
    std::optional<std::string> highest; // the folder that failed itself, not one below it
    for (std::string at = path; !at.empty();) {
        const auto slash = at.rfind('/');
        at = slash == std::string::npos ? std::string() : at.substr(0, slash);
        if (unmade.contains(at)) {
            highest = at;
        }
    }
    return highest;
}

Error in_unmade_folder(const SyncArguments& arguments, const std::string& folder, bool is_folder)
{
    return about_local_files(ErrorCode::local_io, std::string(is_folder ? "not made" : "not written") +
                                                      ": its folder \"" + local_join(arguments.local, folder) +
                                                      "\" could not be made");
}

// What a pull's plan did to its local folders (a push's makes none here).
struct PlanFolders {
    // Could not be made (those below one included): nothing is written in
    // them, nor their time set.
    std::set<std::string> unmade;
    // Made by this sync ("" for the synced folder itself): they held
    // nothing when made, so a file's first try in one skips the plan's looks
    // (GetOptions::in_made_folder).
    std::set<std::string> made;
};

PlanFolders make_plan_folders(Connection& connection, Tally& tally, const SyncArguments& arguments,
                              const SyncPlan& plan, const TreeFolderModes& folder_modes)
{
    PlanFolders folders;
    auto& unmade = folders.unmade;
    if (arguments.direction == SyncDirection::pull) {
        for (const auto& folder : plan.folders) { // in path order: a folder before what it holds
            if (const auto above = unmade_above(unmade, folder)) {
                tally.failed(folder, in_unmade_folder(arguments, *above, true));
                unmade.insert(folder);
            } else if (auto made = make_or_find_local_folder(arguments.local, folder, folder_modes.mode_of(folder));
                       !made) {
                tally.failed(folder, made.error());
                unmade.insert(folder);
            } else if (made.value() == FolderMade::made) {
                folders.made.insert(folder);
            }
        }
        return folders;
    }
    // The puts make the folders above their files (`parents`); mkdir is for the rest.
    for (const auto& folder : folders_without_files(plan)) {
        if (interrupted()) {
            return folders;
        }
        make_server_folder(connection, tally, arguments, folder_modes, folder);
    }
    return folders;
}

// A push's listed folders that no put made (UnsentFolders), with their
// parents: on the server as on the local side, whatever failed inside.
void make_unsent_folders(Connection& connection, Tally& tally, const SyncArguments& arguments,
                         const TreeFolderModes& folder_modes, const std::set<std::string>& folders)
{
    for (const auto& folder : folders) {
        if (folder.empty() || interrupted()) {
            continue; // the synced folder itself is made before any file
        }
        make_server_folder(connection, tally, arguments, folder_modes, folder);
    }
}

constexpr const char* kNoTimesNote = "this server cannot set modification times (an older ferryd): folders "
                                     "keep the time of their last change";
constexpr const char* kRetimesByNameNote =
    "this server sets modification times by name (an older ferryd, without \"set_mtime_expect\"): a file "
    "put on the server at a name found equal by content since its digest takes the local file's time too";

// What a push's set_mtime expects at each path (PROTOCOL.md 4.13): a file
// found equal by content is the server's file as listed, the one whose
// digest was asked (its size and mtime then), so that a file put there
// since, of other bytes, never gets the local time (a later quick check
// would skip it); a folder is expected a folder.
std::optional<ExpectedEntry> expected_there(const FileTransfer& time, bool folder,
                                            const std::map<std::string, const TreeEntry*>& listed)
{
    if (folder) {
        return ExpectedEntry{EntryType::folder, 0, 0};
    }
    const auto found = listed.find(time.path);
    if (found == listed.end() || found->second->kind != EntryKind::file) {
        return std::nullopt; // never: a file is retimed only when listed as one
    }
    return ExpectedEntry{EntryType::file, found->second->size, found->second->mtime};
}

// A push's times on the server, once every file is in place: the files
// found equal by content (--checksum) whose time differs, then the folders
// (publishing into a folder changes its time). Spread over the crew's
// connections, one set_mtime each, each with the entry it expects there.
void set_remote_times(Crew& crew, Connection& connection, Tally& tally, const SyncArguments& arguments,
                      const SyncPlan& plan, const TreeListing& dest)
{
    std::vector<FileTransfer> times = plan.retimes;
    const std::size_t files = times.size();
    times.insert(times.end(), plan.folder_times.begin(), plan.folder_times.end());
    if (times.empty()) {
        return;
    }
    if (!can_set_mtime(connection)) {
        tally.note(kNoTimesNote);
        return;
    }
    if (files > 0 && !checks_set_mtime_expect(connection)) {
        tally.note(kRetimesByNameNote);
    }
    std::map<std::string, const TreeEntry*> listed;
    for (const auto& entry : dest) {
        listed.emplace(entry.path, &entry);
    }
    Queue queue(times.size());
    crew.run(times.size(), [&](Connection& each) {
        while (auto index = queue.take()) {
            if (interrupted()) {
                return;
            }
            const FileTransfer& entry = times[*index];
            const auto expect = expected_there(entry, *index >= files, listed);
            Result<StatReply> set = Error{ErrorCode::internal, ""};
            if (auto open = ensure_open(each); !open) {
                set = open.error();
            } else {
                set = set_remote_mtime(each, join_remote(arguments.remote, entry.path), entry.mtime, expect);
            }
            if (!set && *index < files) {
                tally.failed_skipped(entry.path, set.error()); // counted skipped as equal by the plan
            } else if (!set) {
                // The synced folder itself ("") is named in the message:
                // every error line a sync prints says where it happened.
                Error error = set.error();
                if (entry.path.empty()) {
                    error.message = "\"" + printable(":" + arguments.remote) + "\": " + error.message;
                }
                tally.failed(entry.path, error);
            }
        }
    });
}

// What the receiving side holds of a sending side's time (PlanOptions::held):
// a push, the server's file system as its hello says (PROTOCOL.md 4.1; an
// older server says nothing, and times compare exactly); a pull, each
// local file system the tree spans, asked once (probe_local_held_times).
// A local folder still to be made holds nothing to compare.
HeldTime receiving_held_times(const Connection& connection, const SyncArguments& arguments,
                              const LocalScan& local_tree, bool push, bool local_missing)
{
    if (push) {
        const auto& limits = connection.server_hello().mtime_limits;
        if (!limits) {
            return {};
        }
        return [limits = *limits](const std::string&, std::int64_t mtime) { return limits.held(mtime); };
    }
    if (local_missing) {
        return {};
    }
    return probe_local_held_times(arguments.local, local_tree);
}

// The sending side's folder modes: the local scan's (and the local
// folder's own, unless the push goes to the server's root) for a push, the
// server's listing's (and its folder's, as stat described it) for a pull.
TreeFolderModes source_folder_modes(const SyncArguments& arguments, const TreeListing& source,
                                    const std::optional<FileInfo>& remote_top)
{
    std::optional<std::uint32_t> top;
    if (arguments.direction == SyncDirection::push) {
        struct stat st {};
        if (!arguments.remote.empty() && ::stat(arguments.local.c_str(), &st) == 0) {
            top = permission_bits(st);
        }
    } else if (remote_top) {
        top = remote_top->mode;
    }
    TreeFolderModes modes(top);
    for (const auto& entry : source) {
        if (entry.kind == EntryKind::folder && entry.mode) {
            modes.add(entry.path, *entry.mode);
        }
    }
    return modes;
}

std::optional<std::int64_t> local_folder_mtime(const std::string& path)
{
    struct ::stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return std::nullopt;
    }
    return static_cast<std::int64_t>(st.st_mtime);
}

// A modification time as the notes show it: UTC, to the second.
std::string utc_time(std::int64_t seconds)
{
    const auto when = static_cast<std::time_t>(seconds);
    std::tm parts{};
    if (::gmtime_r(&when, &parts) == nullptr) {
        return std::to_string(seconds);
    }
    std::array<char, 40> text{};
    std::strftime(text.data(), text.size(), "%Y-%m-%d %H:%M:%S UTC", &parts);
    return text.data();
}

// Whether `path` is one the local scan could not read.
bool is_unreadable(const std::vector<SkippedEntry>& unreadable, const std::string& path)
{
    return std::any_of(unreadable.begin(), unreadable.end(),
                       [&](const SkippedEntry& entry) { return entry.path == path; });
}

// Whether the server's listing holds `path` or anything below it.
bool listed_at_or_below(const TreeListing& remote, const std::string& path)
{
    return std::any_of(remote.begin(), remote.end(), [&](const TreeEntry& entry) {
        return entry.path == path || entry.path.starts_with(path + "/");
    });
}

// What the local scan could not read, one local_io error each: what it
// holds is unknown, and unknown is not absent, so nothing at or below it
// is sent or, with --delete, removed on either side (the scan's entries
// see to that). A push always needs to know what it sends; a pull only
// where the server has something to place there, or with --delete.
void report_unreadable(Tally& tally, const SyncArguments& arguments, const std::vector<SkippedEntry>& unreadable,
                       const TreeListing& remote)
{
    const bool push = arguments.direction == SyncDirection::push;
    const std::string deletes = std::string(push ? ", and --delete removes nothing at or below it on the server"
                                                 : ", and --delete removes nothing at or below it");
    for (const auto& entry : unreadable) {
        if (push) {
            tally.failed(entry.path,
                         about_local_files(ErrorCode::local_io,
                                           entry.why + "; not sent" + (arguments.delete_extras ? deletes : "")));
        } else if (listed_at_or_below(remote, entry.path)) {
            tally.failed(entry.path,
                         about_local_files(ErrorCode::local_io, entry.why + "; nothing is received there" +
                                                                    (arguments.delete_extras ? deletes : "")));
        } else if (arguments.delete_extras) {
            tally.failed(entry.path, about_local_files(ErrorCode::local_io,
                                                       entry.why + "; --delete removes nothing at or below it"));
        }
    }
}

// What the server could not read (its listing's unreadable_folders), one
// error each with its code (forbidden or io_error), never a note: what it
// holds is unknown, not absent, so a pull receives nothing there, a push
// sends nothing there (leave_remote_unread), and neither side's --delete
// removes anything at or below it (the `other`
// entry list_remote_tree put there sees to that); the sync exits non-zero,
// as after a local folder it could not read.
void report_remote_unread(Tally& tally, const SyncArguments& arguments, const std::vector<UnreadableFolder>& unread)
{
    const bool push = arguments.direction == SyncDirection::push;
    std::string consequence = push ? "its files there are not compared" : "nothing in it is received";
    if (arguments.delete_extras) {
        consequence += push ? ", and --delete removes nothing at or below it on the server"
                            : ", and --delete removes nothing at or below it here";
    }
    for (const auto& folder : unread) {
        tally.failed_at(folder.path.empty() ? "." : folder.path,
                        unreadable_error(arguments.remote, folder, consequence));
    }
}

// A push sends nothing into a server folder the server could not read, nor
// retimes it or what is in it: what stands there is unknown, so nothing
// was compared (report_remote_unread said so), as nothing is sent from a
// local folder the scan could not read.
void leave_remote_unread(SyncPlan& plan, const std::vector<UnreadableFolder>& unread)
{
    if (unread.empty()) {
        return;
    }
    const auto inside = [&](const std::string& path) {
        return std::any_of(unread.begin(), unread.end(), [&](const UnreadableFolder& folder) {
            return folder.path.empty() || path == folder.path || path.starts_with(folder.path + "/");
        });
    };
    const auto left = [&](const FileTransfer& transfer) { return inside(transfer.path); };
    std::erase_if(plan.transfers, left);
    std::erase_if(plan.retimes, left);
    std::erase_if(plan.folder_times, left);
    std::erase_if(plan.folders, inside);
    plan.bytes = 0;
    for (const auto& transfer : plan.transfers) {
        plan.bytes += transfer.size;
    }
}

// A push on a connection that may only read would be refused at its every
// write: one error says so, naming the server's folder, before anything is
// listed or tried (a dry run's too, so that it says what the real run does).
std::optional<Error> push_refusal(const Connection& connection, const SyncArguments& arguments)
{
    if (arguments.direction != SyncDirection::push) {
        return std::nullopt;
    }
    auto refused = read_only_refusal(connection, "nothing is sent or deleted");
    if (refused) {
        refused->message = "cannot write in \"" + printable(":" + arguments.remote) + "\": " + refused->message;
    }
    return refused;
}

// A dry run's plan, one note per step, in the order the real run takes
// them: what it would delete, make, send, and the times it would set (the
// receiving side's folders, the synced folder itself, and with --checksum
// files found equal whose time differs). `times_settable`: false for a
// push to a server that cannot set times, which the real run only notes.
// `top_missing`: the synced folder itself is made first (with its parents).
// `dest`: the receiving side as listed; `unlisted_known`: false for a push
// to a server whose listing does not say which folders hold what it does
// not show (an older ferryd), where a folder's removal is then uncertain.
// `resumed`: a pull's resumable prefixes (look_as_the_real_run), not received again.
void show_plan(Tally& tally, const SyncArguments& arguments, const SyncPlan& plan, const TreeListing& dest,
               bool unlisted_known, bool times_settable, bool top_missing,
               const std::map<std::string, std::uint64_t>& resumed)
{
    const bool push = arguments.direction == SyncDirection::push;
    const auto shown = [&](const std::string& path) { return printable(receiving_name(arguments, path)); };
    const auto shown_folder = [&](const std::string& path) {
        if (path.empty() && push && arguments.remote.empty()) {
            return std::string(":"); // the server's root
        }
        if (path.empty() && push && !arguments.current.empty() && arguments.remote == arguments.current) {
            return std::string("./"); // the shell's folder, below which every other line names its paths
        }
        const std::string name = path.empty()
                                     ? printable(push ? shown_path(arguments.remote, arguments.current) : arguments.local)
                                     : shown(path);
        return name.ends_with('/') ? name : name + "/";
    };
    // As the real run reports them: a folder that stays because it holds
    // what --delete never removes is named with what went inside and why.
    const auto effects = removal_effects(plan, dest);
    for (std::size_t i = 0; i < plan.removals.size(); ++i) {
        const Removal& removal = plan.removals[i];
        const RemovalEffect& effect = effects[i];
        if (removal.kind != EntryKind::folder) {
            tally.note("would delete " + shown(removal.path));
        } else if (!unlisted_known) {
            tally.note("would delete " + shown(removal.path) + "/ unless it holds " + kUnlistedEntries +
                       " (this server does not say which folders do; not counted)");
        } else if (effect.kept_by == nullptr) {
            tally.note("would delete " + shown(removal.path) + "/");
        } else if (effect.files + effect.folders == 0) {
            tally.note("would keep " + shown(removal.path) +
                       ", not on the sending side: " + kept_reason(*effect.kept_by, shown));
        } else {
            tally.note("would delete " + entries(effect.files + effect.folders) + " in " +
                       shown(removal.path) + "; the folder stays: " + kept_reason(*effect.kept_by, shown));
        }
    }
    if (top_missing) {
        tally.note("would make " + shown_folder(""));
    }
    for (const auto& folder : plan.folders) {
        tally.note("would make " + shown_folder(folder));
    }
    for (const auto& transfer : plan.transfers) {
        const auto held = resumed.find(transfer.path);
        tally.note((push ? "would send " : "would receive ") + shown(transfer.path) + " (" + human_size(transfer.size) +
                   (held == resumed.end() ? std::string()
                                          : ", resuming its partial download after " + human_size(held->second)) +
                   ")");
    }
    if (!times_settable) {
        if (!plan.retimes.empty() || !plan.folder_times.empty()) {
            tally.note(kNoTimesNote);
        }
        return;
    }
    for (const auto& retime : plan.retimes) {
        tally.note("would set the time of " + shown(retime.path) + " to " + utc_time(retime.mtime));
    }
    for (const auto& folder : plan.folder_times) {
        tally.note("would set the time of " + shown_folder(folder.path) + " to " + utc_time(folder.mtime));
    }
}

} // namespace

std::optional<std::string> parse_sync_operands(const std::string& first, const std::string& second,
                                               SyncArguments& arguments)
{
    const bool first_remote = first.starts_with(':');
    const bool second_remote = second.starts_with(':');
    if (first_remote == second_remote) {
        return "sync: name the server's folder with a leading ':' on exactly one side "
               "(ferry sync LOCAL_DIR :REMOTE_DIR, or ferry sync :REMOTE_DIR LOCAL_DIR)";
    }
    arguments.direction = first_remote ? SyncDirection::pull : SyncDirection::push;
    const std::string& local = first_remote ? second : first;
    if (local.empty()) {
        return "sync: the local folder is empty";
    }
    // "out/." and "out/" name out itself, as rsync cleans its destination
    // (clean_fname): each file is then shown as "out/NAME", never
    // "out/./NAME".
    arguments.local = folder_of_typed(local);
    return std::nullopt;
}

int run_sync(Connection& connection, const ConnectOptions& options, const Output& output,
             const SyncArguments& arguments)
{
    const auto start = Clock::now();
    const bool push = arguments.direction == SyncDirection::push;
    Tally tally(output, push);
    tally.shown_in(arguments.current, arguments.remote, arguments.remote_typed);
    SyncSummary& summary = tally.summary();
    summary.dry_run = arguments.dry_run;
    const auto finish = [&]() {
        summary.seconds = std::chrono::duration<double>(Clock::now() - start).count();
        if (interrupted() && (summary.errors.empty() || summary.errors.back().second.code != ErrorCode::aborted)) {
            summary.errors.emplace_back("", interrupted_error());
        }
        output.sync(summary);
        std::vector<ErrorCode> codes;
        for (const auto& [path, error] : summary.errors) {
            codes.push_back(error.code);
        }
        return exit_status(codes);
    };
    const auto fail_whole = [&](const Error& error) {
        tally.failed("", error);
        return finish();
    };

    if (auto old = require_folders(connection)) {
        return fail_whole(*old);
    }
    if (auto checked = resolve_remote_path_checked(connection, arguments.current, arguments.remote_typed, false);
        !checked) {
        tally.failed_at(":" + arguments.remote_typed, checked.error());
        return finish();
    }
    if (auto refused = push_refusal(connection, arguments)) {
        tally.failed_at(":" + arguments.remote, *refused);
        return finish();
    }

    // 0. The synced folder's own time on the server, asked before the
    // listing's pages stream (a push needs it only where it can set it; a
    // dry run too, to list the time it would set).
    const bool keeps_top_time = !push || can_set_mtime(connection);
    // A pull's also gives its mode to a local folder made for it.
    std::optional<FileInfo> remote_top_info;
    if (keeps_top_time) {
        remote_top_info = remote_folder_info(connection, arguments.remote);
    }
    const auto remote_top =
        remote_top_info ? std::optional<std::int64_t>(remote_top_info->mtime) : std::optional<std::int64_t>();

    // 1. Both sides, side by side: the local scan on its own thread while
    // this one waits for the server's listing (on an unchanged tree these
    // two are nearly all of a sync's time).
    const bool local_missing = !push && !is_directory(arguments.local);
    std::future<Result<LocalScan>> scanning;
    if (!local_missing) {
        // The server's bounds count from its root: below arguments.remote a
        // local path has fewer components and bytes to spare.
        scanning = std::async(std::launch::async, [&arguments, push] {
            return scan_local_tree(arguments.local, push ? ScanSide::sending : ScanSide::receiving,
                                   bounds_below(arguments.remote));
        });
    }
    RemoteSkipped remote_skipped;
    bool remote_missing = false;
    auto remote_tree = list_remote_tree(connection, arguments.remote, remote_skipped);
    if (!remote_tree && remote_tree.error().code == ErrorCode::not_found && push) {
        remote_missing = true; // made below, with its parents
        remote_tree = TreeListing{};
    }
    if (!remote_tree) {
        if (scanning.valid()) {
            scanning.wait();
        }
        // The server's folder, named as a read-only connection's refusal
        // names it: an empty path told a script nothing (a new user's trial,
        // round 72).
        tally.failed_at(":" + arguments.remote, remote_tree.error());
        return finish();
    }
    if (!push) {
        // A server's file named as a local download's part or state
        // (NAME.ferry-part, NAME.ferry-part.state) is not pulled: published
        // here it would be taken for the part of NAME, never seen by the
        // next sync, and stand in the way of NAME's download.
        std::set<std::string> reserved;
        for (const auto& entry : remote_tree.value()) {
            const auto slash = entry.path.rfind('/');
            if (is_part_name(slash == std::string::npos ? entry.path : entry.path.substr(slash + 1))) {
                reserved.insert(entry.path);
                tally.note(printable(local_join(arguments.local, entry.path)) +
                           ": the name of a partial download's file on this side, not pulled");
            }
        }
        if (!reserved.empty()) {
            std::erase_if(remote_tree.value(), [&](const TreeEntry& entry) {
                for (std::string at = entry.path; !at.empty(); at = parent_path(at)) {
                    if (reserved.contains(at)) {
                        return true; // it, or what it holds
                    }
                }
                return false;
            });
        }
    }
    if (!push) {
        summary.left_out += remote_skipped.names + remote_skipped.too_deep;
    }
    if (remote_skipped.names > 0) {
        tally.note(entries(remote_skipped.names) + " on the server not shown, for a name that breaks Ferry's rule");
    }
    if (remote_skipped.too_deep > 0) {
        // Not pulled, and never compared: a pull is then incomplete, and says so.
        tally.note(entries(remote_skipped.too_deep) + " on the server not listed, for a path deeper than " +
                   std::to_string(kMaxPathDepth) + " components or longer than " + std::to_string(kMaxPathBytes) +
                   " bytes, which no request can name");
    }
    report_remote_unread(tally, arguments, remote_skipped.unread);
    LocalScan local_tree;
    if (!local_missing) {
        auto scanned = scanning.get();
        if (!scanned) {
            return fail_whole(scanned.error());
        }
        local_tree = std::move(scanned.value());
        for (const auto& text : local_tree.notes) {
            tally.note(text);
        }
        if (push) {
            summary.left_out += local_tree.notes.size(); // one note for each entry left out
        }
        report_unreadable(tally, arguments, local_tree.unreadable, remote_tree.value());
    }
    if (!push && !local_missing) {
        remove_stray_leftovers(tally, arguments, local_tree);
    }
    // A pull's parts that no file of the server's resumes (--delete's, to remove).
    const auto orphans = push || local_missing ? std::vector<OrphanPart>{}
                                               : settle_orphan_parts(tally, arguments, local_tree, remote_tree.value());
    const TreeListing& source = push ? local_tree.entries : remote_tree.value();
    const TreeListing& dest = push ? remote_tree.value() : local_tree.entries;

    // What the descriptor limit leaves room for (descriptors.hpp): fewer
    // connections, gets and batched files under a low one, never a file
    // failed for a descriptor.
    const DescriptorShares shares = descriptor_shares(std::clamp(arguments.jobs, 1U, kMaxSyncJobs));
    if (shares.connections < arguments.jobs) {
        output.detail("-j " + std::to_string(arguments.jobs) + " cut to " + std::to_string(shares.connections) +
                      " connection(s): the descriptor limit (ulimit -n) is " + std::to_string(descriptor_limit()));
    }
    Crew crew(connection, options, static_cast<unsigned>(shares.connections));
    if (arguments.after_listing) {
        arguments.after_listing();
    }

    // 2. --checksum: digests where the sizes match.
    PlanOptions plan_options;
    plan_options.checksum = arguments.checksum;
    plan_options.delete_extras = arguments.delete_extras;
    plan_options.held = receiving_held_times(connection, arguments, local_tree, push, local_missing);
    GatheredDigests digests;
    if (arguments.checksum) {
        gather_digests(crew, tally, arguments, checksum_candidates(source, dest), local_tree.listed,
                       shares.held_folders, digests);
        if (interrupted()) {
            return finish();
        }
        plan_options.undecided = digests.undecided;
    }

    // 3. The plan, and its steps.
    SyncPlan plan = push ? plan_sync(source, dest, plan_options, digests.local, digests.remote)
                         : plan_sync(source, dest, plan_options, digests.remote, digests.local);
    if (keeps_top_time) {
        const auto local_top = local_missing ? std::nullopt : local_folder_mtime(arguments.local);
        add_top_folder_time(plan, push ? local_top : remote_top, push ? remote_top : local_top, plan_options.held);
    }
    if (push) {
        leave_remote_unread(plan, remote_skipped.unread);
    }
    for (const auto& conflict : plan.conflicts) {
        if (!push && is_unreadable(local_tree.unreadable, conflict.path)) {
            continue; // report_unreadable said why nothing is placed there
        }
        // Named where it stands, on the receiving side, as the plan's notes
        // name it: the plan's own path is only below the synced folder.
        tally.failed_at(conflict.path, Error{ErrorCode::exists, "\"" + receiving_name(arguments, conflict.path) +
                                                                    "\" " + conflict.message});
    }
    for (const auto& folder : plan.spared) {
        // The same note in a dry run and a real one: the plan leaves them.
        tally.note(shown_spared(arguments, folder));
    }
    for (const auto& twin : plan.twins) {
        // Only a push's sending side holds names outside NFC (a server lists none).
        if (push) {
            tally.note("\"" + printable(":" + join_remote(arguments.remote, twin)) +
                       "\" is kept: it is the NFC spelling of a local name that is not sent; --delete removes "
                       "nothing there");
        }
    }
    summary.skipped = plan.skipped;
    // The folders the receiving side gets are made with their source's
    // modes, the synced folder's own included (as cp -r and rsync make them).
    const TreeFolderModes folder_modes = source_folder_modes(arguments, source, remote_top_info);
    if (push) {
        // Only the folders this run makes: an older ferryd leaves those
        // already there as they are.
        std::vector<std::string> made = plan.folders;
        if (remote_missing && !arguments.remote.empty()) {
            made.emplace_back();
        }
        if (auto note = folder_modes_note(connection, folder_modes.closed_among(made))) {
            tally.caution(*note);
        }
    }
    if (arguments.before_changes) {
        arguments.before_changes();
    }
    if (arguments.dry_run) {
        // A push to a server that does not say which folders hold what it
        // does not list cannot know which folders a delete keeps: only the
        // files are certain, and only they are counted.
        const bool unlisted_known = !push || tells_unlisted(connection);
        // What the real run refuses before sending is an error here too,
        // neither shown as sent nor counted.
        const DryRunLooks looks = look_as_the_real_run(arguments, plan, dest, local_tree.listed);
        SyncPlan sendable = plan;
        sendable.transfers.clear();
        sendable.bytes = 0;
        for (const auto& transfer : plan.transfers) {
            if (const auto refused = looks.refused.find(transfer.path); refused != looks.refused.end()) {
                tally.failed(transfer.path, refused->second);
            } else {
                sendable.transfers.push_back(transfer);
                sendable.bytes += transfer.size;
            }
        }
        // The bytes the real run would receive: a part it resumes is not received again.
        const auto& resumed = looks.resumed;
        show_plan(tally, arguments, sendable, dest, unlisted_known, keeps_top_time,
                  local_missing || (remote_missing && !arguments.remote.empty()), resumed);
        summary.sent = sendable.transfers.size();
        summary.bytes = sendable.bytes;
        for (const auto& [path, held] : resumed) {
            summary.bytes -= held;
        }
        for (const auto& effect : removal_effects(plan, dest)) {
            summary.deleted += effect.files + (unlisted_known ? effect.folders : 0);
        }
        return finish();
    }
    if (remote_missing && !arguments.remote.empty()) {
        auto made = make_remote_folder(connection, arguments.remote, true, folder_modes.of(""));
        if (!made) {
            return fail_whole(made.error());
        }
    }
    bool top_made = false;
    if (local_missing) {
        auto made = make_folders(arguments.local, "sync", folder_modes.mode_of(""));
        if (made.error) {
            return fail_whole(*made.error);
        }
        top_made = made.made_last;
    }
    remove_orphan_parts(tally, arguments, orphans);
    remove_extras(connection, tally, arguments, plan, dest, local_tree);
    auto plan_folders = make_plan_folders(connection, tally, arguments, plan, folder_modes);
    const auto& unmade = plan_folders.unmade;
    if (top_made) {
        plan_folders.made.insert("");
    }
    if (!push) {
        set_local_file_times(tally, arguments, plan, local_tree.listed, digests.hashed);
    }

    PublishBatch publish(shares.publish_files); // a pull's verified files, published in groups
    UnsentFolders unsent; // a push's folders whose files did not start
    std::vector<std::size_t> todo;
    for (std::size_t i = 0; i < plan.transfers.size(); ++i) {
        if (const auto above = unmade_above(unmade, plan.transfers[i].path)) {
            tally.failed(plan.transfers[i].path, in_unmade_folder(arguments, *above, false));
        } else {
            todo.push_back(i);
        }
    }
    for (unsigned attempt = 0; !todo.empty() && !interrupted(); ++attempt) {
        std::vector<FileTransfer> batch;
        for (const auto index : todo) {
            batch.push_back(plan.transfers[index]);
        }
        Queue queue(batch.size());
        Retries retries;
        // A pull's destination folders, a push's source folders: each walked to once per pass.
        HeldFolders folders(shares.held_folders);
        // A retry may find the part its first try left, and resumes it: it looks.
        const std::set<std::string> no_folders;
        const auto& made_now = attempt == 0 ? plan_folders.made : no_folders;
        crew.run(batch.size(), [&](Connection& each) {
            if (push) {
                // A retry does not defer: one folder whose sync fails then
                // fails only its own files again, not a batch of others.
                push_files(each, queue, tally, arguments, batch, retries, local_tree.listed, folders, folder_modes,
                           unsent, attempt == 0);
            } else {
                pull_files(each, queue, tally, arguments, batch, retries, publish, folders, shares.gets_in_flight,
                           made_now);
            }
        });
        publish.flush(); // what was verified is published, even after Ctrl-C
        const auto& retry = retries.list();
        if (attempt >= arguments.retries || retry.empty() || interrupted()) {
            for (const auto& [index, error] : retry) {
                tally.failed(batch[index].path, error);
            }
            break;
        }
        std::vector<std::size_t> again;
        for (const auto& [index, error] : retry) {
            again.push_back(todo[index]);
        }
        tally.note("retrying " + std::to_string(again.size()) + (again.size() == 1 ? " file that" : " files that") +
                   " failed for a passing reason");
        std::this_thread::sleep_for(retry_delay(attempt + 1));
        todo = std::move(again);
    }
    if (interrupted()) {
        return finish();
    }
    // After the files: publishing into a folder changes its mtime.
    if (push) {
        make_unsent_folders(connection, tally, arguments, folder_modes, unsent.take());
        set_remote_times(crew, connection, tally, arguments, plan, dest);
    } else {
        for (const auto& folder : plan.folder_times) {
            if (unmade.contains(folder.path) || unmade_above(unmade, folder.path)) {
                continue; // its error is the folder's own, reported once
            }
            if (auto set = set_local_mtime(arguments.local, folder.path, folder.mtime); !set) {
                tally.failed(folder.path, set.error());
            }
        }
    }
    return finish();
}

} // namespace ferry::client
