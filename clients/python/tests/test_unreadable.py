"""A listing's ``unreadable_folders`` (PROTOCOL.md 4.2, capability
"unreadable_folders") through ferry_client: ferryd runs as uid 1234 over a
tree whose folder ``locked`` is root's and 0700, and whose folder ``nosearch``
it may read but not search; each is named with the code a request for it
would get, and is never taken for an empty folder."""

import os
import unittest

import support
from support import MTIME, ServerCase, ferry_client, harness, write

OTHER = 1234  # no user of the test machine


class UnreadableFolderTests(ServerCase):
    @classmethod
    def setUpClass(cls):
        cls.scratch = harness.Scratch("ferry-pylib-")
        cls.root, cls.local = cls.scratch.root, cls.scratch.local
        os.chmod(cls.scratch.base, 0o755)
        write(os.path.join(cls.root, "t", "ok", "a.txt"), b"a", MTIME)
        write(os.path.join(cls.root, "t", "locked", "secret.txt"), b"s", MTIME)
        write(os.path.join(cls.root, "t", "nosearch", "f.txt"), b"f", MTIME)
        for folder, folders, files in os.walk(cls.root):
            for name in [folder] + [os.path.join(folder, n) for n in folders + files]:
                os.lchown(name, OTHER, OTHER)
        locked = os.path.join(cls.root, "t", "locked")
        os.chown(locked, 0, 0)
        os.chmod(locked, 0o700)
        os.chmod(os.path.join(cls.root, "t", "nosearch"), 0o600)
        cls.server = harness.Server(support.FERRYD, cls.root,
                                    preexec_fn=lambda: (os.setgroups([]), os.setgid(OTHER), os.setuid(OTHER)))
        cls.address = cls.server.address

    def setUp(self):
        self.c = self.connect()

    def test_a_listing_names_the_folders_it_could_not_read_with_their_codes(self):
        self.assertIn("unreadable_folders", self.c.capabilities)
        listing = self.c.list("t", recursive=True)
        names = sorted(e.name for e in listing)
        self.assertEqual(names, ["locked", "nosearch", "ok", "ok/a.txt"])
        self.assertEqual(sorted(listing.unreadable_folders), [("locked", "forbidden"), ("nosearch", "forbidden")])
        # Still named where a recursive delete would leave them.
        self.assertEqual(sorted(listing.holding_unlisted), ["locked", "nosearch"])
        # A readable tree: none.
        listing = self.c.list("t/ok", recursive=True)
        list(listing)
        self.assertEqual(listing.unreadable_folders, [])

    def test_a_server_without_the_capability_cannot_tell(self):
        self.c.capabilities = [c for c in self.c.capabilities if c != "unreadable_folders"]
        listing = self.c.list("t/ok", recursive=True)
        list(listing)
        self.assertIsNone(listing.unreadable_folders)

    def test_a_malformed_field_is_the_servers_protocol_error(self):
        listing = self.c.list("t/ok", recursive=True)
        list(listing)
        for bad in ([{"path": "x", "code": "not_found"}], [{"path": 1, "code": "forbidden"}], ["x"], {"x": 1}):
            with self.assertRaises(ferry_client.ProtocolError):
                listing._take({"files": [], "unreadable_folders": bad})


if __name__ == "__main__":
    unittest.main()
