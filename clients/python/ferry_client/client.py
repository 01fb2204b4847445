"""The Ferry client: connect(), Client and what its operations return.

Every method cites the PROTOCOL.md section it speaks. Sizes and offsets are
in bytes, times (mtime) in whole seconds since 1970-01-01 UTC, timeouts in
seconds. A Client is not thread-safe: use one per thread.
"""

from __future__ import annotations

import collections
import hashlib
import io
import math
import os
import pathlib
import socket
import ssl
import time
import weakref
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, Callable, Iterator, Optional, TypeVar, Union

from . import hashes, local
from .errors import (Conflict, ConnectionLost, FerryError, IntegrityError, LocalIOError, NotFerry, NotFound,
                     ProtocolError, Retryable, TLSError, UnsupportedHash, UnsupportedVersion, WrongType, closes_connection,
                     from_reply)
from .listing_check import ListingCheck
from .names import quoted
from .wire import CHUNK, MAX_DATA, FrameChannel, Transport

__version__ = "0.1.0"
DEFAULT_PORT = 7021
VERSION = 2                       # the highest protocol version this library speaks
CLIENT_NAME = f"ferry_client/{__version__}"
# Right after an upload was cut, the server may still be keeping it for a
# resume on the old connection, and a put of it meanwhile is `busy`
# (PROTOCOL.md 4.7: "retry after a moment"). put() retries for this long,
# every BUSY_RETRY_INTERVAL seconds, as `ferry put` does; a put still busy
# after it is another upload in progress, and is left to it.
BUSY_PATIENCE = 5.0
BUSY_RETRY_INTERVAL = 0.2

PathLike = Union[str, "os.PathLike[str]"]
# A path on the server: a str, or a pure path (pathlib) spelled with "/".
RemotePath = Union[str, "os.PathLike[str]"]
Parsed = TypeVar("Parsed")
Progress = Callable[[int, int], None]   # (bytes of the file held, its whole size)


# ---------------------------------------------------------------- results

@dataclass(frozen=True)
class Entry:
    """A file or folder (PROTOCOL.md 3.3; ``type`` is version 2's, always
    "file" on a version-1 connection). ``name`` is the entry's name, or in a
    recursive listing its path below the folder listed. ``mode``: its
    permission bits (``st_mode & 0o777``, 0o644 is 420) where the server
    sends them (a version-2 server whose hello lists "mode"), else None."""

    name: str
    size: int
    mtime: int
    type: str = "file"
    mode: Optional[int] = None

    @property
    def is_folder(self) -> bool:
        return self.type == "folder"


@dataclass(frozen=True)
class Transfer:
    """What a finished get or put did.

    Attributes: name (remote), size (bytes of the whole file), mtime (the
    remote file's, seconds), offset (where the bytes sent began: > 0 after a
    resume), hash (its name) and digest (hex, of the whole file, verified),
    path (the local file, when there was one), reply and trailer (the
    server's start reply and its trailer or commit reply, as received),
    mtime_asked (a put's ``mtime`` argument, None without one), mode (the
    remote file's permission bits, as Entry's: a get's from its reply, a
    put's as published, from the commit reply; None where the server
    sends none).

    A put's ``mtime`` is what the server's file system holds: where it
    cannot hold the time asked (``Client.mtime_limits``), the time clamped
    or rounded, and ``mtime_kept`` is then False."""

    name: str
    size: int
    mtime: int
    offset: int
    hash: str
    digest: str
    path: Optional[str] = None
    reply: dict[str, Any] = field(default_factory=dict, repr=False)
    trailer: dict[str, Any] = field(default_factory=dict, repr=False)
    mtime_asked: Optional[int] = None
    mode: Optional[int] = None

    @property
    def mtime_kept(self) -> bool:
        """False when a put asked for a modification time that the server's
        file system could not hold (it holds ``mtime`` instead)."""
        return self.mtime_asked is None or self.mtime_asked == self.mtime


@dataclass(frozen=True)
class Digest:
    """A remote file's digest (the ``digest`` operation, version 2);
    ``mode`` as Entry's."""

    name: str
    size: int
    mtime: int
    hash: str
    digest: str
    mode: Optional[int] = None


@dataclass(frozen=True)
class Deleted:
    """What a delete removed: ``type`` of the path ("file" or "folder") and
    the counts of files and folders removed (the folder itself included)."""

    path: str
    type: str
    files: int
    folders: int


# The ranges of PROTOCOL.md 3.1: an mtime is signed, every other integer unsigned.
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1
# The largest "mode" (PROTOCOL.md 3.3, 4.5): 07777, the permission bits with
# the set-user-ID, set-group-ID and sticky bits.
MODE_MAX = 0o7777


@dataclass(frozen=True)
class MtimeLimits:
    """What the server's file system holds of a modification time (hello's
    ``mtime_limits``, PROTOCOL.md 4.1): it clamps a time into ``min`` ..
    ``max`` (whole seconds since 1970, signed) and rounds it down, toward
    the past, to a multiple of ``step`` (seconds, at least 1). ext4 holds
    1901 to 2446 in steps of 1, FAT 1980 to 2107 in steps of 2."""

    min: int
    max: int
    step: int

    def held(self, mtime: int) -> int:
        """The time the server's file system holds once given ``mtime``
        (whole seconds): clamped, then rounded down to a multiple of
        ``step``; where no multiple is left in the signed 64-bit range
        (near -2^63), rounded toward zero instead, as ferry does."""
        clamped = max(self.min, min(self.max, int(mtime)))
        floored = clamped - clamped % self.step   # Python's % rounds toward the past, negatives too
        return floored if floored >= INT64_MIN else floored + self.step


# ---------------------------------------------------------------- helpers

def _int(value: Any, what: str, signed: bool = False) -> int:
    """An integer field of a reply in its range (PROTOCOL.md 3.1): unsigned
    (sizes, offsets, counts) 0 to 2^64-1, or ``signed`` (an mtime) within
    64 bits; anything else is the server breaking the protocol."""
    if not local.is_int(value):
        raise ProtocolError("internal", f"the server broke the protocol: {what} is {value!r}, not an integer")
    low, high = (INT64_MIN, INT64_MAX) if signed else (0, UINT64_MAX)
    if not low <= value <= high:
        raise ProtocolError("internal", f"the server broke the protocol: {what} is {value}, out of the range "
                            f"{low} to {high}")
    return int(value)


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError("internal", f"the server broke the protocol: {what} is {value!r}, not a string")
    return value


def remote_path(value: Any, what: str) -> str:
    """A path on the server as a request carries it (PROTOCOL.md 5.1): a
    str as it is, a pathlib path in its POSIX spelling (as_posix; the empty
    path, which pathlib spells ".", is "", the served folder), another
    os.PathLike by what os.fspath gives. Anything else is the caller's
    mistake, a TypeError (a pathlib path with a drive, such as C:, a
    ValueError) raised before anything is sent (it was json's "Object of
    type PosixPath is not JSON serializable")."""
    if isinstance(value, str):
        return value
    if isinstance(value, pathlib.PurePath):
        if value.drive:
            raise ValueError(f"{what} is a path on the server, which has no drive ({value.drive})")
        spelled = value.as_posix()
        return "" if spelled == "." else spelled
    if isinstance(value, os.PathLike):
        spelled = os.fspath(value)
        if isinstance(spelled, str):
            return spelled
    raise TypeError(f"{what} is a path on the server: a str or a pathlib path, not {type(value).__name__}")


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ProtocolError("internal", f"the server broke the protocol: {what} is {value!r}, not true or false")
    return value


def _echo(reply: dict[str, Any], key: str, asked: str, what: str) -> str:
    """A reply's name or path of the request (PROTOCOL.md 4): the one asked
    for, or the server answered about something else."""
    value = _str(reply.get(key), what)
    if value != asked:
        raise ProtocolError("internal", f"the server broke the protocol: {what} is {quoted(value)}, not the "
                            f"{quoted(asked)} asked for")
    return value


def _digest(reply: dict[str, Any], hash: str, what: str) -> str:
    """A digest under its hash's name (PROTOCOL.md 4.1): lowercase hex of
    the hash's size."""
    value = reply.get(hash)
    if not hashes.is_digest_hex(hash, value):
        raise ProtocolError("internal", f"the server broke the protocol: {what} {hash} is {value!r}, not "
                            f"{hashes.digest_length(hash)} lowercase hex digits")
    return str(value)


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ProtocolError("internal", f"the server broke the protocol: {what} is {value!r}, not a list of "
                            "strings")
    return list(value)


def _signed64(value: Any) -> bool:
    return local.is_int(value) and INT64_MIN <= value <= INT64_MAX


def _mtime_limits(reply: dict[str, Any]) -> Optional[MtimeLimits]:
    """hello's optional ``mtime_limits`` (PROTOCOL.md 4.1): None when
    absent; anything but an object of three signed integers with min <=
    max and step >= 1 (``null`` too) is the server breaking the protocol."""
    if "mtime_limits" not in reply:
        return None
    value = reply["mtime_limits"]
    if not isinstance(value, dict) or not all(_signed64(value.get(k)) for k in ("min", "max", "step")):
        raise ProtocolError("internal", f"the server broke the protocol: mtime_limits is {value!r}, not an "
                            "object of three integers min, max and step")
    if value["min"] > value["max"] or value["step"] < 1:
        raise ProtocolError("internal", f"the server broke the protocol: mtime_limits {value!r} needs min <= max "
                            "and step >= 1")
    return MtimeLimits(int(value["min"]), int(value["max"]), int(value["step"]))


def _check_mtime(mtime: Any) -> int:
    """A time to send (a put's or set_mtime's) as the whole second it falls
    in (math.floor: os.stat's float st_mtime of 1.7 is second 1, of -0.5
    second -1; int() took -0.5 for 0), refused here (ValueError) past the
    signed 64-bit range of PROTOCOL.md 3.1 rather than by the server's
    bad_request, or where it is no number (nan, inf)."""
    try:
        seconds: int = math.floor(mtime)
    except (OverflowError, ValueError):
        raise ValueError(f"mtime {mtime!r} is no time") from None
    if not _signed64(seconds):
        raise ValueError(f"mtime {mtime!r} is outside the signed 64-bit range of seconds")
    return seconds


def _mode(obj: dict[str, Any], what: str) -> Optional[int]:
    """File information's optional ``mode`` (3.3): its permission bits
    (``& 0o777``, as documented for Entry), None when absent; an integer
    above 4095 (07777), or anything but an unsigned integer, is the server
    breaking the protocol."""
    if "mode" not in obj:
        return None
    value = _int(obj["mode"], f"{what}'s mode")
    if value > MODE_MAX:
        raise ProtocolError("internal", f"the server broke the protocol: {what}'s mode is {value}, above 4095 "
                            "(0o7777)")
    return value & 0o777


def _check_mode(mode: Any) -> int:
    """Permission bits to send (a put's ``mode``) as an integer 0 to 4095
    (0o7777), refused here (ValueError) rather than by the server's
    bad_request."""
    if not local.is_int(mode) or not 0 <= mode <= MODE_MAX:
        raise ValueError(f"mode {mode!r} is not permission bits: an integer from 0 to 0o7777")
    return int(mode)


def _entry(obj: Any, what: str = "a file entry") -> Entry:
    """File information (3.3), each field of its type and range; ``what``
    names it in the message."""
    if not isinstance(obj, dict):
        raise ProtocolError("internal", f"the server broke the protocol: {what} is {obj!r}")
    kind = obj.get("type", "file")
    if kind not in ("file", "folder"):   # 3.3: nothing else is ever described
        raise ProtocolError("internal", f"the server broke the protocol: {what} of type {kind!r}")
    return Entry(_str(obj.get("name"), f"{what}'s name"), _int(obj.get("size"), f"{what}'s size"),
                 _int(obj.get("mtime"), f"{what}'s mtime", signed=True), kind, _mode(obj, what))


def _file_entry(obj: Any, asked: str, what: str) -> Entry:
    """The file information of a reply about ``asked`` (a get's, a
    commit's, a digest's): that name, and a regular file."""
    entry = _entry(obj, what)
    _echo(obj, "name", asked, f"{what}'s name")
    if entry.is_folder:
        raise ProtocolError("internal", f"the server broke the protocol: {what} describes a folder")
    return entry


def _entry_of(reply: dict[str, Any], asked: str, what: str) -> Entry:
    """A stat's or set_mtime's entry (4.3, 4.13): the one asked about."""
    entry = _entry(reply, what)
    _echo(reply, "name", asked, f"{what}'s name")
    return entry


def _digest_of(reply: dict[str, Any], asked: str, hash: str) -> Digest:
    """A digest reply (4.9): the file asked about, its digest in ``hash``."""
    entry = _file_entry(reply, asked, "the digest reply")
    return Digest(entry.name, entry.size, entry.mtime, hash, _digest(reply, hash, "the digest reply's"), entry.mode)


def _mkdir_created(reply: dict[str, Any], asked: str, parents: bool) -> bool:
    """A mkdir reply (4.10): the path asked; ``created`` false only with
    ``parents`` (without it, a folder already there is ``exists``)."""
    _echo(reply, "path", asked, "the mkdir reply's path")
    created = _bool(reply.get("created"), "the mkdir reply's created")
    if not created and not parents:
        raise ProtocolError("internal", f"the server broke the protocol: mkdir {quoted(asked)} without parents "
                            "answered created false")
    return created


def _deleted(reply: dict[str, Any], asked: str, recursive: bool) -> Deleted:
    """A delete reply (4.11): the path asked, what it was, and counts that
    include it: a file is one file; a folder at least one folder, and
    without ``recursive`` only itself (it had to be empty)."""
    _echo(reply, "path", asked, "the delete reply's path")
    kind = reply.get("type")
    if kind not in ("file", "folder"):
        raise ProtocolError("internal", f"the server broke the protocol: the delete reply's type is {kind!r}")
    files = _int(reply.get("files"), "the delete reply's files")
    folders = _int(reply.get("folders"), "the delete reply's folders")
    if kind == "file":
        expected = (files, folders) == (1, 0)
    elif recursive:
        expected = folders >= 1
    else:
        expected = (files, folders) == (0, 1)
    if not expected:
        raise ProtocolError("internal", f"the server broke the protocol: the delete reply for {quoted(asked)} "
                            f"removed a {kind}, counting {files} files and {folders} folders")
    return Deleted(asked, str(kind), files, folders)


# The counters of a stats reply (4.8): each an object of unsigned integers.
_STATS_PAIRS = {"connections": ("now", "total"), "transfers": ("now", "total"), "bytes": ("in", "out")}


def _check_stats(reply: dict[str, Any]) -> None:
    """A stats reply's counters (4.8), each an unsigned integer, errors by
    code included."""
    _int(reply.get("uptime_seconds"), "the stats reply's uptime_seconds")
    for key, inner in _STATS_PAIRS.items():
        pair = reply.get(key)
        if not isinstance(pair, dict):
            raise ProtocolError("internal", f"the server broke the protocol: the stats reply's {key} is {pair!r}")
        for name in inner:
            _int(pair.get(name), f"the stats reply's {key}.{name}")
    errors = reply.get("errors", {})
    if not isinstance(errors, dict):
        raise ProtocolError("internal", f"the server broke the protocol: the stats reply's errors is {errors!r}")
    for code, count in errors.items():
        _int(count, f"the stats reply's errors.{code}")


def _expected(entry: Entry) -> dict[str, Any]:
    """A delete's ``expect`` (PROTOCOL.md 4.11): a folder by its type
    alone (its mtime changes as what it held is removed), a file with its
    size and mtime."""
    if entry.is_folder:
        return {"type": "folder"}
    return {"type": "file", "size": int(entry.size), "mtime": int(entry.mtime)}


def parse_address(address: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``, each also as
    ``ferry://...`` (``ferry --server`` takes the same) -> (host, port);
    the port defaults to 7021. Raises ValueError naming what is wrong."""
    given = address
    if address.startswith("ferry://"):
        address = address[len("ferry://"):].removesuffix("/")
        if "/" in address:
            raise ValueError(f"{given!r} names a file: connect() takes a server, ferry://HOST:PORT")

    def port_of(text: str) -> int:
        if not text.isascii() or not text.isdigit():
            raise ValueError(f"{given!r}: the port {text!r} is not a number")
        return int(text)

    host, port = address, DEFAULT_PORT
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise ValueError(f"no ']' in {given!r}")
        host, rest = address[1:end], address[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{given!r}: expected ':PORT' after ']'")
            port = port_of(rest[1:])
    elif address.count(":") == 1:
        host, text = address.split(":")
        port = port_of(text)
    if not host or not 0 < port < 65536:
        raise ValueError(f"{given!r} is not HOST:PORT (a port from 1 to 65535)")
    return host, port


def parse_pin(pin: str) -> bytes:
    """``sha256:`` (optional) and 64 hex digits, colons allowed (what
    ``openssl x509 -noout -fingerprint -sha256`` prints) -> 32 bytes."""
    text = pin.strip()
    if text.lower().startswith("sha256:"):
        text = text[7:]
    text = text.replace(":", "")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"{pin!r} is not a SHA-256 pin (64 hex digits, colons allowed)")
    return raw


def tls_context(ca: Optional[PathLike] = None, pinned: bool = False) -> ssl.SSLContext:
    """The TLS settings of PROTOCOL.md section 1: TLS 1.3 or later; a CA
    file (or the system's CAs) with host name checks, or, when ``pinned``,
    no chain check: the caller compares the leaf certificate with its pin."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    if pinned:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca is not None:
        context.load_verify_locations(cafile=os.fspath(ca))
    else:
        context.load_default_certs()
    return context


def _open_transport(host: str, port: int, timeout: float, tls: bool, ca: Optional[PathLike],
                    pin: Optional[bytes]) -> Transport:
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as error:
        raise ConnectionLost(f"cannot connect to {host}:{port}: {error.strerror or error}") from error
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls:
        try:
            context = tls_context(ca, pinned=pin is not None)
            sock = context.wrap_socket(sock, server_hostname=host)
        except ssl.SSLCertVerificationError as error:
            sock.close()
            raise TLSError("tls_failed", f"the certificate of {host}:{port} is not trusted: "
                           f"{error.verify_message}") from error
        except (ssl.SSLError, OSError) as error:
            sock.close()
            raise TLSError("tls_failed", f"no TLS with {host}:{port} (does it speak TLS?): {error}") from error
        if pin is not None:
            der = sock.getpeercert(binary_form=True) or b""
            if hashlib.sha256(der).digest() != pin:
                sock.close()
                raise TLSError("tls_failed", f"the certificate of {host}:{port} does not match the pin (it is "
                               f"sha256:{hashlib.sha256(der).hexdigest()})")
    return Transport(sock)


def connect(address: str, token: Optional[str] = None, tls: Optional[bool] = None,
            ca: Optional[PathLike] = None, pin: Optional[str] = None, timeout: float = 30.0,
            version: int = VERSION, client: str = CLIENT_NAME) -> "Client":
    """Connects to a ferryd and says hello (PROTOCOL.md 1 and 4.1).

    Args:
        address (str): "host:port", "host" (port 7021), "[v6]:port".
        token (str | None): the server's access token, if it requires one.
        tls (bool | None): speak TLS; implied by ``ca`` or ``pin``.
        ca (path | None): a CA file (PEM) to check the server's certificate
            and host name with; with neither ca nor pin, the system's CAs.
        pin (str | None): "sha256:" and the 64 hex digits of the SHA-256 of
            the server's leaf certificate (DER), colons allowed; replaces
            the chain and host name checks (section 1).
        timeout (float): seconds the server may make no progress (a
            reply, file bytes; not a byte of a reply, an empty data frame
            or an empty list page) before ConnectionLost, as ferry's
            --timeout; also the bound on connecting.
        version (int): the highest protocol version to ask for (2); a
            server that speaks only 1 is asked again with 1.
        client (str): the name the server logs for this client.

    Returns a Client, usable as a context manager (it closes on exit).

    Raises ConnectionLost (cannot connect), TLSError (tls_required,
    tls_failed), AuthError (unauthorized), NotFerry (the peer is no Ferry
    server), UnsupportedVersion, Retryable (server_full, address_limit,
    shutting_down), ValueError (a malformed address or pin)."""
    host, port = parse_address(address)
    pin_bytes = parse_pin(pin) if pin is not None else None
    use_tls = bool(tls) or ca is not None or pin is not None

    def opener() -> Transport:
        return _open_transport(host, port, timeout, use_tls, ca, pin_bytes)

    ferry = Client(opener(), opener=opener, address=f"{host}:{port}")
    try:
        ferry.hello(version=version, token=token, client=client)
    except BaseException:
        ferry.close()
        raise
    return ferry


# ---------------------------------------------------------------- streams

class Listing:
    """The entries of a list, read page by page as they are iterated
    (PROTOCOL.md 4.2): a folder of millions of files costs the memory of
    one page. ``skipped_invalid_names`` and ``skipped_too_deep`` (entries
    past the path bounds of PROTOCOL.md 5.1, version 2) are set once the
    last page is read. ``holding_unlisted`` (a list of folder paths
    relative to the folder listed, ``""`` for itself, complete once the
    last page is read; None where the server's hello does not list the
    capability "holding_unlisted", and cannot tell) names the folders that
    directly hold an entry the listing does not show (a hidden name, a
    link, a mount point, an entry too deep...): what a recursive delete
    would leave in place, with those folders (PROTOCOL.md 4.2).
    ``unreadable_folders`` (a list of ``(path, code)`` pairs, complete once
    the last page is read; None where hello does not list the capability
    "unreadable_folders") names the folders the server could not enter or
    read in full, ``code`` being the error a request for one would get
    ("forbidden" or "io_error"): what they hold is unknown, never empty.

    Each page is checked before its entries are given (PROTOCOL.md 4.2,
    "What a client may rely on": listing_check.ListingCheck): a listing
    that breaks a rule raises ProtocolError ("internal") naming the first
    offending entry, and the connection is closed.

    The server takes no other request until the last page is sent, so the
    next request on its Client first reads the pages of an unfinished
    Listing to their end and keeps them: iterating goes on with the rest,
    so a loop may call the Client for each entry (``for entry in
    client.list(f): client.get(...)``), at the cost of holding the rest
    of the folder in memory from that first call. An error page met then
    is raised where the iteration reaches it. finish() reads the rest
    without keeping it.

    A Listing gives its entries once: a loop that stopped midway (break)
    goes on where it stopped, and iterating one read to its end (or ended
    by an error) raises ValueError rather than give an empty folder."""

    def __init__(self, owner: "Client", rid: int, first: dict[str, Any], path: str = "",
                 recursive: bool = False) -> None:
        self._owner = owner
        self._rid = rid
        self._page: Optional[dict[str, Any]] = first
        self._check = ListingCheck(path, recursive)
        self.path = path
        self.done = False
        self.skipped_invalid_names: Optional[int] = None
        self.skipped_too_deep: Optional[int] = None
        self.holding_unlisted: Optional[list[str]] = [] if "holding_unlisted" in owner.capabilities else None
        self.unreadable_folders: Optional[list[tuple[str, str]]] = (
            [] if "unreadable_folders" in owner.capabilities else None)
        self.pages = 1                     # pages read so far
        self.last_page: dict[str, Any] = first   # the latest page, as received
        self._ahead: collections.deque[dict[str, Any]] = collections.deque()   # read for another request
        self._ahead_error: Optional[FerryError] = None   # the error page that ended them
        self._given: collections.deque[Entry] = collections.deque()   # a checked page's entries not given yet

    def _broken(self, why: str) -> ProtocolError:
        """The listing refused whole (4.2): the pages still to come are not
        read, and this server is not talked to further on this connection."""
        self.done = True
        self._owner._drop()
        where = "the root" if not self.path else quoted(self.path)
        return ProtocolError("internal", f"the server broke the protocol: its listing of {where} breaks "
                             f"PROTOCOL.md 4.2 and 5: {why}")

    @staticmethod
    def _fields(page: dict[str, Any]) -> tuple[list[Entry], list[str], bool, list[int], list[tuple[str, str]]]:
        """A page's entries, holding_unlisted, more, skipped counts and
        unreadable_folders, each of its type and range (3.1, 3.3, 4.2)."""
        files = page.get("files")
        if not isinstance(files, list):
            raise ProtocolError("internal", f"the server broke the protocol: a list page without files: {page!r}")
        held = page.get("holding_unlisted", [])
        if not isinstance(held, list) or not all(isinstance(folder, str) for folder in held):
            raise ProtocolError("internal", f"the server broke the protocol: holding_unlisted is {held!r}, "
                                "not a list of paths")
        more = page.get("more", False)
        if not isinstance(more, bool):
            raise ProtocolError("internal", f"the server broke the protocol: more is {more!r}, not a boolean")
        counts = [_int(page.get(key, 0), key) for key in ("skipped_invalid_names", "skipped_too_deep")]
        unread = page.get("unreadable_folders", [])
        if not isinstance(unread, list) or not all(
                isinstance(f, dict) and isinstance(f.get("path"), str) and f.get("code") in ("forbidden", "io_error")
                for f in unread):
            raise ProtocolError("internal", f"the server broke the protocol: unreadable_folders is {unread!r}, "
                                "not a list of {path, code: forbidden or io_error}")
        return [_entry(f) for f in files], held, more, counts, [(f["path"], f["code"]) for f in unread]

    def _take(self, page: dict[str, Any]) -> list[Entry]:
        try:
            entries, held, more, counts, unread = self._fields(page)
        except ProtocolError:
            self.done = True
            self._owner._drop()
            raise
        for entry in entries:
            why = self._check.entry(entry.name, entry.is_folder)
            if why is not None:
                raise self._broken(why)
        # An unreadable folder is held to holding_unlisted's rule: "" or a
        # folder the listing gave.
        named = [(folder, "holding_unlisted") for folder in held] + [(path, "unreadable_folders") for path, _ in unread]
        for folder, field in named:
            why = self._check.holding(folder, field)
            if why is not None:
                raise self._broken(why)
        if self.holding_unlisted is not None:
            self.holding_unlisted.extend(held)
        if self.unreadable_folders is not None:
            self.unreadable_folders.extend(unread)
        if not more:
            self.done = True
            self.skipped_invalid_names, self.skipped_too_deep = counts
            self._release()
        return entries

    def _release(self) -> None:
        """The connection is free for another request (unless it already serves one)."""
        if self._owner._active is self:
            self._owner._active = None

    def __iter__(self) -> "Listing":
        if self._ended():
            # Round 74: a second loop over a listing read to its end was
            # silently empty, as if the folder were.
            raise ValueError(f"this listing of {'the root' if not self.path else quoted(self.path)} was read to "
                             "its end already: a Listing gives its entries once, page by page (keep them with "
                             "list(...), or list the folder again)")
        return self

    def _ended(self) -> bool:
        return self.done and not self._given and self._page is None and not self._ahead \
            and self._ahead_error is None

    def __next__(self) -> Entry:
        # An iterator, not a generator: a loop that breaks leaves the rest
        # of its page here for the next loop (a generator dropped at the
        # break lost it, silently).
        while True:
            if self._given:
                return self._given.popleft()
            if self._page is not None:
                page, self._page = self._page, None
                self._given.extend(self._take(page))
                continue
            if self.done:
                raise StopIteration
            if self._ahead:
                self._page = self._ahead.popleft()
                continue
            if self._ahead_error is not None:
                # Raised once, as a page met in the loop is; then the
                # listing has ended (a later loop: ValueError, round 77).
                error, self._ahead_error = self._ahead_error, None
                self.done = True
                raise error
            try:
                self._page = self.last_page = self._next_page()
            except FerryError:
                # An error page (io_error, stalled) ends the listing.
                self.done = True
                self._release()
                raise
            self.pages += 1

    def _next_page(self) -> dict[str, Any]:
        page = self._owner._reply(self._rid)
        if page.get("files") == [] and page.get("more") is True:
            # No progress toward the timeout (4.2): a server sending only
            # such pages is given up like a silent one.
            discount = getattr(self._owner._channel, "discount_last_frame", None)
            if discount is not None:
                discount()
        return page

    def _read_ahead(self) -> None:
        """Reads the pages still on the wire into memory, unchecked (they
        are checked as the iteration reaches them), for the Client's next
        request."""
        while self._ahead_error is None and not self.done and self.last_page.get("more") is True:
            try:
                self.last_page = self._next_page()
            except FerryError as error:
                self._ahead_error = error
                break
            self._ahead.append(self.last_page)
            self.pages += 1
        self._release()

    def finish(self) -> None:
        """Reads the remaining pages without keeping them."""
        self._given.clear()
        while True:
            try:
                next(self)
            except StopIteration:
                return


class Download:
    """A get's bytes as the server sends them (PROTOCOL.md 4.4): iterate
    to receive the data (bytes objects, in order, from ``offset`` to
    ``size``); the iteration ends after the trailer was checked against the
    hash of the whole file, which ``digest`` then holds. A failed transfer
    raises while iterating: the bytes received are then not to be used.

    ``size``, ``mtime``, ``offset``, ``name`` and ``mode`` (its permission
    bits, None where the server sends none: Entry's) describe the file
    sent; ``reply`` and ``trailer`` are the server's frames as received. A
    Download dropped before its end leaves the connection unusable: the
    Client closes it (and a Client made by connect() opens a new one on its
    next request)."""

    def __init__(self, owner: "Client", rid: int, reply: dict[str, Any], offset: int, hash_name: str,
                 hasher: hashes.Hasher, name: str) -> None:
        self._owner = owner
        self._rid = rid
        self.reply = reply
        described = _file_entry(reply, name, "the get reply")
        self.name, self.size, self.mtime = described.name, described.size, described.mtime
        self.mode = described.mode
        self.offset = _int(reply.get("offset"), "the get reply's offset")
        if self.offset != offset or offset > self.size:
            owner._drop()
            raise ProtocolError("internal", f"the server broke the protocol: get reply offset {self.offset} "
                                f"for offset {offset} of {self.size} bytes")
        self.hash = hash_name
        self.hasher = hasher
        self.received = offset        # bytes of the file held, the prefix included
        self.done = False
        self.digest: Optional[str] = None
        self.trailer: dict[str, Any] = {}

    def __iter__(self) -> Iterator[bytes]:
        while not self.done:
            chunk = self._next()
            if chunk is not None:
                yield chunk

    def _next(self) -> Optional[bytes]:
        owner = self._owner
        try:
            frame = owner._channel.recv_frame()
        except FerryError:
            owner._drop()
            raise
        if frame.is_data:
            payload = frame.payload
            if len(payload) > self.size - self.received:
                owner._drop()
                raise ProtocolError("internal", f"the server broke the protocol: more than the {self.size} bytes "
                                    f"of {self.name!r}")
            self.hasher.update(payload)
            self.received += len(payload)
            return payload
        self.done = True
        owner._active = None
        trailer = owner._check(frame.json(), self._rid)
        self.trailer = trailer
        size = trailer.get("size")
        if trailer.get("done") is not True or not local.is_int(size) or size != self.size \
                or self.received != self.size:
            owner._drop()
            raise ProtocolError("internal", f"the server broke the protocol: the transfer of {self.name!r} ended "
                                f"after {self.received} of {self.size} bytes (trailer {trailer!r})")
        try:
            sent = _digest(trailer, self.hash, "the trailer's")
        except ProtocolError:
            owner._drop()
            raise
        mine = self.hasher.hexdigest()
        if mine != sent:
            note = (" (the file may have changed since the partial download; get it again with resume=False)"
                    if self.offset > 0 else "")
            raise IntegrityError("hash_mismatch", f"the bytes received hash to {mine}, but {self.name!r} hashes "
                                 f"to {sent}; the download was discarded{note}", trailer)
        self.digest = mine
        return None

    def skip(self) -> None:
        """Abandons the transfer: on a Client that can reconnect, by closing
        the connection (quicker than reading the rest); otherwise by reading
        the rest of it unchecked."""
        if self.done:
            return
        if self._owner._opener is not None:
            self.close()
            return
        while not self.done:
            frame = self._owner._channel.recv_frame()
            if frame.is_control:
                self.done = True
                self._owner._active = None
                self._owner._check(frame.json(), self._rid)

    def close(self) -> None:
        """Abandons the transfer if it is not over (closes the connection)."""
        if not self.done:
            self.done = True
            self._owner._drop()

    def __enter__(self) -> "Download":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Upload:
    """A put in progress (PROTOCOL.md 4.5): ``offset`` is where the data
    must start (> 0 on a resume, when ``prefix_digest`` is the server's
    digest of the bytes it holds, to be checked before sending more).
    write() sends data frames; commit() or abort() ends it. ``replace``
    (open_put's) is what commit() does by default: False publishes only
    if nothing stands at ``name`` then."""

    def __init__(self, owner: "Client", rid: int, reply: dict[str, Any], name: str, size: int,
                 hash_name: str, replace: bool = True, resume: bool = True) -> None:
        self._owner = owner
        self._rid = rid
        self.reply = reply
        self.name = name
        self.size = size
        self.hash = hash_name
        self.replace = replace
        self.offset = _int(reply.get("offset"), "the put reply's offset")
        if self.offset > size or (self.offset > 0 and not resume):
            # 4.5: the bytes held of a resumed upload, 0 for a new one.
            owner._drop()
            raise ProtocolError("internal", f"the server broke the protocol: the put reply's offset "
                                f"{self.offset} for {size} bytes (resume {resume})")
        # The server's digest of the bytes it holds, under the hash's name
        # (4.5), when it holds any: compared with the file's first bytes.
        self.prefix_digest: Optional[str] = None
        if self.offset > 0:
            prefix = reply.get("prefix_" + hash_name)
            if not hashes.is_digest_hex(hash_name, prefix):
                raise ProtocolError("internal", f"the server broke the protocol: the put reply's resume at "
                                    f"{self.offset} has prefix_{hash_name} {prefix!r}, not "
                                    f"{hashes.digest_length(hash_name)} lowercase hex digits")
            self.prefix_digest = str(prefix)
        self.token = _str(reply.get("token"), "the put reply's token")
        self.sent = self.offset
        self.done = False

    def write(self, payload: Union[bytes, bytearray, memoryview]) -> None:
        """Sends bytes as one data frame (at most the server's
        ``max_data_frame``, 16 MiB from ferryd; the library's own put sends
        256 KiB frames). Raises ValueError for a larger payload (nothing is
        sent, the upload goes on; also for bytes past the upload's size),
        ConnectionLost, or the server's error when it refused the data and
        closed the connection."""
        # Bytes, not items: a memoryview of 4-byte integers is 4 bytes an
        # item, and the frame's header must count them all (round 75, F3).
        payload = memoryview(payload).cast("B")
        if len(payload) > self._owner.max_data_frame:
            raise ValueError(f"a data frame of {len(payload)} bytes is over the server's max_data_frame "
                             f"({self._owner.max_data_frame}): write it in pieces")
        if self.sent + len(payload) > self.size:
            # The server would refuse it (size_mismatch) and close the
            # connection (4.5): refused here, nothing sent (round 74, L3).
            raise ValueError(f"{len(payload)} bytes more would pass the upload's size of {self.size} bytes "
                             f"({self.sent} sent): nothing was sent, the upload goes on")
        try:
            self._owner._channel.send_data(payload)
        except ConnectionLost:
            self._owner._lost_while_sending(self._rid)
        self.sent += len(payload)

    def commit(self, digest: str, replace: Optional[bool] = None) -> dict[str, Any]:
        """Asks the server to publish the file, whose whole content hashes
        to ``digest`` (hex); returns the commit reply (name, size, mtime,
        the digest). ``replace`` (default: the upload's own, open_put's):
        False publishes only if nothing stands at ``name`` when the server
        renames the upload there (PROTOCOL.md 4.5; the check is the rename
        itself, so nothing put there meanwhile is replaced).

        Raises Conflict (exists: with ``replace`` False, something stands
        at ``name``; it stays as it is, the upload is discarded, the
        connection goes on), IntegrityError (hash_mismatch,
        size_mismatch), StorageError, ConnectionLost, UnsupportedVersion
        (``replace`` False where the server does not list
        "commit_replace": it would replace; nothing is sent and the upload
        is still open, to abort or commit otherwise), ValueError (a
        ``digest`` that is not the hash's lowercase hex: nothing is sent,
        the upload is still open)."""
        if not hashes.is_digest_hex(self.hash, digest):
            # The server would refuse it (bad_request) and keep the upload
            # open, which this Upload would already count as ended (round 74, L4).
            raise ValueError(f"the digest to commit is {digest!r}, not {hashes.digest_length(self.hash)} "
                             f"lowercase hex digits of {self.hash}: nothing was sent, the upload goes on")
        keep_existing = not (self.replace if replace is None else replace)
        if keep_existing:
            self._owner._need_commit_replace()
        self.done = True
        self._owner._active = None
        fields: dict[str, Any] = {self.hash: digest}
        if keep_existing:
            fields["replace"] = False   # only when false (4.5): the commit as it always was otherwise
        reply = self._owner.request("commit", id=self._rid, **fields)
        return self._owner._parsed(lambda: self._published(reply, digest))

    def _published(self, reply: dict[str, Any], digest: str) -> dict[str, Any]:
        """A commit reply describes what was published (4.5): this upload's
        name and size, a time, and the digest committed."""
        published = _file_entry(reply, self.name, "the commit reply")
        if published.size != self.size or _digest(reply, self.hash, "the commit reply's") != digest:
            raise ProtocolError("internal", f"the server broke the protocol: commit reply {reply!r} for "
                                f"{self.size} bytes with {self.hash} {digest}")
        return reply

    def abort(self, discard: bool = False) -> dict[str, Any]:
        """Ends the upload unpublished (PROTOCOL.md 4.6); the server keeps
        what it received for a resume unless ``discard``. Returns the reply
        (kept, offset)."""
        self.done = True
        self._owner._active = None
        reply = self._owner.request("abort", id=self._rid, discard=discard)
        return self._owner._parsed(lambda: self._aborted(reply, discard))

    def _aborted(self, reply: dict[str, Any], discard: bool) -> dict[str, Any]:
        """An abort reply (4.6): ``kept`` and the bytes kept, ``offset``,
        at most the upload's size; nothing kept (offset 0) on a discard."""
        kept = _bool(reply.get("kept"), "the abort reply's kept")
        offset = _int(reply.get("offset"), "the abort reply's offset")
        if offset > self.size or ((discard or not kept) and (kept or offset != 0)):
            raise ProtocolError("internal", f"the server broke the protocol: abort reply kept {kept} offset "
                                f"{offset} for an upload of {self.size} bytes (discard {discard})")
        return reply


# ---------------------------------------------------------------- client

def _identity(stream: IO[bytes]) -> Optional[tuple[int, int, int, int]]:
    """What shows a local file changed: device, inode, size, mtime (ns);
    None for a stream without a descriptor (a BytesIO)."""
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class Client:
    """One connection to a ferryd, after hello (use connect()).

    Attributes after hello: ``version`` (the protocol version spoken),
    ``server`` (its name), ``access`` ("rw" or "ro"), ``hashes`` and
    ``capabilities`` (as the server announced them), ``max_control_frame``,
    ``max_data_frame`` (bytes), ``mtime_limits`` (an MtimeLimits, or None
    where the server does not say: a version-1 connection, an older
    ferryd, a file system whose times it could not learn; see held_mtime).

    A Client made by connect() opens a new connection (and says hello again)
    when the last one was closed by an error, a get or put dropped before
    its end (the next request closes it), or the server;
    close() ends it for good."""

    def __init__(self, channel: FrameChannel, opener: Optional[Callable[[], FrameChannel]] = None,
                 address: str = "") -> None:
        self._channel = channel
        self._opener = opener
        self.address = address
        self.next_id = 1            # the id of the next request (hello's is 0)
        self._open = True
        self._finished = False
        self._hello_args: Optional[dict[str, Any]] = None
        # A Listing is held; a Download or an Upload only weakly, so that
        # one the caller dropped unfinished can be told apart (_ready).
        self._active_held: Union[None, Listing, "weakref.ref[Union[Download, Upload]]"] = None
        self.version = 1
        self.server = ""
        self.access = "rw"
        self.hashes: list[str] = [hashes.SHA256]
        self.capabilities: list[str] = []
        self.max_control_frame = 65536
        self.max_data_frame = MAX_DATA
        self.mtime_limits: Optional[MtimeLimits] = None

    @classmethod
    def over(cls, channel: FrameChannel, hello_reply: Optional[dict[str, Any]] = None) -> "Client":
        """A Client over a connection opened by someone else (a test suite's
        instrumented one): no reconnection; ``hello_reply``, if that
        connection already said hello, sets the attributes."""
        made = cls(channel)
        if hello_reply is not None:
            made.accept_hello(hello_reply)
        return made

    # -- connection

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connection (an upload in progress stays resumable on
        the server)."""
        self._finished = True
        self._drop()

    @property
    def _active(self) -> Optional[Union[Listing, Download, Upload]]:
        held = self._active_held
        return held() if isinstance(held, weakref.ref) else held

    @_active.setter
    def _active(self, transfer: Optional[Union[Listing, Download, Upload]]) -> None:
        self._active_held = weakref.ref(transfer) if isinstance(transfer, (Download, Upload)) else transfer

    def _drop(self) -> None:
        self._active = None
        if self._open:
            self._open = False
            self._channel.close()

    def reconnect(self) -> None:
        """Opens a new connection and says hello as before."""
        if self._opener is None or self._hello_args is None:
            raise ConnectionLost("the connection is closed, and this Client cannot open another")
        self._drop()
        self._channel = self._opener()
        self._open = True
        self.hello(**self._hello_args)

    def _ready(self) -> None:
        """Before a request: the connection open, no transfer running, an
        unfinished listing read to its end."""
        if self._finished:
            raise ConnectionLost("the Client is closed")
        if isinstance(self._active_held, weakref.ref) and self._active_held() is None:
            # A get or put dropped before its end (round 74, M5): the
            # connection is mid-transfer, and nothing can finish it. It is
            # closed, as the Download's and Upload's docstrings say; a Client
            # made by connect() opens a new one below.
            self._drop()
        if isinstance(self._active, Listing):
            self._active._read_ahead()
        elif self._active is not None:
            raise ProtocolError("unexpected_frame", "a get or put is in progress on this connection: finish it "
                                "(or close it) first")
        if not self._open:
            self.reconnect()

    def _check(self, reply: dict[str, Any], rid: Optional[int]) -> dict[str, Any]:
        """Raises the error of an ``ok: false`` reply; checks the id."""
        if reply.get("ok") is not True:
            error = from_reply(reply)
            if rid is not None and reply.get("id") not in (rid, None):
                error = ProtocolError("internal", f"the server broke the protocol: error reply id "
                                      f"{reply.get('id')!r} for request id {rid}", reply)
            if closes_connection(error.code) or error.code == "internal" and isinstance(error, ProtocolError):
                self._drop()   # the server closes, or broke the protocol: it is not talked to further
            raise error
        if rid is not None and reply.get("id") != rid:
            self._drop()
            raise ProtocolError("internal", f"the server broke the protocol: reply id {reply.get('id')!r} for "
                                f"request id {rid}")
        return reply

    def _reply(self, rid: Optional[int]) -> dict[str, Any]:
        try:
            frame = self._channel.recv_frame()
        except FerryError:
            self._drop()
            raise
        if not frame.is_control:
            self._drop()
            raise ProtocolError("internal", "the server broke the protocol: a data frame where a reply was due")
        try:
            reply = frame.json()
        except ProtocolError as error:
            self._drop()
            raise ProtocolError("internal", f"the server broke the protocol: {error.message}") from None
        return self._check(reply, rid)

    def _send(self, op: str, fields: dict[str, Any]) -> int:
        given = fields.pop("id", None)
        rid: int = self.next_id if given is None else int(given)
        if given is None:
            self.next_id += 1
        message = {"op": op, "id": rid}
        message.update(fields)
        try:
            self._channel.send_control(message)
        except ConnectionLost:
            self._lost_while_sending(rid)
        return rid

    def _lost_while_sending(self, rid: Optional[int]) -> None:
        """A send failed (EPIPE, reset): the server may have said why
        before it closed (PROTOCOL.md 3.2); raise that, else ConnectionLost."""
        try:
            frame = self._channel.recv_frame()
            reply = frame.json() if frame.is_control else {}
        except FerryError:
            reply = {}
        self._drop()
        if reply.get("ok") is False:
            raise from_reply(reply)
        raise ConnectionLost("the server closed the connection")

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Sends one request and returns its reply (section 3), for an
        operation this library has no method for; raises the reply's error.
        ``id`` may be given, else the next is used. A field given as a
        pathlib path (or another os.PathLike) is a path on the server, sent
        as the methods send one (remote_path: its POSIX spelling; a drive
        is a ValueError, raised before anything is sent)."""
        for key, value in fields.items():
            if isinstance(value, (pathlib.PurePath, os.PathLike)):
                fields[key] = remote_path(value, f"the request's {key}")
        self._ready()
        return self._reply(self._send(op, fields))

    def _parsed(self, read: Callable[[], Parsed]) -> Parsed:
        """What ``read`` makes of a reply; a reply that breaks the protocol
        (ProtocolError) drops the connection, as any other break does."""
        try:
            return read()
        except ProtocolError:
            self._drop()
            raise

    def accept_hello(self, reply: dict[str, Any], asked: int = VERSION) -> None:
        """Takes the attributes from a hello reply, each held to its type
        and range (PROTOCOL.md 4.1, 3.1), as ferry does: ``version`` 1 to
        ``asked`` (the version the hello asked for); ``server`` a string;
        ``hashes`` and ``capabilities`` lists of strings; ``max_control_frame``
        and ``max_data_frame`` unsigned integers, the data frame's at least 1
        (0 would carry no byte); ``access`` "rw" or "ro" (absent: "rw");
        ``mtime_limits`` absent or well-formed. Anything else raises
        ProtocolError ("internal") naming the field, and nothing is taken."""
        version = _int(reply.get("version"), "the hello reply's version")
        if not 1 <= version <= asked:
            raise ProtocolError("internal", f"the server broke the protocol: it answered hello with version "
                                f"{version}, not one of 1 to the {asked} asked for")
        server = _str(reply.get("server"), "the hello reply's server")
        announced = {key: _strings(reply.get(key), f"the hello reply's {key}") for key in ("hashes", "capabilities")}
        max_control_frame = _int(reply.get("max_control_frame"), "the hello reply's max_control_frame")
        max_data_frame = _int(reply.get("max_data_frame"), "the hello reply's max_data_frame")
        if max_data_frame < 1:
            raise ProtocolError("internal", "the server broke the protocol: its hello's max_data_frame is 0, "
                                "which no file byte fits")
        access = reply.get("access", "rw")
        if access not in ("rw", "ro"):
            raise ProtocolError("internal", f"the server broke the protocol: the hello reply's access is "
                                f"{access!r}, not \"rw\" or \"ro\"")
        mtime_limits = _mtime_limits(reply)
        self.version, self.server, self.access = version, server, access
        self.hashes, self.capabilities = announced["hashes"], announced["capabilities"]
        self.max_control_frame = max_control_frame
        self.max_data_frame = min(max_data_frame, MAX_DATA)
        self.mtime_limits = mtime_limits

    def hello(self, version: int = VERSION, token: Optional[str] = None, client: str = CLIENT_NAME) -> dict[str, Any]:
        """Says hello (PROTOCOL.md 4.1), asking for ``version``; a server
        that answers unsupported_version to a version over 1 is asked again
        with 1 on a new connection (TREE-DESIGN: version 2 is negotiated).
        Returns the reply. Raises AuthError (unauthorized), TLSError
        (tls_required), NotFerry, UnsupportedVersion, Retryable,
        ProtocolError ("internal": a reply whose id is not 0, or a field
        out of its type or range, accept_hello; the connection is
        closed)."""
        fields: dict[str, Any] = {"id": 0, "version": version, "client": client}
        if token is not None:
            fields["token"] = token
        self._hello_args = {"version": version, "token": token, "client": client}
        try:
            self._send("hello", fields)
            try:
                frame = self._channel.recv_frame()
                reply = frame.json() if frame.is_control else None
            except ProtocolError as error:
                reply = None
                detail = error.message
            else:
                detail = "a data frame"
            if reply is None:
                self._drop()
                raise NotFerry("not_ferry", f"{self.address or 'the peer'} answered hello with no Ferry frame "
                               f"({detail}): is it a Ferry server?")
            self._check(reply, 0)
        except UnsupportedVersion:
            if version > 1 and self._opener is not None:
                self._channel = self._opener()
                self._open = True
                return self.hello(1, token, client)
            raise
        try:
            self.accept_hello(reply, version)
        except ProtocolError:
            self._drop()   # a server that breaks the protocol in hello is not talked to further
            raise
        return reply

    def held_mtime(self, mtime: int) -> int:
        """The modification time the server's file system holds once given
        ``mtime`` (whole seconds since 1970): ``mtime_limits.held(mtime)``,
        or ``mtime`` itself where the server gave no limits. Compare a
        local file's time with a remote entry's through it (a quick check:
        same size and ``entry.mtime == held_mtime(local_mtime)``), so that
        a time the server cannot hold (past 2446 on ext4, an odd second on
        FAT) is not taken for a change on every run, as ferry sync does."""
        return self.mtime_limits.held(mtime) if self.mtime_limits is not None else int(mtime)

    # -- v2 gate

    def _need_v2(self, what: str) -> None:
        if self.version < 2:
            raise UnsupportedVersion("unsupported_version", f"this server speaks protocol version {self.version}, "
                                     f"which has no folders ({what} needs version 2)")

    def _need_commit_replace(self) -> None:
        """A commit that must not replace needs a server that honours
        ``replace: false``; an older one ignores the field and replaces
        (PROTOCOL.md 4.5, 8), so nothing is sent to it."""
        if "commit_replace" not in self.capabilities:
            raise UnsupportedVersion("unknown_op", "this server cannot refuse to replace at the commit (no "
                                     "\"commit_replace\" in its capabilities: an older ferryd, or a version-1 "
                                     "connection); stat the name before the upload instead, knowing that a file "
                                     "put there while the upload runs is then replaced")

    def _hash_name(self, name: str) -> str:
        hashes.new(name)   # raises UnsupportedHash when Python cannot compute it
        if name not in self.hashes:
            raise UnsupportedHash(f"the server does not offer {name} (it offers {', '.join(self.hashes)})")
        return name

    # -- operations

    def list(self, path: RemotePath = "", recursive: bool = False) -> Listing:
        """The files (and on version 2 the folders) of ``path`` ("" is the
        served folder), in pages (PROTOCOL.md 4.2), as an iterable of Entry
        in the server's order (sort them if you need an order). With
        ``recursive`` (version 2) every entry below ``path``, each folder
        before its contents, named by its path below ``path``.

        Raises NotFound, WrongType (not_a_folder), InvalidName, StorageError
        (io_error), Retryable (stalled, root_unavailable), UnsupportedVersion
        (path or recursive on a version-1 connection)."""
        path = remote_path(path, "path")
        fields: dict[str, Any] = {"paged": True}
        if path or recursive:
            self._need_v2("list of a folder or a tree")
            if path:
                fields["path"] = path
            if recursive:
                fields["recursive"] = True
        self._ready()
        rid = self._send("list", fields)
        listing = Listing(self, rid, self._reply(rid), path, recursive)
        self._active = listing
        return listing

    def stat(self, name: RemotePath) -> Entry:
        """A file's (version 2: or folder's) name, size, mtime, type and
        mode (its permission bits, None where the server sends none)
        (PROTOCOL.md 4.3). Raises NotFound, InvalidName, WrongType."""
        name = remote_path(name, "name")
        reply = self.request("stat", name=name)
        asked = name  # a str (mypy keeps no narrowing in a lambda)
        return self._parsed(lambda: _entry_of(reply, asked, "the stat reply"))

    def stats(self) -> dict[str, Any]:
        """The server's counters since it started (PROTOCOL.md 4.8):
        uptime_seconds, connections, transfers, bytes, errors (by code)."""
        reply = self.request("stats")
        self._parsed(lambda: _check_stats(reply))
        return {k: v for k, v in reply.items() if k not in ("id", "ok")}

    def open_get(self, name: RemotePath, offset: int = 0, hash: str = hashes.SHA256,
                 hasher: Optional[hashes.Hasher] = None) -> Download:
        """Starts a get (PROTOCOL.md 4.4) and returns its Download stream.
        ``offset`` (bytes) is where the data starts; ``hasher`` must then be
        a hash object (ferry_client.hashes.new(hash)) already fed the
        file's first ``offset`` bytes, so that the trailer's digest of the
        whole file can be checked. Raises NotFound, InvalidName, WrongType,
        Conflict (bad_offset), UnsupportedHash, Retryable
        (too_many_transfers), ConnectionLost."""
        name = remote_path(name, "name")
        hash = self._hash_name(hash)
        if offset > 0 and hasher is None:
            raise ValueError("a get from an offset needs the hash of the bytes before it (hasher)")
        fields: dict[str, Any] = {"name": name, "offset": offset}
        if hash != hashes.SHA256:
            fields["hash"] = hash
        self._ready()
        rid = self._send("get", fields)
        reply = self._reply(rid)
        asked = name  # a str (mypy keeps no narrowing in a lambda)
        download = self._parsed(lambda: Download(self, rid, reply, offset, hash, hasher or hashes.new(hash), asked))
        self._active = download
        return download

    def get(self, name: RemotePath, dest: Union[PathLike, BinaryIO, IO[bytes]], resume: bool = True,
            hash: str = hashes.SHA256, progress: Optional[Progress] = None) -> Transfer:
        """Downloads remote ``name`` into ``dest`` and verifies it (4.4).

        ``dest`` is a path or a binary file object. A path (a folder: the
        file goes into it under the name's last component) gets the ferry
        client's atomic publish: the bytes go to DEST.ferry-part and only a
        verified whole file is renamed onto DEST; a download cut short
        leaves the part and its sidecar, and with ``resume`` the next get
        continues it (after checking its bytes), unless the remote file
        changed meanwhile. A file object is written from its position; with
        ``resume`` and a position p > 0, its first p bytes are taken as the
        file's beginning (read back and hashed: it must be readable and
        seekable) and the download continues at p, so a get cut short goes
        on where it stopped; to write a whole file after bytes of another
        (two files into one stream), pass resume=False.

        ``hash``: "sha256" or "xxh3-128" (needs the xxhash module).
        ``progress(done, total)`` is called with bytes of the file held.

        Permissions of a path's file: a new one gets the remote file's bits
        (the get reply's ``mode``; 0o666 where the server sends none) less
        the umask, as ``ferry get`` does; a file it replaces keeps its own
        bits, its POSIX access ACL and (run as root) its owner.

        Returns a Transfer. Raises NotFound, InvalidName, WrongType,
        IntegrityError (hash_mismatch, file_changed: nothing is kept),
        Retryable (also busy: the part or DEST is held locked by another
        download, which is left as it is; get again once it is over),
        StorageError, ConnectionLost (the part stays for a resume),
        LocalIOError, UnsupportedHash."""
        name = remote_path(name, "name")
        hash = self._hash_name(hash)
        if isinstance(dest, bytes):   # a path as os takes it, not a stream (round 75, F6)
            dest = os.fsdecode(dest)
        if not isinstance(dest, (str, os.PathLike)):
            return self._get_into_stream(name, dest, resume, hash, progress)
        if not os.fsdecode(dest):
            # As ferry's -o '' (round 74, L1): the file went to "./.ferry-part".
            raise ValueError("dest is an empty path: name a file or a folder")
        target = local.download_target(os.fspath(dest), name)
        resumable = local.load_resumable(target, name, hash) if resume else None
        if resumable is None:
            # Refused before anything is requested: a file at the part's or
            # the sidecar's name that ferry did not make (PartFile looks
            # again, for one that appears in between).
            local.check_local_names(target)
        while True:
            offset = resumable.held if resumable else 0
            try:
                download = self.open_get(name, offset, hash, resumable.hasher if resumable else None)
            except FerryError as error:
                if resumable is not None and error.code == "bad_offset":
                    resumable = None   # the file shrank: what we hold is of another file
                    continue
                raise
            if resumable is not None and (download.size, download.mtime) != (resumable.size, resumable.mtime):
                # Changed since the part was written: its bytes are worth
                # nothing, and the server is already sending from offset.
                download.skip()
                resumable = None
                continue
            try:
                part = local.PartFile(target, name, download.size, download.mtime, hash, resumable,
                                      download.hasher)
            except local.PartChanged:
                # The part was swapped since it was checked, and the server
                # is already sending from offset: start over in a new part.
                download.skip()
                resumable = None
                continue
            except BaseException:
                # Refused after the request (a part of ferry's another
                # download holds locked, busy; a name not ferry's): the
                # transfer is dropped, or this Client's next request would
                # find it still running.
                download.close()
                raise
            break
        if progress:
            progress(part.held, download.size)
        try:
            for chunk in download:
                part.append(chunk)
                if progress:
                    progress(part.held, download.size)
        except FerryError as error:
            download.close()
            if error.code in ("file_changed", "hash_mismatch"):
                part.discard()
            elif error.code == "connection_lost" or error.code == "local_io" or error.reply is None:
                part.keep(record_now=error.code == "connection_lost")
            else:
                part.keep(record_now=False)   # failed midway: trust only what was checkpointed
            raise
        except BaseException:
            # The caller's progress callback raised, or Ctrl-C: what arrived is genuine.
            download.close()
            part.keep(record_now=True)
            raise
        part.publish(download.mode)
        return Transfer(name, download.size, download.mtime, download.offset, hash, download.digest or "",
                        target, download.reply, download.trailer, mode=download.mode)

    def _get_into_stream(self, name: str, dest: IO[bytes], resume: bool, hash: str,
                         progress: Optional[Progress]) -> Transfer:
        offset, hasher = 0, None
        # Any object with write() will do; only a resume needs more of it.
        try:
            position = dest.tell() if getattr(dest, "seekable", lambda: False)() else 0
        except (OSError, ValueError):
            position = 0
        if resume and position > 0:
            if not getattr(dest, "readable", lambda: False)():
                raise ValueError("to resume into a file object it must be readable (open it with 'r+b' or 'a+b'), "
                                 "or pass resume=False")
            hasher = hashes.new(hash)
            try:
                dest.seek(0)
                left = position
                while left > 0:
                    chunk = dest.read(min(local.READ_CHUNK, left))
                    if not chunk:
                        break
                    hasher.update(chunk)
                    left -= len(chunk)
                dest.seek(position)
            except OSError as error:
                raise local.local_error("cannot read back the file object", error) from error
            offset = position
        download = self.open_get(name, offset, hash, hasher)
        try:
            if progress:
                progress(download.received, download.size)
            for chunk in download:
                dest.write(chunk)
                if progress:
                    progress(download.received, download.size)
            if hasattr(dest, "flush"):
                dest.flush()
        except OSError as error:
            download.close()
            raise local.local_error("cannot write to the file object", error) from error
        except IntegrityError as error:
            if offset == 0 or error.code != "hash_mismatch":
                raise
            # Round 74, M4: a stream holding other bytes before its
            # position (another file got into it) was told the remote file
            # may have changed.
            raise IntegrityError("hash_mismatch", f"the file object's first {offset} bytes, taken as the start "
                                 f"of {name!r} (resume=True, the default), and the rest received do not hash to "
                                 f"the server's digest: the bytes written after position {offset} are not the "
                                 "file. To write a whole file after other bytes, pass resume=False", error.reply
                                 ) from None
        finally:
            download.close()
        return Transfer(name, download.size, download.mtime, download.offset, hash, download.digest or "",
                        None, download.reply, download.trailer, mode=download.mode)

    def open_put(self, name: RemotePath, size: int, resume: bool = False, hash: str = hashes.SHA256,
                 parents: bool = False, mtime: Optional[int] = None, replace: bool = True,
                 mode: Optional[int] = None) -> Upload:
        """Starts a put of ``size`` bytes under remote ``name`` (PROTOCOL.md
        4.5) and returns its Upload. ``resume`` continues a kept upload of
        the same name and size (4.7); ``parents`` creates missing folders and
        ``mtime`` (whole seconds since 1970, signed) sets the published
        file's modification time (both version 2; the server's file system
        holds it as ``mtime_limits`` say, and the commit reply gives what it
        holds). ``replace=False`` makes the Upload's commit publish only if
        nothing stands at ``name`` then (Upload.commit). ``mode`` (an
        integer 0 to 0o7777, e.g. ``st_mode & 0o777``): the permission bits
        a new file is created with in place of 0o666 (less the server's
        umask, or within its folder's default ACL; never a set-ID or sticky
        bit); a file the upload replaces keeps its own (PROTOCOL.md 4.5).
        It is sent only where hello lists "mode": an older server (or a
        version-1 connection) creates with 0o666. Raises AuthError
        (forbidden), InvalidName, WrongType, NotFound (a missing folder),
        Retryable (busy, too_many_transfers), ServerLimit, StorageError,
        UnsupportedHash, UnsupportedVersion (also ``replace=False`` where
        the server does not list "commit_replace"; nothing is sent),
        ValueError (``mtime`` past the signed 64-bit range, ``mode`` not
        0 to 0o7777)."""
        name = remote_path(name, "name")
        hash = self._hash_name(hash)
        fields: dict[str, Any] = {"name": name, "size": size, "resume": resume}
        if hash != hashes.SHA256:
            fields["hash"] = hash
        if parents or mtime is not None:
            self._need_v2("put with parents or mtime")
            if parents:
                fields["parents"] = True
            if mtime is not None:
                fields["mtime"] = _check_mtime(mtime)
        if mode is not None:
            bits = _check_mode(mode)
            if "mode" in self.capabilities:   # 4.5, 8: only a server that honours it
                fields["mode"] = bits
        if not replace:
            self._need_commit_replace()
        self._ready()
        rid = self._send("put", fields)
        reply = self._reply(rid)
        asked = name  # a str (mypy keeps no narrowing in a lambda)
        upload = self._parsed(lambda: Upload(self, rid, reply, asked, size, hash, replace, resume))
        self._active = upload
        return upload

    def put(self, src: Union[PathLike, BinaryIO, IO[bytes]], name: Optional[RemotePath] = None, resume: bool = True,
            hash: str = hashes.SHA256, progress: Optional[Progress] = None, parents: bool = False,
            mtime: Optional[int] = None, replace: bool = True) -> Transfer:
        """Uploads ``src`` under remote ``name`` and has the server verify
        and publish it atomically (PROTOCOL.md 4.5).

        ``src`` is a path (``name`` defaults to its last component) or a
        seekable binary file object (``name`` required), whose bytes from
        its position to its end are sent. With ``resume`` a kept upload of
        the same name and size continues, once the server's digest of the
        bytes it holds matches this file's first bytes; otherwise it is
        discarded and the upload starts over. ``hash``: "sha256" or
        "xxh3-128". ``progress(done, total)`` in bytes. ``parents`` and
        ``mtime`` (version 2): create missing folders; set the published
        file's modification time (whole seconds since 1970, e.g.
        ``os.stat(src).st_mtime_ns // 10**9`` to keep the local file's; the
        server's file system clamps or rounds a time it cannot hold, as
        ``mtime_limits`` say: the Transfer's ``mtime`` is what it holds, and
        its ``mtime_kept`` False then).

        Permissions: from a path, the file's own bits (``st_mode & 0o777``
        of the file opened) go with the put where hello lists "mode", so
        a new remote file gets them less the server's umask (a 0o600 file
        stays private, a 0o755 program runnable), as ``ferry put`` does;
        a file object sends none (0o666 less the umask); a remote file
        the upload replaces keeps its own bits either way (open_put's
        ``mode``). The Transfer's ``mode`` is what the server published.

        ``replace=False`` (version 2, what ``ferry put --no-clobber`` does)
        never replaces a file at ``name``: one there already is
        ``Conflict`` (exists) before any byte is sent, and one put there
        while the upload runs is ``Conflict`` (exists) at the commit,
        checked by the server's rename itself (PROTOCOL.md 4.5); it stays
        as it is and nothing is published. It needs a server whose hello
        lists "commit_replace" (else UnsupportedVersion and nothing is
        sent: an older ferryd would replace a file that appears during the
        upload; looking with stat() first and accepting that window is the
        caller's choice).

        Returns a Transfer. Raises AuthError (forbidden), InvalidName,
        NotFound, WrongType, Conflict (exists, with ``replace=False``),
        IntegrityError (file_changed: the source changed while it was
        read, nothing is published; or the target's folder was moved away
        during the commit, and the file went with it: put it again to have
        it at ``name``; hash_mismatch), Retryable (busy: another
        connection still held an upload of ``name`` and this size after
        BUSY_PATIENCE seconds of retries; ...),
        ServerLimit (upload_too_large), StorageError (no_space, io_error),
        ConnectionLost (the upload stays resumable), LocalIOError,
        UnsupportedVersion, ValueError (``mtime`` past 64 bits)."""
        name = None if name is None else remote_path(name, "name")
        if not isinstance(src, (str, os.PathLike)):
            if name is None:
                raise ValueError("put of a file object needs a name")
            return self._put_stream(src, name, resume, hash, progress, parents, mtime, None, replace)
        path = os.fspath(src)
        try:
            stream = open(path, "rb", buffering=0)
        except OSError as error:
            raise local.local_error(f"cannot read {path!r}", error) from error
        with stream:
            try:
                mode = os.fstat(stream.fileno()).st_mode & 0o777   # the file opened, not the name
            except OSError as error:
                raise local.local_error(f"cannot read {path!r}", error) from error
            return self._put_stream(stream, name or os.path.basename(path.rstrip("/")), resume, hash, progress,
                                    parents, mtime, path, replace, mode)

    def _refuse_existing(self, name: str) -> None:
        """Before an upload that must not replace: a file already at
        ``name`` is ``exists`` without sending its bytes (the commit's
        check still covers one that appears later). Anything else there
        (a folder, a link) is left for the put to refuse in its words."""
        try:
            entry = self.stat(name)
        except (NotFound, WrongType):
            return
        if not entry.is_folder:
            raise Conflict("exists", f"{name!r} exists on the server ({entry.size} bytes): not replaced, "
                           "nothing was sent")

    def _put_stream(self, stream: IO[bytes], name: str, resume: bool, hash: str, progress: Optional[Progress],
                    parents: bool, mtime: Optional[int], path: Optional[str], replace: bool = True,
                    mode: Optional[int] = None) -> Transfer:
        hash = self._hash_name(hash)
        if not replace:
            self._need_commit_replace()
            self._refuse_existing(name)
        try:
            start = stream.tell()
            size = stream.seek(0, io.SEEK_END) - start
            stream.seek(start)
        except (OSError, ValueError) as error:
            raise LocalIOError(f"cannot put {name!r}: its source must be a seekable file ({error})") from None
        before = _identity(stream)
        upload = self._open_put_patiently(name, size, resume, hash, parents, mtime, replace, mode)
        hasher = hashes.new(hash)
        if upload.offset > 0:
            prefix_ok = self._read_into(stream, start, upload.offset, hasher, None) \
                and hasher.hexdigest() == upload.prefix_digest
            if not prefix_ok:
                # The kept bytes are not this file's beginning.
                upload.abort(discard=True)
                upload = self._open_put_patiently(name, size, False, hash, parents, mtime, replace, mode)
                hasher = hashes.new(hash)
        try:
            if progress:
                progress(upload.offset, size)
            whole = self._read_into(stream, start + upload.offset, size - upload.offset, hasher, upload, progress)
        except BaseException:
            # Ctrl-C or a failing callback mid-frame: the stream may be cut
            # within a frame; the server keeps what arrived for a resume.
            if not upload.done:
                self._drop()
            raise
        changed = f"it became shorter than its {size} bytes" if not whole else None
        if changed is None and _identity(stream) != before:
            changed = "its size or modification time moved"
        if changed is not None:
            # The bytes sent may mix two versions: never publish them.
            upload.abort(discard=True)
            raise IntegrityError("file_changed", f"{name!r} changed while it was sent ({changed}); nothing was "
                                 "published: put it again")
        digest = hasher.hexdigest()
        reply = upload.commit(digest)   # checked there: this name, size, digest (and mode)
        return Transfer(name, size, _int(reply.get("mtime"), "the commit's mtime", signed=True), upload.offset, hash, digest,
                        path, upload.reply, reply, None if mtime is None else _check_mtime(mtime),
                        _mode(reply, "the commit reply"))

    def _open_put_patiently(self, name: str, size: int, resume: bool, hash: str, parents: bool,
                            mtime: Optional[int], replace: bool, mode: Optional[int]) -> Upload:
        """open_put, retried while the server answers ``busy`` for up to
        BUSY_PATIENCE seconds: an upload this or another client just cut is
        then kept (and continued here, with ``resume``) or discarded. busy
        leaves the connection open, so the retries go over it."""
        deadline = time.monotonic() + BUSY_PATIENCE
        while True:
            try:
                return self.open_put(name, size, resume, hash, parents, mtime, replace, mode)
            except Retryable as error:
                if error.code != "busy" or time.monotonic() + BUSY_RETRY_INTERVAL > deadline:
                    raise
            time.sleep(BUSY_RETRY_INTERVAL)

    @staticmethod
    def _read_into(stream: IO[bytes], at: int, count: int, hasher: hashes.Hasher, upload: Optional[Upload],
                   progress: Optional[Progress] = None) -> bool:
        """Reads ``count`` bytes of ``stream`` from ``at``, hashing them and,
        with an upload, sending them; False if the stream ends first."""
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        try:
            stream.seek(at)
            left = count
            while left > 0:
                got = stream.readinto(view[:min(CHUNK, left)])  # type: ignore[attr-defined]
                if not got:
                    return False
                piece = view[:got]
                hasher.update(piece)
                if upload is not None:
                    upload.write(piece)
                    if progress:
                        progress(upload.sent, upload.size)
                left -= got
        except OSError as error:
            raise local.local_error("cannot read the source", error) from error
        return True

    # -- version 2: folders

    def mkdir(self, path: RemotePath, parents: bool = False) -> bool:
        """Creates folder ``path`` (version 2); with ``parents`` the missing
        folders above it too, and an existing folder is fine. Returns
        whether it was created. Raises Conflict (exists), NotFound (a
        missing parent), AuthError (forbidden), InvalidName, WrongType."""
        path = remote_path(path, "path")
        self._need_v2("mkdir")
        reply = self.request("mkdir", path=path, parents=parents)
        asked = path  # a str (mypy keeps no narrowing in a lambda)
        return self._parsed(lambda: _mkdir_created(reply, asked, parents))

    def delete(self, path: RemotePath, recursive: bool = False, expect: Optional[Entry] = None) -> Deleted:
        """Removes a file, or an empty folder; with ``recursive`` a folder
        and everything in it (version 2). With ``expect``, an Entry as a
        listing or stat gave it, only if ``path`` still holds that entry (a
        file of its size and mtime, or a folder: PROTOCOL.md 4.11);
        anything else there stays. Raises Conflict (not_empty: what was
        removed before stays removed), NotFound, WrongType, AuthError,
        InvalidName, IntegrityError (file_changed: not the entry
        expected), ValueError (``expect`` with ``recursive``),
        UnsupportedVersion (``expect`` where the server does not list
        "delete_expect": it would delete by name; nothing is sent)."""
        path = remote_path(path, "path")
        self._need_v2("delete")
        fields: dict[str, Any] = {"path": path, "recursive": recursive}
        if expect is not None:
            if recursive:
                raise ValueError("a recursive delete cannot expect an entry: it removes what no listing described")
            if "delete_expect" not in self.capabilities:
                raise UnsupportedVersion("unknown_op", "this server deletes by name only (no \"delete_expect\" "
                                         "in its capabilities)")
            fields["expect"] = _expected(expect)
        reply = self.request("delete", **fields)
        asked = path  # a str (mypy keeps no narrowing in a lambda)
        return self._parsed(lambda: _deleted(reply, asked, recursive))

    def rename(self, src: RemotePath, dst: RemotePath, replace: bool = False) -> None:
        """Moves ``src`` to ``dst`` atomically (version 2); an existing
        ``dst`` is replaced only with ``replace``. Raises Conflict (exists,
        not_empty, invalid_move), NotFound, WrongType, AuthError,
        InvalidName."""
        src = remote_path(src, "src")
        dst = remote_path(dst, "dst")
        self._need_v2("rename")
        reply = self.request("rename", **{"from": src, "to": dst, "replace": replace})
        asked_src, asked_dst = src, dst  # a str (mypy keeps no narrowing in a lambda)
        self._parsed(lambda: (_echo(reply, "from", asked_src, "the rename reply's from"),
                              _echo(reply, "to", asked_dst, "the rename reply's to")))

    def set_mtime(self, path: RemotePath, mtime: int, expect: Optional[Entry] = None) -> Entry:
        """Gives a file or folder (``""``: the served folder itself) the
        modification time ``mtime``, whole seconds since the epoch (version
        2, PROTOCOL.md 4.13); returns what it is then. With ``expect``, an
        Entry as a listing or stat gave it, only if ``path`` still holds
        that entry (a file of its size and mtime, or a folder); anything
        else there keeps its time. Raises UnsupportedVersion where the
        server does not offer it (an older ferryd), or for ``expect``
        where it does not list "set_mtime_expect" (it would set by name;
        nothing is sent), NotFound, WrongType (a link, FIFO, device),
        AuthError (read-only), InvalidName, IntegrityError (file_changed:
        not the entry expected), ValueError (``mtime`` past 64 bits). The
        Entry's mtime is what the file system holds: ``held_mtime(mtime)``
        where it cannot hold ``mtime`` itself."""
        path = remote_path(path, "path")
        self._need_v2("set_mtime")
        if "set_mtime" not in self.capabilities:
            raise UnsupportedVersion("unknown_op", "this server cannot set a modification time "
                                     "(no \"set_mtime\" in its capabilities)")
        fields: dict[str, Any] = {"path": path, "mtime": _check_mtime(mtime)}
        if expect is not None:
            if "set_mtime_expect" not in self.capabilities:
                raise UnsupportedVersion("unknown_op", "this server sets times by name only "
                                         "(no \"set_mtime_expect\" in its capabilities)")
            fields["expect"] = _expected(expect)
        reply = self.request("set_mtime", **fields)
        asked = path  # a str (mypy keeps no narrowing in a lambda)
        return self._parsed(lambda: _entry_of(reply, asked, "the set_mtime reply"))

    def _digest_by_get(self, name: str, hash: str, tries: int = 3) -> Digest:
        """A whole file's digest from the trailer of a get at its size (4.4):
        bytes the file gained since its stat (as many as the reply's size
        adds) are read and passed over; a file shorter than its stat
        (bad_offset) is asked about again. Anything else the server sends
        (a reply at another offset, more bytes than it announced, a trailer
        of another size) is a ProtocolError, and the connection is dropped,
        as it is when the reading is cut short in any way (an error reply
        in place of the trailer ends the get in step: it keeps it)."""
        for _ in range(tries):
            size = self.stat(name).size
            fields: dict[str, Any] = {"name": name, "offset": size}
            if hash != hashes.SHA256:
                fields["hash"] = hash
            self._ready()
            rid = self._send("get", fields)
            try:
                reply = self._reply(rid)
            except Conflict as error:
                if error.code == "bad_offset":
                    continue
                raise
            try:
                entry = _file_entry(reply, name, "the get reply")
                offset = _int(reply.get("offset"), "the get reply's offset")
                if offset != size or entry.size < size:
                    raise ProtocolError("internal", f"the server broke the protocol: get reply offset {offset} "
                                        f"of {entry.size} bytes for a get of {name!r} from {size}")
                grown, passed = entry.size - size, 0
                while True:
                    frame = self._channel.recv_frame()
                    if frame.is_control:
                        break
                    passed += len(frame.payload)
                    if passed > grown:
                        raise ProtocolError("internal", f"the server broke the protocol: more than the {grown} "
                                            f"bytes past {size} that the get reply of {name!r} announced")
                body = frame.json()
            except BaseException:
                self._drop()  # what is left of the get cannot be read in step
                raise
            trailer = self._check(body, rid)
            digest = self._parsed(lambda: _digest(trailer, hash, "the trailer's"))
            whole = self._parsed(lambda: _int(trailer.get("size"), "the trailer's size"))
            if trailer.get("done") is not True or whole != entry.size or passed != grown:
                self._drop()
                raise ProtocolError("internal", f"the server broke the protocol: the trailer {trailer!r} after "
                                    f"{passed} of the {grown} bytes past {size} that the get reply of {name!r} "
                                    "announced")
            return Digest(entry.name, whole, entry.mtime, hash, digest, entry.mode)
        raise IntegrityError("file_changed", f"{name!r} kept shrinking while its digest was taken ({tries} tries); "
                             "ask again")

    def digest(self, name: RemotePath, hash: str = hashes.SHA256) -> Digest:
        """The server's digest of a whole file, without downloading it.
        ``hash`` names the hash; the digest is compared by the caller. A
        version-1 server has no digest request: the digest is then the
        trailer of a get from the file's end (PROTOCOL.md 4.9), which sends
        none of its bytes. Raises NotFound, WrongType, InvalidName,
        StorageError, IntegrityError (file_changed: a file that kept
        shrinking while asked)."""
        name = remote_path(name, "name")
        if hash not in self.hashes:
            raise UnsupportedHash(f"the server does not offer {hash} (it offers {', '.join(self.hashes)})")
        if self.version < 2:
            return self._digest_by_get(name, hash)
        fields: dict[str, Any] = {"name": name}
        if hash != hashes.SHA256:
            fields["hash"] = hash
        reply = self.request("digest", **fields)
        asked = name  # a str (mypy keeps no narrowing in a lambda)
        return self._parsed(lambda: _digest_of(reply, asked, hash))
