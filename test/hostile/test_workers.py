"""--workers N: N event loops on one port behave as one server: limits and
stats are server-wide, every client is served, and SIGTERM drains them all."""

import os
import shutil
import signal
import subprocess
import unittest

from wire import DATA, Peer, Server, sha256, temp_root, wait_until

FERRYD = os.environ.get("FERRYD", "")


def thread_count(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


class Workers(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()
        self.data = os.urandom(300000)
        with open(os.path.join(self.root, "a.bin"), "wb") as f:
            f.write(self.data)

    def tearDown(self):
        shutil.rmtree(self.root)

    def test_many_clients_over_four_loops_see_one_server(self):
        with Server(FERRYD, self.root, "--workers", "4") as server:
            # The supervisor and four loops, besides libuv's pool threads.
            self.assertTrue(wait_until(lambda: thread_count(server.pid) >= 5))
            peers = [server.peer() for _ in range(40)]
            for peer in peers:
                _, body, trailer = peer.get("a.bin")
                self.assertEqual(body, self.data)
                self.assertEqual(trailer["sha256"], sha256(self.data))
            stats = peers[0].request({"op": "stats"})
            self.assertEqual(stats["connections"], {"now": 40, "total": 40})
            self.assertEqual(stats["transfers"]["total"], 40)
            self.assertEqual(stats["bytes"]["out"], 40 * len(self.data))
            for peer in peers[1:]:
                peer.close()
            self.assertTrue(wait_until(
                lambda: peers[0].request({"op": "stats"})["connections"]["now"] == 1))

    def test_limits_hold_across_loops(self):
        with Server(FERRYD, self.root, "--workers", "4", "--max-connections-per-address", "6") as server:
            held = [server.peer() for _ in range(6)]
            for attempt in range(4):  # whichever loop the kernel picks
                refused = Peer(server.port, hello=False)
                self.assertEqual(refused.reply()["error"]["code"], "address_limit")
                refused.close()
            held.pop().close()
            self.assertTrue(wait_until(
                lambda: held[0].request({"op": "stats"})["connections"]["now"] == 5))
            held.append(server.peer())
        with Server(FERRYD, self.root, "--workers", "3", "--max-transfers", "1", "--max-connections", "3") as server:
            peers = [server.peer() for _ in range(3)]
            refused = Peer(server.port, hello=False)
            self.assertEqual(refused.reply()["error"]["code"], "server_full")

    def test_sigterm_drains_every_loop(self):
        big = os.urandom(8 << 20)
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            f.write(big)
        server = Server(FERRYD, self.root, "--workers", "3")
        try:
            downloader = server.peer()
            idle = [server.peer() for _ in range(6)]
            downloader.send({"op": "get", "id": 9, "name": "big.bin", "offset": 0})
            self.assertTrue(downloader.reply()["ok"])
            server.process.send_signal(signal.SIGTERM)
            for peer in idle:
                self.assertEqual(peer.reply()["error"]["code"], "shutting_down")
            received = bytearray()
            while True:
                frame = downloader.frame()
                if frame[0] == DATA:
                    received += frame[1]
                    continue
                break
            self.assertEqual(bytes(received), big)
            self.assertEqual(server.process.wait(timeout=15), 0)
        finally:
            server.stop()

    def test_a_lone_worker_does_not_share_its_port(self):
        with Server(FERRYD, self.root, "--workers", "1") as server:
            second = subprocess.run(
                [FERRYD, "--root", self.root, "--listen", f"127.0.0.1:{server.port}", "--workers", "1"],
                capture_output=True, timeout=10)
            self.assertNotEqual(second.returncode, 0)
            self.assertIn(b"cannot listen", second.stderr)

    def test_a_second_server_cannot_take_the_port_of_many_workers(self):
        other = temp_root()
        try:
            with Server(FERRYD, self.root, "--workers", "4") as server:
                second = subprocess.run(
                    [FERRYD, "--root", other, "--listen", f"127.0.0.1:{server.port}", "--workers", "4"],
                    capture_output=True, timeout=10)
                self.assertNotEqual(second.returncode, 0)
                self.assertIn(b"address already in use", second.stderr)
                # Every client still reaches the first server.
                for _ in range(8):
                    peer = server.peer()
                    names = [f["name"] for f in peer.request({"op": "list"})["files"]]
                    self.assertEqual(names, ["a.bin"])
                    peer.close()
        finally:
            shutil.rmtree(other)


if __name__ == "__main__":
    unittest.main()
