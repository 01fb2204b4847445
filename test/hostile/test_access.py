"""Tokens and read-only access, end to end."""

import os
import shutil
import signal
import struct
import subprocess
import time
import unittest

from wire import Peer, Server, hidden_entries, sha256, temp_root, wait_until

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


# SHA-256 by hand, only to extend a digest as an attacker would (hashlib
# cannot start from a given state).
_K = [int(x, 16) for x in (
    "428a2f98 71374491 b5c0fbcf e9b5dba5 3956c25b 59f111f1 923f82a4 ab1c5ed5 d807aa98 12835b01 243185be 550c7dc3 "
    "72be5d74 80deb1fe 9bdc06a7 c19bf174 e49b69c1 efbe4786 0fc19dc6 240ca1cc 2de92c6f 4a7484aa 5cb0a9dc 76f988da "
    "983e5152 a831c66d b00327c8 bf597fc7 c6e00bf3 d5a79147 06ca6351 14292967 27b70a85 2e1b2138 4d2c6dfc 53380d13 "
    "650a7354 766a0abb 81c2c92e 92722c85 a2bfe8a1 a81a664b c24b8b70 c76c51a3 d192e819 d6990624 f40e3585 106aa070 "
    "19a4c116 1e376c08 2748774c 34b0bcb5 391c0cb3 4ed8aa4a 5b9cca4f 682e6ff3 748f82ee 78a5636f 84c87814 8cc70208 "
    "90befffa a4506ceb bef9a3f7 c67178f2").split()]


def _rotr(x, n):
    return ((x >> n) | (x << (32 - n))) & 0xFFFFFFFF


def _compress(h, block):
    w = list(struct.unpack(">16I", block))
    for i in range(16, 64):
        s0 = _rotr(w[i - 15], 7) ^ _rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
        s1 = _rotr(w[i - 2], 17) ^ _rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
        w.append((w[i - 16] + s0 + w[i - 7] + s1) & 0xFFFFFFFF)
    a, b, c, d, e, f, g, hh = h
    for i in range(64):
        t1 = (hh + (_rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)) + ((e & f) ^ (~e & g)) + _K[i] + w[i]) & 0xFFFFFFFF
        t2 = ((_rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) & 0xFFFFFFFF
        hh, g, f, e, d, c, b, a = g, f, e, (d + t1) & 0xFFFFFFFF, c, b, a, (t1 + t2) & 0xFFFFFFFF
    return [(x + y) & 0xFFFFFFFF for x, y in zip(h, [a, b, c, d, e, f, g, hh])]


def _padding(length):
    return b"\x80" + b"\0" * ((55 - length) % 64) + struct.pack(">Q", length * 8)


def _extend(digest, prefix_length, suffix):
    """SHA-256 of (unknown prefix + its padding + suffix), from the prefix's digest."""
    h = list(struct.unpack(">8I", bytes.fromhex(digest)))
    message = suffix + _padding(prefix_length + len(_padding(prefix_length)) + len(suffix))
    for at in range(0, len(message), 64):
        h = _compress(h, message[at:at + 64])
    return struct.pack(">8I", *h).hex()


ALICE = "alice-0123456789abcdef"
BOB = "bob-0123456789abcdef"


class KeptUploadOwner(unittest.TestCase):
    """A kept upload is resumed only by the token that made it, over the
    bytes its state recorded (PROTOCOL.md 4.7)."""

    SIZE = 250000
    CUT = 150000

    def setUp(self):
        self.root = temp_root()
        self.tokens = os.path.join(self.root, ".tokens")
        with open(self.tokens, "w") as f:
            f.write(f"{ALICE} rw alice\n{BOB} rw bob\n")
        os.chmod(self.tokens, 0o600)
        self.secret = b"alice's secret, never committed: " + os.urandom(40)
        self.secret += b"." * (self.CUT - len(self.secret))

    def tearDown(self):
        shutil.rmtree(self.root)

    def cut_upload(self, server, token):
        peer = server.peer(token=token)
        self.assertTrue(peer.request({"op": "put", "name": "q3.bin", "size": self.SIZE})["ok"])
        for at in range(0, self.CUT, 50000):
            peer.send_data(self.secret[at:at + 50000])
        peer.close()  # every byte sent arrives before the end
        self.assertTrue(wait_until(lambda: len(hidden_entries(self.root)) == 3))  # .tokens, data, state

    def resume(self, server, token):
        def attempt():
            peer = server.peer(token=token)
            reply = peer.request({"op": "put", "name": "q3.bin", "size": self.SIZE, "resume": True})
            if not reply["ok"] and reply["error"]["code"] == "busy":
                peer.close()
                return None
            self.assertTrue(reply["ok"], reply)
            return peer, reply
        got = []
        self.assertTrue(wait_until(lambda: got.append(attempt()) or got[-1] is not None))
        return got[-1]

    def test_another_token_cannot_resume_nor_complete_it_by_length_extension(self):
        with Server(FERRYD, self.root, "--token-file", self.tokens) as server:
            self.cut_upload(server, ALICE)
            peer, reply = self.resume(server, BOB)
            self.assertEqual(reply["offset"], 0)
            self.assertNotIn("prefix_sha256", reply)
            # Bob's length extension, were he told a digest, would not hold
            # now: the server hashes only what Bob sends.
            bob = b"B" * (self.SIZE - self.CUT - len(_padding(self.CUT)))
            forged = _extend(sha256(self.secret), self.CUT, bob)
            peer.send_data(_padding(self.CUT) + bob)
            done = peer.request({"op": "commit", "id": peer.next_id - 1, "sha256": forged})
            self.assertFalse(done["ok"])
            self.assertEqual(done["error"]["code"], "size_mismatch")
            peer.close()
            self.assertNotIn("q3.bin", os.listdir(self.root))
            peer, reply = self.resume(server, ALICE)  # its maker still resumes it, untouched
            self.assertEqual(reply["offset"], self.CUT)
            self.assertEqual(reply["prefix_sha256"], sha256(self.secret))
            peer.close()

    def test_another_token_is_not_told_of_an_upload_in_progress_nor_drops_a_kept_one(self):
        with Server(FERRYD, self.root, "--token-file", self.tokens) as server:
            alice = server.peer(token=ALICE)
            self.assertTrue(alice.request({"op": "put", "name": "q3.bin", "size": self.SIZE})["ok"])
            alice.send_data(self.secret[:50000])
            # Alice's upload is in progress: Bob's put of that path and size
            # is an upload of his own, never `busy` (which would tell him).
            for resume in (False, True):
                bob = server.peer(token=BOB)
                reply = bob.request({"op": "put", "name": "q3.bin", "size": self.SIZE, "resume": resume})
                self.assertTrue(reply["ok"], reply)
                self.assertEqual(reply["offset"], 0)
                # Let go of Bob's own upload before his next put (a close
                # might reach the server after it: busy, rightly, for Bob's).
                aborted = bob.request({"op": "abort", "id": bob.next_id - 1, "discard": True})
                self.assertTrue(aborted["ok"], aborted)
                bob.close()
            for at in range(50000, self.CUT, 50000):
                alice.send_data(self.secret[at:at + 50000])
            alice.close()
            # Bob publishes the whole file while Alice's bytes are kept; her
            # kept upload is still hers to resume, then stands as the file.
            bobs = os.urandom(self.SIZE)
            bob = server.peer(token=BOB)
            self.assertTrue(bob.request({"op": "put", "name": "q3.bin", "size": self.SIZE})["ok"])
            for at in range(0, self.SIZE, 50000):
                bob.send_data(bobs[at:at + 50000])
            self.assertTrue(bob.request({"op": "commit", "id": bob.next_id - 1, "sha256": sha256(bobs)})["ok"])
            bob.close()
            with open(os.path.join(self.root, "q3.bin"), "rb") as f:
                self.assertEqual(f.read(), bobs)
            peer, reply = self.resume(server, ALICE)
            self.assertEqual(reply["offset"], self.CUT)
            self.assertEqual(reply["prefix_sha256"], sha256(self.secret))
            rest = os.urandom(self.SIZE - self.CUT)
            for at in range(0, len(rest), 50000):
                peer.send_data(rest[at:at + 50000])
            done = peer.request({"op": "commit", "id": peer.next_id - 1, "sha256": sha256(self.secret + rest)})
            self.assertTrue(done["ok"], done)
            peer.close()
            with open(os.path.join(self.root, "q3.bin"), "rb") as f:
                self.assertEqual(f.read(), self.secret + rest)

    def test_overwritten_kept_bytes_are_read_again_and_never_published(self):
        with Server(FERRYD, self.root, "--token-file", self.tokens) as server:
            self.cut_upload(server, ALICE)
            data = [os.path.join(self.root, n) for n in os.listdir(self.root)
                    if n.startswith(".ferry-partial-") and not n.endswith(".state")][0]
            before = os.stat(data)
            with open(data, "r+b") as f:
                f.seek(1000)
                f.write(b"TAMPERED" * 4)
            os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))
            peer, reply = self.resume(server, ALICE)
            self.assertEqual(reply["offset"], 0)
            whole = self.secret + os.urandom(self.SIZE - self.CUT)
            for at in range(0, self.SIZE, 50000):
                peer.send_data(whole[at:at + 50000])
            done = peer.request({"op": "commit", "id": peer.next_id - 1, "sha256": sha256(whole)})
            self.assertTrue(done["ok"], done)
            with open(os.path.join(self.root, "q3.bin"), "rb") as f:
                self.assertEqual(f.read(), whole)
