"""Fairness: a slow but steady peer is served, a trickling one cannot hold
the transfer slots, and ferryd's own pauses are not blamed on its peers."""

import os
import shutil
import signal
import socket
import struct
import threading
import time
import unittest

from wire import DATA, Closed, Peer, Server, sha256, temp_root, wait_until

FERRYD = os.environ.get("FERRYD", "")


class Trickle:
    """A put that sends one byte every `every` seconds on its own thread:
    never quiet long enough to stall, far too slow to deserve a slot."""

    def __init__(self, server, name, source="127.0.0.1", every=0.5):
        self.peer = Peer(server.port, source=source)
        reply = self.peer.request({"op": "put", "name": name, "size": 100000})
        assert reply["ok"], reply
        self.every = every
        self.ended = None  # the error code that ended it, if any
        self.stop = threading.Event()
        self.peer.sock.settimeout(0.01)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        pending = b""
        while not self.stop.is_set():
            try:
                self.peer.send_data(b"x")
            except OSError:
                pass
            # Anything the server says ends the upload (a put gets no reply
            # before its commit).
            try:
                while True:
                    piece = self.peer.sock.recv(4096)
                    if not piece:
                        break
                    pending += piece
            except (socket.timeout, BlockingIOError):
                pass
            except OSError:
                break
            if len(pending) >= 5:
                text = pending[5:].decode(errors="replace")
                self.ended = "too_slow" if "too_slow" in text else text
                break
            self.stop.wait(self.every)
        self.stop.set()

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.peer.close()


class Fairness(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()
        self.content = os.urandom(256 * 1024)
        with open(os.path.join(self.root, "file.bin"), "wb") as f:
            f.write(self.content)
        self.trickles = []

    def tearDown(self):
        for trickle in self.trickles:
            trickle.close()
        shutil.rmtree(self.root)

    def honest_get(self, server, source):
        """One attempt at a whole get; returns the error code or "ok"."""
        try:
            peer = Peer(server.port, source=source)
            try:
                reply, data, end = peer.get("file.bin")
            finally:
                peer.close()
        except (Closed, OSError) as error:
            return f"connection: {error!r}"
        if not reply["ok"]:
            return reply["error"]["code"]
        self.assertEqual(data, self.content)
        self.assertEqual(end.get("sha256"), sha256(self.content), end)
        return "ok"

    def test_trickles_from_one_address_leave_the_other_slots_free(self):
        with Server(FERRYD, self.root, "--max-transfers", "8", "--stall-timeout", "3", "--drain-timeout", "1") as server:
            started = []
            for n in range(8):
                try:
                    self.trickles.append(Trickle(server, f"t{n}.bin"))
                    started.append(n)
                except AssertionError:
                    pass  # the address's share is taken: that is the point
            self.assertLess(len(started), 8, "one address took every slot")
            # Another client gets in at once, without waiting for a window.
            self.assertEqual(self.honest_get(server, "127.0.0.2"), "ok")

    def test_trickles_lose_their_slots_to_a_waiting_transfer(self):
        # One trickle per address, so no per-address share protects anyone:
        # the minimum rate is what frees a slot.
        # A window of 3 s: a trickle thread starved of the GIL or a core for a while is not quiet for all of it.
        with Server(FERRYD, self.root, "--max-transfers", "4", "--stall-timeout", "3", "--drain-timeout", "1") as server:
            for n in range(4):
                self.trickles.append(Trickle(server, f"t{n}.bin", source=f"127.0.0.{n + 1}"))
            started = time.time()
            outcomes = []
            # Within one window (3 s) and a sweep, plus a generous margin.
            while time.time() - started < 20:
                outcome = self.honest_get(server, "127.0.0.9")
                outcomes.append(outcome)
                if outcome == "ok":
                    break
                self.assertEqual(outcome, "too_many_transfers")
                time.sleep(0.25)
            self.assertEqual(outcomes[-1], "ok", outcomes)
            self.assertLess(time.time() - started, 20)
            # The trickle that lost its slot was told why.
            self.assertTrue(wait_until(lambda: any(t.ended for t in self.trickles), within=5))
            self.assertIn("too_slow", [t.ended for t in self.trickles if t.ended])
            self.assertIn("too_slow", server.log_text())

    def test_a_steady_slow_reader_is_not_cut(self):
        # 40 KB/s with small socket buffers: the server's writes complete
        # only every few seconds, but the peer acknowledges bytes all along.
        # The file is far larger than every buffer on the way together, so
        # the transfer runs all through the slow part.
        content = os.urandom(24 * 1024 * 1024)
        with open(os.path.join(self.root, "slow.bin"), "wb") as f:
            f.write(content)
        with Server(FERRYD, self.root, "--stall-timeout", "2") as server:
            peer = server.peer()
            peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
            self.assertTrue(peer.request({"op": "get", "name": "slow.bin"})["ok"])
            received = bytearray()
            steady_until = time.time() + 10
            while time.time() < steady_until:
                piece = peer.sock.recv(4096)
                if not piece:
                    break
                received += piece
                time.sleep(0.1)
            # Then the rest at full speed, up to the trailer (or an error).
            data, end = read_download(peer.sock, received)
            peer.close()
            self.assertIsNotNone(end, "the server closed without a trailer")
            self.assertNotIn(b"stalled", end)
            self.assertEqual(data, content)
            self.assertIn(sha256(content).encode(), end)

    def test_a_pause_of_the_server_is_not_blamed_on_its_peers(self):
        big = os.urandom(8 * 1024 * 1024)
        # Timeouts of 2 and 4 s: the uploader, a Python thread, gets going again well within them once the
        # server does.
        with Server(FERRYD, self.root, "--stall-timeout", "2", "--idle-timeout", "4") as server:
            idle = server.peer()
            uploader = server.peer()
            reply = uploader.request({"op": "put", "name": "up.bin", "size": len(big)})
            self.assertTrue(reply["ok"], reply)
            put_id = uploader.next_id - 1
            outcome = {}

            def upload():
                try:
                    for at in range(0, len(big), 64 * 1024):
                        uploader.send_data(big[at:at + 64 * 1024])
                        time.sleep(0.01)  # about 5 MB/s: still sending when the pause ends
                    outcome["commit"] = uploader.request({"op": "commit", "id": put_id, "sha256": sha256(big)})
                except (OSError, Closed) as error:
                    outcome["error"] = repr(error)

            sender = threading.Thread(target=upload, daemon=True)
            sender.start()
            time.sleep(0.5)
            os.kill(server.pid, signal.SIGSTOP)
            time.sleep(5.5)  # longer than both timeouts
            os.kill(server.pid, signal.SIGCONT)
            time.sleep(0.3)
            # The idle connection kept the idle time it had left.
            self.assertTrue(idle.request({"op": "stat", "name": "file.bin"})["ok"])
            sender.join(60)
            self.assertFalse(sender.is_alive())
            self.assertNotIn("error", outcome, outcome)
            self.assertTrue(outcome["commit"]["ok"], outcome["commit"])
            with open(os.path.join(self.root, "up.bin"), "rb") as f:
                self.assertEqual(f.read(), big)
            idle.close()
            uploader.close()
            self.assertIn("resumed", server.log_text())


def read_download(sock, received):
    """Reads the frames that follow a get's reply, `received` being their
    first bytes; returns (data, the control frame that ends them, or None
    when the server closed first)."""
    buffer = bytearray(received)
    data = bytearray()
    at = 0
    while True:
        while at + 5 <= len(buffer):
            kind, size = struct.unpack(">BI", buffer[at:at + 5])
            if at + 5 + size > len(buffer):
                break
            payload = bytes(buffer[at + 5:at + 5 + size])
            at += 5 + size
            if kind != DATA:
                return bytes(data), payload
            data += payload
        del buffer[:at]
        at = 0
        piece = sock.recv(1 << 20)
        if not piece:
            return bytes(data), None
        buffer += piece


if __name__ == "__main__":
    unittest.main()
