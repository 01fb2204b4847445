"""What every conformance test module shares: a ferryd on a free loopback
port (Ferryd), a base class whose tests share one server (ServerCase), a
client that records the error codes it receives, and the suite's constants.

Written from docs/PROTOCOL.md alone, with the Python standard library only.
test_conformance.py sets FERRYD before any server starts.
"""

import hashlib
import json
import fcntl
import os
import re
import select
import shutil
import signal
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

FERRYD = None                 # set by test_conformance.main()
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

    def __init__(self, args=(), root=None, limits=None, drain=2.0, user=None):
        self.own_root = root is None
        self.root = root or tempfile.mkdtemp(prefix="ferry-conformance-")
        self.clients = []
        self.log = tempfile.TemporaryFile()
        # ferryd shares this open file (and its offset) with us: O_APPEND keeps
        # its writes at the end (open(2)), and read_log() reads with pread(2),
        # which leaves that shared offset where ferryd's last write put it.
        fcntl.fcntl(self.log.fileno(), fcntl.F_SETFL, fcntl.fcntl(self.log.fileno(), fcntl.F_GETFL) | os.O_APPEND)
        cmd = [FERRYD, "--root", self.root, "--listen", "127.0.0.1:0"]
        if drain is not None:
            cmd += ["--drain-timeout", str(drain)]
        cmd += list(args)
        if limits is not None:
            cmd = [sys.executable, "-c", self.LIMITS_WRAPPER,
                   json.dumps(limits)] + cmd
        if user is not None:
            # setpriv execs ferryd: the pid, and its signals, stay ferryd's.
            cmd = ["setpriv", "--reuid", str(user), "--regid", str(user), "--clear-groups"] + cmd
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
        # A seek to 0 and a read would race ferryd: a line written between
        # them moves the shared offset to the end, and the read gets nothing.
        pieces, offset = [], 0
        while True:
            piece = os.pread(self.log.fileno(), 1 << 16, offset)
            if not piece:
                return b"".join(pieces).decode("utf-8", "replace")
            pieces.append(piece)
            offset += len(piece)

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
        if rc != 0:
            # What the server said last (a sanitizer's report, an assertion)
            # is in its log, which cleanup() throws away: shown here.
            sys.stderr.write("ferryd exited with %s; the end of its log:\n%s\n"
                             % (rc, self.read_log()[-8000:]))
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
    server_user = None  # a uid to run ferryd as (root's otherwise)

    @classmethod
    def prepare(cls, root):
        """Fill the served folder before the server starts."""

    @classmethod
    def setUpClass(cls):
        root = tempfile.mkdtemp(prefix="ferry-conformance-")
        cls.prepare(root)
        cls.server = Ferryd(cls.server_args, root=root, user=cls.server_user)
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
