#include "status.hpp"

#include <cerrno>
#include <cstring>
#include <utility>

namespace ferry::client {

Error local_error(const std::string& what, int err)
{
    // A full local disk is reported like a full server disk: a script
    // reacts to both the same way (exit status 7).
    const ErrorCode code = err == ENOSPC || err == EDQUOT ? ErrorCode::no_space : ErrorCode::local_io;
    Error error = about_local_files(code, what + ": " + std::strerror(err));
    error.local_errno = err;
    return error;
}

bool failed_without_change(const Error& error)
{
    switch (error.local_errno) {
    case 0:       // no system call failed: the caller's own finding
    case ENOENT:  // gone
    case ENOTDIR: // a file where a folder was
    case ELOOP:   // a symbolic link, not followed (O_NOFOLLOW)
    case ESTALE:  // replaced through another mount of a network file system
        return false;
    default:
        return true;
    }
}

Error about_local_files(ErrorCode code, std::string message)
{
    return Error{code, std::move(message), true};
}

Error protocol_error(const std::string& what)
{
    return Error{ErrorCode::internal, "the server broke the protocol: " + what};
}

int exit_status(ErrorCode code)
{
    switch (code) {
    case ErrorCode::local_io:
        return kExitLocal;
    // A request that could never succeed as written: a bad flag, address
    // (one no resolver knows included) or config file, as the README's
    // table of exit statuses says; not a refusal of the server's.
    case ErrorCode::bad_request:
        return kExitUsage;
    case ErrorCode::unknown_op:
    case ErrorCode::invalid_name:
    case ErrorCode::not_found:
    case ErrorCode::not_regular_file:
    case ErrorCode::bad_offset:
    case ErrorCode::size_mismatch:
    case ErrorCode::upload_too_large:
    case ErrorCode::forbidden:
    case ErrorCode::list_too_large:
    case ErrorCode::not_empty:
    case ErrorCode::exists:
    case ErrorCode::not_a_folder:
    case ErrorCode::invalid_move:
    case ErrorCode::name_clash:
        return kExitRefused;
    case ErrorCode::unauthorized:
    case ErrorCode::tls_required:
    case ErrorCode::tls_failed:
        return kExitTrust;
    // A hash mismatch is a file that changed (or bytes damaged) in transit:
    // a new transfer normally succeeds. io_error covers the server running
    // out of descriptors, which passes too.
    case ErrorCode::hash_mismatch:
    case ErrorCode::file_changed:
    case ErrorCode::busy:
    case ErrorCode::io_error:
    case ErrorCode::aborted:
    case ErrorCode::shutting_down:
    case ErrorCode::connection_lost:
    case ErrorCode::server_full:
    case ErrorCode::address_limit:
    case ErrorCode::idle_timeout:
    case ErrorCode::stalled:
    case ErrorCode::too_many_transfers:
    case ErrorCode::too_slow:
    // The server's folder is gone until its operator puts it back.
    case ErrorCode::root_unavailable:
        return kExitTransient;
    case ErrorCode::no_space:
        return kExitNoSpace;
    case ErrorCode::bad_frame:
    case ErrorCode::frame_too_large:
    case ErrorCode::bad_json:
    case ErrorCode::unsupported_version:
    case ErrorCode::hello_required:
    case ErrorCode::unexpected_frame:
    case ErrorCode::internal:
    case ErrorCode::not_ferry:
    case ErrorCode::too_many_errors:
        return kExitProtocol;
    }
    return kExitProtocol;
}

int exit_status(std::span<const ErrorCode> failures)
{
    if (failures.empty()) {
        return kExitOk;
    }
    const int first = exit_status(failures.front());
    for (const ErrorCode code : failures) {
        if (exit_status(code) != first) {
            return kExitMixed;
        }
    }
    return first;
}

} // namespace ferry::client
