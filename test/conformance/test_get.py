"""get: offsets, frame sizes, errors, and a file that changes while it is sent.

Part of the conformance suite (ferryd against docs/PROTOCOL.md);
test_conformance.py runs it with the others.
"""

import os
import socket
import time

import ferry_wire as fw
from conformance import MTIME, ServerCase, sha, write_file


class GetTests(ServerCase):
    BIG = bytes(os.urandom(1 << 20)) + b"0123456789abc"   # > 4 chunks

    @classmethod
    def prepare(cls, root):
        write_file(os.path.join(root, "hello.txt"), b"hello", MTIME)
        write_file(os.path.join(root, "big.bin"), cls.BIG)
        write_file(os.path.join(root, "empty"), b"", MTIME)
        os.mkdir(os.path.join(root, "dir"))

    def get(self, c, name, offset=None, rid=21):
        req = {"op": "get", "id": rid, "name": name}
        if offset is not None:
            req["offset"] = offset
        r = self.ask(c, req)
        self.assertTrue(r.get("ok"), r)
        body, sizes, end = self.read_transfer(c)
        return r, body, sizes, end

    def check_get(self, name, content, offset, default=False):
        c = self.client()
        r, body, sizes, end = self.get(c, name, None if default else offset)
        self.assertEqual(r["id"], 21)
        self.assertEqual(r["name"], name)
        self.assertEqual(r["size"], len(content))
        self.assertEqual(r["offset"], offset)
        self.assertEqual(r["mtime"],
                         int(os.stat(self.server.path(name)).st_mtime))
        self.assertEqual(body, content[offset:])
        for n in sizes:
            self.assertLessEqual(n, 16777216)
        self.assertEqual(end, {"id": 21, "ok": True, "done": True,
                               "size": len(content), "sha256": sha(content)})
        self.assertUsable(c)
        return sizes

    def test_get_offset_zero(self):
        self.check_get("hello.txt", b"hello", 0)

    def test_get_default_offset_is_zero(self):
        self.check_get("hello.txt", b"hello", 0, default=True)

    def test_get_from_the_middle(self):
        self.check_get("hello.txt", b"hello", 2)

    def test_get_at_the_end_sends_no_data(self):
        sizes = self.check_get("hello.txt", b"hello", 5)
        self.assertEqual(sum(sizes), 0)

    def test_get_empty_file(self):
        self.check_get("empty", b"", 0)

    def test_get_big_file_in_several_frames(self):
        self.check_get("big.bin", self.BIG, 0)
        self.check_get("big.bin", self.BIG, 300001)
        self.check_get("big.bin", self.BIG, len(self.BIG) - 1)

    def test_data_frames_are_at_most_256_kib(self):
        """Section 2: ferryd's data frames carry at most 262,144 bytes, also
        when it sends a file whose digest it knows straight from the page
        cache (the second download)."""
        content = os.urandom(5 * 1024 * 1024 + 17)
        write_file(self.server.path("frames.bin"), content)
        time.sleep(1.2)   # a digest is remembered only for a settled file
        for attempt in range(3):
            for offset in (0, 100001):
                with self.subTest(attempt=attempt, offset=offset):
                    sizes = self.check_get("frames.bin", content, offset)
                    self.assertLessEqual(max(sizes), 262144)

    def test_get_past_the_end(self):
        c = self.client()
        for name, off in (("hello.txt", 6), ("empty", 1),
                          ("big.bin", len(self.BIG) + 1),
                          ("hello.txt", 2 ** 64 - 1)):
            with self.subTest(name=name, offset=off):
                self.assertError(self.ask(c, {"op": "get", "id": 22,
                                              "name": name, "offset": off}),
                                 "bad_offset", 22)
        self.assertUsable(c)

    def test_get_errors(self):
        c = self.client()
        self.assertError(self.ask(c, {"op": "get", "id": 23,
                                      "name": "nope"}), "not_found", 23)
        self.assertError(self.ask(c, {"op": "get", "id": 24, "name": "dir"}),
                         "not_regular_file", 24)
        self.assertError(self.ask(c, {"op": "get", "id": 25, "name": "../x"}),
                         "invalid_name", 25)
        for bad in (-1, 1.5, "0", None, True):
            with self.subTest(offset=bad):
                self.assertError(self.ask(c, {"op": "get", "id": 26,
                                              "name": "hello.txt",
                                              "offset": bad}),
                                 "bad_request", 26)
        self.assertUsable(c)

    def test_requests_pipelined_behind_a_get(self):
        c = self.client()
        c.send_raw(fw.control({"op": "get", "id": 31, "name": "big.bin"}) +
                   fw.control({"op": "stat", "id": 32, "name": "hello.txt"}) +
                   fw.control({"op": "get", "id": 33, "name": "hello.txt",
                               "offset": 1}) +
                   fw.control({"op": "list", "id": 34}))
        r = c.recv()
        self.assertEqual((r["id"], r["ok"]), (31, True))
        body, _, end = self.read_transfer(c)
        self.assertEqual(body, self.BIG)
        self.assertEqual((end["id"], end["done"]), (31, True))
        r = c.recv()
        self.assertEqual((r["id"], r["size"]), (32, 5))
        r = c.recv()
        self.assertEqual((r["id"], r["offset"]), (33, 1))
        body, _, end = self.read_transfer(c)
        self.assertEqual((body, end["id"], end["sha256"]),
                         (b"ello", 33, sha(b"hello")))
        self.assertEqual(c.recv()["id"], 34)

    def test_client_leaving_in_the_middle_of_a_download(self):
        c = self.client()
        c.send({"op": "get", "id": 35, "name": "big.bin"})
        self.assertTrue(c.recv()["ok"])
        c.recv_frame()
        c.close()
        d = self.client()
        self.check_get("hello.txt", b"hello", 0)
        self.assertUsable(d)


class GetShrinkTest(ServerCase):
    """A file that changes during a get: file_changed instead of the trailer."""

    SIZE = 48 << 20

    def setUp(self):
        super().setUp()
        with open(self.server.path("big.bin"), "wb") as f:
            f.truncate(self.SIZE)         # sparse: quick to make
        # Older than any timestamp tick, so that the change moves the times.
        old = time.time() - 10
        os.utime(self.server.path("big.bin"), (old, old))
        time.sleep(1.1)

    def changed_get(self, change, rid):
        # DOC: section 4.4: any change of the file between the open and the
        # trailer ends the transfer with file_changed in place of the trailer.
        c = self.client()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        r = self.ask(c, {"op": "get", "id": rid, "name": "big.bin"})
        self.assertEqual((r["ok"], r["size"]), (True, self.SIZE))
        change(self.server.path("big.bin"))
        body, _, end = self.read_transfer(c)
        self.assertLess(len(body), self.SIZE)
        self.assertError(end, "file_changed", rid)
        self.assertUsable(c)

    def test_file_shrinking_during_get_is_file_changed(self):
        self.changed_get(lambda path: os.truncate(path, 1000), 41)

    def test_file_shrinking_under_frames_already_sent_is_file_changed(self):
        # DOC: section 4.4: a file that shrinks under frames whose sizes are
        # on the wire (a server sending with sendfile(2), here with the
        # digest known, which it sends from the page cache) still ends with
        # file_changed in place of the trailer, the connection whole.
        c = self.client(hello=False)
        self.assertTrue(c.hello(version=2)["ok"])
        r = self.ask(c, {"op": "digest", "id": 43, "name": "big.bin"})
        self.assertTrue(r.get("ok"), r)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        r = self.ask(c, {"op": "get", "id": 44, "name": "big.bin"})
        self.assertEqual((r["ok"], r["size"]), (True, self.SIZE))
        first = c.recv_frame()
        self.assertTrue(first.is_data)
        os.truncate(self.server.path("big.bin"), 1000)
        body, _, end = self.read_transfer(c)
        self.assertLess(len(first.payload) + len(body), self.SIZE)
        self.assertError(end, "file_changed", 44)
        self.assertUsable(c)

    def test_file_rewritten_in_place_during_get_is_file_changed(self):
        def rewrite(path):
            # Same name, inode and size; other bytes (what cp over it does
            # once it has written the whole file again).
            with open(path, "r+b") as f:
                f.write(b"\xff" * 4096)
        self.changed_get(rewrite, 42)
