"""A ferryd killed between a commit's rename and the file's final attributes
leaves a publish record (PROTOCOL.md 4.7), named by the path alone: any put
or commit of that path, whatever its size, settles it before it could take
the unsettled 0600 for the replaced file's, and a settle leaves nothing of
the upload behind. A --read-only ferryd beside a writable one changes
nothing in the folder (ferryd.8): no expiry sweep, no settle, no root made.

The kill lands in the window by strace: it delays ferryd's fchown (the
first call after the rename that sets the replaced file's owner) by 5 s,
and the test kills ferryd with SIGKILL as soon as the new content stands
at the name."""

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import threading
import time
import unittest

from wire import CHUNK, Server, hidden_entries, temp_root, wait_until

FERRYD = os.environ.get("FERRYD", "")
SIZE = 2 << 20  # from 1 MiB an upload records its publish (kStateRoomFrom)


def attributes(path):
    st = os.stat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def traced(pid):
    with open(f"/proc/{pid}/status") as status:
        return any(line.startswith("TracerPid:") and line.split()[1] != "0" for line in status)


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("strace"), "needs root (chown) and strace")
class PublishRecord(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()
        self.target = os.path.join(self.root, "f.bin")
        with open(self.target, "wb") as f:
            f.write(b"old")
        os.chown(self.target, 1234, 1234)
        os.chmod(self.target, 0o640)

    def tearDown(self):
        shutil.rmtree(self.root)

    def kill_between_rename_and_attributes(self):
        """A ferryd killed after its commit's rename, before the owner and
        mode; returns the new content."""
        killed = Server(FERRYD, self.root)
        tracer = subprocess.Popen(["strace", "-f", "-qq", "-o", os.path.join(self.root, "..",
                                                                              os.path.basename(self.root) + ".trace"),
                                   "-e", "trace=fchown", "-e", "inject=fchown:delay_enter=5000000",
                                   "-p", str(killed.pid)], stderr=subprocess.DEVNULL)
        try:
            self.assertTrue(wait_until(lambda: traced(killed.pid), within=10), "strace did not attach")
            time.sleep(0.3)  # every thread attached
            data = os.urandom(SIZE)
            peer = killed.peer(timeout=20)
            sender = threading.Thread(target=lambda: self._put_ignoring_loss(peer, data))
            sender.start()

            def published():
                try:
                    with open(self.target, "rb") as f:
                        return f.read(16) == data[:16]
                except OSError:
                    return False

            self.assertTrue(wait_until(published, within=15), "the commit never renamed")
            os.kill(killed.pid, signal.SIGKILL)
            killed.stop()
            sender.join(timeout=30)
            peer.close()
        finally:
            tracer.wait(timeout=30)
            os.unlink(os.path.join(self.root, "..", os.path.basename(self.root) + ".trace"))
        # The window: the new content, still the partial's attributes.
        self.assertEqual(attributes(self.target), (0, 0, 0o600))
        return data

    @staticmethod
    def _put_ignoring_loss(peer, data):
        try:
            peer.put("f.bin", data)
        except Exception:  # the server was killed under it
            pass

    def test_a_put_of_the_path_with_another_size_settles_the_record_first(self):
        with Server(FERRYD, self.root) as other:
            self.kill_between_rename_and_attributes()
            peer = other.peer()
            reply = peer.put("f.bin", os.urandom(SIZE + 1))
            peer.close()
            self.assertTrue(reply["ok"], reply)
            # The new file took the replaced file's owner and mode, which
            # the record gave back to the file the killed commit published.
            self.assertEqual(attributes(self.target), (1234, 1234, 0o640))
            self.assertEqual(hidden_entries(self.root), [])

    def test_a_commit_begun_before_the_kill_settles_the_record_first(self):
        with Server(FERRYD, self.root) as other:
            body = os.urandom(SIZE + 7)
            peer = other.peer()
            lib = peer.library()
            upload = lib.open_put("f.bin", len(body))  # begun before the record exists
            for at in range(0, len(body), CHUNK):
                upload.write(body[at:at + CHUNK])
            self.kill_between_rename_and_attributes()
            done = upload.commit(hashlib.sha256(body).hexdigest())
            peer.close()
            self.assertTrue(done.get("ok", True), done)
            with open(self.target, "rb") as f:
                self.assertEqual(f.read(), body)
            self.assertEqual(attributes(self.target), (1234, 1234, 0o640))
            self.assertEqual(hidden_entries(self.root), [])

    def test_a_settle_at_start_leaves_nothing_of_the_upload(self):
        self.kill_between_rename_and_attributes()
        with Server(FERRYD, self.root):
            self.assertEqual(attributes(self.target), (1234, 1234, 0o640))
            self.assertEqual(hidden_entries(self.root), [])


    def test_a_file_that_took_the_published_ones_inode_is_left_as_it_is(self):
        # Attack round 74, F1: the published file deleted, ext4 gave its
        # inode number to another identity's private upload of the same size
        # and mtime, renamed onto the name: the settle gave it the record's
        # owner and mode (0600 became 0666, another user's). The record
        # named the file by inode, size and mtime only; that file is modelled
        # here by the killed commit's own, without the intent the commit
        # wrote on it (a new file never has it), or with another's.
        self.settle_with_the_intent(lambda intent: None)

    def test_a_file_carrying_another_commits_intent_is_left_as_it_is(self):
        def another(intent):
            fields = json.loads(intent)
            fields[1:4] = [0, 0, 0o600]  # the owner and mode another commit asked
            return json.dumps(fields, separators=(",", ":")).encode()
        self.settle_with_the_intent(another)

    def settle_with_the_intent(self, replaced):
        """After a killed commit, its file's intent is `replaced(intent)` (None: removed); a ferryd started on
        the folder then settles the record."""
        intent_name = "trusted.ferry.publishing"
        self.kill_between_rename_and_attributes()
        new = replaced(os.getxattr(self.target, intent_name))
        if new is None:
            os.removexattr(self.target, intent_name)
        else:
            os.setxattr(self.target, intent_name, new)
        with Server(FERRYD, self.root):
            self.assertEqual(attributes(self.target), (0, 0, 0o600))
            self.assertEqual(hidden_entries(self.root), [])  # the record is dropped


class ReadOnlyChangesNothing(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()

    def tearDown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def snapshot(self):
        return sorted((name, os.lstat(os.path.join(self.root, name)).st_mtime_ns) for name in os.listdir(self.root))

    def test_a_read_only_ferryd_beside_a_writable_one_expires_nothing(self):
        with Server(FERRYD, self.root) as writable:
            peer = writable.peer()
            reply = peer.put("kept.bin", os.urandom(SIZE), commit=False)
            self.assertTrue(reply["ok"], reply)
            peer.close()  # cut: the upload is kept for a resume
            self.assertTrue(wait_until(lambda: any(n.endswith(".state") for n in os.listdir(self.root))
                                       and not any(n.endswith(".state.tmp") for n in os.listdir(self.root))),
                            os.listdir(self.root))
            before = self.snapshot()
            # TTL 0: its sweep, were there one, would run at start and within a second.
            with Server(FERRYD, self.root, "--read-only", "--partial-ttl", "0") as read_only:
                time.sleep(2.5)
                self.assertEqual(self.snapshot(), before)
                self.assertNotIn("expired_uploads", read_only.log_text())

    def test_a_read_only_ferryd_does_not_make_a_missing_root(self):
        missing = os.path.join(self.root, "not", "there")
        done = subprocess.run([FERRYD, "--root", missing, "--listen", "127.0.0.1:0", "--read-only"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(done.returncode, 4, done.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.root, "not")))


if __name__ == "__main__":
    unittest.main()
