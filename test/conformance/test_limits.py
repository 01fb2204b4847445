"""The server's limits: connections, addresses, upload size, errors, transfers,
rates, and the disk (no space, no descriptors).

Part of the conformance suite (ferryd against docs/PROTOCOL.md);
test_conformance.py runs it with the others.
"""

import os
import resource
import shutil
import tempfile
import time
import unittest

from conformance import Ferryd, ServerCase, TIMEOUT, sha, write_file


class ConnectionLimitTests(unittest.TestCase):

    def server(self, *args):
        s = Ferryd(args)
        self.addCleanup(s.cleanup)
        self.addCleanup(lambda: self.assertEqual(s.stop(), 0))
        return s

    def test_server_full(self):
        s = self.server("--max-connections", "1")
        a = s.client()
        b = s.client(hello=False)
        r = b.recv()              # sent right after connecting
        self.assertEqual(r["error"]["code"], "server_full")
        self.assertIsNone(r["id"])
        self.assertTrue(b.at_eof())
        a.close()
        deadline = time.time() + TIMEOUT
        while True:               # the slot frees once the server sees it
            c = s.client(hello=False)
            c.send({"op": "hello", "id": 0, "version": 1})
            r = c.recv()
            if r["ok"] or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertTrue(r["ok"], r)

    def test_address_limit(self):
        s = self.server("--max-connections-per-address", "2")
        s.client()
        s.client()
        c = s.client(hello=False)
        r = c.recv()
        self.assertEqual((r["id"], r["ok"], r["error"]["code"]),
                         (None, False, "address_limit"))
        self.assertTrue(c.at_eof())

    def test_upload_too_large(self):
        s = self.server("--max-upload-size", "100")
        c = s.client()
        c.send({"op": "put", "id": 1, "name": "ok.bin", "size": 100})
        self.assertTrue(c.recv()["ok"])
        c.send_data(bytes(100))
        c.send({"op": "commit", "id": 1, "sha256": sha(bytes(100))})
        self.assertTrue(c.recv()["ok"])
        c.send({"op": "put", "id": 2, "name": "big.bin", "size": 101})
        r = c.recv()
        self.assertEqual((r["id"], r["error"]["code"]),
                         (2, "upload_too_large"))
        self.assertTrue(c.at_eof())

    def test_root_unavailable(self):
        parent = tempfile.mkdtemp(prefix="ferry-conformance-")
        self.addCleanup(shutil.rmtree, parent, True)
        root = os.path.join(parent, "share")
        os.mkdir(root)
        s = Ferryd(root=root)
        self.addCleanup(s.cleanup)
        self.addCleanup(lambda: self.assertEqual(s.stop(), 0))
        c = s.client()
        os.rename(root, root + ".old")
        c.send({"op": "list", "id": 1})
        r = c.recv()
        self.assertEqual((r["id"], r["ok"], r["error"]["code"]),
                         (1, False, "root_unavailable"))
        os.rename(root + ".old", root)   # stays open, and recovers
        self.assertEqual(c.request("list", id=2)["files"], [])

    def test_too_many_errors(self):
        s = self.server("--max-protocol-errors", "3")
        c = s.client()
        for i in range(3):
            c.send({"op": "no-such-op", "id": i})
            self.assertEqual(c.recv()["error"]["code"], "unknown_op")
        c.send({"op": "no-such-op", "id": 3})
        r = c.recv()
        self.assertEqual((r["id"], r["ok"], r["error"]["code"]),
                         (None, False, "too_many_errors"))
        self.assertTrue(c.at_eof())
        # Failed operations are no protocol errors: they never close.
        d = s.client()
        for i in range(5):
            d.send({"op": "stat", "id": i, "name": "missing.txt"})
            self.assertEqual(d.recv()["error"]["code"], "not_found")

    def test_too_many_transfers(self):
        s = self.server("--max-transfers", "1")
        write_file(s.path("f.txt"), b"content")
        a = s.client()
        a.send({"op": "put", "id": 1, "name": "up.bin", "size": 2})
        self.assertTrue(a.recv()["ok"])
        for req in ({"op": "get", "id": 2, "name": "f.txt"},
                    {"op": "put", "id": 3, "name": "x.bin", "size": 1}):
            with self.subTest(op=req["op"]):
                b = s.client()
                self.assertEqual(b.request("list", id=9)["id"], 9)
                b.send(req)
                r = b.recv()
                self.assertEqual((r["id"], r["error"]["code"]),
                                 (req["id"], "too_many_transfers"))
                self.assertTrue(b.at_eof())
        a.send_data(b"ok")
        a.send({"op": "commit", "id": 1, "sha256": sha(b"ok")})
        self.assertTrue(a.recv()["ok"])
        _, body, _ = s.client().get("f.txt")
        self.assertEqual(body, b"content")

    def test_too_slow(self):
        """Section 7: a transfer below the minimum rate over a whole window
        of the stall timeout gives its slot to one that would otherwise be
        refused, and ends with too_slow; its upload stays resumable."""
        # A window of 2 s: a loop below that loaded by the sanitizers still
        # sends a byte well within it (never stalled).
        s = self.server("--max-transfers", "1", "--stall-timeout", "2",
                        "--min-rate", "1000")
        write_file(s.path("f.txt"), b"content")
        a = s.client()
        a.send({"op": "put", "id": 1, "name": "slow.bin", "size": 100})
        self.assertTrue(a.recv()["ok"])
        deadline = time.time() + TIMEOUT
        while True:
            a.send_data(b"x")    # never stalled, far below 1000 bytes/s
            b = s.client()
            b.send({"op": "get", "id": 2, "name": "f.txt"})
            r = b.recv()
            if r["ok"]:
                break
            self.assertEqual((r["id"], r["error"]["code"]),
                             (2, "too_many_transfers"))
            self.assertLess(time.time(), deadline)
            time.sleep(0.3)
        body, _, end = self.read_transfer(b)
        self.assertEqual((body, end["ok"]), (b"content", True))
        r = a.recv()
        self.assertEqual((r["id"], r["error"]["code"]), (1, "too_slow"))
        self.assertTrue(a.at_eof())

    read_transfer = ServerCase.read_transfer


def settled_lowest_free_descriptor(pid, steady_reads=5, every=0.05, within=10.0):
    """The lowest descriptor number that process pid leaves free (the one
    its next open(2) would get), once its descriptors have read the same
    steady_reads times in a row (every seconds apart). ferryd opens and
    closes some after it says it listens (/etc/localtime for its first log
    line, start-up work on the pool): a reading taken while one of those was
    open leaves a free slot under a limit set from it."""
    def held():
        return {int(n) for n in os.listdir("/proc/%d/fd" % pid)}
    deadline = time.time() + within
    last, same = held(), 0
    while same < steady_reads and time.time() < deadline:
        time.sleep(every)
        now = held()
        same = same + 1 if now == last else 0
        last = now
    return min(set(range(len(last) + 1)) - last)


class DiskErrorTests(unittest.TestCase):
    """no_space and io_error, provoked with resource limits of the server
    process (the operator's side): RLIMIT_FSIZE stands for a full disk,
    RLIMIT_NOFILE makes every open() fail."""

    def server(self, limits):
        s = Ferryd(limits=limits)
        self.addCleanup(s.cleanup)
        self.addCleanup(lambda: self.assertEqual(s.stop(), 0))
        return s

    def test_no_space_while_data_arrives(self):
        # RLIMIT_FSIZE: writing past 100,000 bytes fails with EFBIG
        s = self.server({"fsize": 100000})
        write_file(s.path("old.bin"), b"old")
        c = s.client()
        data = bytes(200000)
        c.send({"op": "put", "id": 1, "name": "old.bin", "size": len(data)})
        self.assertTrue(c.recv()["ok"])
        try:
            c.send_data(data)
        except OSError:
            pass                  # the server may already have closed
        r = c.recv()
        self.assertEqual((r["id"], r["error"]["code"]), (1, "no_space"))
        self.assertTrue(c.at_eof())
        with open(s.path("old.bin"), "rb") as f:
            self.assertEqual(f.read(), b"old")
        # Whatever was kept must be consistent (see the report: the server
        # currently keeps nothing after no_space).
        d = s.client()
        d.send({"op": "put", "id": 2, "name": "old.bin", "size": len(data),
                "resume": True})
        r = d.recv()
        self.assertTrue(r["ok"], r)
        if r["offset"]:
            self.assertEqual(r["prefix_sha256"], sha(data[:r["offset"]]))
        d.send({"op": "abort", "id": 2, "discard": True})
        self.assertTrue(d.recv()["ok"])

    # Under UBSan every first check of a C++ object's dynamic type probes
    # memory through a pipe(2); with no descriptor left that probe fails and
    # UBSan reports a false "invalid vptr" and exits. The sanitizer run
    # (FERRY_SANITIZED) leaves this one test to the normal build.
    @unittest.skipIf(os.environ.get("FERRY_SANITIZED"),
                     "UBSan needs spare descriptors for its own checks")
    def test_io_error_when_no_file_can_be_opened(self):
        s = self.server({})
        write_file(s.path("f.txt"), b"data")
        c = s.client()
        c.send({"op": "stat", "id": 0, "name": "f.txt"})
        self.assertEqual(c.recv()["size"], 4)
        # RLIMIT_NOFILE, set on the running server once its descriptors have
        # settled: this connection stays, and no file can be opened, since
        # open(2) fails with EMFILE when the lowest free number is at the limit.
        limit = settled_lowest_free_descriptor(s.proc.pid)
        resource.prlimit(s.proc.pid, resource.RLIMIT_NOFILE, (limit, limit))
        for req in ({"op": "list", "id": 1},
                    {"op": "get", "id": 2, "name": "f.txt"},
                    {"op": "put", "id": 3, "name": "g.txt", "size": 1}):
            with self.subTest(op=req["op"]):
                c.send(req)
                r = c.recv()
                self.assertEqual((r["id"], r["ok"], r["error"]["code"]),
                                 (req["id"], False, "io_error"))
        # io_error before any data leaves the connection usable
        c.send({"op": "stat", "id": 4, "name": "f.txt"})
        self.assertEqual(c.recv()["size"], 4)
