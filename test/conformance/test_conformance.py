#!/usr/bin/env python3
"""Conformance tests of ferryd against docs/PROTOCOL.md.

Written from the document alone (no C++ source was read), with the Python
standard library only. Each test class starts its own ferryd on a free
loopback port with a temporary served folder; tests that need special
limits or a fresh server start their own.

    python3 test/conformance/test_conformance.py --ferryd build/server/ferryd
    FERRYD=build/server/ferryd python3 test/conformance/test_conformance.py
    ... -v            one line per test
    ... -k resume     only tests whose name contains "resume"

Ends with one line "N passed, M failed" and exits non-zero if M > 0.

Where the document is silent or ambiguous, the tests follow what the
conformance report proposes it should say; those places are marked
"DOC:" below.
"""

import argparse
import hashlib
import json
import os
import re
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import ferry_wire as fw  # noqa: E402

FERRYD = None                 # set in main()
TIMEOUT = 10.0                # every socket operation and wait is bounded
VECTORS = os.path.join(REPO, "docs", "protocol-vectors", "vectors.json")
PROTOCOL_MD = os.path.join(REPO, "docs", "PROTOCOL.md")
WORKED_EXAMPLE = os.path.join(REPO, "docs", "PROTOCOL.md")
MTIME = 1764370000

# Every error code the suite received from the server, for the coverage test.
OBSERVED_CODES = set()
# Codes of section 6 that a client cannot provoke from outside (see
# ZzErrorCodeCoverage for why).
UNPROVOKABLE = {
    "internal": "only a server bug produces it (section 6)",
}


def sha(b):
    return hashlib.sha256(b).hexdigest()


class Client(fw.Client):
    """ferry_wire.Client that records every error code it receives."""

    def recv_frame(self):
        f = super().recv_frame()
        if f.is_control:
            try:
                obj = f.json()
            except fw.FrameError:
                return f
            if obj.get("ok") is False and isinstance(obj.get("error"), dict):
                OBSERVED_CODES.add(obj["error"].get("code"))
        return f


# ---------------------------------------------------------------- ferryd

class Ferryd:
    """One ferryd process on 127.0.0.1:<free port> serving a temp folder."""

    # Runs ferryd with resource limits of its own (the operator's side):
    # sets them, then execs, so the process is ferryd itself.
    LIMITS_WRAPPER = (
        "import json, os, resource, signal, sys\n"
        "lim = json.loads(sys.argv[1])\n"
        "if 'fsize' in lim:\n"
        "    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "    resource.setrlimit(resource.RLIMIT_FSIZE, (lim['fsize'],) * 2)\n"
        "if 'nofile' in lim:\n"
        "    resource.setrlimit(resource.RLIMIT_NOFILE, (lim['nofile'],) * 2)\n"
        "os.execv(sys.argv[2], sys.argv[2:])\n")

    def __init__(self, args=(), root=None, limits=None, drain=2.0):
        self.own_root = root is None
        self.root = root or tempfile.mkdtemp(prefix="ferry-conformance-")
        self.clients = []
        self.log = tempfile.TemporaryFile()
        cmd = [FERRYD, "--root", self.root, "--listen", "127.0.0.1:0"]
        if drain is not None:
            cmd += ["--drain-timeout", str(drain)]
        cmd += list(args)
        if limits is not None:
            cmd = [sys.executable, "-c", self.LIMITS_WRAPPER,
                   json.dumps(limits)] + cmd
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.log)
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT)
        line = self.proc.stdout.readline().decode() if ready else ""
        m = re.match(r"listening on 127\.0\.0\.1:(\d+)\s*$", line)
        if not m:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("ferryd did not start: first line %r, log %r"
                               % (line, self.read_log()))
        self.port = int(m.group(1))
        # Keep reading stdout so the server can never block on it.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def client(self, hello=True, timeout=TIMEOUT):
        c = Client("127.0.0.1", self.port, timeout=timeout)
        self.clients.append(c)
        if hello:
            r = c.hello()
            assert r["ok"] and r["version"] == 1, r
        return c

    def path(self, name):
        return os.path.join(self.root, name)

    def partials(self):
        return sorted(n for n in os.listdir(self.root)
                      if n.startswith(".ferry-partial-"))

    def read_log(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout=TIMEOUT):
        """Close our clients, signal the server, return its exit status."""
        for c in self.clients:
            c.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "did not exit within %s s" % timeout
        return rc

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        if self.own_root:
            shutil.rmtree(self.root, ignore_errors=True)


class ServerCase(unittest.TestCase):
    """A ferryd shared by the tests of one class."""

    server_args = ()

    @classmethod
    def prepare(cls, root):
        """Fill the served folder before the server starts."""

    @classmethod
    def setUpClass(cls):
        root = tempfile.mkdtemp(prefix="ferry-conformance-")
        cls.prepare(root)
        cls.server = Ferryd(cls.server_args, root=root)
        cls.server.own_root = True

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.stop()
        log = cls.server.read_log()
        cls.server.cleanup()
        if rc != 0:
            raise AssertionError("ferryd exited with %r after SIGTERM; log:\n%s"
                                 % (rc, log[-3000:]))

    def client(self, hello=True, timeout=TIMEOUT):
        c = self.server.client(hello, timeout)
        self.addCleanup(c.close)
        return c

    # -- assertions
    def assertError(self, reply, code, rid="any"):
        self.assertIs(reply.get("ok"), False, reply)
        self.assertIsInstance(reply.get("error"), dict, reply)
        self.assertEqual(reply["error"].get("code"), code, reply)
        self.assertIsInstance(reply["error"].get("message"), str, reply)
        if rid != "any":
            self.assertIn("id", reply, reply)
            self.assertEqual(reply["id"], rid, reply)

    def assertClosed(self, c):
        self.assertTrue(c.at_eof(), "the server should close the connection")

    def assertUsable(self, c, rid=4242):
        """Prove the connection still works: a list is answered."""
        r = c.request("list", id=rid)
        self.assertEqual(r["id"], rid)
        self.assertIsInstance(r["files"], list)

    def ask(self, c, obj):
        c.send(obj)
        return c.recv()

    def put_start(self, c, name, size, resume=False, rid=50):
        r = self.ask(c, {"op": "put", "id": rid, "name": name, "size": size,
                         "resume": resume})
        self.assertTrue(r.get("ok"), r)
        self.assertEqual(r["id"], rid)
        return r

    def resume_when_free(self, c, name, size, rid=60):
        """put resume:true, retrying while the old connection still holds
        the upload (busy) because the server has not yet seen it close."""
        deadline = time.time() + TIMEOUT
        while True:
            r = self.ask(c, {"op": "put", "id": rid, "name": name,
                             "size": size, "resume": True})
            if r.get("ok") or r["error"]["code"] != "busy" \
                    or time.time() > deadline:
                return r
            time.sleep(0.05)

    def read_transfer(self, c):
        """Frames of a get after its reply: (data bytes, frame sizes, end)."""
        body, sizes = bytearray(), []
        while True:
            f = c.recv_frame()
            if f.is_data:
                body += f.payload
                sizes.append(len(f.payload))
                continue
            return bytes(body), sizes, f.json()


def write_file(path, content, mtime=None):
    with open(path, "wb") as f:
        f.write(content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


# ---------------------------------------------------------------- vectors

def load_vectors():
    with open(VECTORS) as f:
        return json.load(f)


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def hexdump_blocks(markdown):
    """[(vector name, bytes)] of every ```hexdump block after a line
    "<!-- vector: NAME -->": the hex before the first '|' of each line."""
    out = []
    for name, block in re.findall(
            r"<!-- vector: (.*?) -->\n```hexdump\n(.*?)```", markdown, re.S):
        raw = bytearray()
        for line in block.splitlines():
            raw += bytes.fromhex(line.split("|", 1)[0].replace(" ", ""))
        out.append((name, bytes(raw)))
    return out


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
                      "abort")] + [
                ("server", "reply"), ("server", "trailer"),
                ("server", "put-resume"), ("server", "data"),
                ("client", "data"), ("server", "error", "null-id"),
                ("error", "bad_frame"), ("error", "frame_too_large"),
                ("error", "bad_json")]:
            self.assertIn(need, seen)

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
        vs = load_vectors()
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


# ---------------------------------------------------------------- hello

class HelloTests(ServerCase):

    def test_hello_reply(self):
        c = self.client(hello=False)
        r = self.ask(c, {"op": "hello", "id": 77, "version": 1,
                         "client": "conformance/1"})
        self.assertIs(r["ok"], True)
        self.assertEqual(r["id"], 77)
        self.assertEqual(r["version"], 1)
        self.assertIsInstance(r["server"], str)
        for cap in ("list", "stat", "get", "put", "resume"):
            self.assertIn(cap, r["capabilities"])
        self.assertIn("sha256", r["hashes"])
        self.assertEqual(r["max_control_frame"], 65536)
        self.assertEqual(r["max_data_frame"], 16777216)

    def test_appendix_a_hello_reply_is_what_the_server_says(self):
        """Appendix A's worked example is true of a server started with no
        options: its hello request gets exactly its hello reply."""
        with open(PROTOCOL_MD) as f:
            blocks = dict(hexdump_blocks(f.read()))
        c = self.client(hello=False)
        c.send_raw(blocks["hello request"])
        got = c.recv_frame()
        want = fw.decode_all(blocks["hello reply"])[0]
        self.assertEqual(got.json(), want.json())

    def test_hello_client_field_is_optional(self):
        c = self.client(hello=False)
        r = self.ask(c, {"op": "hello", "id": 0, "version": 1})
        self.assertIs(r["ok"], True)
        self.assertUsable(c)

    def test_second_hello_is_answered_like_the_first(self):
        c = self.client()
        r = self.ask(c, {"op": "hello", "id": 9, "version": 1})
        self.assertIs(r["ok"], True)
        self.assertEqual(r["id"], 9)
        self.assertEqual(r["version"], 1)
        self.assertUsable(c)

    def test_unsupported_version_then_close(self):
        for version in (2, 0, 1000):
            with self.subTest(version=version):
                c = self.client(hello=False)
                r = self.ask(c, {"op": "hello", "id": 3, "version": version})
                self.assertError(r, "unsupported_version", 3)
                self.assertClosed(c)

    def test_unsupported_version_on_second_hello_closes(self):
        c = self.client()
        r = self.ask(c, {"op": "hello", "id": 4, "version": 2})
        self.assertError(r, "unsupported_version", 4)
        self.assertClosed(c)

    def test_hello_required_keeps_connection_open(self):
        c = self.client(hello=False)
        requests = [
            {"op": "list", "id": 1},
            {"op": "stat", "id": 2, "name": "a"},
            {"op": "get", "id": 3, "name": "a"},
            {"op": "put", "id": 4, "name": "a", "size": 1},
            {"op": "commit", "id": 5, "sha256": "0" * 64},
            {"op": "abort", "id": 6},
        ]
        for req in requests:
            with self.subTest(op=req["op"]):
                self.assertError(self.ask(c, req), "hello_required",
                                 req["id"])
        r = self.ask(c, {"op": "hello", "id": 0, "version": 1})
        self.assertIs(r["ok"], True)
        self.assertUsable(c)

    def test_malformed_requests_before_hello(self):
        # DOC: the document says only that "any other request" before hello
        # gets hello_required. A frame that is not a valid request is
        # reported as such (bad_json, bad_request, unknown_op), a data frame
        # as unexpected_frame; the connection stays open.
        c = self.client(hello=False)
        c.send_raw(fw.frame(1, b"nope"))
        self.assertError(c.recv(), "bad_json", None)
        self.assertError(self.ask(c, {"op": "frob", "id": 1}),
                         "unknown_op", 1)
        self.assertError(self.ask(c, {"op": "stat", "id": 2}),
                         "bad_request", 2)
        c.send_data(b"x")
        self.assertError(c.recv(), "unexpected_frame", None)
        self.assertIs(c.hello()["ok"], True)
        self.assertUsable(c)

    def test_hello_bad_fields(self):
        c = self.client(hello=False)
        self.assertError(self.ask(c, {"op": "hello", "id": 1}),
                         "bad_request", 1)
        self.assertError(self.ask(c, {"op": "hello", "id": 2,
                                      "version": "1"}), "bad_request", 2)
        self.assertError(self.ask(c, {"op": "hello", "id": 3, "version": 1,
                                      "client": 5}), "bad_request", 3)
        self.assertIs(c.hello()["ok"], True)
        self.assertUsable(c)


# ---------------------------------------------------------------- list/stat

LISTED = ["Z", "_", "a.txt", "b.txt", "n" * 255, "\u00e9", "caf\u00e9.txt",
          "q\u0303", "a\u00a0b", "\U0001f600.png"]
# Section 5: valid UTF-8 that could pass for another name. One per kind:
# C0 and C1 controls (Cc), format characters such as bidi overrides and
# zero-width spaces (Cf), line and paragraph separators (Zl, Zp), private
# use (Co), unassigned (Cn), default-ignorable ones (Hangul filler,
# variation selector), and names that are not NFC.
DECEPTIVE = ["x\u0085y", "x\u009b31m", "invoice\u202efdp.exe",
             "pay\u200bpal.txt", "a\u2066b", "\ufeffa.txt", "a\u00adb",
             "a\u2028b", "a\u2029b", "a\ue000", "a\u0378", "a\uffff",
             "a\u3164b", "a\ufe0f", "cafe\u0301.txt", "e\u0301",
             "\u212b", "\u1112\u1161\u11ab"]
NOT_LISTED_VALID_UTF8_BAD = [b"back\\slash", b"ctl\x01", b"del\x7f"] + \
    [n.encode("utf-8") for n in DECEPTIVE]
NOT_LISTED_BAD_UTF8 = [b"bad\xff", b"over\xc0\xaf", b"surr\xed\xa0\x80"]


class ListStatTests(ServerCase):

    @classmethod
    def prepare(cls, root):
        for i, name in enumerate(LISTED):
            write_file(os.path.join(root, name), b"x" * i, MTIME + i)
        write_file(os.path.join(root, ".hidden"), b"secret")
        write_file(os.path.join(root, ".ferry-partial-zzz"), b"junk")
        for name in NOT_LISTED_VALID_UTF8_BAD + NOT_LISTED_BAD_UTF8:
            write_file(os.path.join(root.encode(), name), b"y")
        os.mkdir(os.path.join(root, "dir"))
        os.mkdir(os.path.join(root, ".hiddendir"))
        os.symlink("a.txt", os.path.join(root, "link"))
        os.symlink("/etc/passwd", os.path.join(root, "outside"))
        os.symlink("missing", os.path.join(root, "dangling"))
        os.mkfifo(os.path.join(root, "fifo"))
        s = socket.socket(socket.AF_UNIX)
        s.bind(os.path.join(root, "sock"))
        s.close()

    def test_list_is_sorted_and_filtered(self):
        c = self.client()
        r = c.request("list", id=11)
        self.assertEqual(r["id"], 11)
        names = [f["name"] for f in r["files"]]
        want = sorted(LISTED, key=lambda n: n.encode("utf-8"))
        self.assertEqual(names, want)
        for f in r["files"]:
            i = LISTED.index(f["name"])
            self.assertEqual(f["size"], i)
            self.assertEqual(f["mtime"], MTIME + i)
            self.assertIsInstance(f["mtime"], int)

    def test_list_counts_skipped_invalid_names(self):
        # Section 4.2: every name that breaks section 5 is counted (not
        # UTF-8, '\\', control, invisible or other deceptive characters, not
        # NFC); dot files are not counted.
        c = self.client()
        r = c.request("list")
        self.assertEqual(r["skipped_invalid_names"],
                         len(NOT_LISTED_BAD_UTF8) +
                         len(NOT_LISTED_VALID_UTF8_BAD))

    def test_paged_list_holds_the_same_files_once_each(self):
        # 4.2: the pages together are the listing, each file once; the last
        # page has no "more" and counts the skipped names.
        c = self.client()
        files, last, _ = c.list_paged()
        names = [f["name"] for f in files]
        self.assertEqual(sorted(names, key=lambda n: n.encode("utf-8")),
                         sorted(LISTED, key=lambda n: n.encode("utf-8")))
        self.assertFalse(last.get("more", False))
        self.assertEqual(last["skipped_invalid_names"],
                         len(NOT_LISTED_BAD_UTF8) + len(NOT_LISTED_VALID_UTF8_BAD))
        # The connection is in step afterwards.
        self.assertEqual(c.request("stat", name="b.txt")["name"], "b.txt")

    def test_stat_regular_file(self):
        c = self.client()
        r = c.request("stat", id=12, name="b.txt")
        i = LISTED.index("b.txt")
        self.assertEqual(r, {"id": 12, "ok": True, "name": "b.txt",
                             "size": i, "mtime": MTIME + i})
        r = c.request("stat", name="n" * 255)
        self.assertEqual(r["size"], LISTED.index("n" * 255))
        r = c.request("stat", name="\u00e9")        # NFC and NFD differ
        self.assertEqual(r["size"], LISTED.index("\u00e9"))

    def test_stat_not_found(self):
        c = self.client()
        for name in ("missing", "A.TXT", "a.txt ", "\u00e9" * 127 + "e"):
            with self.subTest(name=name):
                self.assertError(self.ask(c, {"op": "stat", "id": 13,
                                              "name": name}),
                                 "not_found", 13)
        self.assertUsable(c)

    def test_not_regular_file(self):
        c = self.client()
        for name in ("dir", "link", "outside", "dangling", "fifo", "sock"):
            for op in ("stat", "get"):
                with self.subTest(name=name, op=op):
                    r = self.ask(c, {"op": op, "id": 14, "name": name})
                    self.assertError(r, "not_regular_file", 14)
            with self.subTest(name=name, op="put"):
                # DOC: put is not documented to answer not_regular_file;
                # it does, and never replaces a folder, link or device.
                r = self.ask(c, {"op": "put", "id": 15, "name": name,
                                 "size": 1})
                self.assertError(r, "not_regular_file", 15)
        self.assertTrue(os.path.islink(self.server.path("link")))
        self.assertTrue(stat.S_ISFIFO(os.lstat(
            self.server.path("fifo")).st_mode))
        self.assertUsable(c)

    INVALID = ["", ".", "..", ".hidden", ".ferry-partial-zzz", "a/b",
               "/etc/passwd", "../x", "a\\b", "\x00", "a\x00b", "a\x01",
               "tab\tname", "new\nline", "a\x1f", "a\x7f", "x" * 256,
               "\u00e9" * 128] + DECEPTIVE

    def test_invalid_names(self):
        c = self.client()
        before = self.server.partials()
        for name in self.INVALID:
            for op in ("stat", "get", "put"):
                with self.subTest(name=name, op=op):
                    req = {"op": op, "id": 16, "name": name}
                    if op == "put":
                        req["size"] = 1
                    self.assertError(self.ask(c, req), "invalid_name", 16)
        self.assertUsable(c)
        self.assertEqual(self.server.partials(), before)

    def test_deceptive_names_are_refused_by_code_point(self):
        """Section 5: the message names the offending code point, and an NFD
        name is told its NFC form; never does the message carry a refused
        character raw."""
        c = self.client()
        for name, code_point in (("invoice\u202efdp.exe", "U+202E"),
                                 ("x\u009b31m", "U+009B"),
                                 ("pay\u200bpal.txt", "U+200B"),
                                 ("a\u3164b", "U+3164")):
            with self.subTest(name=name):
                r = self.ask(c, {"op": "put", "id": 18, "name": name,
                                 "size": 1})
                self.assertError(r, "invalid_name", 18)
                self.assertIn(code_point, r["error"]["message"])
                self.assertNotIn(chr(int(code_point[2:], 16)),
                                 r["error"]["message"])
        r = self.ask(c, {"op": "stat", "id": 19, "name": "cafe\u0301.txt"})
        self.assertError(r, "invalid_name", 19)
        self.assertIn("NFC", r["error"]["message"])
        self.assertIn("caf\u00e9.txt", r["error"]["message"])

    def test_names_not_representable_in_json_are_bad_json(self):
        # DOC: section 5 forbids overlong forms and surrogates, but such a
        # name cannot be sent: the control frame itself is not valid UTF-8
        # JSON, so the answer is bad_json (id null), not invalid_name.
        c = self.client()
        for raw in (b'{"op":"stat","id":17,"name":"a\xff"}',
                    b'{"op":"stat","id":17,"name":"a\xc0\xaf"}',
                    b'{"op":"stat","id":17,"name":"a\xed\xa0\x80"}',
                    b'{"op":"stat","id":17,"name":"a\\ud800"}'):
            with self.subTest(raw=raw):
                c.send_raw(fw.frame(1, raw))
                self.assertError(c.recv(), "bad_json", None)
        self.assertUsable(c)


# ---------------------------------------------------------------- get

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

    def test_file_rewritten_in_place_during_get_is_file_changed(self):
        def rewrite(path):
            # Same name, inode and size; other bytes (what cp over it does
            # once it has written the whole file again).
            with open(path, "r+b") as f:
                f.write(b"\xff" * 4096)
        self.changed_get(rewrite, 42)


# ---------------------------------------------------------------- put

class HashChoiceTests(ServerCase):
    """Section 4.1's hash table: a get or put names its hash; digests travel
    under the hash's name. The standard library cannot compute XXH3, so the
    digests are checked for form and for agreement between operations."""

    DATA = bytes(range(256)) * 700 + b"tail"

    @classmethod
    def prepare(cls, root):
        write_file(os.path.join(root, "a.bin"), cls.DATA)
        write_file(os.path.join(root, "b.bin"), cls.DATA[:-1] + b"!")

    def fast_get(self, c, name, offset=0, rid=70):
        r = self.ask(c, {"op": "get", "id": rid, "name": name,
                         "offset": offset, "hash": "xxh3-128"})
        self.assertTrue(r.get("ok"), r)
        body, _, end = self.read_transfer(c)
        return body, end

    def test_hello_offers_both(self):
        r = self.client(hello=False).request("hello", id=0, version=1)
        self.assertEqual(r["hashes"][:2], ["sha256", "xxh3-128"])

    def test_get_with_xxh3_names_its_digest(self):
        c = self.client()
        body, end = self.fast_get(c, "a.bin")
        self.assertEqual(body, self.DATA)
        self.assertNotIn("sha256", end)
        self.assertRegex(end["xxh3-128"], r"^[0-9a-f]{32}$")
        # The digest covers the whole file whatever the offset, is stable,
        # and tells a one-byte change apart.
        _, from_middle = self.fast_get(c, "a.bin", offset=1000, rid=71)
        self.assertEqual(from_middle["xxh3-128"], end["xxh3-128"])
        _, again = self.fast_get(c, "a.bin", rid=72)
        self.assertEqual(again["xxh3-128"], end["xxh3-128"])
        _, other = self.fast_get(c, "b.bin", rid=73)
        self.assertNotEqual(other["xxh3-128"], end["xxh3-128"])
        self.assertUsable(c)

    def test_unknown_hash_is_a_bad_request(self):
        c = self.client()
        for bad in ("md5", "XXH3-128", "", 5):
            self.assertError(self.ask(c, {"op": "get", "id": 74, "name": "a.bin",
                                          "hash": bad}), "bad_request", 74)
            self.assertError(self.ask(c, {"op": "put", "id": 75, "name": "n.bin",
                                          "size": 1, "hash": bad}), "bad_request", 75)
        self.assertUsable(c)

    def test_put_with_xxh3_commits_under_its_name(self):
        c = self.client()
        _, end = self.fast_get(c, "a.bin")
        digest = end["xxh3-128"]
        r = self.ask(c, {"op": "put", "id": 76, "name": "up.bin",
                         "size": len(self.DATA), "hash": "xxh3-128"})
        self.assertTrue(r.get("ok"), r)
        for i in range(0, len(self.DATA), fw.CHUNK):
            c.send_data(self.DATA[i:i + fw.CHUNK])
        # Another hash's digest is refused and the upload goes on.
        self.assertError(self.ask(c, {"op": "commit", "id": 76,
                                      "sha256": sha(self.DATA)}), "bad_request", 76)
        wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
        r = self.ask(c, {"op": "put", "id": 77, "name": "up2.bin",
                         "size": 1, "hash": "xxh3-128"})
        self.assertError(r, "unexpected_frame", 77)
        done = self.ask(c, {"op": "commit", "id": 76, "xxh3-128": digest})
        self.assertIs(done.get("ok"), True, done)
        self.assertEqual(done["xxh3-128"], digest)
        with open(self.server.path("up.bin"), "rb") as f:
            self.assertEqual(f.read(), self.DATA)
        # A wrong digest publishes nothing.
        r = self.ask(c, {"op": "put", "id": 78, "name": "bad.bin",
                         "size": 3, "hash": "xxh3-128"})
        self.assertTrue(r.get("ok"), r)
        c.send_data(b"abc")
        self.assertError(self.ask(c, {"op": "commit", "id": 78, "xxh3-128": wrong}),
                         "hash_mismatch", 78)
        self.assertFalse(os.path.exists(self.server.path("bad.bin")))


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


# ---------------------------------------------------------------- framing

class FramingTests(ServerCase):

    @classmethod
    def prepare(cls, root):
        write_file(os.path.join(root, "hello.txt"), b"hello", MTIME)

    def test_frames_split_one_byte_per_send(self):
        c = self.client(hello=False)
        stream = (fw.control({"op": "hello", "id": 0, "version": 1}) +
                  fw.control({"op": "stat", "id": 1, "name": "hello.txt"}) +
                  fw.control({"op": "put", "id": 2, "name": "split.bin",
                              "size": 40}) +
                  fw.data(bytes(range(40))) +
                  fw.control({"op": "commit", "id": 2,
                              "sha256": sha(bytes(range(40)))}))
        for i in range(len(stream)):
            c.send_raw(stream[i:i + 1])
            if i % 16 == 0:
                time.sleep(0.001)     # let the segments go out one by one
        self.assertEqual(c.recv()["id"], 0)
        self.assertEqual(c.recv()["size"], 5)
        self.assertEqual(c.recv()["offset"], 0)
        r = c.recv()
        self.assertEqual((r["id"], r["ok"], r["size"]), (2, True, 40))

    def test_pipelined_requests_answered_in_order(self):
        c = self.client(hello=False)
        reqs = [{"op": "hello", "id": 0, "version": 1},
                {"op": "list", "id": 1},
                {"op": "stat", "id": 2, "name": "hello.txt"},
                {"op": "stat", "id": 3, "name": "missing"},
                {"op": "frob", "id": 4},
                {"op": "get", "id": 5, "name": "hello.txt", "offset": 4},
                {"op": "stat", "id": 6, "name": "../etc"},
                {"op": "list", "id": 7}]
        c.send_raw(b"".join(fw.control(r) for r in reqs) +
                   fw.frame(1, b"not json") +
                   b"".join(fw.control({"op": "stat", "id": 100 + i,
                                        "name": "hello.txt"})
                            for i in range(50)))
        ids = []
        for _ in range(len(reqs) + 1):    # + the get's data and trailer
            r = c.recv()
            ids.append(r["id"])
            if r["id"] == 5:
                f = c.recv_frame()
                self.assertEqual(f.payload, b"o")
                self.assertEqual(c.recv()["done"], True)
        self.assertEqual(ids, [0, 1, 2, 3, 4, 5, 6, 7, None])
        for i in range(50):
            self.assertEqual(c.recv()["id"], 100 + i)

    def test_ids_are_echoed_across_their_range(self):
        c = self.client()
        for rid in (0, 1, 2 ** 32, 2 ** 53 + 1, 2 ** 64 - 1):
            with self.subTest(id=rid):
                self.assertEqual(c.request("list", id=rid)["id"], rid)
        # ids need not be unique or increasing
        self.assertEqual(c.request("list", id=5)["id"], 5)
        self.assertEqual(c.request("list", id=5)["id"], 5)

    def padded(self, n):
        base = {"op": "list", "id": 7, "pad": ""}
        base["pad"] = "x" * (n - len(fw.encode_json(base)))
        raw = fw.encode_json(base)
        self.assertEqual(len(raw), n)
        return raw

    def test_control_frame_at_the_limit(self):
        c = self.client()
        c.send_raw(fw.frame(1, self.padded(65536)))
        r = c.recv()
        self.assertEqual((r["id"], r["ok"]), (7, True))

    def test_control_frame_one_byte_over_the_limit(self):
        c = self.client()
        c.send_raw(fw.frame(1, self.padded(65537)))
        self.assertError(c.recv(), "frame_too_large", None)
        self.assertClosed(c)

    def test_oversized_frames_refused_from_the_header(self):
        for kind, length in ((1, 65537), (1, 0xFFFFFFFF), (2, 16777217),
                             (2, 0xFFFFFFFF)):
            with self.subTest(kind=kind, length=length):
                c = self.client()
                c.send_raw(struct.pack(">BI", kind, length))
                self.assertError(c.recv(), "frame_too_large", None)
                self.assertClosed(c)

    def test_unknown_frame_kind(self):
        for kind in (0x00, 0x03, 0x7F, 0xFF):
            with self.subTest(kind=kind):
                c = self.client()
                c.send_raw(fw.frame(kind, b"{}"))
                self.assertError(c.recv(), "bad_frame", None)
                self.assertClosed(c)

    def test_unknown_frame_kind_before_hello(self):
        c = self.client(hello=False)
        c.send_raw(b"\x03\x00\x00\x00\x00")
        self.assertError(c.recv(), "bad_frame", None)
        self.assertClosed(c)

    def test_bad_json_keeps_the_connection(self):
        c = self.client()
        for payload in (b"", b"not json", b"[1,2]", b'"text"', b"42",
                        b"null", b'{"op":"list","id":1} x', b'{"op":',
                        b"\xff\xfe", b'{"op":"list","id":1}{}'):
            with self.subTest(payload=payload):
                c.send_raw(fw.frame(1, payload))
                self.assertError(c.recv(), "bad_json", None)
                self.assertUsable(c)

    def test_json_whitespace_is_allowed(self):
        # DOC: "with no trailing bytes" could be read as forbidding JSON
        # whitespace after the object; ferryd accepts it, as RFC 8259 does.
        c = self.client()
        for payload in (b' {"op":"list","id":1} ', b'{"op":"list","id":1}\n',
                        b'{ "op" : "list" ,\r\n "id" : 1 }'):
            with self.subTest(payload=payload):
                c.send_raw(fw.frame(1, payload))
                self.assertEqual(c.recv()["id"], 1)

    def test_bad_request_keeps_the_connection(self):
        c = self.client()
        cases = [  # (request, id expected in the answer)
            ({"op": "list"}, None),
            ({"op": "list", "id": "1"}, None),
            ({"op": "list", "id": -1}, None),
            ({"op": "list", "id": 1.5}, None),
            ({"op": "list", "id": None}, None),
            ({"op": "list", "id": True}, None),
            ({"op": "list", "id": 2 ** 64}, None),
            ({"id": 8}, 8),
            ({"op": 5, "id": 8}, 8),
            ({"op": None, "id": 8}, 8),
            ({"op": "stat", "id": 8}, 8),
            ({"op": "stat", "id": 8, "name": 7}, 8),
            ({"op": "stat", "id": 8, "name": ["a"]}, 8),
        ]
        for req, rid in cases:
            with self.subTest(req=req):
                self.assertError(self.ask(c, req), "bad_request", rid)
                self.assertUsable(c)

    def test_only_whitespace_may_follow_the_object(self):
        """Section 2: a NUL is not whitespace, so a frame with anything
        after its object, behind a NUL or not, is bad_json, never answered
        as the object before it."""
        c = self.client()
        for payload in (b'{"op":"stats","id":5}\x00{"op":"list","id":6}',
                        b'{"op":"stats","id":5}\x00',
                        b'{"op":"stats","id":5} \x00 ',
                        b'\x00{"op":"stats","id":5}',
                        b'\xef\xbb\xbf{"op":"stats","id":5}'):
            with self.subTest(payload=payload):
                c.send_raw(fw.frame(1, payload))
                self.assertError(c.recv(), "bad_json", None)
                self.assertUsable(c)

    def test_repeated_keys_are_bad_json(self):
        c = self.client()
        for payload in (b'{"op":"stats","id":5,"id":6}',
                        b'{"op":"list","op":"stats","id":5}',
                        b'{"op":"stats","id":5,"x":{"a":1,"a":2}}',
                        b'{"op":"stats","id":5,"x":[{"a":1,"a":1}]}'):
            with self.subTest(payload=payload):
                c.send_raw(fw.frame(1, payload))
                self.assertError(c.recv(), "bad_json", None)
                self.assertUsable(c)
        c.send_raw(fw.frame(1, b'{"op":"stat","id":5,"name":"hello.txt",'
                               b'"x":{"id":1,"name":2},"y":[{"a":1},{"a":1}]}'))
        self.assertEqual(c.recv()["size"], 5)

    def test_integers_are_digits_only_and_in_range(self):
        """Section 3.1: an integer field takes digits only (no sign,
        fraction or exponent), 0 to 2^64-1. Any other JSON number, however
        large, is valid JSON: bad_request, with the id unless the id is the
        bad field."""
        c = self.client()
        huge = ["1e400", "-1e400", "9" * 1000, "-" + "9" * 1000,
                "18446744073709551616", "1" + "0" * 400 + ".5e3"]
        for number in ["7.0", "1e2", "-0", "5E0", "-3"] + huge:
            for template, rid in (
                    ('{"op":"get","id":31,"name":"hello.txt","offset":%s}', 31),
                    ('{"op":"put","id":32,"name":"n.txt","size":%s}', 32),
                    ('{"op":"list","id":%s}', None),
                    ('{"id":%s,"op":"list"}', None)):
                payload = (template % number).encode()
                with self.subTest(payload=payload[:80]):
                    c.send_raw(fw.frame(1, payload))
                    self.assertError(c.recv(), "bad_request", rid)
        self.assertUsable(c)
        # A huge number in a field nobody reads is just an unknown field.
        for number in huge:
            c.send_raw(fw.frame(1, ('{"op":"stat","id":33,"name":"hello.txt",'
                                    '"later":%s}' % number).encode()))
            self.assertEqual(c.recv()["size"], 5)
        # The largest id and offset are fine.
        c.send_raw(fw.frame(1, b'{"op":"list","id":18446744073709551615}'))
        self.assertEqual(c.recv()["id"], 2 ** 64 - 1)

    def test_null_is_no_optional_fields_value(self):
        """Section 3.1: null is not the same as leaving a field out, for
        every optional field alike."""
        c = self.client()
        cases = [
            {"op": "hello", "id": 40, "version": 1, "client": None},
            {"op": "hello", "id": 40, "version": 1, "token": None},
            {"op": "get", "id": 41, "name": "hello.txt", "hash": None},
            {"op": "get", "id": 41, "name": "hello.txt", "offset": None},
            {"op": "put", "id": 42, "name": "n.txt", "size": 1, "hash": None},
            {"op": "put", "id": 42, "name": "n.txt", "size": 1,
             "resume": None},
        ]
        for req in cases:
            with self.subTest(req=req):
                self.assertError(self.ask(c, req), "bad_request", req["id"])
                self.assertUsable(c)

    def test_unknown_op_keeps_the_connection(self):
        c = self.client()
        for op in ("frob", "LIST", "", "delete"):
            with self.subTest(op=op):
                self.assertError(self.ask(c, {"op": op, "id": 9}),
                                 "unknown_op", 9)
                self.assertUsable(c)

    def test_unknown_fields_are_ignored(self):
        c = self.client()
        r = self.ask(c, {"op": "stat", "id": 10, "name": "hello.txt",
                         "future": {"x": [1, 2]}, "flag": True})
        self.assertEqual((r["ok"], r["size"]), (True, 5))

    def test_clients_leaving_in_the_middle_of_a_frame(self):
        stay = self.client()
        for partial in (b"\x01", b"\x01\x00\x00\x00\x20",
                        b'\x01\x00\x00\x00\x20{"op":"list"',
                        fw.control({"op": "hello", "id": 0, "version": 1}) +
                        b"\x02\x00\x00\x10\x00abc"):
            with self.subTest(partial=partial):
                c = self.client(hello=False)
                c.send_raw(partial)
                c.close()
                self.assertUsable(stay)
                self.assertUsable(self.client())


# ---------------------------------------------------------------- stats

class StatsTests(ServerCase):

    @classmethod
    def prepare(cls, root):
        write_file(os.path.join(root, "hello.txt"), b"hello", MTIME)

    def test_stats_counts_what_happened(self):
        c0 = self.client(hello=False)
        self.assertError(self.ask(c0, {"op": "stats", "id": 1}),
                         "hello_required", 1)
        c1 = self.client()
        self.assertEqual(c1.get("hello.txt")[1], b"hello")
        self.assertTrue(c1.put("up.txt", b"abc")["ok"])
        self.assertError(self.ask(c1, {"op": "get", "id": 2,
                                       "name": "missing"}), "not_found", 2)
        self.client()
        r = c1.request("stats", id=3)
        self.assertEqual(r["id"], 3)
        self.assertIsInstance(r["uptime_seconds"], int)
        self.assertGreaterEqual(r["uptime_seconds"], 0)
        self.assertEqual(r["connections"], {"now": 3, "total": 3})
        self.assertEqual(r["transfers"], {"now": 0, "total": 2})
        self.assertEqual(r["bytes"], {"in": 3, "out": 5})
        self.assertEqual(r["errors"], {"hello_required": 1, "not_found": 1})

    def test_stats_is_announced_and_refused_during_an_upload(self):
        c = self.client(hello=False)
        self.assertIn("stats", c.hello()["capabilities"])
        self.put_start(c, "s.bin", 1, rid=4)
        self.assertError(self.ask(c, {"op": "stats", "id": 5}),
                         "unexpected_frame", 5)
        self.ask(c, {"op": "abort", "id": 4, "discard": True})


# ---------------------------------------------------------------- access

RW_TOKEN = "rw-token-0123456789abcdef"
RO_TOKEN = "ro-token-0123456789abcdef"


class TokenTests(ServerCase):
    TOKEN_FILE = None

    @classmethod
    def setUpClass(cls):
        fd, cls.TOKEN_FILE = tempfile.mkstemp(prefix="ferry-tokens-")
        with os.fdopen(fd, "w") as f:
            f.write("%s rw\n%s ro\n" % (RW_TOKEN, RO_TOKEN))
        cls.server_args = ("--token-file", cls.TOKEN_FILE)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            os.unlink(cls.TOKEN_FILE)

    def hello(self, c, token):
        m = {"op": "hello", "id": 0, "version": 1}
        if token is not None:
            m["token"] = token
        c.send(m)

    def test_missing_or_wrong_token_is_unauthorized(self):
        # both at once: each answer comes after about a second
        clients = [self.client(hello=False) for _ in range(3)]
        t = time.time()
        for c, tok in zip(clients, (None, "not-a-valid-token-at-all", "")):
            self.hello(c, tok)
        for c in clients:
            r = c.recv()
            self.assertError(r, "unauthorized", 0)
            self.assertClosed(c)
        # DOC: "about a second"; ferryd takes between 1 and 2 s
        self.assertGreater(time.time() - t, 0.5)

    def test_read_write_token(self):
        c = self.client(hello=False)
        self.hello(c, RW_TOKEN)
        r = c.recv()
        self.assertEqual((r["ok"], r["access"]), (True, "rw"))
        self.assertTrue(c.put("rw.txt", b"written")["ok"])

    def test_read_only_token(self):
        write_file(self.server.path("ro.txt"), b"readable")
        c = self.client(hello=False)
        self.hello(c, RO_TOKEN)
        r = c.recv()
        self.assertEqual((r["ok"], r["access"]), (True, "ro"))
        self.assertError(self.ask(c, {"op": "put", "id": 1, "name": "x.txt",
                                      "size": 1}), "forbidden", 1)
        self.assertEqual(c.get("ro.txt")[1], b"readable")
        self.assertUsable(c)

    def test_requests_before_hello_still_hello_required(self):
        c = self.client(hello=False)
        self.assertError(self.ask(c, {"op": "list", "id": 2}),
                         "hello_required", 2)
        self.assertError(self.ask(c, {"op": "hello", "id": 3, "version": 1,
                                      "token": 5}), "bad_request", 3)
        self.hello(c, RW_TOKEN)
        self.assertTrue(c.recv()["ok"])


class ReadOnlyServerTests(ServerCase):
    server_args = ("--read-only",)

    def test_read_only_server(self):
        c = self.client(hello=False)
        r = self.ask(c, {"op": "hello", "id": 0, "version": 1,
                         "token": "ignored-without-a-token-file"})
        self.assertEqual((r["ok"], r["access"]), (True, "ro"))
        self.assertError(self.ask(c, {"op": "put", "id": 1, "name": "x.txt",
                                      "size": 1, "resume": True}),
                         "forbidden", 1)
        self.assertUsable(c)

    def test_access_is_rw_by_default(self):
        s = Ferryd()
        self.addCleanup(s.cleanup)
        self.assertEqual(s.client(hello=False).hello()["access"], "rw")
        self.assertEqual(s.stop(), 0)


class LargeFolderListTests(ServerCase):
    # 4.2: a folder whose single list reply would pass ferryd's 4 MiB gets
    # list_too_large without pages, and is listed whole in pages.
    COUNT = 14000

    @classmethod
    def prepare(cls, root):
        for i in range(cls.COUNT):
            name = ("%07d" % i).ljust(255, "n")
            os.close(os.open(os.path.join(root, name), os.O_CREAT | os.O_WRONLY, 0o644))

    def test_a_large_folder_is_refused_whole_and_listed_in_pages(self):
        c = self.client()
        with self.assertRaises(fw.RemoteError) as caught:
            c.list()
        self.assertEqual(caught.exception.code, "list_too_large")
        files, last, pages = c.list_paged()
        self.assertGreater(pages, 1)
        self.assertEqual(len({f["name"] for f in files}), self.COUNT)
        self.assertEqual(len(files), self.COUNT)
        self.assertEqual(last["skipped_invalid_names"], 0)


# ---------------------------------------------------------------- limits

class SmallControlFrameTests(ServerCase):
    server_args = ("--max-control-frame", "1024")

    def test_announced_limit_is_enforced(self):
        c = self.client(hello=False)
        r = self.ask(c, {"op": "hello", "id": 0, "version": 1})
        self.assertEqual(r["max_control_frame"], 1024)
        pad = {"op": "list", "id": 1, "pad": ""}
        pad["pad"] = "y" * (1024 - len(fw.encode_json(pad)))
        c.send(pad)
        self.assertTrue(c.recv()["ok"])
        pad["pad"] += "y"
        c.send(pad)
        self.assertError(c.recv(), "frame_too_large", None)
        self.assertClosed(c)


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
        s = self.server("--max-transfers", "1", "--stall-timeout", "1",
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
        c.send({"op": "get", "id": 7, "name": "big.bin"})
        time.sleep(2.0)           # read nothing: no progress for > 1 s
        self.assertTrue(c.recv()["ok"])
        body, _, end = self.read_transfer(c)
        self.assertLess(len(body), 64 << 20)
        self.assertError(end, "stalled", 7)
        self.assertClosed(c)


# ---------------------------------------------------------------- shutdown

class ShutdownTests(unittest.TestCase):

    def test_idle_connections_get_shutting_down(self):
        s = Ferryd(drain=30)
        self.addCleanup(s.cleanup)
        a = s.client()
        b = s.client(hello=False)
        t = time.time()
        s.proc.send_signal(signal.SIGTERM)
        for c in (a, b):
            r = c.recv()
            self.assertEqual((r["id"], r["ok"], r["error"]["code"]),
                             (None, False, "shutting_down"))
            self.assertTrue(c.at_eof())
        self.assertEqual(s.proc.wait(TIMEOUT), 0)
        self.assertLess(time.time() - t, 5)

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


# ---------------------------------------------------------------- disk errors

def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


@unittest.skipUnless(os.path.isdir("/proc/self/fd"), "needs /proc")
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
        probe = Ferryd(limits={})
        base = fd_count(probe.proc.pid)
        self.assertEqual(probe.stop(), 0)
        probe.cleanup()
        # RLIMIT_NOFILE: room for one connection, no file
        s = self.server({"nofile": base + 1})
        write_file(s.path("f.txt"), b"data")
        c = s.client()
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


# ---------------------------------------------------------------- coverage

def documented_codes():
    with open(PROTOCOL_MD) as f:
        text = f.read()
    section = text.split("## 6. Error codes", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", section, re.M)


class TlsTests(unittest.TestCase):
    """Section 1: a server that requires TLS says so, in plaintext, to a
    client that sends a Ferry frame first; TLS clients are served."""

    def test_plaintext_client_is_told_tls_is_required(self):
        import ssl
        keys = tempfile.mkdtemp(prefix="ferry-conformance-tls-")
        self.addCleanup(shutil.rmtree, keys, True)
        cert = os.path.join(keys, "cert.pem")
        key = os.path.join(keys, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                        "-keyout", key, "-out", cert],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        s = Ferryd(("--tls-cert", cert, "--tls-key", key))
        self.addCleanup(s.cleanup)
        c = s.client(hello=False)
        c.send({"op": "hello", "id": 0, "version": 1})
        r = c.recv()
        self.assertEqual((r["ok"], r["id"], r["error"]["code"]), (False, None, "tls_required"))
        # The same frames inside TLS work.
        context = ssl.create_default_context(cafile=cert)
        raw = socket.create_connection(("127.0.0.1", s.port), timeout=TIMEOUT)
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            payload = fw.encode_json({"op": "hello", "id": 0, "version": 1})
            tls.sendall(bytes([1]) + len(payload).to_bytes(4, "big") + payload)
            data = b""
            while len(data) < 5 or len(data) < 5 + int.from_bytes(data[1:5], "big"):
                piece = tls.recv(65536)
                self.assertTrue(piece, "the server closed the TLS connection")
                data += piece
            self.assertTrue(json.loads(data[5:])["ok"])
        self.assertEqual(s.stop(), 0)


class ZzErrorCodeCoverage(unittest.TestCase):
    """Runs last: every code of section 6 was received at least once."""

    def test_every_provokable_code_was_seen(self):
        if not FULL_RUN:
            self.skipTest("only meaningful when the whole suite runs")
        codes = documented_codes()
        self.assertGreaterEqual(len(codes), 20)
        for code in UNPROVOKABLE:
            self.assertIn(code, codes)
        missing = [c for c in codes
                   if c not in OBSERVED_CODES and c not in UNPROVOKABLE]
        if os.environ.get("FERRY_SANITIZED"):
            # io_error is provoked only by the descriptor-exhaustion test,
            # which the sanitizer run skips (see DiskErrorTests); a shrinking
            # file, which used to give io_error, is file_changed now.
            missing = [c for c in missing if c != "io_error"]
        self.assertEqual(missing, [], "codes never provoked")
        unknown = OBSERVED_CODES - set(codes)
        self.assertEqual(unknown, set(), "codes the document does not list")


# ---------------------------------------------------------------- main

FULL_RUN = True


def main():
    global FERRYD, FULL_RUN
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ferryd", default=os.environ.get("FERRYD"),
                    help="path of the ferryd executable (or env FERRYD)")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("-k", dest="patterns", action="append",
                    help="only tests whose name contains this")
    args = ap.parse_args()
    FERRYD = args.ferryd or os.path.join(REPO, "build", "server", "ferryd")
    if not os.access(FERRYD, os.X_OK):
        print("ferryd not found at %s (use --ferryd or FERRYD)" % FERRYD,
              file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    FERRYD = os.path.abspath(FERRYD)
    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = ["*%s*" % p for p in args.patterns]
        FULL_RUN = False
    suite = loader.loadTestsFromModule(sys.modules[__name__])
    t = time.time()
    result = unittest.TextTestRunner(verbosity=2 if args.verbose else 1,
                                     stream=sys.stderr).run(suite)
    failed = (len(result.failures) + len(result.errors) +
              len(result.unexpectedSuccesses))
    passed = max(0, result.testsRun - len(result.failures) -
                 len(result.errors) - len(result.skipped))
    sys.stderr.write("conformance suite took %.1f s\n" % (time.time() - t))
    sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
