"""Tokens and read-only access, end to end."""

import os
import shutil
import time
import unittest

from wire import Peer, Server, hidden_entries, temp_root

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


if __name__ == "__main__":
    unittest.main()
