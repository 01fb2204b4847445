// The tree operations of protocol version 2 over one Connection (PROTOCOL.md
// 4.2 and 4.9 to 4.13): list a folder (or everything below it), make,
// delete and rename folders and files, ask a file's digest, set a file's or
// folder's modification time. No printing:
// each returns the reply or its Error, and leaves the connection as ask()
// does (operations.hpp). One file's upload or download to a given path, with
// or without its modification time, is put_file / get_file there
// (PutOptions::parents and ::mtime, GetOptions::preserve_mtime).
//
// These are the primitives the folder commands and sync are built on; on a
// version-1 connection each is an unsupported_version Error, sent nothing.
#pragma once

#include "connection.hpp"
#include "messages.hpp"
#include "status.hpp"
#include "transfer_hash.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::client {

// unsupported_version "this server speaks protocol version 1, which has no
// LACKING" on a version-1 connection (`lacking` names what the command
// needs: "folders", "delete operation"...); nothing on a later one.
std::optional<Error> require_version_2(const Connection& connection, std::string_view lacking);
// require_version_2 for what needs folders: a path below the root, mkdir, a tree.
std::optional<Error> require_folders(const Connection& connection);

// Whether a listed or described entry is a folder (a version-1 reply, which
// has no type, describes regular files only).
inline bool is_folder(const FileInfo& file)
{
    return file.type == EntryType::folder;
}

// Lists the folder `path` ("" is the root): its files and folders by their
// own names, or with `recursive` everything below it by paths relative to
// `path`, each folder before what is inside it. The listing is asked for in
// pages; `each` gets every entry as its page arrives, so the entries of a
// tree of any size are never held whole here: only each name, once, which
// ListingCheck needs to refuse one listed twice (pages come in no order,
// PROTOCOL.md 4.2), about 100 bytes an entry. An error from `each` stops the listing (and
// closes the connection: the rest of the pages are not read) and is returned.
// A listing that could not read a folder ends, once every entry is given,
// in the first such folder's unreadable_error: never as a whole one.
Status list_tree(Connection& connection, const std::string& path, bool recursive,
                 const std::function<Status(FileInfo&&)>& each);
// The same, collected and sorted by name (so a folder still comes before
// what is inside it); skipped_invalid_names counts the whole listing.
Result<ListReply> list_folder(Connection& connection, const std::string& path, bool recursive);

// A folder the server's listing of `listed` could not enter or read in
// full (PROTOCOL.md 4.2, "unreadable_folders") as an error of its code
// (forbidden or io_error), naming it by its path from the root: what it
// holds is unknown, and `consequence` says what the command does not do
// there ("nothing in it is received").
Error unreadable_error(const std::string& listed, const UnreadableFolder& folder, const std::string& consequence);

// What stands at `path` (from the root, escapes undone) for a caller that
// needs a folder there: a folder, a regular file, or something else, which
// the server neither follows nor describes (a link, a FIFO: its stat's
// not_regular_file). stat's other errors (not_found, forbidden...) as they are.
struct FolderLook {
    enum class Kind { folder, file, other };
    Kind kind = Kind::other;
    FileInfo info; // as stat gives it (folder and file)
};
Result<FolderLook> look_for_folder(Connection& connection, const std::string& path);

// What `path` (resolved from the root, escapes undone) is, looked up for an
// argument typed as a folder ("f/", remote_paths.hpp's typed_as_folder):
// the folder as stat gives it, or not_a_folder when it is a file (POSIX's
// ENOTDIR for a trailing slash), naming `path` from the root as the
// server's errors do (each command names it as typed: named_as_typed);
// stat's own error when there is nothing there. The root ("") is a
// folder, not looked up.
Result<FileInfo> stat_typed_folder(Connection& connection, const std::string& path);

// What a remote argument names: `path` (resolved from the root) itself, or
// with wildcards what matches in the server's listing (remote_paths.hpp);
// `typed` is the argument as given, for the message of no match. An
// argument typed as a folder ("d/", "logs*/") names folders only: a file
// there is stat_typed_folder's not_a_folder, and a pattern's files are not
// matches. On a version-1 connection only the root can be matched (it is all there is),
// and a path with a '/' is require_folders' error. A wildcard over several
// components whose listing could not read a folder is that folder's error
// (unreadable_error): its matches are not all known, and acting on some
// of them as if they were all would be silent about the rest.
Result<std::vector<FileInfo>> remote_matches(Connection& connection, const std::string& path,
                                             const std::string& typed);

// The folder `path` on the server as stat describes it (its modification
// time, and its mode where the server carries modes): nullopt where the
// server cannot say (nothing there, not a folder, or an older ferryd that
// cannot stat the root). Used for a sync's synced folder and get -r's tree
// folder: the time kept, the mode a folder made for it gets.
std::optional<FileInfo> remote_folder_info(Connection& connection, const std::string& path);

// mkdir: `parents` makes the missing folders above too, and then a folder
// already there is no error (reply's `created` false).
// `folder_modes`: the source folders' modes for the folders made
// (PROTOCOL.md 4.10), sent where the server honours them.
Result<MkdirReply> make_remote_folder(Connection& connection, const std::string& path, bool parents,
                                      const FolderModes& folder_modes = {});
// delete: a file, an empty folder, or with `recursive` a folder and what is
// in it (what was removed before an error stays removed). With `expect`,
// only if what stands at `path` is still that listed entry (never with
// `recursive`; a server without "delete_expect" ignores it).
Result<DeleteReply> delete_remote(Connection& connection, const std::string& path, bool recursive,
                                  std::optional<ExpectedEntry> expect = std::nullopt);
// Several deletes (each as delete_remote would send it), pipelined: up to
// kDeletesInFlight wait at the server, which answers them in order, so the
// delete of a folder listed after what it held comes after theirs. Sending
// stops once the user interrupts (interrupted()) or the connection is lost.
// `replies`: one per request sent, in the requests' order (the first
// replies.size() requests); the rest were never sent, and `lost` is the
// connection's error when that is why (empty: interrupted).
inline constexpr std::size_t kDeletesInFlight = 16;
struct PipelinedDeletes {
    std::vector<Result<DeleteReply>> replies;
    std::optional<Error> lost;
};
PipelinedDeletes delete_pipelined(Connection& connection, const std::vector<DeleteRequest>& requests);
// rename, atomic; without `replace` an existing `to` is `exists`.
Result<RenameReply> rename_remote(Connection& connection, const std::string& from, const std::string& to,
                                  bool replace);
// digest: the file's digest in `hash`, computed (or cached) by the server;
// from a version-1 server, which has no digest request, the trailer of a get
// from the file's end (digest_by_get).
Result<DigestReply> remote_digest(Connection& connection, const std::string& path, HashKind hash);
// The whole file's digest in `hash` from the trailer of a get at `offset` =
// `size` (PROTOCOL.md 4.4), which any version of the protocol has; bytes the
// file gained since `size` was taken are read and passed over; the result's
// file is the get reply's. Errors: the get's (not_found, bad_offset when the
// file is now shorter than `size`, ...); aborted when interrupted; the
// connection's; protocol_error (the connection closed) for a reply at
// another offset, more bytes than its size announced, or a trailer whose
// size is not the reply's.
Result<DigestReply> digest_by_get(Connection& connection, const std::string& path, std::uint64_t size,
                                  HashKind hash);
// Whether the server's listings name the folders holding what they do not
// show (its hello lists "holding_unlisted", PROTOCOL.md 4.2): only then
// does a listing tell which folders a recursive delete would keep.
bool tells_unlisted(const Connection& connection);
// Whether the server deletes only what a delete's `expect` describes (its
// hello lists "delete_expect", PROTOCOL.md 4.11); an older version-2
// ferryd ignores the field and deletes by name.
bool checks_delete_expect(const Connection& connection);
// Whether the server refuses to replace at a commit with `replace: false`
// (its hello lists "commit_replace", PROTOCOL.md 4.5); an older ferryd
// ignores the field and replaces.
bool checks_commit_replace(const Connection& connection);
// Whether the server takes a put's `mode` for a new file and describes
// entries with theirs (its hello lists "mode", PROTOCOL.md 4.5); an older
// ferryd ignores the field and makes new files 0666 less its umask.
bool carries_mode(const Connection& connection);
// Whether the server gives the folders a mkdir or a put with parents makes
// the modes sent (its hello lists "folder_modes", PROTOCOL.md 4.10); an
// older ferryd ignores them and makes every folder 0777 less its umask.
bool takes_folder_modes(const Connection& connection);
// The server's not_found "`said` X" ("no file named X" from a stat, "no
// folder named X" from a list) said as "`instead` X" ("no folder named ",
// "nothing named "), for a request that asked for more, or less, than the
// server's request did; any other error as it is.
Error missing_named(Error error, std::string_view instead, std::string_view said = "no file named ");
// The note for a tree sent to a server that ignores folder_modes while
// `closed` of the folders it makes keep others out (TreeFolderModes::closed_among):
// they may arrive open to more users than here. None where the server takes
// the modes or no folder is closed.
std::optional<std::string> folder_modes_note(const Connection& connection, std::size_t closed);
// Whether the server takes a commit's defer_sync and the sync request (its
// hello lists "deferred_sync", PROTOCOL.md 4.5 and 4.14); an older ferryd
// syncs each commit's folder before its reply, as it always did.
bool defers_sync(const Connection& connection);
// sync: makes durable every name this connection's deferred commits
// published (PROTOCOL.md 4.14); the reply counts the folders. An error
// (io_error, no_space) means those names may not survive a crash.
Result<SyncReply> sync_deferred(Connection& connection);
// Whether the server offers set_mtime (its hello lists "set_mtime"; an
// older version-2 ferryd does not).
bool can_set_mtime(const Connection& connection);
// Whether the server sets a time only on what a set_mtime's `expect`
// describes (its hello lists "set_mtime_expect", PROTOCOL.md 4.13); an
// older ferryd ignores the field and sets by name.
bool checks_set_mtime_expect(const Connection& connection);
// set_mtime: gives `path` ("" is the root; a file or a folder) the
// modification time `mtime` (seconds since the Unix epoch); the reply
// describes the entry afterwards. Without the capability: unknown_op, sent
// nothing. With `expect`, only if the entry is still that one (else
// file_changed) on a server that checks it (checks_set_mtime_expect): an
// older one ignores the field (PROTOCOL.md 3.1) and sets by name, which
// the caller decides from that same check whether to accept.
Result<StatReply> set_remote_mtime(Connection& connection, const std::string& path, std::int64_t mtime,
                                   const std::optional<ExpectedEntry>& expect = std::nullopt);

} // namespace ferry::client
