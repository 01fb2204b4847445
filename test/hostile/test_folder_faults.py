"""A folder whose reading fails part way (readdir's EIO, as a damaged disk
or a network file system's folder read gives) ends that folder's reading,
not the listing's: what was read of it is listed, it is named in
unreadable_folders with io_error and in holding_unlisted (PROTOCOL.md 4.2),
and every other folder is listed in full. The failure is made by a small
library preloaded into ferryd (test/faults/readdir_fault.cpp): readdir
fails with EIO where it would have returned an entry named "poison"."""

import os
import shutil
import unittest

from wire import Server, temp_root

FERRYD = os.environ.get("FERRYD", "")


def fault_library():
    """The preloaded library: meson names it; by hand, it lies in ferryd's build folder."""
    named = os.environ.get("FERRY_READDIR_FAULT_LIB")
    if named:
        return named
    build = os.path.dirname(os.path.dirname(os.path.abspath(FERRYD)))
    return os.path.join(build, "test", "faults", "libferry_readdir_fault.so")


def write(root, relative, data=b"x"):
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


class FolderReadFaults(unittest.TestCase):
    def setUp(self):
        library = fault_library()
        self.assertTrue(os.path.isfile(library), f"the fault library {library} is not built")
        self.root = temp_root()
        self.addCleanup(shutil.rmtree, self.root)
        for name in ("a.txt", "b.txt", "c.txt"):
            write(self.root, f"t/good/{name}")
        for index in range(30):
            write(self.root, f"t/bad/f{index:02}.txt")
        write(self.root, "t/bad/poison")
        write(self.root, "t/bad/inner/deep.txt")
        write(self.root, "t/later/z.txt")
        # A sanitized ferryd checks that its runtime comes first; a preloaded library comes before it.
        asan = os.environ.get("ASAN_OPTIONS", "")
        env = {"LD_PRELOAD": library, "FERRY_READDIR_FAULT_NAME": "poison",
               "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"}
        self.server = Server(FERRYD, self.root, env=env)
        self.addCleanup(self.server.stop)

    def listing(self, peer, path):
        """(entries, unreadable_folders, holding_unlisted) of a recursive list, all pages."""
        peer.send({"op": "list", "path": path, "recursive": True})
        entries, unreadable, holding = [], [], []
        while True:
            page = peer.reply()
            self.assertIs(page.get("ok"), True, page)
            entries += [entry["name"] for entry in page["files"]]
            unreadable += page.get("unreadable_folders", [])
            holding += page.get("holding_unlisted", [])
            if not page.get("more"):
                return entries, unreadable, holding

    def test_a_folder_whose_reading_fails_part_way_is_named_and_the_rest_is_listed(self):
        peer = self.server.peer(version=2)
        self.addCleanup(peer.close)
        entries, unreadable, holding = self.listing(peer, "t")
        self.assertEqual(unreadable, [{"path": "bad", "code": "io_error"}])
        self.assertIn("bad", holding)
        # Every other folder in full; of the failed one, only real entries, never the one it failed at.
        for name in ("good", "good/a.txt", "good/b.txt", "good/c.txt", "later", "later/z.txt", "bad"):
            self.assertIn(name, entries)
        below = [name for name in entries if name.startswith("bad/")]
        self.assertNotIn("bad/poison", below)
        for name in below:
            self.assertTrue(os.path.lexists(os.path.join(self.root, "t", name)), name)
        self.assertLess(len([n for n in below if n.count("/") == 1]), 31)

    def test_the_listed_folder_itself_is_named_as_the_empty_path(self):
        peer = self.server.peer(version=2)
        self.addCleanup(peer.close)
        _, unreadable, holding = self.listing(peer, "t/bad")
        self.assertEqual(unreadable, [{"path": "", "code": "io_error"}])
        self.assertIn("", holding)
        # The connection goes on: the next listing is whole.
        entries, unreadable, _ = self.listing(peer, "t/good")
        self.assertEqual((sorted(entries), unreadable), (["a.txt", "b.txt", "c.txt"], []))

    def test_version_1_cannot_name_the_folder_and_fails_the_listing(self):
        write(self.root, "poison")
        peer = self.server.peer()
        self.addCleanup(peer.close)
        reply = peer.request({"op": "list"})
        self.assertIs(reply.get("ok"), False, reply)
        self.assertEqual(reply["error"]["code"], "io_error", reply)


if __name__ == "__main__":
    unittest.main()
