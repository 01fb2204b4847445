"""A download under way when ferryd runs out of file descriptors.

While a download's range waits for room in its socket, ferryd watches a
second descriptor of the socket (send_queue.hpp). A process out of
descriptors cannot make one (EMFILE): the range then looks for room on a
timer until it can, and the download finishes whole; it is never cut
mid-frame for want of a descriptor. The fault library preloaded into ferryd
(test/faults/fs_faults.cpp) makes the first copies of a descriptor fail
with EMFILE, as a real shortage does."""

import os
import shutil
import socket
import time
import unittest

from test_folder_faults import preloaded
from wire import CONTROL, Server, sha256, temp_root

FERRYD = os.environ.get("FERRYD", "")


class DescriptorsShortMidDownload(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()
        self.addCleanup(shutil.rmtree, self.root)
        self.data = os.urandom(8 << 20)
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            f.write(self.data)
        # Settled: a file changed (its ctime) within the last second is sent
        # from memory rather than with sendfile (server/download.cpp), and
        # never waits on the watch.
        time.sleep(1.1)

    def download_through_a_shortage(self, failures):
        """Two downloads of 8 MiB; returns how many copies of the socket failed."""
        met = os.path.join(self.root, ".emfile-log")
        with Server(FERRYD, self.root, env=preloaded(FERRY_DUPFD_EMFILE=str(failures),
                                                     FERRY_DUPFD_EMFILE_LOG=met)) as server:
            peer = server.peer()
            # A small receive window: the server's sends meet a full socket
            # many times over 8 MiB.
            peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 << 10)
            # Nothing read for a while first: the server's wait for room runs
            # past its timer to the watch whatever the machine's speed (a fast
            # reader kept every wait within the timer, and no copy was asked).
            peer.send({"op": "get", "name": "big.bin"})
            time.sleep(0.5)
            reply = peer.reply()
            pieces = []
            while True:
                kind, body = peer.frame()
                if kind == CONTROL:
                    trailer = body
                    break
                pieces.append(body)
            data = b"".join(pieces)
            self.assertIs(reply.get("ok"), True, reply)
            self.assertIs(trailer.get("ok"), True, trailer)
            self.assertEqual((len(data), sha256(data)), (len(self.data), sha256(self.data)))
            # The connection goes on: a second download, after the shortage.
            reply, again, trailer = peer.get("big.bin")
            self.assertIs(trailer.get("ok"), True, trailer)
            self.assertEqual(sha256(again), sha256(self.data))
            peer.close()
            log = server.log_text()
        self.assertNotIn("code=internal", log)
        self.assertNotIn("dup of the socket", log)
        with open(met) as f:
            return len(f.read().splitlines())

    def test_a_download_waits_for_room_without_a_watch_then_with_one(self):
        # Up to 12 failed copies: looks on the timer (1, 2, 4, 8, then 16 ms
        # apart while nothing moves), then the watch takes over.
        self.assertIn(self.download_through_a_shortage(12), range(1, 13))

    def test_a_download_finishes_with_no_descriptor_to_watch_it_at_all(self):
        self.assertGreater(self.download_through_a_shortage(1_000_000), 0)


if __name__ == "__main__":
    unittest.main()
