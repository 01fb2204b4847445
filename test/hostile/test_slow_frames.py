"""Slowloris: a peer that trickles the bytes of a frame (a byte now and
then) must not hold its connection. A request, hello included, on a
version-1 or version-2 connection, plaintext or TLS, between transfers or
(a commit, a data frame's header) during an upload, must arrive whole
within the stall timeout counted from its first byte; an upload is kept
alive only by file bytes, not by empty data frames."""

import os
import select
import shutil
import ssl
import struct
import time
import unittest

from wire import Server, hidden_entries, sha256, temp_root, wait_until  # noqa: I100 (sets the path first)
from ferry_client import wire as codec  # noqa: E402
from test_tls import make_certificate  # noqa: E402

FERRYD = os.environ.get("FERRYD", "")

STALL = 1.0   # --stall-timeout, seconds
STEP = 0.2    # one byte this often: five times a second, far more often than STALL
# The sweep checks every STALL/4; the rest is room for a loaded machine.
LATEST = STALL + 2.0


class SlowFrames(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()
        self.peers = []

    def tearDown(self):
        for peer in self.peers:
            peer.close()
        shutil.rmtree(self.root)

    def server(self, *args):
        return Server(FERRYD, self.root, "--stall-timeout", str(STALL), "--idle-timeout", "30", *args)

    def connect(self, server, **kwargs):
        peer = server.peer(**kwargs)
        self.peers.append(peer)
        return peer

    def trickle(self, peer, frame, step=STEP):
        """Sends every byte of FRAME but its last, one each STEP, until the
        server answers; returns the seconds from the first byte to the
        answer (None if none came within a further 3 s) and the answer.
        The bytes are spaced well within the stall timeout and take far
        longer than it in all: only a deadline from the first byte cuts
        them in time."""
        self.assertLess(step, STALL)
        # Counted from the last byte (the old rule), the stall timeout would
        # end it only after LATEST.
        self.assertGreater((len(frame) - 2) * step + STALL, LATEST + 0.5, "the trickle must outlast the deadline")
        started = time.monotonic()
        answered = False
        for byte in frame[:-1]:
            try:
                peer.send_raw(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                answered = True
                break
            if self._readable(peer, step):
                answered = True
                break
        if not answered and not self._readable(peer, 3.0):
            return None, None
        elapsed = time.monotonic() - started
        return elapsed, peer.reply()

    @staticmethod
    def _readable(peer, seconds):
        if isinstance(peer.sock, ssl.SSLSocket) and peer.sock.pending():
            return True
        return bool(select.select([peer.sock], [], [], seconds)[0])

    def assert_cut_at_deadline(self, server, peer, frame, request_id=None, step=STEP):
        elapsed, reply = self.trickle(peer, frame, step)
        self.assertIsNotNone(elapsed, "the server let the trickled frame go on")
        self.assertFalse(reply["ok"], reply)
        self.assertEqual(reply["error"]["code"], "stalled", reply)
        self.assertIn("of its first byte", reply["error"]["message"])
        self.assertEqual(reply["id"], request_id, reply)
        self.assertGreaterEqual(elapsed, STALL * 0.9)
        self.assertLess(elapsed, LATEST, "cut %.2f s after the first byte" % elapsed)
        self.assertTrue(peer.closed_by_server())
        log = server.log_text()
        self.assertIn("code=stalled", log)
        self.assertIn("of its first byte", log)

    def test_a_trickled_hello(self):
        with self.server() as server:
            peer = self.connect(server, hello=False)
            frame = codec.control({"op": "hello", "id": 1, "version": 2})
            self.assert_cut_at_deadline(server, peer, frame)

    def test_a_trickled_request_on_a_version_1_connection(self):
        with self.server() as server:
            peer = self.connect(server, version=1)
            self.assertEqual(peer.version, 1)
            self.assert_cut_at_deadline(server, peer, codec.control({"op": "list", "id": 5}))

    def test_a_trickled_request_between_transfers_on_version_2(self):
        with self.server() as server:
            peer = self.connect(server, version=2)
            self.assertEqual(peer.version, 2)
            data = os.urandom(100000)
            self.assertTrue(peer.put("a.bin", data)["ok"])
            _, received, trailer = peer.get("a.bin")
            self.assertEqual(received, data)
            self.assertTrue(trailer["ok"])
            self.assert_cut_at_deadline(server, peer, codec.control({"op": "stat", "id": 50, "name": "a.bin"}))

    def test_a_frame_header_trickled_a_byte_a_second(self):
        with self.server() as server:
            peer = self.connect(server)
            # Its 5 bytes at 0.9 s, each within the stall timeout of the last.
            header = codec.control({"op": "list", "id": 2})[:5]
            self.assert_cut_at_deadline(server, peer, header, step=0.9)

    def test_a_trickled_commit_ends_the_upload_which_stays_resumable(self):
        with self.server() as server:
            peer = self.connect(server)
            data = os.urandom(3000)
            reply = peer.put("u.bin", data, commit=False)
            self.assertTrue(reply["ok"], reply)
            commit = codec.control({"op": "commit", "id": reply["id"], "sha256": sha256(data)})
            self.assert_cut_at_deadline(server, peer, commit, request_id=reply["id"])
            self.assertEqual(len(hidden_entries(self.root)), 2)  # the kept upload and its state
            # And it resumes from every byte sent.
            again = self.connect(server)
            self.assertTrue(again.put("u.bin", data, resume=True)["ok"])
            with open(os.path.join(self.root, "u.bin"), "rb") as f:
                self.assertEqual(f.read(), data)

    def test_a_trickled_data_frame_header_during_an_upload(self):
        with self.server() as server:
            peer = self.connect(server)
            lib = peer.library()
            upload = lib.open_put("v.bin", 200)
            upload.write(b"x" * 100)
            # Its payload would be file data (progress); its header is not.
            header = struct.pack(">BI", codec.KIND_DATA, 100)
            self.assert_cut_at_deadline(server, peer, header, request_id=upload.reply["id"], step=0.9)

    def test_empty_data_frames_do_not_keep_an_upload_alive(self):
        with self.server() as server:
            peer = self.connect(server)
            lib = peer.library()
            upload = lib.open_put("w.bin", 200)
            upload.write(b"x" * 100)
            last_file_byte = time.monotonic()
            answered = False
            while time.monotonic() - last_file_byte < LATEST + 2:
                try:
                    peer.send_raw(codec.data(b""))
                except (BrokenPipeError, ConnectionResetError):
                    answered = True
                    break
                if self._readable(peer, STEP):
                    answered = True
                    break
            self.assertTrue(answered or self._readable(peer, 1.0), "empty data frames kept the upload alive")
            self.assertLess(time.monotonic() - last_file_byte, LATEST + 1)
            reply = peer.reply()
            self.assertEqual(reply["error"]["code"], "stalled", reply)
            self.assertEqual(reply["id"], upload.reply["id"])

    def test_a_trickled_request_behind_tls(self):
        keys = temp_root()
        try:
            cert, key = make_certificate(keys)
            client = ssl.create_default_context(cafile=cert)
            client.minimum_version = ssl.TLSVersion.TLSv1_3
            with self.server("--tls-cert", cert, "--tls-key", key) as server:
                peer = self.connect(server, tls=client)
                # Python's TLS socket sends each byte as a record of its own.
                self.assert_cut_at_deadline(server, peer, codec.control({"op": "list", "id": 9}))
        finally:
            shutil.rmtree(keys)

    def test_a_quick_request_after_a_long_quiet_is_served(self):
        # Between frames the idle timeout governs, not the frame deadline.
        with self.server() as server:
            peer = self.connect(server)
            time.sleep(STALL * 2.5)
            reply = peer.request({"op": "list"})
            self.assertTrue(reply["ok"], reply)

    def test_many_trickling_peers_are_all_let_go(self):
        # Slowloris connections that fill the server all end at their
        # deadline while they still trickle, and make room again.
        with self.server("--max-connections", "30") as server:
            peers = [self.connect(server) for _ in range(30)]
            frame = codec.control({"op": "list", "id": 3})
            started = time.monotonic()
            waiting = set(range(len(peers)))
            for byte in frame[:-1]:
                for index in list(waiting):
                    try:
                        peers[index].send_raw(bytes([byte]))
                    except OSError:
                        waiting.discard(index)
                time.sleep(STEP)
                for index in list(waiting):
                    if self._readable(peers[index], 0):
                        waiting.discard(index)
                if not waiting:
                    break
            self.assertFalse(waiting, "%d trickling peers still held" % len(waiting))
            self.assertLess(time.monotonic() - started, LATEST + 1)
            for peer in peers:
                self.assertTrue(peer.closed_by_server())
                peer.close()
            # Room again for a client that means it.
            self.assertTrue(wait_until(lambda: self._can_list(server), within=5))

    def _can_list(self, server):
        try:
            peer = server.peer()
        except Exception:  # refused (server_full) while the others linger
            return False
        try:
            return peer.request({"op": "list"})["ok"]
        finally:
            peer.close()


if __name__ == "__main__":
    unittest.main()
