"""Every operation of ferry_client against a real ferryd: list (in pages),
stat, stats, get to a path, a folder or a file object, put from a path or
a file object, the hashes, progress, and resume both ways, cut midway."""

import array
import io
import os
import threading
import time
import unittest
from unittest import mock

from support import MTIME, Cut, ServerCase, cut_after, ferry_client, read, sha256, write

MIB = 1 << 20


class OperationTests(ServerCase):
    @classmethod
    def prepare(cls, root):
        write(os.path.join(root, "hello.txt"), b"hello", MTIME)
        write(os.path.join(root, "big.bin"), os.urandom(5 * MIB + 7), MTIME)
        # Enough long names for several pages of about 64 KiB.
        for i in range(1500):
            write(os.path.join(root, f"many-{i:05d}-" + "x" * 60), b"m", MTIME)

    def test_hello_negotiates_a_version_and_names_the_server(self):
        c = self.connect()
        self.assertIn(c.version, (1, 2))
        self.assertTrue(c.server.startswith("ferryd/"))
        self.assertEqual(c.access, "rw")
        self.assertIn("sha256", c.hashes)

    def test_list_reads_every_page_and_each_entry_once(self):
        c = self.connect()
        pages_before = c.stats()["transfers"]
        listing = c.list()
        names = [e.name for e in listing]
        self.assertEqual(len(names), len(set(names)))
        self.assertEqual(len([n for n in names if n.startswith("many-")]), 1500)
        self.assertIn("hello.txt", names)
        self.assertEqual(listing.skipped_invalid_names, 0)
        self.assertEqual(c.stats()["transfers"], pages_before)   # a list is no transfer
        hello = [e for e in c.list() if e.name == "hello.txt"][0]
        self.assertEqual((hello.size, hello.mtime, hello.type), (5, MTIME, "file"))

    def test_a_loop_over_a_listing_may_call_the_client_for_each_entry(self):
        # Round 74, H1: each call inside the loop read the rest of the
        # listing and dropped it, so 505 of 3,000 files were fetched, and
        # the listing ended as if complete.
        c = self.connect()
        listing = c.list()
        names = []
        for entry in listing:
            names.append(entry.name)
            self.assertEqual(c.stat(entry.name).name, entry.name)
        self.assertGreater(listing.pages, 1)
        self.assertEqual(len([n for n in names if n.startswith("many-")]), 1500)
        self.assertEqual(listing.skipped_invalid_names, 0)

    def test_a_listing_gives_its_entries_once_and_never_an_empty_second_pass(self):
        # Round 74: a second loop over a listing read to its end gave
        # nothing, as an empty folder would; a loop that stopped goes on.
        c = self.connect()
        listing = c.list()
        first = []
        for entry in listing:
            first.append(entry.name)
            if len(first) == 10:
                break
        rest = [e.name for e in listing]
        self.assertEqual(len(first) + len(rest), len(set(first + rest)))
        self.assertEqual(len([n for n in first + rest if n.startswith("many-")]), 1500)
        with self.assertRaises(ValueError) as caught:
            list(listing)
        self.assertIn("read to its end already", str(caught.exception))
        listing.finish()   # nothing left: no error
        # Nor is an empty folder's listing given twice.
        c.mkdir("empty-folder")
        empty = c.list("empty-folder")
        self.assertEqual(list(empty), [])
        with self.assertRaises(ValueError):
            list(empty)

    def test_an_unfinished_listing_does_not_block_the_next_request(self):
        c = self.connect()
        first = next(iter(c.list()))
        self.assertIsInstance(first, ferry_client.Entry)
        self.assertEqual(c.stat("hello.txt").size, 5)

    def test_a_get_or_put_dropped_unfinished_gives_way_to_a_new_connection(self):
        # Round 74, M5: the Client held the dropped Download, so every
        # later call raised "a get or put is in progress" until reconnect().
        c = self.connect()
        for start in (lambda: c.open_get("big.bin"), lambda: c.open_put("dropped.bin", 10)):
            started = start()
            with self.assertRaises(ferry_client.ProtocolError):
                c.stat("hello.txt")            # held: it is still in progress
            del started
            self.assertEqual(c.stat("hello.txt").size, 5)

    def test_a_second_file_into_one_stream_is_told_apart_from_a_changed_one(self):
        # Round 74, M4: a stream that holds another file's bytes takes them
        # for this one's start (resume=True); the failure said the remote
        # file "may have changed", which it had not.
        c = self.connect()
        write(os.path.join(self.root, "ten.txt"), b"abcdefghij", MTIME)
        stream = io.BytesIO()
        c.get("hello.txt", stream)
        with self.assertRaises(ferry_client.IntegrityError) as caught:
            c.get("ten.txt", stream)
        self.assertIn("the file object's first 5 bytes", caught.exception.message)
        self.assertIn("resume=False", caught.exception.message)
        stream.seek(5)
        stream.truncate()
        c.get("ten.txt", stream, resume=False)
        self.assertEqual(stream.getvalue(), b"helloabcdefghij")

    def test_an_empty_destination_path_is_refused_before_any_request(self):
        # Round 74, L1: the file went to ./.ferry-part and stayed there.
        c = self.connect()
        for empty in ("", b""):
            with self.assertRaises(ValueError):
                c.get("hello.txt", empty)

    def test_an_upload_refuses_bytes_past_its_size_and_a_malformed_digest_locally(self):
        # Round 74, L3 and L4: the server closed the connection on the sixth
        # byte; an upper-case digest was refused with the upload counted as
        # ended here, so every later request failed.
        c = self.connect()
        upload = c.open_put("five.bin", 5)
        with self.assertRaises(ValueError):
            upload.write(b"123456")
        upload.write(b"12345")
        with self.assertRaises(ValueError):
            upload.commit(sha256(b"12345").upper())
        self.assertEqual(upload.commit(sha256(b"12345"))["size"], 5)
        self.assertEqual(c.stat("five.bin").size, 5)
        # Round 75, F3: items were counted, not bytes: a memoryview of
        # 4-byte integers passed the size check, and the frame's header
        # said a quarter of what followed.
        words = memoryview(array.array("i", [1, 2])).cast("B").cast("i")
        upload = c.open_put("words.bin", 8)
        upload.write(words)
        self.assertEqual(upload.commit(sha256(words.tobytes()))["size"], 8)
        upload = c.open_put("over.bin", 4)
        with self.assertRaises(ValueError):
            upload.write(words)
        upload.abort()

    def test_stat_and_stats(self):
        c = self.connect()
        # mode (3.3): the file's permission bits where hello lists "mode".
        mode = os.stat(os.path.join(self.root, "hello.txt")).st_mode & 0o777 if "mode" in c.capabilities else None
        self.assertEqual(c.stat("hello.txt"), ferry_client.Entry("hello.txt", 5, MTIME, "file", mode))
        stats = c.stats()
        self.assertGreaterEqual(stats["connections"]["now"], 1)
        self.assertIn("bytes", stats)

    def test_get_to_a_path_publishes_only_the_verified_file(self):
        c = self.connect()
        folder = self.fresh_folder()
        dest = os.path.join(folder, "copy.bin")
        seen = []
        done = c.get("big.bin", dest, progress=lambda d, t: seen.append((d, t)))
        content = read(os.path.join(self.root, "big.bin"))
        self.assertEqual(read(dest), content)
        self.assertEqual((done.size, done.offset, done.digest, done.path), (len(content), 0, sha256(content), dest))
        self.assertEqual(sorted(os.listdir(folder)), ["copy.bin"])   # no part, no sidecar left
        self.assertEqual(seen[-1], (len(content), len(content)))
        self.assertEqual([d for d, _ in seen], sorted(d for d, _ in seen))

    def test_get_into_a_folder_and_a_file_object(self):
        c = self.connect()
        folder = self.fresh_folder()
        c.get("hello.txt", folder)
        self.assertEqual(read(os.path.join(folder, "hello.txt")), b"hello")
        sink = io.BytesIO()
        self.assertEqual(c.get("hello.txt", sink).digest, sha256(b"hello"))
        self.assertEqual(sink.getvalue(), b"hello")

    def test_get_replaces_an_old_file_atomically(self):
        c = self.connect()
        folder = self.fresh_folder()
        dest = os.path.join(folder, "h.txt")
        write(dest, b"old content")
        c.get("hello.txt", dest)
        self.assertEqual(read(dest), b"hello")

    def test_put_from_a_path_and_from_a_file_object(self):
        c = self.connect()
        folder = self.fresh_folder()
        src = os.path.join(folder, "up-path.bin")
        content = os.urandom(3 * MIB + 1)
        write(src, content)
        done = c.put(src)
        self.assertEqual((done.name, done.size, done.digest), ("up-path.bin", len(content), sha256(content)))
        self.assertEqual(read(os.path.join(self.root, "up-path.bin")), content)
        stream = io.BytesIO(b"skip:" + content)
        stream.seek(5)   # from the position to the end
        c.put(stream, "up-stream.bin")
        self.assertEqual(read(os.path.join(self.root, "up-stream.bin")), content)
        self.assertEqual(c.stat("up-stream.bin").size, len(content))

    def test_an_empty_file_both_ways(self):
        c = self.connect()
        c.put(io.BytesIO(b""), "empty.txt")
        sink = io.BytesIO()
        self.assertEqual(c.get("empty.txt", sink).digest, sha256(b""))
        self.assertEqual(sink.getvalue(), b"")

    def test_xxh3_128_when_xxhash_is_importable_else_a_clear_refusal(self):
        c = self.connect()
        content = os.urandom(MIB)
        if ferry_client.XXH3_128 not in ferry_client.hashes.available():
            with self.assertRaises(ferry_client.UnsupportedHash) as caught:
                c.put(io.BytesIO(content), "x3.bin", hash="xxh3-128")
            self.assertIn("python3-xxhash", caught.exception.message)
            self.skipTest("xxhash is not importable here: only the refusal was checked")
        done = c.put(io.BytesIO(content), "x3.bin", hash="xxh3-128")
        self.assertEqual(len(done.digest), 32)
        sink = io.BytesIO()
        self.assertEqual(c.get("x3.bin", sink, hash="xxh3-128").digest, done.digest)
        self.assertEqual(sink.getvalue(), content)

    def test_a_hash_nobody_offers_is_refused_before_any_request(self):
        c = self.connect()
        with self.assertRaises(ferry_client.UnsupportedHash):
            c.get("hello.txt", io.BytesIO(), hash="md5")


class ResumeTests(ServerCase):
    SIZE = 8 * MIB + 3

    @classmethod
    def prepare(cls, root):
        cls.content = os.urandom(cls.SIZE)
        write(os.path.join(root, "resume.bin"), cls.content, MTIME)

    def test_a_get_cut_midway_resumes_from_its_part(self):
        c = self.connect()
        folder = self.fresh_folder()
        dest = os.path.join(folder, "resume.bin")
        with self.assertRaises(Cut):
            c.get("resume.bin", dest, progress=cut_after(3 * MIB))
        self.assertFalse(os.path.exists(dest))
        self.assertTrue(os.path.exists(dest + ".ferry-part.state"))
        held = os.path.getsize(dest + ".ferry-part")
        self.assertGreaterEqual(held, 3 * MIB)
        done = c.get("resume.bin", dest)   # the same Client: it reconnects
        self.assertEqual(done.offset, held)
        self.assertEqual(read(dest), self.content)
        self.assertEqual(sorted(os.listdir(folder)), ["resume.bin"])

    def test_a_part_whose_bytes_were_changed_is_not_trusted(self):
        c = self.connect()
        folder = self.fresh_folder()
        dest = os.path.join(folder, "resume.bin")
        with self.assertRaises(Cut):
            c.get("resume.bin", dest, progress=cut_after(2 * MIB))
        with open(dest + ".ferry-part", "r+b") as part:
            part.seek(1000)
            part.write(b"\0garbage\0")
        done = c.get("resume.bin", dest)
        self.assertEqual(done.offset, 0)
        self.assertEqual(read(dest), self.content)

    def test_a_remote_file_changed_since_the_part_starts_over(self):
        c = self.connect()
        folder = self.fresh_folder()
        write(os.path.join(self.root, "moving.bin"), self.content, MTIME)
        dest = os.path.join(folder, "moving.bin")
        with self.assertRaises(Cut):
            c.get("moving.bin", dest, progress=cut_after(2 * MIB))
        newer = os.urandom(self.SIZE)
        write(os.path.join(self.root, "moving.bin"), newer, MTIME + 60)
        done = c.get("moving.bin", dest)
        self.assertEqual(done.offset, 0)
        self.assertEqual(read(dest), newer)

    def test_resume_false_starts_over(self):
        c = self.connect()
        folder = self.fresh_folder()
        dest = os.path.join(folder, "resume.bin")
        with self.assertRaises(Cut):
            c.get("resume.bin", dest, progress=cut_after(2 * MIB))
        self.assertEqual(c.get("resume.bin", dest, resume=False).offset, 0)
        self.assertEqual(read(dest), self.content)

    def test_a_get_into_a_file_object_continues_at_its_position(self):
        c = self.connect()
        sink = io.BytesIO()
        with self.assertRaises(Cut):
            c.get("resume.bin", sink, progress=cut_after(MIB))
        held = sink.tell()
        self.assertGreater(held, 0)
        done = c.get("resume.bin", sink)
        self.assertEqual(done.offset, held)
        self.assertEqual(sink.getvalue(), self.content)

    def cut_put(self, c, name, content, at):
        with self.assertRaises(Cut):
            c.put(io.BytesIO(content), name, progress=cut_after(at))

    def test_a_put_cut_midway_resumes_after_the_prefix_check(self):
        c = self.connect()
        content = os.urandom(self.SIZE)
        self.cut_put(c, "up.bin", content, 3 * MIB)
        self.assertFalse(os.path.exists(os.path.join(self.root, "up.bin")))
        done = c.put(io.BytesIO(content), "up.bin")
        self.assertGreater(done.offset, 0)
        self.assertEqual(read(os.path.join(self.root, "up.bin")), content)

    def test_a_put_waits_while_another_connection_still_holds_the_upload(self):
        """Round 74 L5: right after an upload was cut the server may still
        be keeping it (busy, PROTOCOL.md 4.7: retry after a moment). put
        retries, as `ferry put` does, and continues the kept bytes."""
        content = os.urandom(self.SIZE)
        holder = self.connect()
        upload = holder.open_put("held.bin", len(content), resume=True)
        upload.write(content[:MIB])
        released = threading.Timer(1.0, upload.abort)   # keeps the bytes for a resume
        released.start()
        try:
            started = time.monotonic()
            done = self.connect().put(io.BytesIO(content), "held.bin")
        finally:
            released.join()
        self.assertGreaterEqual(time.monotonic() - started, 0.5)
        self.assertEqual(done.offset, MIB)
        self.assertEqual(read(os.path.join(self.root, "held.bin")), content)

    def test_a_put_still_busy_after_its_patience_is_retryable(self):
        holder = self.connect()
        upload = holder.open_put("kept-busy.bin", 10, resume=True)
        try:
            with mock.patch.object(ferry_client.client, "BUSY_PATIENCE", 0.5):
                started = time.monotonic()
                with self.assertRaises(ferry_client.Retryable) as caught:
                    self.connect().put(io.BytesIO(b"0123456789"), "kept-busy.bin")
            self.assertEqual(caught.exception.code, "busy")
            self.assertLess(time.monotonic() - started, 3)
        finally:
            upload.abort(discard=True)

    def test_a_put_whose_kept_bytes_are_of_other_content_starts_over(self):
        c = self.connect()
        first, second = os.urandom(self.SIZE), os.urandom(self.SIZE)
        self.cut_put(c, "other.bin", first, 3 * MIB)
        done = c.put(io.BytesIO(second), "other.bin")
        self.assertEqual(done.offset, 0)
        self.assertEqual(read(os.path.join(self.root, "other.bin")), second)
        self.assertEqual([n for n in os.listdir(self.root) if n.startswith(".ferry-partial-")
                          and not n.endswith(".state") and "name" not in n], [])

    def test_a_get_resumes_a_part_left_by_the_ferry_client_format(self):
        """A sidecar in ferry's format (version 3, C++ hash state) is
        resumed by reading the part again against its prefix_digest."""
        folder = self.fresh_folder()
        dest = os.path.join(folder, "resume.bin")
        held = 3 * MIB
        write(dest + ".ferry-part", self.content[:held])
        st = os.stat(dest + ".ferry-part")
        import json
        with open(dest + ".ferry-part.state", "w") as f:
            f.write(json.dumps({"version": 3, "name": "resume.bin", "size": self.SIZE, "bytes_held": held,
                                "hash_state": "sha256:opaque-state-of-the-c++-client", "mtime": MTIME,
                                "prefix_digest": sha256(self.content[:held]),
                                "part": [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]}))
        done = self.connect().get("resume.bin", dest)
        self.assertEqual(done.offset, held)
        self.assertEqual(read(dest), self.content)


if __name__ == "__main__":
    unittest.main()
