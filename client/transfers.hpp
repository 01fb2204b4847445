// Several gets or puts in one command over one connection, with one summary
// at the end. Gets are pipelined: a few requests wait at the server so that
// the next file starts without a round trip (PROTOCOL.md 1 and 4.4). A put's
// data may only follow its reply, so puts overlap where the protocol lets
// them: the next put request goes out right behind the commit, while the
// server syncs and hashes. One failed file does not stop the others; a lost
// connection is reopened for the files still to come.
#pragma once

#include "connection.hpp"
#include "output.hpp"

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

// Each returns true when every file made it. With one file the output is
// that file's result or error, as it always was; with several, a line per
// file and a summary (one JSON object in all with --json).
bool run_gets(Connection& connection, const Output& output, const std::vector<std::string>& names,
              const GetPlacement& placement, bool resume, HashKind hash);
// `as` names the one file on the server (default: each local file's name).
bool run_puts(Connection& connection, const Output& output, const std::vector<std::string>& locals,
              const std::optional<std::string>& as, bool resume, HashKind hash);

} // namespace ferry::client
