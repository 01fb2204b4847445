"""Every way out of the served folder is refused with a clear error."""

import os
import shutil
import stat
import time
import unittest

from wire import Server, hidden_entries, temp_root

FERRYD = os.environ.get("FERRYD", "")


class Confinement(unittest.TestCase):
    ENV = None  # openat2 where the kernel has it

    @classmethod
    def setUpClass(cls):
        cls.root = temp_root()
        cls.outside = temp_root()
        with open(os.path.join(cls.outside, "secret"), "w") as f:
            f.write("outside")
        with open(os.path.join(cls.root, "plain.txt"), "w") as f:
            f.write("inside")
        os.symlink(os.path.join(cls.outside, "secret"), os.path.join(cls.root, "escape"))
        os.symlink(cls.outside, os.path.join(cls.root, "escape-dir"))
        os.mkfifo(os.path.join(cls.root, "pipe"))
        cls.device = os.path.join(cls.root, "null")
        try:
            os.mknod(cls.device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            cls.device = None
        cls.server = Server(FERRYD, cls.root, env=cls.ENV)
        cls.peer = cls.server.peer()

    @classmethod
    def tearDownClass(cls):
        cls.peer.close()
        cls.server.stop()
        shutil.rmtree(cls.root)
        shutil.rmtree(cls.outside)

    def assert_refused(self, message, code):
        reply = self.peer.request(message)
        self.assertFalse(reply["ok"], reply)
        self.assertEqual(reply["error"]["code"], code, reply)
        self.assertTrue(reply["error"]["message"])

    def test_separators_and_dots_are_invalid_names(self):
        for name in ["..", ".", "../etc/passwd", "/etc/passwd", "a/b", "..\\x", "a\\b", ".hidden",
                     "\u0000", "x" * 256, ""]:
            with self.subTest(name=name):
                for op in ("stat", "get"):
                    self.assert_refused({"op": op, "name": name}, "invalid_name")
                self.assert_refused({"op": "put", "name": name, "size": 1}, "invalid_name")

    def test_encoded_separators_are_plain_characters(self):
        # Nothing is URL-decoded: "%2e%2e%2f" is a name of its own, not "../".
        self.assert_refused({"op": "get", "name": "%2e%2e%2fetc%2fpasswd"}, "not_found")

    def test_names_that_are_not_utf8_never_parse(self):
        # A raw 0xFF byte or a lone surrogate inside the JSON string.
        for payload in (b'{"op":"get","id":5,"name":"a\xff"}', b'{"op":"get","id":5,"name":"a\\udcff"}'):
            self.peer.send_raw(bytes([1]) + len(payload).to_bytes(4, "big") + payload)
            reply = self.peer.reply()
            self.assertEqual(reply["error"]["code"], "bad_json", reply)

    def test_symlinks_are_never_followed(self):
        for name in ("escape", "escape-dir"):
            self.assert_refused({"op": "get", "name": name}, "not_regular_file")
            self.assert_refused({"op": "stat", "name": name}, "not_regular_file")
            self.assert_refused({"op": "put", "name": name, "size": 3}, "not_regular_file")
        with open(os.path.join(self.outside, "secret")) as f:
            self.assertEqual(f.read(), "outside")
        self.assertEqual(os.listdir(self.outside), ["secret"])

    def test_fifo_and_device_are_never_opened(self):
        started = time.time()
        self.assert_refused({"op": "get", "name": "pipe"}, "not_regular_file")
        self.assert_refused({"op": "put", "name": "pipe", "size": 1}, "not_regular_file")
        if self.device:
            self.assert_refused({"op": "get", "name": "null"}, "not_regular_file")
        # Had a worker opened the FIFO it would hang; the server answers at once.
        self.assertLess(time.time() - started, 5)
        reply = self.peer.request({"op": "list"})
        self.assertEqual([f["name"] for f in reply["files"]], ["plain.txt"])
        self.assertEqual(hidden_entries(self.root), [])


class ConfinementWalk(Confinement):
    """The same through the component walk of kernels without openat2."""
    ENV = {"FERRYD_RESOLVE": "walk"}


if __name__ == "__main__":
    unittest.main()
