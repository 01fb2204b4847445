"""Timeouts and shutdown: idle, stalled frames and transfers, draining on
SIGTERM and SIGINT.

Part of the conformance suite (ferryd against docs/PROTOCOL.md);
test_conformance.py runs it with the others.
"""

import os
import signal
import socket
import time
import unittest

from conformance import Ferryd, ServerCase, TIMEOUT, sha


class TimeoutTests(ServerCase):
    server_args = ("--idle-timeout", "1.5", "--stall-timeout", "1")

    @classmethod
    def prepare(cls, root):
        with open(os.path.join(root, "big.bin"), "wb") as f:
            f.truncate(64 << 20)

    def test_idle_timeout(self):
        for hello in (True, False):
            with self.subTest(hello=hello):
                c = self.client(hello=hello)
                t = time.time()
                r = c.recv()
                self.assertError(r, "idle_timeout", None)
                self.assertClosed(c)
                self.assertGreater(time.time() - t, 1.0)

    def test_stalled_frame(self):
        for partial in (b"\x01\x00", b'\x01\x00\x00\x00\x10{"op"',
                        b"\x02\x00\x00\x00\x10"):
            with self.subTest(partial=partial):
                c = self.client()
                c.send_raw(partial)
                self.assertError(c.recv(), "stalled", None)
                self.assertClosed(c)

    def test_stalled_data_frame_outside_an_upload(self):
        """SERVER BUG (reported): a data frame outside an upload whose
        payload has begun to arrive but stops is not cut after the stall
        timeout (1 s here) with `stalled`, as section 6 says ("a frame ...
        made no progress"); ferryd waits for the idle timeout (1.5 s here,
        300 s by default) and answers idle_timeout. Header alone, or a
        control frame cut the same way, do get `stalled`."""
        c = self.client()
        c.send_raw(b"\x02\x00\x00\x00\x10abc")   # 3 of 16 payload bytes
        self.assertError(c.recv(), "stalled", None)
        self.assertClosed(c)

    def test_stalled_upload_can_be_resumed(self):
        c = self.client()
        self.put_start(c, "slow.bin", 6, rid=5)
        c.send_data(b"abc")
        self.assertError(c.recv(), "stalled", 5)
        self.assertClosed(c)
        d = self.client()
        r = self.resume_when_free(d, "slow.bin", 6, rid=6)
        self.assertEqual((r["offset"], r["prefix_sha256"]), (3, sha(b"abc")))
        d.send_data(b"def")
        d.send({"op": "commit", "id": 6, "sha256": sha(b"abcdef")})
        self.assertTrue(d.recv()["ok"])

    def test_stalled_download(self):
        c = self.client()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        stalls_before = self.server.read_log().count("code=stalled")
        c.send({"op": "get", "id": 7, "name": "big.bin"})
        # Read nothing until ferryd has logged the stall (which it does
        # before it sends the error): no progress for > 1 s. A fixed wait
        # would not do under load, where the sweep forgives the time its
        # loop did not run, and reading sooner would be progress.
        deadline = time.time() + TIMEOUT
        while self.server.read_log().count("code=stalled") == stalls_before:
            self.assertLess(time.time(), deadline, "ferryd never saw the download stall")
            time.sleep(0.05)
        self.assertTrue(c.recv()["ok"])
        body, _, end = self.read_transfer(c)
        self.assertLess(len(body), 64 << 20)
        self.assertError(end, "stalled", 7)
        self.assertClosed(c)


class ShutdownTests(unittest.TestCase):

    def test_idle_connections_get_shutting_down(self):
        s = Ferryd(drain=30)
        self.addCleanup(s.cleanup)
        a = s.client()
        b = s.client(hello=False)
        # b's connect returns once the kernel queued it: until ferryd has
        # accepted it, it is no connection of ferryd's, and closing the
        # listener at SIGTERM resets it (seen under load). Wait for stats to
        # count both (4.8's connections.now).
        deadline = time.time() + TIMEOUT
        while a.request("stats", id=90)["connections"]["now"] < 2:
            self.assertLess(time.time(), deadline, "ferryd never accepted the second connection")
            time.sleep(0.01)
        t = time.time()
        s.proc.send_signal(signal.SIGTERM)
        for c in (a, b):
            r = c.recv()
            self.assertEqual((r["id"], r["ok"], r["error"]["code"]),
                             (None, False, "shutting_down"))
            self.assertTrue(c.at_eof())
            # Closed as a client does once it has read the end: ferryd
            # waits a moment for a peer that keeps its side open (so that
            # its last words are not cut by a reset), which the bound
            # below is not about.
            c.close()
        self.assertEqual(s.proc.wait(TIMEOUT), 0)
        # Well under the drain time of 30 s that idle connections must not wait out; not tighter, since the
        # exit includes the sanitizers' leak check on a loaded machine.
        self.assertLess(time.time() - t, 15)

    def test_running_upload_finishes_before_shutting_down(self):
        s = Ferryd(drain=10)
        self.addCleanup(s.cleanup)
        c = s.client()
        c.send({"op": "put", "id": 1, "name": "late.bin", "size": 4})
        self.assertTrue(c.recv()["ok"])
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        c.send_data(b"last")
        c.send({"op": "commit", "id": 1, "sha256": sha(b"last")})
        r = c.recv()
        self.assertEqual((r["id"], r["ok"]), (1, True))
        r = c.recv()
        self.assertEqual(r["error"]["code"], "shutting_down")
        self.assertTrue(c.at_eof())
        self.assertEqual(s.proc.wait(TIMEOUT), 0)
        with open(s.path("late.bin"), "rb") as f:
            self.assertEqual(f.read(), b"last")

    def test_drain_time_over_then_resume_on_a_new_server(self):
        s = Ferryd(drain=0.5)
        self.addCleanup(s.cleanup)
        c = s.client()
        c.send({"op": "put", "id": 3, "name": "cut.bin", "size": 8})
        self.assertTrue(c.recv()["ok"])
        c.send_data(b"1234")
        time.sleep(0.1)
        s.proc.send_signal(signal.SIGTERM)
        r = c.recv()
        # DOC: the table does not say which id; it is the put's.
        self.assertEqual((r["id"], r["error"]["code"]), (3, "shutting_down"))
        self.assertTrue(c.at_eof())
        self.assertEqual(s.proc.wait(TIMEOUT), 0)
        s2 = Ferryd(root=s.root)
        self.addCleanup(s2.cleanup)
        d = s2.client()
        d.send({"op": "put", "id": 4, "name": "cut.bin", "size": 8,
                "resume": True})
        r = d.recv()
        self.assertEqual((r["offset"], r["prefix_sha256"]), (4, sha(b"1234")))
        d.send_data(b"5678")
        d.send({"op": "commit", "id": 4, "sha256": sha(b"12345678")})
        self.assertTrue(d.recv()["ok"])
        self.assertEqual(s2.stop(), 0)

    def test_sigint_also_stops_cleanly(self):
        s = Ferryd()
        self.addCleanup(s.cleanup)
        c = s.client()
        s.proc.send_signal(signal.SIGINT)
        self.assertEqual(c.recv()["error"]["code"], "shutting_down")
        self.assertEqual(s.proc.wait(TIMEOUT), 0)
