"""Frames and messages of the Ferry wire protocol (PROTOCOL.md sections 2-3).

The pure part (encode, parse, Decoder) touches no socket, so a test suite
can check the codec against docs/protocol-vectors byte for byte; Transport
carries frames over a socket (plain or TLS). The Client in client.py speaks
through any object with Transport's three methods (send_control, send_data,
recv_frame), which is how the project's conformance suite drives the same
code over its own instrumented connection.

Frame layout (section 2): 1 kind byte (0x01 control, 0x02 data), the payload
length as 4 bytes unsigned big-endian, then the payload.
"""

from __future__ import annotations

import io
import json
import socket
import struct
import time
from typing import Any, Optional, Protocol, Union, cast

from .errors import ConnectionLost, ProtocolError

KIND_CONTROL = 0x01
KIND_DATA = 0x02
HEADER = struct.Struct(">BI")  # kind, payload length
HEADER_SIZE = HEADER.size      # 5
DEFAULT_MAX_CONTROL = 65536    # a server's max_control_frame unless hello says otherwise
MAX_DATA = 16777216            # max_data_frame (section 7)
# What this library accepts from a server: a list reply without pages can
# be far longer than a request may be (section 2); the ferry client takes 64 MiB.
MAX_SERVER_CONTROL = 64 << 20
CHUNK = 262144                 # the data frame payload this library sends (256 KiB, as ferry)

Buffer = Union[bytes, bytearray, memoryview]


def encode_json(obj: Any) -> bytes:
    """Compact UTF-8 JSON (the form of the vectors, keys in the given order)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def frame(kind: int, payload: Buffer) -> bytes:
    """Any frame, including one with an invalid kind byte (for tests)."""
    return HEADER.pack(kind, len(payload)) + bytes(payload)


def control(obj: Any) -> bytes:
    """A control frame holding one JSON object."""
    return frame(KIND_CONTROL, encode_json(obj))


def data(payload: Buffer) -> bytes:
    """A data frame holding raw bytes."""
    return frame(KIND_DATA, payload)


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):   # section 2: refused, never guessed
        raise ValueError("a key is repeated")
    return dict(pairs)


def _no_constant(name: str) -> Any:   # NaN and Infinity are not JSON
    raise ValueError(f"{name} is not JSON")


def parse_control(payload: Buffer) -> dict[str, Any]:
    """The object of a control frame's payload (section 2).

    Raises ProtocolError("bad_json") for invalid UTF-8, text that is not one
    JSON object, or a key repeated within one object."""
    raw = bytes(payload)
    try:
        obj = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_repeated_keys,
                         parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as error:
        raise ProtocolError("bad_json", f"control payload is not JSON: {error}") from None
    except RecursionError:
        # Valid JSON nested past Python's recursion limit (json.loads recurses
        # per level): refused as the frame it is, not raised raw to a caller
        # that catches FerryError (round 74, M2).
        raise ProtocolError("bad_json", "control payload nests arrays or objects too deeply to read") from None
    # json.loads takes an unpaired \ud800 escape, which no UTF-8 text holds
    # (section 5: bad_json): a str carrying it would fail only later, where
    # a caller prints or encodes it. Only a payload with a surrogate escape
    # (\uD800 to \uDFFF) is encoded again to find out.
    if b"\\ud" in raw or b"\\uD" in raw:
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError("bad_json", "control payload is not JSON: an unpaired surrogate escape") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_json", "control payload is not a JSON object")
    return obj


def check_header(kind: int, length: int, max_control: int, max_data: int) -> None:
    """Judges a frame from its 5-byte header alone, as section 2 asks:
    ProtocolError("bad_frame") for an unknown kind, "frame_too_large" for a
    length over the limit of its kind."""
    if kind == KIND_CONTROL:
        if length > max_control:
            raise ProtocolError("frame_too_large", f"control frame of {length} bytes")
    elif kind == KIND_DATA:
        if length > max_data:
            raise ProtocolError("frame_too_large", f"data frame of {length} bytes")
    else:
        raise ProtocolError("bad_frame", f"unknown frame kind 0x{kind:02x}")


class Frame:
    """One frame: ``kind`` (KIND_CONTROL or KIND_DATA) and its ``payload``."""

    __slots__ = ("kind", "payload")

    def __init__(self, kind: int, payload: bytes) -> None:
        self.kind = kind
        self.payload = payload

    @property
    def is_control(self) -> bool:
        return self.kind == KIND_CONTROL

    @property
    def is_data(self) -> bool:
        return self.kind == KIND_DATA

    def json(self) -> dict[str, Any]:
        """The control frame's object; raises ProtocolError("bad_json")."""
        return parse_control(self.payload)

    def __repr__(self) -> str:
        if self.is_control:
            return f"Frame(control, {self.payload[:200]!r})"
        return f"Frame(kind={self.kind}, {len(self.payload)} bytes)"


class Decoder:
    """Incremental frame decoder: feed() any pieces, take whole frames.

    Checks each header as soon as its 5 bytes are in (check_header), without
    waiting for the payload."""

    def __init__(self, max_control: int = DEFAULT_MAX_CONTROL, max_data: int = MAX_DATA) -> None:
        self.max_control = max_control
        self.max_data = max_data
        self.buf = bytearray()

    def feed(self, chunk: Buffer) -> None:
        self.buf += chunk

    def pending(self) -> int:
        """Bytes held that do not yet make a whole frame."""
        return len(self.buf)

    def next(self) -> Optional[Frame]:
        """The next whole Frame, or None while more bytes are needed."""
        if len(self.buf) < HEADER_SIZE:
            return None
        kind, length = HEADER.unpack_from(self.buf, 0)
        check_header(kind, length, self.max_control, self.max_data)
        if len(self.buf) < HEADER_SIZE + length:
            return None
        payload = bytes(self.buf[HEADER_SIZE:HEADER_SIZE + length])
        del self.buf[:HEADER_SIZE + length]
        return Frame(kind, payload)

    def frames(self) -> list[Frame]:
        out = []
        while (f := self.next()) is not None:
            out.append(f)
        return out


def decode_all(raw: Buffer, max_control: int = DEFAULT_MAX_CONTROL) -> list[Frame]:
    """Decodes bytes holding whole frames; leftover bytes raise
    ProtocolError("truncated")."""
    decoder = Decoder(max_control)
    decoder.feed(raw)
    out = decoder.frames()
    if decoder.pending():
        raise ProtocolError("truncated", f"{decoder.pending()} bytes left over")
    return out


class FrameChannel(Protocol):
    """What Client needs of a connection (Transport is one)."""

    def send_control(self, obj: dict[str, Any]) -> None: ...

    def send_data(self, payload: Buffer) -> None: ...

    def recv_frame(self) -> Frame: ...

    def close(self) -> None: ...


class Transport:
    """Frames over a connected socket (plain or ssl.SSLSocket).

    The socket's timeout bounds how long the server may make no progress,
    as the ferry client's --timeout does: progress is a request sent, a
    whole control frame received, or file bytes received. A byte of a
    control frame, an empty data frame (PROTOCOL.md 4.4) and a list page
    with no entry and more to come (4.2, discount_last_frame) are none: a
    server that sends only those is given up like a silent one, where a
    timeout per socket read would wait on it for ever. Past the timeout, a
    reset or the end of the stream raise ConnectionLost. Frames from the
    server are judged by check_header with max_control=MAX_SERVER_CONTROL."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.timeout: Optional[float] = sock.gettimeout()   # seconds without progress; None: no bound
        self._progress_at = time.monotonic()
        self._progress_before_frame = self._progress_at
        # Buffered reads: a frame header and a small control frame cost no
        # system call of their own; a large payload is read straight through.
        self._reader = cast(io.BufferedReader, sock.makefile("rb", buffering=1 << 20))
        self._scatter = hasattr(sock, "sendmsg") and not hasattr(sock, "getpeercert")
        self.max_control = MAX_SERVER_CONTROL
        self.max_data = MAX_DATA

    def _progress(self) -> None:
        self._progress_at = time.monotonic()

    def discount_last_frame(self) -> None:
        """The control frame just received was no progress (a list page
        with no entry and more to come): the timeout runs on from before it."""
        self._progress_at = self._progress_before_frame

    def _sending(self) -> None:
        """A request or data about to go: the timeout runs from now, and a
        send may wait all of it (a read left the socket's timeout at what
        was left of its own: round 75, F1)."""
        self._progress()
        if self.timeout is not None:
            self.sock.settimeout(self.timeout)

    def send_raw(self, raw: Buffer) -> None:
        self._sending()
        try:
            self.sock.sendall(raw)
        except OSError as error:
            raise ConnectionLost(f"sending failed: {error}") from error

    def send_control(self, obj: dict[str, Any]) -> None:
        self.send_raw(control(obj))

    def send_data(self, payload: Buffer) -> None:
        self._sending()
        header = HEADER.pack(KIND_DATA, len(payload))
        try:
            if self._scatter:
                # Header and payload in one system call, the payload not copied.
                view = memoryview(payload)
                sent = self.sock.sendmsg([header, view])
                total = HEADER_SIZE + len(view)
                if sent < total:
                    if sent < HEADER_SIZE:
                        self.sock.sendall(header[sent:])
                        sent = HEADER_SIZE
                    self.sock.sendall(view[sent - HEADER_SIZE:])
            else:
                self.sock.sendall(header + bytes(payload))
        except OSError as error:
            raise ConnectionLost(f"sending failed: {error}") from error

    def _read_exact(self, size: int, is_progress: bool = False) -> bytes:
        """`size` bytes, read within what is left of the timeout since the
        last progress; with `is_progress` (file bytes) each read is progress."""
        pieces: list[bytes] = []
        got = 0
        while got < size:
            if self.timeout is not None:
                left = self.timeout - (time.monotonic() - self._progress_at)
                if left <= 0:
                    raise ConnectionLost(f"the server made no progress for {self.timeout:g} s")
                self.sock.settimeout(left)
            try:
                piece = self._reader.read1(size - got)
            except (TimeoutError, socket.timeout):
                raise ConnectionLost(f"the server made no progress for {self.timeout:g} s") from None
            except OSError as error:
                raise ConnectionLost(f"receiving failed: {error}") from error
            if not piece:
                raise ConnectionLost("the server closed the connection")
            if is_progress:
                self._progress()
            pieces.append(piece)
            got += len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def recv_frame(self) -> Frame:
        kind, length = HEADER.unpack(self._read_exact(HEADER_SIZE))
        check_header(kind, length, self.max_control, self.max_data)
        if kind != KIND_CONTROL:
            return Frame(kind, self._read_exact(length, is_progress=True) if length else b"")
        payload = self._read_exact(length) if length else b""
        self._progress_before_frame = self._progress_at
        self._progress()
        return Frame(kind, payload)

    def close(self) -> None:
        try:
            self._reader.close()
            self.sock.close()
        except OSError:
            pass
