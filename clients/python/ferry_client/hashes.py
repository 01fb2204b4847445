"""The transfer hashes (PROTOCOL.md section 4.1): sha256 from hashlib,
xxh3-128 from the optional xxhash module (Debian: python3-xxhash).

Both give lowercase hex digests: sha256 what ``sha256sum`` prints, xxh3-128
its canonical big-endian form, what ``xxh128sum`` prints."""

from __future__ import annotations

import hashlib
from typing import Callable, Optional, Protocol

from .errors import UnsupportedHash

SHA256 = "sha256"
XXH3_128 = "xxh3-128"


class Hasher(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


def _xxh3_factory() -> Optional[Callable[[], Hasher]]:
    try:
        import xxhash
    except ImportError:
        return None
    return getattr(xxhash, "xxh3_128", None)


_XXH3 = _xxh3_factory()


def available() -> list[str]:
    """The hashes this Python can compute, in the order of preference."""
    return [SHA256] + ([XXH3_128] if _XXH3 is not None else [])


def new(name: str) -> Hasher:
    """A fresh hash object for a transfer hash name.

    Raises UnsupportedHash for a name this library does not know, or for
    xxh3-128 when the xxhash module cannot be imported."""
    if name == SHA256:
        return hashlib.sha256()
    if name == XXH3_128:
        if _XXH3 is None:
            raise UnsupportedHash("xxh3-128 needs the xxhash module (Debian: apt install python3-xxhash); "
                                  "use hash=\"sha256\"")
        return _XXH3()
    raise UnsupportedHash(f"unknown transfer hash {name!r} (known: {SHA256}, {XXH3_128})")


def digest_length(name: str) -> int:
    """Hex digits in a digest of that hash."""
    return 64 if name == SHA256 else 32
