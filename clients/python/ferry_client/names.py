"""What counts as a name and a path (PROTOCOL.md 5 and 5.1), judged as
ferry's protocol/names.cpp judges them, with Python's unicodedata in place
of utf8proc.

The library holds a server's replies to these rules (a listing, above all:
PROTOCOL.md 4.2 "What a client may rely on"), so that no name it hands to a
caller could pass for another, hide text on a terminal or climb out of a
folder. Categories and NFC are those of this Python's Unicode version
(``unicodedata.unidata_version``); a code point assigned after it is
unassigned (Cn) here, as PROTOCOL.md 5 says of any receiver."""

from __future__ import annotations

import ctypes
import ctypes.util
import unicodedata
from functools import lru_cache
from typing import Optional

NAME_MAX = 255          # bytes of one name (a path component): NAME_MAX on Linux
PATH_MAX_BYTES = 4095   # bytes of a path: PATH_MAX less its NUL (5.1)
PATH_MAX_DEPTH = 64     # components of a path (5.1)

# The general categories a name must not hold (PROTOCOL.md 5), with what
# each is, for the message.
_REFUSED_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible format character (such as a bidirectional override or a zero-width space)",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
    "Cs": "a surrogate",
    "Co": "a private-use character",
    "Cn": f"a code point that Unicode {unicodedata.unidata_version} leaves unassigned",
}

# Unicode's Default_Ignorable_Code_Point (the code points drawn as nothing)
# is no property of unicodedata; it is asked of libutf8proc, which ferry
# itself uses for it (Debian's libutf8proc2): utf8proc_decompose_char with
# UTF8PROC_IGNORE strips exactly those code points (utf8proc.h), so one that
# comes back as nothing is default-ignorable. Most of them are Cf or Cn,
# refused above anyway; it matters for the rest (the Hangul fillers, the
# variation selectors, U+034F). Without the library those few pass, and
# DEFAULT_IGNORABLE_CHECKED says so.
_UTF8PROC_IGNORE = 1 << 5


def _load_utf8proc() -> Optional[ctypes.CDLL]:
    for name in (ctypes.util.find_library("utf8proc"), "libutf8proc.so.2", "libutf8proc.so"):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.utf8proc_decompose_char.restype = ctypes.c_ssize_t
        lib.utf8proc_decompose_char.argtypes = (ctypes.c_int32, ctypes.POINTER(ctypes.c_int32), ctypes.c_ssize_t,
                                                ctypes.c_int, ctypes.POINTER(ctypes.c_int))
        return lib
    return None


_UTF8PROC = _load_utf8proc()
DEFAULT_IGNORABLE_CHECKED = _UTF8PROC is not None


def _is_default_ignorable(code_point: int) -> bool:
    if _UTF8PROC is None:
        return False
    out = (ctypes.c_int32 * 4)()
    boundclass = ctypes.c_int(0)
    kept: int = _UTF8PROC.utf8proc_decompose_char(code_point, out, len(out), _UTF8PROC_IGNORE,
                                                  ctypes.byref(boundclass))
    return kept == 0


@lru_cache(maxsize=4096)   # a listing's names share few characters: each is looked up once
def _deceptive_kind(char: str) -> Optional[str]:
    """What a character is, when a name must not hold it (PROTOCOL.md 5)."""
    kind = _REFUSED_CATEGORIES.get(unicodedata.category(char))
    if kind is None and _is_default_ignorable(ord(char)):
        kind = "an invisible (default-ignorable) character"
    return kind


def utf8_length(text: str) -> int:
    """Bytes of ``text`` in UTF-8; a lone surrogate (which JSON's ``\\ud800``
    can carry into a Python str) counts its three bytes."""
    return len(text.encode("utf-8", "surrogatepass"))


def printable(text: str) -> str:
    """``text`` (a name from a server) safe for a terminal and a log: each
    code point a name must not hold becomes ``\\u{XXXX}``."""
    return "".join(f"\\u{{{ord(c):04X}}}" if _deceptive_kind(c) else c for c in text)


def quoted(text: str) -> str:
    return '"' + printable(text) + '"'


def check_file_name(name: str) -> Optional[str]:
    """Why ``name`` is not a name of PROTOCOL.md 5, or None: 1 to 255 bytes,
    no '/' or '\\', no leading '.', no code point that hides or disguises
    text, in NFC."""
    if not name:
        return "file name is empty"
    if utf8_length(name) > NAME_MAX:
        return f"file name is longer than {NAME_MAX} bytes"
    if name.startswith("."):
        return "file name must not start with '.'"
    if "/" in name or "\\" in name:
        return "file name must not contain '/' or '\\'"
    if name.isascii() and name.isprintable():
        return None   # plain printable ASCII is NFC and holds nothing refused
    for char in name:
        if " " <= char <= "~":
            continue   # printable ASCII: nothing to look up
        kind = _deceptive_kind(char)
        if kind is not None:
            return (f"file name contains U+{ord(char):04X}, {kind}; names must not hold characters that can hide "
                    "or disguise text (PROTOCOL.md section 5)")
    if not unicodedata.is_normalized("NFC", name):
        # Two spellings of one text would be two files that look the same.
        return "file name is not in Unicode normalization form C (NFC)"
    return None


def check_path(path: str) -> Optional[str]:
    """Why ``path`` is not a path of PROTOCOL.md 5.1, or None: names joined
    by single '/', at most 4,095 bytes and 64 components. The root's empty
    path is refused here: where it is allowed, the caller looks first."""
    if not path:
        return "path is empty"
    size = utf8_length(path)
    if size > PATH_MAX_BYTES:
        return f"path is longer than {PATH_MAX_BYTES} bytes ({size})"
    depth = path.count("/") + 1
    if depth > PATH_MAX_DEPTH:
        return f"path has more than {PATH_MAX_DEPTH} components ({depth})"
    for component in path.split("/"):
        if not component:
            return "path must not contain an empty component (a leading, trailing or doubled '/')"
        if component in (".", ".."):
            return f"path must not contain a '{component}' component"
        why = check_file_name(component)
        if why is not None:
            return f"component {quoted(component)}: {why}"
    return None
