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


# Bytes of each hash's digest: SHA-256's as hashlib gives it; XXH3-128's
# are its 128 bits (the xxhash module, optional, need not be there to judge
# a digest the server sends).
_DIGEST_SIZES = {SHA256: hashlib.sha256().digest_size, XXH3_128: 128 // 8}


def digest_length(name: str) -> int:
    """Hex digits in a digest of that hash (64 for sha256, 32 for xxh3-128)."""
    return 2 * _DIGEST_SIZES[name]


def is_digest_hex(name: str, text: object) -> bool:
    """Whether ``text`` is a digest of hash ``name`` as PROTOCOL.md 4.1
    writes it: lowercase hex, two digits a byte, of the hash's size."""
    if not isinstance(text, str) or name not in _DIGEST_SIZES:
        return False
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return False
    # fromhex also takes upper case and spaces: the round trip refuses them.
    return len(raw) == _DIGEST_SIZES[name] and raw.hex() == text
