"""SIGTERM: no new connections, running transfers finish within the drain
time, the rest are cut, nothing half-written shows, exit status 0."""

import os
import shutil
import signal
import socket
import time
import unittest

from wire import Peer, Server, hidden_entries, sha256, temp_root, wait_until

FERRYD = os.environ.get("FERRYD", "")


class Shutdown(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()
        self.content = os.urandom(64 << 20)
        with open(os.path.join(self.root, "file.bin"), "wb") as f:
            f.write(self.content)

    def tearDown(self):
        shutil.rmtree(self.root)

    def test_running_download_finishes_idle_ones_are_told(self):
        server = Server(FERRYD, self.root, "--drain-timeout", "20")
        idle = server.peer()
        reader = server.peer()
        reply = reader.request({"op": "get", "name": "file.bin"})
        self.assertTrue(reply["ok"])
        reader.frame()  # the transfer is under way
        server.process.send_signal(signal.SIGTERM)
        # The idle connection is told and closed.
        told = idle.reply()
        self.assertEqual(told["error"]["code"], "shutting_down")
        # No new connection is accepted.
        self.assertTrue(wait_until(lambda: not self._connects(server.port)))
        # The running download completes, whole and verified.
        data = bytearray()
        while True:
            kind, body = reader.frame()
            if kind == 2:
                data += body
            else:
                break
        self.assertTrue(body["ok"], body)
        self.assertEqual(body["sha256"], sha256(self.content))
        self.assertEqual(server.stop(), 0)

    def _connects(self, port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def test_drain_time_over_cuts_transfers_and_keeps_uploads_hidden(self):
        server = Server(FERRYD, self.root, "--drain-timeout", "0.5")
        stalled = server.peer()
        stalled.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.send({"op": "get", "name": "file.bin"})
        uploader = server.peer()
        reply = uploader.request({"op": "put", "name": "new.bin", "size": 8 << 20})
        uploader.send_data(os.urandom(1 << 20))
        started = time.time()
        self.assertEqual(server.stop(timeout=20), 0)
        self.assertLess(time.time() - started, 10)
        names = os.listdir(self.root)
        self.assertNotIn("new.bin", names)
        self.assertEqual(len(hidden_entries(self.root)), 2)  # kept for resume
        with open(os.path.join(self.root, "file.bin"), "rb") as f:
            self.assertEqual(f.read(), self.content)


if __name__ == "__main__":
    unittest.main()
