"""The local side of a download to a path, as the ferry client does it.

A download is written to a part file beside its destination,
``DEST.ferry-part`` (or ``.<sha256 of the name>.ferry-part`` in DEST's
folder when DEST's name is too long for the suffixes), with a sidecar
``DEST.ferry-part.state`` that says which remote file the part holds the
beginning of and how many of its bytes are durable. Only a verified part is
renamed onto DEST, so DEST is always either the old file or the whole new
one. The sidecar is ferry's format (one line of JSON, version 3, read also
in version 2), so the library resumes a part that ``ferry get`` left; the
hash state inside it is the C++ client's own, which Python cannot restore,
so the library reads the part's bytes again and checks them against the
sidecar's ``prefix_digest`` instead (the ferry client, finding a sidecar
written by this library, starts that download over).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from typing import Any, Optional, cast

from . import hashes
from .errors import LocalIOError

PART_SUFFIX = ".ferry-part"
STATE_SUFFIX = ".state"
STATE_TEMPORARY_SUFFIX = ".tmp"
NAME_MAX = 255
MAX_STATE_SIZE = 64 * 1024
STATE_VERSION = 3
# What a sidecar's hash_state starts with, naming the hash of prefix_digest.
_STATE_KINDS = (("sha256:", hashes.SHA256), ("xxh3-128-state-v1:", hashes.XXH3_128),
                ("ferry_client:", None))
READ_CHUNK = 1 << 20


def local_error(what: str, error: OSError) -> LocalIOError:
    failure = LocalIOError(f"{what}: {error.strerror or error}")
    failure.errno = error.errno
    failure.__cause__ = error
    return failure


def part_path(dest: str) -> str:
    """Where the download to ``dest`` is written until it is verified."""
    folder, base = os.path.split(dest)
    longest = len(PART_SUFFIX) + len(STATE_SUFFIX) + len(STATE_TEMPORARY_SUFFIX)
    if len(os.fsencode(base)) + longest <= NAME_MAX:
        return dest + PART_SUFFIX
    hidden = "." + hashlib.sha256(os.fsencode(base)).hexdigest() + PART_SUFFIX
    return os.path.join(folder, hidden)


def state_path(dest: str) -> str:
    """The sidecar of the part of ``dest``."""
    return part_path(dest) + STATE_SUFFIX


def download_target(dest: str, name: str) -> str:
    """The file a download of remote ``name`` to ``dest`` publishes:
    DEST/<last component of name> when DEST is a folder, the file a symbolic
    link leads to (the link stays a link), else DEST. Raises LocalIOError
    for what is not a regular file (a FIFO, device, socket, a link to nothing):
    pass an open file object to write into a stream."""
    if os.path.isdir(dest):
        dest = os.path.join(dest, name.rsplit("/", 1)[-1])
    try:
        st = os.stat(dest)
    except FileNotFoundError:
        if os.path.islink(dest):
            raise LocalIOError(f"{dest!r} is a symbolic link to nothing: no file is created through a link") from None
        return dest
    except OSError as error:
        raise local_error(f"cannot look at {dest!r}", error) from error
    if not stat.S_ISREG(st.st_mode):
        raise LocalIOError(f"{dest!r} is not a regular file: nothing is downloaded onto it "
                           "(pass an open file object to write into it)")
    if os.path.islink(dest):
        return os.path.realpath(dest)
    return dest


@dataclass
class Resumable:
    """A part that a sidecar vouches for: its first ``held`` bytes are the
    beginning of remote ``name`` (``size`` bytes, ``mtime``); ``hasher``
    holds the transfer hash of exactly those bytes."""

    size: int
    mtime: int
    held: int
    hasher: hashes.Hasher


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def load_resumable(dest: str, name: str, hash_name: str) -> Optional[Resumable]:
    """The part of ``dest`` if its sidecar is about ``name`` and its first
    bytes still hash to the sidecar's digest; None (start over) otherwise."""
    try:
        with open(state_path(dest), "rb") as f:
            text = f.read(MAX_STATE_SIZE + 1)
        if len(text) > MAX_STATE_SIZE:
            return None
        state = json.loads(text)
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("version") not in (2, STATE_VERSION):
        return None
    saved = state.get("hash_state", state.get("sha256_state"))
    prefix = state.get("prefix_digest")
    numbers = [state.get(k) for k in ("size", "mtime", "bytes_held")]
    if state.get("name") != name or not isinstance(saved, str) or not isinstance(prefix, str) \
            or not all(is_int(v) for v in numbers):
        return None
    size, mtime, held = (cast(int, v) for v in numbers)
    if not 0 <= held <= size:
        return None
    prefix_hash: Optional[str] = hashes.SHA256 if state["version"] == 2 else None
    for start, kind in _STATE_KINDS:
        if saved.startswith(start):
            prefix_hash = kind or saved[len(start):]
    if prefix_hash not in (hashes.SHA256, hashes.XXH3_128):
        return None
    try:
        check = hashes.new(prefix_hash)
        carry = check if prefix_hash == hash_name else hashes.new(hash_name)
    except ValueError:   # UnsupportedHash: a part checked by a hash we cannot compute
        return None
    try:
        fd = os.open(part_path(dest), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb", buffering=0) as part:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size < held:
            return None
        left = held
        while left > 0:
            chunk = part.read(min(READ_CHUNK, left))
            if not chunk:
                return None
            check.update(chunk)
            if carry is not check:
                carry.update(chunk)
            left -= len(chunk)
    if check.hexdigest() != prefix:
        return None
    return Resumable(size, mtime, held, carry)


class PartFile:
    """A download's part file as it is written, with its sidecar.

    ``hasher`` holds the transfer hash of every byte in the part; the caller
    feeds it (the download hashes what it receives before append()).

    ``checkpoint()`` makes the bytes held durable and records them (with the
    digest of exactly those bytes) in the sidecar; ``keep()`` after a
    failure leaves the part for a later resume only if a sidecar vouches for
    some of it; ``publish()`` syncs, closes and renames the verified part
    onto the destination."""

    CHECKPOINT_INTERVAL = 64 << 20   # as the ferry client: a crash loses at most this

    def __init__(self, dest: str, name: str, size: int, mtime: int, hash_name: str,
                 resumable: Optional[Resumable], hasher: hashes.Hasher) -> None:
        self.dest = dest
        self.part = part_path(dest)
        self.state_file = state_path(dest)
        self.name, self.size, self.mtime, self.hash_name = name, size, mtime, hash_name
        try:
            if resumable is not None:
                fd = os.open(self.part, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
                os.ftruncate(fd, resumable.held)
                os.lseek(fd, resumable.held, os.SEEK_SET)
                self.held, self.recorded = resumable.held, True
            else:
                # A sidecar must never describe bytes it no longer matches.
                _remove(self.state_file)
                fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK
                             | os.O_CLOEXEC, 0o644)
                self.held, self.recorded = 0, False
        except OSError as error:
            raise local_error(f"cannot open {self.part!r}", error) from error
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise LocalIOError(f"{self.part!r} is not a regular file: it cannot hold the download")
        self.file = os.fdopen(fd, "wb", buffering=0)
        # The transfer's hash of every byte in the part, fed by the caller
        # (the download hashes what it receives).
        self.hasher = hasher
        self.durable = self.held

    def append(self, chunk: bytes) -> None:
        try:
            view = memoryview(chunk)
            while view:
                written = self.file.write(view)
                view = view[written:]
        except OSError as error:
            raise local_error(f"cannot write {self.part!r}", error) from error
        self.held += len(chunk)
        if self.held - self.durable >= self.CHECKPOINT_INTERVAL:
            self.checkpoint()

    def checkpoint(self) -> None:
        try:
            os.fsync(self.file.fileno())
            state = {"version": STATE_VERSION, "name": self.name, "size": self.size, "bytes_held": self.held,
                     "hash_state": "ferry_client:" + self.hash_name, "mtime": self.mtime,
                     "prefix_digest": self.hasher.hexdigest(), "part": _identity(os.fstat(self.file.fileno()))}
            temporary = self.state_file + STATE_TEMPORARY_SUFFIX
            with open(temporary, "w", encoding="utf-8") as f:
                f.write(json.dumps(state, separators=(",", ":"), ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, self.state_file)
        except OSError as error:
            raise local_error(f"cannot record the part {self.part!r}", error) from error
        self.recorded = True
        self.durable = self.held

    def keep(self, record_now: bool) -> None:
        """After a failure: bytes that arrived whole are genuine
        (record_now), bytes of a transfer that failed are not trusted past
        the last checkpoint."""
        if record_now and self.held > 0:
            try:
                self.checkpoint()
            except LocalIOError:
                pass
        self.file.close()
        # Otherwise the sidecar vouches for the first `durable` bytes, and a
        # resume cuts the part back to them.
        if not self.recorded:
            _remove(self.part)

    def discard(self) -> None:
        self.file.close()
        _remove(self.part)
        _remove(self.state_file)

    def publish(self) -> None:
        try:
            os.fsync(self.file.fileno())
            self.file.close()
            # Looked at again just before the rename, the one step by name.
            try:
                st = os.lstat(self.dest)
                if not stat.S_ISREG(st.st_mode):
                    raise LocalIOError(f"{self.dest!r} is no longer a regular file; the verified file is kept as "
                                       f"{self.part!r}")
            except FileNotFoundError:
                pass
            os.replace(self.part, self.dest)
        except OSError as error:
            raise local_error(f"cannot publish {self.dest!r}", error) from error
        _remove(self.state_file)
        try:
            folder = os.open(os.path.dirname(self.dest) or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        except OSError:
            pass


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        if error.errno != errno.ENOENT:
            raise local_error(f"cannot remove {path!r}", error) from error


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
