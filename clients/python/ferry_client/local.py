"""The local side of a download to a path, as the ferry client does it.

A download is written to a part file beside its destination,
``DEST.ferry-part`` (or ``.<sha256 of the name>.ferry-part`` in DEST's
folder when DEST's name is 228 bytes or more, too long for the suffixes),
with a sidecar ``DEST.ferry-part.state`` that says which remote file the
part holds the beginning of and how many of its bytes are durable. Only a
verified part is renamed onto DEST, so DEST is always either the old file or
the whole new one. The sidecar is ferry's format (one line of JSON, version
3, read also in version 2), so the library resumes a part that ``ferry get``
left; the hash state inside it is the C++ client's own, which Python cannot
restore, so the library reads the part's bytes again and checks them against
the sidecar's ``prefix_digest`` instead (the ferry client, finding a sidecar
written by this library, starts that download over).

Those names are fixed by DEST's, so they can meet files that are not
ferry's; as the C++ client (client/local_files.cpp), the library never
opens, truncates, writes through, replaces or removes one of those:

- The part is created new (``O_CREAT|O_EXCL|O_NOFOLLOW``, mode 0600
  while it downloads, whatever the umask or the target's mode), locked (``flock``) and marked as ferry's with
  the extended attribute ``user.ferry.part`` before its first byte (where
  the file system keeps no user extended attributes, the sidecar is written
  at once instead, naming the part). A file already at the part's name is
  replaced only when it is ferry's: a regular file with the mark, or empty,
  or named by its sidecar (same device and inode, and born no later than
  the sidecar recorded the part's ctime: a file that took a freed inode
  number is not ferry's), and then removed under a fresh name of its own
  (_unlink_if_still), so that a file renamed onto the name meanwhile stays; a file of the user's, a link, FIFO, socket or
  folder there is refused with LocalIOError before anything is requested,
  and left as it was. A part another download holds locked (it is writing
  it) is refused with Retryable (``busy``), and left as it is: the lock
  goes when that download is over, and a get then succeeds.
- A part is resumed only when it and its sidecar are regular files of this
  user with one link each, the part is ferry's and its bytes still hash to
  the sidecar's digest; a resumed part is opened ``O_NOFOLLOW`` and checked
  again on its descriptor.
- A new version of the sidecar is written under a fresh name,
  ``STATE.tmp-XXXXXX`` (``O_EXCL``, 0600), synced and renamed over the
  sidecar. The sidecar's name is written over or removed only when a
  sidecar some ferry wrote stands there (a regular file in the sidecar's
  format, whoever owns it); anything else there is refused with
  LocalIOError naming its kind, left untouched.
- The destination itself is replaced only when no one holds it locked
  (``flock``): a file another download is writing (its part) or another
  program holds locked is refused with Retryable (``busy``, as the ferry
  client's exit status 6: retrying helps once that is over), before the
  request and again just before the rename, and left as it is.

Everything at those names is looked at without following a link and opened
with ``O_NONBLOCK``, so a FIFO there never hangs a download.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import json
import os
import secrets
import stat
import string
import sys
from dataclasses import dataclass
from typing import Any, Optional, cast

from . import hashes
from .errors import LocalIOError, Retryable

PART_SUFFIX = ".ferry-part"
STATE_SUFFIX = ".state"
# A sidecar's new version: SIDECAR.tmp-XXXXXX, six random letters or digits.
STATE_TEMPORARY_SUFFIX = ".tmp-"
STATE_TEMPORARY_RANDOM = 6
_TEMPORARY_LETTERS = string.ascii_letters + string.digits
# The extended attribute that marks a part ferry made (its value says nothing more).
PART_MARK = "user.ferry.part"
# A part's mode while it downloads: its owner's alone (the C++ client's kPartMode).
PART_MODE = 0o600
NAME_MAX = 255
MAX_STATE_SIZE = 64 * 1024
STATE_VERSION = 3
# The server's state format before version 3, which the C++ decoder also reads.
_SERVER_V1_MAGIC = b"ferry-partial-state v1\n"
# What a sidecar's hash_state starts with, naming the hash of prefix_digest.
_STATE_KINDS = (("sha256:", hashes.SHA256), ("xxh3-128-state-v1:", hashes.XXH3_128),
                ("ferry_client:", None))
READ_CHUNK = 1 << 20
# How a name that may hold anything is opened to be looked at: never
# through a link, and never waiting on a FIFO.
_LOOK = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def local_error(what: str, error: OSError) -> LocalIOError:
    failure = LocalIOError(f"{what}: {error.strerror or error}")
    failure.errno = error.errno
    failure.__cause__ = error
    return failure


def held_by_another(message: str) -> Retryable:
    """``busy``: a part or target that another download (or program) holds
    locked. Not local_io, which says retrying cannot help: the lock goes as
    soon as that download is over, and a get then succeeds (the C++ client's
    lock_part and locked_target_error, exit status 6)."""
    return Retryable("busy", message)


class PartChanged(LocalIOError):
    """The part a resume was about to continue is no longer the file that
    was checked (swapped for a link, another user's file, a second name):
    nothing was written to it; the download starts over."""


def part_path(dest: str) -> str:
    """Where the download to ``dest`` is written until it is verified."""
    folder, base = os.path.split(dest)
    # As the C++ client's part_path (both must find each other's parts):
    # the longest name made from the part's is the sidecar's temporary,
    # NAME.ferry-part.state.tmp-XXXXXX, which must fit NAME_MAX; names of
    # 228 bytes and more take the hidden hashed name.
    longest = len(PART_SUFFIX) + len(STATE_SUFFIX) + len(STATE_TEMPORARY_SUFFIX) + STATE_TEMPORARY_RANDOM
    if len(os.fsencode(base)) + longest <= NAME_MAX:
        return dest + PART_SUFFIX
    hidden = "." + hashlib.sha256(os.fsencode(base)).hexdigest() + PART_SUFFIX
    return os.path.join(folder, hidden)


def state_path(dest: str) -> str:
    """The sidecar of the part of ``dest``."""
    return part_path(dest) + STATE_SUFFIX


def refuse_if_locked(target: str) -> None:
    """Before a download replaces the regular file at ``target``: refused
    (Retryable ``busy``, nothing replaced) while another holds it locked, as a
    download holds its part (``get small -o big.ferry-part`` while ``get
    big`` runs must not take the running download's bytes). Opened without
    following a link and without waiting on a FIFO; a shared lock tried and
    let go at once."""
    try:
        fd = os.open(target, _LOOK)
    except OSError:
        return   # nothing there, or nothing to open: the looks around this decide
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise held_by_another(f"{target!r} is being written by another download (or held locked by "
                                      "another program): it is left as it is; get the file again once that "
                                      "is over") from None
            return   # a file system without flock: nothing says it is in use
    finally:
        os.close(fd)   # lets the shared lock go


def download_target(dest: str, name: str) -> str:
    """The file a download of remote ``name`` to ``dest`` publishes:
    DEST/<last component of name> when DEST is a folder, the file a symbolic
    link leads to (the link stays a link), else DEST. Raises LocalIOError
    for what is not a regular file (a FIFO, device, socket, a link to nothing):
    pass an open file object to write into a stream; Retryable (busy) for a
    file another download (or program) holds locked."""
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
        dest = os.path.realpath(dest)
    refuse_if_locked(dest)
    return dest


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _is_own_private_file(st: os.stat_result) -> bool:
    """A regular file of this user with no second name: the C++ client's
    is_own_private_file, what a resume may build on."""
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and st.st_nlink == 1


def foreign_part_error(part: str, mode: int) -> LocalIOError:
    return LocalIOError(f"{part!r}, the name this download's partial file goes by, is {_kind_of(mode)}: "
                        "ferry neither follows nor replaces it; remove it or move it away, then get the file again")


def unowned_part_error(part: str) -> LocalIOError:
    return LocalIOError(f"{part!r}, the name this download's partial file goes by, is a file ferry did not make "
                        "(no mark of a ferry part, and no sidecar that vouches for it): it is left untouched; "
                        "move it away or rename it, then get the file again")


def foreign_state_error(path: str, mode: Optional[int] = None) -> LocalIOError:
    """What stands at the sidecar's name is not a sidecar: named by its
    kind (``mode``), as the part's message does; a regular file there is
    "a file ferry did not write"."""
    what = "holds a file ferry did not write" if mode is None or stat.S_ISREG(mode) else f"is {_kind_of(mode)}"
    return LocalIOError(f"{path!r}, the name this download's resume state goes by, {what}: it is left untouched; "
                        "move it away or rename it, then get the file again")


def _is_uint(value: Any) -> bool:
    return is_int(value) and cast(int, value) >= 0


def _decode_server_v1(text: bytes) -> Optional[dict[str, Any]]:
    """The server's "ferry-partial-state v1" lines, as protocol/resume_state.cpp reads them."""
    state: dict[str, Any] = {}
    for line in text[len(_SERVER_V1_MAGIC):].split(b"\n"):
        if not line:
            continue
        key, space, value = line.partition(b" ")
        if not space:
            return None
        if key == b"name":
            try:
                state["name"] = bytes.fromhex(value.decode("ascii"))
            except ValueError:
                return None
        elif key in (b"size", b"durable", b"written"):
            if not value.isdigit() or not value.isascii():
                return None
            state[key.decode()] = int(value)
    if not all(k in state for k in ("name", "size", "durable")):
        return None
    return {"name": state["name"], "size": state["size"], "bytes_held": state["durable"]}


def decode_state(text: bytes) -> Optional[dict[str, Any]]:
    """A sidecar's content as the C++ decoder (decode_resume_state) reads
    it: a JSON object of version 3 or 2 with its fields of the right types
    (or the server's older v1 lines); None for anything else."""
    if len(text) > MAX_STATE_SIZE:
        return None
    if text.startswith(_SERVER_V1_MAGIC):
        state = _decode_server_v1(text)
    else:
        try:
            state = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
        if not isinstance(state, dict) or not is_int(state.get("version")) \
                or state["version"] not in (2, STATE_VERSION):
            return None
        version = state["version"]
        hash_key = "hash_state" if version == STATE_VERSION else "sha256_state"
        if not isinstance(state.get("name"), str) or not _is_uint(state.get("size")) \
                or not _is_uint(state.get("bytes_held")) or not isinstance(state.get(hash_key), str):
            return None
        part = state.get("part")
        if ("mtime" in state and not is_int(state["mtime"])) \
                or ("prefix_digest" in state and not isinstance(state["prefix_digest"], str)) \
                or ("written_ns" in state and not is_int(state["written_ns"])) \
                or ("part" in state and not (isinstance(part, list) and len(part) == 5
                                             and all(_is_uint(v) for v in part[:3])
                                             and all(is_int(v) for v in part[3:]))):
            return None
        if version == 2 and not all(k in state for k in ("mtime", "prefix_digest", "part")):
            return None
    if state is None or state["bytes_held"] > state["size"]:
        return None
    return state


def _read_sidecar(path: str) -> Optional[tuple[dict[str, Any], os.stat_result]]:
    """What stands at a sidecar's name when it is a sidecar some ferry wrote
    (a regular file in the sidecar's format, whoever owns it), with its
    fstat; None for anything else or nothing. Opened without following a
    link and without waiting on a FIFO."""
    try:
        fd = os.open(path, _LOOK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        chunks = []
        got = 0
        while got <= MAX_STATE_SIZE:
            chunk = os.read(fd, MAX_STATE_SIZE + 1 - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    state = decode_state(b"".join(chunks))
    return None if state is None else (state, st)


def read_download_state(path: str) -> Optional[dict[str, Any]]:
    """The sidecar at ``path`` when a resume may trust it (the C++
    read_download_state): a sidecar of this user's with one link, with the
    fields a download records; None otherwise (start over)."""
    found = _read_sidecar(path)
    if found is None:
        return None
    state, st = found
    if not _is_own_private_file(st) or not all(k in state for k in ("mtime", "prefix_digest", "part")):
        return None
    return state


def _checked_state(path: str) -> Optional[os.stat_result]:
    """The fstat of the sidecar some ferry wrote at ``path``, the very file
    whose text was read as one; None for nothing there; LocalIOError for
    anything else there, which is never written over nor removed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise local_error(f"cannot look at {path!r}", error) from error
    if not stat.S_ISREG(st.st_mode):
        raise foreign_state_error(path, st.st_mode)
    found = _read_sidecar(path)
    if found is None:
        raise foreign_state_error(path)
    return found[1]


def look_at_state(path: str) -> bool:
    """Whether a sidecar some ferry wrote stands at ``path`` (True) or
    nothing (False); raises LocalIOError for anything else there, which is
    never written over nor removed."""
    return _checked_state(path) is not None


def remove_state(path: str) -> None:
    """Removes the sidecar at ``path``, only if a ferry wrote it (else
    LocalIOError, and it stays), and only the file read as one: set aside,
    checked and unlinked under a fresh name (_unlink_if_still)."""
    checked = _checked_state(path)
    if checked is not None:
        _unlink_if_still(path, checked)


# statx(2), which Python 3.11's os lacks, for a file's birth time: the
# kernel's struct statx (uapi linux/stat.h) is 256 bytes, stx_mask a u32 at
# offset 0, stx_btime {s64 tv_sec; u32 tv_nsec; s32 reserved} at offset 80.
_AT_EMPTY_PATH = 0x1000
_AT_SYMLINK_NOFOLLOW = 0x100
_STATX_BTIME = 0x800
_STATX_SIZE = 256
_STATX_BTIME_OFFSET = 80


def _libc_function(name: str, argtypes: list[Any]) -> Any:
    """The C library's function ``name`` returning an int, errno kept; None
    where this libc lacks it (statx and renameat2 came with glibc 2.28)."""
    try:
        function = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = argtypes
    function.restype = ctypes.c_int
    return function


_statx = _libc_function("statx", [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p])
_renameat2 = _libc_function("renameat2",
                            [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint])
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1   # linux/fs.h


def _rename_no_replace(source: str, target: str) -> None:
    """rename(2) of ``source`` to ``target`` that never replaces what stands
    at ``target`` (OSError EEXIST then): renameat2(2) with RENAME_NOREPLACE,
    which Python's os lacks; where the libc or the file system lacks it, a
    hard link and an unlink (a file; a folder cannot be linked, and stays).
    The C++ clients' sys::rename_no_replace."""
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE) == 0:
            return
        failure = ctypes.get_errno()
        if failure not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(failure, os.strerror(failure), target)
    os.link(source, target, follow_symlinks=False)
    os.unlink(source)


def birth_time_ns(fd: int) -> Optional[int]:
    """When the open file ``fd`` was born, in nanoseconds since the epoch;
    None where statx or the file system does not say."""
    if _statx is None:
        return None
    buffer = ctypes.create_string_buffer(_STATX_SIZE)
    if _statx(fd, b"", _AT_EMPTY_PATH | _AT_SYMLINK_NOFOLLOW, _STATX_BTIME, buffer) != 0:
        return None
    order = sys.byteorder
    if not int.from_bytes(buffer.raw[0:4], order) & _STATX_BTIME:
        return None
    seconds = int.from_bytes(buffer.raw[_STATX_BTIME_OFFSET:_STATX_BTIME_OFFSET + 8], order, signed=True)
    nanoseconds = int.from_bytes(buffer.raw[_STATX_BTIME_OFFSET + 8:_STATX_BTIME_OFFSET + 12], order)
    return seconds * 1_000_000_000 + nanoseconds


def _is_ferry_part(fd: int, st: os.stat_result, state: Optional[dict[str, Any]]) -> bool:
    """A regular file at a part's name is ferry's when it carries the mark,
    is empty (a kill between the creation and the mark; nothing to lose),
    or its sidecar names that very file: same device and inode, and born no
    later than the sidecar recorded the part's ctime (inode numbers are
    reused at once: a file the user saved under that name after ferry's
    part was removed took its number, but was born after). Where the birth
    time is not known the device and inode decide, as in the C++ client."""
    try:
        os.getxattr(fd, PART_MARK)
        return True
    except OSError:
        pass
    if st.st_size == 0:
        return True
    part = state.get("part") if state is not None else None
    if not (isinstance(part, list) and len(part) == 5 and part[0] == st.st_dev and part[1] == st.st_ino):
        return False
    born = birth_time_ns(fd)
    return born is None or born <= part[4]


def _lock_part(fd: int, part: str) -> None:
    """One download writes a part at a time (the C++ client locks it too):
    a part another download holds is Retryable (busy), left as it is."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise held_by_another(f"{part!r} is being written by another download (another get or ferry, "
                                  "saved under the same name): nothing was written to it; get the file "
                                  "again once that download is over") from None
        raise local_error(f"cannot lock {part!r}", error) from error


def _look_at_and_hold_part(part: str, state_file: str) -> Optional[tuple[int, os.stat_result]]:
    """look_at_part's look, keeping what it found: None for nothing there,
    else the part's descriptor, locked, and its stat. Held so that a removal
    of it happens under the lock (create_part), never after letting it go,
    when a download that has just made it could lock it. The caller closes
    the descriptor."""
    try:
        st = os.lstat(part)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise local_error(f"cannot look at {part!r}", error) from error
    if not stat.S_ISREG(st.st_mode):
        raise foreign_part_error(part, st.st_mode)
    try:
        fd = os.open(part, _LOOK)   # O_NONBLOCK: a FIFO put there since the look does not wait
    except FileNotFoundError:
        return None
    except OSError as error:
        raise local_error(f"cannot open {part!r}", error) from error
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise foreign_part_error(part, st.st_mode)
        if not _is_ferry_part(fd, st, read_download_state(state_file)):
            raise unowned_part_error(part)
        _lock_part(fd, part)
    except (LocalIOError, Retryable):
        os.close(fd)
        raise
    except OSError as error:
        os.close(fd)
        raise local_error(f"cannot look at {part!r}", error) from error
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def look_at_part(part: str, state_file: str) -> bool:
    """Whether a part of ferry's stands at ``part`` (True) or nothing
    (False); raises LocalIOError for anything else there (a user's file, a
    link, FIFO, socket, folder), Retryable (busy) for a part another
    download is writing."""
    held = _look_at_and_hold_part(part, state_file)
    if held is None:
        return False
    os.close(held[0])   # lets the lock go
    return True


def check_local_names(dest: str) -> None:
    """Before a download that starts over is requested: what stands at its
    part's and sidecar's names must be ferry's, or LocalIOError names it
    (Retryable, busy, for a part another download is writing)."""
    look_at_part(part_path(dest), state_path(dest))
    look_at_state(state_path(dest))


def _unmark_part(fd: int) -> None:
    """Takes the mark off a part just published, best effort. A file
    published with a mode its owner may not write (a read-only target) has
    the owner's write bit lent for the call: removing a user.* attribute asks
    for write permission (xattr(7)), as the C++ client's unmark_part does."""
    try:
        os.removexattr(fd, PART_MARK)
        return
    except PermissionError:
        pass
    except OSError:
        return
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & stat.S_IWUSR:
            return
        os.fchmod(fd, stat.S_IMODE(st.st_mode) | stat.S_IWUSR)
        try:
            os.removexattr(fd, PART_MARK)
        finally:
            # Only the lent bit goes: a chmod the user made meanwhile stays.
            os.fchmod(fd, stat.S_IMODE(os.fstat(fd).st_mode) & ~stat.S_IWUSR)
    except OSError:
        pass


def _mark_part(fd: int, part: str) -> bool:
    """Marks a new part as ferry's: True once marked, False where the file
    system keeps no user extended attributes."""
    try:
        os.setxattr(fd, PART_MARK, b"1")
        return True
    except OSError as error:
        if error.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return False
        raise local_error(f"cannot mark {part!r} as a partial download", error) from error


def create_part(part: str, state_file: str, mode: int) -> tuple[int, bool]:
    """A new part file at ``part``, locked and marked: its descriptor and
    whether the mark was set. Only a part of ferry's is replaced, and only
    while this download holds its lock. Raises Retryable (busy) when another
    download takes the name meanwhile."""
    for attempt in range(2):
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        except FileExistsError as error:
            if attempt > 0:   # taken again between the unlink and the open: not run after
                raise local_error(f"cannot create {part!r}", error) from error
            held = _look_at_and_hold_part(part, state_file)
            if held is not None:
                fd_found, looked = held
                try:
                    # Removed under the lock, and only while the name still holds the file looked at.
                    _unlink_if_still(part, looked)
                finally:
                    os.close(fd_found)
            continue
        except OSError as error:
            raise local_error(f"cannot create {part!r}", error) from error
        try:
            # Locked first, marked after (the C++ client's order). Until the
            # lock, another download that meets this empty part takes it for
            # a leftover of ferry's and may lock and remove it: then the name
            # no longer holds this file, and it is that download's turn.
            _lock_part(fd, part)
            made = os.fstat(fd)
            try:
                named: Optional[os.stat_result] = os.lstat(part)
            except FileNotFoundError:
                named = None
            if named is None or (named.st_dev, named.st_ino) != (made.st_dev, made.st_ino):
                raise held_by_another(f"{part!r} is being written by another download (another get or ferry, "
                                      "saved under the same name), which took the name as this one made it: "
                                      "nothing was written to it; get the file again once that download is "
                                      "over")
            if made.st_mode & 0o7777 != mode:
                # The umask took bits from `mode`: given back before the
                # mark, which needs the owner's write permission.
                try:
                    os.fchmod(fd, mode)
                except OSError as error:
                    raise local_error(f"cannot set the mode of {part!r}", error) from error
            marked = _mark_part(fd, part)
        except Retryable:
            # Another download locked it the moment it was made, or took its
            # name: it is that download's now, left to it, as the C++
            # client's create_part_file leaves it.
            os.close(fd)
            raise
        except BaseException:
            # Removed while still locked (once the lock goes, another
            # download may take the name for a part of its own), and only
            # while the name holds this file.
            try:
                _unlink_if_still(part, os.fstat(fd))
            except (OSError, LocalIOError):
                pass
            finally:
                os.close(fd)
            raise
        return fd, marked
    raise AssertionError("unreachable")


def _umask() -> int:
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def published_mode(dest: str, source_mode: Optional[int] = None) -> tuple[int, Optional[tuple[int, int]]]:
    """The mode (and, run as root, the owner) the file at ``dest`` gets: the
    permission bits of a regular file it replaces, else those of the
    source, ``source_mode`` (the remote file's, PROTOCOL.md 3.3; 0666
    without one), 0777 of them, less the umask."""
    try:
        st = os.lstat(dest)
    except OSError:
        st = None
    if st is None or not stat.S_ISREG(st.st_mode):
        create_mode = 0o666 if source_mode is None else source_mode & 0o777
        return create_mode & ~_umask(), None
    return st.st_mode & 0o777, (st.st_uid, st.st_gid) if os.geteuid() == 0 else None


ACCESS_ACL = "system.posix_acl_access"


def take_created_attributes(folder: str, create_mode: int, fd: int) -> int:
    """Gives the open file ``fd`` (a part made in ``folder``, private, which
    inherited the folder's default ACL ANDed with 0600) what the kernel gives
    a file created in ``folder`` with ``create_mode``, and returns the
    permission bits to chmod it to. Read off an unnamed file made there for
    the purpose (open(2)'s O_TMPFILE, never linked): the kernel applies the
    umask, or the folder's default ACL where it has one (acl(5), "OBJECT
    CREATION AND DEFAULT ACLs": ANDed with the mode, no umask), so no ACL is
    parsed here; the resulting access ACL is copied as the attribute's opaque
    value, or the part's inherited one removed where the new file has none.
    A file system that cannot make such a file (EOPNOTSUPP): the mode less
    the umask, the part's ACL removed, never wider than asked."""
    acl: Optional[bytes] = None
    try:
        probe = os.open(folder or ".", os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, create_mode)
    except OSError as error:
        if error.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            raise local_error(f"cannot learn what a new file in {folder or '.'!r} gets", error) from error
        mode = create_mode & ~_umask()
    else:
        try:
            mode = os.fstat(probe).st_mode & 0o777
            try:
                acl = os.getxattr(probe, ACCESS_ACL)
            except OSError as error:
                if error.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise local_error(f"cannot read what a new file in {folder or '.'!r} gets", error) from error
        finally:
            os.close(probe)
    try:
        _give_access_acl(fd, acl)
    except OSError as error:
        raise local_error("cannot give the new file what its folder's default ACL gives", error) from error
    return mode


def _give_access_acl(fd: int, value: Optional[bytes]) -> None:
    """Makes ``value`` (the attribute's opaque value; None: none) exactly the
    access ACL of the open file ``fd``. Removing one the file does not have,
    or on a file system that keeps none, is no error; anything else raises
    OSError."""
    try:
        if value is None:
            os.removexattr(fd, ACCESS_ACL)
        else:
            os.setxattr(fd, ACCESS_ACL, value)
    except OSError as error:
        if value is None and error.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            return
        raise


def keep_access_acl(dest: str, fd: int) -> None:
    """Gives the open file ``fd`` exactly the POSIX access ACL (acl(5)) of the
    regular file at ``dest`` it replaces, as the ferry client does: dropped,
    a user the old ACL denied could read the new file; and none where it has
    none, so that an ACL the part inherited from its folder's default ACL
    cannot widen it. Copied as the attribute's opaque value, never through a
    link at ``dest``, before the mode: setting it gives the file the old
    permission bits at once (a new file takes take_created_attributes'
    instead). One that cannot be set raises LocalIOError rather than widen
    access."""
    try:
        if not stat.S_ISREG(os.lstat(dest).st_mode):
            return
    except FileNotFoundError:
        return
    try:
        value = os.getxattr(dest, ACCESS_ACL, follow_symlinks=False)
    except OSError as error:
        if error.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return   # a file system that keeps no ACL
        if error.errno != errno.ENODATA:
            raise local_error(f"cannot read the access ACL of {dest!r}", error) from error
        value = None
    try:
        _give_access_acl(fd, value)
    except OSError as error:
        raise local_error(f"{dest!r} has an access ACL that cannot be set on the downloaded file; "
                          f"it was not replaced", error) from error


def _random_letters(count: int) -> str:
    return "".join(secrets.choice(_TEMPORARY_LETTERS) for _ in range(count))


def write_state(path: str, text: bytes) -> None:
    """Writes the sidecar at ``path`` atomically: under a fresh temporary
    name beside it (never a name something stands at), synced, renamed over
    ``path``, which must be free or hold a sidecar a ferry wrote."""
    for _ in range(64):
        temporary = path + STATE_TEMPORARY_SUFFIX + _random_letters(STATE_TEMPORARY_RANDOM)
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            break
        except FileExistsError:
            continue
        except OSError as error:
            raise local_error(f"cannot create {temporary!r}", error) from error
    else:
        raise local_error(f"cannot create a temporary file beside {path!r}",
                          OSError(errno.EEXIST, os.strerror(errno.EEXIST)))
    try:
        try:
            os.fchmod(fd, 0o600)   # exactly, whatever the umask took (a sidecar's mode)
            view = memoryview(text)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        # The sidecar's name is fixed by the download's: a file of the
        # user's there is not dropped by the rename.
        look_at_state(path)
        os.rename(temporary, path)
    except BaseException as error:
        _remove_quietly(temporary)   # the file made above, by O_EXCL
        if isinstance(error, OSError) and not isinstance(error, LocalIOError):
            raise local_error(f"cannot write {path!r}", error) from error
        raise


@dataclass
class Resumable:
    """A part that a sidecar vouches for: its first ``held`` bytes are the
    beginning of remote ``name`` (``size`` bytes, ``mtime``); ``hasher``
    holds the transfer hash of exactly those bytes."""

    size: int
    mtime: int
    held: int
    hasher: hashes.Hasher
    # The part as it was checked (device, inode) and the sidecar that
    # vouched for it: the part reopened to resume must be that file still.
    part_id: tuple[int, int] = (-1, -1)
    state: Optional[dict[str, Any]] = None


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def load_resumable(dest: str, name: str, hash_name: str) -> Optional[Resumable]:
    """The part of ``dest`` if its sidecar (this user's own, one link) is
    about ``name``, the part is ferry's and this user's own with one link,
    and its first bytes still hash to the sidecar's digest; None (start
    over) otherwise."""
    state = read_download_state(state_path(dest))
    if state is None or state.get("name") != name:
        return None
    version = state["version"]
    saved = state.get("hash_state", state.get("sha256_state"))
    prefix = state.get("prefix_digest")
    numbers = [state.get(k) for k in ("size", "mtime", "bytes_held")]
    if not isinstance(saved, str) or not isinstance(prefix, str) or not all(is_int(v) for v in numbers):
        return None
    size, mtime, held = (cast(int, v) for v in numbers)
    if not 0 <= held <= size:
        return None
    prefix_hash: Optional[str] = hashes.SHA256 if version == 2 else None
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
        fd = os.open(part_path(dest), _LOOK)
    except OSError:
        return None
    with os.fdopen(fd, "rb", buffering=0) as part:
        st = os.fstat(fd)
        part_id = (st.st_dev, st.st_ino)
        # Another user's part (or one with a second name) is never built on,
        # nor a file ferry did not make, whatever its bytes.
        if not _is_own_private_file(st) or st.st_size < held or not _is_ferry_part(fd, st, state):
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
    return Resumable(size, mtime, held, carry, part_id, state)


class PartFile:
    """A download's part file as it is written, with its sidecar.

    ``hasher`` holds the transfer hash of every byte in the part; the caller
    feeds it (the download hashes what it receives before append()).

    ``checkpoint()`` makes the bytes held durable and records them (with the
    digest of exactly those bytes) in the sidecar; ``keep()`` after a
    failure leaves the part for a later resume only if a sidecar vouches for
    some of it; ``publish(source_mode)`` syncs, closes and renames the
    verified part onto the destination, with the bits of the file it
    replaces, or as a new file ``source_mode`` (published_mode).

    Raises PartChanged when the part to resume is no longer the file
    load_resumable checked (nothing written: start over), LocalIOError when
    the part's or the sidecar's name holds something that is not ferry's,
    Retryable (busy) when another download holds the part locked."""

    CHECKPOINT_INTERVAL = 64 << 20   # as the ferry client: a crash loses at most this

    def __init__(self, dest: str, name: str, size: int, mtime: int, hash_name: str,
                 resumable: Optional[Resumable], hasher: hashes.Hasher) -> None:
        self.dest = dest
        self.part = part_path(dest)
        self.state_file = state_path(dest)
        self.name, self.size, self.mtime, self.hash_name = name, size, mtime, hash_name
        # The owner's alone while it downloads, whatever mode it is published
        # with (the C++ client's kPartMode): a part its owner may not write
        # could not be marked, resumed or read back.
        part_mode = PART_MODE
        marked = True
        if resumable is not None:
            fd = self._open_resumed(part_mode, resumable)
            self.held, self.recorded = resumable.held, True
        else:
            fd, marked = create_part(self.part, self.state_file, part_mode)
            try:
                # A sidecar must never describe bytes it no longer matches.
                remove_state(self.state_file)
            except BaseException:
                _remove_own_part(fd, self.part)   # made above, still open and locked
                os.close(fd)
                raise
            self.held, self.recorded = 0, False
        self.file = os.fdopen(fd, "wb", buffering=0)
        # The transfer's hash of every byte in the part, fed by the caller
        # (the download hashes what it receives).
        self.hasher = hasher
        self.durable = self.held
        if not marked:
            # No mark where the file system keeps no user extended
            # attributes: a sidecar written now, before the first byte,
            # names the part as ferry's instead.
            try:
                self.checkpoint()
            except BaseException:
                self.keep(record_now=False)
                raise

    def _open_resumed(self, part_mode: int, resumable: Resumable) -> int:
        held = resumable.held
        try:
            fd = os.open(self.part, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as error:
            raise PartChanged(f"{self.part!r} cannot be opened again ({error.strerror}); "
                              "nothing was written to it") from error
        try:
            # Nothing is cut back nor written unless this is still the file
            # load_resumable checked and its sidecar vouches for (a file
            # put there since, even one that took the freed inode number,
            # is not).
            st = os.fstat(fd)
            if not _is_own_private_file(st) or (st.st_dev, st.st_ino) != resumable.part_id \
                    or not _is_ferry_part(fd, st, resumable.state):
                raise PartChanged(f"{self.part!r} became another file since it was checked; "
                                  "nothing was written to it")
            _lock_part(fd, self.part)
            os.fchmod(fd, part_mode)
            os.ftruncate(fd, held)
            os.lseek(fd, held, os.SEEK_SET)
        except BaseException as error:
            os.close(fd)
            if isinstance(error, OSError) and not isinstance(error, LocalIOError):
                raise local_error(f"cannot open {self.part!r}", error) from error
            raise
        return fd

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
        except OSError as error:
            raise local_error(f"cannot record the part {self.part!r}", error) from error
        text = json.dumps(state, separators=(",", ":"), ensure_ascii=False) + "\n"
        write_state(self.state_file, text.encode("utf-8"))
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
        # Otherwise the sidecar vouches for the first `durable` bytes, and a
        # resume cuts the part back to them.
        if not self.recorded:
            _remove_own_part(self.file.fileno(), self.part)   # while still open and locked
        self.file.close()

    def discard(self) -> None:
        # Dropped while still open and locked, under a fresh name of its own.
        _remove_own_part(self.file.fileno(), self.part)
        try:
            remove_state(self.state_file)
        except LocalIOError:
            pass   # not ferry's: left alone
        self.file.close()

    def publish(self, source_mode: Optional[int] = None) -> None:
        fd = self.file.fileno()
        try:
            os.fsync(fd)
            # Looked at again just before the rename, the one step by name.
            replaces = True
            try:
                st = os.lstat(self.dest)
                if not stat.S_ISREG(st.st_mode):
                    raise LocalIOError(f"{self.dest!r} is no longer a regular file; the verified file is kept as "
                                       f"{self.part!r}")
                try:
                    refuse_if_locked(self.dest)
                except Retryable as error:
                    raise held_by_another(f"{error.message}; the verified file is kept as {self.part!r}") from None
            except FileNotFoundError:
                replaces = False
            mode, owner = published_mode(self.dest, source_mode)
            if owner is not None:
                os.fchown(fd, *owner)
            if replaces:
                keep_access_acl(self.dest, fd)   # before the mode: never wider on the way
            else:
                create_mode = 0o666 if source_mode is None else source_mode & 0o777
                mode = take_created_attributes(os.path.dirname(self.dest), create_mode, fd)
            os.fchmod(fd, mode)
            # The rename works by the part's name: it must still be the file
            # written and verified here.
            written, named = os.fstat(fd), os.lstat(self.part)
            if (written.st_dev, written.st_ino) != (named.st_dev, named.st_ino):
                raise LocalIOError(f"{self.part!r} no longer holds the file this download wrote and verified: "
                                   f"nothing was published to {self.dest!r}; get the file again")
            os.replace(self.part, self.dest)
        except LocalIOError:
            self.file.close()
            raise
        except OSError as error:
            self.file.close()
            raise local_error(f"cannot publish {self.dest!r}", error) from error
        except BaseException:
            self.file.close()
            raise
        # The mark comes off once the file is published, never before.
        _unmark_part(fd)
        self.file.close()
        try:
            remove_state(self.state_file)
        except LocalIOError:
            pass   # not ferry's: left alone; the file is published
        try:
            folder = os.open(os.path.dirname(self.dest) or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        except OSError:
            pass


# A fresh hidden name in a file's folder that no one can have guessed: a
# file being removed is first renamed to it, so that what the unlink takes
# is what the rename moved, checked there (the C++ client's kAsidePrefix).
_ASIDE_PREFIX = ".ferry-removing-"
_ASIDE_RANDOM = 16


def _unlink_if_still(path: str, looked: os.stat_result) -> bool:
    """Unlinks ``path`` only if it is still the file ``looked`` (lstat's, or
    fstat's of a descriptor opened without following), as the C++ client's
    unlink_if_still (client/local_files.hpp): the name is renamed to a fresh
    hidden name in its folder, the entry there is checked (device and inode,
    not followed) and only then unlinked, so that a file renamed onto ``path``
    after the look is never the one removed. Anything else found there goes
    back without replacing a name taken since (_rename_no_replace). A kill
    between the rename and the unlink leaves the file under the hidden name,
    which ``ferry sync``'s next pull of the folder removes. Whether it was removed; raises
    LocalIOError when what was moved cannot go back (it names where it
    stands) or the unlink fails."""
    folder = os.path.dirname(path)
    aside = os.path.join(folder, _ASIDE_PREFIX + _random_letters(_ASIDE_RANDOM))
    try:
        # No one can have made the fresh name: a plain rename replaces nothing.
        os.rename(path, aside)
    except FileNotFoundError:
        return False   # gone since the look
    except OSError as error:
        raise local_error(f"cannot remove {path!r}", error) from error
    try:
        now = os.lstat(aside)
    except OSError:
        now = None
    if now is not None and (now.st_dev, now.st_ino) == (looked.st_dev, looked.st_ino):
        try:
            os.unlink(aside)
            return True
        except OSError as error:
            _put_back(aside, path)
            raise local_error(f"cannot remove {path!r}", error) from error
    _put_back(aside, path)
    return False


def _remove_own_part(fd: int, part: str) -> None:
    """Removes a part this download holds open and locked (``fd``) by
    _unlink_if_still against the descriptor's own fstat: the lock holds the
    file, not its name, so a file renamed onto the name meanwhile stays (the
    C++ client's remove_own_part). Best effort."""
    try:
        _unlink_if_still(part, os.fstat(fd))
    except (OSError, LocalIOError):
        pass


def _put_back(aside: str, path: str) -> None:
    """Moves what _unlink_if_still set aside back to ``path``, never over a
    name taken meanwhile; LocalIOError (naming both) where it cannot."""
    try:
        _rename_no_replace(aside, path)
    except OSError as error:
        raise _left_aside(aside, path, error) from error


def _left_aside(aside: str, path: str, error: OSError) -> LocalIOError:
    why = ("its name was taken again" if error.errno in (errno.EEXIST, errno.ENOTEMPTY)
           else "it could not be put back")
    return local_error(f"{path!r} was replaced while it was being removed, and {why}: what "
                       f"stood there is left as {aside!r} beside it", error)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        if error.errno != errno.ENOENT:
            raise local_error(f"cannot remove {path!r}", error) from error


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
