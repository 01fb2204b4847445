"""A put finds its own kept upload (to resume it, or to say busy) by its path
and size alone: the system calls of a put do not grow with what else the
served folder holds, be it thousands of files or the kept uploads of other
names (PROTOCOL.md 4.7). Counted with strace, file calls only (the socket's
reads and writes, and the threads' wake-ups, vary with timing)."""

import os
import shutil
import tempfile
import unittest

from wire import Peer, TracedServer, temp_root, wait_until


# Every call that names or reads a file or a folder's entries; each put's
# count of these is the same from run to run.
FILE_CALLS = ("open,openat,openat2,getdents64,stat,lstat,fstat,newfstatat,statx,pread64,flock,"
              "unlink,unlinkat,rename,renameat,renameat2,mkdirat,fallocate,ftruncate")
PUTS = 6
KEPT = 20


@unittest.skipUnless(shutil.which("strace"), "needs strace")
class PutLookup(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ferry-put-lookup-")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def calls_per_put(self, crowded):
        """File calls of ferryd for PUTS puts (half with resume) of new
        names; with `crowded`, into a root holding 3,000 files and KEPT kept
        uploads of other names."""
        root = temp_root()
        trace = os.path.join(self.dir, "trace-crowded" if crowded else "trace-empty")
        try:
            if crowded:
                for i in range(3000):
                    with open(os.path.join(root, f"file{i:04}"), "wb") as f:
                        f.write(b"x")
            server = TracedServer(root, trace, FILE_CALLS)
            try:
                if crowded:
                    for i in range(KEPT):
                        peer = Peer(server.port)
                        peer.put(f"kept{i}.bin", os.urandom(4096), commit=False)
                        peer.close()
                    # Each keep ends by giving back its state's spare (the
                    # put made the state, empty, and the spare).
                    self.assertTrue(wait_until(lambda: sum(n.endswith(".state") for n in os.listdir(root)) == KEPT
                                               and not any(n.endswith(".state.tmp") for n in os.listdir(root)),
                                               within=30), os.listdir(root))
                peer = Peer(server.port)
                # Markers in the trace around the puts: a stat names its path.
                peer.request({"op": "stat", "name": "marker-begin"})
                for i in range(PUTS):
                    reply = peer.put(f"new{i}.bin", b"y" * 1024, resume=i % 2 == 1)
                    self.assertTrue(reply["ok"], reply)
                peer.request({"op": "stat", "name": "marker-end"})
                peer.close()
            finally:
                server.stop()
            with open(trace) as f:
                lines = f.read().splitlines()
        finally:
            shutil.rmtree(root)
        begin = next(i for i, line in enumerate(lines) if "marker-begin" in line)
        end = next(i for i, line in enumerate(lines) if "marker-end" in line)
        # An unfinished call is counted once, by its start.
        puts = [line for line in lines[begin + 1:end] if "resumed>" not in line]
        return len(puts) / PUTS, puts

    def test_a_puts_file_calls_do_not_grow_with_the_roots_entries_or_other_kept_uploads(self):
        empty, _ = self.calls_per_put(crowded=False)
        crowded, calls = self.calls_per_put(crowded=True)
        getdents = sum("getdents" in line for line in calls)
        # The same calls, whatever else the root holds: no listing of it, no
        # reading of other uploads' states.
        self.assertEqual(getdents, 0, "a put read the root's entries")
        self.assertLessEqual(crowded, empty + 0.5, "file calls per put: %.1f in a crowded root, %.1f in an empty one\n%s"
                             % (crowded, empty, "\n".join(calls[:200])))


if __name__ == "__main__":
    unittest.main()
