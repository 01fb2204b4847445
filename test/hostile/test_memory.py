"""Memory per connection is bounded, before and after authentication: a
client that pipelines requests and never reads the replies makes the server
stop reading it (the reply high-water), instead of holding every reply."""

import json
import os
import shutil
import socket
import struct
import subprocess
import time
import unittest

from wire import MEMORY_CHECKS, Server, temp_root, wait_until

FERRYD = os.environ.get("FERRYD", "")

# Well above the bound (a high-water of replies per connection, plus kernel
# buffers that are not RSS), far below what the unbounded server held.
GROWTH_LIMIT_KIB = 24 * 1024


def frame(message):
    payload = json.dumps(message).encode()
    return struct.pack(">BI", 1, len(payload)) + payload


def connect_for_flood(port, hello):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Small buffers: the kernel on our side absorbs little, so what the
    # server cannot send stays with the server.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    if hello:
        sock.sendall(frame({"op": "hello", "id": 0, "version": 1}))
    sock.setblocking(False)
    return sock


def flood_many(port, clients, requests, hello=True, within=6.0):
    """Connects CLIENTS sockets, optionally says hello on each, then sends
    REQUESTS (bytes) on all of them at once, never reading. A socket is done
    when all went out or the server has taken nothing from it for 1.5 s.
    Returns the sockets (kept open) and how many bytes went out in all.

    All at once rather than one after another: the server faces every
    flood together (the harder case), and the wait for each to stall runs
    in parallel (20 one after another took 53 s)."""
    socks = [connect_for_flood(port, hello) for _ in range(clients)]
    sent = [0] * clients
    stuck_since = [None] * clients
    active = set(range(clients))
    deadline = time.time() + within
    while active and time.time() < deadline:
        progressed = False
        for i in list(active):
            if sent[i] >= len(requests):
                active.discard(i)
                continue
            try:
                sent[i] += socks[i].send(requests[sent[i]:sent[i] + 65536])
                stuck_since[i] = None
                progressed = True
            except BlockingIOError:
                # The server stopped reading this one: that is the point.
                stuck_since[i] = stuck_since[i] or time.time()
                if time.time() - stuck_since[i] > 1.5:
                    active.discard(i)
        if not progressed:
            time.sleep(0.02)
    return socks, sum(sent)


def flood(port, requests, hello=True, within=6.0):
    """flood_many with one client: returns its socket and the bytes sent."""
    socks, sent = flood_many(port, 1, requests, hello=hello, within=within)
    return socks[0], sent


@unittest.skipUnless(MEMORY_CHECKS, "resident size is meaningless under ASan")
class PipelinedReplies(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()
        self.sockets = []

    def tearDown(self):
        for sock in self.sockets:
            sock.close()
        shutil.rmtree(self.root)

    def fill_folder(self, count, name_length):
        for i in range(count):
            name = f"{i:06d}".ljust(name_length, "x")
            os.close(os.open(os.path.join(self.root, name), os.O_CREAT | os.O_WRONLY, 0o644))

    def measure(self, server, clients, requests, hello=True, within=8.0):
        """Floods from CLIENTS connections, then watches the server's RSS
        while it works through what it took in; returns (baseline, peak)."""
        baseline = server.rss_kib()
        socks, total = flood_many(server.port, clients, requests, hello=hello)
        self.sockets.extend(socks)
        peak = server.rss_kib()
        deadline = time.time() + within
        while time.time() < deadline and peak - baseline < 4 * GROWTH_LIMIT_KIB:
            time.sleep(0.2)
            peak = max(peak, server.rss_kib())
        self.assertIsNone(server.process.poll(), "ferryd died")
        print(f"  {clients} clients sent {total} bytes of requests; RSS {baseline} KiB -> peak {peak} KiB")
        return baseline, peak

    def test_pipelined_list_without_reading(self):
        # Each reply is ~230 KB for a 30-byte request.
        self.fill_folder(1000, 200)
        requests = b"".join(frame({"op": "list", "id": i}) for i in range(1, 20001))
        with Server(FERRYD, self.root) as server:
            baseline, peak = self.measure(server, 4, requests)
            self.assertLess(peak - baseline, GROWTH_LIMIT_KIB)
            # Still serving everyone else.
            other = server.peer()
            self.assertEqual(len(other.request({"op": "list"})["files"]), 1000)
            other.close()

    def test_pipelined_stats_without_reading(self):
        requests = b"".join(frame({"op": "stats", "id": i}) for i in range(1, 50001))
        with Server(FERRYD, self.root) as server:
            baseline, peak = self.measure(server, 20, requests)
            self.assertLess(peak - baseline, GROWTH_LIMIT_KIB)

    def test_hello_required_replies_without_a_token(self):
        keys = temp_root()
        self.addCleanup(shutil.rmtree, keys)
        tokens = os.path.join(keys, "tokens")
        with open(tokens, "w") as f:
            f.write("t" * 32 + " rw\n")
        os.chmod(tokens, 0o600)
        # Nothing here ever says hello: each request is refused.
        requests = b"".join(frame({"op": "stats", "id": i}) for i in range(1, 50001))
        with Server(FERRYD, self.root, "--token-file", tokens) as server:
            baseline, peak = self.measure(server, 30, requests, hello=False)
            self.assertLess(peak - baseline, GROWTH_LIMIT_KIB)

    def test_the_server_reads_on_once_the_client_reads(self):
        count = 100000
        requests = b"".join(frame({"op": "stats", "id": i}) for i in range(1, count + 1))
        with Server(FERRYD, self.root) as server:
            sock, sent = flood(server.port, requests, within=3.0)
            self.sockets.append(sock)
            self.assertLess(sent, len(requests), "the server read everything: no backpressure to test")
            # Reading the replies lets the rest of the requests in; every
            # request gets its reply, in order.
            buffer = bytearray()
            seen = 0
            deadline = time.time() + 60
            while seen < count and time.time() < deadline:
                if sent < len(requests):
                    try:
                        sent += sock.send(requests[sent:sent + 65536])
                    except BlockingIOError:
                        pass
                try:
                    piece = sock.recv(1 << 20)
                except BlockingIOError:
                    time.sleep(0.001)
                    continue
                self.assertTrue(piece, "the server closed the connection")
                buffer += piece
                at = 0
                while len(buffer) - at >= 5:
                    kind, size = struct.unpack(">BI", buffer[at:at + 5])
                    if len(buffer) - at < 5 + size:
                        break
                    reply = json.loads(buffer[at + 5:at + 5 + size])
                    at += 5 + size
                    if reply["id"] == 0:
                        continue
                    seen += 1
                    self.assertEqual(reply["id"], seen)
                    self.assertTrue(reply["ok"], reply)
                del buffer[:at]
            self.assertEqual(seen, count)


@unittest.skipUnless(MEMORY_CHECKS, "resident size is meaningless under ASan")
class LargeFolder(unittest.TestCase):
    COUNT = 60000

    @classmethod
    def setUpClass(cls):
        cls.root = temp_root()
        # 255-byte names: a single reply would be ~20 MB, over ferryd's
        # single-reply cap; paged, each frame stays small.
        for i in range(cls.COUNT):
            name = f"{i:07d}".ljust(255, "n")
            os.close(os.open(os.path.join(cls.root, name), os.O_CREAT | os.O_WRONLY, 0o644))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root)

    def test_a_paged_listing_costs_the_server_little_per_entry(self):
        with Server(FERRYD, self.root) as server:
            peer = server.peer()
            peer.request({"op": "stats"})
            baseline = server.rss_kib()
            peak = baseline
            peer.send({"op": "list", "paged": True})
            names, pages = set(), 0
            while True:
                reply = peer.reply()
                self.assertTrue(reply["ok"], reply)
                pages += 1
                names.update(f["name"] for f in reply["files"])
                if pages % 20 == 0:
                    peak = max(peak, server.rss_kib())
                if not reply.get("more"):
                    break
            peak = max(peak, server.rss_kib())
            self.assertEqual(len(names), self.COUNT)
            self.assertEqual(reply["skipped_invalid_names"], 0)
            per_entry = (peak - baseline) * 1024 / self.COUNT
            print(f"  {self.COUNT} files in {pages} pages: RSS {baseline} KiB -> peak {peak} KiB, "
                  f"{per_entry:.1f} bytes per entry")
            # 1,000,000 entries at this rate stay under 16 MiB.
            self.assertLess(per_entry * 1000000, 16 * 1024 * 1024)
            # Without pages, the server refuses rather than build ~20 MB.
            refused = peer.request({"op": "list"})
            self.assertEqual(refused["error"]["code"], "list_too_large", refused)
            self.assertLess(server.rss_kib() - baseline, 16 * 1024)
            peer.close()

    def test_ferry_lists_a_folder_too_large_for_one_reply(self):
        ferry = os.path.join(os.path.dirname(FERRYD), "..", "client", "ferry")
        with Server(FERRYD, self.root) as server:
            result = subprocess.run([ferry, "--json", "--server", f"127.0.0.1:{server.port}", "list"],
                                    capture_output=True, timeout=120)
            self.assertEqual(result.returncode, 0, result.stderr.decode(errors="replace"))
            listed = json.loads(result.stdout)
            self.assertEqual(len(listed["files"]), self.COUNT)
            names = [f["name"] for f in listed["files"]]
            self.assertEqual(names, sorted(names))

if __name__ == "__main__":
    unittest.main()
