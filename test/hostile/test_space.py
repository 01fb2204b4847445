"""An upload larger than the free space, on a file system that fills before
it fails (PROTOCOL.md 4.5, "Disk space").

ext4 (as XFS) gives a fallocate(2) every free block it can before it fails
with ENOSPC, and keeps them until the file lets go. ferryd refuses an
upload the file system reports it cannot hold before any fallocate, and
gives back what a refused one took before it measures the free space for
the message: the disk is never filled for a moment (every other writer on
it would meet ENOSPC then), and the message tells the free space as it is,
never 0 on a disk with room. A scratch ext4 of 8 MiB on a loop device."""

import os
import re
import shutil
import threading
import time
import unittest

import harness
from test_folder_faults import preloaded
from wire import Server, sha256

FERRYD = os.environ.get("FERRYD", "")


def free_bytes(path):
    fs = os.statvfs(path)
    return fs.f_bavail * fs.f_frsize


class UploadLargerThanTheDisk(unittest.TestCase):
    env = None

    def setUp(self):
        self.mount = harness.mount_scratch(self, "ext4")
        self.root = os.path.join(self.mount, "served")
        os.mkdir(self.root)
        self.server = Server(FERRYD, self.root, env=self.env)
        self.addCleanup(self.server.stop)

    def refusal(self, size):
        peer = self.server.peer()
        self.addCleanup(peer.close)
        reply = peer.request({"op": "put", "name": "huge.bin", "size": size})
        self.assertIs(reply.get("ok"), False, reply)
        self.assertEqual(reply["error"]["code"], "no_space", reply)
        # "the disk has N free", or where the file system reports the room
        # but its own records need more: "... although it reports N free".
        told = re.search(r"(?:the disk has|it reports) (\d+) free", reply["error"]["message"])
        self.assertIsNotNone(told, reply)
        return int(told.group(1))

    def test_the_refusal_tells_the_free_space_and_takes_none_of_it(self):
        free = free_bytes(self.root)
        self.assertGreater(free, 2 << 20)
        # Past the free space, and at it (which the room of the upload's
        # state files, counted beside it, takes past).
        for size in (64 << 20, free + 4096, free * 2, free):
            told = self.refusal(size)
            # As measured at that moment, with nothing of the refused upload held: the
            # whole free space, give or take what the file system's own records took.
            self.assertGreater(told, free - (256 << 10), (size, told, free))
            self.assertLessEqual(told, free)
            self.assertGreater(free_bytes(self.root), free - (256 << 10))
        # Nothing left behind, and the room is there for what fits.
        self.assertEqual(os.listdir(self.root), [])
        peer = self.server.peer()
        self.addCleanup(peer.close)
        data = os.urandom(1 << 20)
        self.assertIs(peer.put("fits.bin", data).get("ok"), True)
        with open(os.path.join(self.root, "fits.bin"), "rb") as f:
            self.assertEqual(f.read(), data)


class ASlowUploadCannotHoldTheDisk(unittest.TestCase):
    """Round 30: an upload's reservation held the free space for as long as
    its client sent a byte within each stall timeout, so 3 bytes kept every
    other put out with no_space for minutes. A put the disk refuses now
    takes the space of uploads slower than --min-rate over their last whole
    window (PROTOCOL.md 4.5, 7), as a waiting transfer takes a slot."""

    def setUp(self):
        self.mount = harness.mount_scratch(self, "ext4")
        self.root = os.path.join(self.mount, "served")
        os.mkdir(self.root)
        self.server = Server(FERRYD, self.root, "--stall-timeout", "2")
        self.addCleanup(self.server.stop)

    def test_a_put_takes_the_space_a_trickle_holds(self):
        hog = self.server.peer()
        self.addCleanup(hog.close)
        size = free_bytes(self.root) - (1 << 20)
        reply = hog.request({"op": "put", "name": "hog.bin", "size": size})
        self.assertIs(reply.get("ok"), True, reply)
        self.assertLess(free_bytes(self.root), 1 << 20)
        # Two bytes a second: within every stall timeout, far below the
        # minimum rate over a whole window of it. From a thread, so that the
        # trickle goes on while the victim's put waits for the space (the
        # main thread then sends nothing; 2 s of that would end the hog as
        # stalled, not too slow, on a loaded machine).
        stop = threading.Event()

        def trickle():
            while not stop.wait(0.5):
                try:
                    hog.send_data(b"x")
                except OSError:
                    return  # cut by now

        trickling = threading.Thread(target=trickle, daemon=True)
        trickling.start()
        self.addCleanup(trickling.join, 10)
        self.addCleanup(stop.set)
        time.sleep(4.5)
        victim = self.server.peer(source="127.0.0.2")
        self.addCleanup(victim.close)
        data = os.urandom(2 << 20)
        started = time.monotonic()
        self.assertIs(victim.put("victim.bin", data).get("ok"), True)
        self.assertLess(time.monotonic() - started, 8)
        stop.set()
        trickling.join(10)
        with open(os.path.join(self.root, "victim.bin"), "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertIn("space_taken", self.server.log_text())
        # The trickle ended too slow, kept for a resume with what it sent.
        ended = hog.reply()
        self.assertEqual(ended["error"]["code"], "too_slow", ended)
        self.assertIn("disk space", ended["error"]["message"])

    def test_a_disk_really_full_still_refuses_at_once(self):
        peer = self.server.peer()
        self.addCleanup(peer.close)
        reply = peer.request({"op": "put", "name": "huge.bin", "size": 64 << 20})
        self.assertEqual(reply["error"]["code"], "no_space", reply)
        self.assertNotIn("space_taken", self.server.log_text())

    def test_slow_uploads_that_cannot_make_a_put_fit_are_left_alone(self):
        # Round 31's review: a put larger than the disk ended every slow
        # upload, then was refused anyway.
        hog = self.server.peer()
        self.addCleanup(hog.close)
        reply = hog.request({"op": "put", "name": "hog.bin", "size": 2 << 20})
        self.assertIs(reply.get("ok"), True, reply)
        sent = 0
        deadline = time.monotonic() + 4.5
        while time.monotonic() < deadline:
            hog.send_data(b"x")
            sent += 1
            time.sleep(1)
        peer = self.server.peer(source="127.0.0.2")
        self.addCleanup(peer.close)
        reply = peer.request({"op": "put", "name": "huge.bin", "size": 64 << 20})
        self.assertEqual(reply["error"]["code"], "no_space", reply)
        self.assertNotIn("space_taken", self.server.log_text())
        # The slow upload goes on: its next byte is taken, and it commits.
        hog.send_data(b"x" * ((2 << 20) - sent))
        hog.send({"op": "commit", "id": reply["id"], "sha256": sha256(b"x" * (2 << 20))})
        committed = hog.reply()
        self.assertIs(committed.get("ok"), True, committed)


class AFallocateThatFailsHalfWay(UploadLargerThanTheDisk):
    """The fault library makes every reservation take half its range, then
    fail with ENOSPC, as ext4 does at the edge of a full disk (a race with
    another writer, or the file system's own records): what it took is given
    back before the free space is measured, and nothing of it stays."""

    env = preloaded(FERRY_FALLOCATE_HALF_THEN_ENOSPC="1")

    def test_the_refusal_tells_the_free_space_and_takes_none_of_it(self):
        free = free_bytes(self.root)
        # With its state files (from 1 MiB) and without: half of either is
        # more than the slack allowed below.
        for size in (2 << 20, 900 << 10):
            told = self.refusal(size)
            self.assertGreater(told, free - (256 << 10), (size, told, free))
            self.assertGreater(free_bytes(self.root), free - (256 << 10))
        self.assertEqual(os.listdir(self.root), [])


if __name__ == "__main__":
    unittest.main()
