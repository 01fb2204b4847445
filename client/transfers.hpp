// Several gets or puts in one command over one connection, with one summary
// at the end. Gets are pipelined: a few requests wait at the server so that
// the next file starts without a round trip (PROTOCOL.md 1 and 4.4). A put's
// data may only follow its reply, so puts overlap where the protocol lets
// them: the next put request goes out right behind the commit, while the
// server syncs and hashes. One failed file does not stop the others; a lost
// connection is reopened for the files still to come.
#pragma once

#include "clobber.hpp"
#include "connection.hpp"
#include "local_tree.hpp"
#include "output.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace ferry::client {

// Gets sent ahead of the one being received: enough to hide a round trip,
// few enough that a failure wastes little of the server's work.
inline constexpr std::size_t kGetsInFlight = 4;

// Where downloads go: `-o PATH` (one file; "-" is standard output, an
// existing folder gets NAME inside), `-C FOLDER`, or neither (./NAME).
struct GetPlacement {
    std::optional<std::string> output;
    std::optional<std::string> folder;
};

// How a command's transfers go, beyond where.
struct TransferFlags {
    bool resume = false;
    HashKind hash = HashKind::sha256;
    Clobber clobber = Clobber::replace;
    // --retry N: files that failed for a passing reason (exit status 6) are
    // tried again, up to N more times, after 1, 2, 4... seconds (at most
    // kMaxRetryDelay), resuming where they stopped.
    unsigned retries = 0;
    // -r: a folder is sent or received with everything in it.
    bool recursive = false;
    // -p: modification times are kept (get: the server's; put: the local file's).
    bool preserve = false;
    // A put's commits leave their folder's fsync for a sync request every
    // UnsyncedPuts::kLimit files (PROTOCOL.md 4.14); a retry does not, so
    // that one folder whose sync fails fails only its own files again.
    bool defer_sync = true;
};

// Where uploads go on the server: `--as PATH` (one LOCAL), `-C FOLDER`
// (made when missing), or neither (the current folder, under each LOCAL's
// own name). Paths are relative to `current`, the shell's current folder
// ("" on the command line: the root).
struct PutPlacement {
    std::optional<std::string> as;
    std::optional<std::string> folder;
    std::string current;
};

inline constexpr std::chrono::seconds kMaxRetryDelay{30};

// The wait before retry number `attempt` (1 for the first).
std::chrono::milliseconds retry_delay(unsigned attempt);

// Each returns the command's exit status (status.hpp): 0 when every file
// made it. For people: each file's result or error as it ends, and with
// several a closing summary; with --json one object for the whole command,
// whatever the number of files (docs/ferry-json.schema.json).
//
// get: each NAME is a path relative to `current` (wildcards matched against
// the server's listing); a file lands under its last name, a folder (with
// -r) as a local folder of that name holding its tree.
int run_gets(Connection& connection, const Output& output, const std::vector<std::string>& names,
             const GetPlacement& placement, const TransferFlags& flags, const std::string& current = {});
// put: a LOCAL of "-" is standard input, read to its end into a private
// temporary file first (a put declares its size before the data); a local
// folder (with -r) is walked without following symbolic links (local_tree.hpp)
// and its files are put with their folders made on the way.
int run_puts(Connection& connection, const Output& output, const std::vector<std::string>& locals,
             const PutPlacement& placement, const TransferFlags& flags);
inline int run_puts(Connection& connection, const Output& output, const std::vector<std::string>& locals,
                    const std::optional<std::string>& as, const TransferFlags& flags)
{
    return run_puts(connection, output, locals, PutPlacement{as, std::nullopt, {}}, flags);
}

// One file of a batch: a path on the server and a local path, both final.
struct GetItem {
    std::string name;
    std::string local;
    // A tree's name (get -r, sync): the folder `local` is below, reached
    // without following a link (GetOptions::tree_root). Empty: `local` is
    // the user's, its links followed.
    std::string tree_root = {};
};
struct PutItem {
    std::string local;
    std::string name;
    bool parents = false;              // make the missing folders of `name`
    std::optional<std::int64_t> mtime; // the time the server gives the file
    // put -r: the tree's file as its walk listed it (PutOptions::listed).
    std::optional<ListedFile> listed = {};
    // put -: standard input's spool (PutOptions::spool); `local` is then "-".
    std::shared_ptr<const LocalFile> spool = {};
    // The modes of the folders `parents` makes (PutOptions::folder_modes).
    FolderModes folder_modes = {};
};
// The batches under run_gets and run_puts, for callers that plan the files
// themselves (sync): pipelined over `connection`, retried as flags say, each
// file shown as it ends (for people); returned, not summarised (the caller
// prints its own summary). flags.preserve keeps the server's times on gets;
// a put's time is its item's.
TransferSummary get_items(Connection& connection, const Output& output, const std::vector<GetItem>& items,
                          const TransferFlags& flags);
TransferSummary put_items(Connection& connection, const Output& output, const std::vector<PutItem>& items,
                          const TransferFlags& flags);

inline int run_gets(Connection& connection, const Output& output, const std::vector<std::string>& names,
                    const GetPlacement& placement, bool resume, HashKind hash)
{
    return run_gets(connection, output, names, placement, TransferFlags{resume, hash, Clobber::replace, 0, false, false});
}
inline int run_puts(Connection& connection, const Output& output, const std::vector<std::string>& locals,
                    const std::optional<std::string>& as, bool resume, HashKind hash)
{
    return run_puts(connection, output, locals, as, TransferFlags{resume, hash, Clobber::replace, 0, false, false});
}

// A get or put that could not start (no connection): every file failed with
// `error`, shown in the command's usual shape. `names` are on the server,
// `locals` the local paths. Returns the exit status.
int report_unstarted(const Output& output, const std::vector<std::string>& names,
                     const std::vector<std::string>& locals, const Error& error, bool upload);

} // namespace ferry::client
