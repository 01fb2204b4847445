"""A small client library for the Ferry wire protocol, version 1.

Written from docs/PROTOCOL.md alone, with the Python standard library only
(socket, struct, json, hashlib). It is used by the conformance suite and is
meant to be readable as a second description of the protocol.

Frames (PROTOCOL.md section 2): 1 kind byte (0x01 control, 0x02 data),
4 bytes payload length (unsigned, big-endian), then the payload.
"""

import hashlib
import json
import socket
import struct

KIND_CONTROL = 0x01
KIND_DATA = 0x02
HEADER = struct.Struct(">BI")  # kind, payload length
HEADER_SIZE = HEADER.size      # 5
DEFAULT_MAX_CONTROL = 65536
MAX_DATA = 16777216
CHUNK = 262144


class FrameError(Exception):
    """Broken framing seen by the decoder; .code is the protocol error code."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class ConnectionLost(Exception):
    """The peer closed the stream (possibly in the middle of a frame)."""


class RemoteError(Exception):
    """An {"ok": false} reply. .code, .message and .reply hold the details."""

    def __init__(self, reply):
        err = reply.get("error") or {}
        self.code = err.get("code")
        self.message = err.get("message")
        self.reply = reply
        super().__init__("%s: %s" % (self.code, self.message))


# ---------------------------------------------------------------- encoding

def encode_json(obj):
    """Compact UTF-8 JSON, the way the examples in the vectors are written."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def frame(kind, payload):
    """Any frame, including ones with an invalid kind byte (for tests)."""
    return HEADER.pack(kind, len(payload)) + payload


def control(obj):
    """A control frame holding one JSON object."""
    return frame(KIND_CONTROL, encode_json(obj))


def data(payload):
    """A data frame holding raw bytes."""
    return frame(KIND_DATA, bytes(payload))


# ---------------------------------------------------------------- decoding

class Frame:
    __slots__ = ("kind", "payload")

    def __init__(self, kind, payload):
        self.kind = kind
        self.payload = payload

    @property
    def is_control(self):
        return self.kind == KIND_CONTROL

    @property
    def is_data(self):
        return self.kind == KIND_DATA

    def json(self):
        """The control frame's object; raises FrameError('bad_json')."""
        def no_repeats(pairs):   # section 2: a repeated key is bad_json
            keys = [k for k, _ in pairs]
            if len(set(keys)) != len(keys):
                raise ValueError("a key is repeated")
            return dict(pairs)

        def no_constant(name):   # NaN and Infinity are not JSON
            raise ValueError("%s is not JSON" % name)
        try:
            obj = json.loads(self.payload.decode("utf-8"),
                             object_pairs_hook=no_repeats,
                             parse_constant=no_constant)
        except (UnicodeDecodeError, ValueError) as e:
            raise FrameError("bad_json", "control payload is not JSON: %s" % e)
        if not isinstance(obj, dict):
            raise FrameError("bad_json", "control payload is not a JSON object")
        return obj

    def __repr__(self):
        if self.is_control:
            return "Frame(control, %r)" % self.payload[:200]
        return "Frame(kind=%d, %d bytes)" % (self.kind, len(self.payload))


class Decoder:
    """Incremental frame decoder: feed() any pieces, take complete frames.

    Checks the header as soon as its 5 bytes are in, like a server would:
    an unknown kind raises FrameError('bad_frame'), a length over the limit
    FrameError('frame_too_large'), without waiting for the payload.
    """

    def __init__(self, max_control=DEFAULT_MAX_CONTROL, max_data=MAX_DATA):
        self.max_control = max_control
        self.max_data = max_data
        self.buf = bytearray()

    def feed(self, chunk):
        self.buf += chunk

    def pending(self):
        """Bytes held that do not yet make a whole frame."""
        return len(self.buf)

    def next(self):
        """The next complete Frame, or None if more bytes are needed."""
        if len(self.buf) < HEADER_SIZE:
            return None
        kind, length = HEADER.unpack_from(self.buf, 0)
        if kind == KIND_CONTROL:
            if length > self.max_control:
                raise FrameError("frame_too_large",
                                 "control frame of %d bytes" % length)
        elif kind == KIND_DATA:
            if length > self.max_data:
                raise FrameError("frame_too_large",
                                 "data frame of %d bytes" % length)
        else:
            raise FrameError("bad_frame", "unknown frame kind 0x%02x" % kind)
        if len(self.buf) < HEADER_SIZE + length:
            return None
        payload = bytes(self.buf[HEADER_SIZE:HEADER_SIZE + length])
        del self.buf[:HEADER_SIZE + length]
        return Frame(kind, payload)

    def frames(self):
        out = []
        while True:
            f = self.next()
            if f is None:
                return out
            out.append(f)


def decode_all(raw, max_control=DEFAULT_MAX_CONTROL):
    """Decode a byte string holding whole frames; leftover bytes are an error."""
    d = Decoder(max_control)
    d.feed(raw)
    out = d.frames()
    if d.pending():
        raise FrameError("truncated", "%d bytes left over" % d.pending())
    return out


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
            raise RemoteError(reply)
        return reply

    def hello(self, version=1, client="ferry-conformance/1"):
        return self.request("hello", id=0, version=version, client=client)

    def list(self):
        return self.request("list")

    def list_paged(self):
        """A list in pages (PROTOCOL.md 4.2): every page until the one
        without "more"; returns (files of all pages, the last page, pages)."""
        first = self.request("list", paged=True)
        rid, pages, files = first["id"], [first], list(first["files"])
        while pages[-1].get("more"):
            page = self.recv()
            if page.get("id") != rid:
                raise AssertionError("page id %r for list id %r" % (page.get("id"), rid))
            if not page.get("ok"):
                raise RemoteError(page)
            pages.append(page)
            files.extend(page["files"])
        return files, pages[-1], len(pages)

    def stat(self, name):
        return self.request("stat", name=name)

    def get(self, name, offset=0, prefix=b""):
        """Download name from offset. Returns (reply, data, trailer).

        prefix: the bytes the caller already holds (bytes 0..offset), fed to
        the hash so the trailer is checked against the whole file.
        """
        reply = self.request("get", name=name, offset=offset)
        h = hashlib.sha256(prefix)
        body = bytearray()
        while True:
            f = self.recv_frame()
            if f.is_data:
                body += f.payload
                h.update(f.payload)
                continue
            end = f.json()
            if not end.get("ok"):
                raise RemoteError(end)
            if end.get("sha256") != h.hexdigest():
                raise AssertionError("sha256 mismatch: trailer %s, computed %s"
                                     % (end.get("sha256"), h.hexdigest()))
            return reply, bytes(body), end

    def put(self, name, content, resume=False, chunk=CHUNK, rid=None):
        """Upload content whole; returns the commit reply."""
        rid = rid if rid is not None else self.next_id
        self.next_id = max(self.next_id, rid) + 1
        reply = self.request("put", id=rid, name=name, size=len(content),
                             resume=resume)
        off = reply["offset"]
        if off > 0:
            want = hashlib.sha256(content[:off]).hexdigest()
            if reply.get("prefix_sha256") != want:
                raise AssertionError("prefix_sha256 does not match")
        for i in range(off, len(content), chunk):
            self.send_data(content[i:i + chunk])
        return self.request("commit", id=rid,
                            sha256=hashlib.sha256(content).hexdigest())


def sha256_hex(b):
    return hashlib.sha256(b).hexdigest()
