"""Folders that fail or change under ferryd while it works in them.

A folder whose reading fails part way (readdir's EIO, as a damaged disk
or a network file system's folder read gives) ends that folder's reading,
not the listing's: what was read of it is listed, it is named in
unreadable_folders with io_error and in holding_unlisted (PROTOCOL.md 4.2),
and every other folder is listed in full. The failure is made by a small
library preloaded into ferryd (test/faults/fs_faults.cpp): readdir
fails with EIO where it would have returned an entry named "poison".

A recursive delete empties only what is still in the tree it was asked to
delete: a folder moved out of it meanwhile (by another client, another
ferryd or a local user) keeps what it holds (PROTOCOL.md 4.11). The same
library slows each unlinkat, so that the move lands mid-walk.

A mkdir with parents that fails part way (the library fails one mkdirat
with ENOSPC) still makes durable the folders it made before: the library
logs what each fsync synced."""

import hashlib
import os
import shutil
import time
import unittest

from wire import Server, temp_root, wait_until

FERRYD = os.environ.get("FERRYD", "")


def fault_library():
    """The preloaded library: meson names it; by hand, it lies in ferryd's build folder."""
    named = os.environ.get("FERRY_FS_FAULTS_LIB")
    if named:
        return named
    build = os.path.dirname(os.path.dirname(os.path.abspath(FERRYD)))
    return os.path.join(build, "test", "faults", "libferry_fs_faults.so")


def write(root, relative, data=b"x"):
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def preloaded(**faults):
    """The environment of a ferryd with the fault library preloaded and `faults` set."""
    library = fault_library()
    if not os.path.isfile(library):
        raise AssertionError(f"the fault library {library} is not built")
    # A sanitized ferryd checks that its runtime comes first; a preloaded library comes before it.
    asan = os.environ.get("ASAN_OPTIONS", "")
    return {"LD_PRELOAD": library, "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0",
            **faults}


class FolderReadFaults(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()
        self.addCleanup(shutil.rmtree, self.root)
        for name in ("a.txt", "b.txt", "c.txt"):
            write(self.root, f"t/good/{name}")
        for index in range(30):
            write(self.root, f"t/bad/f{index:02}.txt")
        write(self.root, "t/bad/poison")
        write(self.root, "t/bad/inner/deep.txt")
        write(self.root, "t/later/z.txt")
        self.server = Server(FERRYD, self.root, env=preloaded(FERRY_READDIR_FAULT_NAME="poison"))
        self.addCleanup(self.server.stop)

    def listing(self, peer, path):
        """(entries, unreadable_folders, holding_unlisted) of a recursive list, all pages."""
        peer.send({"op": "list", "path": path, "recursive": True})
        entries, unreadable, holding = [], [], []
        while True:
            page = peer.reply()
            self.assertIs(page.get("ok"), True, page)
            entries += [entry["name"] for entry in page["files"]]
            unreadable += page.get("unreadable_folders", [])
            holding += page.get("holding_unlisted", [])
            if not page.get("more"):
                return entries, unreadable, holding

    def test_a_folder_whose_reading_fails_part_way_is_named_and_the_rest_is_listed(self):
        peer = self.server.peer(version=2)
        self.addCleanup(peer.close)
        entries, unreadable, holding = self.listing(peer, "t")
        self.assertEqual(unreadable, [{"path": "bad", "code": "io_error"}])
        self.assertIn("bad", holding)
        # Every other folder in full; of the failed one, only real entries, never the one it failed at.
        for name in ("good", "good/a.txt", "good/b.txt", "good/c.txt", "later", "later/z.txt", "bad"):
            self.assertIn(name, entries)
        below = [name for name in entries if name.startswith("bad/")]
        self.assertNotIn("bad/poison", below)
        for name in below:
            self.assertTrue(os.path.lexists(os.path.join(self.root, "t", name)), name)
        self.assertLess(len([n for n in below if n.count("/") == 1]), 31)

    def test_the_listed_folder_itself_is_named_as_the_empty_path(self):
        peer = self.server.peer(version=2)
        self.addCleanup(peer.close)
        _, unreadable, holding = self.listing(peer, "t/bad")
        self.assertEqual(unreadable, [{"path": "", "code": "io_error"}])
        self.assertIn("", holding)
        # The connection goes on: the next listing is whole.
        entries, unreadable, _ = self.listing(peer, "t/good")
        self.assertEqual((sorted(entries), unreadable), (["a.txt", "b.txt", "c.txt"], []))

    def test_version_1_cannot_name_the_folder_and_fails_the_listing(self):
        write(self.root, "poison")
        peer = self.server.peer()
        self.addCleanup(peer.close)
        reply = peer.request({"op": "list"})
        self.assertIs(reply.get("ok"), False, reply)
        self.assertEqual(reply["error"]["code"], "io_error", reply)


class RecursiveDeleteMeetsAMove(unittest.TestCase):
    FILES = 60

    def setUp(self):
        self.root = temp_root()
        self.addCleanup(shutil.rmtree, self.root)
        # d holds only x, so that the walk is inside x when the move lands.
        for index in range(self.FILES):
            write(self.root, f"d/x/f{index:02}.txt")
        os.mkdir(os.path.join(self.root, "keep"))
        # 50 ms per unlink: the walk takes 3 s, so that a test process kept
        # off the processor for a second under load still moves mid-walk.
        self.server = Server(FERRYD, self.root, env=preloaded(FERRY_UNLINK_DELAY_MS="50"))
        self.addCleanup(self.server.stop)
        self.peer = self.server.peer(version=2)
        self.addCleanup(self.peer.close)

    def files_in(self, *parts):
        try:
            return len(os.listdir(os.path.join(self.root, *parts)))
        except FileNotFoundError:
            return 0

    def move_mid_walk(self, source, target, deleted=("d",), x_after_move=None):
        """Starts a recursive delete of `deleted` (which holds x), moves `source` to `target` once the walk
        has removed a few files of x, and gives (files in x right after the move, the delete's reply);
        `x_after_move` is where x then is (by default: `target` if it is x, else target/x)."""
        self.peer.send({"op": "delete", "path": "/".join(deleted), "recursive": True})
        self.assertTrue(wait_until(lambda: self.files_in(*deleted, "x") <= self.FILES - 3, within=20))
        os.rename(os.path.join(self.root, *source), os.path.join(self.root, *target))
        self.x_after_move = x_after_move or (target if target[-1] == "x" else target + ("x",))
        at_move = self.files_in(*self.x_after_move)
        self.assertGreater(at_move, 10, "the walk ended before the move: nothing to tell")
        reply = self.peer.reply()
        time.sleep(0.1)
        return at_move, reply

    def test_a_folder_moved_out_of_the_tree_keeps_what_it_holds(self):
        at_move, reply = self.move_mid_walk(("d", "x"), ("keep", "x"))
        # The one removal already past its check when the move landed may still go (the kernel's window,
        # widened here by the delay); nothing after it.
        self.assertGreaterEqual(self.files_in("keep", "x"), at_move - 1, reply)
        self.assertIs(reply.get("ok"), True, reply)
        self.assertFalse(os.path.exists(os.path.join(self.root, "d")))

    def test_the_deleted_path_moved_away_keeps_what_it_holds_and_the_reply_says_so(self):
        at_move, reply = self.move_mid_walk(("d",), ("keep", "d"))
        self.assertGreaterEqual(self.files_in("keep", "d", "x"), at_move - 1, reply)
        self.assertIs(reply.get("ok"), False, reply)
        self.assertEqual(reply["error"]["code"], "file_changed", reply)

    def test_a_folder_above_the_deleted_path_moved_away_keeps_the_tree(self):
        # The deleted path's own folder moves (and with it the whole tree): still at its name in the
        # folder the walk holds, but no longer where the path leads from the served root.
        for index in range(self.FILES):
            write(self.root, f"a/d/x/f{index:02}.txt")
        at_move, reply = self.move_mid_walk(("a",), ("keep", "a"), deleted=("a", "d"),
                                            x_after_move=("keep", "a", "d", "x"))
        self.assertGreaterEqual(self.files_in("keep", "a", "d", "x"), at_move - 1, reply)
        self.assertIs(reply.get("ok"), False, reply)
        self.assertEqual(reply["error"]["code"], "file_changed", reply)


class MkdirFailsPartWay(unittest.TestCase):
    """A mkdir (or put) with parents that fails after making some of the folders leaves them, and must have
    made them durable: a later mkdir finds them (EEXIST), makes nothing, syncs nothing, and answers ok."""

    def setUp(self):
        self.root = temp_root()
        self.addCleanup(shutil.rmtree, self.root)
        self.log = os.path.join(os.path.dirname(self.root), os.path.basename(self.root) + ".fsyncs")
        self.addCleanup(lambda: os.path.exists(self.log) and os.unlink(self.log))
        self.server = Server(FERRYD, self.root, env=preloaded(FERRY_MKDIR_FAULT_NAME="full",
                                                              FERRY_FSYNC_LOG=self.log))
        self.addCleanup(self.server.stop)
        self.peer = self.server.peer(version=2)
        self.addCleanup(self.peer.close)

    def synced(self):
        try:
            with open(self.log) as f:
                return set(f.read().splitlines())
        except FileNotFoundError:
            return set()

    def check_made_and_synced(self, reply):
        self.assertIs(reply.get("ok"), False, reply)
        self.assertEqual(reply["error"]["code"], "no_space", reply)
        self.assertTrue(os.path.isdir(os.path.join(self.root, "a", "b")))
        root = os.path.realpath(self.root)
        # The folders that gained an entry: the root (a) and a (b).
        self.assertLessEqual({root, os.path.join(root, "a")}, self.synced(), self.synced())

    def test_the_folders_a_failed_mkdir_made_are_synced(self):
        self.check_made_and_synced(self.peer.request({"op": "mkdir", "path": "a/b/full", "parents": True}))

    def test_the_folders_a_failed_put_with_parents_made_are_synced(self):
        reply = self.peer.request({"op": "put", "name": "a/b/full/f.txt", "size": 1, "parents": True})
        self.check_made_and_synced(reply)


class WithoutRenameFlags(unittest.TestCase):
    """On a file system without renameat2's flags (some FUSE and network file systems answer EINVAL), every
    promise that rests on RENAME_NOREPLACE or RENAME_EXCHANGE holds through its fallback: a rename or a
    commit without replace never replaces, a delete with expect still sets the file aside, and an upload's
    state and publish record still land. The library fails every flagged renameat2 with EINVAL."""

    def setUp(self):
        self.root = temp_root()
        self.addCleanup(shutil.rmtree, self.root)
        self.server = Server(FERRYD, self.root, env=preloaded(FERRY_NO_RENAME_FLAGS="1"))
        self.addCleanup(self.server.stop)
        self.peer = self.server.peer(version=2)
        self.addCleanup(self.peer.close)

    def read(self, relative):
        with open(os.path.join(self.root, relative), "rb") as f:
            return f.read()

    def leftovers(self):
        return [name for _, _, names in os.walk(self.root) for name in names if name.startswith(".ferry-")]

    def test_a_rename_without_replace_never_replaces(self):
        write(self.root, "a.txt", b"a")
        write(self.root, "b.txt", b"b")
        os.makedirs(os.path.join(self.root, "d1", "in"))
        os.makedirs(os.path.join(self.root, "d2"))
        for source, target in (("a.txt", "b.txt"), ("d1", "d2")):
            reply = self.peer.request({"op": "rename", "from": source, "to": target, "replace": False})
            self.assertEqual(reply.get("error", {}).get("code"), "exists", reply)
        self.assertEqual((self.read("a.txt"), self.read("b.txt")), (b"a", b"b"))
        self.assertTrue(os.path.isdir(os.path.join(self.root, "d1", "in")))
        for source, target in (("a.txt", "c.txt"), ("d1", "d3")):
            reply = self.peer.request({"op": "rename", "from": source, "to": target, "replace": False})
            self.assertIs(reply.get("ok"), True, reply)
        self.assertEqual(self.read("c.txt"), b"a")
        self.assertFalse(os.path.exists(os.path.join(self.root, "a.txt")))
        self.assertTrue(os.path.isdir(os.path.join(self.root, "d3", "in")))

    def test_a_commit_without_replace_never_replaces(self):
        write(self.root, "taken.bin", b"first")
        data = os.urandom(3 << 20)  # past 1 MiB: the commit writes its publish record
        reply = self.peer.request({"op": "put", "name": "taken.bin", "size": len(data), "resume": False})
        self.assertIs(reply.get("ok"), True, reply)
        put_id = self.peer.next_id - 1
        self.peer.send_data(data)
        reply = self.peer.request({"op": "commit", "id": put_id, "sha256": hashlib.sha256(data).hexdigest(),
                                   "replace": False})
        self.assertEqual(reply.get("error", {}).get("code"), "exists", reply)
        self.assertEqual(self.read("taken.bin"), b"first")
        reply = self.peer.put("new.bin", data)
        self.assertIs(reply.get("ok"), True, reply)
        self.assertEqual(self.read("new.bin"), data)
        self.assertTrue(wait_until(lambda: not any(".publish" in name for name in self.leftovers()), within=5))

    def test_a_delete_with_expect_sets_the_file_aside_all_the_same(self):
        write(self.root, "d/f.txt", b"listed")
        write(self.root, "d/g.txt", b"listed")
        st = os.stat(os.path.join(self.root, "d", "f.txt"))
        expect = {"type": "file", "size": st.st_size, "mtime": int(st.st_mtime)}
        reply = self.peer.request({"op": "delete", "path": "d/f.txt", "expect": expect})
        self.assertIs(reply.get("ok"), True, reply)
        self.assertFalse(os.path.exists(os.path.join(self.root, "d", "f.txt")))
        reply = self.peer.request({"op": "delete", "path": "d/g.txt", "expect": dict(expect, size=99)})
        self.assertEqual(reply.get("error", {}).get("code"), "file_changed", reply)
        self.assertEqual(self.read("d/g.txt"), b"listed")
        self.assertEqual(self.leftovers(), [])

    def test_an_interrupted_upload_resumes(self):
        data = os.urandom(4 << 20)
        reply = self.peer.request({"op": "put", "name": "big.bin", "size": len(data), "resume": True})
        self.assertIs(reply.get("ok"), True, reply)
        self.peer.send_data(data[: 3 << 20])
        # Kept once its state (written beside, then put in place: RENAME_EXCHANGE, or its fallback) says so.
        time.sleep(0.5)
        self.peer.close()
        self.assertTrue(wait_until(lambda: any(name.endswith(".state") for name in self.leftovers()), within=10))
        again = self.server.peer(version=2)
        self.addCleanup(again.close)
        replies = []

        def resumed():
            # busy until the server has seen the first connection go
            replies.append(again.request({"op": "put", "name": "big.bin", "size": len(data), "resume": True}))
            return replies[-1].get("error", {}).get("code") != "busy"
        self.assertTrue(wait_until(resumed, within=10), replies[-1:])
        reply = replies[-1]
        self.assertIs(reply.get("ok"), True, reply)
        self.assertGreater(reply.get("offset", 0), 0, reply)
        put_id = again.next_id - 1
        again.send_data(data[reply["offset"]:])
        reply = again.request({"op": "commit", "id": put_id, "sha256": hashlib.sha256(data).hexdigest()})
        self.assertIs(reply.get("ok"), True, reply)
        self.assertEqual(self.read("big.bin"), data)


if __name__ == "__main__":
    unittest.main()
