"""A delete with `expect` (PROTOCOL.md 4.11, what `ferry sync --delete`
sends for each extra it listed) whose file is replaced while the server
removes it: by another client's upload, another ferryd's, or a local user.
The replacement was acknowledged to whoever made it, so it must stay; only
the entry the listing described may go.

The server renames the file to a hidden name of its own, compares it there
and removes it there. strace holds the server in each of those system calls
(as in test_moved_meanwhile), and the test replaces the file meanwhile, the
way a publish does: a rename over the name."""

import os
import shutil
import tempfile
import unittest

from test_moved_meanwhile import HeldCall, replied
from wire import Peer, Server, wait_until

FERRYD = os.environ.get("FERRYD", "")


@unittest.skipUnless(shutil.which("strace"), "needs strace")
class DeleteMeetsAReplacement(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="ferry-replaced-")
        self.root = os.path.join(self.base, "share")
        os.makedirs(os.path.join(self.root, "d"))
        asan = (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
        self.server = Server(FERRYD, self.root, env={"ASAN_OPTIONS": asan})
        self.held = None
        self.path = os.path.join(self.root, "d", "f.txt")
        with open(self.path, "wb") as f:
            f.write(b"listed")
        st = os.stat(self.path)
        # What a listing said of it, as sync --delete sends it back.
        self.expect = {"type": "file", "size": st.st_size, "mtime": int(st.st_mtime)}
        self.peer = Peer(self.server.port, version=2)
        self.assertIn("delete_expect", self.peer.hello_reply.get("capabilities", []))

    def tearDown(self):
        self.peer.close()
        if self.held:
            self.held.stop()
        self.server.stop()
        shutil.rmtree(self.base)

    def replace(self, data):
        """Another writer's replacement of d/f.txt, published as an upload is: a rename over the name."""
        staged = os.path.join(self.base, "staged")
        with open(staged, "wb") as f:
            f.write(data)
        os.rename(staged, self.path)

    def content(self):
        with open(self.path, "rb") as f:
            return f.read()

    def leftovers(self):
        return [name for name in os.listdir(os.path.join(self.root, "d")) if name.startswith(".ferry-removing-")]

    def delete_held_in(self, call):
        self.held = HeldCall(self.server.pid, call, self.base)
        self.peer.send({"op": "delete", "path": "d/f.txt", "expect": self.expect})
        self.assertTrue(self.held.wait_for_the_hold(), f"the delete never reached {call}")
        self.assertFalse(replied(self.peer), f"the delete was answered before the replacement: {call} not held")

    def test_a_replacement_made_while_the_checked_file_is_removed_stays(self):
        # Held in the removal: the entry checked is on its way out when the name takes a new file.
        self.delete_held_in("unlinkat")
        self.replace(b"replacement, acknowledged")
        reply = self.peer.reply()
        self.assertTrue(reply.get("ok"), reply)  # the entry listed went...
        self.assertEqual(self.content(), b"replacement, acknowledged")  # ...and only it
        self.assertEqual(self.leftovers(), [])

    def test_a_replacement_made_before_the_file_is_set_aside_goes_back_to_its_name(self):
        # Held in the rename aside: what it moves is the replacement, not the entry listed.
        self.delete_held_in("renameat2")
        self.replace(b"replacement, acknowledged")
        reply = self.peer.reply()
        self.assertFalse(reply.get("ok"), reply)
        self.assertEqual(reply["error"]["code"], "file_changed", reply)
        self.assertIn("d/f.txt", reply["error"]["message"])
        self.assertEqual(self.content(), b"replacement, acknowledged")
        self.assertEqual(self.leftovers(), [])

    def test_a_name_taken_again_while_the_replacement_goes_back_keeps_both(self):
        self.delete_held_in("renameat2")
        self.replace(b"first replacement")
        # The rename back to the name is held too (set aside, the name empty): a third writer takes the
        # name meanwhile.
        self.assertTrue(wait_until(lambda: self.leftovers() and not os.path.exists(self.path), within=20,
                                   step=0.01), "the replacement was never set aside")
        self.assertTrue(self.held.wait_for_the_hold(), "the replacement was never put back")
        self.replace(b"second replacement")
        reply = self.peer.reply()
        self.assertFalse(reply.get("ok"), reply)
        self.assertEqual(reply["error"]["code"], "file_changed", reply)
        self.assertEqual(self.content(), b"second replacement")
        # Nothing acknowledged is lost: the first replacement is kept beside it, and the reply says where.
        kept = self.leftovers()
        self.assertEqual(len(kept), 1, kept)
        self.assertIn("d/" + kept[0], reply["error"]["message"])
        with open(os.path.join(self.root, "d", kept[0]), "rb") as f:
            self.assertEqual(f.read(), b"first replacement")


if __name__ == "__main__":
    unittest.main()
