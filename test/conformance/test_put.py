"""put: commit, abort, resume (after a drop and after a restart), mismatches.

Part of the conformance suite (ferryd against docs/PROTOCOL.md);
test_conformance.py runs it with the others.
"""

import hashlib
import os
import shutil
import struct
import tempfile
import time
import unittest

import ferry_wire as fw
from conformance import Ferryd, ServerCase, sha, write_file


class PutTests(ServerCase):

    def content(self, n, seed=b""):
        out = bytearray()
        i = 0
        while len(out) < n:
            out += hashlib.sha256(seed + str(i).encode()).digest()
            i += 1
        return bytes(out[:n])

    def commit(self, c, rid, content):
        return self.ask(c, {"op": "commit", "id": rid, "sha256": sha(content)})

    def assert_published(self, name, content, reply, rid):
        self.assertIs(reply.get("ok"), True, reply)
        self.assertEqual(reply["id"], rid)
        self.assertEqual(reply["name"], name)
        self.assertEqual(reply["size"], len(content))
        self.assertEqual(reply["sha256"], sha(content))
        self.assertIsInstance(reply["mtime"], int)
        with open(self.server.path(name), "rb") as f:
            self.assertEqual(f.read(), content)

    def test_put_and_get_back(self):
        data = self.content(600000, b"roundtrip")
        c = self.client()
        r = self.put_start(c, "round.bin", len(data), rid=51)
        self.assertEqual(r["offset"], 0)
        self.assertNotIn("prefix_sha256", r)
        self.assertIsInstance(r["token"], str)
        for i in range(0, len(data), fw.CHUNK):
            c.send_data(data[i:i + fw.CHUNK])
        self.assert_published("round.bin", data, self.commit(c, 51, data), 51)
        _, body, _ = c.get("round.bin")
        self.assertEqual(body, data)
        self.assertNotIn(r["token"], "".join(self.server.partials()))

    def test_put_replaces_an_old_file(self):
        write_file(self.server.path("old.txt"), b"old content")
        c = self.client()
        self.put_start(c, "old.txt", 3, rid=52)
        c.send_data(b"new")
        self.assert_published("old.txt", b"new", self.commit(c, 52, b"new"),
                              52)

    def test_put_empty_file(self):
        c = self.client()
        self.put_start(c, "empty.txt", 0, rid=53)
        self.assert_published("empty.txt", b"", self.commit(c, 53, b""), 53)

    def test_frames_of_any_size_including_empty(self):
        data = self.content(1000, b"odd")
        c = self.client()
        self.put_start(c, "odd.bin", len(data), rid=54)
        c.send_data(b"")
        pos = 0
        for n in (1, 0, 2, 997):
            c.send_data(data[pos:pos + n])
            pos += n
        self.assert_published("odd.bin", data, self.commit(c, 54, data), 54)

    def test_nothing_visible_before_commit(self):
        write_file(self.server.path("vis.txt"), b"before")
        data = self.content(5000, b"vis")
        c = self.client()
        n = self.client()
        other = self.client()
        self.put_start(c, "vis.txt", len(data), rid=55)
        self.put_start(n, "newvis.txt", 10, rid=56)
        c.send_data(data[:4000])
        n.send_data(b"12345")
        time.sleep(0.05)
        self.assertEqual(other.request("stat", name="vis.txt")["size"], 6)
        self.assertError(self.ask(other, {"op": "stat", "id": 5,
                                          "name": "newvis.txt"}),
                         "not_found", 5)
        names = [f["name"] for f in other.list()["files"]]
        self.assertIn("vis.txt", names)
        self.assertNotIn("newvis.txt", names)
        self.assertEqual(other.get("vis.txt")[1], b"before")
        c.send_data(data[4000:])
        self.assert_published("vis.txt", data, self.commit(c, 55, data), 55)
        self.ask(n, {"op": "abort", "id": 56, "discard": True})

    def test_abort_keeps_then_resume_and_commit(self):
        data = self.content(1 << 20, b"abort-resume")
        c = self.client()
        r = self.put_start(c, "resumed.bin", len(data), rid=57)
        token = r["token"]
        c.send_data(data[:200000])
        c.send_data(data[200000:300000])
        r = self.ask(c, {"op": "abort", "id": 57, "discard": False})
        self.assertEqual(r, {"id": 57, "ok": True, "kept": True,
                             "offset": 300000})
        self.assertFalse(os.path.exists(self.server.path("resumed.bin")))
        self.assertUsable(c)
        r = self.put_start(c, "resumed.bin", len(data), resume=True, rid=58)
        self.assertEqual(r["offset"], 300000)
        self.assertEqual(r["prefix_sha256"], sha(data[:300000]))
        self.assertEqual(r["token"], token)
        for i in range(300000, len(data), fw.CHUNK):
            c.send_data(data[i:i + fw.CHUNK])
        self.assert_published("resumed.bin", data, self.commit(c, 58, data),
                              58)
        self.assertNotIn(token, "".join(self.server.partials()))

    def test_abort_without_discard_field_keeps(self):
        # DOC: the default of "discard" is not stated; it is false.
        c = self.client()
        self.put_start(c, "defkeep.bin", 10, rid=59)
        c.send_data(b"abcd")
        r = self.ask(c, {"op": "abort", "id": 59})
        self.assertEqual((r["kept"], r["offset"]), (True, 4))
        r = self.put_start(c, "defkeep.bin", 10, resume=True, rid=60)
        self.assertEqual(r["offset"], 4)
        self.ask(c, {"op": "abort", "id": 60, "discard": True})

    def test_abort_discard_deletes(self):
        c = self.client()
        r = self.put_start(c, "discard.bin", 10, rid=61)
        c.send_data(b"abcd")
        r2 = self.ask(c, {"op": "abort", "id": 61, "discard": True})
        # DOC: the reply to a discarding abort is kept:false, offset:0.
        self.assertEqual(r2, {"id": 61, "ok": True, "kept": False,
                              "offset": 0})
        self.assertNotIn(r["token"], "".join(self.server.partials()))
        r = self.put_start(c, "discard.bin", 10, resume=True, rid=62)
        self.assertEqual(r["offset"], 0)
        self.assertNotIn("prefix_sha256", r)
        self.ask(c, {"op": "abort", "id": 62, "discard": True})

    def test_resume_after_the_connection_drops(self):
        data = self.content(700000, b"drop")
        c = self.client()
        self.put_start(c, "dropped.bin", len(data), rid=63)
        c.send_data(data[:250000])
        c.send_data(data[250000:400000])
        time.sleep(0.05)
        c.close()
        d = self.client()
        r = self.resume_when_free(d, "dropped.bin", len(data), rid=64)
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["offset"], 400000)
        self.assertEqual(r["prefix_sha256"], sha(data[:400000]))
        d.send_data(data[400000:])
        self.assert_published("dropped.bin", data, self.commit(d, 64, data),
                              64)

    def test_resume_after_a_drop_in_the_middle_of_a_data_frame(self):
        # DOC: the document does not say what happens to a data frame cut
        # short. The offset must be consistent: prefix_sha256 covers exactly
        # the first `offset` bytes, whatever the server decided to keep.
        data = b"abcdefghij"
        c = self.client()
        self.put_start(c, "cut.bin", 10, rid=65)
        c.send_data(b"abcd")
        c.send_raw(struct.pack(">BI", 2, 6) + b"ef")
        time.sleep(0.05)
        c.close()
        d = self.client()
        r = self.resume_when_free(d, "cut.bin", 10, rid=66)
        self.assertIn(r["offset"], (4, 6))
        self.assertEqual(r["prefix_sha256"], sha(data[:r["offset"]]))
        d.send_data(data[r["offset"]:])
        self.assert_published("cut.bin", data, self.commit(d, 66, data), 66)

    def test_resume_without_a_kept_upload_starts_at_zero(self):
        c = self.client()
        self.put_start(c, "sized.bin", 10, rid=67)
        c.send_data(b"abc")
        self.ask(c, {"op": "abort", "id": 67})
        for name, size in (("never-seen.bin", 10), ("sized.bin", 11)):
            with self.subTest(name=name, size=size):
                r = self.put_start(c, name, size, resume=True, rid=68)
                self.assertEqual(r["offset"], 0)
                self.assertNotIn("prefix_sha256", r)
                self.ask(c, {"op": "abort", "id": 68, "discard": True})
        r = self.put_start(c, "sized.bin", 10, resume=True, rid=69)
        self.assertEqual(r["offset"], 3)
        self.ask(c, {"op": "abort", "id": 69, "discard": True})

    def test_resume_of_a_complete_upload(self):
        c = self.client()
        self.put_start(c, "complete.bin", 3, rid=70)
        c.send_data(b"xyz")
        self.assertEqual(self.ask(c, {"op": "abort", "id": 70})["offset"], 3)
        r = self.put_start(c, "complete.bin", 3, resume=True, rid=71)
        self.assertEqual((r["offset"], r["prefix_sha256"]), (3, sha(b"xyz")))
        self.assert_published("complete.bin", b"xyz",
                              self.commit(c, 71, b"xyz"), 71)

    def test_hash_mismatch_publishes_nothing(self):
        write_file(self.server.path("precious.txt"), b"precious")
        c = self.client()
        for name in ("precious.txt", "brand-new.txt"):
            with self.subTest(name=name):
                r = self.put_start(c, name, 5, rid=72)
                c.send_data(b"wrong")
                r2 = self.ask(c, {"op": "commit", "id": 72,
                                  "sha256": sha(b"right")})
                self.assertError(r2, "hash_mismatch", 72)
                self.assertNotIn(r["token"], "".join(self.server.partials()))
                # the connection is idle again
                self.assertError(self.ask(c, {"op": "abort", "id": 72}),
                                 "unexpected_frame", 72)
                r3 = self.put_start(c, name, 5, resume=True, rid=73)
                self.assertEqual(r3["offset"], 0)
                self.ask(c, {"op": "abort", "id": 73, "discard": True})
        names = [f["name"] for f in c.list()["files"]]
        self.assertNotIn("brand-new.txt", names)
        self.assertFalse(os.path.exists(self.server.path("brand-new.txt")))
        with open(self.server.path("precious.txt"), "rb") as f:
            self.assertEqual(f.read(), b"precious")

    def test_short_upload_is_size_mismatch_and_kept(self):
        c = self.client()
        self.put_start(c, "short.bin", 10, rid=74)
        c.send_data(b"abcd")
        self.assertError(self.commit(c, 74, b"abcdefghij"), "size_mismatch",
                         74)
        self.assertFalse(os.path.exists(self.server.path("short.bin")))
        self.assertError(self.ask(c, {"op": "abort", "id": 74}),
                         "unexpected_frame", 74)
        self.assertUsable(c)
        r = self.put_start(c, "short.bin", 10, resume=True, rid=75)
        self.assertEqual((r["offset"], r["prefix_sha256"]), (4, sha(b"abcd")))
        c.send_data(b"efghij")
        self.assert_published("short.bin", b"abcdefghij",
                              self.commit(c, 75, b"abcdefghij"), 75)

    def test_too_much_data_is_size_mismatch_and_closes(self):
        c = self.client()
        self.put_start(c, "long.bin", 3, rid=76)
        c.send_data(b"ab")
        c.send_data(b"cd")
        self.assertError(c.recv(), "size_mismatch", 76)
        self.assertClosed(c)
        self.assertFalse(os.path.exists(self.server.path("long.bin")))
        # "deletes nothing it can keep for resume": the 2 bytes before the
        # frame that overflowed are kept.
        d = self.client()
        r = self.resume_when_free(d, "long.bin", 3, rid=77)
        self.assertEqual((r["offset"], r["prefix_sha256"]), (2, sha(b"ab")))
        d.send_data(b"c")
        self.assert_published("long.bin", b"abc", self.commit(d, 77, b"abc"),
                              77)

    def test_an_overflowing_frame_is_refused_whole_whatever_pieces_it_comes_in(self):
        """4.5: "the data frame that would pass size is refused whole, the
        bytes before it are kept for resume", also when the frame is too big
        for one read and arrives in pieces (ferryd kept its first pieces)."""
        cases = [  # (declared size, the frames' payload sizes, bytes kept)
            (100_000, [100_001], 0),
            (2_000_000, [2_000_001], 0),
            (1_000_000, [600_000, 400_005], 600_000),
        ]
        for n, (size, frames, kept) in enumerate(cases):
            name = "over%d.bin" % n
            content = os.urandom(sum(frames))
            with self.subTest(size=size, frames=frames):
                c = self.client()
                self.put_start(c, name, size, rid=300 + n)
                at = 0
                for length in frames:
                    raw = fw.data(content[at:at + length])
                    at += length
                    for i in range(0, len(raw), 4096):  # as a slow sender's writes
                        c.send_raw(raw[i:i + 4096])
                self.assertError(c.recv(), "size_mismatch", 300 + n)
                self.assertClosed(c)
                self.assertFalse(os.path.exists(self.server.path(name)))
                d = self.client()
                r = self.resume_when_free(d, name, size, rid=310 + n)
                self.assertEqual(r["offset"], kept)
                if kept:
                    self.assertEqual(r["prefix_sha256"], sha(content[:kept]))
                d.send({"op": "abort", "id": 310 + n, "discard": True})
                d.recv()

    def test_commit_and_abort_need_the_put_id(self):
        # DOC: the error for a commit/abort with another id is not named;
        # it is bad_request, and the upload goes on.
        c = self.client()
        self.put_start(c, "ids.bin", 2, rid=78)
        c.send_data(b"hi")
        self.assertError(self.ask(c, {"op": "commit", "id": 79,
                                      "sha256": sha(b"hi")}),
                         "bad_request", 79)
        self.assertError(self.ask(c, {"op": "abort", "id": 79}),
                         "bad_request", 79)
        self.assert_published("ids.bin", b"hi", self.commit(c, 78, b"hi"), 78)

    def test_other_requests_during_an_upload(self):
        c = self.client()
        self.put_start(c, "busyconn.bin", 4, rid=80)
        c.send_data(b"ab")
        for req in ({"op": "list", "id": 81},
                    {"op": "stat", "id": 82, "name": "ids.bin"},
                    {"op": "get", "id": 83, "name": "ids.bin"},
                    {"op": "put", "id": 84, "name": "x", "size": 1},
                    {"op": "hello", "id": 85, "version": 1}):
            with self.subTest(op=req["op"]):
                self.assertError(self.ask(c, req), "unexpected_frame",
                                 req["id"])
        # broken requests are still reported as such, and the upload goes on
        c.send_raw(fw.frame(1, b"{"))
        self.assertError(c.recv(), "bad_json", None)
        self.assertError(self.ask(c, {"op": "frob", "id": 86}), "unknown_op",
                         86)
        self.assertError(self.ask(c, {"op": "commit", "id": 80,
                                      "sha256": "NOTHEX"}), "bad_request", 80)
        c.send_data(b"cd")
        self.assert_published("busyconn.bin", b"abcd",
                              self.commit(c, 80, b"abcd"), 80)

    def test_upload_frames_outside_an_upload(self):
        c = self.client()
        c.send_data(b"stray")
        self.assertError(c.recv(), "unexpected_frame", None)
        self.assertError(self.ask(c, {"op": "commit", "id": 87,
                                      "sha256": sha(b"")}),
                         "unexpected_frame", 87)
        self.assertError(self.ask(c, {"op": "abort", "id": 88,
                                      "discard": True}),
                         "unexpected_frame", 88)
        c.send_data(b"")
        self.assertError(c.recv(), "unexpected_frame", None)
        self.assertUsable(c)

    def test_put_bad_requests(self):
        c = self.client()
        for req in ({"op": "put", "id": 89, "name": "b.bin"},
                    {"op": "put", "id": 89, "name": "b.bin", "size": -1},
                    {"op": "put", "id": 89, "name": "b.bin", "size": "1"},
                    {"op": "put", "id": 89, "name": "b.bin", "size": 2.5},
                    {"op": "put", "id": 89, "name": "b.bin", "size": 1,
                     "resume": "yes"},
                    {"op": "put", "id": 89, "size": 1}):
            with self.subTest(req=req):
                self.assertError(self.ask(c, req), "bad_request", 89)
        self.put_start(c, "b.bin", 1, rid=90)
        for req in ({"op": "commit", "id": 90},
                    {"op": "commit", "id": 90, "sha256": "A" * 64},
                    {"op": "commit", "id": 90, "sha256": "0" * 63},
                    {"op": "abort", "id": 90, "discard": "no"}):
            with self.subTest(req=req):
                self.assertError(self.ask(c, req), "bad_request", 90)
        self.assertTrue(self.ask(c, {"op": "abort", "id": 90,
                                     "discard": True})["ok"])
        self.assertUsable(c)

    def test_busy_while_another_connection_resumes(self):
        a = self.client()
        self.put_start(a, "shared.bin", 10, rid=91)
        a.send_data(b"01234")
        self.ask(a, {"op": "abort", "id": 91})
        r = self.put_start(a, "shared.bin", 10, resume=True, rid=92)
        self.assertEqual(r["offset"], 5)
        b = self.client()
        r = self.ask(b, {"op": "put", "id": 93, "name": "shared.bin",
                         "size": 10, "resume": True})
        self.assertError(r, "busy", 93)
        self.assertUsable(b)                      # busy keeps it open
        self.ask(a, {"op": "abort", "id": 92})
        r = self.put_start(b, "shared.bin", 10, resume=True, rid=94)
        self.assertEqual(r["offset"], 5)
        b.send_data(b"56789")
        self.assert_published("shared.bin", b"0123456789",
                              self.commit(b, 94, b"0123456789"), 94)

    def test_data_frame_at_the_limit(self):
        data = bytes(16777216)
        c = self.client()
        self.put_start(c, "sixteen.bin", len(data), rid=95)
        c.send_data(data)
        r = self.commit(c, 95, data)
        self.assertEqual((r["ok"], r["size"]), (True, len(data)))
        os.unlink(self.server.path("sixteen.bin"))


class RestartTests(unittest.TestCase):
    """Kept uploads live on disk: resume through a restart; TTL."""

    def start(self, root, *args):
        s = Ferryd(args, root=root)
        self.addCleanup(s.cleanup)
        return s

    def stop(self, s):
        self.assertEqual(s.stop(), 0)

    def test_resume_after_server_restart_and_partial_ttl(self):
        root = tempfile.mkdtemp(prefix="ferry-conformance-")
        self.addCleanup(shutil.rmtree, root, True)
        s = self.start(root)
        c = s.client()
        for rid, name in ((1, "keep.bin"), (2, "expire.bin")):
            c.send({"op": "put", "id": rid, "name": name, "size": 6})
            self.assertTrue(c.recv()["ok"])
            c.send_data(b"abc")
            c.send({"op": "abort", "id": rid})
            self.assertEqual(c.recv()["offset"], 3)
        self.stop(s)
        s = self.start(root)
        c = s.client()
        c.send({"op": "put", "id": 3, "name": "keep.bin", "size": 6,
                "resume": True})
        r = c.recv()
        self.assertEqual((r["offset"], r["prefix_sha256"]), (3, sha(b"abc")))
        c.send_data(b"def")
        c.send({"op": "commit", "id": 3, "sha256": sha(b"abcdef")})
        self.assertTrue(c.recv()["ok"])
        self.stop(s)
        old = time.time() - 3600
        for n in os.listdir(root):
            if n.startswith(".ferry-partial-"):
                os.utime(os.path.join(root, n), (old, old))
        s = self.start(root, "--partial-ttl", "60")
        c = s.client()
        c.send({"op": "put", "id": 4, "name": "expire.bin", "size": 6,
                "resume": True})
        self.assertEqual(c.recv()["offset"], 0)
        c.send({"op": "abort", "id": 4, "discard": True})
        self.assertTrue(c.recv()["ok"])
        self.stop(s)
        with open(os.path.join(root, "keep.bin"), "rb") as f:
            self.assertEqual(f.read(), b"abcdef")
