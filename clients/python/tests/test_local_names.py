"""A download never touches a file at its local names that ferry did not
make: the part (DEST.ferry-part), its sidecar (DEST.ferry-part.state) and
the sidecar's temporaries (DEST.ferry-part.state.tmp-XXXXXX). A user's file,
a link, a folder or a FIFO there is left byte for byte as it was (a FIFO
never hangs the download), and the get says which name to move away; what
ferry left there itself is still replaced or resumed. The C++ client's rules
(client/local_files.cpp; README.md, "Where a download lands")."""

import errno
import fcntl
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import threading
import unittest
from unittest import mock

from support import MTIME, Cut, ServerCase, cut_after, ferry_client, read, sha256, write

from ferry_client import local

MIB = 1 << 20
USERS = b"the user's own bytes, not ferry's\n"


def tree_of(path):
    """What stands at `path`, not followed: ("link", target), ("folder",),
    ("fifo",), ("file", bytes) or None."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return ("link", os.readlink(path))
    if stat.S_ISDIR(st.st_mode):
        return ("folder", sorted(os.listdir(path)))
    if stat.S_ISFIFO(st.st_mode):
        return ("fifo",)
    return ("file", read(path))


def release(fifo):
    """Lets a thread blocked opening `fifo` go on (whichever end it waits on)."""
    for flags in (os.O_WRONLY | os.O_NONBLOCK, os.O_RDONLY | os.O_NONBLOCK):
        try:
            os.close(os.open(fifo, flags))
        except OSError:
            pass


class LocalNameTests(ServerCase):
    SIZE = 5 * MIB + 3

    @classmethod
    def prepare(cls, root):
        cls.content = os.urandom(cls.SIZE)
        write(os.path.join(root, "file.bin"), cls.content, MTIME)
        cls.small = b"a small file\n"
        write(os.path.join(root, "small.bin"), cls.small, MTIME)

    def dest(self):
        return os.path.join(self.fresh_folder(), "file.bin")

    def cut(self, c, dest, at=MIB):
        """A get cut midway: leaves the part and its sidecar."""
        with self.assertRaises(Cut):
            c.get("file.bin", dest, progress=cut_after(at))
        self.assertTrue(os.path.isfile(local.part_path(dest)))
        self.assertTrue(os.path.isfile(local.state_path(dest)))

    def get_within(self, c, dest, fifos, timeout=30, **kwargs):
        """c.get in a thread: fails the test if it is still waiting after
        `timeout` (on a FIFO), releasing it first. Returns the Transfer or
        raises what the get raised."""
        outcome = {}

        def run():
            try:
                outcome["done"] = c.get("file.bin", dest, **kwargs)
            except BaseException as error:   # noqa: BLE001 - handed to the test
                outcome["error"] = error

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            for fifo in fifos:
                release(fifo)
            thread.join(timeout)
            self.fail(f"the get waited on a FIFO at {fifos}")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["done"]

    def assert_refused(self, c, dest, name, says, **kwargs):
        with self.assertRaises(ferry_client.LocalIOError) as caught:
            c.get("file.bin", dest, **kwargs)
        message = str(caught.exception)
        self.assertIn(repr(name), message)
        self.assertIn(says, message)
        self.assertIn("move it away", message)
        return caught.exception

    # -- 1. the part's name ---------------------------------------------------

    def test_a_file_at_the_part_name_that_ferry_did_not_make_is_refused_untouched(self):
        c = self.connect()
        elsewhere = os.path.join(self.fresh_folder(), "mine.txt")
        write(elsewhere, USERS)
        # Also with a sidecar of ferry's beside it that names another file.
        cases = {
            "a user's file": lambda part, dest: write(part, USERS),
            "a user's file beside a sidecar of another part": lambda part, dest: (
                write(part, USERS), self.stale_state(dest, other=True)),
            "a link to a user's file": lambda part, dest: os.symlink(elsewhere, part),
            "a folder": lambda part, dest: (os.mkdir(part), write(os.path.join(part, "keep"), USERS)),
        }
        for case, plant in cases.items():
            with self.subTest(case):
                dest = self.dest()
                part = local.part_path(dest)
                plant(part, dest)
                before, state_before = tree_of(part), tree_of(local.state_path(dest))
                self.assert_refused(c, dest, part, "left untouched" if before[0] == "file" else "neither follows")
                self.assertEqual(tree_of(part), before)
                self.assertEqual(tree_of(local.state_path(dest)), state_before)
                self.assertIsNone(tree_of(dest))
                self.assertEqual(read(elsewhere), USERS)
        # What ferry left there itself is still replaced: an empty file (a
        # kill before the mark), and an unmarked part its sidecar names.
        for case in ("empty", "named by its sidecar"):
            with self.subTest(case):
                dest = self.dest()
                part = local.part_path(dest)
                write(part, b"" if case == "empty" else b"x" * 100)
                if case != "empty":
                    self.stale_state(dest)
                self.assertEqual(c.get("file.bin", dest).offset, 0)
                self.assertEqual(read(dest), self.content)
                self.assertEqual(os.listdir(os.path.dirname(dest)), ["file.bin"])

    def born(self, path):
        """The birth time of the file at `path` in nanoseconds, as stat(1)
        reads it with statx (not the library's own reading); the test is
        skipped where the file system does not keep one (there the device
        and inode decide, as in the C++ client)."""
        if shutil.which("stat") is None:
            self.skipTest("no stat(1)")
        said = subprocess.run(["stat", "-c", "%.9W", "--", path], capture_output=True, text=True)
        seconds, _, fraction = said.stdout.strip().partition(".")
        if said.returncode != 0 or not seconds.isdigit() or seconds == "0" or len(fraction) != 9:
            self.skipTest("no birth time (statx) on this file system")
        born = int(seconds) * 1_000_000_000 + int(fraction)
        self.assertLessEqual(born, os.stat(path).st_ctime_ns)
        return born

    def test_the_birth_time_is_read_as_statx_gives_it(self):
        path = os.path.join(self.fresh_folder(), "born")
        write(path, USERS)
        fd = os.open(path, os.O_RDONLY)
        try:
            self.assertEqual(local.birth_time_ns(fd), self.born(path))
        finally:
            os.close(fd)

    def sidecar_for(self, dest, st, held, digest, ctime_ns):
        """A sidecar of ferry's (version 3) for the first `held` bytes of
        file.bin, naming the file `st` as its part with `ctime_ns`."""
        with open(local.state_path(dest), "w") as f:
            json.dump({"version": 3, "name": "file.bin", "size": self.SIZE, "bytes_held": held,
                       "hash_state": "ferry_client:sha256", "mtime": MTIME, "prefix_digest": digest,
                       "part": [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, ctime_ns]}, f)
        os.chmod(local.state_path(dest), 0o600)

    def test_a_sidecar_does_not_vouch_for_a_file_born_after_it_recorded_the_part(self):
        """Inode numbers are reused at once: a file of the user's saved at
        the part's name after ferry's part was deleted can take its device
        and inode. The sidecar recorded the part's ctime; a file born after
        it is not that part (the C++ is_ferry_part's statx(STATX_BTIME))."""
        c = self.connect()
        held = 100
        mine = self.content[:held]   # even bytes that hash to the sidecar's digest
        for case in ("its digest matches", "its digest does not"):
            digest = sha256(mine) if case == "its digest matches" else "00" * 32
            with self.subTest(case, born="after the sidecar's ctime"):
                dest = self.dest()
                part = local.part_path(dest)
                write(part, mine)
                st = os.stat(part)
                self.sidecar_for(dest, st, held, digest, self.born(part) - 1)
                before, state_before = tree_of(part), tree_of(local.state_path(dest))
                self.assert_refused(c, dest, part, "left untouched")
                self.assertEqual(tree_of(part), before)   # byte for byte, not truncated
                self.assertEqual(os.stat(part).st_ino, st.st_ino)
                self.assertEqual(tree_of(local.state_path(dest)), state_before)
                self.assertIsNone(tree_of(dest))
            with self.subTest(case, born="before (the sidecar written for the real part)"):
                dest = self.dest()
                part = local.part_path(dest)
                write(part, mine)
                st = os.stat(part)
                self.born(part)
                self.sidecar_for(dest, st, held, digest, st.st_ctime_ns)
                done = c.get("file.bin", dest)
                self.assertEqual(done.offset, held if case == "its digest matches" else 0)
                self.assertEqual(read(dest), self.content)
                self.assertEqual(os.listdir(os.path.dirname(dest)), ["file.bin"])

    def test_a_resumed_part_is_not_cut_back_unless_it_is_still_the_file_vouched_for(self):
        """Between load_resumable's check and the reopen, the part is deleted
        and a user's file saved at its name: nothing of it is truncated or
        written, whether it has a new inode number or took the freed one
        (simulated: the checked part's identity made the new file's, with
        the sidecar's ctime before its birth)."""
        c = self.connect()
        for case in ("deleted and saved anew", "the freed inode number"):
            with self.subTest(case):
                dest = self.dest()
                self.cut(c, dest)
                part = local.part_path(dest)
                real = local.load_resumable

                def then_replace(*args, **kwargs):
                    found = real(*args, **kwargs)
                    self.assertIsNotNone(found)
                    os.unlink(part)
                    write(part, USERS)
                    if case == "the freed inode number":
                        st = os.stat(part)
                        found.part_id = (st.st_dev, st.st_ino)
                        with open(local.state_path(dest)) as f:
                            state = json.load(f)
                        state["part"] = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, self.born(part) - 1]
                        found.state = state
                    return found

                with mock.patch.object(local, "load_resumable", then_replace):
                    with self.assertRaises(ferry_client.LocalIOError) as caught:
                        c.get("file.bin", dest)
                self.assertIn(repr(part), str(caught.exception))
                self.assertEqual(read(part), USERS)   # not cut back, not written on
                self.assertIsNone(tree_of(dest))

    def stale_state(self, dest, other=False):
        """A sidecar of ferry's (version 3) whose part is the file at the
        part's name, or (other) some other file; its digest matches nothing."""
        st = os.stat(local.part_path(dest)) if not other else os.stat(os.path.dirname(dest))
        with open(local.state_path(dest), "w") as f:
            json.dump({"version": 3, "name": "file.bin", "size": self.SIZE, "bytes_held": 10,
                       "hash_state": "ferry_client:sha256", "mtime": MTIME, "prefix_digest": "00" * 32,
                       "part": [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]}, f)

    # -- 2. the sidecar's temporary ------------------------------------------

    def test_a_link_or_a_users_file_at_the_old_temporary_name_is_left_alone(self):
        c = self.connect()
        elsewhere = os.path.join(self.fresh_folder(), "mine.txt")
        for case in ("a link to a user's file", "a user's file", "a FIFO"):
            with self.subTest(case):
                write(elsewhere, USERS)
                dest = self.dest()
                temporary = local.state_path(dest) + ".tmp"
                if case == "a link to a user's file":
                    os.symlink(elsewhere, temporary)
                elif case == "a user's file":
                    write(temporary, USERS)
                else:
                    os.mkfifo(temporary)
                before = tree_of(temporary)
                with self.assertRaises(Cut):   # its checkpoint writes the sidecar
                    self.get_within(c, dest, [temporary], progress=cut_after(MIB))
                self.assertEqual(tree_of(temporary), before)
                self.assertEqual(read(elsewhere), USERS)
                self.assertTrue(os.path.isfile(local.state_path(dest)))
                done = self.get_within(c, dest, [temporary])
                self.assertGreater(done.offset, 0)
                self.assertEqual(read(dest), self.content)
                self.assertEqual(tree_of(temporary), before)
                self.assertEqual(read(elsewhere), USERS)

    def test_the_temporary_is_a_fresh_private_name_and_none_is_left(self):
        c = self.connect()
        dest = self.dest()
        made = []
        real_open = os.open

        def watching_open(path, flags, mode=0o777, **kwargs):
            if isinstance(path, str) and path.startswith(local.state_path(dest) + ".tmp"):
                made.append((path, flags, mode))
            return real_open(path, flags, mode, **kwargs)

        with mock.patch.object(local.os, "open", watching_open):
            self.cut(c, dest)
        self.assertEqual(len(made), 1)
        path, flags, mode = made[0]
        suffix = path[len(local.state_path(dest)):]
        self.assertRegex(suffix, r"^\.tmp-[A-Za-z0-9]{6}$")
        for flag in (os.O_CREAT, os.O_EXCL, os.O_NOFOLLOW):
            self.assertTrue(flags & flag)
        self.assertEqual(mode, 0o600)
        self.assertEqual(sorted(os.listdir(os.path.dirname(dest))),
                         sorted(os.path.basename(p) for p in (local.part_path(dest), local.state_path(dest))))
        self.assertEqual(os.stat(local.state_path(dest)).st_mode & 0o777, 0o600)

    def test_the_part_name_leaves_room_for_the_temporary_as_the_cpp_client(self):
        """ferry's part_path: names of 228 bytes and more take the hidden
        hashed name, so NAME.ferry-part.state.tmp-XXXXXX fits 255 bytes."""
        folder = self.fresh_folder()
        fits = os.path.join(folder, "a" * 227)
        self.assertEqual(local.part_path(fits), fits + ".ferry-part")
        self.assertEqual(len(os.path.basename(local.state_path(fits))) + len(".tmp-XXXXXX"), 255)
        long = os.path.join(folder, "a" * 228)
        self.assertEqual(local.part_path(long),
                         os.path.join(folder, "." + sha256(b"a" * 228) + ".ferry-part"))
        c = self.connect()
        self.cut(c, long)   # the checkpoint's temporary fits
        self.assertGreater(c.get("file.bin", long).offset, 0)
        self.assertEqual(read(long), self.content)

    # -- 3. the sidecar's name -----------------------------------------------

    def test_what_is_not_a_sidecar_at_its_name_is_refused_before_the_get(self):
        """Named by its kind, as the part's message does; a regular file is
        "a file ferry did not write"."""
        c = self.connect()
        elsewhere = os.path.join(self.fresh_folder(), "mine.json")
        cases = {
            "a user's file": lambda state: write(state, USERS),
            "a user's JSON of another format": lambda state: write(state, b'{"version": 1, "name": "x"}\n'),
            "an empty file": lambda state: write(state, b""),
            "a folder": lambda state: (os.mkdir(state), write(os.path.join(state, "keep"), USERS)),
            "a link to a user's file": lambda state: os.symlink(elsewhere, state),
            "a link to a sidecar": lambda state: (self.stale_state(os.path.join(os.path.dirname(elsewhere), "x")),
                                                  os.symlink(local.state_path(
                                                      os.path.join(os.path.dirname(elsewhere), "x")), state)),
            "a FIFO": lambda state: os.mkfifo(state),
        }
        write(elsewhere, USERS)
        write(os.path.join(os.path.dirname(elsewhere), "x.ferry-part"), b"")
        for case, plant in cases.items():
            with self.subTest(case):
                dest = self.dest()
                state = local.state_path(dest)
                plant(state)
                before = tree_of(state)
                with self.assertRaises(ferry_client.LocalIOError) as caught:
                    self.get_within(c, dest, [state])
                message = str(caught.exception)
                self.assertIn(repr(state), message)
                kind = {"folder": "is a folder", "link": "is a symbolic link",
                        "fifo": "is a FIFO"}.get(before[0], "holds a file ferry did not write")
                self.assertIn(", the name this download's resume state goes by, " + kind + ":", message)
                self.assertIn("move it away", message)
                self.assertEqual(tree_of(state), before)
                self.assertEqual(read(elsewhere), USERS)
                # Refused before the download: no part, no file.
                self.assertEqual(sorted(os.listdir(os.path.dirname(dest))), [os.path.basename(state)])

    def test_a_users_file_put_at_the_sidecar_name_meanwhile_is_not_replaced_or_removed(self):
        c = self.connect()
        for case in ("a checkpoint", "the publish"):
            with self.subTest(case):
                dest = self.dest()
                state = local.state_path(dest)

                def plant(done, total):
                    if done >= MIB and not os.path.lexists(state):
                        write(state, USERS)
                        if case == "a checkpoint":
                            raise Cut(done)

                if case == "a checkpoint":
                    with self.assertRaises(Cut):
                        c.get("file.bin", dest, progress=plant)
                    # Not recorded: the part is dropped, the user's file stays.
                    self.assertFalse(os.path.lexists(local.part_path(dest)))
                else:
                    c.get("file.bin", dest, progress=plant)
                    self.assertEqual(read(dest), self.content)
                self.assertEqual(read(state), USERS)

    # -- 4. reading the sidecar (and the part) to resume ----------------------

    def test_a_resume_follows_no_link_and_builds_on_no_second_name(self):
        c = self.connect()
        for case in ("a link at the sidecar", "a second name of the sidecar", "a second name of the part"):
            with self.subTest(case):
                dest = self.dest()
                self.cut(c, dest)
                part, state = local.part_path(dest), local.state_path(dest)
                keep = os.path.join(self.fresh_folder(), "kept")
                if case == "a link at the sidecar":
                    os.rename(state, keep)
                    os.symlink(keep, state)
                elif case == "a second name of the sidecar":
                    os.link(state, keep)
                else:
                    os.link(part, keep)
                kept, at_state = read(keep), tree_of(state)
                if case == "a link at the sidecar":
                    # Not read through, and never removed: the get is refused.
                    with self.assertRaises(ferry_client.LocalIOError) as caught:
                        c.get("file.bin", dest)
                    self.assertIn(repr(state), str(caught.exception))
                    self.assertIn("is a symbolic link", str(caught.exception))
                    self.assertEqual(tree_of(state), at_state)
                else:
                    # Not resumed from: the download starts over in new files.
                    self.assertEqual(c.get("file.bin", dest).offset, 0)
                    self.assertEqual(read(dest), self.content)
                    self.assertEqual(sorted(os.listdir(os.path.dirname(dest))), ["file.bin"])
                self.assertEqual(read(keep), kept)

    def test_a_part_given_a_second_name_after_it_was_checked_is_not_written(self):
        """Swapped between load_resumable and the open: started over."""
        c = self.connect()
        dest = self.dest()
        self.cut(c, dest)
        keep = os.path.join(self.fresh_folder(), "kept")
        real = local.load_resumable

        def then_link(*args, **kwargs):
            found = real(*args, **kwargs)
            os.link(local.part_path(dest), keep)
            return found

        cut = read(local.part_path(dest))
        with mock.patch.object(local, "load_resumable", then_link):
            done = c.get("file.bin", dest)
        self.assertEqual(done.offset, 0)
        self.assertEqual(read(dest), self.content)
        self.assertEqual(read(keep), cut)   # not truncated, not written on
        self.assertEqual(sorted(os.listdir(os.path.dirname(dest))), ["file.bin"])

    # -- 5. FIFOs --------------------------------------------------------------

    def test_a_fifo_at_the_part_or_sidecar_name_is_refused_without_waiting(self):
        c = self.connect()
        for which in ("part", "sidecar", "both"):
            with self.subTest(which):
                dest = self.dest()
                part, state = local.part_path(dest), local.state_path(dest)
                fifos = [p for p, w in ((part, "part"), (state, "sidecar")) if which in (w, "both")]
                for fifo in fifos:
                    os.mkfifo(fifo)
                with self.assertRaises(ferry_client.LocalIOError) as caught:
                    self.get_within(c, dest, fifos)
                message = str(caught.exception)
                self.assertIn(repr(fifos[0]), message)
                self.assertIn("is a FIFO", message)
                for fifo in fifos:
                    self.assertEqual(tree_of(fifo), ("fifo",))
                self.assertIsNone(tree_of(dest))

    # -- 6. a destination another download (or program) holds locked ------------

    def assert_busy(self, caught, name):
        """Refused as busy (Retryable), as the ferry client's exit status 6:
        the lock goes when the other download is over, so a retry helps; not
        local_io (LocalIOError), which says retrying cannot."""
        error = caught.exception
        self.assertIsInstance(error, ferry_client.Retryable)
        self.assertNotIsInstance(error, ferry_client.LocalIOError)
        self.assertEqual(error.code, "busy")
        self.assertIsNone(error.reply)   # found on this side, not the server's
        self.assertIn(repr(name), error.message)
        self.assertIn("is being written by another download", error.message)
        return error.message

    def test_a_destination_held_locked_is_not_replaced(self):
        """A file under flock, as a running download holds its part, is left
        as it is: refused (busy) before the request, or just before the
        rename when it was locked meanwhile."""
        c = self.connect()
        for when in ("before the get", "during the get"):
            with self.subTest(when):
                dest = self.dest()
                write(dest, USERS)
                holder = []

                def lock(done=None, total=None):
                    if not holder:
                        fd = os.open(dest, os.O_RDONLY)
                        fcntl.flock(fd, fcntl.LOCK_EX)
                        holder.append(fd)
                        self.addCleanup(os.close, fd)

                if when == "before the get":
                    lock()
                with self.assertRaises(ferry_client.FerryError) as caught:
                    c.get("file.bin", dest, progress=None if when == "before the get" else lock)
                message = self.assert_busy(caught, dest)
                self.assertIn("is being written by another download (or held locked by another program): "
                              "it is left as it is", message)
                self.assertNotIn("local_io", message)
                self.assertEqual(read(dest), USERS)
                if when == "before the get":   # nothing requested, nothing made
                    self.assertEqual(os.listdir(os.path.dirname(dest)), ["file.bin"])
                fcntl.flock(holder[0], fcntl.LOCK_UN)
                done = c.get("file.bin", dest)   # once let go, it is replaced
                self.assertEqual(read(dest), self.content)
                self.assertEqual(os.listdir(os.path.dirname(dest)), ["file.bin"])
                self.assertGreaterEqual(done.size, 0)

    def test_a_get_onto_a_running_downloads_part_does_not_take_its_bytes(self):
        """`get small -o big.ferry-part` while `get big` runs."""
        c, other = self.connect(), self.connect()
        dest = self.dest()
        part = local.part_path(dest)
        refused = []

        def meanwhile(done, total):
            if done >= MIB and not refused:
                with self.assertRaises(ferry_client.FerryError) as caught:
                    other.get("small.bin", part)
                refused.append(self.assert_busy(caught, part))

        done = c.get("file.bin", dest, progress=meanwhile)
        self.assertEqual(len(refused), 1)
        self.assertEqual(done.offset, 0)
        self.assertEqual(read(dest), self.content)
        self.assertEqual(os.listdir(os.path.dirname(dest)), ["file.bin"])

    def test_a_part_another_download_holds_locked_is_busy_and_left_alone(self):
        """A part of ferry's, with a sidecar that vouches for it, held locked
        as a running download holds it: the get fails at once with busy
        (Retryable), never local_io, whether it resumes (refused once the
        server is sending: that transfer is dropped, so the Client goes on)
        or starts over (refused before the request); the part and its
        sidecar are not written to, nothing is published. Released, the
        same Client gets the file."""
        c = self.connect()
        for resume in (True, False):
            with self.subTest(resume=resume):
                dest = self.dest()
                self.cut(c, dest)   # another download's part, vouched for by its sidecar
                part, state = local.part_path(dest), local.state_path(dest)
                before = (read(part), read(state))
                held = os.open(part, os.O_RDONLY | os.O_CLOEXEC)
                self.addCleanup(os.close, held)
                fcntl.flock(held, fcntl.LOCK_EX)
                with self.assertRaises(ferry_client.FerryError) as caught:
                    c.get("file.bin", dest, resume=resume)
                message = self.assert_busy(caught, part)
                self.assertIn("nothing was written to it", message)
                self.assertEqual((read(part), read(state)), before)
                self.assertIsNone(tree_of(dest))
                fcntl.flock(held, fcntl.LOCK_UN)
                done = c.get("file.bin", dest, resume=resume)
                self.assertEqual(read(dest), self.content)
                self.assertEqual(done.offset > 0, resume)
                self.assertEqual(os.listdir(os.path.dirname(dest)), ["file.bin"])

    def test_a_new_part_another_download_locked_at_once_is_left_to_it(self):
        """Made by this get (O_EXCL) but locked by another download before
        this one could lock it: busy, and the file is left, not removed from
        under the download that holds it."""
        folder = self.fresh_folder()
        part = os.path.join(folder, "x.ferry-part")
        real_flock = fcntl.flock
        held = []

        def another_download_first(fd, operation):
            if not held:
                held.append(os.open(part, os.O_RDONLY | os.O_CLOEXEC))
                self.addCleanup(os.close, held[0])
                real_flock(held[0], fcntl.LOCK_EX)
            return real_flock(fd, operation)

        with mock.patch.object(local.fcntl, "flock", another_download_first):
            with self.assertRaises(ferry_client.FerryError) as caught:
                local.create_part(part, part + ".state", 0o600)
        self.assert_busy(caught, part)
        self.assertEqual(tree_of(part), ("file", b""))

    def create_part_while_the_user_renames(self, function, at):
        """A stale part of ferry's (empty: a kill before its mark) at
        x.ferry-part and a user's mine.txt; create_part runs while os.`function`
        ("unlink" or "rename") first renames mine.txt onto the part's name, the
        first time `at(its arguments)` holds. The get is refused, the user's
        file stands at the part's name, and nothing else is left."""
        folder = self.fresh_folder()
        part = os.path.join(folder, "x.ferry-part")
        mine = os.path.join(folder, "mine.txt")
        write(part, b"")
        write(mine, USERS)
        real, real_rename = getattr(os, function), os.rename
        swapped = []

        def user_renames_first(*args, **kwargs):
            if not swapped and at(args):
                swapped.append(args)
                real_rename(mine, part)
            return real(*args, **kwargs)

        with mock.patch.object(local.os, function, user_renames_first):
            with self.assertRaises(ferry_client.FerryError):
                fd, _ = local.create_part(part, part + ".state", 0o600)
                os.close(fd)
        self.assertEqual(len(swapped), 1)
        self.assertEqual(tree_of(part), ("file", USERS))
        self.assertEqual(sorted(os.listdir(folder)), ["x.ferry-part"])

    def test_a_users_file_renamed_onto_a_stale_part_right_before_its_removal_stays(self):
        """Attack round 21: a stale part of ferry's (empty: a kill before its
        mark) is replaced by a new one, and only that file is removed. A user's
        file renamed onto the part's name between the look and the unlink used
        to be the one unlinked; the part is now set aside under a fresh name,
        checked there and unlinked there (the C++ client's unlink_if_still).
        The user's file stays, and the get is refused as for any user's file at
        the part's name."""
        self.create_part_while_the_user_renames("unlink", lambda args: True)

    def test_a_users_file_renamed_onto_a_stale_part_right_before_it_is_set_aside_goes_back(self):
        """The other instant: the user's rename lands before the stale part is
        set aside, so what is set aside is the user's file. It is not the file
        looked at: it goes back to the part's name (never over a name taken
        since) and stays, and the get is refused as for any user's file there."""
        self.create_part_while_the_user_renames(
            "rename", lambda args: os.path.basename(args[1]).startswith(".ferry-removing-"))

    def test_a_user_replaces_a_read_only_file_of_their_own_and_gets_under_a_umask_without_u_w(self):
        """Attack round 21, F1 (as in the C++ client): the part took the
        published mode's owner bits, 0400 for a 0444 target or under umask
        0222, and marking it needs write permission, so such a get failed for
        anyone but root. The part is now its owner's 0600 while it downloads;
        the file still gets the replaced file's mode (or 0666 less the umask),
        and no mark. Run as uid 1234, in a process of its own."""
        folder = self.fresh_folder()
        for path in (self.scratch.base, self.local):
            os.chmod(path, 0o755)
        os.chmod(folder, 0o755)
        os.chown(folder, 1234, 1234)
        target = os.path.join(folder, "file.bin")
        write(target, b"old")
        os.chown(target, 1234, 1234)
        os.chmod(target, 0o444)
        script = ("import os, sys; sys.path.insert(0, sys.argv[1]); import ferry_client; os.umask(int(sys.argv[4], 8)); "
                  "c = ferry_client.connect(sys.argv[2], timeout=20); c.get('file.bin', sys.argv[3]); c.close()")
        package = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
        for dest, umask, mode in ((target, "022", 0o444), (os.path.join(folder, "new-0222"), "0222", 0o444),
                                  (os.path.join(folder, "new-0277"), "0277", 0o400)):
            with self.subTest(dest=os.path.basename(dest), umask=umask):
                ran = subprocess.run(["setpriv", "--reuid", "1234", "--regid", "1234", "--clear-groups",
                                      sys.executable, "-c", script, package, self.address, dest, umask],
                                     capture_output=True, timeout=60)
                self.assertEqual(ran.returncode, 0, ran.stderr)
                self.assertEqual(read(dest), self.content)
                st = os.lstat(dest)
                self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (1234, mode))
                with self.assertRaises(OSError):
                    os.getxattr(dest, local.PART_MARK, follow_symlinks=False)
        self.assertEqual(sorted(os.listdir(folder)), ["file.bin", "new-0222", "new-0277"])

    def test_a_new_part_another_download_takes_before_its_lock_is_busy(self):
        """Attack round 20, F1: made by this get (O_EXCL), but before its lock
        another download met it empty and unlocked, took it for a leftover of
        ferry's, removed it and made its own. This get must not write into the
        file that lost its name (its publish then failed with local_io): busy,
        and the other download's part is left to it."""
        folder = self.fresh_folder()
        part = os.path.join(folder, "x.ferry-part")
        real_flock = fcntl.flock
        other = []

        def another_download_meanwhile(fd, operation):
            if not other:
                other.append(None)
                other[0] = local.create_part(part, part + ".state", 0o600)
                self.addCleanup(os.close, other[0][0])
            return real_flock(fd, operation)

        with mock.patch.object(local.fcntl, "flock", another_download_meanwhile):
            with self.assertRaises(ferry_client.FerryError) as caught:
                fd, _ = local.create_part(part, part + ".state", 0o600)
                os.close(fd)
        self.assert_busy(caught, part)
        # The name holds the other download's part, still locked by it.
        self.assertEqual(os.stat(part).st_ino, os.fstat(other[0][0]).st_ino)
        probe = os.open(part, os.O_RDONLY | os.O_CLOEXEC)
        self.addCleanup(os.close, probe)
        with self.assertRaises(BlockingIOError):
            real_flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def test_two_downloads_to_one_name_the_second_is_busy(self):
        """Two gets to one DEST: the second finds the first's part locked and
        is refused with busy before it asks for anything; the first is not
        disturbed, and the second, retried once the first is over, gets it."""
        c, other = self.connect(), self.connect()
        dest = self.dest()
        refused = []

        def meanwhile(done, total):
            if done >= MIB and not refused:
                with self.assertRaises(ferry_client.FerryError) as caught:
                    other.get("file.bin", dest)
                refused.append(self.assert_busy(caught, local.part_path(dest)))

        c.get("file.bin", dest, progress=meanwhile)
        self.assertEqual(len(refused), 1)
        self.assertEqual(read(dest), self.content)
        again = other.get("file.bin", dest)
        self.assertEqual(again.offset, 0)
        self.assertEqual(read(dest), self.content)
        self.assertEqual(os.listdir(os.path.dirname(dest)), ["file.bin"])

    # -- the mark, the mode ------------------------------------------------------

    def test_the_part_is_private_and_marked_while_it_downloads(self):
        c = self.connect()
        folder = self.fresh_folder()
        dest = os.path.join(folder, "file.bin")
        write(dest, b"old", MTIME)
        os.chmod(dest, 0o640)
        seen = []

        def look(done, total):
            if done and not seen:
                st = os.stat(local.part_path(dest))
                seen.append((st.st_mode & 0o777, os.getxattr(local.part_path(dest), local.PART_MARK)))

        c.get("file.bin", dest, progress=look)
        self.assertEqual(seen, [(0o600, b"1")])
        self.assertEqual(os.stat(dest).st_mode & 0o777, 0o640)   # the mode of the file it replaced
        with self.assertRaises(OSError):
            os.getxattr(dest, local.PART_MARK)   # the mark comes off once published

    def test_a_replaced_file_keeps_its_access_acl(self):
        # user::rw- user:1234:--- group::r-- mask::r-- other::r-- in acl(5)'s
        # extended-attribute form: a file uid 1234 may not read.
        entries = [(0x01, 6, 0xffffffff), (0x02, 0, 1234), (0x04, 4, 0xffffffff), (0x10, 4, 0xffffffff),
                   (0x20, 4, 0xffffffff)]
        acl = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, perm, uid) for tag, perm, uid in entries)
        c = self.connect()
        dest = os.path.join(self.fresh_folder(), "file.bin")
        write(dest, b"old", MTIME)
        try:
            os.setxattr(dest, "system.posix_acl_access", acl)
        except OSError as error:
            self.skipTest("this file system keeps no ACL: %s" % error)
        c.get("file.bin", dest)
        self.assertEqual(read(dest), self.content)
        self.assertEqual(os.getxattr(dest, "system.posix_acl_access"), acl)   # dropped, uid 1234 could read it
        self.assertEqual(os.stat(dest).st_mode & 0o777, 0o644)

    def test_a_replaced_file_without_an_acl_gets_none_from_its_folders_default(self):
        # A default ACL giving uid 1234 everything: the part, made in the
        # folder, inherits it, and the old file (0640, no ACL) never had it.
        entries = [(0x01, 6, 0xffffffff), (0x02, 7, 1234), (0x04, 4, 0xffffffff), (0x10, 7, 0xffffffff),
                   (0x20, 4, 0xffffffff)]
        default = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, perm, uid) for tag, perm, uid in entries)
        c = self.connect()
        folder = self.fresh_folder()
        dest = os.path.join(folder, "file.bin")
        write(dest, b"old", MTIME)
        os.chmod(dest, 0o640)
        try:
            os.setxattr(folder, "system.posix_acl_default", default)
        except OSError as error:
            self.skipTest("this file system keeps no ACL: %s" % error)
        c.get("file.bin", dest)
        self.assertEqual(read(dest), self.content)
        with self.assertRaises(OSError):
            os.getxattr(dest, "system.posix_acl_access")   # inherited, uid 1234 could read it
        self.assertEqual(os.stat(dest).st_mode & 0o777, 0o640)

    def test_without_user_xattrs_the_sidecar_names_the_part_before_its_first_byte(self):
        c = self.connect()
        dest = self.dest()
        seen = []

        def refuse(*args, **kwargs):
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

        def look(done, total):
            if not seen:
                seen.append(os.path.isfile(local.state_path(dest)))
            if done >= MIB:
                raise Cut(done)

        with mock.patch.object(local.os, "setxattr", refuse):
            with self.assertRaises(Cut):
                c.get("file.bin", dest, progress=look)
        self.assertEqual(seen, [True])
        with self.assertRaises(OSError):
            os.getxattr(local.part_path(dest), local.PART_MARK)
        # That part is ferry's: resumed, and replaced when not resumed.
        self.assertGreater(c.get("file.bin", dest).offset, 0)
        self.assertEqual(read(dest), self.content)
        with mock.patch.object(local.os, "setxattr", refuse):
            with self.assertRaises(Cut):
                c.get("file.bin", dest, progress=cut_after(MIB))
        self.assertEqual(c.get("file.bin", dest, resume=False).offset, 0)
        self.assertEqual(read(dest), self.content)


if __name__ == "__main__":
    unittest.main()
