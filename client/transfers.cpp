#include "transfers.hpp"

#include "commands.hpp"
#include "descriptors.hpp"
#include "download_names.hpp"
#include "interrupt.hpp"
#include "local_files.hpp"
#include "local_tree.hpp"
#include "names.hpp"
#include "operations.hpp"
#include "posix_io.hpp"
#include "progress.hpp"
#include "publish_batch.hpp"
#include "remote_paths.hpp"
#include "remote_tree.hpp"
#include "shell_words.hpp"
#include "sync_local.hpp"
#include "unsynced_puts.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <set>
#include <thread>
#include <utility>

namespace ferry::client {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start)
{
    return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string download_path(const std::string& name, const GetPlacement& placement)
{
    if (placement.output) {
        return *placement.output == "-" ? "-" : resolve_download_path(name, placement.output);
    }
    if (placement.folder) {
        return local_join(folder_of_typed(*placement.folder), name); // "d/" and "d/." alike: "d/NAME"
    }
    // A file named "-" (a server may list one) lands in a file of that
    // name: only -o - means standard output (ferry.1), never a name; and
    // "-x" is shown as "./-x", as local_join shows it, never as an option.
    return local_join("", resolve_download_path(name, std::nullopt));
}

// Shows each file as it ends (for people), then the summary: for people
// only with several files, with --json always (one object per command).
class Report {
public:
    Report(const Output& output, std::size_t count, bool upload)
        : output_(output), upload_(upload), start_(Clock::now())
    {
        summary_.files.resize(count);
        typed_.resize(count);
    }

    FileOutcome& file(std::size_t index) { return summary_.files[index]; }
    bool single() const { return summary_.files.size() == 1; }
    // The argument that named file INDEX by itself, as typed (no wildcard):
    // where it has a '..', its failure names it so, as stat's and rm's do
    // (named_as_typed); its transfer line still shows the server's path.
    void typed_as(std::size_t index, std::string typed) { typed_[index] = std::move(typed); }
    // The shell's current folder: the lines shown name server paths as
    // its other commands do (shown_path); --json's summary keeps them
    // from the root.
    void shown_in(std::string current) { current_ = std::move(current); }

    // `typed_name`: the file's name is an argument as typed, and `error`
    // names it so already (GetPlan::add_typed). `follows_its_folder`: it
    // failed only because a folder above it could not be made, whose own
    // line says why (one line per cause, as rsync's "skipping any contents
    // from this failed directory"); it is counted, and listed by --json.
    void failed(std::size_t index, const Error& error, bool typed_name = false, bool follows_its_folder = false)
    {
        summary_.files[index].error = error;
        summary_.files[index].follows_its_folder = follows_its_folder;
        if (!output_.json() && !follows_its_folder) {
            const std::string& name = summary_.files[index].name;
            const bool climbed = !typed_name && climbs_out(typed_[index]);
            const std::string shown = typed_name ? name : shown_name(index, name);
            // The server names the path from the root: shown as the line's.
            const Error named = typed_name || (current_.empty() && !climbed)
                                    ? error
                                    : named_as_typed(error, name, climbed ? typed_[index] : shown, current_);
            // Each line names its file once: an error about the path as
            // typed ("f/../a": "f" is a file...) names it already.
            output_.error(single() ? named : Error{named.code, named_once(shown, named.message)});
        }
    }
    // Refused: its local name is another download's. --json names the
    // server paths from the root, the lines as this report names its files
    // (shown_in, and as typed where that climbed: typed_as).
    void failed(std::size_t index, const NameClash& clash)
    {
        summary_.files[index].error = clash.error(clash.remote, clash.other);
        if (!output_.json()) {
            const std::string shown = shown_name(index, clash.remote);
            const Error error = clash.error(shown, shown_name(clash.other_owner, clash.other));
            output_.error(single() ? error : Error{error.code, named_once(shown, error.message)});
        }
    }
    void transferred(std::size_t index, TransferResult result)
    {
        FileOutcome& outcome = summary_.files[index];
        if (upload_) {
            result.local = outcome.local; // "-", not the file standard input was spooled to
        }
        TransferResult shown = result;
        shown.file.name = shown_path(shown.file.name, current_);
        output_.transferred(shown, upload_);
        if (result.time_not_kept) {
            note(time_not_kept_note(outcome.name, *result.time_not_kept, upload_));
        }
        outcome.done = std::move(result);
    }
    void skipped(std::size_t index, const std::string& why)
    {
        FileOutcome& outcome = summary_.files[index];
        outcome.skipped = why;
        FileOutcome shown = outcome;
        shown.name = shown_path(shown.name, current_);
        output_.skipped(shown, upload_);
    }
    // Something left out on purpose: a note on stderr for people, the
    // summary's `notes` under --json (stdout holds the one JSON object).
    void note(std::string text) { output_.warning(std::move(text), summary_.notes); }
    // Ctrl-C: what was not done yet is reported as not done.
    void abandon_rest(const std::deque<std::size_t>& indices, const Error& why)
    {
        for (const auto index : indices) {
            failed(index, why);
        }
    }

    // Of `indices`, the files that failed for a reason that may pass
    // (exit status 6), their errors cleared for another try. None once the
    // user interrupted.
    std::vector<std::size_t> take_retryable(const std::vector<std::size_t>& indices)
    {
        std::vector<std::size_t> again;
        if (interrupted()) {
            return again;
        }
        for (const auto index : indices) {
            auto& error = summary_.files[index].error;
            if (error && exit_status(error->code) == kExitTransient) {
                again.push_back(index);
            }
        }
        // A download held behind one tried again is tried again with it,
        // in the command's order, so that it waits behind it again.
        const std::set<std::size_t> retried(again.begin(), again.end());
        for (auto held = behind_.begin(); held != behind_.end();) {
            if (retried.contains(held->second.other_owner)) {
                again.push_back(held->first);
                held = behind_.erase(held);
            } else {
                ++held;
            }
        }
        std::sort(again.begin(), again.end());
        return again;
    }
    // get --retry: refused at a pass's end, its name held by a download
    // that failed for a passing reason and may be tried again: counted as
    // refused, not shown yet. Tried again with that download
    // (take_retryable), or shown once the tries are over (show_held).
    void failed_behind(std::size_t index, const NameClash& clash)
    {
        failed(index, clash.error(clash.remote, clash.other), false, true);
        summary_.files[index].follows_its_folder = false;
        behind_.insert_or_assign(index, clash);
    }
    void show_held()
    {
        for (const auto& [index, clash] : std::exchange(behind_, {})) {
            failed(index, clash);
        }
    }
    void clear(std::size_t index) { summary_.files[index].error.reset(); }

    // put: a file the server refused as not_a_folder (a file stands where
    // its path needs a folder) is counted now and shown later, once the
    // passes are over, as one line for that folder if it is one of the
    // local tree's (report_unmade_folders); off, each shows its own line.
    void hold_for_their_folders() { holding_ = true; }
    void failed_put(std::size_t index, const Error& error)
    {
        if (holding_ && error.code == ErrorCode::not_a_folder) {
            failed(index, error, false, true);
            held_.push_back(index);
        } else {
            failed(index, error);
        }
    }
    std::vector<std::size_t> take_held() { return std::exchange(held_, {}); }

    // A folder that could not be made: shown as a failed file is, counted
    // apart from the files (it is none).
    void folder_failed(FolderFailure failure)
    {
        if (!output_.json() && !failure.follows_its_folder) {
            // Named as the file lines are (shown_in); --json keeps it from the
            // root. A local folder a put could not read is named where it
            // stands, as sync names it and as notes name what was left out
            // (a new user's trial, round 72, saw its server path).
            if (upload_ && failure.error.code == ErrorCode::local_io) {
                output_.error(Error{failure.error.code, named_once(failure.local, failure.error.message)});
            } else {
                const std::string shown = shown_path(failure.name, current_);
                const Error named =
                    current_.empty() ? failure.error : named_as_typed(failure.error, failure.name, shown, current_);
                output_.error(Error{named.code, named_once(shown, named.message)});
            }
        }
        summary_.failed_folders.push_back(std::move(failure));
    }

    // The files' outcomes, for a caller that sums them up itself.
    TransferSummary take()
    {
        summary_.seconds = seconds_since(start_);
        return std::move(summary_);
    }

    int finish()
    {
        summary_.seconds = seconds_since(start_);
        output_.summary(summary_, upload_);
        std::vector<ErrorCode> failures;
        for (const auto& file : summary_.files) {
            if (file.error) {
                failures.push_back(file.error->code);
            }
        }
        for (const auto& folder : summary_.failed_folders) {
            failures.push_back(folder.error.code);
        }
        return exit_status(failures);
    }

private:
    // How a line names file INDEX, at server path `name`: as typed where
    // the argument that named it alone climbed with '..', else from the
    // shell's current folder.
    std::string shown_name(std::size_t index, const std::string& name) const
    {
        return climbs_out(typed_[index]) ? tidied_typed_path(typed_[index]) : shown_path(name, current_);
    }

    const Output& output_;
    bool upload_;
    std::vector<std::string> typed_; // by index: typed_as, empty where none
    Clock::time_point start_;
    TransferSummary summary_;
    std::string current_; // "" on the command line: paths from the root, as they are
    bool holding_ = false;
    std::vector<std::size_t> held_;           // failed_put's, not shown yet
    std::map<std::size_t, NameClash> behind_; // failed_behind's, not shown yet
};

Error interrupted_before_start()
{
    return Error{ErrorCode::aborted, "interrupted before it started"};
}

// Sleeps before retry `attempt`, waking for Ctrl-C; false if interrupted.
bool wait_to_retry(const Output& output, unsigned attempt, unsigned retries, std::size_t files)
{
    const auto delay = retry_delay(attempt);
    output.detail("retrying " + std::to_string(files) + " file" + (files == 1 ? "" : "s") + " in " +
                  std::to_string(delay.count() / 1000.0).substr(0, 4) + " s (retry " + std::to_string(attempt) +
                  " of " + std::to_string(retries) + ")");
    const auto until = Clock::now() + delay;
    while (Clock::now() < until) {
        if (interrupted()) {
            return false;
        }
        std::this_thread::sleep_for(std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(100)));
    }
    return !interrupted();
}

// Standard input read to its end into a private temporary file in $TMPDIR
// (else /tmp): a put must declare its size before its data (PROTOCOL.md
// 4.5). The file has no name from its creation on (O_TMPFILE; where the
// file system has none, mkstemp's name is unlinked at once), so that no
// end of ferry, a kill -9 included, leaves a copy of the input behind: its
// blocks go with the last descriptor. Everything reads it through that
// descriptor (PutItem::spool, each put a dup of it), never by a path.
class SpooledInput {
public:
    // The spool once read_all succeeded; empty before.
    const std::shared_ptr<const LocalFile>& file() const { return file_; }

    Status read_all()
    {
        const char* tmp = std::getenv("TMPDIR");
        const std::string folder = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
        auto created = create_nameless(folder);
        if (!created) {
            return created.error();
        }
        LocalFile& file = created.value();
        std::vector<std::uint8_t> buffer(1024 * 1024);
        for (;;) {
            if (interrupted()) {
                return Error{ErrorCode::aborted, "interrupted while reading standard input"};
            }
            // One read, not read_full: a pipe's bytes are spooled as they come.
            const ssize_t got =
                sys::retry_on_eintr([&] { return ::read(STDIN_FILENO, buffer.data(), buffer.size()); }, interrupted);
            if (got < 0 && errno == EINTR) {
                continue; // interrupted: the check above says so
            }
            if (got < 0) {
                return local_error("cannot read standard input", errno);
            }
            if (got == 0) {
                break;
            }
            if (auto wrote = file.write_all(std::span<const std::uint8_t>(buffer.data(), static_cast<std::size_t>(got)));
                !wrote) {
                return wrote;
            }
        }
        file_ = std::make_shared<const LocalFile>(std::move(file));
        return success();
    }

private:
    // A private file in `folder` that no name leads to.
    static Result<LocalFile> create_nameless(const std::string& folder)
    {
        int fd = ::open(folder.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
            // No O_TMPFILE here (the file system, or an old kernel): a
            // named file, its name gone before the first byte.
            std::string pattern = folder + "/ferry-stdin-XXXXXX";
            fd = ::mkostemp(pattern.data(), O_CLOEXEC);
            if (fd >= 0 && ::unlink(pattern.c_str()) != 0) {
                const int saved = errno;
                ::close(fd);
                return local_error("cannot unlink the temporary file for standard input \"" + pattern + "\"",
                                   saved);
            }
        }
        if (fd < 0) {
            return local_error("cannot create a temporary file for standard input in \"" + folder + "\"",
                               errno);
        }
        return LocalFile("standard input", fd);
    }

    std::shared_ptr<const LocalFile> file_;
};

} // namespace

std::chrono::milliseconds retry_delay(unsigned attempt)
{
    const unsigned doublings = std::min(attempt == 0 ? 0U : attempt - 1, 5U);
    const auto delay = std::chrono::milliseconds(1000) * (1U << doublings);
    return std::min<std::chrono::milliseconds>(delay, kMaxRetryDelay);
}

namespace {

// A download left out (-n, --skip-identical): why, and the local path it
// leaves as it is.
struct SkippedGet {
    std::string why;
    std::string dest;
};

// Before any request goes out: no two of the command's downloads may share
// a local name in any role (file, part, sidecar, its temporaries), or one
// would write, resume or publish the other's bytes. The files claim their
// names in the command's order, except that a file named like another's
// working files (NAME.ferry-part...) yields to it; each later one that
// clashes waits (ClaimedDownloads) and leaves `waiting`: it is sent only
// if every download it clashes with fails before writing a byte, and
// refused (name_clash) otherwise, once the transfers are over.
//
// A file skipped (-n, --skip-identical: in `skipped`, with why) claims its
// name too, in its place in the command's order: a later download to that
// name would replace what the skip vouched for, and an earlier one makes
// the skip's look stale. One that holds its name stays in `skipped`; one
// that waits moves to the returned `waiting_skipped` (reported skipped if
// it is handed the name, refused if not).
ClaimedDownloads claim_local_names(const std::vector<GetItem>& items, std::vector<std::optional<PendingGet>>& pending,
                                   std::deque<std::size_t>& waiting, std::map<std::size_t, SkippedGet>& skipped,
                                   std::map<std::size_t, SkippedGet>& waiting_skipped)
{
    std::vector<ClaimedDownloads::Download> downloads;
    for (const std::size_t i : waiting) {
        const PendingGet& get = *pending[i];
        if (get.options.to_stdout || get.target.kind == TargetKind::stream) {
            continue; // written straight through: no part, nothing renamed
        }
        downloads.push_back({i, get.options.name, get.options.dest});
    }
    for (const auto& [i, skip] : skipped) {
        downloads.push_back({i, items[i].name, skip.dest});
    }
    // The command's order, skipped files in their places.
    std::stable_sort(downloads.begin(), downloads.end(),
                     [](const auto& a, const auto& b) { return a.index < b.index; });
    ClaimedDownloads claims;
    const auto holding = claims.claim(std::move(downloads));
    const std::set<std::size_t> held(holding.begin(), holding.end());
    std::erase_if(waiting, [&](std::size_t i) {
        const PendingGet& get = *pending[i];
        return !get.options.to_stdout && get.target.kind != TargetKind::stream && !held.contains(i);
    });
    std::erase_if(skipped, [&](const auto& entry) {
        if (held.contains(entry.first)) {
            return false;
        }
        waiting_skipped.insert(entry);
        return true;
    });
    return claims;
}

// Where a download lands, walked to once, before anything else looks at
// it: a target the user typed (-o, -C's folder, the working folder) in the
// folder resolve_typed_path reaches (links of the user's or root's only;
// through the user's own link to a file, the file it leads to is the
// target), a tree's name (get -r, a wildcard's match) in its folder
// reached from the tree's root without following a link (`folders`, shared
// by the command's files). The folder is held in options.folder from here
// to the publish (GetOptions::folder), so that the part, its sidecar, the
// attributes and the rename go through its descriptor and a folder
// swapped after the walk leads nowhere. A FIFO or device stays a stream
// (inspect_download_target holds its descriptor).
Status land(GetOptions& options, HeldFolders& folders)
{
    if (options.to_stdout) {
        return success();
    }
    if (!options.tree_root.empty()) {
        auto folder = folders.folder_of(options.tree_root, options.dest);
        if (!folder) {
            return folder.error();
        }
        options.folder = std::move(folder.value());
        return success();
    }
    auto target = inspect_download_target(options.dest);
    if (!target) {
        return target.error();
    }
    if (target->kind != TargetKind::stream) {
        options.dest = target->path;
        options.folder = std::move(target->folder);
    }
    return success();
}

// A planned download's folder is let go between its plan and its request:
// a command plans all its files before the first request goes out
// (claim_local_names compares them all), and a descriptor held per
// folder for that whole time would cap a tree at the descriptor limit
// (RLIMIT_NOFILE), failing every file past it. Right before the request
// the folder is walked to again as `land` walked (a tree's name from the
// tree's root without following a link; a typed path by the owner rule)
// and held from there to the publish; it must be the very folder planned
// (device and inode, fstat), or the file fails and nothing is written, so
// a folder swapped meanwhile is never written into.
struct PlannedFolder {
    dev_t device = 0;
    ino_t inode = 0;
};

std::optional<PlannedFolder> planned_folder_of(const LocalFolder& folder)
{
    struct stat st {};
    if (::fstat(folder.fd(), &st) != 0) {
        return std::nullopt;
    }
    return PlannedFolder{st.st_dev, st.st_ino};
}

Result<std::shared_ptr<const LocalFolder>> walk_to_folder(const GetOptions& options, HeldFolders& folders)
{
    if (!options.tree_root.empty()) {
        return folders.folder_of(options.tree_root, options.dest);
    }
    auto place = resolve_typed_path(options.dest, false);
    if (!place) {
        return place.error();
    }
    return std::move(place->folder);
}

Status take_planned_folder(GetOptions& options, const PlannedFolder& planned, HeldFolders& folders)
{
    auto folder = walk_to_folder(options, folders);
    if (!folder) {
        return folder.error();
    }
    const auto now = planned_folder_of(*folder.value());
    if (!now || now->device != planned.device || now->inode != planned.inode) {
        return about_local_files(ErrorCode::local_io,
                                 "the folder of \"" + options.dest +
                                     "\" was replaced since the download was planned; nothing was written");
    }
    options.folder = std::move(folder.value());
    return success();
}

std::optional<Error> refused_under_no_clobber(const std::string& dest, bool tree_name);

// Whether the download that would take the names of the failed download
// `index` (the first behind it in claim order) is the one whose part
// `get` found at its part name (PendingGet::part_owner): a part whose state
// names another file is not the failed one's, but only that file's own
// download may build on it or replace it, never a third file that would
// publish over it or discard its progress.
bool first_behind_owns_the_part(const ClaimedDownloads& claims, std::size_t index, const PendingGet& get)
{
    if (!get.part_owner) {
        return false;
    }
    const auto waiting = claims.waiting(); // in claim order
    const auto first = std::find_if(waiting.begin(), waiting.end(),
                                    [&](const auto& behind) { return behind.clash.other_owner == index; });
    return first != waiting.end() && first->download.remote == *get.part_owner &&
           base_name(first->download.dest) == base_name(get.options.dest);
}

// -n skipped each get whose local name is taken by the local file alone,
// asking the server nothing. One that another download of the command
// waits behind (claim_local_names) is asked about now: a file the server
// does not have fails (not_on_server) and hands its name on, as a download
// that failed unwritten does, so that the next one is skipped or
// downloaded in its place rather than refused for a file that is not
// there. The server is asked only in such a clash.
void hand_on_names_of_missing_files(Connection& connection, Report& report, const std::vector<GetItem>& items,
                                    ClaimedDownloads& claims, std::map<std::size_t, SkippedGet>& skipped,
                                    std::map<std::size_t, SkippedGet>& waiting_skipped,
                                    std::deque<std::size_t>& waiting)
{
    std::set<std::size_t> asked;
    for (bool handed = true; handed;) {
        handed = false;
        for (const auto& behind : claims.waiting()) {
            const std::size_t holder = behind.clash.other_owner;
            if (!skipped.contains(holder) || !asked.insert(holder).second) {
                continue;
            }
            if (!connection.is_open() && !connection.reconnect()) {
                return; // the clash stands as planned
            }
            auto missing = not_on_server(connection, items[holder].name);
            if (!missing || !missing.value()) {
                continue;
            }
            skipped.erase(holder);
            report.failed(holder, *missing.value());
            for (const std::size_t next : claims.failed_unwritten(holder)) {
                if (auto why = waiting_skipped.find(next); why != waiting_skipped.end()) {
                    skipped.insert(waiting_skipped.extract(why));
                } else {
                    waiting.push_back(next);
                }
            }
            handed = true; // the waiting ones changed: look again
            break;
        }
    }
}

void get_files(Connection& connection, const Output& output, Report& report, const std::vector<GetItem>& items,
               const TransferFlags& flags, const std::vector<std::size_t>& todo, PublishBatch& publish)
{
    if (!connection.is_open()) {
        if (auto again = connection.reconnect(); !again) {
            report.abandon_rest(std::deque<std::size_t>(todo.begin(), todo.end()), again.error());
            return;
        }
    }
    std::vector<std::optional<PendingGet>> pending(items.size());
    std::vector<std::optional<PlannedFolder>> planned(items.size());
    // The descriptor limit's shares (descriptors.hpp): under a low one,
    // fewer gets ahead and fewer folders kept, never a file failed for it.
    const DescriptorShares shares = descriptor_shares();
    HeldFolders folders(shares.held_folders);
    std::deque<std::size_t> waiting;   // to be sent, in order
    std::deque<std::size_t> in_flight; // sent; their replies come back in this order
    // Files left as they are (-n, --skip-identical), with why: each keeps
    // its local name, so no other download of the command writes there.
    std::map<std::size_t, SkippedGet> skipped;
    for (const std::size_t i : todo) {
        GetOptions options;
        options.name = items[i].name;
        options.dest = items[i].local;
        options.tree_root = items[i].tree_root;
        options.to_stdout = options.dest == "-";
        options.resume = flags.resume;
        options.hash = flags.hash;
        options.preserve_mtime = flags.preserve;
        // -n holds at the publish too, not only at the look below: a file
        // that appears while the download runs is left alone.
        options.replace = flags.clobber != Clobber::keep_existing;
        options.defer_publish = true;
        report.file(i).name = items[i].name;
        report.file(i).local = options.dest;
        // A path the server would refuse (a name over NAME_MAX, say) is
        // answered as stat and rm answer it, before its local name is
        // looked at: that would fail for the same name, as a local error.
        if (auto bad = check_path(options.name)) {
            report.failed(i, *bad);
            continue;
        }
        if (auto landed = land(options, folders); !landed) {
            report.failed(i, landed.error());
            continue;
        }
        if (interrupted()) {
            report.failed(i, interrupted_before_start());
            continue;
        }
        if (flags.clobber != Clobber::replace) {
            // Nothing is in flight yet: the connection is free for the check.
            if (!connection.is_open()) {
                if (auto again = connection.reconnect(); !again) {
                    report.failed(i, again.error());
                    continue;
                }
            }
            auto skip = skip_get(connection, options.name, options.dest, flags.clobber, flags.hash, options.folder.get());
            if (!skip) {
                report.failed(i, skip.error());
                continue;
            }
            if (skip.value()) {
                // Reported once the names are settled: a skipped file holds
                // its local name as a download would (claim_local_names).
                skipped[i] = SkippedGet{*skip.value(), options.dest};
                continue;
            }
        }
        auto prepared = prepare_get(options);
        if (!prepared) {
            report.failed(i, prepared.error());
            continue;
        }
        pending[i] = std::move(prepared.value());
        if (const auto& folder = pending[i]->options.folder) {
            planned[i] = planned_folder_of(*folder);
            if (!planned[i]) {
                report.failed(i, local_error("cannot look at the folder of \"" + options.dest + "\"", errno));
                pending[i].reset();
                continue;
            }
            pending[i]->options.folder.reset();
        }
        waiting.push_back(i);
    }
    std::map<std::size_t, SkippedGet> waiting_skipped;
    ClaimedDownloads claims = claim_local_names(items, pending, waiting, skipped, waiting_skipped);
    if (flags.clobber == Clobber::keep_existing) {
        hand_on_names_of_missing_files(connection, report, items, claims, skipped, waiting_skipped, waiting);
    }
    for (const auto& [index, skip] : skipped) {
        report.skipped(index, skip.why);
    }
    // Download `index` failed: if it wrote nothing under its local names
    // (refused by the server, or before its request) and found no part of
    // its own there (an earlier run's, kept for a later resume), a download
    // waiting behind it may take them now.
    const auto let_go_names = [&](std::size_t index, const Error& error, bool wrote) {
        const PendingGet& get = *pending[index];
        if (wrote || get.resumable || exit_status(error.code) == kExitTransient) {
            return; // tried again later, or it wrote: the names stay its own
        }
        if (!get.options.no_part && !first_behind_owns_the_part(claims, index, get)) {
            return; // a part maybe its own, or a third file's that the next one would replace
        }
        for (const std::size_t next : claims.failed_unwritten(index)) {
            if (auto why = waiting_skipped.find(next); why != waiting_skipped.end()) {
                report.skipped(next, why->second.why); // its file stays as it is, now unclaimed by others
                skipped.insert(waiting_skipped.extract(why));
            } else {
                waiting.push_back(next);
            }
        }
    };

    while (!waiting.empty() || !in_flight.empty()) {
        if (!connection.is_open()) {
            // Requests sent on the lost connection go out again on the new one.
            waiting.insert(waiting.begin(), in_flight.begin(), in_flight.end());
            in_flight.clear();
            if (auto again = connection.reconnect(); !again) {
                report.abandon_rest(waiting, again.error());
                break;
            }
        }
        while (in_flight.size() < shares.gets_in_flight && !waiting.empty() && connection.is_open()) {
            const std::size_t index = waiting.front();
            waiting.pop_front();
            PendingGet& get = *pending[index];
            if (planned[index] && !get.options.folder) {
                if (auto taken = take_planned_folder(get.options, *planned[index], folders); !taken) {
                    report.failed(index, taken.error());
                    let_go_names(index, taken.error(), false);
                    continue;
                }
            }
            if (auto sent = send_get(connection, get); !sent) {
                report.failed(index, sent.error());
                continue;
            }
            in_flight.push_back(index);
        }
        if (in_flight.empty()) {
            continue;
        }
        const std::size_t index = in_flight.front();
        in_flight.pop_front();
        PendingGet& get = *pending[index];
        ProgressBar bar(get.options.name, output.progress());
        get.options.progress = [&bar](std::uint64_t done, std::uint64_t total) { bar.update(done, total); };
        auto result = finish_get(connection, get);
        bar.finish();
        get.options.progress = nullptr;
        if (!get.restart) {
            get.options.folder.reset(); // a verified part holds its own
        }
        if (result && get.verified) {
            const std::uint64_t bytes = result->moved();
            publish.add(std::move(*get.verified), bytes,
                        [&report, index, got = std::move(result.value()), dest = get.options.dest,
                         tree_name = !items[index].tree_root.empty()](const Status& published) mutable {
                            if (published) {
                                report.transferred(index, std::move(got));
                            } else if (published.error().code == ErrorCode::exists) {
                                // -n's name taken during the download: answered
                                // as what stands there is before it.
                                if (auto refused = refused_under_no_clobber(dest, tree_name)) {
                                    report.failed(index, *refused);
                                } else {
                                    report.skipped(index, "exists");
                                }
                            } else {
                                report.failed(index, published.error());
                            }
                        });
            continue;
        }
        if (result) {
            report.transferred(index, std::move(result.value()));
            continue;
        }
        if (get.restart) {
            waiting.push_front(index);
            continue;
        }
        Error error = result.error();
        // The way on where the server said it is a folder (or, older, did
        // not say what it is); never for a link, which get -r skips too.
        if (error.code == ErrorCode::not_regular_file && !flags.recursive &&
            (error.message.ends_with(": a folder") || error.message.ends_with(" is not a regular file"))) {
            error.message += " (a folder comes with get -r)";
        }
        report.failed(index, error);
        if (error.code == ErrorCode::aborted && interrupted()) {
            waiting.insert(waiting.begin(), in_flight.begin(), in_flight.end());
            report.abandon_rest(waiting, interrupted_before_start());
            break;
        }
        let_go_names(index, error, get.accepted);
    }
    // Interrupted, the file each one waits behind may not have been
    // decided: they were not started, rather than refused.
    for (const auto& refused : claims.waiting()) {
        // Two files left as they are that the command itself names for one
        // local name are refused too (the later one), as put -n refuses them
        // and as they are without the local file, whatever is there now.
        if (auto why = waiting_skipped.find(refused.download.index);
            why != waiting_skipped.end() && skipped.contains(refused.clash.other_owner) &&
            items[refused.download.index].local != items[refused.clash.other_owner].local) {
            // Two files left as they are, under local names of their own
            // that lead to one file (the user's links to it): neither
            // writes there, and both are skipped, as when the links
            // appear during the get.
            report.skipped(refused.download.index, why->second.why);
        } else if (interrupted()) {
            report.failed(refused.download.index, interrupted_before_start());
        } else if (const auto& holder = report.file(refused.clash.other_owner).error;
                   flags.retries > 0 && holder && exit_status(holder->code) == kExitTransient) {
            report.failed_behind(refused.download.index, refused.clash); // its holder may be tried again
        } else {
            report.failed(refused.download.index, refused.clash);
        }
        pending[refused.download.index].reset();
    }
}

// One try at the gets of `todo` (indices into `items`). Verified files are
// published in batches (publish_batch.hpp): durable together, then renamed,
// then one sync per folder; each is reported once published.
void get_pass(Connection& connection, const Output& output, Report& report, const std::vector<GetItem>& items,
              const TransferFlags& flags, const std::vector<std::size_t>& todo)
{
    PublishBatch publish(descriptor_shares().publish_files);
    get_files(connection, output, report, items, flags, todo, publish);
    publish.flush();
}

constexpr const char* kReplacesAtCommitNote =
    "this server cannot refuse to replace at the commit (an older ferryd, without \"commit_replace\"): "
    "--no-clobber looks before each upload only, and a name put on the server while the upload runs is replaced";

// One try at the puts of `todo`; the items' local paths are the files to
// read (standard input already spooled).
void put_pass(Connection& connection, const Output& output, Report& report, const std::vector<PutItem>& items,
              const TransferFlags& flags, std::vector<std::size_t> todo)
{
    if (!connection.is_open()) {
        if (auto again = connection.reconnect(); !again) {
            report.abandon_rest(std::deque<std::size_t>(todo.begin(), todo.end()), again.error());
            return;
        }
    }
    if (flags.clobber == Clobber::keep_existing && !checks_commit_replace(connection)) {
        output.warning(kReplacesAtCommitNote);
    }
    if (flags.clobber != Clobber::replace) {
        // Before any put is sent, while the connection is free for questions.
        std::vector<std::size_t> to_send;
        for (const std::size_t index : todo) {
            if (!connection.is_open()) {
                if (auto again = connection.reconnect(); !again) {
                    report.failed(index, again.error());
                    continue;
                }
            }
            auto skip = skip_put(connection, items[index].local, items[index].name, flags.clobber, flags.hash,
                                 items[index].spool.get());
            if (!skip) {
                report.failed(index, skip.error());
            } else if (skip.value()) {
                report.skipped(index, *skip.value());
            } else {
                to_send.push_back(index);
            }
        }
        todo = std::move(to_send);
    }
    std::size_t next = 0;
    // put -r's source folders, each walked to once for all the files listed in it.
    HeldFolders folders;
    // Small files the server published with their folder's fsync deferred:
    // reported once this connection's sync answers for them (UnsyncedPuts).
    UnsyncedPuts unsynced;
    const auto sent = [&](std::size_t index, TransferResult result) { report.transferred(index, std::move(result)); };
    const auto not_durable = [&](std::size_t index, const Error& error) { report.failed_put(index, error); };
    const auto stopped = [&](std::size_t index) {
        report.failed(index, Error{ErrorCode::aborted, "interrupted before the server confirmed it durable"});
    };
    const auto settle_unsynced = [&] { unsynced.settle(connection, sent, not_durable, stopped); };

    // Sends the request of the next file that can be opened, on a live
    // connection; nullopt when no file is left.
    const auto start_next = [&]() -> std::optional<std::pair<std::size_t, PendingPut>> {
        while (next < todo.size()) {
            const std::size_t index = todo[next++];
            PutOptions options;
            options.local_path = items[index].local;
            options.name = items[index].name;
            options.parents = items[index].parents;
            options.folder_modes = items[index].folder_modes;
            options.mtime = items[index].mtime;
            options.listed = items[index].listed;
            options.folders = &folders;
            options.spool = items[index].spool;
            options.resume = flags.resume;
            options.hash = flags.hash;
            // -n holds at the commit too (where the server can promise it).
            options.replace = flags.clobber != Clobber::keep_existing;
            options.defer_sync = flags.defer_sync && unsynced.deferring();
            if (interrupted()) {
                report.failed(index, interrupted_before_start());
                continue;
            }
            auto prepared = prepare_put(options);
            if (!prepared) {
                report.failed(index, prepared.error());
                continue;
            }
            Status asked = connection.is_open() ? send_put(connection, prepared.value()) : Status(success());
            if (!connection.is_open()) {
                // Lost now or before: one fresh connection, one more try.
                settle_unsynced(); // the server's promise to sync went with the connection
                asked = connection.reconnect();
                if (asked) {
                    asked = send_put(connection, prepared.value());
                }
            }
            if (!asked) {
                report.failed(index, asked.error());
                continue;
            }
            return std::pair{index, std::move(prepared.value())};
        }
        return std::nullopt;
    };

    auto current = start_next();
    while (current) {
        auto& [index, put] = *current;
        ProgressBar bar(put.options.name, output.progress());
        put.options.progress = [&bar](std::uint64_t done, std::uint64_t total) { bar.update(done, total); };
        auto uploaded = send_upload(connection, put);
        bar.finish();
        if (!uploaded) {
            Error error = uploaded.error();
            if (error.code == ErrorCode::not_found && !items[index].parents) {
                // put --as a/x into a missing a: the server makes no folder
                // unasked (a new user's trial, round 72, found no way out).
                error.message += " (put -C FOLDER, or mkdir -p, makes the missing folders)";
            }
            report.failed_put(index, error);
            current = start_next();
            continue;
        }
        // The next request rides behind the commit; its reply waits behind
        // the commit's. Not where a sync is due after this commit: asked
        // before the next put, which would make it an upload's unexpected
        // request.
        const bool sync_due = unsynced.sync_due();
        auto following = sync_due ? std::nullopt : start_next();
        auto committed = finish_put(connection, put);
        if (committed) {
            unsynced.committed(index, std::move(committed.value()), sent);
        } else if (committed.error().code == ErrorCode::exists && !put.options.replace) {
            // -n's name put on the server while this upload ran: skipped,
            // as one found before it (the server kept its file).
            report.skipped(index, "exists");
        } else {
            report.failed_put(index, committed.error());
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
                report.failed(following->first, again.error());
                following = start_next();
            }
        }
        current = std::move(following);
    }
    settle_unsynced();
}

// Runs `pass` over every file, then again over those that failed for a
// passing reason, up to flags.retries times, resuming where they stopped.
template <typename Pass>
void with_retries(const Output& output, Report& report, std::vector<std::size_t> todo, TransferFlags flags, Pass pass)
{
    for (unsigned attempt = 1;; ++attempt) {
        pass(flags, todo);
        if (attempt > flags.retries) {
            return;
        }
        auto again = report.take_retryable(todo);
        if (again.empty() || !wait_to_retry(output, attempt, flags.retries, again.size())) {
            return;
        }
        for (const auto index : again) {
            report.clear(index);
        }
        todo = std::move(again);
        flags.resume = true; // what the failed try moved is kept: continue from there
        flags.defer_sync = false;
    }
}


// A local folder of a get -r tree: `path` below `base` (the folder the
// user named), with the server's time for -p.
struct TreeFolder {
    std::string base;
    std::string path;
    std::int64_t mtime = 0;
};

// `items` less those whose mark in `kept` is false, in order, in one pass
// (erasing one at a time is quadratic in a tree named twice).
template <typename Item>
void keep_marked(std::vector<Item>& items, const std::vector<bool>& kept)
{
    std::size_t out = 0;
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (kept[i]) {
            if (out != i) {
                items[out] = std::move(items[i]);
            }
            ++out;
        }
    }
    items.erase(items.begin() + static_cast<std::ptrdiff_t>(out), items.end());
}

// What a get command will do, worked out before any file moves: the files
// (with those that already failed, by index), and with -r the local
// folders made, with the server's times for -p, and those that could not be.
struct GetPlan {
    std::vector<GetItem> items;
    std::vector<std::optional<Error>> errors;
    std::vector<TreeFolder> folders;
    std::vector<FolderFailure> failed_folders;
    // What was left out on purpose, for the Report's notes.
    std::vector<std::string> notes;

    // Whether each item is named as the user typed it (an argument that
    // failed as a whole), not by its path from the root.
    std::vector<bool> typed_names;
    // Whether each item failed only because a folder above it could not
    // be made (Report::failed).
    std::vector<bool> follow_their_folders;
    // The argument that named each item by itself, as typed (Report::typed_as);
    // empty for a file a wildcard or a folder's walk found.
    std::vector<std::string> typed_as;

    void add(GetItem item, std::optional<Error> error = std::nullopt)
    {
        items.push_back(std::move(item));
        errors.push_back(std::move(error));
        typed_names.push_back(false);
        follow_their_folders.push_back(false);
        typed_as.emplace_back();
    }
    // An argument's own failure: named as typed, and so is its error.
    void add_typed(GetItem item, Error error)
    {
        add(std::move(item), std::move(error));
        typed_names.back() = true;
    }
    // A file below a folder that could not be made.
    void add_following_its_folder(GetItem item, Error error)
    {
        add(std::move(item), std::move(error));
        follow_their_folders.back() = true;
    }
};

Status ensure_open(Connection& connection)
{
    return connection.is_open() ? success() : connection.reconnect();
}

// A local name that a remote tree would write through: the server chooses
// the names below the target folder, and a symbolic link already standing
// at one of them would carry its file or folder somewhere else. Nothing is
// written through a link (lstat: the link itself, never what it leads to).
std::optional<Error> refuse_symlink(const std::string& path)
{
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
        return about_local_files(ErrorCode::local_io,
                                 "\"" + path +
                                     "\" is a symbolic link: nothing of the server's tree is written through it");
    }
    return std::nullopt;
}

// What stands at a file's name the server chose and must not be written:
// a symbolic link (refuse_symlink's reason), or a FIFO, socket or device
// (opening a FIFO waits for a writer, past any timeout; a device is not a
// file to replace; sync leaves them alone the same way). One lstat.
std::optional<Error> refuse_in_the_way(const std::string& path)
{
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
        return std::nullopt;
    }
    if (S_ISLNK(st.st_mode)) {
        return refuse_symlink(path);
    }
    return about_local_files(ErrorCode::local_io, "\"" + path + "\" is a FIFO, socket or device: it is left alone");
}

// --no-clobber's answer for what stands at a download's local name, the
// same whether it stood there before the download or appeared during it
// (the publish's rename then refused it, `exists`), whatever it is: the
// looks before the download, taken again. A name of a tree (get -r, a
// wildcard's match) holding a link, FIFO, socket or device is refused as
// the plan refuses it; a name the user typed, as its inspection refuses it
// (a folder, a link to nothing, another user's link); nullopt for anything
// else there (a file, a tree's folder, a typed FIFO): skipped, `exists`.
std::optional<Error> refused_under_no_clobber(const std::string& dest, bool tree_name)
{
    if (tree_name) {
        return refuse_in_the_way(dest);
    }
    auto target = inspect_download_target(dest);
    if (!target) {
        return target.error();
    }
    return std::nullopt;
}

// A folder the user named, when it is reached only through links of the
// user's or root's (resolve_typed_path): else the error naming the link.
std::optional<Error> refuse_foreign_folder(const std::string& path)
{
    auto opened = open_typed_folder(path);
    if (!opened) {
        return opened.error();
    }
    ::close(opened.value());
    return std::nullopt;
}

// The local folder a remote folder's tree lands in: named like it, where a
// file of that name would go; the root (which has no name) lands in the
// target folder itself.
std::string tree_root(const std::string& path, const GetPlacement& placement)
{
    if (!path.empty()) {
        return download_path(remote_base_name(path), placement);
    }
    return placement.output.value_or(placement.folder.value_or("."));
}

// Where a get -r tree lands: the local folder `root` the server's folder
// `remote` becomes, reached as `top` below `base` (sync_local.hpp's walk;
// `top` is empty where the user named `root` itself).
struct TreeLanding {
    std::string remote;
    std::string root;
    std::string base;
    std::string top;

    // A name below the tree's folder, as a path below `base`.
    std::string below(const std::string& name) const { return top.empty() ? name : top + "/" + name; }
};

// The folder that could not be made that `name` is or lies in (by its
// name below the tree's folder; "" is the tree's folder itself), if any. A
// listing names each entry once, so a listed entry is never refused itself
// yet; a folder the server could not read may have been.
std::optional<std::string> refused_at_or_above(const std::vector<std::string>& refused, const std::string& name)
{
    for (const auto& folder : refused) {
        if (folder.empty() || name == folder || name.starts_with(folder + "/")) {
            return folder;
        }
    }
    return std::nullopt;
}

// One entry of a get -r tree's listing: a folder made (or refused), a file
// planned (or refused). `refused` gathers the folders not made.
void plan_tree_entry(GetPlan& plan, const TreeLanding& tree, const FileInfo& entry, std::vector<std::string>& refused)
{
    const std::string remote = join_remote(tree.remote, entry.name);
    const std::string local = local_join(tree.root, entry.name);
    // A folder that fails is no file: it is counted apart (FolderFailure).
    // `follows_its_folder`: failed only because a folder above it did.
    const auto fail = [&](const Error& error, bool follows_its_folder = false) {
        if (is_folder(entry)) {
            plan.failed_folders.push_back({remote, local, error, follows_its_folder});
        } else if (follows_its_folder) {
            plan.add_following_its_folder({remote, local}, error);
        } else {
            plan.add({remote, local}, error);
        }
    };
    // The server's names become local paths: each must be a plain name.
    if (auto bad = check_path(entry.name)) {
        fail(*bad);
        return;
    }
    // Whatever lies below a folder that could not be made (a link stands
    // there, say) would land wherever that name leads.
    if (const auto parent = refused_at_or_above(refused, entry.name)) {
        const std::string where = local_join(tree.root, *parent);
        fail(about_local_files(ErrorCode::local_io, std::string(is_folder(entry) ? "not made" : "not written") +
                                                        ": its folder \"" + where + "\" could not be made"),
             true);
        return;
    }
    if (!is_folder(entry)) {
        if (auto in_the_way = refuse_in_the_way(local)) {
            plan.add({remote, local}, *in_the_way);
        } else {
            plan.add({remote, local, tree.base});
        }
        return;
    }
    if (auto made = make_local_folder(tree.base, tree.below(entry.name), entry.mode); !made) {
        fail(made.error());
        refused.push_back(entry.name);
        return;
    }
    plan.folders.push_back({tree.base, tree.below(entry.name), entry.mtime});
}

// Whether `folder` (a match, or a name as typed) is a folder on the
// server: its listed type, else a stat (only for a listing that failed).
bool is_remote_folder(Connection& connection, const FileInfo& folder)
{
    if (folder.type) {
        return *folder.type == EntryType::folder;
    }
    if (!ensure_open(connection)) {
        return false;
    }
    auto stat = ask(connection, Request{connection.next_id(), StatRequest{folder.name}}, parse_stat_reply);
    return stat && stat->file.type == EntryType::folder;
}

// get -r of the folder `path`: its tree as local folders and files. False
// when `path` is no folder (then it is an ordinary file to get). With
// `keep_times` (-p) the tree's own folder is retimed last, as each below.
// `current`: the shell's folder, from which its notes name server paths.
// `typed_as`: the argument that named `path` by itself, as typed (or "").
bool plan_tree(Connection& connection, GetPlan& plan, const FileInfo& folder, const std::string& typed_as,
               const GetPlacement& placement, bool keep_times, const std::string& current)
{
    const std::string root = tree_root(folder.name, placement);
    auto listed = list_folder(connection, folder.name, true);
    if (!listed) {
        if (listed.error().code == ErrorCode::not_a_folder) {
            return false;
        }
        // A folder the server cannot list (it may not read it): a failed
        // folder, as one that could not be made, not a file. Anything else
        // (the name as typed named nothing to list): reported as a file,
        // like any name a get could not start on.
        if (is_remote_folder(connection, folder)) {
            plan.failed_folders.push_back({folder.name, root, listed.error()});
        } else {
            // get -r takes a file too: a missing name is "nothing named",
            // not the list's "no folder named".
            plan.add({folder.name, root}, missing_named(listed.error(), "nothing named ", "no folder named "));
            plan.typed_as.back() = typed_as;
        }
        return true;
    }
    // The user names the tree's own folder only with -o, or as the target
    // folder when the tree is the server's root: a link there is followed,
    // as for any path the user types. Otherwise the tree's folder is the
    // server's name `top` inside the folder the user named (-C, -o's
    // existing folder, or the working folder). Every name below `base` is
    // the server's: each folder is made, and later retimed, through
    // descriptors walked from `base` that follow no link (sync_local.hpp),
    // and the files are written the same way (GetItem::tree_root), so a
    // folder swapped for a link at any moment leads nothing outside.
    const bool named_by_user = folder.name.empty() || (placement.output && root == *placement.output);
    // Paths below it are shown and made from `root` as a folder: "out/" and
    // "out/." lead to "out/x", never "out//x" or "out/./x".
    const std::string landing = folder_of_typed(root);
    TreeLanding tree{folder.name, landing, landing, {}};
    if (!named_by_user) {
        tree.top = remote_base_name(folder.name);
        tree.base = root.substr(0, root.size() - tree.top.size());
        if (tree.base.empty()) {
            tree.base = ".";
        }
    }
    std::vector<std::string> refused; // folders not made, by their names below `root` ("" is `root`)
    // Known when a wildcard's listing matched it, else asked for: the mode
    // its copy is made with and, with -p, the time it gets. Where the server
    // cannot say, the folder keeps what its making gave it.
    const auto described = folder.type == EntryType::folder ? std::optional<FileInfo>(folder)
                                                            : remote_folder_info(connection, folder.name);
    const auto mode = described ? described->mode : std::nullopt;
    // The folder the user named is reached through no one else's link:
    // made in the folder resolve_typed_path reaches (make_typed_folder),
    // or `top` made below `base`, which is walked to the same way.
    if (auto foreign = named_by_user ? std::nullopt : refuse_foreign_folder(tree.base)) {
        plan.failed_folders.push_back({folder.name, root, *foreign});
        refused.push_back("");
    } else if (auto made = named_by_user ? make_typed_folder(root, mode) : make_local_folder(tree.base, tree.top, mode);
               !made) {
        // Its files fail each below, so the counts say what was not written.
        plan.failed_folders.push_back({folder.name, root, made.error()});
        refused.push_back("");
    } else if (keep_times && described) {
        plan.folders.push_back({tree.base, tree.top, described->mtime});
    }
    for (const auto& entry : listed->files) {
        plan_tree_entry(plan, tree, entry, refused);
    }
    // A folder the server could not read is never taken for an empty one:
    // a failed folder, whatever of it was made here. One that could not be
    // made, or lies below one, has failed already: one entry per folder.
    for (const auto& unread : listed->unreadable_folders) {
        if (refused_at_or_above(refused, unread.path)) {
            continue;
        }
        plan.failed_folders.push_back({unread.path.empty() ? folder.name : join_remote(folder.name, unread.path),
                                       unread.path.empty() ? root : local_join(landing, unread.path),
                                       unreadable_error(folder.name, unread, "nothing in it is received")});
    }
    if (listed->skipped_invalid_names > 0) {
        const std::string below = folder.name.empty() && current.empty()
                                      ? std::string("the server's root")
                                      : quoted(shown_path(folder.name, current)); // as the shell names it
        plan.notes.push_back(entries(listed->skipped_invalid_names) + " below " + below +
                             " not listed by the server: their names break Ferry's rule");
    }
    if (listed->skipped_too_deep > 0) {
        plan.notes.push_back(too_deep_note(listed->skipped_too_deep));
    }
    return true;
}

// The item of a file a wildcard matched, landing at `local`. Where the
// local name is the server's (it is not -o's file), it is a name of a tree
// as in get -r: written in its folder through a descriptor, never through
// a link that stands at it (anyone who can write the folder could have put
// one there, leading anywhere), which is refused like get -r refuses it.
GetItem listed_item(const std::string& remote, const std::string& local, const GetPlacement& placement)
{
    if (placement.output && local == *placement.output) {
        return GetItem{remote, local};
    }
    const auto slash = local.rfind('/');
    return GetItem{remote, local, slash == std::string::npos ? std::string(".") : local.substr(0, std::max<std::size_t>(slash, 1))};
}

// The same server file bound for the same local name more than once (get
// a1.txt 'a*.txt', get -r t t/): one download, with a note, as put sends a
// local file named twice once; never a name clash with itself, nor
// counted twice. A tree named twice gives one note, not one per file.
void drop_repeated_gets(GetPlan& plan, const std::string& notes_below)
{
    // Named as the transfer lines name them: below the shell's folder.
    const auto shown = [&](const std::string& name) { return printable(shown_path(name, notes_below)); };
    std::set<std::pair<std::string, std::string>> planned;  // (server name, local name)
    std::set<std::pair<std::string, std::string>> repeated; // those named more than once
    std::vector<bool> got(plan.items.size(), true);
    for (std::size_t i = 0; i < plan.items.size(); ++i) {
        const GetItem& item = plan.items[i];
        if (plan.errors[i] || planned.emplace(item.name, item.local).second) {
            continue;
        }
        repeated.emplace(item.name, item.local);
        got[i] = false;
    }
    keep_marked(plan.items, got);
    keep_marked(plan.errors, got);
    keep_marked(plan.typed_names, got);
    keep_marked(plan.follow_their_folders, got);
    keep_marked(plan.typed_as, got);
    // Said of the file, not of its fate: it may still fail, or yield its
    // local name to another file (a name clash), as any file of a get may.
    // A tree named twice is one note, not one per file.
    constexpr std::size_t kNamedOneByOne = 3;
    if (repeated.size() <= kNamedOneByOne) {
        for (const auto& [name, local] : repeated) {
            plan.notes.push_back("\"" + shown(name) + "\" is named more than once for \"" + printable(local) +
                                 "\": it counts once");
        }
    } else if (!repeated.empty()) {
        plan.notes.push_back(std::to_string(repeated.size()) + " files are named more than once for one local " +
                             "name (\"" + shown(repeated.begin()->first) + "\" among them): each counts once");
    }
}

// `notes_below`: the folder below which the plan's notes name server
// paths (the shell's, for its lines; the root for --json, whose files are
// named from the root too).
GetPlan plan_gets(Connection& connection, const std::vector<std::string>& names, const GetPlacement& placement,
                  const TransferFlags& flags, const std::string& current, const std::string& notes_below)
{
    GetPlan plan;
    for (const auto& typed : names) {
        // A name in the root, as version 1 knew it: nothing to look up
        // ("." and ".." are no names: settled below, as every path).
        if (!flags.recursive && current.empty() && typed.find('/') == std::string::npos && !has_wildcard(typed) &&
            !typed.empty() && typed != "." && typed != "..") {
            const std::string name = unescape_wildcards(typed);
            plan.add({name, download_path(name, placement)});
            continue;
        }
        const std::string shown = download_path(remote_base_name(typed), placement);
        if (auto settled = resolve_remote_path(current, typed); !settled) {
            plan.add_typed({typed, shown}, settled.error()); // before any connect: it needs no server
            continue;
        }
        if (auto open = ensure_open(connection); !open) {
            plan.add_typed({typed, shown}, open.error());
            continue;
        }
        auto path = resolve_remote_path_checked(connection, current, typed);
        if (!path) {
            plan.add_typed({typed, shown}, path.error());
            continue;
        }
        if (path->empty() && !flags.recursive) {
            plan.add_typed({typed, shown}, Error{ErrorCode::not_regular_file,
                                                 quoted(typed) + " is the server's root, a folder (a folder comes "
                                                                 "with get -r)"});
            continue;
        }
        auto matches = remote_matches(connection, path.value(), typed);
        if (!matches) {
            plan.add_typed({typed, shown}, named_as_typed(matches.error(), typed, current));
            continue;
        }
        // -o names one file, as for names typed one by one (command_line's
        // check): a wildcard that matches several is refused before any is
        // downloaded, rather than the first written there and the rest
        // refused as name clashes.
        if (placement.output && matches->size() > 1) {
            const auto taken = std::count_if(matches->begin(), matches->end(), [&](const FileInfo& match) {
                return flags.recursive || match.type != EntryType::folder;
            });
            if (taken > 1) {
                plan.add_typed({typed, shown}, Error{ErrorCode::name_clash,
                                                     "\"" + printable(typed) + "\" matches " + std::to_string(taken) +
                                                         " entries, and -o names one file: use -C "
                                                         "DIR for several"});
                continue;
            }
        }
        // A wildcard in the last component: each match's local name is the
        // server's, not one the user typed.
        const bool listed_names = has_wildcard(remote_base_name(typed));
        // The argument as typed where it names its one match by itself (GetPlan::typed_as).
        const std::string by_itself = has_wildcard(typed) ? "" : typed;
        std::size_t folders_passed_over = 0;
        for (const auto& match : matches.value()) {
            if (flags.recursive && match.type != EntryType::file &&
                plan_tree(connection, plan, match, by_itself, placement, flags.preserve, current)) {
                continue;
            }
            const std::string local = download_path(remote_base_name(match.name), placement);
            if (match.type == EntryType::folder && has_wildcard(typed)) {
                // A wildcard picks files; the folders it also matches are
                // passed over, as sftp's and lftp's mget do.
                plan.notes.push_back("skipping \"" + printable(shown_path(match.name, notes_below)) +
                                     "\": a folder (get -r downloads folders)");
                ++folders_passed_over;
                continue;
            }
            if (match.type == EntryType::folder) {
                plan.add({match.name, local},
                         Error{ErrorCode::not_regular_file, "\"" + match.name + "\" is a folder: get -r downloads folders"});
                plan.typed_as.back() = by_itself;
                continue;
            }
            GetItem item = listed_names ? listed_item(match.name, local, placement) : GetItem{match.name, local};
            // As get -r: a link, FIFO or device at a server's name is refused
            // now; the folder the user named is reached through no one else's link.
            auto in_the_way = item.tree_root.empty() ? std::nullopt : refuse_in_the_way(local);
            if (!in_the_way && !item.tree_root.empty()) {
                in_the_way = refuse_foreign_folder(item.tree_root);
            }
            plan.add(std::move(item), std::move(in_the_way));
            plan.typed_as.back() = by_itself;
        }
        if (folders_passed_over > 0 && folders_passed_over == matches->size()) {
            plan.add_typed({typed, shown},
                           Error{ErrorCode::not_regular_file,
                                 "\"" + printable(typed) + "\" matches only folders: get -r downloads folders"});
        }
    }
    drop_repeated_gets(plan, notes_below);
    return plan;
}

// What a put command will do: the files, where each is shown as coming
// from ("-" for standard input), those that already failed, and the empty
// folders of put -r that could not be made.
struct PutPlan {
    std::vector<PutItem> items;
    std::vector<std::string> shown;
    std::vector<std::optional<Error>> errors;
    std::vector<FolderFailure> failed_folders;
    // What was left out on purpose (a link, a FIFO, a refused name...), for
    // the Report's notes.
    std::vector<std::string> notes;
    // put -r -p: each folder sent (its path on the server) with its local
    // modification time, each before what it holds, for set_folder_times.
    std::vector<std::pair<std::string, std::int64_t>> folder_times;
    // Whether each item's name is its --as as typed (which could not be
    // resolved), not a path from the root.
    std::vector<bool> typed_names;
    // put -r's folders that hold no file (its files' puts make the others):
    // made once every name of the put is settled (make_empty_folders).
    struct EmptyFolder {
        std::string path;   // on the server
        std::string shown;  // the local folder
        std::string given;  // what put was given that holds it
        FolderModes modes;  // of it and the folders above it it makes
        std::size_t before; // the number of items planned before it
        bool refused = false; // refuse_file_and_folder_at_one_name: not made
    };
    std::vector<EmptyFolder> empty_folders;
    // The folder below which its refusals name server paths: the shell's,
    // as its lines name them; the root for --json, as its names are.
    std::string shown_below;

    // A server path as the plan's refusals name it.
    std::string shown_remote(const std::string& path) const { return printable(shown_path(path, shown_below)); }

    void add(PutItem item, std::string from, std::optional<Error> error = std::nullopt, bool typed_name = false)
    {
        items.push_back(std::move(item));
        shown.push_back(std::move(from));
        errors.push_back(std::move(error));
        typed_names.push_back(typed_name);
    }
};

// A local file as (device, inode): one file however it is named.
using FileIdentity = std::pair<std::uint64_t, std::uint64_t>;

FileIdentity identity_of(const struct ::stat& st)
{
    return {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

// What `path` leads to (following links, as put reads it); nullopt where
// it cannot be stat'ed.
std::optional<FileIdentity> identity_of(const std::string& path)
{
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? std::optional(identity_of(st)) : std::nullopt;
}

// The local file an item reads: put x ./x, a link to x, or a glob that
// matches a file also named are one file, not two. Standard input is its
// spool's; nullopt where the file cannot be read (its own transfer then
// says why).
std::optional<FileIdentity> local_identity(const PutItem& item)
{
    if (item.listed) {
        return FileIdentity{item.listed->device, item.listed->inode};
    }
    if (item.spool) {
        struct stat st {};
        return ::fstat(item.spool->fd(), &st) == 0 ? std::optional(identity_of(st)) : std::nullopt;
    }
    return identity_of(item.local);
}

// A local path with its folder resolved and its name as it is: "nope" and
// "./nope" alike, where no file stands to compare by identity.
std::string resolved_spelling(const std::string& path)
{
    const auto slash = path.rfind('/');
    const std::string folder = slash == std::string::npos ? "." : path.substr(0, slash + 1);
    char real[PATH_MAX];
    return ::realpath(folder.c_str(), real) == nullptr ? path : std::string(real) + "/" + path.substr(slash + 1);
}

// Two items of a put bound for one server name, by what they read.
enum class Namings {
    one_file,  // the same file (or the same unreadable path) named twice
    two_files, // different files: the second would replace the first
    unknown,   // one cannot be read: it fails on its own, replacing nothing
};
Namings compare_namings(const PutItem& a, const std::string& a_shown, const PutItem& b, const std::string& b_shown)
{
    const auto a_is = local_identity(a);
    const auto b_is = local_identity(b);
    if (a_is && b_is) {
        return a_is == b_is ? Namings::one_file : Namings::two_files;
    }
    if (!a_is && !b_is && resolved_spelling(a_shown) == resolved_spelling(b_shown)) {
        return Namings::one_file;
    }
    return Namings::unknown;
}

// The note for `again` dropped as the file `holder` already puts: one per
// tree named twice ("t", "./t", "t/"), not one per file.
std::string named_twice_note(const PutItem& holder, const std::string& holder_shown, const PutItem& again,
                             const std::string& again_shown)
{
    if (holder.listed && again.listed &&
        (holder.listed->root == again.listed->root ||
         (identity_of(holder.listed->root) && identity_of(holder.listed->root) == identity_of(again.listed->root)))) {
        return "\"" + printable(holder.listed->root) + "\" is named twice: its files are put once";
    }
    return (again_shown == holder_shown
                ? "\"" + printable(holder_shown) + "\" is named twice"
                : "\"" + printable(again_shown) + "\" is the same file as \"" + printable(holder_shown) + "\"") +
           ": put once, as \"" + printable(holder.name) + "\"";
}

// Drops from every list the plan keeps by item those not marked kept, in
// one pass: a tree named twice drops as many items as it has files.
void keep_marked(PutPlan& plan, const std::vector<bool>& kept)
{
    keep_marked(plan.items, kept);
    keep_marked(plan.shown, kept);
    keep_marked(plan.errors, kept);
    keep_marked(plan.typed_names, kept);
}

// `path` as one word a shell reads back as this path, never as an option.
std::string local_word(const std::string& path)
{
    return path == "-" ? path : single_quoted(path.starts_with('-') ? "./" + path : path);
}

// The name_clash of a put's item shown as `shown`, refused because of
// `where` ("would be put as ..."): `kept`, what put was given that keeps
// the name, is sent; `own`, what holds the refused one, is to go alone.
Error put_name_clash(const std::string& shown, const std::string& where, const std::string& kept,
                     const std::string& own)
{
    return Error{ErrorCode::name_clash, "\"" + printable(shown) + "\" " + where + ": only \"" + printable(kept) +
                                            "\" is sent; put " + local_word(own) + " on its own with --as or -C"};
}

// Two items of one put that would go to one server name. The same local
// file named twice (put x ./x, put '*.log' app.log, a link to it) is one
// file: it is put once, with a note, as rsync and cp -r take a source
// named twice. Two different files (put pa/x pb/x -C d, or two trees with
// a file at the same path) would have the second replace the first, and
// both be reported sent: as get refuses two files for one local name, each
// one after the first is refused (name_clash) before any byte moves; the
// first is sent.
void refuse_shared_names(PutPlan& plan)
{
    std::map<std::string, std::size_t> first; // the server name -> the item that keeps it
    std::map<std::string, std::vector<std::size_t>> refused; // the server name -> the items refused it
    std::vector<bool> put(plan.items.size(), true);
    for (std::size_t i = 0; i < plan.items.size(); ++i) {
        if (plan.errors[i]) {
            continue;
        }
        const auto [kept, fresh] = first.emplace(plan.items[i].name, i);
        if (fresh) {
            continue;
        }
        PutItem& holder = plan.items[kept->second];
        const std::string& other = plan.shown[kept->second];
        switch (compare_namings(holder, other, plan.items[i], plan.shown[i])) {
        case Namings::one_file:
            if (auto note = named_twice_note(holder, other, plan.items[i], plan.shown[i]);
                std::find(plan.notes.begin(), plan.notes.end(), note) == plan.notes.end()) {
                plan.notes.push_back(std::move(note));
            }
            // Either naming may have asked for the missing folders.
            holder.parents = holder.parents || plan.items[i].parents;
            put[i] = false;
            break;
        case Namings::two_files: {
            // One file refused already for this name, named again: one
            // refusal, not two (put pa/x pb/x ./pb/x).
            auto& earlier = refused[plan.items[i].name];
            if (std::any_of(earlier.begin(), earlier.end(), [&](std::size_t r) {
                    return compare_namings(plan.items[r], plan.shown[r], plan.items[i], plan.shown[i]) ==
                           Namings::one_file;
                })) {
                put[i] = false;
                break;
            }
            earlier.push_back(i);
            plan.errors[i] = put_name_clash(plan.shown[i],
                                            "and \"" + printable(other) + "\" would both be put as \"" +
                                                plan.shown_remote(plan.items[i].name) + "\"",
                                            other, plan.shown[i]);
            break;
        }
        case Namings::unknown:
            break;
        }
    }
    keep_marked(plan, put);
}

// A file of one put named where another of its files needs a folder
// (put -r t1/x x: "x" the file, "x/f" below the folder x): whichever comes
// second would fail on the server, after the first was sent, not_a_folder
// or not_regular_file. As refuse_shared_names, the first named keeps the
// name and each later one is refused (name_clash) before any byte moves.
void refuse_file_and_folder_at_one_name(PutPlan& plan)
{
    // The server name of each file -> the file as shown, and what put was
    // given that holds it (for put -r the folder, as typed); of each folder
    // a file or an empty folder of put -r needs -> what put was given.
    struct PutFile {
        std::string shown;
        std::string given;
    };
    std::map<std::string, PutFile> files;
    std::map<std::string, std::string> folders;
    const auto given = [&](std::size_t i) {
        return plan.items[i].listed ? folder_of_typed(plan.items[i].listed->root) : plan.shown[i];
    };
    // The first file at `path` (when `itself`) or above it.
    const auto file_at_or_above = [&](const std::string& path, bool itself) {
        for (std::string at = itself ? path : remote_parent(path); !at.empty(); at = remote_parent(at)) {
            if (const auto file = files.find(at); file != files.end()) {
                return file;
            }
        }
        return files.end();
    };
    const auto need_folders = [&](const std::string& path, const std::string& who) {
        for (std::string at = path; !at.empty(); at = remote_parent(at)) {
            folders.emplace(at, who);
        }
    };
    // The empty folders planned before item `before`: each refused where a
    // file named earlier stands at or above it, else it needs its folders.
    std::size_t next_folder = 0;
    std::set<std::string> refused_folders;
    const auto settle_folders_before = [&](std::size_t before) {
        for (; next_folder < plan.empty_folders.size() && plan.empty_folders[next_folder].before <= before;
             ++next_folder) {
            auto& folder = plan.empty_folders[next_folder];
            if (const auto file = file_at_or_above(folder.path, true); file != files.end()) {
                // One line for a tree's top; those below it follow it (FolderFailure).
                bool follows = false;
                for (std::string at = remote_parent(folder.path); !at.empty() && !follows; at = remote_parent(at)) {
                    follows = refused_folders.contains(at);
                }
                plan.failed_folders.push_back(
                    {folder.path, folder.shown,
                     put_name_clash(folder.shown,
                                    "would be made as \"" + plan.shown_remote(folder.path) + "\", where \"" +
                                        printable(file->second.shown) + "\" is put as the file \"" +
                                        plan.shown_remote(file->first) + "\"",
                                    file->second.given, folder.given),
                     follows});
                refused_folders.insert(folder.path);
                folder.refused = true;
                continue;
            }
            need_folders(folder.path, folder.given);
        }
    };
    for (std::size_t i = 0; i < plan.items.size(); ++i) {
        settle_folders_before(i);
        if (plan.errors[i]) {
            continue;
        }
        const std::string& name = plan.items[i].name;
        if (const auto needed = folders.find(name); needed != folders.end()) {
            plan.errors[i] = put_name_clash(plan.shown[i],
                                            "would be put as \"" + plan.shown_remote(name) + "\", where \"" +
                                                printable(needed->second) + "\" puts a folder",
                                            needed->second, given(i));
            continue;
        }
        if (const auto file = file_at_or_above(name, false); file != files.end()) {
            plan.errors[i] = put_name_clash(plan.shown[i],
                                            "would be put as \"" + plan.shown_remote(name) + "\", below \"" +
                                                plan.shown_remote(file->first) + "\", where \"" +
                                                printable(file->second.shown) + "\" is put as a file",
                                            file->second.given, given(i));
            continue;
        }
        files.emplace(name, PutFile{plan.shown[i], given(i)});
        need_folders(remote_parent(name), given(i));
    }
    settle_folders_before(plan.items.size());
}

// put -r's folders that hold no file, made now that every name of the put
// is settled; a refused one is not.
void make_empty_folders(Connection& connection, PutPlan& plan)
{
    for (const auto& folder : plan.empty_folders) {
        if (folder.refused) {
            continue;
        }
        Status made = ensure_open(connection);
        if (made) {
            auto reply = make_remote_folder(connection, folder.path, true, folder.modes);
            made = reply ? success() : Status(reply.error());
        }
        if (!made) {
            plan.failed_folders.push_back({folder.path, folder.shown, made.error()});
        }
    }
}

// The name a local file or folder goes by on the server: its last
// component, or for "." and ".." the real folder's.
std::string local_name(const std::string& local)
{
    // "ld/." is "ld/" and "ld", as typed: a link ld's own name, never its
    // target's (only "." and ".." name no folder by name).
    std::string name = base_name(folder_of_typed(local));
    if (name == "." || name == ".." || name == "/" || name.empty()) {
        char real[PATH_MAX];
        if (::realpath(local.c_str(), real) != nullptr) {
            name = base_name(real);
        }
    }
    return name;
}

std::optional<std::int64_t> local_mtime(const std::string& path)
{
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return std::nullopt; // the put says why it cannot read the file
    }
    return st.st_mtim.tv_sec;
}

// put -r of the local folder `local` into the server's `remote`.
void plan_local_tree(Connection& connection, PutPlan& plan, const std::string& local,
                     const std::string& remote, const TransferFlags& flags)
{
    // The server counts its bounds (PROTOCOL.md 5.1) from its root: below
    // `remote` the tree has what `remote` leaves, as sync's scan has. What
    // lies past them is not sent, with a note, rather than refused file by
    // file by the server.
    auto tree = walk_local_tree(local, bounds_below(remote));
    if (!tree) {
        plan.add({local, remote, true, std::nullopt}, local, tree.error());
        return;
    }
    // "o/" and "o/." alike: "o/a", never "o/./a".
    const std::string shown_folder = folder_of_typed(local);
    const auto shown = [&](const std::string& path) { return local_join(shown_folder, path); };
    for (const auto& skipped : tree->skipped) {
        // The shape of every note (ferry.1 --json), as sync's scan says it.
        plan.notes.push_back(printable(shown(skipped.path)) + ": " + skipped.why + ", not sent");
    }
    // What could not be read is no skip but a failure, as an unreadable
    // file's is: in --json and in the exit status (3); a folder counted as
    // a folder (failed_folders), not as a file, and not made on the server.
    std::set<std::string> unread_folders;
    for (const auto& unread : tree->unreadable) {
        if (unread.folder) {
            plan.failed_folders.push_back(
                {join_remote(remote, unread.path), shown(unread.path),
                 about_local_files(ErrorCode::local_io, unread.why + "; nothing in it was sent")});
            unread_folders.insert(unread.path);
            continue;
        }
        plan.add({shown(unread.path), join_remote(remote, unread.path), true, std::nullopt}, shown(unread.path),
                 about_local_files(ErrorCode::local_io, unread.why + "; not sent"));
    }
    // Each folder made gets its local folder's permission bits (as cp -r,
    // scp -r and rsync make a new folder), never 0777 less the umask: a
    // 0700 folder of 0644 files stays closed to others.
    struct stat top {};
    TreeFolderModes folder_modes(!remote.empty() && ::stat(local.c_str(), &top) == 0
                                     ? std::optional<std::uint32_t>(permission_bits(top))
                                     : std::nullopt);
    for (const auto& entry : tree->entries) {
        if (entry.folder) {
            folder_modes.add(entry.path, entry.mode);
        }
    }
    if (ensure_open(connection) && !takes_folder_modes(connection) &&
        folder_modes.closed_among(folder_modes.folders()) > 0) {
        // An older ferryd makes folders 0777 less its umask and leaves those
        // already there as they are: the note counts only the folders this
        // put makes, as the server's listing shows (an error, not_found
        // first, leaves them all to be made).
        std::vector<std::string> made = folder_modes.folders();
        if (auto there = list_folder(connection, remote, true)) {
            // A folder there is not made; nor is one at or below a file
            // there (its put fails).
            std::set<std::string> existing{""};
            std::set<std::string> files;
            for (const auto& entry : there->files) {
                (is_folder(entry) ? existing : files).insert(entry.name);
            }
            std::erase_if(made, [&](const std::string& folder) {
                for (std::string at = folder; !at.empty(); at = remote_parent(at)) {
                    if (files.contains(at)) {
                        return true;
                    }
                }
                return existing.contains(folder);
            });
        } else if (there.error().code != ErrorCode::not_found) {
            made.clear(); // a file there, or no telling: nothing is known to be made
        }
        if (auto note = folder_modes_note(connection, folder_modes.closed_among(made))) {
            plan.notes.push_back(*note);
        }
    }
    // Folders with a file somewhere below are made by that file's put
    // (parents); the others are made here, so that empty folders arrive too.
    std::set<std::string> holding;
    bool any_file = false;
    for (const auto& entry : tree->entries) {
        if (!entry.folder) {
            any_file = true;
            for (auto parent = remote_parent(entry.path); !parent.empty(); parent = remote_parent(parent)) {
                holding.insert(parent);
            }
        }
    }
    std::vector<std::string> empty_folders;
    if (!any_file) {
        empty_folders.push_back("");
    }
    for (const auto& entry : tree->entries) {
        if (entry.folder && holding.count(entry.path) == 0 && unread_folders.count(entry.path) == 0) {
            // Its own folders below it are made with it (parents).
            empty_folders.push_back(entry.path);
        }
    }
    if (flags.preserve) {
        if (auto own = local_mtime(local)) {
            plan.folder_times.emplace_back(remote, *own);
        }
        for (const auto& entry : tree->entries) {
            if (entry.folder && unread_folders.count(entry.path) == 0) {
                plan.folder_times.emplace_back(join_remote(remote, entry.path), entry.mtime);
            }
        }
    }
    for (const auto& folder : empty_folders) {
        plan.empty_folders.push_back({join_remote(remote, folder), folder.empty() ? local : shown(folder), shown_folder,
                                      folder_modes.of(folder), plan.items.size()});
    }
    for (const auto& entry : tree->entries) {
        if (!entry.folder) {
            plan.add({shown(entry.path),
                      join_remote(remote, entry.path),
                      true,
                      flags.preserve ? std::optional<std::int64_t>(entry.mtime) : std::nullopt,
                      ListedFile{local, entry.path, entry.device, entry.inode},
                      {},
                      folder_modes.of(remote_parent(entry.path))},
                     shown(entry.path));
        }
    }
}

// The way on for a symbolic link that put -r refuses (`path`; `to_folder`:
// it leads to a folder): "link/" sends that folder, put without -r a
// regular file; a link to anything else, to nothing or round in a loop has
// none, and says which.
std::string where_a_link_leads(const std::string& path, bool to_folder)
{
    if (to_folder) {
        return "write \"" + path + "/\" to send the folder it leads to";
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return errno == ENOENT ? std::string("it leads to nothing")
                               : std::string("it cannot be followed: ") + std::strerror(errno);
    }
    return S_ISREG(st.st_mode) ? std::string("put without -r sends the file it leads to")
                               : std::string("it leads to no regular file, which put does not send");
}

PutPlan plan_puts(Connection& connection, const std::vector<std::string>& locals, const PutPlacement& placement,
                  const TransferFlags& flags, SpooledInput& input, const std::string& shown_below)
{
    PutPlan plan;
    plan.shown_below = shown_below;
    // A '..' out of a typed folder needs the server to say it is one
    // (resolve_remote_path_checked); a path without one needs no server.
    const auto resolve_target = [&](const std::string& typed) -> Result<std::string> {
        auto climbed = climbed_folders(placement.current, typed);
        if (!climbed || climbed->empty()) {
            return resolve_remote_path(placement.current, typed);
        }
        if (auto open = ensure_open(connection); !open) {
            return open.error();
        }
        return resolve_remote_path_checked(connection, placement.current, typed, false); // names as written
    };
    std::optional<std::string> folder;
    std::optional<Error> bad_folder;
    if (placement.folder) {
        // A put names one place: no wildcard is expanded, and its escapes
        // are undone as everywhere a path is typed ('d\\?r' is "d?r").
        auto resolved = resolve_target(*placement.folder);
        if (resolved) {
            folder = unescape_wildcards(resolved.value());
        } else {
            bad_folder = resolved.error();
        }
        if (resolved && last_typed_component(*placement.folder) == "." && ensure_open(connection)) {
            // "-C new/." names the folder that is there (POSIX 4.13): put
            // makes a missing -C folder, never this one.
            if (auto there = stat_typed_folder(connection, *folder); !there) {
                bad_folder = there.error();
            }
        }
    }
    const bool old_server = connection.is_open() && connection.protocol_version() < 2;
    const auto reachable = [](const std::string& path) {
        struct stat st {};
        return ::stat(path.c_str(), &st) == 0;
    };
    for (const auto& local : locals) {
        std::string name;
        std::optional<Error> error = bad_folder;
        // "file/." (or "file/") names a folder (POSIX 4.13): the kernel's
        // ENOTDIR, before its last component "." is taken for a name.
        if (struct stat st{}; !error && local != "-" && typed_as_folder(local) && ::stat(local.c_str(), &st) != 0) {
            error = local_error("cannot open \"" + local + "\"", errno);
        }
        bool typed_name = false;
        if (placement.as) {
            auto resolved = resolve_target(*placement.as);
            name = resolved ? unescape_wildcards(resolved.value()) : *placement.as;
            typed_name = !resolved;
            if (!resolved) {
                error = resolved.error();
            } else if (typed_as_folder(*placement.as)) {
                // "x/" is no file's name (POSIX 4.13): never the file x.
                error = Error{ErrorCode::invalid_name, "\"" + printable(*placement.as) +
                                                           "\" names a folder, and --as names the file LOCAL is "
                                                           "put as (-C DIR puts it in a folder)"};
            }
        } else {
            name = join_remote(folder.value_or(placement.current), local_name(local));
        }
        const bool tree = local != "-" && is_directory(local);
        const bool parents = folder.has_value() || tree;
        if (!error && old_server && (parents || name.find('/') != std::string::npos)) {
            error = require_folders(connection);
        } else if (!error && old_server && flags.preserve && (local == "-" || reachable(local))) {
            // A missing file is planned as any other, so that its own error
            // (local_io) is what the user reads first, not the server's age.
            error = require_version_2(connection, "set_mtime operation (put -p)");
        }
        if (!error && tree && !flags.recursive) {
            error = about_local_files(ErrorCode::local_io, "\"" + local + "\" is a folder: put -r sends folders");
        }
        // put -r follows no link, the names typed included (as cp -r copies
        // a link as a link, which a server of regular files and folders
        // cannot hold); "link/" with its slash names the folder it leads
        // to, and put without -r sends the file a link leads to.
        if (struct stat st{};
            !error && flags.recursive && local != "-" && ::lstat(local.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
            error =
                about_local_files(ErrorCode::local_io, "\"" + local + "\" is a symbolic link: put -r follows none; " +
                                                           where_a_link_leads(local, tree));
        }
        if (error) {
            plan.add({local, name, parents, std::nullopt}, local, error, typed_name);
            continue;
        }
        if (local == "-") {
            if (!input.file()) {
                if (auto spooled = input.read_all(); !spooled) {
                    plan.add({local, name, parents, std::nullopt}, "-", spooled.error());
                    continue;
                }
            }
            plan.add({"-", name, parents, std::nullopt, std::nullopt, input.file()}, "-");
        } else if (tree) {
            plan_local_tree(connection, plan, local, name, flags);
        } else {
            plan.add({local, name, parents, flags.preserve ? local_mtime(local) : std::nullopt}, local);
        }
    }
    refuse_shared_names(plan);
    refuse_file_and_folder_at_one_name(plan);
    make_empty_folders(connection, plan);
    return plan;
}
} // namespace

std::vector<std::size_t> all_of(std::size_t count)
{
    std::vector<std::size_t> todo(count);
    for (std::size_t i = 0; i < count; ++i) {
        todo[i] = i;
    }
    return todo;
}

TransferSummary get_items(Connection& connection, const Output& output, const std::vector<GetItem>& items,
                          const TransferFlags& flags)
{
    Report report(output, items.size(), false);
    with_retries(output, report, all_of(items.size()), flags,
                 [&](const TransferFlags& now, const std::vector<std::size_t>& todo) {
                     get_pass(connection, output, report, items, now, todo);
                 });
    report.show_held();
    return report.take();
}

TransferSummary put_items(Connection& connection, const Output& output, const std::vector<PutItem>& items,
                          const TransferFlags& flags)
{
    Report report(output, items.size(), true);
    for (std::size_t i = 0; i < items.size(); ++i) {
        report.file(i).name = items[i].name;
        report.file(i).local = items[i].local;
    }
    with_retries(output, report, all_of(items.size()), flags,
                 [&](const TransferFlags& now, const std::vector<std::size_t>& todo) {
                     put_pass(connection, output, report, items, now, todo);
                 });
    return report.take();
}

int run_gets(Connection& connection, const Output& output, const std::vector<std::string>& names,
             const GetPlacement& placement, const TransferFlags& flags, const std::string& current)
{
    GetPlan plan = plan_gets(connection, names, placement, flags, current, output.json() ? std::string() : current);
    Report report(output, plan.items.size(), false);
    report.shown_in(current);
    for (auto& note : plan.notes) {
        report.note(std::move(note));
    }
    for (auto& folder : plan.failed_folders) {
        report.folder_failed(std::move(folder));
    }
    std::vector<std::size_t> todo;
    for (std::size_t i = 0; i < plan.items.size(); ++i) {
        report.file(i).name = plan.items[i].name;
        report.file(i).local = plan.items[i].local;
        report.typed_as(i, std::move(plan.typed_as[i]));
        if (plan.errors[i]) {
            report.failed(i, *plan.errors[i], plan.typed_names[i], plan.follow_their_folders[i]);
        } else {
            todo.push_back(i);
        }
    }
    with_retries(output, report, std::move(todo), flags,
                 [&](const TransferFlags& now, const std::vector<std::size_t>& indices) {
                     get_pass(connection, output, report, plan.items, now, indices);
                 });
    report.show_held();
    if (flags.preserve) {
        // Last: writing the files changed the folders' times. Walked to
        // again, following no link: one swapped in since is not retimed.
        for (auto folder = plan.folders.rbegin(); folder != plan.folders.rend(); ++folder) {
            if (auto set = set_local_mtime(folder->base, folder->path, folder->mtime); !set) {
                output.warning(set.error().message);
            }
        }
    }
    return report.finish();
}

// put -r: a tree's folder is made by the put of a file in it (parents), so
// a folder whose files all failed here, before their request (one changed
// since it was listed, say), would be missing on the server though it was
// listed: it is made now, with its parents. One that cannot be is a failed
// folder of the summary, beside its file's own error.
void make_folders_of_unsent(Connection& connection, const std::vector<PutItem>& items, Report& report)
{
    std::map<std::string, std::string> folders; // on the server -> the local folder
    std::map<std::string, std::size_t> made_for; // on the server -> an item in it (its folder_modes)
    for (std::size_t i = 0; i < items.size(); ++i) {
        const auto& error = report.file(i).error;
        if (items[i].listed && error && error->code == ErrorCode::local_io) {
            const std::string& local = items[i].local;
            folders.emplace(remote_parent(items[i].name), local.substr(0, local.rfind('/')));
            made_for.emplace(remote_parent(items[i].name), i);
        }
    }
    for (const auto& [folder, local] : folders) {
        if (folder.empty() || interrupted()) {
            continue;
        }
        Status made = ensure_open(connection);
        if (made) {
            auto reply = make_remote_folder(connection, folder, true, items[made_for.at(folder)].folder_modes);
            made = reply ? success() : Status(reply.error());
        }
        if (!made) {
            report.folder_failed({folder, local, made.error()});
        }
    }
}

// put -r onto a server where a file stands at one of the tree's folders
// (tp/f a file, the tree's t4/f a folder): each file below it, and each
// empty folder mkdir could not make there, was refused not_a_folder. As
// get -r reports a folder it could not make (and README promises): one
// failed folder for that path, naming why, and what lies below it counted
// without a line of its own. The folder is found by a stat of each folder
// on the way, shallowest first (a few requests, only on this error), and
// only where the local path has the same components below it (so, a
// folder of the tree); a failure with no such folder shows its own line,
// as does each file that no tree's walk listed (put FILE -C X, X a file on
// the server: no folder of the user's was being copied there).
void report_unmade_folders(Connection& connection, Report& report, const std::vector<PutItem>& items,
                           std::vector<std::size_t> files, std::vector<FolderFailure> folders)
{
    std::map<std::string, bool> not_a_folder; // a server path asked about -> whether no folder stands there
    std::set<std::string> reported;
    // The tree's folder at or above `path` (local `local`) where no folder
    // stands on the server, reported once; false where none was found.
    const auto blame_its_folder = [&](const std::string& path, const std::string& local) {
        for (auto slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1)) {
            const std::string folder = path.substr(0, slash);
            const std::string below = path.substr(slash); // "/rest"
            if (local.size() <= below.size() || !local.ends_with(below)) {
                continue; // not a folder of the local tree
            }
            auto known = not_a_folder.find(folder);
            if (known == not_a_folder.end()) {
                const bool open = static_cast<bool>(ensure_open(connection));
                auto found = open ? stat_file(connection, folder) : Result<FileInfo>(Error{ErrorCode::internal, ""});
                const bool file_there =
                    found ? !is_folder(found.value()) : found.error().code == ErrorCode::not_regular_file;
                known = not_a_folder.emplace(folder, open && file_there).first;
            }
            if (!known->second) {
                continue;
            }
            if (reported.insert(folder).second) {
                const std::string local_folder = local.substr(0, local.size() - below.size());
                report.folder_failed({folder, local_folder,
                                      Error{ErrorCode::not_a_folder,
                                            "\"" + printable(folder) + "\" is not a folder on the server, where \"" +
                                                printable(local_folder) + "\" is one: nothing in it was sent"}});
            }
            return true;
        }
        return false;
    };
    for (auto& folder : folders) {
        folder.follows_its_folder = blame_its_folder(folder.name, folder.local);
        report.folder_failed(std::move(folder));
    }
    for (const auto index : files) {
        const auto& file = report.file(index);
        if (!items[index].listed || !blame_its_folder(file.name, file.local)) {
            report.failed(index, *file.error); // its own line after all
        }
    }
}

// put -r -p, last: writing the files changed their folders' times, which
// now get the local folders' (as cp -rp and rsync -a give them), what a
// folder holds before it, each only while it is still a folder
// (set_mtime's expect). A server without set_mtime, or a time it could
// not set, is a note: the files are in, with their own times.
void set_folder_times(Connection& connection, const PutPlan& plan, Report& report)
{
    if (plan.folder_times.empty() || interrupted()) {
        return;
    }
    if (!ensure_open(connection) || !can_set_mtime(connection)) {
        report.note("this server cannot set modification times (an older ferryd): folders keep the time of their "
                    "last change");
        return;
    }
    for (auto folder = plan.folder_times.rbegin(); folder != plan.folder_times.rend() && !interrupted(); ++folder) {
        Status open = ensure_open(connection);
        auto set =
            open ? set_remote_mtime(connection, folder->first, folder->second, ExpectedEntry{EntryType::folder, 0, 0})
                 : Result<StatReply>(open.error());
        if (!set && set.error().code != ErrorCode::not_found) { // not made (its files failed): nothing to set
            report.note("the time of the folder \"" + printable(folder->first) +
                        "\" was not kept: " + set.error().message);
        }
    }
}

int run_puts(Connection& connection, const Output& output, const std::vector<std::string>& locals,
             const PutPlacement& placement, const TransferFlags& flags)
{
    if (auto refused = read_only_refusal(connection, "nothing is sent")) {
        // Every put would be refused: one error says so, before any tree is
        // walked or any file tried.
        std::vector<std::string> names;
        for (const auto& local : locals) {
            names.push_back(placement.as ? *placement.as
                                         : join_remote(placement.folder.value_or(placement.current), local_name(local)));
        }
        return report_unstarted(output, names, locals, *refused, true);
    }
    SpooledInput input;
    PutPlan plan =
        plan_puts(connection, locals, placement, flags, input, output.json() ? std::string() : placement.current);
    Report report(output, plan.items.size(), true);
    report.shown_in(placement.current);
    for (auto& note : plan.notes) {
        report.note(std::move(note));
    }
    // An empty folder refused not_a_folder waits for report_unmade_folders,
    // as a file refused so does (Report::failed_put).
    std::vector<FolderFailure> held_folders;
    for (auto& folder : plan.failed_folders) {
        if (folder.error.code == ErrorCode::not_a_folder) {
            held_folders.push_back(std::move(folder));
        } else {
            report.folder_failed(std::move(folder));
        }
    }
    report.hold_for_their_folders();
    std::vector<std::size_t> todo;
    for (std::size_t i = 0; i < plan.items.size(); ++i) {
        report.file(i).name = plan.items[i].name;
        report.file(i).local = plan.shown[i];
        if (plan.errors[i]) {
            report.failed(i, *plan.errors[i], plan.typed_names[i]);
        } else {
            todo.push_back(i);
        }
    }
    with_retries(output, report, std::move(todo), flags,
                 [&](const TransferFlags& now, const std::vector<std::size_t>& indices) {
                     put_pass(connection, output, report, plan.items, now, indices);
                 });
    report_unmade_folders(connection, report, plan.items, report.take_held(), std::move(held_folders));
    make_folders_of_unsent(connection, plan.items, report);
    set_folder_times(connection, plan, report);
    return report.finish();
}

int report_unstarted(const Output& output, const std::vector<std::string>& names,
                     const std::vector<std::string>& locals, const Error& error, bool upload)
{
    Report report(output, names.size(), upload);
    for (std::size_t i = 0; i < names.size(); ++i) {
        report.file(i).name = names[i];
        report.file(i).local = locals[i];
    }
    if (!output.json()) {
        output.error(error); // once, not once per file
    }
    for (std::size_t i = 0; i < names.size(); ++i) {
        report.file(i).error = error;
    }
    return report.finish();
}

} // namespace ferry::client
