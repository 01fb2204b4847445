"""ferryd under systemd, without a booted systemd: readiness, status and
stopping notifications on a datagram socket the test binds as NOTIFY_SOCKET,
socket activation through systemd-socket-activate (Debian's systemd
package), and the journal's priority prefixes when JOURNAL_STREAM names
stderr."""

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import time
import unittest

from wire import Peer, has_ipv6_loopback, temp_root, wait_until

FERRYD = os.environ.get("FERRYD", "")
ACTIVATE = shutil.which("systemd-socket-activate")


class Notifications:
    """The service manager's end of NOTIFY_SOCKET."""

    def __init__(self, folder):
        self.path = os.path.join(folder, ".notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def next(self, timeout=10.0):
        self.sock.settimeout(timeout)
        message = self.sock.recv(4096).decode()
        self.messages.append(message)
        return message

    def wait_for(self, text, within=10.0):
        deadline = time.time() + within
        while time.time() < deadline:
            try:
                if text in self.next(max(0.05, deadline - time.time())):
                    return self.messages[-1]
            except socket.timeout:
                break
        raise AssertionError(f"no notification with {text!r}; got {self.messages!r}")

    def drain(self):
        """What arrived and was not read yet."""
        got = []
        self.sock.setblocking(False)
        try:
            while True:
                got.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            pass
        self.messages += got
        return got

    def close(self):
        self.sock.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect_when_up(port, within=10.0):
    deadline = time.time() + within
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except ConnectionRefusedError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


class Notify(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()
        self.addCleanup(shutil.rmtree, self.root)
        self.notify = Notifications(self.root)
        self.addCleanup(self.notify.close)
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            f.truncate(256 * 1024 * 1024)

    def start(self, *args):
        env = dict(os.environ, NOTIFY_SOCKET=self.notify.path)
        self.log = open(os.path.join(self.root, ".log"), "w+")
        self.addCleanup(self.log.close)
        process = subprocess.Popen([FERRYD, "--root", self.root, "--listen", "127.0.0.1:0", *args],
                                   env=env, stdout=subprocess.PIPE, stderr=self.log)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        return process

    def test_ready_once_listening_then_status_as_counts_change_then_stopping(self):
        process = self.start("--workers", "4")
        port = int(process.stdout.readline().decode().rsplit(":", 1)[1])
        ready = self.notify.next()
        self.assertIn("READY=1", ready.splitlines())
        self.assertIn("STATUS=Serving 0 connections, 0 transfers", ready.splitlines())
        # Ready means every worker listens: a burst of connections, which
        # SO_REUSEPORT spreads over all of them, is served at once.
        peers = [Peer(port) for _ in range(16)]
        self.notify.wait_for("STATUS=Serving 16 connections, 0 transfers")
        # A get whose reader reads nothing stays a running transfer.
        peers[0].send({"op": "get", "id": 9, "name": "big.bin"})
        self.notify.wait_for("STATUS=Serving 16 connections, 1 transfer")
        for peer in peers[8:]:
            peer.close()
        self.notify.wait_for("STATUS=Serving 8 connections, 1 transfer")
        # Rate-limited: 60 connections coming and going are at most one
        # notification a second (and one at each end of the span), not 120,
        # however long a loaded machine takes to make them.
        self.notify.drain()
        started = time.time()
        for _ in range(60):
            Peer(port).close()
        time.sleep(max(0, 3 - (time.time() - started)))
        notified = len(self.notify.drain())
        self.assertLessEqual(notified, math.ceil(time.time() - started) + 2)
        process.send_signal(signal.SIGTERM)
        stopping = self.notify.wait_for("STOPPING=1")
        self.assertTrue(any(line.startswith("STATUS=Draining: ") for line in stopping.splitlines()), stopping)
        for peer in peers[:8]:
            peer.close()
        self.assertEqual(process.wait(timeout=30), 0)
        self.assertEqual(sum("READY=1" in m.splitlines() for m in self.notify.messages), 1)

    def test_nothing_is_ready_when_start_up_fails(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        self.addCleanup(busy.close)
        process = self.start("--listen", "127.0.0.1:%d" % busy.getsockname()[1])
        self.assertEqual(process.wait(timeout=20), 7)
        self.assertEqual(self.notify.drain(), [])


class SocketActivation(unittest.TestCase):
    def setUp(self):
        self.assertIsNotNone(ACTIVATE, "needs systemd-socket-activate (Debian: systemd; scripts/setup.sh installs it)")
        self.root = temp_root()
        self.addCleanup(shutil.rmtree, self.root)
        with open(os.path.join(self.root, "a.txt"), "wb") as f:
            f.write(b"hello")

    def activate(self, listens, *args, datagram=False):
        log = open(os.path.join(self.root, ".log"), "w+")
        self.addCleanup(log.close)
        command = [ACTIVATE, *(["--datagram"] if datagram else [])]
        for address in listens:
            command += ["-l", address]
        # --listen names a port nobody may use: the passed sockets win.
        command += [FERRYD, "--root", self.root, "--listen", "127.0.0.1:1", "--log-format", "json", *args]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        return process, log

    def test_ferryd_serves_the_sockets_it_is_passed_with_a_worker_each(self):
        ports = [free_port(), free_port()]
        process, log = self.activate([f"127.0.0.1:{p}" for p in ports], "--workers", "1")
        first = connect_when_up(ports[0])  # systemd starts the service on the first connection
        self.assertEqual(process.stdout.readline().decode().strip(),
                         f"listening on 127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}")
        for port in ports:
            peer = Peer(port)
            self.assertEqual(peer.get("a.txt")[1], b"hello")
            peer.close()
        first.close()
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(timeout=30), 0)
        log.seek(0)
        start = [json.loads(line) for line in log if line.startswith("{")][0]
        self.assertEqual((start["event"], start["sockets"], start["workers"]), ("start", "systemd", 2))

    @unittest.skipUnless(has_ipv6_loopback(), "needs IPv6")
    def test_an_ipv4_peer_has_one_address_limit_through_a_dual_stack_socket_too(self):
        """A passed socket bound to [::] (dual-stack, as systemd binds it by default) shows an IPv4 peer as
        ::ffff:127.0.0.1: counted under that name, the same host had its address's limit once more through the
        IPv4 socket beside it."""
        dual, plain = free_port(), free_port()
        process, log = self.activate([f"[::]:{dual}", f"127.0.0.1:{plain}"], "--workers", "1",
                                     "--max-connections-per-address", "2")
        first = connect_when_up(plain)
        self.addCleanup(first.close)
        process.stdout.readline()
        # The hello's reply shows the first connection accepted and counted: the plain socket's worker
        # may accept later than the dual one's takes the next two.
        first.settimeout(20)  # as every Peer's
        Peer(plain, sock=first)
        second = Peer(dual, host="127.0.0.1")
        self.addCleanup(second.close)
        extra = Peer(dual, host="127.0.0.1", hello=False)
        self.addCleanup(extra.close)
        reply = extra.reply()
        self.assertEqual(reply["error"]["code"], "address_limit", reply)
        other = Peer(dual, host="::1")  # IPv6's own loopback is another address
        other.close()
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(timeout=30), 0)
        log.seek(0)
        peers = {json.loads(line).get("peer", "").rsplit(":", 1)[0] for line in log if line.startswith("{")}
        self.assertEqual(peers - {""}, {"127.0.0.1", "[::1]"})

    def test_workers_share_one_passed_socket(self):
        port = free_port()
        process, log = self.activate([f"127.0.0.1:{port}"], "--workers", "4")
        connect_when_up(port).close()
        process.stdout.readline()
        peers = [Peer(port) for _ in range(40)]
        for peer in peers:
            self.assertEqual(peer.get("a.txt")[1], b"hello")
        for peer in peers:
            peer.close()
        process.send_signal(signal.SIGTERM)
        self.assertEqual(process.wait(timeout=30), 0)

    def test_a_passed_socket_that_is_not_tcp_is_refused(self):
        port = free_port()
        process, log = self.activate([f"127.0.0.1:{port}"], datagram=True)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            self.assertTrue(wait_until(lambda: udp.sendto(b"x", ("127.0.0.1", port)) and
                                       process.poll() is not None, within=15))
        self.assertEqual(process.wait(timeout=10), 7)
        log.seek(0)
        failed = [json.loads(line) for line in log if line.startswith("{")]
        self.assertEqual(failed[-1]["event"], "start_failed")
        self.assertIn("not a listening TCP socket", failed[-1]["message"])


class Journal(unittest.TestCase):
    def run_ferryd(self, journal_stream):
        root = temp_root()
        self.addCleanup(shutil.rmtree, root)
        with open(os.path.join(root, ".err"), "w+") as err:
            st = os.fstat(err.fileno())
            stream = journal_stream(st)
            env = dict(os.environ)
            env.pop("JOURNAL_STREAM", None)
            if stream:
                env["JOURNAL_STREAM"] = stream
            process = subprocess.Popen([FERRYD, "--root", root, "--listen", "127.0.0.1:0", "--token-file",
                                        os.path.join(root, "missing")], env=env, stdout=subprocess.PIPE, stderr=err)
            self.assertEqual(process.wait(timeout=20), 5)
            process = subprocess.Popen([FERRYD, "--root", root, "--listen", "127.0.0.1:0"], env=env,
                                       stdout=subprocess.PIPE, stderr=err)
            port = int(process.stdout.readline().decode().rsplit(":", 1)[1])
            Peer(port).close()
            wait_until(lambda: "disconnect" in open(err.name).read())
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)
            process.stdout.close()
            err.seek(0)
            return err.read().splitlines()

    def test_lines_carry_the_journal_priority_when_stderr_is_the_journal(self):
        lines = self.run_ferryd(lambda st: f"{st.st_dev}:{st.st_ino}")
        by_event = {line.split(" ferryd: ", 1)[1].split()[0]: line for line in lines}
        self.assertTrue(by_event["start_failed"].startswith("<3>"), by_event)
        self.assertTrue(by_event["start"].startswith("<5>"), by_event)
        self.assertTrue(by_event["connect"].startswith("<6>"), by_event)
        self.assertTrue(all(line[0] == "<" and line[2] == ">" for line in lines), lines)
        self.assertIn(" error ferryd: start_failed ", by_event["start_failed"])

    def test_no_prefix_when_journal_stream_names_another_file(self):
        # A child of a service inherits JOURNAL_STREAM with a stderr of its own.
        for stream in (lambda st: f"{st.st_dev}:{st.st_ino + 1}", lambda st: None):
            lines = self.run_ferryd(stream)
            self.assertTrue(lines)
            self.assertFalse(any(line.startswith("<") for line in lines), lines)
            self.assertTrue(all(line.split()[1] in ("error", "warning", "notice", "info") for line in lines), lines)


if __name__ == "__main__":
    unittest.main()
