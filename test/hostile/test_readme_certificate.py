"""README's test certificate, made by README's own command, lets a client
that verifies the server (as `ferry --tls-ca cert.pem` does, by
subjectAltName) reach ferryd at 127.0.0.1, ::1 and localhost; --tls-pin
alone is not needed."""

import os
import re
import shutil
import ssl
import subprocess
import unittest

from wire import Peer, Server, has_ipv6_loopback, temp_root

FERRYD = os.environ.get("FERRYD", "")
README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")


def readme_certificate_command():
    with open(README) as f:
        text = f.read()
    found = re.search(r"\n    (openssl req -x509 .*?)\n\n", text, re.S)
    assert found, "README has no `openssl req -x509` command"
    return found.group(1).replace("\\\n", " ")


class ReadmeCertificate(unittest.TestCase):
    def test_the_readme_certificate_verifies_on_loopback_names_and_addresses(self):
        root = temp_root()
        self.addCleanup(shutil.rmtree, root)
        made = subprocess.run(readme_certificate_command(), shell=True, cwd=root, capture_output=True, timeout=60)
        self.assertEqual(made.returncode, 0, made.stderr)
        cert = os.path.join(root, "cert.pem")
        key = os.path.join(root, "key.pem")
        targets = [("127.0.0.1", "127.0.0.1:0"), ("localhost", "127.0.0.1:0")]
        if has_ipv6_loopback():
            targets.append(("::1", "[::1]:0"))
        for name, listen in targets:
            with self.subTest(name=name):
                context = ssl.create_default_context(cafile=cert)  # checks the name, as ferry does
                context.minimum_version = ssl.TLSVersion.TLSv1_3
                with Server(FERRYD, root, "--tls-cert", cert, "--tls-key", key, listen=listen) as server:
                    peer = Peer(server.port, host=name, hello=False)
                    # The name checked is the one connected to (wire's Peer says "localhost").
                    peer.sock = context.wrap_socket(peer.sock, server_hostname=name)
                    self.assertEqual(peer.request({"op": "hello", "version": 1})["access"], "rw")
                    peer.close()


if __name__ == "__main__":
    unittest.main()
