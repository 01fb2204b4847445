// `ferry sync`: make a server folder the copy of a local one (push), or a
// local folder the copy of a server one (pull), moving only what differs.
//
// 1. List both sides: the server's folder with one recursive list (paged),
//    the local one with sync_local's scan (no link followed).
// 2. With --checksum, ask the server's digest of every file whose size
//    matches and hash the local copy (in place of the quick check).
// 3. Plan (sync_plan.hpp, pure), then, unless --dry-run: remove what is in
//    the way and, with --delete, the extras; make the folders; send the
//    files over `jobs` connections at once, each pipelining its transfers
//    as several-file get and put do. Every file is verified end to end as
//    a get or put is, and lands under its name only complete, with the
//    sending side's mtime (a push sets it with the put's `mtime`, a pull
//    on the part before its publish), which is what lets the next quick
//    check skip it.
// 4. One summary (output.hpp's SyncSummary).
//
// Interrupted at any point, a sync run again finishes the job: a file is
// published only whole, so a half-sent one is sent again, resuming from the
// part the server (a push) or the local part file (a pull) kept.
#pragma once

#include "connection.hpp"
#include "output.hpp"
#include "transfer_hash.hpp"

#include <functional>
#include <optional>
#include <string>

namespace ferry::client {

enum class SyncDirection { push, pull };

// Connections a sync uses by default. Each file a server publishes costs it
// a few fsyncs, one after another; files on several connections have their
// fsyncs at the same time, and ext4's journal then commits them together.
// Measured pushing 1,000 files of 1 KiB-1 MiB to ferryd on ext4 (2 cores):
// 4 connections 6-7.7 s, 16 connections 5-5.7 s with ferryd's 4 pool
// threads and about 4-5 s with UV_THREADPOOL_SIZE=16 (more threads cost
// ferryd memory: a malloc arena each); 8 leaves its other clients room.
inline constexpr unsigned kDefaultSyncJobs = 8;
inline constexpr unsigned kMaxSyncJobs = 64;

struct SyncArguments {
    SyncDirection direction = SyncDirection::push;
    std::string local;  // the local folder
    std::string remote; // the server's folder, a path ("" is the root)
    // `remote` as typed (after its ':') in the shell's `current` folder:
    // each folder a '..' in it climbs out of must be one on the server
    // (resolve_remote_path_checked), which run_sync checks first.
    std::string remote_typed;
    std::string current;
    bool checksum = false;
    bool delete_extras = false;
    bool dry_run = false;
    unsigned jobs = kDefaultSyncJobs;
    HashKind hash = HashKind::sha256;
    unsigned retries = 0;
    // A seam for tests: called once both sides are listed and the plan is
    // made, before the first change (a dry run calls it too). Another
    // program may write into the trees then; the sync must never remove
    // what it did not list. ferry leaves it unset.
    std::function<void()> before_changes;
    // Another seam for tests: called once both sides are listed, before
    // --checksum's digests; a file changed then is one the digests must
    // not vouch for. ferry leaves it unset.
    std::function<void()> after_listing;
};

// The two operands' shape for `ferry sync`: exactly one names the server's
// side with a leading ':'. Sets direction and local; the message says what
// is wrong. The remote folder after the ':' is settled as every remote path
// is (settle_remote_folder, by CommandLine::sync_arguments).
std::optional<std::string> parse_sync_operands(const std::string& first, const std::string& second,
                                               SyncArguments& arguments);

// Runs the sync over `connection` (and jobs - 1 more connections opened
// with `options`); returns the exit status (status.hpp).
int run_sync(Connection& connection, const ConnectOptions& options, const Output& output,
             const SyncArguments& arguments);

} // namespace ferry::client
