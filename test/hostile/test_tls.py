"""TLS 1.3: a round trip is byte-exact, a plaintext client is told why it is
refused, and a TLS client on a plaintext server fails cleanly. The test
makes its certificate with `openssl req` at run time."""

import os
import shutil
import socket
import ssl
import subprocess
import time
import unittest

from wire import MEMORY_CHECKS, Peer, Server, sha256, temp_root, wait_until

FERRYD = os.environ.get("FERRYD", "")


def make_certificate(folder):
    cert = os.path.join(folder, "cert.pem")
    key = os.path.join(folder, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def closes_told(log):
    """The handshake timeouts the log tells of: a line each, or, past the server's budget of lines that
    clients cause (ferryd.8, LOG), counted in events_not_logged's close=N (no other close happens here)."""
    counted = sum(int(line.split(" close=", 1)[1].split()[0]) for line in log.splitlines()
                  if "events_not_logged" in line and " close=" in line)
    return log.count("tls_handshake_timeout") + counted


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = temp_root()
        cls.cert, cls.key = make_certificate(cls.keys)
        cls.client = ssl.create_default_context(cafile=cls.cert)
        cls.client.minimum_version = ssl.TLSVersion.TLSv1_3

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.keys)

    def setUp(self):
        self.root = temp_root()

    def tearDown(self):
        shutil.rmtree(self.root)

    def test_round_trip_is_byte_exact(self):
        data = os.urandom((5 << 20) + 3)
        with Server(FERRYD, self.root, "--tls-cert", self.cert, "--tls-key", self.key) as server:
            peer = server.peer(tls=self.client)
            self.assertEqual(peer.sock.version(), "TLSv1.3")
            self.assertTrue(peer.put("secret.bin", data)["ok"])
            _, received, trailer = peer.get("secret.bin")
            self.assertEqual(received, data)
            self.assertEqual(trailer["sha256"], sha256(data))
            names = [f["name"] for f in peer.request({"op": "list"})["files"]]
            self.assertEqual(names, ["secret.bin"])
            peer.close()

    def test_a_close_after_a_job_ends_with_close_notify(self):
        """A put that stalls is told so, then its upload is kept for a resume on the pool, and the
        connection closes once that job is done: from inside the job's completion, with nothing else to
        send. The TLS close_notify went into the output held for that transition and the half-close came
        before it: the peer saw the connection end without it, a truncation to a strict client (RFC 8446
        6.1), which Python's ssl reports when ragged EOFs are not suppressed."""
        with Server(FERRYD, self.root, "--tls-cert", self.cert, "--tls-key", self.key,
                    "--stall-timeout", "1") as server:
            raw = socket.create_connection(("127.0.0.1", server.port), timeout=20)
            strict = self.client.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
            peer = Peer(server.port, sock=strict)
            self.assertTrue(peer.request({"op": "put", "name": "slow.bin", "size": 1 << 20})["ok"])
            peer.send_data(b"x" * 65536)
            ended = peer.reply()
            self.assertEqual(ended["error"]["code"], "stalled", ended)
            # What follows the error is the end of the stream, said by TLS: no exception.
            self.assertEqual(strict.recv(4096), b"")
            peer.close()

    def test_plaintext_client_is_told_tls_is_required(self):
        with Server(FERRYD, self.root, "--tls-cert", self.cert, "--tls-key", self.key) as server:
            peer = Peer(server.port, hello=False)
            reply = peer.request({"op": "hello", "version": 1})
            self.assertEqual(reply["error"]["code"], "tls_required")
            self.assertTrue(peer.closed_by_server())
            # The server goes on serving TLS clients, and its stats count the refusal as every error
            # reply (PROTOCOL.md 4.8), the connection among those it accepted.
            asker = server.peer(tls=self.client)
            stats = asker.request({"op": "stats"})
            self.assertEqual(stats["errors"], {"tls_required": 1}, stats)
            self.assertEqual(stats["connections"]["total"], 2, stats)
            asker.close()

    def test_untrusted_certificate_is_refused_by_the_client(self):
        with Server(FERRYD, self.root, "--tls-cert", self.cert, "--tls-key", self.key) as server:
            with self.assertRaises(ssl.SSLError):
                server.peer(tls=ssl.create_default_context())

    def test_tls_client_on_a_plaintext_server_fails_cleanly(self):
        with Server(FERRYD, self.root) as server:
            with self.assertRaises((ssl.SSLError, ConnectionResetError)):
                server.peer(tls=self.client)
            server.peer().close()

    def client_hello(self):
        """The bytes a TLS 1.3 client sends first, and its engine, which can
        read the server's answer and go on (or not)."""
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        engine = self.client.wrap_bio(incoming, outgoing, server_hostname="localhost")
        with self.assertRaises(ssl.SSLWantReadError):
            engine.do_handshake()
        return outgoing.read(), engine, incoming

    def open_raw(self, server):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.addCleanup(sock.close)
        return sock

    def test_a_handshake_that_stops_half_way_is_cut_at_its_deadline(self):
        hello, _, _ = self.client_hello()
        with Server(FERRYD, self.root, "--tls-cert", self.cert, "--tls-key", self.key,
                    "--handshake-timeout", "1.5") as server:
            started = time.time()
            # Half a ClientHello; a whole one with no Finished after it; nothing.
            half = self.open_raw(server)
            half.sendall(hello[:len(hello) // 2])
            whole = self.open_raw(server)
            whole.sendall(hello)
            silent = self.open_raw(server)
            for sock in (half, whole, silent):
                sock.settimeout(10)
                while True:  # the server's handshake messages, then its close
                    try:
                        if not sock.recv(65536):
                            break
                    except ConnectionResetError:
                        break
            waited = time.time() - started
            # Cut at the deadline (1.5 s, checked a few times a second), long
            # before the idle timeout; and a real client still gets in.
            self.assertGreater(waited, 1.2)
            self.assertLess(waited, 6)
            server.peer(tls=self.client).close()
            log = server.log_text()
            self.assertEqual(log.count("tls_handshake_timeout"), 3, log)
            self.assertIn("TLS handshake not finished after", log)
            self.assertIn("no byte received", log)
            self.assertNotIn("cannot encrypt", log)

    def test_a_peer_leaving_mid_handshake_is_logged_as_such(self):
        hello, _, _ = self.client_hello()
        with Server(FERRYD, self.root, "--tls-cert", self.cert, "--tls-key", self.key) as server:
            sock = self.open_raw(server)
            sock.sendall(hello[:len(hello) // 2])
            time.sleep(0.2)
            sock.close()
            self.assertTrue(wait_until(lambda: "tls_handshake_incomplete" in server.log_text(), within=5),
                            server.log_text())
            self.assertIn("the peer left during the TLS handshake", server.log_text())
            self.assertNotIn("cannot encrypt", server.log_text())

    @unittest.skipUnless(MEMORY_CHECKS, "resident size is meaningless under ASan")
    def test_pending_handshakes_cost_little_and_only_until_the_deadline(self):
        hello, _, _ = self.client_hello()
        count = 300
        with Server(FERRYD, self.root, "--tls-cert", self.cert, "--tls-key", self.key,
                    "--handshake-timeout", "3") as server:
            per_connection = {}
            for label, sent in (("half a ClientHello", hello[:len(hello) // 2]), ("a whole one", hello)):
                baseline = server.rss_kib()
                socks = []
                for _ in range(count):
                    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                    sock.sendall(sent)
                    socks.append(sock)
                time.sleep(0.5)
                held = server.rss_kib()
                per_connection[label] = (held - baseline) * 1024 // count
                print(f"  {count} handshakes stopped after {label}: RSS {baseline} KiB -> {held} KiB, "
                      f"{per_connection[label]} bytes each")
                self.assertTrue(wait_until(lambda: closes_told(server.log_text()) == count * (len(per_connection)),
                                           within=15))
                for sock in socks:
                    sock.close()
            # Half a ClientHello holds its bytes, not a TLS engine (~48 KiB).
            self.assertLess(per_connection["half a ClientHello"], 8 * 1024)

if __name__ == "__main__":
    unittest.main()
