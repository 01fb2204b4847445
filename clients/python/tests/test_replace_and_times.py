"""Three version-2 additions of the wire through ferry_client against a
real ferryd: a put that never replaces (commit's ``replace: false``,
capability "commit_replace", PROTOCOL.md 4.5), hello's ``mtime_limits``
(4.1) as the library uses them (held_mtime, a put's and a set_mtime's
time), and permission bits (file information's and put's ``mode``,
capability "mode", 3.3 and 4.5: a new copy takes its source's bits, a
replaced file keeps its own, both ways); and the smaller fields beside
them: a listing's ``holding_unlisted`` (4.2) and hello's ``max_data_frame``.

The malformed hellos a real ferryd never sends are in test_vectors.py; the
malformed ``mode`` replies in test_server_replies.py."""

import io
import os
import shutil
import subprocess
import stat
import time
import unittest

from support import MTIME, Cut, ServerCase, cut_after, ferry_client, read, sha256, write

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


class NoReplaceTests(ServerCase):
    def setUp(self):
        self.c = self.connect()
        self.folder = os.path.join(self.root, self.id().rsplit(".", 1)[-1])
        os.makedirs(self.folder)

    def remote(self, name):
        return os.path.relpath(os.path.join(self.folder, name), self.root)

    def partials(self):
        return [n for n in os.listdir(self.root) if n.startswith(".ferry-partial")]

    def test_hello_announces_commit_replace(self):
        self.assertIn("commit_replace", self.c.capabilities)

    def test_a_file_already_there_is_exists_before_any_byte_is_sent(self):
        target = os.path.join(self.folder, "a.txt")
        write(target, b"theirs", MTIME)
        received = self.c.stats()["bytes"]["in"]
        with self.assertRaises(ferry_client.Conflict) as caught:
            self.c.put(io.BytesIO(b"mine, which is longer"), self.remote("a.txt"), replace=False)
        self.assertEqual(caught.exception.code, "exists")
        self.assertEqual(read(target), b"theirs")
        self.assertEqual(self.c.stats()["bytes"]["in"], received)   # not one byte went out
        # A free name is put as any other.
        done = self.c.put(io.BytesIO(b"new"), self.remote("b.txt"), replace=False)
        self.assertEqual((done.size, done.digest), (3, sha256(b"new")))
        self.assertEqual(read(os.path.join(self.folder, "b.txt")), b"new")

    def test_a_file_that_appears_during_the_upload_is_never_replaced(self):
        """The name is free at the put; another program writes a file there
        while the bytes go out: the commit is exists, that file stays as it
        is, nothing of the upload is left, and the connection goes on."""
        target = os.path.join(self.folder, "late.bin")
        content = os.urandom(3 << 20)

        def appear(done, total):
            if done > 0 and not os.path.exists(target):
                write(target, b"theirs", MTIME)

        with self.assertRaises(ferry_client.Conflict) as caught:
            self.c.put(io.BytesIO(content), self.remote("late.bin"), replace=False, progress=appear)
        self.assertEqual(caught.exception.code, "exists")
        self.assertIsNotNone(caught.exception.reply)   # the server's word, at the commit
        self.assertEqual(read(target), b"theirs")
        self.assertEqual(self.partials(), [])
        self.assertEqual(self.c.stat(self.remote("late.bin")).size, 6)

    def test_the_upload_level_commit_without_replace(self):
        target = os.path.join(self.folder, "low.bin")
        for opened, committed in ((False, None), (True, False)):
            with self.subTest(open_put_replace=opened, commit_replace=committed):
                if os.path.exists(target):
                    os.remove(target)
                upload = self.c.open_put(self.remote("low.bin"), 4, replace=opened)
                upload.write(b"mine")
                write(target, b"theirs", MTIME)
                with self.assertRaises(ferry_client.Conflict):
                    upload.commit(sha256(b"mine"), replace=committed)
                self.assertEqual(read(target), b"theirs")
                self.assertEqual(self.partials(), [])
        # replace=True at the commit overrides open_put's False: the commit as it always was.
        upload = self.c.open_put(self.remote("low.bin"), 4, replace=False)
        upload.write(b"mine")
        self.assertEqual(upload.commit(sha256(b"mine"), replace=True)["size"], 4)
        self.assertEqual(read(target), b"mine")

    def test_refused_where_the_server_would_replace(self):
        """An older ferryd ignores replace: false and replaces: nothing is
        sent to it, and the error says why and what the caller can do."""
        target = os.path.join(self.folder, "old.txt")
        write(target, b"theirs", MTIME)
        self.c.capabilities = [c for c in self.c.capabilities if c != "commit_replace"]   # an older ferryd
        received = self.c.stats()["bytes"]["in"]
        for attempt in (lambda: self.c.put(io.BytesIO(b"mine"), self.remote("new.txt"), replace=False),
                        lambda: self.c.open_put(self.remote("new.txt"), 4, replace=False)):
            with self.assertRaises(ferry_client.UnsupportedVersion) as caught:
                attempt()
            self.assertIn("commit_replace", caught.exception.message)
        self.assertEqual(self.c.stats()["bytes"]["in"], received)
        self.assertFalse(os.path.exists(os.path.join(self.folder, "new.txt")))
        # Refused at the commit too, before it is sent: the upload is still open.
        upload = self.c.open_put(self.remote("old.txt"), 4)
        upload.write(b"mine")
        with self.assertRaises(ferry_client.UnsupportedVersion):
            upload.commit(sha256(b"mine"), replace=False)
        self.assertFalse(upload.done)
        self.assertEqual(upload.abort(discard=True)["kept"], False)
        self.assertEqual(read(target), b"theirs")

    def test_a_version_1_connection_cannot_refuse_to_replace(self):
        c = self.connect(version=1)
        self.assertNotIn("commit_replace", c.capabilities)
        with self.assertRaises(ferry_client.UnsupportedVersion):
            c.put(io.BytesIO(b"x"), "v1.txt", replace=False)
        self.assertFalse(os.path.exists(os.path.join(self.root, "v1.txt")))


class MtimeLimitTests(ServerCase):
    def setUp(self):
        self.c = self.connect()

    def held_here(self, mtime):
        """What the served folder's file system holds of ``mtime``, asked of
        it directly (a scratch file beside the served folder, same file
        system), or None where Python cannot set such a time."""
        probe = os.path.join(self.local, "probe")
        write(probe, b"")
        try:
            os.utime(probe, (mtime, mtime))
        except (OSError, OverflowError, ValueError):
            return None
        return os.stat(probe).st_mtime_ns // 10**9

    def test_hello_gives_the_limits_of_the_served_file_system(self):
        limits = self.c.mtime_limits
        self.assertIsInstance(limits, ferry_client.MtimeLimits)
        self.assertLessEqual(limits.min, limits.max)
        self.assertGreaterEqual(limits.step, 1)
        for asked in (MTIME, 2**40, -2**40, 2**33 + 1):
            here = self.held_here(asked)
            if here is not None:
                self.assertEqual(self.c.held_mtime(asked), here, asked)

    def test_a_put_and_a_set_mtime_hold_a_time_as_the_limits_say(self):
        for i, asked in enumerate((2**62, -2**62, INT64_MAX, INT64_MIN, 1_700_000_001)):
            with self.subTest(asked=asked):
                name = f"t{i}.bin"
                done = self.c.put(io.BytesIO(b"t"), name, mtime=asked)
                held = self.c.held_mtime(asked)
                self.assertEqual(done.mtime, held)
                self.assertEqual(done.mtime_asked, asked)
                self.assertEqual(done.mtime_kept, held == asked)
                self.assertEqual(self.c.stat(name).mtime, held)
                self.assertEqual(self.c.set_mtime(name, asked).mtime, held)
        # ext4 (1901 to 2446) and XFS hold no time of 2^62 seconds: the
        # Transfer says it was not kept, and held_mtime predicted it.
        if self.c.mtime_limits.max < 2**62:
            self.assertFalse(self.c.put(io.BytesIO(b"t"), "far.bin", mtime=2**62).mtime_kept)
        self.assertTrue(self.c.put(io.BytesIO(b"t"), "near.bin", mtime=MTIME).mtime_kept)
        self.assertTrue(self.c.put(io.BytesIO(b"t"), "none.bin").mtime_kept)

    def test_a_time_past_64_bits_is_refused_before_it_is_sent(self):
        for asked in (2**63, -2**63 - 1):
            with self.assertRaises(ValueError):
                self.c.put(io.BytesIO(b"t"), "wide.bin", mtime=asked)
            with self.assertRaises(ValueError):
                self.c.set_mtime("", asked)
        self.assertEqual(self.c.stat("").type, "folder")   # the connection goes on

    def test_a_time_with_a_fraction_is_the_second_it_falls_in(self):
        # Round 74, L7: int() took -0.5 s for second 0 (it is second -1).
        for asked, second in ((1_700_000_000.7, 1_700_000_000), (-0.5, -1), (-1.25, -2)):
            with self.subTest(asked=asked):
                self.assertEqual(self.c.put(io.BytesIO(b"t"), "f.bin", mtime=asked).mtime_asked, second)
                self.assertEqual(self.c.set_mtime("f.bin", asked).mtime, self.c.held_mtime(second))
        for asked in (float("nan"), float("inf")):
            with self.assertRaises(ValueError):
                self.c.set_mtime("f.bin", asked)

    def test_the_address_may_be_a_ferry_url_and_a_bad_port_is_named(self):
        # Round 74, L6: ferry://HOST:PORT (as ferry --server takes it) was
        # looked up as a host name, and "HOST:x" raised int()'s message.
        with ferry_client.connect(f"ferry://{self.address}") as c:
            self.assertEqual(c.stat("").type, "folder")
        for address, words in (("127.0.0.1:x", "the port 'x' is not a number"),
                               (f"ferry://{self.address}/f.bin", "names a file")):
            with self.assertRaises(ValueError) as caught:
                ferry_client.connect(address)
            self.assertIn(words, str(caught.exception))

    def test_without_limits_times_compare_exactly(self):
        c = self.connect(version=1)
        self.assertIsNone(c.mtime_limits)
        self.assertEqual(c.held_mtime(2**62), 2**62)


def umask():
    """This process's umask, which the test's ferryd inherited."""
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def bits(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def xattrs(path):
    try:
        return os.listxattr(path)
    except OSError:   # a file system without extended attributes
        return []


class ModeTests(ServerCase):
    """Permission bits (PROTOCOL.md 3.3, 4.5). Expected modes are what
    open(2) gives with the umask this process (and so the server) runs
    with; the served and scratch folders carry no default ACL."""

    @classmethod
    def prepare(cls, root):
        for name, mode in (("private.txt", 0o600), ("program.sh", 0o755), ("shared.txt", 0o640),
                           ("readonly.txt", 0o400)):
            write(os.path.join(root, "m", name), name.encode(), MTIME)
            os.chmod(os.path.join(root, "m", name), mode)
        os.makedirs(os.path.join(root, "m", "sub"))
        os.chmod(os.path.join(root, "m", "sub"), 0o750)
        write(os.path.join(root, "big.bin"), os.urandom(5 << 20), MTIME)
        os.chmod(os.path.join(root, "big.bin"), 0o750)

    def setUp(self):
        self.c = self.connect()
        self.mask = umask()
        self.folder = os.path.join(self.root, self.id().rsplit(".", 1)[-1])
        os.makedirs(self.folder)

    def remote(self, name):
        return os.path.relpath(os.path.join(self.folder, name), self.root)

    def local_file(self, name, mode, content=b"data"):
        path = os.path.join(self.fresh_folder(), name)
        write(path, content)
        os.chmod(path, mode)
        return path

    def test_entries_of_list_stat_set_mtime_and_digest_carry_the_bits(self):
        self.assertIn("mode", self.c.capabilities)
        expected = {"private.txt": 0o600, "program.sh": 0o755, "shared.txt": 0o640, "readonly.txt": 0o400,
                    "sub": 0o750}
        self.assertEqual({e.name: e.mode for e in self.c.list("m")}, expected)
        self.assertEqual({e.name: e.mode for e in self.c.list("m", recursive=True)}, expected)
        for name, mode in expected.items():
            self.assertEqual(self.c.stat("m/" + name).mode, mode, name)
        self.assertEqual(self.c.set_mtime("m/shared.txt", MTIME).mode, 0o640)
        self.assertEqual(self.c.digest("m/program.sh").mode, 0o755)
        # A version-1 reply never carries it: None, not 0.
        old = self.connect(version=1)
        self.assertNotIn("mode", old.capabilities)
        self.assertIsNone(old.stat("big.bin").mode)
        self.assertEqual({e.mode for e in old.list()}, {None})

    def test_a_put_from_a_path_gives_a_new_file_the_sources_bits(self):
        for mode in (0o600, 0o755, 0o640):
            with self.subTest(mode=oct(mode)):
                name = f"new-{mode:o}.bin"
                done = self.c.put(self.local_file(name, mode), self.remote(name))
                self.assertEqual(bits(os.path.join(self.folder, name)), mode & ~self.mask)
                self.assertEqual(done.mode, mode & ~self.mask)
                self.assertEqual(self.c.stat(self.remote(name)).mode, mode & ~self.mask)
        # Where hello does not list "mode" (an older ferryd would ignore it;
        # what is sent is checked without a server in test_server_replies.py)
        # nothing is sent, and the file gets 0666 less the umask.
        self.c.capabilities = [c for c in self.c.capabilities if c != "mode"]
        self.c.put(self.local_file("older.txt", 0o600), self.remote("older.txt"))
        self.assertEqual(bits(os.path.join(self.folder, "older.txt")), 0o666 & ~self.mask)
        old = self.connect(version=1)
        old.put(self.local_file("v1.txt", 0o755), "v1-mode.txt")
        self.assertEqual(bits(os.path.join(self.root, "v1-mode.txt")), 0o666 & ~self.mask)

    def test_a_resumed_put_takes_the_bits_of_the_put_that_commits_it(self):
        source = self.local_file("cut.bin", 0o600, os.urandom(3 << 20))
        with self.assertRaises(Cut):
            self.c.put(source, self.remote("cut.bin"), progress=cut_after(1 << 20))
        for _ in range(100):   # until the server has seen the cut connection go
            try:
                done = self.c.put(source, self.remote("cut.bin"))
                break
            except ferry_client.Retryable as error:
                if error.code != "busy":
                    raise
                time.sleep(0.1)
        else:
            self.fail("the cut upload stayed busy")
        self.assertGreater(done.offset, 0)
        self.assertEqual(bits(os.path.join(self.folder, "cut.bin")), 0o600 & ~self.mask)

    def test_a_replaced_server_file_keeps_its_bits(self):
        target = os.path.join(self.folder, "kept.txt")
        write(target, b"old", MTIME)
        os.chmod(target, 0o640)
        for mode in (0o755, 0o600):
            done = self.c.put(self.local_file("kept.txt", mode, b"new"), self.remote("kept.txt"))
            self.assertEqual((read(target), bits(target), done.mode), (b"new", 0o640, 0o640))

    def test_a_put_from_a_file_object_sends_no_bits(self):
        """A stream has no mode of its own, even an open file's: the server
        creates with 0666 less its umask, as before."""
        done = self.c.put(io.BytesIO(b"stream"), self.remote("stream.txt"))
        self.assertEqual(bits(os.path.join(self.folder, "stream.txt")), 0o666 & ~self.mask)
        self.assertEqual(done.mode, 0o666 & ~self.mask)
        with open(self.local_file("opened.txt", 0o600), "rb") as opened:
            done = self.c.put(opened, self.remote("opened.txt"))
        self.assertEqual(bits(os.path.join(self.folder, "opened.txt")), 0o666 & ~self.mask)
        self.assertEqual(done.mode, 0o666 & ~self.mask)

    def test_open_put_sends_the_bits_asked_never_a_set_id_bit_and_checks_them(self):
        for name, mode, held in (("asked.sh", 0o750, 0o750), ("setid.sh", 0o6755, 0o755), ("none.txt", 0, 0)):
            with self.subTest(mode=oct(mode)):
                upload = self.c.open_put(self.remote(name), 1, mode=mode)
                upload.write(b"x")
                self.assertEqual(upload.commit(sha256(b"x")).get("mode"), held & ~self.mask)
                self.assertEqual(bits(os.path.join(self.folder, name)), held & ~self.mask)
        for bad in (0o10000, -1, "644", 420.0, True):
            with self.subTest(bad=bad), self.assertRaises(ValueError):
                self.c.open_put(self.remote("bad.txt"), 1, mode=bad)
        self.assertFalse(os.path.exists(os.path.join(self.folder, "bad.txt")))
        self.assertEqual(self.c.stat("").type, "folder")   # nothing was sent: the connection goes on

    def test_a_get_to_a_new_path_gives_it_the_servers_bits(self):
        folder = self.fresh_folder()
        for name, mode in (("private.txt", 0o600), ("program.sh", 0o755), ("shared.txt", 0o640),
                           ("readonly.txt", 0o400)):   # one its owner may not write: the part's mark still goes
            with self.subTest(name=name):
                done = self.c.get("m/" + name, folder)
                self.assertEqual(done.mode, mode)
                self.assertEqual(bits(os.path.join(folder, name)), mode & ~self.mask)
                self.assertEqual(read(os.path.join(folder, name)), name.encode())
                self.assertNotIn("user.ferry.part", xattrs(os.path.join(folder, name)))
                self.assertEqual([n for n in os.listdir(folder) if "ferry-part" in n], [])
        # Into a file object: the Transfer says, nothing is changed.
        into = io.BytesIO()
        self.assertEqual(self.c.get("m/program.sh", into).mode, 0o755)

    def test_a_get_into_a_folder_with_a_default_acl_takes_what_it_gives_a_new_file(self):
        # As the kernel gives a file created there with the server's bits
        # (acl(5): ANDed, no umask), never those bits less the umask over it.
        if shutil.which("setfacl") is None:
            self.skipTest("no setfacl")
        folder = self.fresh_folder()
        private, team = os.path.join(folder, "private"), os.path.join(folder, "team")
        os.mkdir(private)
        os.mkdir(team)
        made = subprocess.run(["setfacl", "-d", "-m", "u::rwx,g::---,o::---", private], stderr=subprocess.DEVNULL)
        if made.returncode != 0:
            self.skipTest("no ACLs on this file system")
        subprocess.run(["setfacl", "-d", "-m", "u::rwx,u:1234:rwx,g::r-x,m::rwx,o::---", team], check=True)
        self.c.get("m/program.sh", private)
        self.assertEqual(bits(os.path.join(private, "program.sh")), 0o700)
        self.c.get("m/shared.txt", team)
        self.assertEqual(bits(os.path.join(team, "shared.txt")), 0o640)
        acl = subprocess.run(["getfacl", "-cnp", os.path.join(team, "shared.txt")], stdout=subprocess.PIPE,
                             check=True).stdout.decode()
        self.assertIn("user:1234:rwx", acl)
        self.assertIn("mask::r--", acl)

    def test_a_resumed_get_gives_the_new_file_the_servers_bits(self):
        dest = os.path.join(self.fresh_folder(), "big.bin")
        with self.assertRaises(Cut):
            self.c.get("big.bin", dest, progress=cut_after(2 << 20))
        done = self.c.get("big.bin", dest)
        self.assertGreater(done.offset, 0)
        self.assertEqual(bits(dest), 0o750 & ~self.mask)

    def test_a_replaced_local_file_keeps_its_bits(self):
        folder = self.fresh_folder()
        for name, remote, old in (("program.sh", 0o755, 0o640), ("private.txt", 0o600, 0o644)):
            with self.subTest(name=name):
                dest = os.path.join(folder, name)
                write(dest, b"old")
                os.chmod(dest, old)
                done = self.c.get("m/" + name, dest)
                self.assertEqual((read(dest), bits(dest), done.mode), (name.encode(), old, remote))

    def test_a_server_without_the_capability_gives_a_new_download_0666_less_the_umask(self):
        old = self.connect(version=1)
        dest = os.path.join(self.fresh_folder(), "big.bin")
        self.assertIsNone(old.get("big.bin", dest).mode)
        self.assertEqual(bits(dest), 0o666 & ~self.mask)


class ListingAndFrameTests(ServerCase):
    @classmethod
    def prepare(cls, root):
        write(os.path.join(root, "hu", "shown.txt"), b"s", MTIME)
        write(os.path.join(root, "hu", "sub", "f.txt"), b"f", MTIME)
        write(os.path.join(root, "hu", "sub", ".hidden"), b"h", MTIME)
        write(os.path.join(root, "hu", "clean", "g.txt"), b"g", MTIME)

    def setUp(self):
        self.c = self.connect()

    def test_a_listing_names_the_folders_holding_unlisted_entries(self):
        self.assertIn("holding_unlisted", self.c.capabilities)
        listing = self.c.list("hu", recursive=True)
        names = sorted(e.name for e in listing)
        self.assertEqual(names, ["clean", "clean/g.txt", "shown.txt", "sub", "sub/f.txt"])
        self.assertEqual(listing.holding_unlisted, ["sub"])
        listing = self.c.list("hu/sub")
        list(listing)
        self.assertEqual(listing.holding_unlisted, [""])
        # A server that does not say cannot tell: None, not "no folder".
        self.c.capabilities = [c for c in self.c.capabilities if c != "holding_unlisted"]
        listing = self.c.list("hu/clean")
        list(listing)
        self.assertIsNone(listing.holding_unlisted)

    def test_a_data_frame_over_max_data_frame_is_refused_before_it_is_sent(self):
        self.assertEqual(self.c.max_data_frame, 16 << 20)
        upload = self.c.open_put("frames.bin", 5)
        with self.assertRaises(ValueError):
            upload.write(bytes(self.c.max_data_frame + 1))
        upload.write(b"fives")      # the upload goes on, on the same connection
        self.assertEqual(upload.commit(sha256(b"fives"))["size"], 5)
        self.assertEqual(read(os.path.join(self.root, "frames.bin")), b"fives")


if __name__ == "__main__":
    unittest.main()
