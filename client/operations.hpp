// The protocol logic of the client's commands over one Connection: list,
// stat, get and put (docs/PROTOCOL.md section 4). No printing: each returns
// a Result for output.cpp to show.
//
// The connection is left usable after a clean error reply from the server
// (not_found, invalid_name, hash_mismatch...). After anything that leaves
// the byte stream out of step (a lost server, a timeout, an interrupt, a
// transfer stopped midway) it is closed; callers reconnect before reusing it.
#pragma once

#include "connection.hpp"
#include "listing_check.hpp"
#include "local_files.hpp"
#include "local_tree.hpp"
#include "messages.hpp"
#include "transfer_hash.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace ferry::client {

// Called as bytes move, with the file's bytes done so far (those of a
// resumed transfer's earlier part included) and its total size.
using ProgressFn = std::function<void(std::uint64_t done, std::uint64_t total)>;

inline constexpr std::uint64_t kDownloadCheckpointInterval = 64 * 1024 * 1024;

// The parser of one kind of reply (parse_stat_reply, ...).
template <class Body>
using ReplyParser = Result<Reply<Body>> (*)(std::string_view);

// Sends `request` and reads its reply. An error reply is returned as its
// Error, the connection left in step unless the code (or an unreadable
// reply) says otherwise; a reply to another request closes the connection.
template <class Body>
Result<Body> ask(Connection& connection, const Request& request, ReplyParser<Body> parse);
// PROTOCOL.md 4: a reply names what its request asked about. One about
// another name ("../../x" for "a") would be shown, or written in a manifest,
// as the file asked for: the server broke the protocol (internal, as the
// Python client says). ask() checks every reply that names its subject;
// callers of read_reply() call this with the reply's name or path. Nothing
// when `answered` is `asked`.
std::optional<Error> unlike_asked(std::string_view what, std::string_view answered, std::string_view asked);
// The reply to the request `id` already sent (ask's second half), for
// requests whose replies come as several messages (a paged list).
template <class Body>
Result<Body> read_reply(Connection& connection, std::uint64_t id, ReplyParser<Body> parse);
// Parses `text`, a message from the server that should answer request
// `id`. Its id is compared before its fields count: a reply to another
// request is a protocol error whatever else it holds. A well-formed error
// reply comes back as the server's Error; any other reply that its parser
// refuses (a field of the wrong type or range, a missing one, no JSON) is
// the server breaking the protocol (exit 8), naming the field, and closes
// the connection: it never reads as a bad_request of ours (exit 4).
template <class Body>
Result<Reply<Body>> parse_server_reply(Connection& connection, std::string_view text, std::uint64_t id,
                                       ReplyParser<Body> parse);

// Checks a listing's page, entry by entry, with the listing's `check`
// (listing_check.hpp): the first entry that breaks its rules is the
// server's protocol error (exit 8) naming it and the listed `path`, and
// closes the connection (pages may still come). Every listing is read
// through here, whatever command asked for it.
std::optional<Error> check_page(Connection& connection, ListingCheck& check, const std::string& path,
                                const ListReply& page);

// One list request (made paged here), every page read and the whole sorted
// by name; list_files is the root's (the only listing version 1 has).
Result<ListReply> list_all_pages(Connection& connection, ListRequest request);
Result<ListReply> list_files(Connection& connection);
Result<FileInfo> stat_file(Connection& connection, const std::string& name);
Result<StatsReply> server_stats(Connection& connection);

struct GetOptions {
    std::string name; // a path on the server (a name on a version-1 connection)
    std::string dest; // the final local path (see resolve_download_path)
    // Set where dest is a name of a tree below this folder (get -r, sync's
    // pull): dest's folder is then opened by a walk from here that follows
    // no link. Empty: dest is a path the user named, resolved by
    // resolve_typed_path (links of the user's or root's followed).
    std::string tree_root;
    // The folder dest's last name is in, walked to ONCE and held from the
    // plan to the publish: the look at the target and the part, the part's
    // creation or resume, its sidecar, the attributes, the rename and the
    // folder's sync all go through this descriptor (local_files.hpp's
    // LocalFolder), never through a path again, so a folder on the way
    // swapped meanwhile (for a link, or for another folder) changes
    // nothing. Set by the caller (from a HeldFolders shared by the
    // command's files) or, when empty, by prepare_get's walk.
    std::shared_ptr<const LocalFolder> folder;
    // Set where dest's folder was made by this very command, on a file's
    // first try (sync's pull): nothing stood in it then, so prepare_get
    // takes the target, the part's name and the sidecar's as free without
    // looking (3 of a small file's 21 system calls). What appeared since is
    // still met where each step acts: the part's O_EXCL creation takes
    // what stands under its name as create_part_file's rules say, a
    // checkpoint replaces only a sidecar of ferry's, and the publish looks
    // at the target before its rename (publish_download). Only a resume is
    // given up, and a first try has none; a retry (a part left by a lost
    // connection) looks as any get does.
    bool in_made_folder = false;
    // Set by prepare_get when nothing stood under the part's name: the
    // download's sidecar, if any, then vouches for nothing (a checkpoint
    // replaces it, the publish removes it) and is not looked for again.
    bool no_part = false;
    // Set by prepare_get when nothing stood under the sidecar's name either:
    // no sidecar is then looked for again, after the part's creation or at
    // the publish, unless this download writes one (a checkpoint).
    bool no_state = false;
    // Give the file the server's modification time (get -p): set on the
    // verified part before it is renamed into place, so the published file
    // never shows another time.
    bool preserve_mtime = false;
    // False for --no-clobber: the verified file is published only where
    // nothing stands at dest when the rename runs (publish_download); a
    // file found there then is left alone, and the get is an `exists` Error.
    bool replace = true;
    // Write the bytes to standard output instead: no part file, no resume;
    // the hash is still checked, and a mismatch is still an error.
    bool to_stdout = false;
    bool resume = false;
    HashKind hash = HashKind::sha256; // the transfer hash asked of the server
    ProgressFn progress;
    std::uint64_t checkpoint_interval = kDownloadCheckpointInterval;
    // fsync the folder after the publish. A caller that publishes many files
    // into few folders (sync) turns it off and syncs each folder once.
    bool sync_folder = true;
    // Verify the file but leave it unpublished: the part stays open, its
    // writeback started, in PendingGet::verified, for a PublishBatch to make
    // durable and rename together with others (sync, several-file get).
    bool defer_publish = false;
    // Stop as if interrupted once the part file holds this many bytes: its
    // state is recorded and the result is an `aborted` error. For tests of
    // resume; the command line never sets it.
    std::optional<std::uint64_t> stop_after;
};

// What a finished get or put did, either way: the file as the server has
// it, the local path at the other end ("-": standard input or output), the
// digest both ends agreed on, and where the transfer resumed.
struct TransferResult {
    FileInfo file;
    std::string local;
    HashKind hash = HashKind::sha256;
    std::string digest;
    std::uint64_t resumed_from = 0;
    // With get -p, put -p (and sync): set where the copy's file system did
    // not keep the time asked but clamped or rounded it (ext4 holds 1901 to
    // 2446, FAT steps of 2 s; protocol/mtime_limits.hpp), read back after it
    // was set (a put: the commit reply's mtime, PROTOCOL.md 4.5), so that
    // it is reported, never hidden.
    struct TimeNotKept {
        std::int64_t asked = 0;
        std::int64_t held = 0;
    };
    std::optional<TimeNotKept> time_not_kept{};
    // False where the server took the commit's defer_sync: published, but
    // durable only once a sync request (sync_deferred) is answered ok.
    bool synced = true;

    // The bytes that crossed the network this time.
    std::uint64_t moved() const { return file.size - resumed_from; }
};

// Downloads into <dest>.ferry-part (recording <dest>.ferry-part.state as it
// goes), checks the trailer's digest against the whole result, then renames
// it onto dest. Never creates or replaces dest with anything unverified.
Result<TransferResult> get_file(Connection& connection, const GetOptions& options);

// A partial download found on disk whose sidecar is readable and whose
// part file holds at least the bytes the sidecar vouches for.
struct Resumable {
    DownloadState state;
    TransferHash hash;
    // The part as it was checked (device, inode, size, mtime, ctime): the
    // resume writes only into that very file (open_part).
    PartIdentity checked;
};

// get_file in three steps, so that several gets can share one connection
// with their requests sent ahead of the replies (PROTOCOL.md 1 and 4.4).
struct PendingGet {
    GetOptions options;
    std::uint64_t id = 0;
    std::uint64_t offset = 0;
    std::optional<Resumable> resumable;
    // What options.dest was when prepared (options.dest then names the
    // file to publish onto); a FIFO or device is written straight through.
    DownloadTarget target;
    // Set by finish_get when the partial turned out to belong to an older
    // version of the file (another size or mtime in the reply), or its bytes
    // failed the whole file's hash: send the request again (from 0) instead
    // of failing.
    bool restart = false;
    // Set by finish_get once the server accepted the request (its reply
    // came): from there the download may write under its local names. A
    // get that fails without it wrote nothing there.
    bool accepted = false;
    // The server file whose part was found at options.dest's part name,
    // where its state names another file than this one: never this
    // download's to resume, so a get that fails before writing may hand its
    // names on, but only to that file's own download (get_files).
    std::optional<std::string> part_owner;
    // With options.defer_publish, after a finish_get that verified a file
    // (not a stream): the part, to be published by the caller.
    std::optional<VerifiedPart> verified;
};

// Checks the name and looks for a partial to resume; sends nothing.
Result<PendingGet> prepare_get(const GetOptions& options);
// Whether a partial download recorded by `state` holds the beginning of the
// server's file as it is now (`size`, `mtime`): a part of an older version
// is worth nothing, and its download starts over (finish_get).
bool resumes_version(const DownloadState& state, std::uint64_t size, std::int64_t mtime);
// The bytes a get with `options` of the server's file as listed (`size`,
// `mtime`) would not receive again: the verified prefix of the part it
// would resume (prepare_get's rules, then resumes_version); 0 where it
// would start from the beginning. prepare_get's error where the get
// could not start (what the real run refuses before any byte moves: a
// file of the user's at the part's name, say). Writes nothing: a dry
// run's figure.
Result<std::uint64_t> resumable_prefix(const GetOptions& options, std::uint64_t size, std::int64_t mtime);
// Sends the get request under a fresh id of this connection.
Status send_get(Connection& connection, PendingGet& pending);
// Reads the sent get's reply, data and trailer, and publishes the file.
// Replies to requests sent after it stay unread.
Result<TransferResult> finish_get(Connection& connection, PendingGet& pending);

struct PutOptions {
    std::string local_path;
    // A file of a walked tree (put -r, sync's push): opened as listed
    // (open_listed_file), never through a link, and only if still the very
    // file the walk saw. Without it `local_path` is the user's own operand,
    // its links followed as cp follows them.
    std::optional<ListedFile> listed;
    // The command's folders that `listed` is opened through (open_listed_file),
    // shared by every file it sends; null: walked to afresh for this file.
    HeldFolders* folders = nullptr;
    // put -: standard input spooled to a file with no name (transfers.cpp's
    // SpooledInput), read through a dup of this descriptor, never a path.
    std::shared_ptr<const LocalFile> spool;
    std::string name; // a path on the server (a name on a version-1 connection)
    // Have the server make the path's missing folders first (put -r, -C).
    bool parents = false;
    // With `parents`, the source folders' modes for the folders made
    // (PROTOCOL.md 4.10's folder_modes: the last one the file's folder),
    // sent where the server honours them (its hello lists "folder_modes").
    FolderModes folder_modes;
    // The modification time the server gives the published file (put -p);
    // needs protocol version 2.
    std::optional<std::int64_t> mtime;
    // Continue the server's kept upload of this name and size when its
    // bytes are this file's beginning; false discards it (--no-resume).
    // Either way no kept upload of this name and size is left behind.
    bool resume = false;
    // False for --no-clobber: the commit asks the server to publish only
    // where nothing stands at the name when it renames (PROTOCOL.md 4.5's
    // `replace`), answered `exists` otherwise; sent where the server
    // honours it (checks_commit_replace), else the put replaces as before.
    bool replace = true;
    // The commit asks the server to leave its folder's fsync for a later
    // sync request (PROTOCOL.md 4.5's defer_sync), sent where the server
    // offers it (defers_sync); the caller then owes that request, and
    // counts the file as sent only once it is answered ok.
    bool defer_sync = false;
    HashKind hash = HashKind::sha256;
    ProgressFn progress;
};

// Uploads a local regular file under `name` and commits it with the
// digest of the whole file (SHA-256 or XXH3-128). With `resume`, continues a kept upload after
// checking the server's prefix hash against the local file's beginning.
Result<TransferResult> put_file(Connection& connection, const PutOptions& options);

// put_file in steps, so that the next put's request can follow a commit
// without waiting for its reply (the server's fsync and hash).
struct PendingPut {
    PutOptions options;
    LocalFile file;
    std::uint64_t size = 0;
    // The file's permission bits (st_mode & 0777), which a server that
    // carries modes gives a new file (PROTOCOL.md 4.5); none for standard
    // input, whose spool's private mode is not the data's.
    std::optional<std::uint32_t> mode;
    std::uint64_t id = 0;
    std::uint64_t offset = 0; // where the data started, once accepted
    std::string digest;       // of the whole file, once sent
    // The file as opened (fstat): checked again once its last byte is read,
    // so that a file changed while it was sent is never committed.
    PartIdentity opened;
    // Changed so shortly before the open that a write after it may share
    // its timestamp tick (and so not show in `opened`): re-read and hashed
    // again once sent, as ferryd does for a get of such a file.
    bool fresh = false;
};

// Opens the local file; sends nothing.
Result<PendingPut> prepare_put(const PutOptions& options);
// Sends the put request under a fresh id of this connection.
Status send_put(Connection& connection, PendingPut& pending);
// Reads the put's reply (waiting out `busy` when resuming), checks what a
// resume builds on, sends the data, and holds the commit to go out with the
// next request (Connection::hold_request) or before the next read. The
// commit's reply is left unread: other requests may be sent before
// finish_put reads it.
Status send_upload(Connection& connection, PendingPut& pending);
Result<TransferResult> finish_put(Connection& connection, PendingPut& pending);

} // namespace ferry::client
