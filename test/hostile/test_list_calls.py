"""What a recursive listing costs ferryd per folder, in system calls that look at a file or folder: each
entry is looked at once (one statx, its attributes and its mount), and each folder entered costs a
bounded few more (opened relative to its parent; its own statx; its stream's set-up; and once it is read,
one lookup of its path from the root, to know it was not moved out of the tree meanwhile, PROTOCOL.md 5.1).
A listing of thousands of folders (a sync's) pays these on every folder, so they are counted with
strace. There were 5 per folder beside its entry's, where 3 do (its descriptor was looked at by fstat and by
statx on entering, and by fstat again at each check of its place)."""

import os
import shutil
import tempfile
import unittest

from wire import Peer, TracedServer, temp_root

STAT_CALLS = "stat,lstat,fstat,newfstatat,statx"
FOLDERS = (12, 8)  # 12 folders each holding 8: 108 folders below the root
FILES_EACH = 5


def make_tree(root):
    folders = files = 0
    for a in range(FOLDERS[0]):
        folders += 1
        for b in range(FOLDERS[1]):
            folder = os.path.join(root, "t", f"a{a:02}", f"b{b}")
            os.makedirs(folder)
            folders += 1
            for f in range(FILES_EACH):
                with open(os.path.join(folder, f"f{f}.txt"), "wb") as out:
                    out.write(b"x" * f)
                files += 1
    return folders, files


@unittest.skipUnless(shutil.which("strace"), "needs strace")
class ListCalls(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ferry-list-calls-")
        self.addCleanup(shutil.rmtree, self.dir)
        self.root = temp_root()
        self.addCleanup(shutil.rmtree, self.root)
        self.folders, self.files = make_tree(self.root)

    def listing(self, port):
        """Every entry of a recursive listing of "t", all pages, between two marker stats."""
        peer = Peer(port, version=2)
        try:
            peer.request({"op": "stat", "name": "marker-begin"})
            peer.send({"op": "list", "path": "t", "recursive": True})
            names = []
            while True:
                page = peer.reply()
                self.assertIs(page.get("ok"), True, page)
                names += [entry["name"] for entry in page["files"]]
                if not page.get("more"):
                    break
            peer.request({"op": "stat", "name": "marker-end"})
        finally:
            peer.close()
        return names

    def test_a_folder_listed_costs_a_few_stat_calls_besides_one_per_entry(self):
        trace = os.path.join(self.dir, "trace")
        server = TracedServer(self.root, trace, STAT_CALLS)
        try:
            names = self.listing(server.port)
        finally:
            server.stop()
        self.assertEqual(len(names), self.folders + self.files)
        with open(trace) as f:
            lines = f.read().splitlines()
        begin = next(i for i, line in enumerate(lines) if "marker-begin" in line)
        end = next(i for i, line in enumerate(lines) if "marker-end" in line)
        # An unfinished call is counted once, by its start.
        calls = [line for line in lines[begin + 1:end] if "resumed>" not in line]
        per_folder = (len(calls) - len(names)) / self.folders
        self.assertLessEqual(per_folder, 4, "stat calls per folder besides one per entry\n"
                             + "\n".join(calls[:120]))


if __name__ == "__main__":
    unittest.main()
