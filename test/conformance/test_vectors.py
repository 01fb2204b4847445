"""Section 2's frames and the test vectors of docs/protocol-vectors, decoded here
and sent by the server; the worked example of PROTOCOL.md run as written.

Part of the conformance suite (ferryd against docs/PROTOCOL.md);
test_conformance.py runs it with the others.
"""

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

import ferry_wire as fw
from conformance import (MTIME, ServerCase, VECTORS, WORKED_EXAMPLE,
                         hexdump_blocks, sha, write_file)


def load_vectors():
    with open(VECTORS) as f:
        return json.load(f)


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


class VectorTests(unittest.TestCase):
    """docs/protocol-vectors/vectors.json, decoded with ferry_wire."""

    @classmethod
    def setUpClass(cls):
        cls.vectors = load_vectors()

    def test_vector_schema(self):
        self.assertGreaterEqual(len(self.vectors), 15)
        names = set()
        for v in self.vectors:
            with self.subTest(v.get("name")):
                self.assertIsInstance(v["name"], str)
                self.assertNotIn(v["name"], names, "duplicate name")
                names.add(v["name"])
                self.assertIn(v["direction"], ("client", "server"))
                self.assertRegex(v["hex"], r"^([0-9a-f]{2})+$")
                if "error" in v:
                    self.assertIn(v["kind"], ("control", "data", None))
                    self.assertNotIn("json", v)
                    self.assertNotIn("data_hex", v)
                else:
                    self.assertIn(v["kind"], ("control", "data"))
                    if v["kind"] == "control":
                        self.assertIsInstance(v["json"], dict)
                        self.assertNotIn("data_hex", v)
                    else:
                        self.assertRegex(v["data_hex"], r"^([0-9a-f]{2})*$")
                        self.assertNotIn("json", v)

    def test_valid_vectors_decode(self):
        for v in self.vectors:
            if "error" in v:
                continue
            with self.subTest(v["name"]):
                raw = bytes.fromhex(v["hex"])
                frames = fw.decode_all(raw)
                self.assertEqual(len(frames), 1)
                f = frames[0]
                if v["kind"] == "control":
                    self.assertEqual(f.kind, fw.KIND_CONTROL)
                    self.assertEqual(f.json(), v["json"])
                    # Key order is not significant; these vectors are
                    # written with sorted keys and no whitespace, so the
                    # canonical encoding reproduces them byte for byte.
                    self.assertEqual(canonical(v["json"]), f.payload)
                    self.assertEqual(fw.frame(fw.KIND_CONTROL,
                                              canonical(v["json"])), raw)
                else:
                    self.assertEqual(f.kind, fw.KIND_DATA)
                    self.assertEqual(f.payload.hex(), v["data_hex"])
                    self.assertEqual(fw.data(bytes.fromhex(v["data_hex"])),
                                     raw)

    def test_invalid_vectors_are_refused(self):
        for v in self.vectors:
            if "error" not in v:
                continue
            with self.subTest(v["name"]):
                d = fw.Decoder()
                d.feed(bytes.fromhex(v["hex"]))
                with self.assertRaises(fw.FrameError) as cm:
                    f = d.next()
                    self.assertIsNotNone(f, "vector is not a whole frame")
                    f.json()
                self.assertEqual(cm.exception.code, v["error"])

    def test_required_vectors_present(self):
        seen = set()
        for v in self.vectors:
            if "error" in v:
                seen.add(("error", v["error"]))
            elif v["kind"] == "data":
                seen.add((v["direction"], "data"))
            elif v["direction"] == "client":
                seen.add(("client", v["json"]["op"]))
            else:
                j = v["json"]
                if j.get("ok") is False:
                    seen.add(("server", "error",
                              "null-id" if j["id"] is None else "id"))
                elif j.get("done"):
                    seen.add(("server", "trailer"))
                elif "prefix_sha256" in j:
                    seen.add(("server", "put-resume"))
                else:
                    seen.add(("server", "reply"))
        for need in [("client", op) for op in
                     ("hello", "list", "stat", "get", "put", "commit",
                      "abort", "mkdir", "delete", "rename", "digest")] + [
                ("server", "reply"), ("server", "trailer"),
                ("server", "put-resume"), ("server", "data"),
                ("client", "data"), ("server", "error", "null-id"),
                ("error", "bad_frame"), ("error", "frame_too_large"),
                ("error", "bad_json")]:
            self.assertIn(need, seen)

    def test_version_2_vectors_present(self):
        """Each new operation of version 2 and each new error code."""
        v2 = [v for v in self.vectors if v.get("version") == 2]
        ops = {v["json"]["op"] for v in v2 if v["direction"] == "client"}
        self.assertLessEqual({"hello", "list", "stat", "put", "mkdir",
                              "delete", "rename", "digest"}, ops)
        codes = {v["json"]["error"]["code"] for v in v2
                 if v["direction"] == "server" and not v["json"]["ok"]}
        self.assertLessEqual({"not_empty", "exists", "not_a_folder",
                              "invalid_move", "invalid_name"}, codes)
        hello = [v["json"] for v in v2 if v["direction"] == "server"][0]
        self.assertEqual(hello["version"], 2)
        self.assertIn("folders", hello["capabilities"])

    def test_incremental_decoder_on_vector_stream(self):
        stream = b"".join(bytes.fromhex(v["hex"]) for v in self.vectors
                          if "error" not in v)
        whole = fw.decode_all(stream)
        d = fw.Decoder()
        one_by_one = []
        for i in range(len(stream)):
            d.feed(stream[i:i + 1])
            one_by_one += d.frames()
        self.assertEqual(d.pending(), 0)
        self.assertEqual([(f.kind, f.payload) for f in whole],
                         [(f.kind, f.payload) for f in one_by_one])
        self.assertEqual(len(whole), sum(1 for v in self.vectors
                                         if "error" not in v))

    def test_decoder_waits_for_header_and_payload(self):
        d = fw.Decoder()
        d.feed(b"\x01\x00\x00")
        self.assertIsNone(d.next())
        d.feed(b"\x00\x02{")
        self.assertIsNone(d.next())
        d.feed(b"}\x02\x00\x00\x00\x00")
        f = d.next()
        self.assertEqual((f.kind, f.payload), (1, b"{}"))
        f = d.next()
        self.assertEqual((f.kind, f.payload), (2, b""))
        self.assertIsNone(d.next())

    def test_decoder_limits(self):
        d = fw.Decoder()
        d.feed(fw.frame(1, b" " * 65536))
        self.assertEqual(len(d.next().payload), 65536)
        d.feed(struct.pack(">BI", 1, 65537))
        with self.assertRaises(fw.FrameError) as cm:
            d.next()
        self.assertEqual(cm.exception.code, "frame_too_large")

    def test_worked_example_hexdumps_are_vectors(self):
        with open(WORKED_EXAMPLE) as f:
            text = f.read()
        blocks = hexdump_blocks(text)
        self.assertEqual(len(blocks), text.count("```hexdump"))
        self.assertGreaterEqual(len(blocks), 8)
        by_name = {v["name"]: v for v in self.vectors}
        for name, raw in blocks:
            with self.subTest(name):
                self.assertIn(name, by_name)
                self.assertEqual(raw.hex(), by_name[name]["hex"])


class LiveVectorTests(ServerCase):
    """The vectors replayed against a real ferryd."""

    @classmethod
    def prepare(cls, root):
        write_file(os.path.join(root, "hello.txt"), b"hello", MTIME)

    def test_server_sends_the_vector_replies(self):
        """Send the client vectors in order (all but those that close the
        connection) and compare what comes back with the server vectors
        that follow each of them."""
        # The vectors of a version-1 connection: one connection cannot be
        # both versions, and those of version 2 need their own session.
        vs = [v for v in load_vectors() if v.get("version", 1) == 1]
        c = self.client(hello=False)
        i = 0
        while i < len(vs):
            v = vs[i]
            i += 1
            if v["direction"] != "client" or \
                    v.get("error") in ("bad_frame", "frame_too_large"):
                continue
            c.send_raw(bytes.fromhex(v["hex"]))
            answers = []
            while i < len(vs) and vs[i]["direction"] == "server":
                answers.append(vs[i])
                i += 1
            if "error" in v and not answers:
                self.assertError(c.recv(), v["error"], None)
            for want in answers:
                got = c.recv_frame()
                with self.subTest(want["name"]):
                    if want["kind"] == "data":
                        self.assertTrue(got.is_data)
                        self.assertEqual(got.payload.hex(), want["data_hex"])
                        continue
                    g, w = got.json(), dict(want["json"])
                    if w.get("ok") is False:
                        # messages are for people and may change
                        self.assertEqual(g["error"]["code"],
                                         w["error"]["code"])
                        self.assertEqual(g["id"], w["id"])
                        continue
                    # random, or the time of the upload
                    volatile = ["token"]
                    if v.get("json", {}).get("op") == "commit":
                        volatile.append("mtime")
                    for k in volatile:
                        if k in w:
                            self.assertIn(k, g)
                            g[k] = w[k]
                    self.assertReplyMatches(g, w)

    def assertReplyMatches(self, got, want):
        """Section 8: fields may be added to replies without a version
        change, so extra fields are fine, and the lists of capabilities and
        hashes may grow; every field of the vector must be there, equal."""
        for k, v in want.items():
            self.assertIn(k, got)
            if k in ("capabilities", "hashes"):
                self.assertLessEqual(set(v), set(got[k]), k)
            else:
                self.assertEqual(got[k], v, k)

    def test_invalid_vectors_get_their_error(self):
        for v in load_vectors():
            if "error" not in v:
                continue
            with self.subTest(v["name"]):
                c = self.client()
                c.send_raw(bytes.fromhex(v["hex"]))
                r = c.recv()
                self.assertError(r, v["error"], None)
                if v["error"] in ("bad_frame", "frame_too_large"):
                    self.assertClosed(c)
                else:
                    self.assertUsable(c)


class LiveVersion2VectorTests(LiveVectorTests):
    """The version-2 vectors replayed on their own connection, over the
    folder their README describes."""

    @classmethod
    def prepare(cls, root):
        write_file(os.path.join(root, "hello.txt"), b"hello", MTIME)
        os.makedirs(os.path.join(root, "logs", "2026"))
        write_file(os.path.join(root, "logs", "2026", "app.log"), b"hello",
                   MTIME)
        for folder in (os.path.join("logs", "2026"), "logs"):
            os.chmod(os.path.join(root, folder), 0o755)
            os.utime(os.path.join(root, folder), (MTIME, MTIME))
        for name in ("hello.txt", os.path.join("logs", "2026", "app.log")):
            os.chmod(os.path.join(root, name), 0o644)

    # The version-1 replay is the parent's; not again here.
    test_server_sends_the_vector_replies = None
    test_invalid_vectors_get_their_error = None

    def test_server_sends_the_version_2_vector_replies(self):
        vs = [v for v in load_vectors() if v.get("version") == 2]
        self.assertGreaterEqual(len(vs), 25)
        c = self.client(hello=False)
        i = 0
        while i < len(vs):
            v = vs[i]
            i += 1
            self.assertEqual(v["direction"], "client", v["name"])
            c.send_raw(bytes.fromhex(v["hex"]))
            answers = []
            while i < len(vs) and vs[i]["direction"] == "server":
                if vs[i].get("live", True):  # an offline reply is the codecs' only
                    answers.append(vs[i]["json"])
                i += 1
            with self.subTest(v["name"]):
                if v["json"]["op"] == "list":
                    # Pages may split a listing anywhere (4.2): compare
                    # the entries of all pages and the last page's count.
                    got = []
                    page = c.recv()
                    got.append(page)
                    while page.get("more"):
                        page = c.recv()
                        got.append(page)
                    key = lambda e: e["name"]  # noqa: E731
                    self.assertEqual(
                        sorted((f for p in got for f in p["files"]), key=key),
                        sorted((f for p in answers for f in p["files"]),
                               key=key))
                    self.assertEqual(got[-1]["skipped_invalid_names"],
                                     answers[-1]["skipped_invalid_names"])
                    continue
                for want in answers:
                    g, w = c.recv(), dict(want)
                    if w.get("ok") is False:
                        self.assertEqual(g["error"]["code"],
                                         w["error"]["code"])
                        self.assertEqual(g["id"], w["id"])
                        continue
                    if "token" in w:
                        self.assertIn("token", g)
                        g["token"] = w["token"]
                    self.assertReplyMatches(g, w)
        self.assertUsable(c)


class WorkedExampleTest(ServerCase):
    """The Python client of PROTOCOL.md appendix B works against ferryd."""

    CONTENT = b"hello"

    @classmethod
    def prepare(cls, root):
        write_file(os.path.join(root, "hello.txt"), cls.CONTENT, MTIME)
        write_file(os.path.join(root, "big.bin"),
                   bytes(range(256)) * 4096 + b"tail")   # several frames

    def run_example(self, name):
        with open(WORKED_EXAMPLE) as f:
            code = re.findall(r"```python\n(.*?)```", f.read(), re.S)
        self.assertEqual(len(code), 1)
        self.assertLessEqual(len(code[0].splitlines()), 50)
        work = tempfile.mkdtemp(prefix="ferry-example-")
        self.addCleanup(shutil.rmtree, work, True)
        script = os.path.join(work, "mini_ferry.py")
        with open(script, "w") as f:
            f.write(code[0])
        p = subprocess.run([sys.executable, script, "127.0.0.1",
                            str(self.server.port), name], cwd=work,
                           capture_output=True, timeout=30)
        return p, work

    def test_example_client_downloads_and_verifies(self):
        p, work = self.run_example("hello.txt")
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        out = p.stdout.decode()
        self.assertIn("hello.txt", out)
        self.assertIn(sha(self.CONTENT), out)
        with open(os.path.join(work, "hello.txt"), "rb") as f:
            self.assertEqual(f.read(), self.CONTENT)

    def test_example_client_multi_frame_file(self):
        p, work = self.run_example("big.bin")
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        with open(os.path.join(work, "big.bin"), "rb") as f:
            with open(self.server.path("big.bin"), "rb") as g:
                self.assertEqual(f.read(), g.read())

    def test_example_client_reports_errors(self):
        p, work = self.run_example("missing.txt")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not_found", p.stderr.decode())
        self.assertFalse(os.path.exists(os.path.join(work, "missing.txt")))
