"""Tokens and read-only access, end to end."""

import os
import shutil
import signal
import subprocess
import time
import unittest

from wire import Peer, Server, hidden_entries, temp_root, wait_until

FERRYD = os.environ.get("FERRYD", "")
WRITER = "writer-0123456789abcdef"
READER = "reader-0123456789abcdef"


class Access(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()
        self.tokens = os.path.join(self.root, ".tokens")
        with open(self.tokens, "w") as f:
            f.write(f"# test tokens\n{WRITER} rw\n{READER} ro\n")
        with open(os.path.join(self.root, "a.txt"), "wb") as f:
            f.write(b"content")

    def tearDown(self):
        shutil.rmtree(self.root)

    def test_tokens(self):
        with Server(FERRYD, self.root, "--token-file", self.tokens) as server:
            writer = server.peer(token=WRITER)
            self.assertEqual(writer.access, "rw")
            self.assertTrue(writer.put("new.txt", b"hello")["ok"])
            reader = server.peer(token=READER)
            self.assertEqual(reader.access, "ro")
            self.assertTrue(reader.get("a.txt")[2]["ok"])
            refused = reader.put("other.txt", b"no")
            self.assertEqual(refused["error"]["code"], "forbidden")
            self.assertTrue(reader.request({"op": "list"})["ok"])  # still usable
            for token in (None, "wrong-0123456789abcdef", WRITER[:-1]):
                with self.subTest(token=token):
                    peer = Peer(server.port, hello=False)
                    message = {"op": "hello", "version": 1}
                    if token:
                        message["token"] = token
                    started = time.time()
                    reply = peer.request(message)
                    self.assertGreaterEqual(time.time() - started, 0.8)
                    self.assertEqual(reply["error"]["code"], "unauthorized")
                    self.assertTrue(peer.closed_by_server())
            self.assertNotIn("other.txt", os.listdir(self.root))

    def test_read_only_server(self):
        with Server(FERRYD, self.root, "--read-only") as server:
            peer = server.peer()
            self.assertEqual(peer.access, "ro")
            self.assertEqual(peer.put("x.txt", b"x")["error"]["code"], "forbidden")
            self.assertTrue(peer.get("a.txt")[2]["ok"])
            self.assertEqual(hidden_entries(self.root), [".tokens"])

    def test_exposed_without_tokens_warns(self):
        with Server(FERRYD, self.root, listen="0.0.0.0:0") as server:
            server.peer().close()
            log = server.log_text()
        self.assertIn("warning", log)
        self.assertIn("--token-file", log)

    def write_tokens(self, text, mode=0o600):
        with open(self.tokens, "w") as f:
            f.write(text)
        os.chmod(self.tokens, mode)

    def refused(self, server, token):
        peer = Peer(server.port, hello=False)
        reply = peer.request({"op": "hello", "version": 1, "token": token})
        peer.close()
        return not reply["ok"] and reply["error"]["code"] == "unauthorized"

    def test_sighup_rereads_the_token_file_and_keeps_running_connections(self):
        self.write_tokens(f"{WRITER} rw\n")
        newcomer = "newcomer-0123456789abcdef"
        with Server(FERRYD, self.root, "--token-file", self.tokens) as server:
            running = server.peer(token=WRITER)
            self.write_tokens(f"{newcomer} ro\n")
            server.process.send_signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: "tokens_reloaded" in server.log_text()))
            self.assertEqual(server.peer(token=newcomer).access, "ro")
            self.assertTrue(self.refused(server, WRITER))
            # Admitted before the reload: keeps its access to the end.
            self.assertTrue(running.put("kept.txt", b"still here")["ok"])

            # A bad new file (a duplicate token) keeps the tokens in force, and says why.
            self.write_tokens(f"{WRITER} rw\n{WRITER} ro\n")
            server.process.send_signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: "tokens_kept" in server.log_text()))
            self.assertEqual(server.peer(token=newcomer).access, "ro")
            self.assertTrue(self.refused(server, WRITER))
            log = server.log_text()
        self.assertIn("line 2", log)
        self.assertIn("line 1", log)

    def test_token_file_mistakes_are_named_at_start(self):
        # The same token twice, with different access: an error naming both lines.
        self.write_tokens(f"{WRITER} rw\n# comment\n{WRITER} ro\n")
        started = subprocess.run([FERRYD, "--root", self.root, "--listen", "127.0.0.1:0",
                                  "--token-file", self.tokens], capture_output=True, timeout=10)
        self.assertNotEqual(started.returncode, 0)
        self.assertIn(b"line 3", started.stderr)
        self.assertIn(b"line 1", started.stderr)
        # Others may write it: refused.
        self.write_tokens(f"{WRITER} rw\n", mode=0o666)
        started = subprocess.run([FERRYD, "--root", self.root, "--listen", "127.0.0.1:0",
                                  "--token-file", self.tokens], capture_output=True, timeout=10)
        self.assertNotEqual(started.returncode, 0)
        self.assertIn(b"anyone may write", started.stderr)
        # Others may read it, and a token that begins with '#': warnings.
        self.write_tokens(f"#{WRITER} rw\n{READER} ro\n", mode=0o644)
        with Server(FERRYD, self.root, "--token-file", self.tokens) as server:
            log = server.log_text()
        self.assertIn("mode 644", log)
        self.assertIn("may not begin with '#'", log)


if __name__ == "__main__":
    unittest.main()
