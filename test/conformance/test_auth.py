"""Access: tokens, read-only servers, and TLS.

Part of the conformance suite (ferryd against docs/PROTOCOL.md);
test_conformance.py runs it with the others.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import ferry_wire as fw
from conformance import Ferryd, ServerCase, TIMEOUT, write_file


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
