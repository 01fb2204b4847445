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
import resource
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


class FsyncLogged(unittest.TestCase):
    """A ferryd on a fresh root with the fault library logging each fsync (FERRY_FSYNC_LOG) and FAULTS set;
    a version-2 peer. No tests of its own."""

    FAULTS = {}

    def setUp(self):
        self.root = temp_root()
        self.addCleanup(shutil.rmtree, self.root)
        self.real_root = os.path.realpath(self.root)
        self.log = os.path.join(os.path.dirname(self.root), os.path.basename(self.root) + ".fsyncs")
        self.addCleanup(lambda: os.path.exists(self.log) and os.unlink(self.log))
        self.start(**self.FAULTS)

    def start(self, **faults):
        self.server = Server(FERRYD, self.root, env=preloaded(FERRY_FSYNC_LOG=self.log, **faults))
        self.addCleanup(self.server.stop)
        self.peer = self.server.peer(version=2)
        self.addCleanup(self.peer.close)

    def synced(self):
        """Each path fsynced so far, in order."""
        try:
            with open(self.log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []


class MkdirFailsPartWay(FsyncLogged):
    """A mkdir (or put) with parents that fails after making some of the folders leaves them, and must have
    made them durable: a later mkdir finds them (EEXIST), makes nothing, syncs nothing, and answers ok."""

    FAULTS = {"FERRY_MKDIR_FAULT_NAME": "full"}

    def check_made_and_synced(self, reply):
        self.assertIs(reply.get("ok"), False, reply)
        self.assertEqual(reply["error"]["code"], "no_space", reply)
        self.assertTrue(os.path.isdir(os.path.join(self.root, "a", "b")))
        root = os.path.realpath(self.root)
        # The folders that gained an entry: the root (a) and a (b).
        self.assertLessEqual({root, os.path.join(root, "a")}, set(self.synced()), self.synced())

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


class DeferredSync(FsyncLogged):
    """A commit with defer_sync publishes at once and leaves its folder's fsync to the connection's sync
    request (PROTOCOL.md 4.5, 4.14): that sync fsyncs each folder once however many names went there, skips
    none that a commit of it changed, and answers an fsync's failure; a commit that did not ask, or an
    upload of 1 MiB or more (its publish record waits for the folder's sync), syncs before its reply."""

    def folder_syncs(self, relative):
        folder = os.path.join(self.real_root, relative) if relative else self.real_root
        return self.synced().count(folder)

    def put(self, name, data, defer=True, peer=None):
        """Uploads DATA to NAME, whose folder the test made (so that only commits and syncs fsync it)."""
        peer = peer or self.peer
        os.makedirs(os.path.join(self.root, os.path.dirname(name)), exist_ok=True)
        reply = peer.request({"op": "put", "name": name, "size": len(data)})
        self.assertIs(reply.get("ok"), True, reply)
        self.token = reply["token"]
        for at in range(0, len(data), 1 << 20):
            peer.send_data(data[at:at + (1 << 20)])
        commit = {"op": "commit", "id": reply["id"], "sha256": hashlib.sha256(data).hexdigest()}
        if defer:
            commit["defer_sync"] = True
        return peer.request(commit)

    def test_the_capability_is_offered_on_version_2_only(self):
        self.assertIn("deferred_sync", self.peer.hello_reply["capabilities"])
        old = self.server.peer(version=1)
        self.addCleanup(old.close)
        self.assertNotIn("deferred_sync", old.hello_reply.get("capabilities", []))
        reply = old.request({"op": "sync"})
        self.assertEqual(reply["error"]["code"], "unknown_op", reply)

    def test_one_sync_makes_every_folder_durable_once(self):
        for folder in ("a", "a/b", "c"):
            for index in range(6):
                reply = self.put(f"{folder}/f{index}.bin", os.urandom(100 + index))
                self.assertIs(reply.get("ok"), True, reply)
                self.assertIs(reply.get("synced"), False, reply)
                # Published at once: a reader sees it before any sync.
                self.assertTrue(os.path.isfile(os.path.join(self.root, folder, f"f{index}.bin")))
        before = {folder: self.folder_syncs(folder) for folder in ("a", "a/b", "c")}
        reply = self.peer.request({"op": "sync"})
        self.assertEqual(reply, {"id": reply["id"], "ok": True, "folders": 3})
        for folder in ("a", "a/b", "c"):
            self.assertEqual(self.folder_syncs(folder) - before[folder], 1, (folder, self.synced()))
        # Nothing is left to sync: a second one syncs no folder.
        count = len(self.synced())
        reply = self.peer.request({"op": "sync"})
        self.assertEqual(reply.get("folders"), 0, reply)
        self.assertEqual(len(self.synced()), count)

    def test_the_commits_own_data_is_synced_before_its_reply(self):
        reply = self.put("d/f.bin", b"data")
        self.assertIs(reply.get("synced"), False, reply)
        # Its fsync ran on the partial, in the root, before the rename.
        self.assertIn(os.path.join(self.real_root, ".ferry-partial-" + self.token), self.synced())

    def test_a_commit_that_does_not_ask_and_a_large_one_sync_their_folder_at_once(self):
        reply = self.put("d/small.bin", b"x", defer=False)
        self.assertNotIn("synced", reply)
        self.assertEqual(self.folder_syncs("d"), 1, self.synced())
        reply = self.put("d/large.bin", os.urandom((1 << 20) + 1))
        self.assertIs(reply.get("ok"), True, reply)
        self.assertNotIn("synced", reply)
        self.assertEqual(self.folder_syncs("d"), 2, self.synced())
        self.assertEqual(self.peer.request({"op": "sync"}).get("folders"), 0)

    def test_a_sync_another_connection_ran_after_the_commit_covers_it(self):
        other = self.server.peer(version=2)
        self.addCleanup(other.close)
        self.assertIs(self.put("d/one.bin", b"1").get("synced"), False)
        self.assertIs(self.put("d/two.bin", b"2", peer=other).get("synced"), False)
        self.assertEqual(other.request({"op": "sync"}).get("folders"), 1)
        syncs = self.folder_syncs("d")
        # The other connection's fsync of d started after this commit's rename: nothing more to do.
        self.assertEqual(self.peer.request({"op": "sync"}).get("folders"), 1)
        self.assertEqual(self.folder_syncs("d"), syncs, self.synced())

    def test_a_sync_during_an_upload_is_unexpected_and_the_upload_goes_on(self):
        reply = self.peer.request({"op": "put", "name": "u.bin", "size": 4})
        reply = self.peer.request({"op": "sync"})
        self.assertEqual(reply["error"]["code"], "unexpected_frame", reply)
        self.peer.send_data(b"data")
        reply = self.peer.request({"op": "commit", "id": 2, "sha256": hashlib.sha256(b"data").hexdigest()})
        self.assertIs(reply.get("ok"), True, reply)

    def test_a_failed_folder_fsync_is_the_syncs_error(self):
        self.server.stop()
        self.start(FERRY_FSYNC_FAULT_PATH=os.path.join(self.real_root, "bad"))
        self.assertIs(self.put("good/f.bin", b"g").get("synced"), False)
        self.assertIs(self.put("bad/f.bin", b"b").get("synced"), False)
        self.assertIs(self.put("good/h.bin", b"h").get("synced"), False)
        reply = self.peer.request({"op": "sync"})
        self.assertEqual(reply["error"]["code"], "io_error", reply)
        self.assertIn('"bad"', reply["error"]["message"])
        self.assertIn("may not survive a crash", reply["error"]["message"])
        # Every folder was tried, the failing one did not stop the others; and none is left pending.
        self.assertEqual(self.folder_syncs("good"), 1, self.synced())
        self.assertEqual(self.peer.request({"op": "sync"}).get("folders"), 0)

    def test_a_connection_that_ends_before_its_sync_has_its_folders_synced_as_it_closes(self):
        # Nothing was promised to its client, but a rerun that finds the files equal skips them (round 80).
        for ending in ("close", "reset"):
            with self.subTest(ending=ending):
                peer = self.server.peer(version=2)
                folder = f"gone-{ending}"
                self.assertIs(self.put(f"{folder}/f.bin", b"x", peer=peer).get("synced"), False)
                self.assertEqual(self.folder_syncs(folder), 0)
                getattr(peer, ending)()
                self.assertTrue(wait_until(lambda: self.folder_syncs(folder) == 1, within=10), self.synced())

    def restart_with_descriptors(self, limit):
        self.server.stop()
        self.server = Server(FERRYD, self.root, env=preloaded(FERRY_FSYNC_LOG=self.log),
                             preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))
        self.addCleanup(self.server.stop)
        self.peer = self.server.peer(version=2)
        self.addCleanup(self.peer.close)

    def test_a_failed_sync_at_the_close_is_logged(self):
        # Nobody is left to answer it; before round 81 it went nowhere at all.
        self.server.stop()
        self.start(FERRY_FSYNC_FAULT_PATH=os.path.join(self.real_root, "bad"))
        self.assertIs(self.put("bad/f.bin", b"b").get("synced"), False)
        self.peer.close()
        self.assertTrue(wait_until(lambda: "code=io_error" in self.server.log_text(), within=10),
                        self.server.log_text()[-2000:])
        line = [text for text in self.server.log_text().splitlines() if "code=io_error" in text][0]
        self.assertIn('\\"bad\\"', line)

    def test_a_deferred_commit_whose_folder_moves_during_its_publish_syncs_it_at_once(self):
        # Answered file_changed, the file stays in the folder moved away: no sync request will answer for
        # it, so its folder is synced as an undeferred commit's is (round 81).
        self.server.stop()
        self.start(FERRY_PUBLISH_PAUSE_MS="600")
        os.makedirs(os.path.join(self.root, "d", "a"))
        reply = self.peer.request({"op": "put", "name": "d/a/f.bin", "size": 1})
        self.peer.send_data(b"f")
        self.peer.send({"op": "commit", "id": reply["id"], "sha256": hashlib.sha256(b"f").hexdigest(),
                        "defer_sync": True})
        moved_from = os.path.join(self.root, "d", "a", "f.bin")
        self.assertTrue(wait_until(lambda: os.path.exists(moved_from), within=10))
        os.rename(os.path.join(self.root, "d", "a"), os.path.join(self.root, "d", "b"))
        reply = self.peer.reply()
        self.assertEqual(reply.get("error", {}).get("code"), "file_changed", reply)
        self.assertTrue(os.path.exists(os.path.join(self.root, "d", "b", "f.bin")))
        self.assertEqual(self.folder_syncs("d/b"), 1, self.synced())
        self.assertEqual(self.peer.request({"op": "sync"}).get("folders"), 0)

    def test_the_pinned_folders_are_bounded_by_the_descriptor_limit(self):
        # An eighth of RLIMIT_NOFILE (here 25 of 200), so that deferred folders leave the descriptors that
        # connections and uploads need where a unit's LimitNOFILE= is low (round 80).
        self.restart_with_descriptors(200)
        replies = [self.put(f"n{index:02}/f.bin", b"x") for index in range(30)]
        self.assertEqual([reply.get("synced", True) for reply in replies], [False] * 25 + [True] * 5)
        self.assertEqual(self.peer.request({"op": "sync"}).get("folders"), 25)

    def test_a_connection_holds_a_bounded_number_of_folders(self):
        # Past 256 folders left for its sync, a commit syncs its folder itself (with descriptors enough
        # that the process's own bound, an eighth of them, is not the one met).
        self.restart_with_descriptors(4096)
        replies = [self.put(f"d{index:03}/f.bin", b"x") for index in range(258)]
        self.assertTrue(all(reply.get("ok") for reply in replies))
        self.assertEqual([reply.get("synced", True) for reply in replies], [False] * 256 + [True] * 2)
        self.assertEqual(self.peer.request({"op": "sync"}).get("folders"), 256)
