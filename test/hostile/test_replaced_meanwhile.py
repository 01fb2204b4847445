"""A delete with `expect` (PROTOCOL.md 4.11, what `ferry sync --delete`
sends for each extra it listed) whose file is replaced while the server
removes it: by another client's upload, another ferryd's, or a local user.
The replacement was acknowledged to whoever made it, so it must stay; only
the entry the listing described may go.

And a get whose folder is replaced (moved aside, a new one moved in, the
old one removed) after the server looked the folder up: the name looked up
in the removed folder fails, locally with ENOENT, on GlusterFS at times
with EIO (test 9c of test/scaleout, under CI's load; made here by the fault
library). Either way the path is looked up again: the get sends the file
the path holds now, and a stat describes it. The same where the folder
is moved out of the tree meanwhile, and a file outside takes the name in
it: nothing outside is described or sent.

The server renames the file to a hidden name of its own, compares it there
and removes it there. strace holds the server in each of those system calls
(as in test_moved_meanwhile), and the test replaces the file meanwhile, the
way a publish does: a rename over the name."""

import errno
import hashlib
import os
import shutil
import tempfile
import unittest

from test_folder_faults import preloaded
from test_moved_meanwhile import HeldCall, replied
from wire import Peer, Server, wait_until

FERRYD = os.environ.get("FERRYD", "")


def received_file(test, peer):
    """A get's reply read to its end: the bytes, after checking the reply and the trailer say ok."""
    reply = peer.reply()
    test.assertTrue(reply.get("ok"), reply)
    data = b""
    while True:
        _, frame = peer.frame()
        if isinstance(frame, dict):
            break
        data += frame
    test.assertTrue(frame.get("ok"), frame)
    return data, frame


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


@unittest.skipUnless(shutil.which("strace"), "needs strace")
class LookupInAReplacedFolder(unittest.TestCase):
    NEW = b"the new folder's file"

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="ferry-replaced-")
        self.root = os.path.join(self.base, "share")
        self.armed = os.path.join(self.base, "armed")
        os.makedirs(os.path.join(self.root, "d"))
        with open(os.path.join(self.root, "d", "x.bin"), "wb") as f:
            f.write(b"the old folder's file")
        self.held = None
        self.server = None

    def tearDown(self):
        if self.held:
            self.held.stop()
        if self.server:
            self.server.stop()
        shutil.rmtree(self.base)

    def replace_folder(self):
        """d replaced as test 9c does through the other mount: a new folder moved in, the old one removed."""
        new, old = os.path.join(self.root, ".d-new"), os.path.join(self.root, ".d-old")
        os.mkdir(new)
        with open(os.path.join(new, "x.bin"), "wb") as f:
            f.write(self.NEW)
        os.rename(os.path.join(self.root, "d"), old)
        os.rename(new, os.path.join(self.root, "d"))
        shutil.rmtree(old)

    def move_folder_out(self):
        """d moved out of the served tree, its x.bin replaced there by a file that never was inside, and a
        new d/x.bin made in the tree."""
        outside = os.path.join(self.base, "outside")
        os.rename(os.path.join(self.root, "d"), outside)
        with open(os.path.join(outside, "x.bin"), "wb") as f:
            f.write(b"a file outside the served tree, never inside it")
        os.mkdir(os.path.join(self.root, "d"))
        with open(os.path.join(self.root, "d", "x.bin"), "wb") as f:
            f.write(self.NEW)

    def reply_while_replaced(self, request, lookup_errno=None, replace=None):
        """Sends REQUEST (of d/x.bin), holds the server once its walk has
        opened d (openat2), replaces d meanwhile (REPLACE, by default
        replace_folder) and returns the peer, the reply not yet read. With LOOKUP_ERRNO, the first lookup of x.bin
        after the replacement fails with it (FERRY_FSTATAT_FAULT)."""
        asan = (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
        env = {"ASAN_OPTIONS": asan}
        if lookup_errno is not None:
            faulty = preloaded(FERRY_FSTATAT_FAULT=f"1:{lookup_errno}:x.bin:{self.armed}")
            env = {**faulty, "ASAN_OPTIONS": faulty["ASAN_OPTIONS"] + ":detect_leaks=0"}
        self.server = Server(FERRYD, self.root, env=env)
        peer = Peer(self.server.port, version=2)
        # Each look at a path holds twice (its walk, then the check that the folder is still at its place):
        # 1.5 s is time enough to see the hold and replace the folder.
        self.held = HeldCall(self.server.pid, "openat2", self.base, at="exit", hold_us=1_500_000)
        peer.send(request)
        self.assertTrue(self.held.wait_for_the_hold(), "the request never reached openat2")
        self.assertFalse(replied(peer), "the request was answered before the replacement: openat2 not held")
        (replace or self.replace_folder)()
        with open(self.armed, "w"):
            pass
        return peer

    def assertGetsTheNewFile(self, peer):
        data, frame = received_file(self, peer)
        self.assertEqual(data, self.NEW)
        self.assertEqual(frame["sha256"], hashlib.sha256(self.NEW).hexdigest())

    def assertDescribesTheNewFile(self, peer):
        reply = peer.reply()
        self.assertTrue(reply.get("ok"), reply)
        self.assertEqual(reply["size"], len(self.NEW), reply)

    def test_a_get_whose_lookup_finds_nothing_in_the_removed_folder_looks_again(self):
        self.assertGetsTheNewFile(self.reply_while_replaced({"op": "get", "name": "d/x.bin"}))

    def test_a_get_whose_lookup_in_the_removed_folder_fails_with_eio_looks_again(self):
        self.assertGetsTheNewFile(self.reply_while_replaced({"op": "get", "name": "d/x.bin"}, errno.EIO))

    def test_a_stat_whose_lookup_finds_nothing_in_the_removed_folder_looks_again(self):
        self.assertDescribesTheNewFile(self.reply_while_replaced({"op": "stat", "name": "d/x.bin"}))

    def test_a_stat_whose_lookup_in_the_removed_folder_fails_with_eio_looks_again(self):
        self.assertDescribesTheNewFile(self.reply_while_replaced({"op": "stat", "name": "d/x.bin"}, errno.EIO))

    # Round 68 (F2): a folder moved out of the tree is not removed, and the name in it described a file
    # that never was inside: the folder held must still lie at its path, for every answer.
    def test_a_get_in_a_folder_moved_out_of_the_tree_looks_again(self):
        self.assertGetsTheNewFile(self.reply_while_replaced({"op": "get", "name": "d/x.bin"},
                                                            replace=self.move_folder_out))

    def test_a_stat_in_a_folder_moved_out_of_the_tree_looks_again(self):
        self.assertDescribesTheNewFile(self.reply_while_replaced({"op": "stat", "name": "d/x.bin"},
                                                                 replace=self.move_folder_out))

    def test_a_digest_in_a_folder_moved_out_of_the_tree_looks_again(self):
        peer = self.reply_while_replaced({"op": "digest", "name": "d/x.bin"}, replace=self.move_folder_out)
        reply = peer.reply()
        self.assertTrue(reply.get("ok"), reply)
        self.assertEqual(reply["sha256"], hashlib.sha256(self.NEW).hexdigest(), reply)


@unittest.skipUnless(shutil.which("strace"), "needs strace")
class ListingOfAFolderMovedOut(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="ferry-replaced-")
        self.root = os.path.join(self.base, "share")
        self.outside = os.path.join(self.base, "outside")
        os.makedirs(os.path.join(self.root, "top", "d"))
        with open(os.path.join(self.root, "top", "d", "inside.txt"), "wb") as f:
            f.write(b"inside")
        asan = (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
        self.server = Server(FERRYD, self.root, env={"ASAN_OPTIONS": asan})
        self.addCleanup(shutil.rmtree, self.base)
        self.addCleanup(self.server.stop)
        self.peer = Peer(self.server.port, version=2)
        self.addCleanup(self.peer.close)

    def listed_while_moved(self, request, call):
        """REQUEST sent, the server held in CALL (at its exit) once it has opened top/d, which is then
        moved out of the tree and given a file there; the listing's replies until its last page."""
        held = HeldCall(self.server.pid, call, self.base, at="exit", hold_us=1_500_000)
        self.addCleanup(held.stop)
        self.peer.send(request)
        self.assertTrue(held.wait_for_the_hold(), f"the listing never reached {call}")
        self.assertFalse(replied(self.peer), f"the listing was answered before the move: {call} not held")
        os.rename(os.path.join(self.root, "top", "d"), self.outside)
        with open(os.path.join(self.outside, "outside-secret.txt"), "wb") as f:
            f.write(b"never inside the served tree")
        replies = []
        while True:
            replies.append(self.peer.reply())
            if not replies[-1].get("ok") or not replies[-1].get("more"):
                return replies

    def assertNothingOutsideSent(self, replies):
        names = [entry["name"] for reply in replies for entry in reply.get("files", [])]
        self.assertFalse([name for name in names if "outside-secret" in name], replies)
        self.assertEqual(replies[-1].get("error", {}).get("code"), "file_changed", replies)
        self.assertIn("top/d", replies[-1]["error"]["message"])

    def test_a_listing_of_a_folder_moved_out_while_it_is_read_sends_none_of_it(self):
        # Held once the walk opened top/d (openat2), before its entries are read.
        self.assertNothingOutsideSent(self.listed_while_moved({"op": "list", "path": "top/d"}, "openat2"))

    def test_a_recursive_listing_sends_nothing_of_a_folder_moved_out_while_it_is_read(self):
        # Held once the walk entered top/d below the listed top (openat).
        self.assertNothingOutsideSent(
            self.listed_while_moved({"op": "list", "path": "top", "recursive": True}, "openat"))


class ServedThroughAnExdevFault(unittest.TestCase):
    """A tree with d/x.bin and d/sub, served by a ferryd whose openat2 of a chosen path fails with EXDEV
    a chosen number of times (the fault library)."""

    DATA = b"d's file, where it always was"

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="ferry-walk-exdev-")
        self.addCleanup(shutil.rmtree, self.base)
        self.root = os.path.join(self.base, "share")
        os.makedirs(os.path.join(self.root, "d", "sub"))
        with open(os.path.join(self.root, "d", "x.bin"), "wb") as f:
            f.write(self.DATA)

    def serve(self, failures, path="d"):
        """A ferryd whose first FAILURES openat2 calls of PATH fail with EXDEV, and a peer of it."""
        faulty = preloaded(FERRY_OPENAT2_FAULT=f"{failures}:{errno.EXDEV}:{path}")
        server = Server(FERRYD, self.root, env={**faulty, "ASAN_OPTIONS": faulty["ASAN_OPTIONS"] + ":detect_leaks=0"})
        self.addCleanup(server.stop)
        peer = Peer(server.port, version=2)
        self.addCleanup(peer.close)
        return peer

    def assertServed(self, peer):
        """A stat through d, answered as if nothing had happened."""
        peer.send({"op": "stat", "name": "d/x.bin"})
        reply = peer.reply()
        self.assertTrue(reply.get("ok"), reply)
        self.assertEqual(reply["size"], len(self.DATA), reply)

    def assertDeeperDigestServed(self, failures):
        """A digest of d/sub/y.bin, served by a ferryd whose first FAILURES openat2 of d/sub fail."""
        with open(os.path.join(self.root, "d", "sub", "y.bin"), "wb") as f:
            f.write(self.DATA)
        peer = self.serve(failures, "d/sub")
        peer.send({"op": "digest", "name": "d/sub/y.bin"})
        reply = peer.reply()
        self.assertTrue(reply.get("ok"), reply)
        self.assertEqual(reply["sha256"], hashlib.sha256(self.DATA).hexdigest(), reply)


class AWalkEndedByAMoveOutOfTheTree(ServedThroughAnExdevFault):
    """openat2's RESOLVE_BENEATH ends a walk with EXDEV when a folder on the path moves out of the served
    folder while the kernel walks through it (complete_walk() in fs/namei.c), as for a mount point on the
    path. Attack round 70 (F1) met it 12 to 26 times in 5,000 requests while d moved out and back, each
    answered `forbidden` "... is on another file system": a permanent refusal for a passing race. The
    fault library makes that EXDEV on demand."""

    def test_a_stat_whose_walk_ended_in_exdev_with_no_mount_on_the_path_looks_again(self):
        self.assertServed(self.serve(1))

    def test_a_get_whose_walk_ended_in_exdev_with_no_mount_on_the_path_looks_again(self):
        peer = self.serve(1)
        peer.send({"op": "get", "name": "d/x.bin"})
        self.assertEqual(received_file(self, peer)[0], self.DATA)

    def test_a_listing_whose_walk_ended_in_exdev_with_no_mount_on_the_path_looks_again(self):
        peer = self.serve(1)
        peer.send({"op": "list", "path": "d"})
        reply = peer.reply()
        self.assertTrue(reply.get("ok"), reply)
        self.assertEqual(sorted(entry["name"] for entry in reply["files"]), ["sub", "x.bin"], reply)

    def test_a_deeper_walk_ended_in_exdev_looks_again(self):
        self.assertDeeperDigestServed(1)

    def test_a_folder_moved_out_for_good_is_not_found_not_forbidden(self):
        peer = self.serve(1)
        os.rename(os.path.join(self.root, "d"), os.path.join(self.base, "outside"))
        peer.send({"op": "stat", "name": "d/x.bin"})
        reply = peer.reply()
        self.assertEqual(reply.get("error", {}).get("code"), "not_found", reply)


class AMountProbeMetByTheSameMove(ServedThroughAnExdevFault):
    """After an EXDEV, ferryd probes the path's leading paths for the mount point to name; the move that
    ended the lookup can end a probe the same way. Attack round 71 (F1) saw a folder moving out of the root
    named as the mount point ("a/b" is on another file system), and with no mount below it would be a
    refusal of a path that crosses none. Here the fault library ends both the lookup and the probe of the
    same path with EXDEV: no mount is there, so the path is looked up again and served."""

    def test_a_stat_whose_probe_met_the_move_too_is_served(self):
        self.assertServed(self.serve(2))

    def test_a_deeper_probe_met_by_the_move_is_served(self):
        self.assertDeeperDigestServed(2)

    def test_a_move_that_ends_every_lookup_and_probe_leaves_the_path_to_the_walk(self):
        peer = self.serve(1000)
        peer.send({"op": "get", "name": "d/x.bin"})
        self.assertEqual(received_file(self, peer)[0], self.DATA)


if __name__ == "__main__":
    unittest.main()
