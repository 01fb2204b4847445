// Small helpers shared by the client's files: a Result without a value and
// the two client-only error shapes (a local file problem, a lost server).
#pragma once

#include "error.hpp"

#include <span>
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
// About a local file (Error::about_local_files).
Error local_error(const std::string& what, int err);

// Whether a local_error's failed call tells of the process or the disk
// (EMFILE, EACCES, EIO...) rather than of its path no longer leading where
// it did (ENOENT, ENOTDIR, ELOOP: a link, not followed; ESTALE). False for
// an error of no system call (Error::local_errno 0).
bool failed_without_change(const Error& error);

// An error whose message names local files only (Error::about_local_files):
// ferry's shell rewrites none of its paths as server paths.
Error about_local_files(ErrorCode code, std::string message);

// The server broke docs/PROTOCOL.md (a reply with the wrong id, too many
// data bytes...). Reported as `internal`, which clients treat like an unknown code.
Error protocol_error(const std::string& what);

// ferry's exit statuses (README "Exit status", ferry(1)): like curl's and
// rsync's, they tell a script whether trying again can help.
enum ExitStatus : int {
    kExitOk = 0,
    kExitMixed = 1,     // several files failed in different ways: see each file's error
    kExitUsage = 2,     // bad arguments, address or configuration: fix the command
    kExitLocal = 3,     // a local file could not be read or written
    kExitRefused = 4,   // the server refused the request (not_found, forbidden...): give up
    kExitTrust = 5,     // token or TLS trust refused either way: fix the credentials
    kExitTransient = 6, // the network, a busy or stopping server, a stall: try again
    kExitNoSpace = 7,   // a disk is full (the server's or ours)
    kExitProtocol = 8,  // the peer is not ferryd, or broke the protocol
    kExitInterrupted = 130, // also the status of a death by SIGINT, which is how ferry ends on Ctrl-C
};

// The one mapping from an error code to its exit status.
int exit_status(ErrorCode code);
// Of a command's failures: 0 for none, the shared status when all have the
// same one, else kExitMixed.
int exit_status(std::span<const ErrorCode> failures);

} // namespace ferry::client
