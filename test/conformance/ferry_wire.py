"""The conformance suite's connection to ferryd, over the project's one
Python implementation of the protocol, clients/python/ferry_client.

Frames, the decoder and the error classes are the library's (re-exported
here under the names the suite uses). Client is a raw connection for
probing the server with any bytes, in or out of order (send_raw, send,
recv_frame, at_eof); where a test only needs a correct client (get, put,
a paged list) it hands its connection to ferry_client.Client, so the suite
checks the library against the document while it checks the server.

Frames (PROTOCOL.md section 2): 1 kind byte (0x01 control, 0x02 data),
4 bytes payload length (unsigned, big-endian), then the payload.
"""

import hashlib
import io
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
import ferry_client  # noqa: E402
from ferry_client import hashes  # noqa: E402
from ferry_client.wire import (CHUNK, DEFAULT_MAX_CONTROL, HEADER, HEADER_SIZE, KIND_CONTROL,  # noqa: E402,F401
                               KIND_DATA, MAX_DATA, Decoder, Frame, control, data, decode_all,
                               encode_json, frame)

# Broken framing seen by the decoder: .code is the protocol error code.
FrameError = ferry_client.ProtocolError
# The peer closed the stream (possibly in the middle of a frame).
ConnectionLost = ferry_client.ConnectionLost
# An {"ok": false} reply: .code, .message and .reply hold the details.
RemoteError = ferry_client.FerryError


# ---------------------------------------------------------------- client

class Client:
    """A blocking connection to ferryd. Every socket call is bounded."""

    def __init__(self, host, port, timeout=10.0, nodelay=True):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.decoder = Decoder(max_control=1 << 32, max_data=1 << 32)
        self.next_id = 1

    # -- raw access
    def send_raw(self, raw):
        self.sock.sendall(raw)

    def send(self, obj):
        self.sock.sendall(control(obj))

    def send_data(self, payload):
        self.sock.sendall(data(payload))

    def recv_frame(self):
        """The next frame from the server; ConnectionLost at end of stream."""
        while True:
            f = self.decoder.next()
            if f is not None:
                return f
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionLost("server closed the connection (%d bytes "
                                     "of a frame held)" % self.decoder.pending())
            self.decoder.feed(chunk)

    def recv(self):
        """The next frame, which must be a control frame; its object."""
        f = self.recv_frame()
        if not f.is_control:
            raise AssertionError("expected a control frame, got %r" % f)
        return f.json()

    def at_eof(self):
        """True if the server closed the stream (no more frames)."""
        try:
            f = self.recv_frame()
        except ConnectionLost:
            return True
        except ConnectionResetError:
            return True
        raise AssertionError("expected end of stream, got %r" % f)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- request helpers
    def request(self, op, **fields):
        """Send one request, return its reply; raise RemoteError if not ok."""
        rid = fields.pop("id", None)
        if rid is None:
            rid = self.next_id
            self.next_id += 1
        msg = {"op": op, "id": rid}
        msg.update(fields)
        self.send(msg)
        reply = self.recv()
        if reply.get("id") != rid and reply.get("id") is not None:
            raise AssertionError("reply id %r for request id %r"
                                 % (reply.get("id"), rid))
        if not reply.get("ok"):
            raise ferry_client.errors.from_reply(reply)
        return reply

    def hello(self, version=1, client="ferry-conformance/1"):
        reply = self.request("hello", id=0, version=version, client=client)
        self.hello_reply = reply
        return reply

    # -- a correct client: ferry_client over this connection
    hello_reply = None

    def library(self):
        """ferry_client.Client speaking over this connection (which it
        never closes: the tests judge the connection themselves), taking
        the next request id from this one."""
        lib = ferry_client.Client.over(_Channel(self), self.hello_reply)
        lib.next_id = self.next_id
        return lib

    def _with_library(self, work):
        lib = self.library()
        try:
            return work(lib)
        finally:
            self.next_id = max(self.next_id, lib.next_id)

    def list(self):
        """A list without pages: the one reply (which may be list_too_large)."""
        return self.request("list")

    def list_paged(self):
        """A list in pages (PROTOCOL.md 4.2): every page until the one
        without "more"; returns (files of all pages, the last page, pages)."""
        def work(lib):
            listing = lib.list()
            files = [{"name": e.name, "size": e.size, "mtime": e.mtime} for e in listing]
            return files, listing.last_page, listing.pages
        return self._with_library(work)

    def stat(self, name):
        return self.request("stat", name=name)

    def get(self, name, offset=0, prefix=b""):
        """Download name from offset, verified. Returns (reply, data, trailer).

        prefix: the bytes the caller already holds (bytes 0..offset), fed to
        the hash so the trailer is checked against the whole file.
        """
        def work(lib):
            hasher = hashes.new("sha256")
            hasher.update(prefix)
            download = lib.open_get(name, offset, hasher=hasher)
            body = b"".join(download)
            return download.reply, body, download.trailer
        return self._with_library(work)

    def put(self, name, content, resume=False):
        """Upload content whole (checking the server's prefix digest on a
        resume); returns the commit reply."""
        def work(lib):
            return lib.put(io.BytesIO(content), name, resume=resume).trailer
        return self._with_library(work)


class _Channel:
    """A conformance Client as ferry_client's FrameChannel; the library's
    close() leaves the socket to the test."""

    def __init__(self, client):
        self.client = client

    def send_control(self, obj):
        self.client.send(obj)

    def send_data(self, payload):
        self.client.send_data(payload)

    def recv_frame(self):
        return self.client.recv_frame()

    def close(self):
        pass


def sha256_hex(b):
    return hashlib.sha256(b).hexdigest()
