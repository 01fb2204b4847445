"""Every transfer ends in exactly one `transfer` log line, finished or not:
bytes moved, result and why. A get or put whose client goes away midway
(Ctrl-C, a closed pipe, a dropped link) included."""

import json
import os
import shutil
import unittest

from wire import DATA, Server, temp_root, wait_until

FERRYD = os.environ.get("FERRYD", "")

BIG = 64 * 1024 * 1024  # far more than the socket buffers hold


def transfer_lines(log):
    with open(log) as f:
        return [e for e in (json.loads(line) for line in f) if e["event"] == "transfer"]


class TransferLog(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()
        self.log = os.path.join(self.root, ".log")  # hidden, so never listed
        self.addCleanup(shutil.rmtree, self.root)

    def serve(self):
        return Server(FERRYD, self.root, "--log-format", "json", "--log-file", self.log)

    def end_and_read_lines(self, server, peer, ending):
        """Ends `peer` by `ending` ("close" or "reset"), waits for its
        disconnect line, then for a second connection's: a transfer line
        written late (say, when the connection is freed) shows by then.
        Returns the transfer lines and clears the log."""
        getattr(peer, ending)()
        self.assertTrue(self.disconnects(1))
        server.peer().close()
        self.assertTrue(self.disconnects(2))
        lines = transfer_lines(self.log)
        os.unlink(self.log)
        return lines

    def disconnects(self, count):
        return wait_until(lambda: open(self.log).read().count('"disconnect"') >= count, within=20)

    def test_a_get_cut_short_by_the_client_is_logged_once_as_interrupted(self):
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            f.truncate(BIG)
        for ending in ("close", "reset"):
            with self.subTest(ending=ending), self.serve() as server:
                peer = server.peer()
                reply = peer.request({"op": "get", "name": "big.bin"})
                self.assertTrue(reply["ok"], reply)
                received = 0
                while received < 1024 * 1024:
                    kind, body = peer.frame()
                    self.assertEqual(kind, DATA)
                    received += len(body)
                lines = self.end_and_read_lines(server, peer, ending)
            self.assertEqual(len(lines), 1, lines)
            line = lines[0]
            self.assertEqual((line["op"], line["name"], line["result"]), ("get", "big.bin", "interrupted"))
            self.assertGreaterEqual(line["bytes"], received)
            self.assertLess(line["bytes"], BIG)
            self.assertTrue(line.get("message"), line)

    def test_an_interrupted_put_is_logged_once(self):
        data = b"x" * (3 * 1024 * 1024)
        for ending in ("close", "reset"):
            with self.subTest(ending=ending), self.serve() as server:
                peer = server.peer()
                reply = peer.request({"op": "put", "name": "up.bin", "size": len(data) * 2})
                self.assertTrue(reply["ok"], reply)
                peer.send_data(data[:1024 * 1024])
                peer.send_data(data[1024 * 1024:])
                lines = self.end_and_read_lines(server, peer, ending)
            self.assertEqual(len(lines), 1, lines)
            self.assertEqual((lines[0]["op"], lines[0]["name"], lines[0]["result"]), ("put", "up.bin", "interrupted"))

    def test_a_put_that_sends_too_much_is_logged_once(self):
        with self.serve() as server:
            peer = server.peer()
            reply = peer.request({"op": "put", "name": "over.bin", "size": 10})
            self.assertTrue(reply["ok"], reply)
            peer.send_data(b"y" * 11)
            self.assertTrue(peer.closed_by_server())
            self.assertTrue(self.disconnects(1))
            lines = transfer_lines(self.log)
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual((lines[0]["op"], lines[0]["result"]), ("put", "size_mismatch"))

    def test_a_transfer_line_names_its_token_by_label(self):
        tokens = os.path.join(self.root, ".tokens")
        alice = "alice-token-0123456789abcdef"
        bob = "bob-token-0123456789abcdef"
        with open(tokens, "w") as f:
            f.write(f"{alice} rw alice\n{bob} rw\n")
        os.chmod(tokens, 0o600)
        with open(os.path.join(self.root, "a.txt"), "wb") as f:
            f.write(b"hello")
        with Server(FERRYD, self.root, "--token-file", tokens, "--log-format", "json",
                    "--log-file", self.log) as server:
            peer = server.peer(token=alice)
            peer.get("a.txt")
            peer.put("b.txt", b"world")
            peer.close()
            peer = server.peer(token=bob)
            peer.get("a.txt")
            peer.close()
            self.assertTrue(self.disconnects(2))
            lines = transfer_lines(self.log)
        self.assertEqual([(t["op"], t.get("token")) for t in lines],
                         [("get", "alice"), ("put", "alice"), ("get", None)])
        for line in lines:
            self.assertNotIn(alice, json.dumps(line))
            self.assertNotIn(bob, json.dumps(line))


if __name__ == "__main__":
    unittest.main()
