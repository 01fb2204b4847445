"""TLS 1.3: a round trip is byte-exact, a plaintext client is told why it is
refused, and a TLS client on a plaintext server fails cleanly. The test
makes its certificate with `openssl req` at run time."""

import os
import shutil
import ssl
import subprocess
import unittest

from wire import Peer, Server, sha256, temp_root

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

    def test_plaintext_client_is_told_tls_is_required(self):
        with Server(FERRYD, self.root, "--tls-cert", self.cert, "--tls-key", self.key) as server:
            peer = Peer(server.port, hello=False)
            reply = peer.request({"op": "hello", "version": 1})
            self.assertEqual(reply["error"]["code"], "tls_required")
            self.assertTrue(peer.closed_by_server())
            # The server goes on serving TLS clients.
            server.peer(tls=self.client).close()

    def test_untrusted_certificate_is_refused_by_the_client(self):
        with Server(FERRYD, self.root, "--tls-cert", self.cert, "--tls-key", self.key) as server:
            with self.assertRaises(ssl.SSLError):
                server.peer(tls=ssl.create_default_context())

    def test_tls_client_on_a_plaintext_server_fails_cleanly(self):
        with Server(FERRYD, self.root) as server:
            with self.assertRaises((ssl.SSLError, ConnectionResetError)):
                server.peer(tls=self.client)
            server.peer().close()


if __name__ == "__main__":
    unittest.main()
