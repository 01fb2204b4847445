"""A minimal blocking Ferry peer for tests that attack or stress ferryd.

Only the standard library; frames as in docs/PROTOCOL.md section 2."""

import hashlib
import json
import os
import select
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

# Under ASan the allocator keeps freed memory in quarantine, so resident
# size says nothing about the server; .ci/run sets this for that build.
MEMORY_CHECKS = not os.environ.get("FERRY_SANITIZED")

CONTROL = 1
DATA = 2
CHUNK = 256 * 1024


class Closed(Exception):
    """The server closed the connection."""


class Peer:
    def __init__(self, port, host="127.0.0.1", timeout=20.0, hello=True, source=None, token=None, tls=None):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:  # an ssl.SSLContext
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        self.next_id = 1
        if hello:
            message = {"op": "hello", "version": 1}
            if token:
                message["token"] = token
            reply = self.request(message)
            assert reply["ok"], reply
            self.access = reply.get("access")

    def close(self):
        self.sock.close()

    def reset(self):
        """Closes abruptly (RST), like a killed client."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, message):
        message.setdefault("id", self.next_id)
        self.next_id += 1
        payload = json.dumps(message).encode()
        self.sock.sendall(struct.pack(">BI", CONTROL, len(payload)) + payload)
        return message["id"]

    def send_data(self, data):
        self.sock.sendall(struct.pack(">BI", DATA, len(data)) + data)

    def _read_exactly(self, size):
        data = bytearray()
        while len(data) < size:
            piece = self.sock.recv(size - len(data))
            if not piece:
                raise Closed()
            data += piece
        return bytes(data)

    def frame(self):
        kind, size = struct.unpack(">BI", self._read_exactly(5))
        payload = self._read_exactly(size)
        return (kind, json.loads(payload)) if kind == CONTROL else (kind, payload)

    def reply(self):
        kind, body = self.frame()
        assert kind == CONTROL, "expected a control frame"
        return body

    def request(self, message):
        self.send(message)
        return self.reply()

    def closed_by_server(self, within=5.0):
        """True once the server has closed its side (EOF or reset)."""
        deadline = time.time() + within
        while time.time() < deadline:
            ready, _, _ = select.select([self.sock], [], [], 0.1)
            if ready:
                try:
                    if not self.sock.recv(65536):
                        return True
                except (ConnectionResetError, BrokenPipeError):
                    return True
        return False

    def get(self, name, offset=0):
        """Downloads NAME; returns (reply, data, trailer-or-error)."""
        reply = self.request({"op": "get", "name": name, "offset": offset})
        if not reply["ok"]:
            return reply, b"", reply
        chunks = []
        while True:
            kind, body = self.frame()
            if kind == DATA:
                chunks.append(body)
            else:
                return reply, b"".join(chunks), body

    def put(self, name, data, resume=False, commit=True):
        """Uploads DATA; returns the commit reply (or the put's error)."""
        reply = self.request({"op": "put", "name": name, "size": len(data), "resume": resume})
        if not reply["ok"]:
            return reply
        put_id = self.next_id - 1
        for at in range(reply["offset"], len(data), CHUNK):
            self.send_data(data[at:at + CHUNK])
        if not commit:
            return reply
        return self.request({"op": "commit", "id": put_id, "sha256": sha256(data)})


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Server(harness.Server):
    """harness.Server (a ferryd on a free loopback port) that hands out
    this module's peers."""

    def peer(self, **kwargs):
        return Peer(self.port, **kwargs)


def hidden_entries(root):
    return sorted(name for name in os.listdir(root) if name.startswith("."))


def wait_until(condition, within=10.0, step=0.05):
    deadline = time.time() + within
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def temp_root():
    return tempfile.mkdtemp(prefix="ferry-hostile-")
