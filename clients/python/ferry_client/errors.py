"""The exceptions of ferry_client: one class per family of error codes.

Every exception carries the wire ``code`` (PROTOCOL.md section 6, or one of
the client-side codes below, which never travel on the wire) and the
human ``message``. ``reply`` is the server's error object as received
(``{"id": ..., "ok": false, "error": {...}}``), or None for an error found
on this side.

==================  ============================================================
class               codes
==================  ============================================================
ProtocolError       bad_frame, frame_too_large, bad_json, bad_request,
                    unknown_op, hello_required, unexpected_frame,
                    too_many_errors; and ``internal`` raised locally when the
                    server breaks the protocol
UnsupportedVersion  unsupported_version (also raised locally for a folder
                    operation on a version-1 connection)
NotFerry            not_ferry (local: the peer is no Ferry server)
AuthError           unauthorized, forbidden
TLSError            tls_required, tls_failed (local: certificate not trusted,
                    pin mismatch, or the peer speaks no TLS)
NotFound            not_found
InvalidName         invalid_name
WrongType           not_regular_file, not_a_folder
Conflict            exists, not_empty, invalid_move, bad_offset
IntegrityError      hash_mismatch, file_changed, size_mismatch
Retryable           busy, server_full, address_limit, too_many_transfers,
                    too_slow, stalled, idle_timeout, shutting_down,
                    root_unavailable; ``busy`` also raised locally when a
                    download's part or target is held locked by another
                    download (or program)
ServerLimit         upload_too_large, list_too_large
StorageError        no_space, io_error
ServerError         internal, and any code this library does not know
ConnectionLost      connection_lost (local: the server went away, or a
                    socket operation passed the timeout)
LocalIOError        local_io (local: a local file could not be read or
                    written, or a name holds what is not ferry's; not a
                    lock another download holds: that is busy); also an
                    OSError
UnsupportedHash     unsupported_hash (local: the hash is not offered by the
                    server, or xxh3-128 without the xxhash module); also a
                    ValueError
==================  ============================================================

All of them derive from FerryError, so ``except FerryError`` catches every
failure of a Ferry operation. ``closes_connection(code)`` says which codes
end the connection (the "connection" column of section 6).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from .names import printable


class FerryError(Exception):
    """Base of every ferry_client error.

    Attributes:
        code (str): the stable error code (PROTOCOL.md section 6, or local).
        message (str): the human-readable text; may change between versions.
        reply (Mapping | None): the server's whole error frame, if any.
    """

    codes: frozenset[str] = frozenset()

    def __init__(self, code: str, message: str, reply: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.reply = reply


class ProtocolError(FerryError):
    """A frame or request one side should not have sent."""

    codes = frozenset({"bad_frame", "frame_too_large", "bad_json", "bad_request", "unknown_op",
                       "hello_required", "unexpected_frame", "too_many_errors"})


class UnsupportedVersion(ProtocolError):
    """The server does not speak the protocol version (or the operation
    needs version 2 and the connection speaks 1)."""

    codes = frozenset({"unsupported_version"})


class NotFerry(ProtocolError):
    """The peer answered hello with bytes that are no Ferry frame."""

    codes = frozenset({"not_ferry"})


class AuthError(FerryError):
    """No valid token (unauthorized), or no right to change files (forbidden)."""

    codes = frozenset({"unauthorized", "forbidden"})


class TLSError(FerryError):
    """The server requires TLS, or its certificate is not trusted by the CA
    file, does not match the pin, or it speaks no TLS."""

    codes = frozenset({"tls_required", "tls_failed"})


class NotFound(FerryError):
    """No file or folder by that name."""

    codes = frozenset({"not_found"})


class InvalidName(FerryError):
    """The name or path breaks PROTOCOL.md section 5."""

    codes = frozenset({"invalid_name"})


class WrongType(FerryError):
    """The name is not a regular file, or a path component is not a folder."""

    codes = frozenset({"not_regular_file", "not_a_folder"})


class Conflict(FerryError):
    """The request does not fit what is there now: the target exists (a
    mkdir, a rename without replace, a put with replace=False), a folder is
    not empty, a folder moves into itself, or a get offset is past the end
    of the file."""

    codes = frozenset({"exists", "not_empty", "invalid_move", "bad_offset"})


class IntegrityError(FerryError):
    """The bytes cannot be trusted: a digest differs, the file changed while
    it was sent, or an upload's length was not its declared size; or a
    delete's path no longer holds the entry it expected (file_changed)."""

    codes = frozenset({"hash_mismatch", "file_changed", "size_mismatch"})


class Retryable(FerryError):
    """A refusal that passes: try again after a moment (on a new
    connection, when the code closed this one). ``busy`` comes from the
    server (another upload of the file) or from this side: a get's part or
    destination that another download (or program) holds locked, left as
    it is (``reply`` None); it is free once that download is over."""

    codes = frozenset({"busy", "server_full", "address_limit", "too_many_transfers", "too_slow",
                       "stalled", "idle_timeout", "shutting_down", "root_unavailable"})


class ServerLimit(FerryError):
    """Over a limit the server's operator set (upload size, list size)."""

    codes = frozenset({"upload_too_large", "list_too_large"})


class StorageError(FerryError):
    """The server's disk is full or failed."""

    codes = frozenset({"no_space", "io_error"})


class ServerError(FerryError):
    """A server bug (internal), or a code this library does not know."""

    codes = frozenset({"internal"})


class ConnectionLost(FerryError):
    """The connection ended, was reset, or a socket operation timed out."""

    codes = frozenset({"connection_lost"})

    def __init__(self, message: str) -> None:
        super().__init__("connection_lost", message)


class LocalIOError(FerryError, OSError):
    """A local file could not be read or written (the OSError is chained)."""

    codes = frozenset({"local_io"})

    def __init__(self, message: str) -> None:
        FerryError.__init__(self, "local_io", message)


class UnsupportedHash(FerryError, ValueError):
    """A transfer hash the server does not offer, or xxh3-128 without the
    optional xxhash module (Debian: python3-xxhash)."""

    codes = frozenset({"unsupported_hash"})

    def __init__(self, message: str) -> None:
        FerryError.__init__(self, "unsupported_hash", message)


_FAMILIES: tuple[type[FerryError], ...] = (
    ProtocolError, UnsupportedVersion, NotFerry, AuthError, TLSError, NotFound, InvalidName, WrongType,
    Conflict, IntegrityError, Retryable, ServerLimit, StorageError, ServerError)
_BY_CODE: dict[str, type[FerryError]] = {code: cls for cls in _FAMILIES for code in cls.codes}

# PROTOCOL.md section 6: the codes after which the server closes the
# connection (size_mismatch, no_space and io_error only while data arrives).
_CLOSING = frozenset({
    "bad_frame", "frame_too_large", "unsupported_version", "shutting_down", "server_full",
    "address_limit", "idle_timeout", "stalled", "upload_too_large", "too_many_transfers",
    "unauthorized", "tls_required", "too_slow", "too_many_errors"})


def error_class(code: str) -> type[FerryError]:
    """The class raised for a wire ``code``; ServerError for an unknown one
    (PROTOCOL.md section 6: treat an unknown code like internal)."""
    return _BY_CODE.get(code, ServerError)


def malformed_error(reply: Mapping[str, Any]) -> Optional[str]:
    """Why a frame that is no success breaks PROTOCOL.md 3.2, if it does:
    ``ok`` false, an ``id`` (null allowed), and an ``error`` object of a
    string ``code`` and a string ``message``."""
    if reply.get("ok") is not False:
        return f"ok is {reply.get('ok')!r}, not true or false"
    if "id" not in reply:
        return "an error reply without an id"
    error = reply.get("error")
    if not isinstance(error, Mapping) or not isinstance(error.get("code"), str) \
            or not isinstance(error.get("message"), str):
        return "an error without a code and a message"
    return None


def from_reply(reply: Mapping[str, Any]) -> FerryError:
    """The exception for an ``{"ok": false}`` frame of the server; one
    that breaks 3.2 (malformed_error) is ProtocolError("internal")."""
    why = malformed_error(reply)
    if why is not None:
        return ProtocolError("internal", f"the server broke the protocol: {why}: {reply!r}", reply)
    code, message = reply["error"]["code"], reply["error"]["message"]
    # A program prints these to a terminal (the README's examples do): a
    # server's controls and format characters become \u{XXXX}, as in every
    # name this library shows (PROTOCOL.md 4.2). ``reply`` keeps them raw.
    return error_class(code)(printable(code), printable(message), reply)


def closes_connection(code: str) -> bool:
    """True for the codes after which the server always closes the connection."""
    return code in _CLOSING
