// What `ferry sync` must do, decided without touching anything: the
// sending side's tree and the receiving side's tree (as listed, either one
// local or remote) and the options go in, the actions come out. Pure, so
// that every rule (quick check, --checksum, --delete, what is in the way)
// is a unit test; sync.cpp only lists, executes and reports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ferry::client {

// What a path is on one side. `other` is what sync never follows, never
// replaces and never removes: a symbolic link, a FIFO, a device, a socket
// (the local scan reports them; a Ferry server never lists them).
enum class EntryKind { file, folder, other };

// A path ending in '/' ("FOLDER/", "/" for the synced folder itself) is no
// entry but a mark of kind `other`: that folder holds entries the listing
// does not show (a server's holding_unlisted, PROTOCOL.md 4.2).
struct TreeEntry {
    std::string path; // relative to the synced folder, components joined by '/'
    EntryKind kind = EntryKind::file;
    std::uint64_t size = 0;
    std::int64_t mtime = 0; // seconds since the Unix epoch
    std::string why;        // kind `other`: what it is, as the scan found it ("" if unknown)
    // A folder's permission bits (st_mode & 07777), where the side listed
    // knows them (a server without "mode" does not): a folder a sync makes
    // for it gets them (folder_create_mode_of).
    std::optional<std::uint32_t> mode{};
};

using TreeListing = std::vector<TreeEntry>;

struct PlanOptions {
    // Compare content (digests) instead of size and mtime.
    bool checksum = false;
    // Remove what the receiving side holds and the sending side does not,
    // and what stands in the way of the sending side's entry of another type.
    bool delete_extras = false;
    // Files present on both sides whose comparison failed (--checksum: a
    // digest could not be had, the error reported): left as they are,
    // neither sent nor counted skipped.
    std::set<std::string> undecided;
    // What the receiving side's file system holds at `path` (an entry it
    // has) when given the sending side's `mtime` (protocol/mtime_limits.hpp:
    // clamped to its range, rounded to its step). The quick check, a
    // folder's time and --checksum's retimes compare that with the
    // receiving side's time, so a time no copy can take is no difference
    // on every run. Unset: the time itself (compared exactly).
    std::function<std::int64_t(const std::string& path, std::int64_t mtime)> held;
};

// Digests by path, of one side, for --checksum (only the candidates').
using Digests = std::map<std::string, std::string>;

struct FileTransfer {
    std::string path;
    std::uint64_t size = 0;
    std::int64_t mtime = 0; // the sending side's: the receiving side's copy gets it
};

struct Removal {
    std::string path;
    EntryKind kind = EntryKind::file; // a folder is removed with everything in it
    // A folder that stays, as removal_effects() finds it: it holds what
    // --delete never removes, so its parent is not changed by its removal.
    bool stays = false;
};

// An entry the sync cannot place and leaves alone, with the reason.
struct Conflict {
    std::string path;
    std::string message;
};

struct SyncPlan {
    // First, in this order: what is in the way and, with --delete, the extras.
    // A folder appears once (removed with its contents); nothing inside a
    // removed folder appears on its own.
    std::vector<Removal> removals;
    // Then the folders the receiving side lacks, each after its parent.
    std::vector<std::string> folders;
    // Then the files to send, in path order.
    std::vector<FileTransfer> transfers;
    // --checksum: files equal by content whose mtime differs; the receiving
    // side's mtime can be set without sending a byte (where it can be set).
    std::vector<FileTransfer> retimes;
    // Last, the sending side's folders whose mtime the receiving side must
    // be given once every file is in place (rsync -a keeps them too): those
    // it lacks or holds with another mtime, and those the steps above
    // change by publishing, making or removing something inside; with
    // add_top_folder_time(), the synced folder itself (path ""). A push
    // sets them with set_mtime (PROTOCOL.md 4.13) where the server offers it.
    std::vector<FileTransfer> folder_times;
    std::vector<Conflict> conflicts;
    // With --delete: the sending side's folders ("" the synced folder) that
    // hold entries its listing does not show (a server's holding_unlisted:
    // paths too deep or too long to name, hidden names...), in which the
    // receiving side held extras the plan leaves: they may be those very
    // entries, and --delete never removes what it cannot see. In path order.
    std::vector<std::string> spared;
    // With --delete: the receiving side's entries kept as the NFC spelling
    // of a path the sending side leaves out for not being in NFC (a push's
    // "e + combining accent"): one text, so not an extra. In path order.
    std::vector<std::string> twins;
    std::uint64_t skipped = 0; // files found the same on both sides
    std::uint64_t bytes = 0;   // the sum of the transfers' sizes
};

// The paths --checksum must compare by digest: a regular file on both sides
// with the same size (a different size is a difference without reading).
std::vector<std::string> checksum_candidates(const TreeListing& source, const TreeListing& dest);

// The plan. `source_digests` and `dest_digests` matter only with checksum:
// a candidate whose digests are both known and equal is the same; one
// whose digest is missing on either side is sent (never assumed equal).
SyncPlan plan_sync(const TreeListing& source, const TreeListing& dest, const PlanOptions& options,
                   const Digests& source_digests = {}, const Digests& dest_digests = {});

// Of plan.folders, those no transfer makes on its way: a put with
// `parents` makes the folders above its file, so a push needs mkdir only
// for the folders that will hold no file (empty, or holding only folders
// that hold none).
std::vector<std::string> folders_without_files(const SyncPlan& plan);

// Adds the synced folder itself (path "") first to plan.folder_times when
// the receiving side must be given the sending side's time for it: the
// sending side's `source_top` mtime is known, and the receiving side's
// `dest_top` differs (or is unknown: the folder is made now), or the plan
// publishes, makes or removes something directly inside it.
// `held`: as PlanOptions::held, of the synced folder itself (path "").
void add_top_folder_time(SyncPlan& plan, std::optional<std::int64_t> source_top,
                         std::optional<std::int64_t> dest_top,
                         const std::function<std::int64_t(const std::string&, std::int64_t)>& held = {});

// What one of the plan's removals takes from the receiving side `dest` (as
// listed): the entry and, below a removed folder, every file and folder;
// what is never removed (kind `other`) stays, and so do the folders
// holding it, the removed folder included.
struct RemovalEffect {
    std::uint64_t files = 0;   // files removed
    std::uint64_t folders = 0; // folders removed
    // The first entry of kind `other` inside that keeps the folder; none
    // when it goes whole.
    const TreeEntry* kept_by = nullptr;
};
// One per plan.removals, in its order.
std::vector<RemovalEffect> removal_effects(const SyncPlan& plan, const TreeListing& dest);

// One delete the plan's removals come to, on the receiving side as
// listed: a removed file itself; for a removed folder, the files listed in
// it, then its listed folders deepest first, the folder itself last, each
// removed alone (never recursively), so that what was not listed (written
// there since) is never removed and keeps its folder. A folder the
// listing shows holding what is never removed (removal_effects' kept_by)
// has no step: it stays.
struct RemovalStep {
    std::string path;
    EntryKind kind = EntryKind::file;
    std::size_t removal = 0; // its index in plan.removals
    // A file's size and mtime as listed: what a push's delete expects to
    // find at `path` on the server (PROTOCOL.md 4.11's "expect").
    std::uint64_t size = 0;
    std::int64_t mtime = 0;
};
std::vector<RemovalStep> removal_steps(const SyncPlan& plan, const TreeListing& dest);

// How many files and folders the plan's removals take from `dest`, as
// removal_effects() counts them: what a --dry-run reports as deleted, the
// same count a real run reports.
std::uint64_t removal_count(const SyncPlan& plan, const TreeListing& dest);

// The parent path of `path` ("a/b/c" -> "a/b", "a" -> "").
std::string parent_path(const std::string& path);

} // namespace ferry::client
