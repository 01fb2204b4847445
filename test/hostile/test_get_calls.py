"""What a get costs ferryd, in system calls that look at a file or folder. Each get of a file in a folder
looks at the served folder by its path (still the root), at the file's name, at the descriptor it opened
(its attributes and the mount it is on), at its folder's place in the tree once the file is open, and at
the file and its name again once its bytes are read (PROTOCOL.md 5.1). A pull of ten thousand files pays
these on every file, so they are counted with strace. The descriptor opened was looked at twice, by fstat
and then by statx for its mount, where one statx gives both: 8 stat calls per small get, now 7."""

import os
import shutil
import tempfile
import time
import unittest

from wire import Peer, TracedServer, temp_root

STAT_CALLS = "stat,lstat,fstat,newfstatat,statx"
FILES = 20


@unittest.skipUnless(shutil.which("strace"), "needs strace")
class GetCalls(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ferry-get-calls-")
        self.addCleanup(shutil.rmtree, self.dir)
        self.root = temp_root()
        self.addCleanup(shutil.rmtree, self.root)
        os.makedirs(os.path.join(self.root, "t", "sub"))
        self.contents = {}
        for index in range(FILES):
            name = f"t/sub/f{index:02}.bin"
            self.contents[name] = os.urandom(1000 + index)
            with open(os.path.join(self.root, name), "wb") as out:
                out.write(self.contents[name])
        # A file changed within the second before its get is read once more before its trailer (a write in
        # the same timestamp tick would not show): counted here are the gets of settled files, a pull's.
        time.sleep(1.1)

    def test_a_small_get_looks_at_its_file_through_one_statx_per_descriptor(self):
        trace = os.path.join(self.dir, "trace")
        server = TracedServer(self.root, trace, STAT_CALLS)
        try:
            peer = Peer(server.port, version=2)
            try:
                peer.request({"op": "stat", "name": "marker-begin"})
                for name, data in self.contents.items():
                    reply, got, trailer = peer.get(name)
                    self.assertEqual(got, data, (reply, trailer))
                peer.request({"op": "stat", "name": "marker-end"})
            finally:
                peer.close()
        finally:
            server.stop()
        with open(trace) as f:
            lines = f.read().splitlines()
        begin = next(i for i, line in enumerate(lines) if "marker-begin" in line)
        end = next(i for i, line in enumerate(lines) if "marker-end" in line)
        # An unfinished call is counted once, by its start.
        calls = [line for line in lines[begin + 1:end] if "resumed>" not in line]
        # 8 calls a get before, 7 now (and one for the markers' stats between them).
        self.assertLess(len(calls) / FILES, 7.5, "stat calls per get\n" + "\n".join(calls[:40]))


if __name__ == "__main__":
    unittest.main()
