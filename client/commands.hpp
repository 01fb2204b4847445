// The client's commands as the command line and the shell run them: one
// operation on an open connection, its result or error shown through
// Output. Each returns the exit status (status.hpp). Transfers live in transfers.hpp.
#pragma once

#include "connection.hpp"
#include "output.hpp"

#include <optional>
#include <string>
#include <vector>

namespace ferry::client {

// Remote paths are relative to `current`: "" (the root) on the command
// line, the shell's current folder (cd) there. Each command that takes
// several paths goes on after one fails, and ends with the status of all.

// list [PATH] [-r]: a folder's entries (a file: itself; a wildcard: what
// matches), names relative to the folder listed; a file's and a
// wildcard's matches are paths, shown in `shown_in` (shown_path). The
// root of a version-1 server lists as it always did.
Result<ListReply> list_entries(Connection& connection, const std::string& typed, bool recursive,
                               const std::string& current, const std::string& shown_in);
// stat PATH: one file or folder, or each a wildcard matches, named as
// shown in `shown_in` (shown_path).
Result<std::vector<FileInfo>> stat_entries(Connection& connection, const std::string& typed, const std::string& current,
                                           const std::string& shown_in);
// Shows a listing of `typed` (list_entries'), and after it each folder the
// server could not read as an error; the exit status (that of the first
// such folder's code, else kExitOk).
int show_list(const Output& output, const ListReply& reply, const std::string& typed, const std::string& current);
int run_list(Connection& connection, const Output& output, const std::string& typed = {}, bool recursive = false,
             const std::string& current = {});
int run_stat(Connection& connection, const Output& output, const std::string& name, const std::string& current = {});
// Shows what stat_entries found for `typed`: one entry as stat shows it,
// several, or the matches of a wildcard however many, as a list
// (--json: {"files": [...]}, the schema's stat_many).
void show_stat(const Output& output, const std::vector<FileInfo>& files, const std::string& typed);
// A stat's failure for `typed`, named as typed (named_as_typed), a missing
// entry said as "nothing named", since stat takes files and folders.
Error stat_error(Error error, const std::string& typed, const std::string& current);
int run_stats(Connection& connection, const Output& output);
// rm [-r] PATH...
int run_remove(Connection& connection, const Output& output, const std::vector<std::string>& typed, bool recursive,
               const std::string& current);
// mv FROM TO [--replace]: a TO ending in '/' names the folder to move into.
int run_move(Connection& connection, const Output& output, const std::string& from, const std::string& to,
             bool replace, const std::string& current);
// mkdir [-p] PATH...
int run_make_folders(Connection& connection, const Output& output, const std::vector<std::string>& typed,
                     bool parents, const std::string& current);
// digest PATH...: a wildcard's folders are passed over.
int run_digests(Connection& connection, const Output& output, const std::vector<std::string>& typed, HashKind hash,
                const std::string& current);

// `path` (from the root) as shown in `current`: relative when it is below
// it, else from the root with a leading '/'.
std::string shown_path(const std::string& path, const std::string& current);
// The folder the paths a command reports are shown in (shown_path): the
// shell's current folder for people; for --json the root (""), so that a
// script reads every command's paths one way, whatever a cd did.
std::string shown_in(const Output& output, const std::string& current);

// `typed` resolved in `current` as resolve_remote_path does, once every
// folder a '..' in it climbs out of (climbed_folders) is found to be a
// folder on the server: POSIX.1-2017 4.13 resolves "f/.." only when f is
// one, so "f/../d" of a file f or a missing f names nothing (ENOTDIR,
// ENOENT), never d. One stat per such folder: a path without '..' costs
// nothing more. Refused: not_a_folder (a file, a link or anything else),
// not_found, invalid_name (a '..' after a wildcard, or resolve_remote_path's
// refusals), or the stat's own error.
// `patterns`: the command expands wildcards (ls, stat, rm, digest, get),
// so one before a '..' is refused; else (mkdir, mv, put, cd, sync) every
// name is taken as it is written.
Result<std::string> resolve_remote_path_checked(Connection& connection, const std::string& current,
                                                const std::string& typed, bool patterns = true);

// A server's error about the path `path` (from the root), which the user
// typed as `typed` in `current`: the quoted path on the way to it that the
// server names is named as the user would type it (with the '/' typed
// before a path from the root; relative to `current` when below it). An
// error about local files (Error::about_local_files) is returned as it is.
Error named_as_typed(Error error, const std::string& path, const std::string& typed, const std::string& current);
// The same for several paths one message may name (mv's FROM and TO), each
// found in the message as the server wrote it.
struct TypedPath {
    std::string path;  // from the root
    std::string typed; // as the user typed it
};
Error named_as_typed(Error error, const std::vector<TypedPath>& paths, const std::string& current);
// The same for the path that `typed` names (list, stat: one argument).
Error named_as_typed(Error error, const std::string& typed, const std::string& current);

// A write on a connection that may only read: hello said "access": "ro"
// (PROTOCOL.md 4.1: a --read-only server, or a read-only token), so the
// server refuses every put, mkdir, delete, move and set_mtime. The
// forbidden Error that a writing command reports once, before it tries
// anything, saying `what` is not done ("nothing is sent"); nullopt where
// the connection may write (or is not open: the command then finds out).
std::optional<Error> read_only_refusal(const Connection& connection, const std::string& what);

// Makes the folder `path` and its missing parents, like mkdir -p (and curl's
// --create-dirs): get -C names where files go, and a folder that is not
// there yet is one to make, not a mistake. An error names `flag` as the
// user typed it (-C or --directory). `made` lists the folders it made,
// outermost first, so that a get that then fails can take them back.
// `last_mode`: the mode `path`'s own folder gets if made, as
// make_typed_folder's (a sync's pull gives it the server folder's, as
// mkdir -p -m gives it to the last folder alone); the others get 0777 less
// the umask.
struct MadeFolders {
    std::optional<Error> error;
    std::vector<std::string> made;
    // The folder `path` names itself was made here: nothing stood under its
    // name an instant before, so it held nothing when made.
    bool made_last = false;
};
MadeFolders make_folders(const std::string& path, const std::string& flag,
                         std::optional<std::uint32_t> last_mode = std::nullopt);
// After a get that failed: rmdir(2) of each folder make_folders made,
// innermost first. Only an empty one goes (a folder any file reached, or
// that someone else put something in meanwhile, stays), so a get that
// fetched nothing leaves no new empty folder behind, as curl and wget make
// an output's folders only to write into them.
void remove_made_folders(const MadeFolders& folders);

} // namespace ferry::client
