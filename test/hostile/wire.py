"""A blocking Ferry peer for tests that attack or stress ferryd.

Its frames are read and written one by one, straight on the socket (a test
may read the socket itself, or swap it for a TLS one), with the codec of
the project's Python library, clients/python/ferry_client. Where a test
only needs a correct client (get, put) the peer hands its connection to
ferry_client.Client, and returns the server's frames as dicts."""

import hashlib
import io
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import weakref

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, ".."))
sys.path.insert(0, os.path.join(here, "..", "..", "clients", "python"))
import harness  # noqa: E402
import ferry_client  # noqa: E402
from ferry_client import hashes, wire  # noqa: E402

# Under ASan the allocator keeps freed memory in quarantine, so resident
# size says nothing about the server; .ci/run sets this for that build.
MEMORY_CHECKS = not os.environ.get("FERRY_SANITIZED")

CONTROL = wire.KIND_CONTROL
DATA = wire.KIND_DATA
CHUNK = wire.CHUNK

# Every Peer not yet collected, so that Server.stop() can close the write
# side of those the server has said goodbye to (below).
_peers = weakref.WeakSet()
TCP_CLOSE_WAIT = 8  # tcp_states.h: the other end has sent its FIN


class Closed(ferry_client.ConnectionLost):
    """The server closed the connection."""

    def __init__(self, message="the server closed the connection"):
        super().__init__(message)


class Peer:
    hello_reply = None

    def __init__(self, port, host="127.0.0.1", timeout=20.0, hello=True, source=None, token=None, tls=None,
                 version=1, sock=None):
        # sock: a connection made already (one that started a socket-activated ferryd, say) to speak on
        self.sock = sock or socket.create_connection((host, port), timeout=timeout,
                                                     source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = port
        _peers.add(self)
        if tls:  # an ssl.SSLContext
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        self.next_id = 1
        if hello:
            message = {"op": "hello", "version": version}
            if token:
                message["token"] = token
            reply = self.request(message)
            assert reply["ok"], reply
            self.access = reply.get("access")
            self.hello_reply = reply
            self.version = reply.get("version")

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
        self.sock.sendall(wire.control(message))
        return message["id"]

    def send_data(self, data):
        self.sock.sendall(wire.data(data))

    def _read_exactly(self, size):
        data = bytearray()
        while len(data) < size:
            piece = self.sock.recv(size - len(data))
            if not piece:
                raise Closed()
            data += piece
        return bytes(data)

    def recv_frame(self):
        """The next frame, as ferry_client.wire.Frame."""
        kind, size = wire.HEADER.unpack(self._read_exactly(wire.HEADER_SIZE))
        return wire.Frame(kind, self._read_exactly(size))

    def frame(self):
        f = self.recv_frame()
        return (f.kind, f.json()) if f.is_control else (f.kind, f.payload)

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

    def library(self):
        """ferry_client.Client over this connection (it never closes it: the
        tests judge the connection themselves)."""
        lib = ferry_client.Client.over(_Channel(self), self.hello_reply)
        lib.next_id = self.next_id
        return lib

    def get(self, name, offset=0, prefix=b""):
        """Downloads NAME from OFFSET (PREFIX: the file's bytes before it),
        verified by ferry_client; returns (reply, data, trailer), or the
        server's error frame in place of the trailer (and of the reply,
        with no data, when it refused the get)."""
        lib = self.library()
        hasher = hashes.new("sha256")
        hasher.update(prefix)
        try:
            download = lib.open_get(name, offset, hasher=hasher)
        except ferry_client.FerryError as error:
            return self._refused(lib, error), b"", error.reply
        chunks = []
        try:
            for chunk in download:
                chunks.append(chunk)
        except ferry_client.FerryError as error:
            return download.reply, b"".join(chunks), self._refused(lib, error)
        self.next_id = lib.next_id
        return download.reply, b"".join(chunks), download.trailer

    def put(self, name, data, resume=False, commit=True):
        """Uploads DATA through ferry_client; returns the commit reply, the
        server's error frame, or with commit=False the put's reply once
        every byte is sent (the upload left open)."""
        lib = self.library()
        try:
            if commit:
                done = lib.put(io.BytesIO(data), name, resume=resume)
                self.next_id = lib.next_id
                return done.trailer
            upload = lib.open_put(name, len(data), resume=resume)
            for at in range(upload.offset, len(data), CHUNK):
                upload.write(data[at:at + CHUNK])
        except ferry_client.FerryError as error:
            return self._refused(lib, error)
        self.next_id = lib.next_id
        return upload.reply

    def _refused(self, lib, error):
        """The server's error frame of a FerryError; anything else (the
        library's own finding, a lost connection) is raised."""
        self.next_id = lib.next_id
        if error.reply is None or error.reply.get("ok") is not False:
            raise error
        return error.reply


class _Channel:
    """A Peer as ferry_client's FrameChannel."""

    def __init__(self, peer):
        self.peer = peer

    def send_control(self, obj):
        self.peer.sock.sendall(wire.control(obj))

    def send_data(self, payload):
        self.peer.send_data(payload)

    def recv_frame(self):
        return self.peer.recv_frame()

    def close(self):
        pass


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Server(harness.Server):
    """harness.Server (a ferryd on a free loopback port) that hands out
    this module's peers."""

    def peer(self, **kwargs):
        return Peer(self.port, **kwargs)

    def wait_for_exit(self, timeout):
        """While ferryd stops, each Peer of this server that the server has shut down (its FIN received:
        TCP CLOSE_WAIT) closes its own write side, as a client that reads the goodbye does. A test that
        still holds an idle peer would otherwise wait out the server's linger (2 s, for a peer that never
        answers the FIN) at every stop. The peer can still read what it was sent; a peer the server has not
        shut down (a transfer the drain lets finish) is left alone."""
        deadline = time.monotonic() + timeout
        answered = set()
        while True:
            try:
                return self.process.wait(timeout=min(0.02, max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    raise
            for peer in list(_peers):
                if peer.port != self.port or id(peer) in answered:
                    continue
                try:
                    if peer.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == TCP_CLOSE_WAIT:
                        # socket.socket's own shutdown: an SSLSocket's would drop its TLS state.
                        socket.socket.shutdown(peer.sock, socket.SHUT_WR)
                        answered.add(id(peer))
                except OSError:  # closed by the test meanwhile
                    answered.add(id(peer))


class TracedServer:
    """A ferryd (FERRYD) serving ROOT under `strace -f`, the system calls named in CALLS (strace's
    -e trace= list) written to TRACE, one per line; `port` is where it listens. OPTIONS go to strace too:
    -y names what each descriptor is ("7<socket:[1234]>"), -s N shows N bytes of each buffer."""

    def __init__(self, root, trace, calls, options=()):
        env = harness.traceable(dict(os.environ))  # LeakSanitizer cannot run under ptrace
        self.log = harness.append_only_log()
        self.process = subprocess.Popen(
            ["strace", "-f", "-qq", *options, "-o", trace, "-e", "trace=" + calls,
             os.environ["FERRYD"], "--root", root, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=self.log, env=env)
        line = self.process.stdout.readline().decode()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError("ferryd did not start under strace: " + line)
        self.port = int(line.split()[-1].rsplit(":", 1)[1])

    def stop(self):
        # ferryd is strace's child: stop it, and strace ends with it.
        try:
            with open(f"/proc/{self.process.pid}/task/{self.process.pid}/children") as f:
                children = [int(pid) for pid in f.read().split()]
        except OSError:
            children = []
        for pid in children:
            os.kill(pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self.log.close()


def settled_descriptors(server, steady_reads=5, every=0.05, within=10.0):
    """How many descriptors the server holds once the count has read the
    same steady_reads times in a row (every seconds apart)."""
    deadline = time.time() + within
    last, same = server.open_descriptors(), 0
    while same < steady_reads and time.time() < deadline:
        time.sleep(every)
        now = server.open_descriptors()
        same = same + 1 if now == last else 0
        last = now
    return last


def hidden_entries(root):
    return sorted(name for name in os.listdir(root) if name.startswith("."))


def holds_content(path, data, within=10.0):
    """Whether PATH comes to hold DATA (a commit's rename seen) within WITHIN s."""
    def holds():
        try:
            with open(path, "rb") as f:
                return f.read() == data
        except OSError:
            return False
    return wait_until(holds, within=within, step=0.002)


def wait_until(condition, within=10.0, step=0.05):
    deadline = time.time() + within
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def temp_root():
    return tempfile.mkdtemp(prefix="ferry-hostile-")


def has_ipv6_loopback():
    """Whether ::1 can be bound here (a machine or container may have IPv6 off)."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False
