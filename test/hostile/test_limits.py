"""Each limit is a flag; each refusal is its own error code, then close."""

import os
import shutil
import socket
import struct
import time
import unittest

from wire import MEMORY_CHECKS, Closed, Peer, Server, has_ipv6_loopback, hidden_entries, temp_root, wait_until

FERRYD = os.environ.get("FERRYD", "")


class Limits(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            f.truncate(512 * 1024 * 1024)  # sparse: costs no disk
        self.peers = []

    def tearDown(self):
        for peer in self.peers:
            peer.close()
        shutil.rmtree(self.root)

    def connect(self, server, **kwargs):
        peer = server.peer(**kwargs)
        self.peers.append(peer)
        return peer

    def assert_refused_then_closed(self, peer, code):
        reply = peer.reply()
        self.assertFalse(reply["ok"], reply)
        self.assertEqual(reply["error"]["code"], code, reply)
        self.assertTrue(peer.closed_by_server())

    def test_total_connections(self):
        with Server(FERRYD, self.root, "--max-connections", "3") as server:
            held = [self.connect(server) for _ in range(3)]
            extra = self.connect(server, hello=False)
            self.assert_refused_then_closed(extra, "server_full")
            held[0].close()
            self.peers.remove(held[0])
            # Once one leaves, a newcomer gets in.
            self.assertTrue(wait_until(lambda: self._can_connect(server)))

    def _can_connect(self, server):
        try:
            peer = server.peer()
        except (AssertionError, Closed, OSError):
            return False
        peer.close()
        return True

    def test_refused_peers_that_never_close_are_let_go(self):
        with Server(FERRYD, self.root, "--max-connections", "1") as server:
            self.connect(server)
            baseline = server.open_descriptors()
            stubborn = [self.connect(server, hello=False) for _ in range(20)]
            for peer in stubborn:
                self.assertEqual(peer.reply()["error"]["code"], "server_full")
            # They keep their sockets open; the server's linger ends anyway.
            self.assertTrue(wait_until(lambda: server.open_descriptors() <= baseline, within=8))
            more = [self.connect(server, hello=False) for _ in range(5)]
            for peer in more:
                self.assertEqual(peer.reply()["error"]["code"], "server_full")
            started = time.time()
            self.assertEqual(server.stop(), 0)
            self.assertLess(time.time() - started, 8)

    def test_connections_per_address(self):
        with Server(FERRYD, self.root, "--max-connections-per-address", "2", listen="0.0.0.0:0") as server:
            self.connect(server)
            self.connect(server)
            extra = self.connect(server, hello=False)
            self.assert_refused_then_closed(extra, "address_limit")
            # Another loopback address is another client.
            self.connect(server, source="127.0.0.2")

    @unittest.skipUnless(has_ipv6_loopback(), "needs IPv6")
    def test_an_ipv4_peer_of_a_dual_stack_listener_is_named_as_ipv4(self):
        """A socket bound to [::] alone takes IPv4 peers too, as IPv4-mapped addresses (::ffff:127.0.0.1, RFC
        4291 2.5.5.2). The log named such a peer so, and an operator looking for 127.0.0.1 did not find it."""
        with Server(FERRYD, self.root, "--max-connections-per-address", "2", listen="[::]:0") as server:
            self.connect(server)
            self.connect(server)
            self.assert_refused_then_closed(self.connect(server, hello=False), "address_limit")
            # IPv6's own loopback is another address.
            self.peers.append(Peer(server.port, host="::1"))
            self.assertTrue(wait_until(lambda: "peer=127.0.0.1:" in server.log_text()), server.log_text())
            self.assertTrue(wait_until(lambda: "peer=[::1]:" in server.log_text()), server.log_text())
            self.assertNotIn("::ffff:", server.log_text())

    def test_idle_timeout(self):
        with Server(FERRYD, self.root, "--idle-timeout", "0.3") as server:
            peer = self.connect(server)
            self.assert_refused_then_closed(peer, "idle_timeout")

    def test_hello_has_a_deadline_that_requests_before_it_do_not_move(self):
        """A peer that says no hello holds one of its address's slots only for the handshake timeout, not the
        idle timeout: silent, sending half a hello, or sending requests refused with hello_required."""
        with Server(FERRYD, self.root, "--idle-timeout", "60", "--handshake-timeout", "0.6") as server:
            silent = self.connect(server, hello=False)
            half = self.connect(server, hello=False)
            half.send_raw(b"\x01\x00\x00\x00\x40{")
            chatty = self.connect(server, hello=False)
            started = time.monotonic()
            codes = []
            while time.monotonic() - started < 5:
                try:
                    chatty.send({"op": "list"})
                    reply = chatty.reply()
                except (Closed, OSError):
                    break
                codes.append(reply["error"]["code"])
                if reply["error"]["code"] != "hello_required":
                    break
                time.sleep(0.1)
            self.assertLess(time.monotonic() - started, 3, codes)
            self.assertEqual(codes[-1], "idle_timeout", codes)
            for peer in (silent, half):
                reply = peer.reply()
                self.assertEqual((reply["id"], reply["error"]["code"]), (None, "idle_timeout"), reply)
                self.assertIn("no hello within", reply["error"]["message"])
                self.assertTrue(peer.closed_by_server())
            # After hello the idle timeout holds, not the deadline.
            greeted = self.connect(server)
            time.sleep(1.2)
            self.assertTrue(greeted.request({"op": "list"})["ok"])

    def test_half_a_frame_stalls(self):
        with Server(FERRYD, self.root, "--stall-timeout", "0.3") as server:
            peer = self.connect(server)
            peer.send_raw(b"\x01\x00\x00")
            self.assert_refused_then_closed(peer, "stalled")

    def test_control_frame_size(self):
        with Server(FERRYD, self.root, "--max-control-frame", "1024") as server:
            peer = self.connect(server)
            peer.send_raw(struct.pack(">BI", 1, 1025) + b" " * 1025)
            self.assert_refused_then_closed(peer, "frame_too_large")
            peer = self.connect(server)
            padded = b'{"op":"list","id":1' + b" " * (1024 - 20) + b"}"
            self.assertEqual(len(padded), 1024)
            peer.send_raw(struct.pack(">BI", 1, 1024) + padded)
            self.assertTrue(peer.reply()["ok"])

    def test_upload_size(self):
        with Server(FERRYD, self.root, "--max-upload-size", "1000") as server:
            peer = self.connect(server)
            self.assertTrue(peer.put("ok.bin", b"x" * 1000)["ok"])
            peer.send({"op": "put", "name": "big", "size": 1001})
            self.assert_refused_then_closed(peer, "upload_too_large")
            self.assertEqual(hidden_entries(self.root), [])

    def test_concurrent_transfers(self):
        with Server(FERRYD, self.root, "--max-transfers", "1") as server:
            busy = self.connect(server)
            busy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            self.assertTrue(busy.request({"op": "get", "name": "big.bin"})["ok"])
            other = self.connect(server)
            other.send({"op": "get", "name": "big.bin"})
            self.assert_refused_then_closed(other, "too_many_transfers")
            # Requests that are no transfers still work meanwhile.
            third = self.connect(server)
            self.assertTrue(third.request({"op": "stat", "name": "big.bin"})["ok"])

    def test_refusals_cost_almost_nothing(self):
        with Server(FERRYD, self.root, "--max-connections", "1") as server:
            self.connect(server)
            descriptors = server.open_descriptors()
            before = server.rss_kib()
            for _ in range(300):
                refused = Peer(server.port, hello=False)
                refused.reply()
                refused.close()
            if MEMORY_CHECKS:
                self.assertLess(server.rss_kib() - before, 2048)
            self.assertTrue(wait_until(lambda: server.open_descriptors() == descriptors))


if __name__ == "__main__":
    unittest.main()
