"""What the Python suites that run the real binaries share (test/cli,
test/terminal, test/hostile): a ferryd on a free loopback port, a scratch
folder with a served and a local side, and the runner that ends with the one
line "N passed, M failed" that scripts/count-tests.awk adds up.

Standard library only."""

import argparse
import fcntl
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import unittest

# The wire's frames (PROTOCOL.md 2), for the scripted servers that play a
# server the client must cope with: a 5-byte header (kind: 1 JSON, 2 data;
# payload length, big-endian), then the payload.
def read_frame(conn):
    """The next frame from the socket CONN: a dict (JSON) or bytes (data);
    None once the peer has closed."""
    head = b""
    while len(head) < 5:
        more = conn.recv(5 - len(head))
        if not more:
            return None
        head += more
    kind, length = struct.unpack(">BI", head)
    body = b""
    while len(body) < length:
        more = conn.recv(length - len(body))
        if not more:
            return None
        body += more
    return json.loads(body) if kind == 1 else body


def send_json(conn, message):
    body = json.dumps(message).encode()
    conn.sendall(struct.pack(">BI", 1, len(body)) + body)


def send_data(conn, payload):
    conn.sendall(struct.pack(">BI", 2, len(payload)) + payload)


def append_only_log():
    """A temporary file for a child's log. The child inherits the very open file (one file offset shared
    with us). O_APPEND makes each of its writes go to the end whatever that offset is (open(2)); the file
    is read with read_whole_log(), which never moves it."""
    log = tempfile.TemporaryFile()
    fcntl.fcntl(log.fileno(), fcntl.F_SETFL, fcntl.fcntl(log.fileno(), fcntl.F_GETFL) | os.O_APPEND)
    return log


def read_whole_log(log):
    """All of a log a running child writes into, from its first byte. pread(2) reads at an offset of its
    own: a seek to 0 and a read would share the file's offset with the child, and a line the child wrote
    between the two would move it to the end, so the read would return nothing."""
    pieces = []
    offset = 0
    while True:
        piece = os.pread(log.fileno(), 1 << 16, offset)
        if not piece:
            return b"".join(pieces)
        pieces.append(piece)
        offset += len(piece)


class Server:
    """A ferryd on a free loopback port, serving ROOT, stopped on exit."""

    def __init__(self, ferryd, root, *args, listen="127.0.0.1:0", preexec_fn=None, env=None):
        self.root = root
        # The log goes to a file: a pipe nobody reads would fill and stall
        # the server's loop.
        self.log = append_only_log()
        self.process = subprocess.Popen(
            [ferryd, "--root", root, "--listen", listen, *args],
            stdout=subprocess.PIPE, stderr=self.log, preexec_fn=preexec_fn,
            env=None if env is None else {**os.environ, **env})
        line = self.process.stdout.readline().decode()
        if not line.startswith("listening on "):
            self.process.kill()
            self.process.wait()
            raise RuntimeError("ferryd did not start: " + line + self.log_text())
        self.address = line.split()[-1]
        self.port = int(self.address.rsplit(":", 1)[1])
        self.pid = self.process.pid

    def log_text(self):
        """The log so far; after stop(), the whole log, its last lines (written at the stop) included."""
        if self.log.closed:
            return self.final_log.decode(errors="replace")
        return read_whole_log(self.log).decode(errors="replace")

    def open_descriptors(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def status_kib(self, field):
        """A memory figure of /proc/PID/status (VmRSS, VmHWM: the peak since the start...), in KiB; 0 if absent."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def rss_kib(self):
        return self.status_kib("VmRSS")

    def stop(self, timeout=15):
        """SIGTERM, then waits; returns the exit status (None if it had to
        be killed). A second stop only returns the status again."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.wait_for_exit(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None
        finally:
            self.process.stdout.close()
            if not self.log.closed:
                self.final_log = read_whole_log(self.log)
                self.log.close()

    def wait_for_exit(self, timeout):
        """The exit status once ferryd has exited (subprocess.TimeoutExpired past `timeout` seconds);
        a subclass that hands out peers may act for them meanwhile."""
        return self.process.wait(timeout=timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class _Relay:
    """A loopback TCP relay in front of ADDRESS (a ferryd): each client
    connection gets one of its own to the server, and `_pump(source, sink,
    from_client)` carries each direction on a thread of its own; a subclass
    says what the pump does with the bytes, and `_admit` whether a new
    client connection is relayed at all."""

    def __init__(self, address):
        host, port = address.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]

    def _start(self):
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.listener.close()

    def _admit(self):
        return True

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if not self._admit():
                client.close()
                continue
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source, sink, from_client):
        raise NotImplementedError

    @staticmethod
    def _half_close(sink):
        """Tells SINK's peer that no more bytes come this way (its read sees the end)."""
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _pass_rest(self, source, sink):
        """Passes SOURCE's bytes to SINK as they are until SOURCE ends, then half-closes SINK."""
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._half_close(sink)


class HoldingRelay(_Relay):
    """A relay (see _Relay) that stops passing the client's bytes once
    HOLD_AFTER of them (all connections together) have passed, until
    release(): a client in the middle of sending a large file is held there,
    so that a test can change things between two steps of a transfer
    without racing it. `held` is set once it holds. With HOLD_ON (bytes), it
    holds instead at the first piece of the client's bytes that contains
    them (a request the client sends only after a step the test must come
    after), that piece not passed yet."""

    def __init__(self, address, hold_after=0, hold_on=None):
        super().__init__(address)
        self.hold_after = hold_after
        self.hold_on = hold_on
        self.passed = 0
        self.held = threading.Event()
        self.released = threading.Event()
        self._start()

    def release(self):
        self.released.set()

    def close(self):
        self.released.set()
        super().close()

    def _pump(self, source, sink, from_client):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if from_client:
                    with self.lock:
                        self.passed += len(data)
                        due = self.hold_on in data if self.hold_on is not None else self.passed >= self.hold_after
                        hold = due and not self.held.is_set()
                        if hold:
                            self.held.set()
                    if hold:
                        self.released.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._half_close(sink)


def run_held(relay, argv, on_held, **popen):
    """Runs ARGV (a client pointed at RELAY, a HoldingRelay) until the relay
    holds it, calls ON_HELD() there, releases it and waits for its end (a
    client left running is killed). Returns (held, returncode, stdout,
    stderr); `held` is False when the client never reached the hold, and
    ON_HELD was not called."""
    try:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)
        try:
            held = relay.held.wait(timeout=60)
            if held:
                on_held()
            relay.release()
            out, err = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    finally:
        relay.close()
    return held, process.returncode, out, err


class CuttingRelay(_Relay):
    """A relay (see _Relay) that passes the server's bytes to the client up
    to CUT_AFTER of them (all connections together), then closes the
    connection: a download cut there, as by a lost network, with what
    arrived before kept for a resume. Every later connection is closed at
    once. `cut` is set once it has cut."""

    def __init__(self, address, cut_after):
        super().__init__(address)
        self.left = cut_after
        self.cut = threading.Event()
        self._start()

    def _admit(self):
        return not self.cut.is_set()

    def _pump(self, source, sink, from_client):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if not from_client:
                    with self.lock:
                        data = data[:self.left]
                        self.left -= len(data)
                    if data:
                        sink.sendall(data)
                    if self.left <= 0:
                        self.cut.set()
                        break
                else:
                    sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()


class HidingRelay(_Relay):
    """A relay (see _Relay) that takes the capabilities named in HIDE out of
    the server's answer to hello (each connection's first frame), so the
    client talks to a ferryd that looks like an older one, which lacks
    them; every other byte passes as it is."""

    def __init__(self, address, hide):
        super().__init__(address)
        self.hide = set(hide)
        self._start()

    def _pump(self, source, sink, from_client):
        if not from_client:
            try:
                hello = read_frame(source)
                if hello is not None:
                    hello["capabilities"] = [c for c in hello.get("capabilities", []) if c not in self.hide]
                    send_json(sink, hello)
            except OSError:
                hello = None
            if hello is None:
                self._half_close(sink)
                return
        self._pass_rest(source, sink)


def traceable(env):
    """`env` for a program run under strace: LeakSanitizer cannot run under ptrace (CI's sanitizer
    build), so its leak check is left to the tests that do not trace."""
    return dict(env, ASAN_OPTIONS=(env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":"))


def preloaded(env, library, **faults):
    """`env` with the fault library (test/faults, at `library`) preloaded and `faults` set. A sanitized
    program checks that its runtime comes first; a preloaded library comes before it."""
    asan = env.get("ASAN_OPTIONS", "")
    return dict(env, LD_PRELOAD=library, ASAN_OPTIONS=(asan + ":" if asan else "") + "verify_asan_link_order=0",
                **faults)


def temp_folder(prefix):
    """A fresh folder under the system's temporary folder."""
    return tempfile.mkdtemp(prefix=prefix)


def mount_scratch(test, kind, point=None):
    """A fresh, empty file system of `kind` mounted on a new temporary
    folder (or on `point`, an empty folder, say inside another scratch
    mount), whose path is returned: "tmpfs" (holds every 64-bit time) or
    "ext4" (an 8 MiB image in a temporary folder on a loop device, 256-byte
    inodes: times from 1901 to 2446 only). Unmounted and removed by the
    test's cleanups, which run even when it fails (after tearDown: stop
    what uses it there). Skips the test, saying why, where this machine
    cannot mount (not root, no mkfs.ext4, no loop device)."""
    if os.geteuid() != 0:
        test.skipTest("mounting a scratch file system needs root (CI runs as root)")
    base = tempfile.mkdtemp(prefix="ferry-mount-")
    test.addCleanup(shutil.rmtree, base, True)
    if point is None:
        point = os.path.join(base, "mnt")
        os.mkdir(point)
    if kind == "tmpfs":
        command = ["mount", "-t", "tmpfs", "-o", "size=16m", "ferry-test", point]
    else:
        if shutil.which("mkfs.ext4") is None:
            test.skipTest("no mkfs.ext4 (Debian: e2fsprogs) to make an ext4 image")
        image = os.path.join(base, "ext4.img")
        with open(image, "wb") as f:
            f.truncate(8 << 20)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-I", "256", image], check=True, timeout=60)
        command = ["mount", "-o", "loop", image, point]
    mounted = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if mounted.returncode != 0:
        test.skipTest("cannot mount a scratch %s here: %s" % (kind, mounted.stdout.decode(errors="replace").strip()))
    test.addCleanup(subprocess.run, ["umount", point], timeout=60)
    return point


class Scratch:
    """A fresh folder holding `root` (what a ferryd serves) and `local`
    (the client's working folder); remove() deletes all of it."""

    def __init__(self, prefix):
        self.base = temp_folder(prefix)
        self.root = os.path.join(self.base, "root")
        self.local = os.path.join(self.base, "local")
        os.mkdir(self.root)
        os.mkdir(self.local)

    def remove(self):
        shutil.rmtree(self.base, ignore_errors=True)


def failed_test_cases(result):
    """The ids of the test cases of a unittest result that failed or
    erred. Each failed subTest is an entry of result.failures of its own,
    so counting entries counted one test case several times (and gave a
    negative "passed")."""
    return {getattr(test, "test_case", test).id()
            for test, _ in result.failures + result.errors}


def report(result):
    """Prints the summary line of a unittest result, in test cases;
    returns the exit status."""
    failed = len(failed_test_cases(result))
    passed = result.testsRun - failed - len(result.skipped)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def add_binaries(parser, names):
    """--NAME for each binary in `names`, by default env NAME in capitals."""
    for name in names:
        parser.add_argument("--" + name, default=os.environ.get(name.upper()))


def export_binaries(parser, args, names):
    """The absolute paths of the parsed binaries, also exported in the
    environment for the test modules; exits with usage if one is missing."""
    paths = {}
    for name in names:
        path = getattr(args, name)
        if not path:
            flags = " and ".join(f"--{n} PATH" for n in names)
            variables = ", ".join(n.upper() for n in names)
            parser.error(f"{flags} (or {variables}) {'are' if len(names) > 1 else 'is'} required")
        paths[name] = os.path.abspath(path)
        os.environ[name.upper()] = paths[name]
    return paths


def run_folder(folder, names):
    """The runner of a folder of test_*.py files: --NAME for each binary in
    `names`, an optional file pattern; runs them all, prints the summary
    line and returns the exit status."""
    parser = argparse.ArgumentParser()
    add_binaries(parser, names)
    parser.add_argument("pattern", nargs="?", default="test_*.py")
    args = parser.parse_args()
    export_binaries(parser, args, names)
    sys.path.insert(0, folder)
    suite = unittest.defaultTestLoader.discover(folder, pattern=args.pattern)
    return report(unittest.TextTestRunner(verbosity=2).run(suite))
