"""The timeout bounds how long a server may make no progress, as ferry's
--timeout does (PROTOCOL.md 4.2 and 4.4): a reply trickled a byte at a
time, empty data frames and empty list pages are no progress, so a server
that sends only those is given up like a silent one. A timeout per socket
read waited on each of them for ever (round 74, M1). File bytes are
progress: a slow download that keeps coming is not cut.

A scripted server on a loopback socket, one thread per test; it closes
after a few seconds whatever happens, so a client that waits on it fails
the test instead of hanging it."""

import hashlib
import io
import json
import os
import socket
import struct
import tempfile
import threading
import time
import unittest

from support import ferry_client, sha256

# The client's: seconds without progress. Long enough that a scripted step
# due well within it is not late on a loaded machine (the suites run side by
# side, under the sanitizers too): 0.5 s left 50 ms of slack in places.
TIMEOUT = 3.0
SERVER_GIVES_UP = 15.0
HELLO = {"id": 1, "ok": True, "version": 2, "server": "scripted/1",
         "capabilities": ["list", "stat", "get", "put", "resume", "stats", "folders", "digest", "mtime"],
         "hashes": ["sha256"], "max_control_frame": 65536, "max_data_frame": 16777216, "access": "rw"}
CONTENT = b"0123456789"


def control(obj):
    payload = json.dumps(obj).encode()
    return struct.pack(">BI", 1, len(payload)) + payload


def data(payload):
    return struct.pack(">BI", 2, len(payload)) + payload


class ScriptedServer:
    """Answers hello, then runs ``script(conn, request)`` on the next request."""

    def __init__(self, script):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.script = script
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @staticmethod
    def read_control(conn):
        header = ScriptedServer.read_exact(conn, 5)
        return json.loads(ScriptedServer.read_exact(conn, struct.unpack(">BI", header)[1]))

    @staticmethod
    def read_exact(conn, size):
        got = b""
        while len(got) < size:
            piece = conn.recv(size - len(got))
            if not piece:
                raise ConnectionError("the client left")
            got += piece
        return got

    def serve(self):
        conn, _ = self.listener.accept()
        conn.settimeout(SERVER_GIVES_UP)
        started = time.monotonic()
        try:
            hello = self.read_control(conn)
            conn.sendall(control(dict(HELLO, id=hello["id"])))
            self.script(conn, self.read_control(conn), lambda: time.monotonic() - started < SERVER_GIVES_UP)
        except OSError:
            pass  # the client gave up: what the test waits for
        finally:
            conn.close()
            self.listener.close()


class NoProgressTests(unittest.TestCase):
    def client_of(self, script):
        server = ScriptedServer(script)
        self.addCleanup(server.thread.join, SERVER_GIVES_UP + 2)
        return ferry_client.connect(f"127.0.0.1:{server.port}", timeout=TIMEOUT)

    def assertGivenUp(self, run):
        started = time.monotonic()
        with self.assertRaises(ferry_client.ConnectionLost) as caught:
            run()
        self.assertIn("no progress", caught.exception.message)
        self.assertLess(time.monotonic() - started, SERVER_GIVES_UP)

    def get_reply(self, request, offset=0):
        return {"id": request["id"], "ok": True, "name": request["name"], "size": len(CONTENT), "mtime": 5,
                "offset": offset}

    def test_empty_data_frames_are_no_progress(self):
        def script(conn, request, going):
            conn.sendall(control(self.get_reply(request)))
            while going():
                conn.sendall(data(b""))
                time.sleep(0.05)
        with self.client_of(script) as client, tempfile.TemporaryDirectory() as folder:
            self.assertGivenUp(lambda: client.get("f.bin", folder))

    def test_a_reply_trickled_a_byte_at_a_time_is_no_progress(self):
        def script(conn, request, going):
            for byte in control(self.get_reply(request)):
                if not going():
                    return
                conn.sendall(bytes([byte]))
                time.sleep(0.1)   # some 75 bytes: 2.5 times the timeout
        with self.client_of(script) as client, tempfile.TemporaryDirectory() as folder:
            self.assertGivenUp(lambda: client.get("f.bin", folder))

    def test_list_pages_without_entries_are_no_progress(self):
        def script(conn, request, going):
            while going():
                conn.sendall(control({"id": request["id"], "ok": True, "files": [], "more": True}))
                time.sleep(0.05)
        with self.client_of(script) as client:
            self.assertGivenUp(lambda: list(client.list()))

    def test_file_bytes_slower_than_the_timeout_in_all_are_progress(self):
        def script(conn, request, going):
            conn.sendall(control(self.get_reply(request)))
            for byte in CONTENT:   # 10 frames over 7.5 s: 2.5 times the timeout, a frame each quarter of it
                conn.sendall(data(bytes([byte])))
                time.sleep(TIMEOUT / 4)
            conn.sendall(control({"id": request["id"], "ok": True, "done": True, "size": len(CONTENT),
                                  "sha256": sha256(CONTENT)}))
            time.sleep(0.5)        # the client reads the trailer before the close
        with self.client_of(script) as client, tempfile.TemporaryDirectory() as folder:
            done = client.get("f.bin", folder)
            self.assertEqual((done.size, done.digest), (len(CONTENT), sha256(CONTENT)))


    def test_a_late_reply_leaves_the_sends_after_it_their_whole_timeout(self):
        # Round 75, F1: a read left the socket's timeout at what was left of
        # it, so after a put reply that came late (but in time) the upload's
        # sends had a few ms, and the server's first pause in reading cut it.
        content = os.urandom(16 << 20)   # past what the socket buffers hold: the sends wait on the reader

        def script(conn, request, going):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            time.sleep(TIMEOUT * 0.75)   # late, with a quarter of the timeout to spare
            conn.sendall(control({"id": request["id"], "ok": True, "offset": 0, "token": "t"}))
            hasher = hashlib.sha256()
            got, paused_at = 0, 1 << 20   # a pause at 1 and at 2 MiB
            while got < len(content):
                header = ScriptedServer.read_exact(conn, 5)
                body = ScriptedServer.read_exact(conn, struct.unpack(">BI", header)[1])
                hasher.update(body)
                got += len(body)
                if got - len(body) < paused_at <= got:
                    # A pause in reading within the timeout, longer than the quarter the bug left.
                    time.sleep(TIMEOUT * 0.6)
                    paused_at += 1 << 20
                    paused_at = paused_at if paused_at <= 2 << 20 else len(content) + 1
            commit = ScriptedServer.read_control(conn)
            conn.sendall(control({"id": commit["id"], "ok": True, "name": request["name"], "size": len(content),
                                  "mtime": 5, "sha256": hasher.hexdigest()}))
            time.sleep(0.5)
        with self.client_of(script) as client:
            done = client.put(io.BytesIO(content), "up.bin")
            self.assertEqual(done.digest, sha256(content))


if __name__ == "__main__":
    unittest.main()
