"""What a listing from a server may hold (PROTOCOL.md 4.2, "What a client
may rely on", and 5), as ferry's protocol/listing_check.cpp judges it: each
entry is checked as its page arrives, before the caller sees any name.

The rules: each name is a name of section 5 (a non-recursive listing: one
component) or, in a recursive listing, a path of 5.1 whose folder was
listed, as a folder, before it; the listed folder's path and the name
together keep within 5.1's bounds; no name twice. A folder named in
``holding_unlisted`` is the listed folder ("") or one the listing gave. And
a listing is not endless: at most MAX_ENTRIES entries and MAX_NAME_BYTES
bytes of names, all its pages together."""

from __future__ import annotations

from typing import Optional

from .names import check_file_name, check_path, quoted, utf8_length

# ferry's ListingLimits (protocol/listing_check.hpp): a server could
# otherwise send pages of new names forever, each page being progress, and
# grow the client's memory without bound (the names are kept to refuse one
# listed twice). Five million entries and 512 MiB of their names;
# ``holding_unlisted`` items count as entries too.
MAX_ENTRIES = 5_000_000
MAX_NAME_BYTES = 512 * 1024 * 1024


class ListingCheck:
    """One listing of folder ``path`` ("" is the root), recursive or not.
    entry() and holding() say why an item cannot be in it (a message that
    names it, printable), or None; an entry that passes is remembered."""

    def __init__(self, path: str, recursive: bool) -> None:
        self.path = path
        self.recursive = recursive
        self.entries = 0
        self.name_bytes = 0
        self._names: set[str] = set()
        self._folders: set[str] = set()

    def _over_limits(self, name: str) -> Optional[str]:
        self.entries += 1
        self.name_bytes += utf8_length(name)
        if self.entries > MAX_ENTRIES:
            return f"it holds more than {MAX_ENTRIES} entries, the most a client takes in one listing"
        if self.name_bytes > MAX_NAME_BYTES:
            return f"its names hold more than {MAX_NAME_BYTES} bytes, the most a client takes in one listing"
        return None

    def _broken_name(self, name: str) -> Optional[str]:
        """Why ``name`` breaks sections 5 and 5.1 for this listing."""
        why = check_path(name) if self.recursive else check_file_name(name)
        if why is None and self.path:
            # The entry's path from the root keeps within 5.1's bounds.
            why = check_path(self.path + "/" + name)
        return why

    def entry(self, name: str, is_folder: bool) -> Optional[str]:
        over = self._over_limits(name)
        if over is not None:
            return over
        why = self._broken_name(name)
        if why is None and self.recursive and "/" in name:
            # Each folder before what it holds (4.2): what lies below a name
            # never given as a folder has no place to land.
            folder = name.rsplit("/", 1)[0]
            if folder not in self._folders:
                why = f"its folder {quoted(folder)} was not listed as a folder before it"
        if why is None and name in self._names:
            why = "it was listed twice"
        if why is not None:
            return f"the entry {quoted(name)}: {why}"
        self._names.add(name)
        if is_folder:
            self._folders.add(name)
        return None

    def holding(self, folder: str, field: str = "holding_unlisted") -> Optional[str]:
        """Why ``folder``, named in the page's ``field`` (holding_unlisted or
        unreadable_folders: the same rule), breaks the protocol, or None."""
        over = self._over_limits(folder)
        if over is not None:
            return over
        if not folder:
            return None   # the listed folder itself
        why = self._broken_name(folder)
        if why is None and folder not in self._folders:
            why = "the listing did not give it as a folder"
        if why is not None:
            return f"\"{field}\" names {quoted(folder)}: {why}"
        return None
