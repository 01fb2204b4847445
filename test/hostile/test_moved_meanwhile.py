"""A commit, or a mkdir with parents, that a move of its folder (or of the
whole served folder) catches half way: between the server's lookup of the
folder and its publish rename or its mkdir. What it made then lies in the
folder moved away, and stays there (it may be someone's now); the answer
must not be "ok" naming a path where it is not (PROTOCOL.md 4.5, 4.10;
README on `mv share share.old; mkdir share`). The same for a delete, a
rename and a set_mtime whose folder a local user moves out of the served
tree meanwhile (4.11-4.13): what they did happened in that folder, outside
the tree, and "ok" would say it happened at their paths.

The moment is a few system calls long, so strace holds the server in it:
attached to a running ferryd, it delays one system call (the publish
rename, or one mkdirat of the mkdir walk) by seconds, and the test
moves the folder meanwhile. Before the move the test confirms the server
is still held there (nothing published or made yet, no reply), so a pass
means the move did land inside the moment."""

import hashlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from wire import Peer, Server, wait_until

FERRYD = os.environ.get("FERRYD", "")

# How long strace holds the system call. The test moves the folder once a
# thread of the server is seen inside that call (/proc/PID/task/TID/syscall,
# proc(5)), so the move lands inside the hold whatever the machine's load;
# on a machine whose system call numbers are not known here, MOVE_AFTER
# seconds after the request instead.
HOLD_US = 2_500_000
MOVE_AFTER = 0.8
SYSCALL_NUMBERS = {"x86_64": {"renameat": 264, "mkdirat": 258, "renameat2": 316, "unlinkat": 263, "utimensat": 280,
                              "pread64": 17, "write": 1, "openat2": 437, "sendto": 44, "openat": 257, "statx": 332},
                   "aarch64": {"renameat": 38, "mkdirat": 34, "renameat2": 276, "unlinkat": 35, "utimensat": 88,
                               "pread64": 67, "write": 64, "openat2": 437, "sendto": 206, "openat": 56, "statx": 291}}


class HeldCall:
    """strace attached to the running server `pid`, delaying `call` by
    HOLD_US (or hold_us) on entry or, with at="exit", once it is done (each one, or with
    `nth` only each thread's nth one:
    strace counts per thread, and one request runs on one pool thread);
    detached by stop()."""

    def __init__(self, pid, call, folder, nth=None, at="enter", hold_us=HOLD_US):
        self.pid = pid
        self.number = SYSCALL_NUMBERS.get(os.uname().machine, {}).get(call)
        self.output = open(os.path.join(folder, "strace.log"), "wb")
        # at="exit": held once the call has done its work, before the server sees its result.
        self.process = subprocess.Popen(
            ["strace", "-f", "-qq", "-o", os.path.join(folder, "strace.trace"), "-e", "trace=" + call,
             "-e", f"inject={call}:delay_{at}={hold_us}" + (f":when={nth}" if nth else ""), "-p", str(pid)],
            stdout=self.output, stderr=self.output)
        if not wait_until(self.attached, within=15):
            self.stop()
            raise RuntimeError("strace did not attach to ferryd")

    def attached(self):
        """Whether every thread of the server is traced."""
        try:
            tasks = os.listdir(f"/proc/{self.pid}/task")
            for task in tasks:
                with open(f"/proc/{self.pid}/task/{task}/status") as status:
                    tracer = next(line for line in status if line.startswith("TracerPid:"))
                if int(tracer.split()[1]) == 0:
                    return False
        except (OSError, StopIteration):
            return False
        return bool(tasks)

    def holding(self):
        """Whether a thread of the server is inside the held call now."""
        try:
            for task in os.listdir(f"/proc/{self.pid}/task"):
                with open(f"/proc/{self.pid}/task/{task}/syscall") as f:
                    if f.read().split(" ", 1)[0] == str(self.number):
                        return True
        except OSError:
            pass
        return False

    def wait_for_the_hold(self):
        """Returns once the server is inside the held call (False if it never got there)."""
        if self.number is None:
            time.sleep(MOVE_AFTER)
            return True
        # Seen twice, 0.1 s apart: a call that is not held (nth) passes in far less.
        return wait_until(lambda: self.holding() and (time.sleep(0.1) or self.holding()), within=20, step=0.01)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # strace detaches
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.output.close()


def replied(peer):
    """Whether the server has sent anything on `peer` yet."""
    ready, _, _ = select.select([peer.sock], [], [], 0)
    return bool(ready)


def partials(root):
    return [name for name in os.listdir(root) if name.startswith(".ferry-partial")]


@unittest.skipUnless(shutil.which("strace"), "needs strace")
class MovedMeanwhile(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="ferry-moved-")
        self.root = os.path.join(self.base, "share")
        os.mkdir(self.root)
        # LeakSanitizer cannot run under ptrace (the sanitizer build).
        asan = (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
        self.server = Server(FERRYD, self.root, env={"ASAN_OPTIONS": asan})
        self.held = None

    def tearDown(self):
        if self.held:
            self.held.stop()
        self.server.stop()
        shutil.rmtree(self.base)

    def commit_held_in_rename(self, name, data):
        """Sends a put of `name` with `data` and its commit, the server's
        publish rename held by strace; returns the peer and the commit's id
        once the commit is inside that rename (nothing published yet)."""
        peer = Peer(self.server.port, version=2)
        reply = peer.request({"op": "put", "name": name, "size": len(data), "resume": False})
        self.assertTrue(reply["ok"], reply)
        put_id = peer.next_id - 1
        peer.send_data(data)
        self.held = HeldCall(self.server.pid, "renameat", self.base)
        peer.send({"op": "commit", "id": put_id, "sha256": hashlib.sha256(data).hexdigest()})
        self.assertTrue(self.held.wait_for_the_hold(), "the commit never reached its rename")
        self.assertFalse(replied(peer), "the commit was answered before the move: strace did not hold it")
        self.assertEqual(len(partials(self.root)), 1, "the commit published before the move: strace did not hold it")
        return peer, put_id

    def test_a_commit_into_a_folder_moved_away_meanwhile_is_not_ok_and_the_file_stays_there(self):
        os.makedirs(os.path.join(self.root, "d", "x"))
        os.mkdir(os.path.join(self.root, "moved"))
        data = b"payload" * 10
        peer, put_id = self.commit_held_in_rename("d/x/new.txt", data)
        # The folder goes, and another takes its name, while the rename waits.
        os.rename(os.path.join(self.root, "d", "x"), os.path.join(self.root, "moved", "x"))
        os.mkdir(os.path.join(self.root, "d", "x"))
        reply = peer.reply()
        self.held.stop()
        self.assertEqual(reply.get("id"), put_id, reply)
        self.assertFalse(reply.get("ok"), f"answered ok, yet d/x/new.txt is not there: {reply}")
        self.assertEqual(reply["error"]["code"], "file_changed", reply)
        self.assertIn("moved away", reply["error"]["message"])
        # Published into the folder moved away, and left there; nothing at the name.
        with open(os.path.join(self.root, "moved", "x", "new.txt"), "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertFalse(os.path.exists(os.path.join(self.root, "d", "x", "new.txt")))
        self.assertEqual(partials(self.root), [])
        # The client's retry lands where it asked.
        again = peer.put("d/x/new.txt", data)
        self.assertTrue(again.get("ok"), again)
        with open(os.path.join(self.root, "d", "x", "new.txt"), "rb") as f:
            self.assertEqual(f.read(), data)
        peer.close()

    def test_b_a_commit_when_the_served_folder_is_replaced_meanwhile_is_root_unavailable(self):
        data = b"readme case" * 5
        peer, put_id = self.commit_held_in_rename("new.txt", data)
        # README: `mv share share.old; mkdir share`, while the rename waits.
        old = os.path.join(self.base, "share.old")
        os.rename(self.root, old)
        os.mkdir(self.root)
        reply = peer.reply()
        self.held.stop()
        self.assertEqual(reply.get("id"), put_id, reply)
        self.assertFalse(reply.get("ok"), f"answered ok for a file published into share.old: {reply}")
        self.assertEqual(reply["error"]["code"], "root_unavailable", reply)
        self.assertIn("moved away", reply["error"]["message"])
        with open(os.path.join(old, "new.txt"), "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertEqual(os.listdir(self.root), [])
        peer.close()

    def test_d_a_commit_whose_folder_is_removed_meanwhile_says_the_folder_went(self):
        os.makedirs(os.path.join(self.root, "d", "x"))
        data = b"gone" * 10
        peer, put_id = self.commit_held_in_rename("d/x/new.txt", data)
        os.rmdir(os.path.join(self.root, "d", "x"))
        reply = peer.reply()
        self.held.stop()
        self.assertEqual(reply.get("id"), put_id, reply)
        self.assertFalse(reply.get("ok"), reply)
        self.assertEqual(reply["error"]["code"], "not_found", reply)
        # The put never needed a file at its name: the message names the folder that went.
        self.assertIn('the folder of "d/x/new.txt" was removed', reply["error"]["message"])
        self.assertEqual(partials(self.root), [])
        peer.close()

    def test_c_a_mkdir_with_parents_whose_folder_moves_away_meanwhile_is_not_ok(self):
        os.makedirs(os.path.join(self.root, "a", "b"))
        os.mkdir(os.path.join(self.root, "moved"))
        peer = Peer(self.server.port, version=2)
        # The walk's mkdirat calls: "a" and "a/b" (both there), then "c" in
        # the folder "a/b" it holds: held at that third one, once the walk
        # has opened "a/b" and before it makes "c" in it.
        self.held = HeldCall(self.server.pid, "mkdirat", self.base, nth=3)
        mkdir_id = peer.send({"op": "mkdir", "path": "a/b/c/d", "parents": True})
        self.assertTrue(self.held.wait_for_the_hold(), "the mkdir never reached its third mkdirat")
        self.assertFalse(replied(peer), "the mkdir was answered before the move: strace did not hold it")
        self.assertFalse(os.path.exists(os.path.join(self.root, "a", "b", "c")),
                         "the mkdir made c before the move: strace did not hold it")
        os.rename(os.path.join(self.root, "a", "b"), os.path.join(self.root, "moved", "b"))
        reply = peer.reply()
        self.held.stop()
        self.assertEqual(reply.get("id"), mkdir_id, reply)
        self.assertFalse(reply.get("ok"), f"answered ok, yet a/b/c/d does not exist: {reply}")
        self.assertEqual(reply["error"]["code"], "file_changed", reply)
        # What was made stays where it went (and nothing was made in it after).
        self.assertTrue(os.path.isdir(os.path.join(self.root, "moved", "b", "c")))
        self.assertFalse(os.path.exists(os.path.join(self.root, "a", "b")))
        # Again, and it is made where asked.
        again = peer.request({"op": "mkdir", "path": "a/b/c/d", "parents": True})
        self.assertTrue(again.get("ok"), again)
        self.assertTrue(again.get("created"), again)
        self.assertTrue(os.path.isdir(os.path.join(self.root, "a", "b", "c", "d")))
        peer.close()


@unittest.skipUnless(shutil.which("strace"), "needs strace")
class EditsInAFolderMovedOut(unittest.TestCase):
    """A delete, rename or set_mtime held by strace in its one system call
    on the entry, while a local user moves the entry's folder out of the
    served tree: the change lands in that folder, outside the tree, and the
    reply must say so (file_changed), never "ok"."""

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="ferry-moved-out-")
        self.root = os.path.join(self.base, "share")
        self.outside = os.path.join(self.base, "outside")
        os.makedirs(os.path.join(self.root, "d", "sub"))
        os.mkdir(self.outside)
        with open(os.path.join(self.root, "d", "sub", "f.txt"), "wb") as f:
            f.write(b"inside")
        with open(os.path.join(self.root, "top.txt"), "wb") as f:
            f.write(b"top")
        asan = (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
        self.server = Server(FERRYD, self.root, env={"ASAN_OPTIONS": asan})
        self.peer = Peer(self.server.port, version=2)
        self.held = None

    def tearDown(self):
        if self.held:
            self.held.stop()
        self.peer.close()
        self.server.stop()
        shutil.rmtree(self.base)

    def moved_out_during(self, call, request, folder="d/sub", at="enter"):
        """Sends `request` with `call` held (on entry, or at="exit" once it
        is done), moves `folder` (a file too) out of the tree while it
        waits, and returns the reply."""
        self.held = HeldCall(self.server.pid, call, self.base, at=at)
        sent = self.peer.send(request)
        self.assertTrue(self.held.wait_for_the_hold(), f"the request never reached its {call}")
        self.assertFalse(replied(self.peer), "answered before the move: strace did not hold it")
        os.rename(os.path.join(self.root, *folder.split("/")), os.path.join(self.outside, "sub"))
        reply = self.peer.reply()
        self.held.stop()
        self.held = None
        self.assertEqual(reply.get("id"), sent, reply)
        return reply

    def assert_moved_away(self, reply):
        self.assertFalse(reply.get("ok"), f"answered ok for a change made outside the served tree: {reply}")
        self.assertEqual(reply["error"]["code"], "file_changed", reply)
        self.assertIn("moved away", reply["error"]["message"])

    def test_a_delete_in_a_folder_moved_out_is_not_ok(self):
        reply = self.moved_out_during("unlinkat", {"op": "delete", "path": "d/sub/f.txt"})
        self.assert_moved_away(reply)
        self.assertIn("whatever stands at", reply["error"]["message"])
        self.assertFalse(os.path.exists(os.path.join(self.outside, "sub", "f.txt")))

    def test_b_a_delete_with_expect_in_a_folder_moved_out_is_not_ok(self):
        st = os.stat(os.path.join(self.root, "d", "sub", "f.txt"))
        expect = {"type": "file", "size": st.st_size, "mtime": int(st.st_mtime)}
        reply = self.moved_out_during("unlinkat", {"op": "delete", "path": "d/sub/f.txt", "expect": expect})
        self.assert_moved_away(reply)

    def test_c_a_rename_into_a_folder_moved_out_is_not_ok(self):
        reply = self.moved_out_during("renameat2", {"op": "rename", "from": "top.txt", "to": "d/sub/new.txt"})
        self.assert_moved_away(reply)
        self.assertIn('not at "d/sub/new.txt"', reply["error"]["message"])
        # The entry went where the folder went; nothing is at either path.
        self.assertTrue(os.path.exists(os.path.join(self.outside, "sub", "new.txt")))
        self.assertFalse(os.path.exists(os.path.join(self.root, "top.txt")))

    def test_d_a_rename_out_of_a_folder_moved_out_is_not_ok(self):
        reply = self.moved_out_during("renameat2", {"op": "rename", "from": "d/sub/f.txt", "to": "taken.txt"})
        self.assert_moved_away(reply)
        self.assertIn('not from "d/sub/f.txt"', reply["error"]["message"])
        with open(os.path.join(self.root, "taken.txt"), "rb") as f:
            self.assertEqual(f.read(), b"inside")

    def test_e_a_set_mtime_in_a_folder_moved_out_is_not_ok(self):
        reply = self.moved_out_during("utimensat", {"op": "set_mtime", "path": "d/sub/f.txt", "mtime": 1_000_000})
        self.assert_moved_away(reply)
        self.assertEqual(os.stat(os.path.join(self.outside, "sub", "f.txt")).st_mtime, 1_000_000)

    def test_f_a_set_mtime_with_expect_in_a_folder_moved_out_is_not_ok(self):
        st = os.stat(os.path.join(self.root, "d", "sub", "f.txt"))
        expect = {"type": "file", "size": st.st_size, "mtime": int(st.st_mtime)}
        reply = self.moved_out_during("utimensat", {"op": "set_mtime", "path": "d/sub/f.txt", "mtime": 1_000_000,
                                                    "expect": expect})
        self.assert_moved_away(reply)

    def test_h_a_set_mtime_whose_entry_moves_out_just_after_is_not_not_found(self):
        # The time was set, then the file went: "not_found" would say nothing happened.
        reply = self.moved_out_during("utimensat", {"op": "set_mtime", "path": "d/sub/f.txt", "mtime": 1_000_000},
                                      folder="d/sub/f.txt", at="exit")
        self.assertEqual(reply.get("error", {}).get("code"), "file_changed", reply)
        self.assertIn("was set, but the entry was moved away", reply["error"]["message"])
        self.assertEqual(os.stat(os.path.join(self.outside, "sub")).st_mtime, 1_000_000)

    def test_i_a_set_mtime_with_expect_whose_entry_moves_out_is_not_ok(self):
        # Its descriptor follows the entry out of the tree.
        st = os.stat(os.path.join(self.root, "d", "sub", "f.txt"))
        expect = {"type": "file", "size": st.st_size, "mtime": int(st.st_mtime)}
        reply = self.moved_out_during("utimensat", {"op": "set_mtime", "path": "d/sub/f.txt", "mtime": 1_000_000,
                                                    "expect": expect}, folder="d/sub/f.txt", at="exit")
        self.assertFalse(reply.get("ok"), f"answered ok for a time set outside the served tree: {reply}")
        self.assertEqual(reply["error"]["code"], "file_changed", reply)

    def test_j_a_rename_when_the_served_folder_moves_away_says_only_what_it_knows(self):
        self.held = HeldCall(self.server.pid, "renameat2", self.base)
        sent = self.peer.send({"op": "rename", "from": "top.txt", "to": "d/sub/new.txt"})
        self.assertTrue(self.held.wait_for_the_hold(), "the rename never reached its renameat2")
        os.rename(self.root, os.path.join(self.base, "share.old"))
        os.mkdir(self.root)
        reply = self.peer.reply()
        self.held.stop()
        self.held = None
        self.assertEqual(reply.get("id"), sent, reply)
        self.assertEqual(reply.get("error", {}).get("code"), "root_unavailable", reply)
        message = reply["error"]["message"]
        self.assertIn('"top.txt" was renamed to "d/sub/new.txt"', message)
        # Both paths lie in the folder moved away: no claim about what stands where.
        for claim in ("stands", "not at", "not from"):
            self.assertNotIn(claim, message)

    def test_g_the_same_edits_with_nothing_moved_are_ok(self):
        for request in ({"op": "set_mtime", "path": "d/sub/f.txt", "mtime": 1_000_000},
                        {"op": "rename", "from": "top.txt", "to": "d/sub/new.txt"},
                        {"op": "rename", "from": "d/sub/new.txt", "to": "d/sub/again.txt"},
                        {"op": "delete", "path": "d/sub/f.txt"}):
            reply = self.peer.request(request)
            self.assertTrue(reply.get("ok"), (request, reply))
        self.assertEqual(sorted(os.listdir(os.path.join(self.root, "d", "sub"))), ["again.txt"])


if __name__ == "__main__":
    unittest.main()
