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
#include "messages.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace ferry::client {

// Called as bytes move, with the file's bytes done so far (those of a
// resumed transfer's earlier part included) and its total size.
using ProgressFn = std::function<void(std::uint64_t done, std::uint64_t total)>;

inline constexpr std::uint64_t kDownloadCheckpointInterval = 64 * 1024 * 1024;

Result<ListReply> list_files(Connection& connection);
Result<FileInfo> stat_file(Connection& connection, const std::string& name);

struct GetOptions {
    std::string name;
    std::string dest; // the final local path (see resolve_download_path)
    bool resume = false;
    ProgressFn progress;
    std::uint64_t checkpoint_interval = kDownloadCheckpointInterval;
    // Stop as if interrupted once the part file holds this many bytes: its
    // state is recorded and the result is an `aborted` error. For tests of
    // resume; the command line never sets it.
    std::optional<std::uint64_t> stop_after;
};

struct GetResult {
    FileInfo file;
    std::string path;
    std::string sha256;
    std::uint64_t resumed_from = 0;
};

// Downloads into <dest>.ferry-part (recording <dest>.ferry-part.state as it
// goes), checks the trailer's SHA-256 against the whole result, then renames
// it onto dest. Never creates or replaces dest with anything unverified.
Result<GetResult> get_file(Connection& connection, const GetOptions& options);

struct PutOptions {
    std::string local_path;
    std::string name;
    bool resume = false;
    ProgressFn progress;
};

struct PutResult {
    FileInfo file;
    std::string sha256;
    std::uint64_t resumed_from = 0;
};

// Uploads a local regular file under `name` and commits it with the
// SHA-256 of the whole file. With `resume`, continues a kept upload after
// checking the server's prefix hash against the local file's beginning.
Result<PutResult> put_file(Connection& connection, const PutOptions& options);

} // namespace ferry::client
