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

import unicodedata
from bisect import bisect_right
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

# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt, Unicode
# 15): the code points drawn as nothing. unicodedata has no such property,
# so the ranges are kept here; most are Cf or Cn (refused above anyway), the
# table matters for the rest (the Hangul fillers, the variation selectors,
# U+034F, U+17B4..U+17B5). Unicode keeps the property stable: a code point
# never leaves it.
_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)


_IGNORABLE_STARTS = [low for low, _ in _DEFAULT_IGNORABLE]


def _is_default_ignorable(code_point: int) -> bool:
    at = bisect_right(_IGNORABLE_STARTS, code_point) - 1   # the last range starting at or below it
    return at >= 0 and code_point <= _DEFAULT_IGNORABLE[at][1]


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
