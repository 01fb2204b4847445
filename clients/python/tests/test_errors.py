"""Every exception class of ferry_client raised by a real ferryd's reply
(or, for the local codes, by what the library finds itself), TLS with a
CA file and with a pin, and tokens (rw, ro, wrong)."""

import hashlib
import io
import os
import resource
import signal
import socket
import ssl
import subprocess
import threading
import time
import unittest

from support import FERRYD, MTIME, ServerCase, ferry_client, harness, read, write

MIB = 1 << 20
RW_TOKEN = "rw-token-0123456789abcdef"
RO_TOKEN = "ro-token-0123456789abcdef"


class ErrorTests(ServerCase):
    server_args = ("--max-upload-size", str(4 * MIB))

    @classmethod
    def prepare(cls, root):
        write(os.path.join(root, "hello.txt"), b"hello", MTIME)
        os.mkdir(os.path.join(root, "folder"))

    def raises(self, family, code, call, *args, **kwargs):
        with self.assertRaises(family) as caught:
            call(*args, **kwargs)
        error = caught.exception
        self.assertEqual(error.code, code)
        self.assertIsInstance(error, ferry_client.FerryError)
        self.assertTrue(error.message)
        return error

    def test_protocol_error_bad_request_and_unknown_op(self):
        c = self.connect()
        error = self.raises(ferry_client.ProtocolError, "unknown_op", c.request, "teleport")
        self.assertEqual(error.reply["error"]["code"], "unknown_op")   # the server's frame
        self.raises(ferry_client.ProtocolError, "bad_request", c.request, "get", name="hello.txt", offset="0")
        self.assertEqual(c.stat("hello.txt").size, 5)   # the connection stays usable

    def test_unsupported_version(self):
        self.raises(ferry_client.UnsupportedVersion, "unsupported_version", ferry_client.connect, self.address,
                    version=0)

    def test_not_found_invalid_name_wrong_type(self):
        c = self.connect()
        self.raises(ferry_client.NotFound, "not_found", c.stat, "missing.txt")
        self.raises(ferry_client.InvalidName, "invalid_name", c.stat, "bad\u202ename")
        self.assertEqual(c.stat("folder").type, "folder")
        self.raises(ferry_client.WrongType, "not_regular_file", c.get, "folder", io.BytesIO())

    def test_conflict_bad_offset(self):
        c = self.connect()
        hasher = ferry_client.hashes.new("sha256")
        self.raises(ferry_client.Conflict, "bad_offset", c.open_get, "hello.txt", 6, hasher=hasher)

    def test_integrity_error_hash_mismatch_and_size_mismatch(self):
        c = self.connect()
        upload = c.open_put("wrong.bin", 5)
        upload.write(b"abcde")
        self.raises(ferry_client.IntegrityError, "hash_mismatch", upload.commit, hashlib.sha256(b"ABCDE").hexdigest())
        upload = c.open_put("short.bin", 10)
        upload.write(b"abcde")
        self.raises(ferry_client.IntegrityError, "size_mismatch", upload.commit, hashlib.sha256(b"abcde").hexdigest())

    def test_integrity_error_file_changed_keeps_nothing(self):
        """A remote file rewritten while it is sent (PROTOCOL.md 4.4): the
        part is dropped, neither published nor kept for a resume."""
        path = os.path.join(self.root, "changing.bin")
        write(path, os.urandom(64 * MIB), MTIME)
        c = self.connect()
        dest = os.path.join(self.fresh_folder(), "changing.bin")

        def touch_once(done, total):
            if done > 0 and not touched:
                touched.append(done)
                os.utime(path, (MTIME + 5, MTIME + 5))

        touched = []
        self.raises(ferry_client.IntegrityError, "file_changed", c.get, "changing.bin", dest, progress=touch_once)
        self.assertEqual(os.listdir(os.path.dirname(dest)), [])

    def test_a_source_changed_while_it_is_sent_is_not_published(self):
        """The library's own check (IntegrityError file_changed): a local
        file written to during its put is aborted, its bytes discarded."""
        c = self.connect()
        src = os.path.join(self.fresh_folder(), "growing.log")
        write(src, os.urandom(3 * MIB))

        def append_once(done, total):
            if done > MIB and not appended:
                appended.append(done)
                with open(src, "ab") as f:
                    f.write(b"one more line\n")

        appended = []
        self.raises(ferry_client.IntegrityError, "file_changed", c.put, src, progress=append_once)
        self.assertFalse(os.path.exists(os.path.join(self.root, "growing.log")))
        self.assertEqual([n for n in os.listdir(self.root) if n.startswith(".ferry-partial-")], [])
        c.put(src)   # once it holds still, it goes
        self.assertEqual(read(os.path.join(self.root, "growing.log")), read(src))

    def test_retryable_busy(self):
        first, second = self.connect(), self.connect()
        upload = first.open_put("contended.bin", 100)
        self.raises(ferry_client.Retryable, "busy", second.open_put, "contended.bin", 100)
        upload.abort(discard=True)

    def test_server_limit_upload_too_large(self):
        c = self.connect()
        self.raises(ferry_client.ServerLimit, "upload_too_large", c.put, io.BytesIO(b"x" * (4 * MIB + 1)), "big")

    def test_connection_lost_when_nothing_listens_and_when_the_server_goes(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.raises(ferry_client.ConnectionLost, "connection_lost", ferry_client.connect, f"127.0.0.1:{port}",
                    timeout=5)

    def test_local_io_error_and_unsupported_hash(self):
        c = self.connect()
        error = self.raises(ferry_client.LocalIOError, "local_io", c.get, "hello.txt",
                            os.path.join(self.local, "no", "such", "folder", "h.txt"))
        self.assertIsInstance(error, OSError)
        self.raises(ferry_client.UnsupportedHash, "unsupported_hash", c.get, "hello.txt", io.BytesIO(), hash="md5")

    def test_a_folder_operation_on_version_1_is_refused_locally(self):
        c = ferry_client.connect(self.address, version=1)
        self.addCleanup(c.close)
        self.assertEqual(c.version, 1)
        self.raises(ferry_client.UnsupportedVersion, "unsupported_version", c.mkdir, "new")
        self.raises(ferry_client.UnsupportedVersion, "unsupported_version", c.list, "folder")


class ServerSideFailureTests(unittest.TestCase):
    def test_storage_error_no_space(self):
        """RLIMIT_FSIZE on the server: its write fails as a full disk does."""
        scratch = harness.Scratch("ferry-pylib-")
        self.addCleanup(scratch.remove)

        def small_files():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (100000, 100000))

        with harness.Server(FERRYD, scratch.root, preexec_fn=small_files) as server:
            with ferry_client.connect(server.address) as c:
                with self.assertRaises(ferry_client.StorageError) as caught:
                    c.put(io.BytesIO(os.urandom(MIB)), "full.bin")
                self.assertEqual(caught.exception.code, "no_space")

    def test_retryable_server_full(self):
        scratch = harness.Scratch("ferry-pylib-")
        self.addCleanup(scratch.remove)
        with harness.Server(FERRYD, scratch.root, "--max-connections", "1") as server:
            # Version 1 asked at once: a fallback from 2 would briefly hold a
            # second connection while the server closes the first.
            with ferry_client.connect(server.address, version=1):
                with self.assertRaises(ferry_client.Retryable) as caught:
                    ferry_client.connect(server.address)
                self.assertEqual(caught.exception.code, "server_full")

    def test_connection_lost_mid_download_keeps_the_part(self):
        scratch = harness.Scratch("ferry-pylib-")
        self.addCleanup(scratch.remove)
        write(os.path.join(scratch.root, "big.bin"), os.urandom(64 * MIB))
        server = harness.Server(FERRYD, scratch.root)
        try:
            c = ferry_client.connect(server.address)
            dest = os.path.join(scratch.local, "big.bin")

            def kill_midway(done, total):
                if done > 4 * MIB and server.process.poll() is None:
                    server.process.kill()

            with self.assertRaises(ferry_client.ConnectionLost):
                c.get("big.bin", dest, progress=kill_midway)
            self.assertTrue(os.path.exists(dest + ".ferry-part.state"))
            self.assertFalse(os.path.exists(dest))
        finally:
            server.stop()

    def test_not_ferry(self):
        """A web server's answer to hello is no Ferry frame."""
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)

        def answer():
            peer, _ = listener.accept()
            with peer:
                peer.recv(1024)
                peer.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                time.sleep(0.5)

        thread = threading.Thread(target=answer)
        thread.start()
        with self.assertRaises(ferry_client.NotFerry) as caught:
            ferry_client.connect(f"127.0.0.1:{listener.getsockname()[1]}", timeout=5)
        thread.join()
        self.assertEqual(caught.exception.code, "not_ferry")

    def test_version_2_falls_back_to_1_on_unsupported_version(self):
        """A server that speaks only 1 (as ferryd before the tree) closes
        after unsupported_version: the client asks again with 1."""
        from ferry_client import wire
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)
        asked = []

        def old_server():
            for _ in range(2):
                peer, _ = listener.accept()
                with peer:
                    t = wire.Transport(peer)
                    hello = t.recv_frame().json()
                    asked.append(hello["version"])
                    if hello["version"] != 1:
                        t.send_control({"id": 0, "ok": False, "error": {"code": "unsupported_version",
                                                                        "message": "version 1 only"}})
                        continue
                    t.send_control({"id": 0, "ok": True, "version": 1, "server": "old/1", "access": "rw",
                                    "hashes": ["sha256"], "capabilities": ["list"], "max_control_frame": 65536,
                                    "max_data_frame": 16777216})
                    try:
                        t.recv_frame()   # until the client closes
                    except ferry_client.ConnectionLost:
                        pass

        thread = threading.Thread(target=old_server)
        thread.start()
        with ferry_client.connect(f"127.0.0.1:{listener.getsockname()[1]}", timeout=5) as c:
            self.assertEqual((c.version, c.server), (1, "old/1"))
            with self.assertRaises(ferry_client.UnsupportedVersion):
                c.mkdir("x")
        thread.join()
        self.assertEqual(asked, [2, 1])


def make_certificate(folder):
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return cert, key


class TlsTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.scratch = harness.Scratch("ferry-pylib-tls-")
        cls.cert, key = make_certificate(cls.scratch.local)
        write(os.path.join(cls.scratch.root, "hello.txt"), b"hello")
        cls.server = harness.Server(FERRYD, cls.scratch.root, "--tls-cert", cls.cert, "--tls-key", key)
        with open(cls.cert) as f:
            der = ssl.PEM_cert_to_DER_cert(f.read())
        cls.pin = "sha256:" + ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.scratch.remove()

    def test_a_pin_of_the_leaf_certificate(self):
        with ferry_client.connect(self.server.address, pin=self.pin) as c:
            sink = io.BytesIO()
            c.get("hello.txt", sink)
            self.assertEqual(sink.getvalue(), b"hello")
            c.put(io.BytesIO(b"over tls"), "tls.txt")
        self.assertEqual(open(os.path.join(self.scratch.root, "tls.txt"), "rb").read(), b"over tls")

    def test_a_wrong_pin_is_refused(self):
        wrong = "sha256:" + "00" * 32
        with self.assertRaises(ferry_client.TLSError) as caught:
            ferry_client.connect(self.server.address, pin=wrong)
        self.assertEqual(caught.exception.code, "tls_failed")
        self.assertIn("pin", caught.exception.message)

    def test_a_ca_file(self):
        with ferry_client.connect(self.server.address, ca=self.cert) as c:
            self.assertEqual(c.stat("hello.txt").size, 5)

    def test_an_untrusted_certificate_is_refused(self):
        with self.assertRaises(ferry_client.TLSError) as caught:
            ferry_client.connect(self.server.address, tls=True)   # the system's CAs do not know it
        self.assertEqual(caught.exception.code, "tls_failed")

    def test_plaintext_to_a_tls_server_is_tls_required(self):
        with self.assertRaises(ferry_client.TLSError) as caught:
            ferry_client.connect(self.server.address)
        self.assertEqual(caught.exception.code, "tls_required")

    def test_tls_to_a_plaintext_server_fails_cleanly(self):
        scratch = harness.Scratch("ferry-pylib-")
        self.addCleanup(scratch.remove)
        with harness.Server(FERRYD, scratch.root) as plain:
            with self.assertRaises(ferry_client.TLSError) as caught:
                ferry_client.connect(plain.address, pin=self.pin, timeout=10)
            self.assertEqual(caught.exception.code, "tls_failed")


class TokenTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.scratch = harness.Scratch("ferry-pylib-tokens-")
        tokens = os.path.join(cls.scratch.base, "tokens")
        with open(tokens, "w") as f:
            f.write(f"{RW_TOKEN} rw writer\n{RO_TOKEN} ro reader\n")
        os.chmod(tokens, 0o600)
        write(os.path.join(cls.scratch.root, "hello.txt"), b"hello")
        cls.server = harness.Server(FERRYD, cls.scratch.root, "--token-file", tokens)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.scratch.remove()

    def test_a_read_write_token(self):
        with ferry_client.connect(self.server.address, token=RW_TOKEN) as c:
            self.assertEqual(c.access, "rw")
            c.put(io.BytesIO(b"mine"), "rw.txt")

    def test_a_read_only_token_reads_and_is_forbidden_to_write(self):
        with ferry_client.connect(self.server.address, token=RO_TOKEN) as c:
            self.assertEqual(c.access, "ro")
            sink = io.BytesIO()
            c.get("hello.txt", sink)
            self.assertEqual(sink.getvalue(), b"hello")
            with self.assertRaises(ferry_client.AuthError) as caught:
                c.put(io.BytesIO(b"no"), "ro.txt")
            self.assertEqual(caught.exception.code, "forbidden")

    def test_a_wrong_or_missing_token_is_unauthorized(self):
        for token in ("wrong-token-0123456789", None):
            with self.subTest(token=token):
                with self.assertRaises(ferry_client.AuthError) as caught:
                    ferry_client.connect(self.server.address, token=token)
                self.assertEqual(caught.exception.code, "unauthorized")


if __name__ == "__main__":
    unittest.main()
