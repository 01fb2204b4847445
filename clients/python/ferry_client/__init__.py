"""ferry_client: a Python client of the Ferry file-transfer protocol.

    import ferry_client
    with ferry_client.connect("files.example:7021", token="...", ca="ca.pem") as ferry:
        for entry in ferry.list():
            print(entry.name, entry.size)
        ferry.get("report.pdf", "report.pdf")        # verified, published atomically
        ferry.put("notes.txt")                        # verified by the server, resumable

Standard library only (xxh3-128 needs the optional xxhash module). The
protocol is docs/PROTOCOL.md of the Ferry project; the exceptions and the
error codes they carry are listed in ferry_client.errors.
"""

from .client import (CLIENT_NAME, DEFAULT_PORT, VERSION, Client, Deleted, Digest, Download, Entry, Listing,
                     MtimeLimits, Transfer, Upload, __version__, connect, parse_address, parse_pin, tls_context)
from .errors import (AuthError, Conflict, ConnectionLost, FerryError, IntegrityError, InvalidName, LocalIOError,
                     NotFerry, NotFound, ProtocolError, Retryable, ServerError, ServerLimit, StorageError,
                     TLSError, UnsupportedHash, UnsupportedVersion, WrongType, closes_connection, error_class)
from .hashes import SHA256, XXH3_128

__all__ = [
    "AuthError", "CLIENT_NAME", "Client", "Conflict", "ConnectionLost", "DEFAULT_PORT", "Deleted", "Digest",
    "Download", "Entry", "FerryError", "IntegrityError", "InvalidName", "Listing", "LocalIOError", "MtimeLimits",
    "NotFerry", "NotFound", "ProtocolError", "Retryable", "SHA256", "ServerError", "ServerLimit", "StorageError",
    "TLSError", "Transfer", "UnsupportedHash", "UnsupportedVersion", "Upload", "VERSION", "WrongType", "XXH3_128",
    "__version__", "closes_connection", "connect", "error_class", "parse_address", "parse_pin", "tls_context",
]
