// One struct per message of docs/PROTOCOL.md and its JSON mapping. JSON stays
// behind this header: callers see typed structs and ferry::Error only.
#pragma once

#include "error.hpp"
#include "mtime_limits.hpp"
#include "transfer_hash.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ferry {

// The protocol versions this code speaks (PROTOCOL.md 8): hello offers the
// highest, and the server answers with the highest it shares with the client.
// Version 2 adds paths, folders and the tree operations (mkdir, delete,
// rename, digest, set_mtime); a version-1 connection sees the flat folder
// of version 1.
inline constexpr std::uint32_t kMinProtocolVersion = 1;
inline constexpr std::uint32_t kMaxProtocolVersion = 2;

// The largest "mode" a message may carry: the permission bits with the
// set-user-ID, set-group-ID and sticky bits (chmod(2)'s 07777).
inline constexpr std::uint32_t kModeBits = 07777;
// The mode a new copy of a file is created with (open(2)'s mode argument;
// PROTOCOL.md 4.5): its source's permission bits, never a set-ID or sticky
// bit, or 0666 where the source's are not known.
constexpr std::uint32_t create_mode_of(std::optional<std::uint32_t> source_mode)
{
    return source_mode.value_or(0666U) & 0777U;
}

// The source folders' permission bits for the folders a mkdir or a put
// with parents makes (PROTOCOL.md 4.10's "folder_modes"): the last entry is
// the deepest folder of the path (a mkdir's `path` itself, a put's file's
// folder), the one before it that folder's parent, and so on up; folders
// above the first entry (or all of them when it is empty) get 0777. At most
// kMaxPathDepth entries, each 0 to 07777.
using FolderModes = std::vector<std::uint32_t>;
// The mode a new folder is created with (mkdir(2)'s mode argument, which
// the umask or a default ACL then narrows): its source's permission bits,
// never a set-ID or sticky bit, with the owner's read, write and search
// bits always on, so that the transfer that made it can fill it (as
// mkdir -p gives the folders it makes on the way, POSIX mkdir(1)); 0777
// where the source's are not known.
constexpr std::uint32_t folder_create_mode_of(std::optional<std::uint32_t> source_mode)
{
    return (source_mode.value_or(0777U) & 0777U) | 0700U;
}

// What a listed or described entry is (version 2 only: a version-1 reply
// carries no type, since it describes regular files only).
enum class EntryType { file, folder };
std::string_view to_string(EntryType type);

// ---- Requests (client to server) -------------------------------------------

struct HelloRequest {
    std::uint32_t version = kMaxProtocolVersion;
    std::string client;
    std::string token; // empty: none sent
};
// With `paged`, the listing comes as several replies of bounded size (the
// last without "more"); without it, as one reply that the server may refuse
// with list_too_large. PROTOCOL.md 4.2. Version 2: `path` names the folder
// to list (empty: the root), and a `recursive` listing, always paged, holds
// every file and folder below it, named by their paths relative to `path`.
struct ListRequest {
    bool paged = false;
    std::string path{};
    bool recursive = false;
};
struct StatRequest {
    std::string name;
};
// `hash` names the transfer hash (PROTOCOL.md 4.1); digests travel under
// the hash's name ("sha256" or "xxh3-128" on the wire); the fields called
// `digest` below hold the digest of whichever hash the transfer uses.
struct GetRequest {
    std::string name;
    std::uint64_t offset = 0;
    HashKind hash = HashKind::sha256;
};
// Version 2: `parents` creates the missing folders of the path first, and
// `mtime` is the modification time the published file gets.
struct PutRequest {
    std::string name;
    std::uint64_t size = 0;
    bool resume = false;
    HashKind hash = HashKind::sha256;
    bool parents = false;
    std::optional<std::int64_t> mtime{};
    // The source file's permission bits (0 to 07777; PROTOCOL.md 4.5): a
    // new file is published as if created with this mode instead of 0666
    // (the set-ID and sticky bits never count); a replaced file keeps its
    // own. Absent: 0666, as before.
    std::optional<std::uint32_t> mode{};
    // With `parents`: the modes of the folders it makes (FolderModes).
    FolderModes folder_modes{};
};
struct CommitRequest {
    std::string digest;
    HashKind hash = HashKind::sha256;
    // Version 2 (PROTOCOL.md 4.5): false publishes only where nothing stands
    // at the name at the rename itself (`exists` otherwise), rename's
    // `replace` meaning; true, the default, replaces a file there.
    bool replace = true;
    // Version 2, capability "deferred_sync" (PROTOCOL.md 4.5, 4.14): the
    // server may answer before the folder that gains the name is synced;
    // the name is durable once a later `sync` request is answered ok.
    bool defer_sync = false;
    // Decoded only, when a commit carries the digests of several hashes:
    // each one that is a string, as sent, `hash` and `digest` being the first
    // of them (in offered_hash_names() order). Which one counts is the upload's own
    // hash's, whose form the server checks then; the others are ignored, as
    // unknown fields are (PROTOCOL.md 4.5). Empty for a commit of one digest,
    // whose form the decoder checks.
    std::vector<std::pair<HashKind, std::string>> digests{};
};

// The digest a commit carries for an upload checked with `kind`: its one
// digest, or among several the one of that hash; none if it has no such.
std::optional<std::string> commit_digest(const CommitRequest& commit, HashKind kind);
// The bad_request of a digest field of `kind` not in its form (64 or 32
// lowercase hex digits, PROTOCOL.md 4.5), or none.
std::optional<Error> check_digest_form(HashKind kind, std::string_view digest);
struct AbortRequest {
    bool discard = false;
};
struct StatsRequest {};
// The tree operations of version 2 (PROTOCOL.md 4.9 to 4.12).
struct MkdirRequest {
    std::string path;
    bool parents = false; // create missing parents, and an existing folder is no error
    FolderModes folder_modes{}; // the modes of the folders it makes (FolderModes)
};
// What a delete or a set_mtime expects to find at its path (PROTOCOL.md
// 4.11's and 4.13's "expect"): the entry as a listing described it (3.3). A
// file must still have that size and mtime; a folder is compared by its
// type alone, since its mtime changes as the entries listed in it change.
struct ExpectedEntry {
    EntryType type = EntryType::file;
    std::uint64_t size = 0; // a file's; not sent for a folder
    std::int64_t mtime = 0; // a file's; not sent for a folder
};
struct DeleteRequest {
    std::string path;
    bool recursive = false; // a folder with its contents, not only an empty one
    // Removed only if what stands at `path` is still this entry; never
    // with `recursive` (what a recursive delete takes was never listed).
    std::optional<ExpectedEntry> expect{};
};
struct RenameRequest {
    std::string from;
    std::string to;
    bool replace = false; // replace an existing `to` (a file, or an empty folder)
};
struct DigestRequest {
    std::string name;
    HashKind hash = HashKind::sha256;
};
// Gives a file or folder (or the root, "") a modification time, in seconds
// since the Unix epoch (PROTOCOL.md 4.13); the reply is a stat's.
struct SetMtimeRequest {
    std::string path;
    std::int64_t mtime = 0;
    // Set only if what stands at `path` is still this entry (a file found
    // equal by content must not lend its time to a file put there since).
    std::optional<ExpectedEntry> expect{};
};

// Makes durable every name this connection's commits published with
// `defer_sync` (PROTOCOL.md 4.14, version 2).
struct SyncRequest {};

using RequestBody =
    std::variant<HelloRequest, ListRequest, StatRequest, GetRequest, PutRequest, CommitRequest, AbortRequest,
                 StatsRequest, MkdirRequest, DeleteRequest, RenameRequest, DigestRequest, SetMtimeRequest, SyncRequest>;

// True for the operations that exist from version 2 on; a version-1
// connection answers them with unknown_op.
bool needs_version_2(const RequestBody& body);

struct Request {
    std::uint64_t id = 0;
    RequestBody body;
};

std::string_view op_name(const RequestBody& body);

// The id is kept even when the rest of the request is bad, so that the error
// reply can echo it.
struct ParsedRequest {
    std::optional<std::uint64_t> id;
    Result<Request> request;
};

// `version` is the connection's protocol version: under 2, the operations
// of version 2 are unknown_op whatever their fields, and the fields version 2
// adds to list and put are unknown fields, ignored (PROTOCOL.md 3.1, 8).
ParsedRequest parse_request(std::string_view json_text, std::uint32_t version = kMaxProtocolVersion);
std::string encode_request(const Request& request);

// ---- Replies (server to client) ---------------------------------------------

struct FileInfo {
    std::string name;
    std::uint64_t size = 0;
    std::int64_t mtime = 0; // seconds since the Unix epoch
    // Sent as "type" when set, which a server does on version-2 connections
    // only: a version-1 reply stays byte for byte what it was.
    std::optional<EntryType> type{};
    // The entry's permission bits (st_mode & 0777; PROTOCOL.md 3.3), sent as
    // "mode" on version-2 connections only, as `type`.
    std::optional<std::uint32_t> mode{};
};
// Leaves in `file` only what a reply of protocol `version` says of a file:
// version 1 has no mode (PROTOCOL.md 3.3), so its replies stay byte for byte.
void fit_to_version(FileInfo& file, std::uint32_t version);

// `version` is the version this connection speaks from now on: the highest
// the server shares with the client's hello.
struct HelloReply {
    std::uint32_t version = kMaxProtocolVersion;
    std::string server;
    std::vector<std::string> capabilities;
    std::vector<std::string> hashes;
    std::uint32_t max_control_frame = 0;
    std::uint32_t max_data_frame = 0;
    std::string access = "rw"; // "rw", or "ro" when puts are refused
    // Version 2: what the served file system holds of a modification time
    // (PROTOCOL.md 4.1), as ferryd probed it at start; absent where unknown
    // (an older server, or a root it could not probe): times then compare
    // exactly.
    std::optional<MtimeLimits> mtime_limits{};
};
// A folder a recursive listing could not enter, or not read in full
// (PROTOCOL.md 4.2, "unreadable_folders"): its path relative to the listed
// folder ("" for that folder itself) and the error a request for it would
// get: forbidden (EACCES, EPERM) or io_error (anything else).
struct UnreadableFolder {
    std::string path;
    ErrorCode code = ErrorCode::io_error;
};
// One reply to list; of a paged list, one page: `more` says another page
// follows, and only the last page carries skipped_invalid_names and
// skipped_too_deep (the totals).
struct ListReply {
    std::vector<FileInfo> files;
    std::uint64_t skipped_invalid_names = 0;
    // Version 2: entries left out because their path would pass the bounds
    // of PROTOCOL.md 5.1 (depth, bytes); such a folder is not entered.
    // Encoded only when not 0.
    std::uint64_t skipped_too_deep = 0;
    // Version 2 ("holding_unlisted" in hello's capabilities): the folders,
    // by path relative to the listed one ("" for itself), that directly
    // hold an entry this listing does not show (a hidden or invalid name, a
    // link, FIFO, socket or device, a mount point, an entry too deep, a
    // folder that cannot be read), which a recursive delete leaves in
    // place. Each on the page where its reading ended; encoded only when
    // not empty.
    std::vector<std::string> holding_unlisted;
    // Version 2 ("unreadable_folders" in hello's capabilities): the folders
    // this listing could not enter or read in full, so that a client never
    // takes one for empty (each is in holding_unlisted too, which keeps its
    // meaning for a recursive delete). Each on the page where its reading
    // ended; encoded only when not empty.
    std::vector<UnreadableFolder> unreadable_folders;
    bool more = false;
};
struct StatReply {
    FileInfo file;
};
// Sent before the data frames of a get.
struct GetReply {
    FileInfo file;
    std::uint64_t offset = 0;
};
// Ends a successful get: its size and the digest of the whole file.
struct Trailer {
    std::uint64_t size = 0;
    std::string digest;
    HashKind hash = HashKind::sha256;
};
// Accepts a put; data is expected from `offset` on. When resuming, the
// digest of the bytes the server already holds lets the client confirm them.
struct PutReply {
    std::uint64_t offset = 0;
    std::optional<std::string> prefix_digest;
    std::string token;
    HashKind hash = HashKind::sha256;
};
struct CommitReply {
    FileInfo file;
    std::string digest;
    HashKind hash = HashKind::sha256;
    // False for a commit whose `defer_sync` the server took: published, but
    // its folder's entry is durable only once a `sync` is answered ok
    // (PROTOCOL.md 4.5). Sent only when false.
    bool synced = true;
};
struct AbortReply {
    bool kept = false;
    std::uint64_t offset = 0;
};
struct MkdirReply {
    std::string path;
    bool created = false; // false: the folder was there (a mkdir with parents)
};
// What a delete removed: `type` of the path itself, and how many files and
// folders went (the path itself included).
struct DeleteReply {
    std::string path;
    EntryType type = EntryType::file;
    std::uint64_t files = 0;
    std::uint64_t folders = 0;
};
struct RenameReply {
    std::string from;
    std::string to;
};
// How many folders a sync made durable (each once, however many names the
// connection's deferred commits published into it).
struct SyncReply {
    std::uint64_t folders = 0;
};
struct DigestReply {
    FileInfo file;
    std::string digest;
    HashKind hash = HashKind::sha256;
};
// What the server has done since it started; see PROTOCOL.md 4.8.
struct StatsReply {
    std::uint64_t uptime_seconds = 0;
    std::uint64_t connections_now = 0;
    std::uint64_t connections_total = 0;
    std::uint64_t transfers_now = 0;
    std::uint64_t transfers_total = 0;
    std::uint64_t bytes_in = 0;                  // file bytes received by puts
    std::uint64_t bytes_out = 0;                 // file bytes sent by gets
    std::map<std::string, std::uint64_t> errors; // error replies sent, by code
};

std::string encode_reply(std::uint64_t id, const HelloReply& reply);
std::string encode_reply(std::uint64_t id, const ListReply& reply);
std::string encode_reply(std::uint64_t id, const StatReply& reply);
std::string encode_reply(std::uint64_t id, const GetReply& reply);
std::string encode_reply(std::uint64_t id, const Trailer& reply);
std::string encode_reply(std::uint64_t id, const PutReply& reply);
std::string encode_reply(std::uint64_t id, const CommitReply& reply);
std::string encode_reply(std::uint64_t id, const AbortReply& reply);
std::string encode_reply(std::uint64_t id, const StatsReply& reply);
std::string encode_reply(std::uint64_t id, const MkdirReply& reply);
std::string encode_reply(std::uint64_t id, const DeleteReply& reply);
std::string encode_reply(std::uint64_t id, const RenameReply& reply);
std::string encode_reply(std::uint64_t id, const DigestReply& reply);
std::string encode_reply(std::uint64_t id, const SyncReply& reply);
// An error reply; without an id (the request's could not be read) it is null.
std::string encode_error(std::optional<std::uint64_t> id, const Error& error);

template <typename T>
struct Reply {
    std::uint64_t id = 0;
    T body;
};

// Each parses a server message expected to be that reply. An error message
// from the server comes back as its Error; a malformed one as bad_json or
// bad_request.
Result<Reply<HelloReply>> parse_hello_reply(std::string_view json_text);
Result<Reply<ListReply>> parse_list_reply(std::string_view json_text);
Result<Reply<StatReply>> parse_stat_reply(std::string_view json_text);
Result<Reply<GetReply>> parse_get_reply(std::string_view json_text);
Result<Reply<Trailer>> parse_trailer(std::string_view json_text);
Result<Reply<PutReply>> parse_put_reply(std::string_view json_text);
Result<Reply<CommitReply>> parse_commit_reply(std::string_view json_text);
Result<Reply<AbortReply>> parse_abort_reply(std::string_view json_text);
Result<Reply<StatsReply>> parse_stats_reply(std::string_view json_text);
Result<Reply<MkdirReply>> parse_mkdir_reply(std::string_view json_text);
Result<Reply<DeleteReply>> parse_delete_reply(std::string_view json_text);
Result<Reply<RenameReply>> parse_rename_reply(std::string_view json_text);
Result<Reply<DigestReply>> parse_digest_reply(std::string_view json_text);
Result<Reply<SyncReply>> parse_sync_reply(std::string_view json_text);

// What a reader of replies needs before it trusts a message's fields: the
// id it answers (absent when missing, null or not an integer) and whether
// it is a well-formed error reply (ok:false with an "error" object whose
// code and message are strings). A client compares the id first, and takes
// any other parse failure of a reply as the server breaking the protocol:
// bad_json and bad_request from the parsers above mean that for a reply,
// while for a request (parsed with the same field rules) they are the
// client's fault.
struct ReplyHead {
    std::optional<std::uint64_t> id;
    bool server_error = false;
};
ReplyHead read_reply_head(std::string_view json_text);

} // namespace ferry
