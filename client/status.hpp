// Small helpers shared by the client's files: a Result without a value and
// the two client-only error shapes (a local file problem, a lost server).
#pragma once

#include "error.hpp"

#include <string>
#include <variant>

namespace ferry::client {

// The outcome of an action that yields nothing but success or an Error.
using Status = Result<std::monostate>;

inline Status success()
{
    return std::monostate{};
}

// `what` followed by strerror(err): "cannot open \"a.txt\": No such file or directory".
Error local_error(const std::string& what, int err);

// The server broke docs/PROTOCOL.md (a reply with the wrong id, too many
// data bytes...). Reported as `internal`, which clients treat like an unknown code.
Error protocol_error(const std::string& what);

} // namespace ferry::client
