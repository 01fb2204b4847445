"""The names of ferryd's own files in the root (a partial, its state, the
state's temporary) can be predicted: the token is the first 32 hex digits of
SHA-256 of "<size>\\n<name>" (PROTOCOL.md 4.7). Whoever may write in the root
can plant something at those names before a put: a FIFO, a hard link to a
file outside the root, a symlink, a socket, a folder. None of it may block a
pool thread, change a file outside the root, or keep the upload from
working."""

import hashlib
import os
import shutil
import socket
import stat
import tempfile
import unittest

from wire import Server, sha256, temp_root, wait_until

FERRYD = os.environ.get("FERRYD", "")

SIZE = 1000
HALF = 500


def token(name, size):
    return hashlib.sha256(f"{size}\n{name}".encode()).hexdigest()[:32]


def partial_name(name, size):
    return ".ferry-partial-" + token(name, size)


def release_fifo(path):
    """Opens a FIFO for reading without waiting, so that a writer blocked
    in its open (an unfixed server) goes on and the test can end."""
    try:
        if stat.S_ISFIFO(os.lstat(path).st_mode):
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    except OSError:
        pass


class PlantedNames(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()
        # Outside the root, on the same file system (a hard link needs it).
        self.outside = tempfile.mkdtemp(prefix="ferry-outside-", dir=os.path.dirname(self.root))
        self.victim = os.path.join(self.outside, "victim")
        with open(self.victim, "wb") as f:
            f.write(b"outside, not ferryd's\n")
        self.planted = []

    def tearDown(self):
        for path in self.planted:
            release_fifo(path)
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.outside, ignore_errors=True)

    def plant(self, path, kind):
        self.planted.append(path)
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "hard link":
            os.link(self.victim, path)
        elif kind == "symlink":
            os.symlink(self.victim, path)
        elif kind == "socket":
            with socket.socket(socket.AF_UNIX) as s:
                s.bind(path)
        elif kind == "empty folder":
            os.mkdir(path)
        else:
            raise ValueError(kind)

    def assert_outside_unchanged(self):
        with open(self.victim, "rb") as f:
            self.assertEqual(f.read(), b"outside, not ferryd's\n")

    def cut_upload(self, server, name, data):
        """A put of NAME that sends half of DATA, then drops: the server
        checkpoints what it received."""
        peer = server.peer()
        reply = peer.request({"op": "put", "name": name, "size": len(data)})
        self.assertTrue(reply["ok"], reply)
        peer.send_data(data[:HALF])
        peer.close()

    def resume_and_commit(self, server, name, data):
        """Resumes NAME where the cut put left it and publishes it; the
        server must still answer file requests at all (a pool thread stuck
        in a planted FIFO stops them)."""
        def resumed():
            peer = server.peer(timeout=10)
            reply = peer.request({"op": "put", "name": name, "size": len(data), "resume": True})
            if not reply["ok"] and reply["error"]["code"] == "busy":
                peer.close()
                return None
            return peer, reply
        got = []
        self.assertTrue(wait_until(lambda: got.append(resumed()) or got[-1] is not None, within=20),
                        "the resume stayed busy")
        peer, reply = got[-1]
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(reply["offset"], HALF, reply)
        self.assertEqual(reply["prefix_sha256"], sha256(data[:HALF]))
        peer.send_data(data[HALF:])
        done = peer.request({"op": "commit", "id": peer.next_id - 1, "sha256": sha256(data)})
        self.assertTrue(done["ok"], done)
        with open(os.path.join(self.root, name), "rb") as f:
            self.assertEqual(f.read(), data)
        peer.close()

    def check_state_temporary(self, kind):
        name = "st-" + kind.replace(" ", "-") + ".bin"
        data = os.urandom(SIZE)
        temp = os.path.join(self.root, partial_name(name, SIZE) + ".state.tmp")
        self.plant(temp, kind)
        # One pool thread: a checkpoint stuck in the FIFO's open stops every
        # file operation of the server at once.
        server = Server(FERRYD, self.root, env={"UV_THREADPOOL_SIZE": "1"})
        try:
            self.cut_upload(server, name, data)
            state = os.path.join(self.root, partial_name(name, SIZE) + ".state")
            self.assertTrue(wait_until(lambda: os.path.exists(state), within=15),
                            f"no state recorded past a {kind}: " + server.log_text())
            self.assert_outside_unchanged()
            self.resume_and_commit(server, name, data)
            self.assert_outside_unchanged()
            self.assertFalse(os.path.lexists(temp))
        finally:
            release_fifo(temp)
            status = server.stop(timeout=20)
        self.assertEqual(status, 0, "ferryd did not stop cleanly on SIGTERM")

    def test_a_fifo_at_the_state_temporary(self):
        self.check_state_temporary("fifo")

    def test_a_hard_link_to_an_outside_file_at_the_state_temporary(self):
        self.check_state_temporary("hard link")

    def test_a_symlink_at_the_state_temporary(self):
        self.check_state_temporary("symlink")

    def test_a_socket_at_the_state_temporary(self):
        self.check_state_temporary("socket")

    def test_an_empty_folder_at_the_state_temporary(self):
        self.check_state_temporary("empty folder")

    def test_an_empty_folder_at_the_state(self):
        name = "st-folder.bin"
        data = os.urandom(SIZE)
        self.plant(os.path.join(self.root, partial_name(name, SIZE) + ".state"), "empty folder")
        with Server(FERRYD, self.root) as server:
            self.cut_upload(server, name, data)
            self.resume_and_commit(server, name, data)

    def test_many_fifos_do_not_use_up_the_pool(self):
        # As many planted temporaries as the default pool has threads, and
        # more: each cut put checkpoints through one.
        server = Server(FERRYD, self.root)
        names = [f"many{i}.bin" for i in range(20)]
        try:
            for name in names:
                self.plant(os.path.join(self.root, partial_name(name, SIZE) + ".state.tmp"), "fifo")
            for name in names:
                self.cut_upload(server, name, os.urandom(SIZE))
            for name in names:
                state = os.path.join(self.root, partial_name(name, SIZE) + ".state")
                self.assertTrue(wait_until(lambda: os.path.exists(state), within=15), name)
            self.assertTrue(server.peer(timeout=10).put("after.bin", b"still serving")["ok"])
        finally:
            for path in self.planted:
                release_fifo(path)
            status = server.stop(timeout=20)
        self.assertEqual(status, 0, "ferryd did not stop cleanly on SIGTERM")

    def check_partial(self, kind, resume):
        name = "pl-" + kind.replace(" ", "-") + ".bin"
        data = os.urandom(SIZE)
        partial = os.path.join(self.root, partial_name(name, SIZE))
        if kind == "file of another user":
            self.planted.append(partial)
            with open(partial, "wb") as f:
                f.write(b"x" * HALF)
            os.chown(partial, 54321, 54321)
            with open(partial + ".state", "wb") as f:
                f.write(b"{}")
        else:
            self.plant(partial, kind)
        with Server(FERRYD, self.root, env={"UV_THREADPOOL_SIZE": "1"}) as server:
            peer = server.peer(timeout=10)
            done = peer.put(name, data, resume=resume)
            self.assertTrue(done["ok"], done)
            with open(os.path.join(self.root, name), "rb") as f:
                self.assertEqual(f.read(), data)
            self.assert_outside_unchanged()
            self.assertEqual(os.listdir(self.root), [name])
            # The name is the upload's again: a cut put of it keeps its bytes.
            self.cut_upload(server, name, data)
            self.resume_and_commit(server, name, data)

    def test_a_symlink_at_the_partial(self):
        self.check_partial("symlink", resume=False)
        self.check_partial("symlink", resume=True)

    def test_an_empty_folder_at_the_partial(self):
        self.check_partial("empty folder", resume=False)
        self.check_partial("empty folder", resume=True)

    def test_a_fifo_at_the_partial(self):
        self.check_partial("fifo", resume=False)
        self.check_partial("fifo", resume=True)

    def test_a_socket_at_the_partial(self):
        self.check_partial("socket", resume=True)

    def test_a_hard_link_at_the_partial(self):
        self.check_partial("hard link", resume=True)

    def test_a_file_of_another_user_at_the_partial(self):
        self.check_partial("file of another user", resume=True)

    def test_a_full_folder_at_the_partial_is_refused_naming_it(self):
        name = "pl-full.bin"
        partial = os.path.join(self.root, partial_name(name, SIZE))
        os.mkdir(partial)
        with open(os.path.join(partial, "keep"), "wb") as f:
            f.write(b"someone's")
        with Server(FERRYD, self.root) as server:
            peer = server.peer(timeout=10)
            reply = peer.put(name, os.urandom(SIZE), resume=True)
            self.assertFalse(reply["ok"], reply)
            self.assertEqual(reply["error"]["code"], "not_regular_file", reply)
            message = reply["error"]["message"]
            self.assertIn(partial_name(name, SIZE), message)
            self.assertIn("not empty", message)
            self.assertNotIn(f'"{name}" is not a regular file', message)
            self.assertTrue(peer.request({"op": "stats"})["ok"])
        with open(os.path.join(partial, "keep"), "rb") as f:
            self.assertEqual(f.read(), b"someone's")
        self.assertFalse(os.path.exists(os.path.join(self.root, name)))


if __name__ == "__main__":
    unittest.main()
