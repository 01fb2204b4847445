"""A digest (PROTOCOL.md 4.9) of a file that a local writer cuts short
while the server reads it: a change like any other, so the server reads
the file again once, and a file still changing is file_changed; never
io_error, which says the disk failed (6).

strace holds the server's first read of the file (as in
test_moved_meanwhile) while the test truncates it, so the read comes back
short whatever the machine's speed."""

import hashlib
import os
import shutil
import tempfile
import time
import unittest

from test_folder_faults import preloaded, fault_library
from test_moved_meanwhile import HeldCall, replied
from wire import Peer, Server, wait_until

FERRYD = os.environ.get("FERRYD", "")

SIZE = 3 * 1024 * 1024  # three of the server's 1 MiB reads
KEPT = 1000


@unittest.skipUnless(shutil.which("strace"), "needs strace")
class DigestOfAFileCutShort(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="ferry-shrunk-")
        self.root = os.path.join(self.base, "share")
        os.makedirs(os.path.join(self.root, "d"))
        self.path = os.path.join(self.root, "d", "v.bin")
        with open(self.path, "wb") as f:
            f.write(os.urandom(SIZE))
        asan = (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
        self.server = Server(FERRYD, self.root, env={"ASAN_OPTIONS": asan})
        self.peer = Peer(self.server.port, version=2)
        self.held = None

    def tearDown(self):
        if self.held:
            self.held.stop()
        self.peer.close()
        self.server.stop()
        shutil.rmtree(self.base)

    def test_a_file_cut_short_during_the_read_is_read_again(self):
        # Each thread's first pread only: the read again is not held.
        self.held = HeldCall(self.server.pid, "pread64", self.base, nth=1)
        sent = self.peer.send({"op": "digest", "name": "d/v.bin"})
        self.assertTrue(self.held.wait_for_the_hold(), "the digest never reached its read")
        self.assertFalse(replied(self.peer), "answered before the cut: strace did not hold the read")
        os.truncate(self.path, KEPT)
        reply = self.peer.reply()
        self.held.stop()
        self.held = None
        self.assertEqual(reply.get("id"), sent, reply)
        self.assertTrue(reply.get("ok"), f"a file cut short once is read again, not refused: {reply}")
        with open(self.path, "rb") as f:
            self.assertEqual(reply["sha256"], hashlib.sha256(f.read()).hexdigest())
        self.assertEqual(reply["size"], KEPT)

    def reading(self, count):
        """Whether a thread of the server is in the held pread of `count` bytes
        (/proc/PID/task/TID/syscall: the call's number, then its arguments,
        pread's third one the count; proc(5))."""
        for task in os.listdir(f"/proc/{self.server.pid}/task"):
            try:
                with open(f"/proc/{self.server.pid}/task/{task}/syscall") as f:
                    fields = f.read().split()
            except OSError:
                continue
            if len(fields) > 3 and fields[0] == str(self.held.number) and int(fields[3], 16) == count:
                return True
        return False

    @unittest.skipUnless(os.uname().machine in ("x86_64", "aarch64"), "reads the held call's arguments")
    def test_b_a_file_cut_short_at_every_read_is_file_changed(self):
        # The first read of each try held (the 1st and 3rd pread: each try's
        # second read finds the end), and the file cut shorter during each.
        self.held = HeldCall(self.server.pid, "pread64", self.base, nth="1+2")
        sent = self.peer.send({"op": "digest", "name": "d/v.bin"})
        for reads, cut_to in ((1024 * 1024, KEPT), (KEPT, KEPT // 2)):
            self.assertTrue(wait_until(lambda: self.reading(reads), within=20, step=0.01),
                            f"the digest never reached its read of {reads} bytes")
            os.truncate(self.path, cut_to)
        reply = self.peer.reply()
        self.held.stop()
        self.held = None
        self.assertEqual(reply.get("id"), sent, reply)
        self.assertFalse(reply.get("ok"), reply)
        self.assertEqual(reply["error"]["code"], "file_changed", reply)
        self.assertIn("shrank", reply["error"]["message"])
        self.assertIn("while it was hashed (each of 2 tries); ask again", reply["error"]["message"])


@unittest.skipUnless(os.path.isfile(fault_library()), "needs the fault library (test/faults)")
class DigestOfAFreshFile(unittest.TestCase):
    """A file written in the second before its digest's open may be written
    again within its timestamp tick, where neither its size nor its times
    move: the server reads it twice and compares, as a get does before its
    trailer (round 66: a digest of a file rewritten in place answered ok
    with bytes it never held whole). Counted with the fault library's log
    of OpenSSL's SHA-256 updates."""

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="ferry-fresh-")
        self.root = os.path.join(self.base, "share")
        os.mkdir(self.root)
        self.log = os.path.join(self.base, "sha256.log")
        self.server = Server(FERRYD, self.root, env=preloaded(FERRY_SHA256_LOG=self.log))
        self.peer = Peer(self.server.port, version=2)

    def tearDown(self):
        self.peer.close()
        self.server.stop()
        shutil.rmtree(self.base)

    def hashed_bytes(self):
        if not os.path.exists(self.log):
            return 0
        with open(self.log) as f:
            return sum(int(line.split()[1]) for line in f if line.strip())

    def digest_of(self, name, data, age):
        path = os.path.join(self.root, name)
        with open(path, "wb") as f:
            f.write(data)
        if age:
            # Its change time cannot be set: wait until it is old enough.
            time.sleep(age)
        before = self.hashed_bytes()
        reply = self.peer.request({"op": "digest", "name": name})
        self.assertTrue(reply.get("ok"), reply)
        self.assertEqual(reply["sha256"], hashlib.sha256(data).hexdigest())
        return self.hashed_bytes() - before

    def test_a_fresh_file_is_read_twice_and_a_settled_one_once(self):
        data = os.urandom(200_000)
        # A loaded machine may open it more than a second after the write:
        # a few fresh files, one of which must be read twice.
        fresh = [self.digest_of(f"fresh{n}.bin", data, 0) for n in range(3)]
        self.assertIn(2 * len(data), fresh)
        self.assertEqual(self.digest_of("settled.bin", data, 1.2), len(data))


if __name__ == "__main__":
    unittest.main()
