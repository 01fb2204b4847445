"""What a get costs ferryd, in system calls that look at a file or folder. Each get of a file in a folder
looks at the served folder by its path (still the root), at the file's name, at the descriptor it opened
(its attributes and the mount it is on), at its folder's place in the tree once the file is open, and at
the file and its name again once its bytes are read (PROTOCOL.md 5.1). A pull of ten thousand files pays
these on every file, so they are counted with strace. The descriptor opened was looked at twice, by fstat
and then by statx for its mount, where one statx gives both: 8 stat calls per small get, then 7. A small file
is read whole by the lookup that opens it, and the check after its read looks its path up from the root
again: that lookup also shows the folder in its place, which a separate look (its folder's stat, a lookup
of the folder's path and a stat of what it found) showed before: 5 stat calls and 2 lookups of a path
from the root (openat2) per small get, where there were 7 and 3.

What a small get says to its peer is ready in one turn of ferryd's loop: the reply, the file's one data frame and
the trailer. The reply's write left alone and the other two followed on the next turn, 2 writes a get; they go
together now, as one write of three buffers (SendQueue::hold)."""

import os
import shutil
import tempfile
import time
import unittest

from wire import Peer, TracedServer, temp_root

STAT_CALLS = "stat,lstat,fstat,newfstatat,statx"
SOCKET_WRITES = "write,writev,sendmsg,sendto"
PATH_LOOKUPS = "openat2"
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

    def traced_gets(self, calls, options=()):
        """The system calls named in CALLS that ferryd made for the gets of every file, one line each (an
        unfinished call counted once, by its start), between two stats that mark them in the trace."""
        trace = os.path.join(self.dir, "trace")
        server = TracedServer(self.root, trace, calls, options)
        try:
            peer = Peer(server.port, version=2)
            try:
                peer.request({"op": "stat", "name": "marker-begin"})
                for name, data in self.contents.items():
                    reply, got, trailer = peer.get(name)
                    self.assertEqual(got, data, (reply, trailer))
                    self.assertTrue(trailer["ok"], trailer)
                peer.request({"op": "stat", "name": "marker-end"})
            finally:
                peer.close()
        finally:
            server.stop()
        with open(trace) as f:
            lines = [line for line in f.read().splitlines() if "resumed>" not in line]
        begin = next(i for i, line in enumerate(lines) if "marker-begin" in line)
        end = next(i for i, line in enumerate(lines) if "marker-end" in line)
        return lines[begin + 1:end]

    def test_a_small_get_looks_at_its_file_through_one_statx_per_descriptor(self):
        calls = self.traced_gets(STAT_CALLS + "," + PATH_LOOKUPS)
        lookups = [line for line in calls if "openat2(" in line]
        stats = [line for line in calls if "openat2(" not in line]
        # 8 calls a get at first, then 7, 5 now (and one for the markers' stats between them).
        self.assertLess(len(stats) / FILES, 5.5, "stat calls per get\n" + "\n".join(calls[:40]))
        # 3 lookups a get before, 2 now: the open's and the check's after the read. Without openat2 (a kernel
        # before 5.6) each lookup is a walk of openat calls, which this count does not see: then it is moot.
        if lookups:
            self.assertLess(len(lookups) / FILES, 2.5, "path lookups per get\n" + "\n".join(calls[:40]))

    def test_a_small_get_reaches_its_peer_in_one_write(self):
        calls = self.traced_gets(SOCKET_WRITES, options=("-y", "-s", "256"))
        # Writes to the peer's socket only: not the log's (stderr), nor libuv's wakeups (an eventfd).
        writes = [line for line in calls if "<socket:[" in line]
        self.assertGreaterEqual(len(writes), FILES, "strace named no socket: " + "\n".join(calls[:20]))
        self.assertLess(len(writes) / FILES, 1.5, "writes to the socket per get\n" + "\n".join(writes[:20]))


if __name__ == "__main__":
    unittest.main()
