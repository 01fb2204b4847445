// Ferry's one error vocabulary: a stable code plus a human message. The same
// pair travels on the wire, goes to the logs and is printed by the client.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace ferry {

// Stable codes; their wire spelling (to_string) is part of docs/PROTOCOL.md.
// Append new codes, never renumber or rename: clients match on the spelling.
enum class ErrorCode {
    bad_frame,           // framing is broken (unknown frame kind); connection closes
    frame_too_large,     // control frame over the announced limit; connection closes
    bad_json,            // control frame is not a JSON object
    bad_request,         // a field is missing, has the wrong type or a bad value
    unknown_op,          // "op" names no operation
    unsupported_version, // hello asked for a protocol version we do not speak; closes
    hello_required,      // first request was not hello
    unexpected_frame,    // a data frame, commit or abort outside an upload
    invalid_name,        // not a plain, valid file name
    not_found,           // no regular file by that name
    not_regular_file,    // the name exists but is a folder, symlink, FIFO, device
    bad_offset,          // get offset past the end of the file
    size_mismatch,       // upload data longer or shorter than the declared size
    hash_mismatch,       // the bytes do not hash to the digest the sender gave
    busy,                // another connection is resuming the same partial upload
    no_space,            // the disk (or a quota) is full
    io_error,            // any other file system failure
    internal,            // a bug or resource exhaustion in the server
    aborted,             // the transfer was abandoned by the peer or the server
    shutting_down,       // the server is stopping and takes no new work
    connection_lost,     // client side only: the server went away
    local_io,            // client side only: a local file could not be read/written
    server_full,         // the server holds its maximum of connections; closes
    address_limit,       // this client address holds its maximum of connections; closes
    idle_timeout,        // no request for too long; closes
    stalled,             // a frame or transfer made no progress for too long; closes
    upload_too_large,    // put size over the server's maximum; closes
    too_many_transfers,  // the server runs its maximum of transfers; closes
    unauthorized,        // hello without a valid token where the server needs one; closes
    forbidden,           // a put on a read-only server or with a read-only token
    tls_required,        // a plaintext client on a server that requires TLS; closes
    not_ferry,           // client side only: the peer does not speak the Ferry protocol
    tls_failed,          // client side only: the server's certificate is not trusted, or it speaks no TLS
    file_changed,        // a get's file changed while it was sent: no trailer vouches for the bytes
    list_too_large,      // a list without "paged" whose reply would exceed the server's cap
    too_slow,            // a transfer below the minimum rate lost its slot to a waiting one; closes
    too_many_errors,     // the peer made more protocol errors than the server allows; closes
    root_unavailable,    // the served folder is gone (deleted, or no longer a folder)
    not_empty,           // a folder to delete or to rename over holds entries
    exists,              // mkdir or rename onto a path that is already taken
    not_a_folder,        // a path's parent, or a list's path, is not a folder
    invalid_move,        // a rename of a folder into itself or its own subfolder
    name_clash,          // client side only: two files of one download would share a local name
};

std::string_view to_string(ErrorCode code);
std::optional<ErrorCode> error_code_from_string(std::string_view text);

// True for the codes after which the server closes the connection: the byte
// stream can no longer be trusted to be in sync, or the peer is not one we serve.
bool closes_connection(ErrorCode code);

struct Error {
    ErrorCode code;
    std::string message;
    // Whose paths `message` names: true where the client made the error
    // about its own files. Anything that rewrites the server's paths in a
    // message (the ferry shell names them from its current folder) must
    // leave these alone, even where a local path reads like a server one.
    // Never on the wire: a peer's error names the peer's paths.
    bool about_local_files = false;
    // Client side only, never on the wire either: the errno of the local
    // system call that failed (client/status.hpp's local_error), 0 where
    // none did. It lets a caller tell a path that no longer leads where it
    // did (ENOENT, ENOTDIR, ELOOP) from one it could not open (EMFILE,
    // EACCES, EIO), which say nothing about a change.
    int local_errno = 0;
};

// A minimal result type (std::expected is C++23): either a value or an Error.
template <typename T>
class Result {
public:
    Result(T value) : state_(std::move(value)) {}
    Result(Error error) : state_(std::move(error)) {}

    bool ok() const { return state_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() { return std::get<0>(state_); }
    const T& value() const { return std::get<0>(state_); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() { return value(); }
    const T& operator*() const { return value(); }
    const Error& error() const { return std::get<1>(state_); }

private:
    std::variant<T, Error> state_;
};

} // namespace ferry
