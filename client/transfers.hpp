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
};

inline constexpr std::chrono::seconds kMaxRetryDelay{30};

// The wait before retry number `attempt` (1 for the first).
std::chrono::milliseconds retry_delay(unsigned attempt);

// Each returns the command's exit status (status.hpp): 0 when every file
// made it. For people: each file's result or error as it ends, and with
// several a closing summary; with --json one object for the whole command,
// whatever the number of files (docs/ferry-json.schema.json).
int run_gets(Connection& connection, const Output& output, const std::vector<std::string>& names,
             const GetPlacement& placement, const TransferFlags& flags);
// `as` names the one file on the server (default: each local file's name).
// A LOCAL of "-" is standard input, read to its end into a private
// temporary file first (a put declares its size before the data).
int run_puts(Connection& connection, const Output& output, const std::vector<std::string>& locals,
             const std::optional<std::string>& as, const TransferFlags& flags);

inline int run_gets(Connection& connection, const Output& output, const std::vector<std::string>& names,
                    const GetPlacement& placement, bool resume, HashKind hash)
{
    return run_gets(connection, output, names, placement, TransferFlags{resume, hash, Clobber::replace, 0});
}
inline int run_puts(Connection& connection, const Output& output, const std::vector<std::string>& locals,
                    const std::optional<std::string>& as, bool resume, HashKind hash)
{
    return run_puts(connection, output, locals, as, TransferFlags{resume, hash, Clobber::replace, 0});
}

// A get or put that could not start (no connection): every file failed with
// `error`, shown in the command's usual shape. `names` are on the server,
// `locals` the local paths. Returns the exit status.
int report_unstarted(const Output& output, const std::vector<std::string>& names,
                     const std::vector<std::string>& locals, const Error& error, bool upload);

} // namespace ferry::client
