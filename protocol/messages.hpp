// One struct per message of docs/PROTOCOL.md and its JSON mapping. JSON stays
// behind this header: callers see typed structs and ferry::Error only.
#pragma once

#include "error.hpp"
#include "transfer_hash.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ferry {

inline constexpr std::uint32_t kProtocolVersion = 1;

// ---- Requests (client to server) -------------------------------------------

struct HelloRequest {
    std::uint32_t version = kProtocolVersion;
    std::string client;
    std::string token; // empty: none sent
};
// With `paged`, the listing comes as several replies of bounded size (the
// last without "more"); without it, as one reply that the server may refuse
// with list_too_large. PROTOCOL.md 4.2.
struct ListRequest {
    bool paged = false;
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
struct PutRequest {
    std::string name;
    std::uint64_t size = 0;
    bool resume = false;
    HashKind hash = HashKind::sha256;
};
struct CommitRequest {
    std::string digest;
    HashKind hash = HashKind::sha256;
};
struct AbortRequest {
    bool discard = false;
};
struct StatsRequest {};

using RequestBody = std::variant<HelloRequest, ListRequest, StatRequest, GetRequest, PutRequest, CommitRequest,
                                 AbortRequest, StatsRequest>;

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

ParsedRequest parse_request(std::string_view json_text);
std::string encode_request(const Request& request);

// ---- Replies (server to client) ---------------------------------------------

struct FileInfo {
    std::string name;
    std::uint64_t size = 0;
    std::int64_t mtime = 0; // seconds since the Unix epoch
};

struct HelloReply {
    std::uint32_t version = kProtocolVersion;
    std::string server;
    std::vector<std::string> capabilities;
    std::vector<std::string> hashes;
    std::uint32_t max_control_frame = 0;
    std::uint32_t max_data_frame = 0;
    std::string access = "rw"; // "rw", or "ro" when puts are refused
};
// One reply to list; of a paged list, one page: `more` says another page
// follows, and only the last page carries skipped_invalid_names (the total).
struct ListReply {
    std::vector<FileInfo> files;
    std::uint64_t skipped_invalid_names = 0;
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
};
struct AbortReply {
    bool kept = false;
    std::uint64_t offset = 0;
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

} // namespace ferry
