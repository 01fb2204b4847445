"""Two version-2 additions of the wire through ferry_client against a real
ferryd: a put that never replaces (commit's ``replace: false``, capability
"commit_replace", PROTOCOL.md 4.5) and hello's ``mtime_limits`` (4.1) as
the library uses them (held_mtime, a put's and a set_mtime's time); and
the smaller fields beside them: a listing's ``holding_unlisted`` (4.2) and
hello's ``max_data_frame``.

The malformed hellos a real ferryd never sends are in test_vectors.py."""

import io
import os
import unittest

from support import MTIME, ServerCase, ferry_client, read, sha256, write

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

    def test_without_limits_times_compare_exactly(self):
        c = self.connect(version=1)
        self.assertIsNone(c.mtime_limits)
        self.assertEqual(c.held_mtime(2**62), 2**62)


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
