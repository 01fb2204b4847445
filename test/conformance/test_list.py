"""list, stat and stats: names, sorting, paging and counters.

Part of the conformance suite (ferryd against docs/PROTOCOL.md);
test_conformance.py runs it with the others.
"""

import os
import socket
import stat

import ferry_wire as fw
from conformance import MTIME, ServerCase, write_file


LISTED = ["Z", "_", "a.txt", "b.txt", "n" * 255, "\u00e9", "caf\u00e9.txt",
          "q\u0303", "a\u00a0b", "\U0001f600.png"]


# Section 5: valid UTF-8 that could pass for another name. One per kind:
# C0 and C1 controls (Cc), format characters such as bidi overrides and
# zero-width spaces (Cf), line and paragraph separators (Zl, Zp), private
# use (Co), unassigned (Cn), default-ignorable ones (Hangul filler,
# variation selector), and names that are not NFC.
DECEPTIVE = ["x\u0085y", "x\u009b31m", "invoice\u202efdp.exe",
             "pay\u200bpal.txt", "a\u2066b", "\ufeffa.txt", "a\u00adb",
             "a\u2028b", "a\u2029b", "a\ue000", "a\u0378", "a\uffff",
             "a\u3164b", "a\ufe0f", "cafe\u0301.txt", "e\u0301",
             "\u212b", "\u1112\u1161\u11ab"]


NOT_LISTED_VALID_UTF8_BAD = [b"back\\slash", b"ctl\x01", b"del\x7f"] + \
    [n.encode("utf-8") for n in DECEPTIVE]


NOT_LISTED_BAD_UTF8 = [b"bad\xff", b"over\xc0\xaf", b"surr\xed\xa0\x80"]


class ListStatTests(ServerCase):

    @classmethod
    def prepare(cls, root):
        for i, name in enumerate(LISTED):
            write_file(os.path.join(root, name), b"x" * i, MTIME + i)
        write_file(os.path.join(root, ".hidden"), b"secret")
        write_file(os.path.join(root, ".ferry-partial-zzz"), b"junk")
        for name in NOT_LISTED_VALID_UTF8_BAD + NOT_LISTED_BAD_UTF8:
            write_file(os.path.join(root.encode(), name), b"y")
        os.mkdir(os.path.join(root, "dir"))
        os.mkdir(os.path.join(root, ".hiddendir"))
        os.symlink("a.txt", os.path.join(root, "link"))
        os.symlink("/etc/passwd", os.path.join(root, "outside"))
        os.symlink("missing", os.path.join(root, "dangling"))
        os.mkfifo(os.path.join(root, "fifo"))
        s = socket.socket(socket.AF_UNIX)
        s.bind(os.path.join(root, "sock"))
        s.close()

    def test_list_is_sorted_and_filtered(self):
        c = self.client()
        r = c.request("list", id=11)
        self.assertEqual(r["id"], 11)
        names = [f["name"] for f in r["files"]]
        want = sorted(LISTED, key=lambda n: n.encode("utf-8"))
        self.assertEqual(names, want)
        for f in r["files"]:
            i = LISTED.index(f["name"])
            self.assertEqual(f["size"], i)
            self.assertEqual(f["mtime"], MTIME + i)
            self.assertIsInstance(f["mtime"], int)

    def test_list_counts_skipped_invalid_names(self):
        # Section 4.2: every name that breaks section 5 is counted (not
        # UTF-8, '\\', control, invisible or other deceptive characters, not
        # NFC); dot files are not counted.
        c = self.client()
        r = c.request("list")
        self.assertEqual(r["skipped_invalid_names"],
                         len(NOT_LISTED_BAD_UTF8) +
                         len(NOT_LISTED_VALID_UTF8_BAD))

    def test_paged_list_holds_the_same_files_once_each(self):
        # 4.2: the pages together are the listing, each file once; the last
        # page has no "more" and counts the skipped names.
        c = self.client()
        files, last, _ = c.list_paged()
        names = [f["name"] for f in files]
        self.assertEqual(sorted(names, key=lambda n: n.encode("utf-8")),
                         sorted(LISTED, key=lambda n: n.encode("utf-8")))
        self.assertFalse(last.get("more", False))
        self.assertEqual(last["skipped_invalid_names"],
                         len(NOT_LISTED_BAD_UTF8) + len(NOT_LISTED_VALID_UTF8_BAD))
        # The connection is in step afterwards.
        self.assertEqual(c.request("stat", name="b.txt")["name"], "b.txt")

    def test_stat_regular_file(self):
        c = self.client()
        r = c.request("stat", id=12, name="b.txt")
        i = LISTED.index("b.txt")
        self.assertEqual(r, {"id": 12, "ok": True, "name": "b.txt",
                             "size": i, "mtime": MTIME + i})
        r = c.request("stat", name="n" * 255)
        self.assertEqual(r["size"], LISTED.index("n" * 255))
        r = c.request("stat", name="\u00e9")        # NFC and NFD differ
        self.assertEqual(r["size"], LISTED.index("\u00e9"))

    def test_stat_not_found(self):
        c = self.client()
        for name in ("missing", "A.TXT", "a.txt ", "\u00e9" * 127 + "e"):
            with self.subTest(name=name):
                self.assertError(self.ask(c, {"op": "stat", "id": 13,
                                              "name": name}),
                                 "not_found", 13)
        self.assertUsable(c)

    def test_not_regular_file(self):
        c = self.client()
        for name in ("dir", "link", "outside", "dangling", "fifo", "sock"):
            for op in ("stat", "get"):
                with self.subTest(name=name, op=op):
                    r = self.ask(c, {"op": op, "id": 14, "name": name})
                    self.assertError(r, "not_regular_file", 14)
            with self.subTest(name=name, op="put"):
                # DOC: put is not documented to answer not_regular_file;
                # it does, and never replaces a folder, link or device.
                r = self.ask(c, {"op": "put", "id": 15, "name": name,
                                 "size": 1})
                self.assertError(r, "not_regular_file", 15)
        self.assertTrue(os.path.islink(self.server.path("link")))
        self.assertTrue(stat.S_ISFIFO(os.lstat(
            self.server.path("fifo")).st_mode))
        self.assertUsable(c)

    INVALID = ["", ".", "..", ".hidden", ".ferry-partial-zzz", "a/b",
               "/etc/passwd", "../x", "a\\b", "\x00", "a\x00b", "a\x01",
               "tab\tname", "new\nline", "a\x1f", "a\x7f", "x" * 256,
               "\u00e9" * 128] + DECEPTIVE

    def test_invalid_names(self):
        c = self.client()
        before = self.server.partials()
        for name in self.INVALID:
            for op in ("stat", "get", "put"):
                with self.subTest(name=name, op=op):
                    req = {"op": op, "id": 16, "name": name}
                    if op == "put":
                        req["size"] = 1
                    self.assertError(self.ask(c, req), "invalid_name", 16)
        self.assertUsable(c)
        self.assertEqual(self.server.partials(), before)

    def test_deceptive_names_are_refused_by_code_point(self):
        """Section 5: the message names the offending code point, and an NFD
        name is told its NFC form; never does the message carry a refused
        character raw."""
        c = self.client()
        for name, code_point in (("invoice\u202efdp.exe", "U+202E"),
                                 ("x\u009b31m", "U+009B"),
                                 ("pay\u200bpal.txt", "U+200B"),
                                 ("a\u3164b", "U+3164")):
            with self.subTest(name=name):
                r = self.ask(c, {"op": "put", "id": 18, "name": name,
                                 "size": 1})
                self.assertError(r, "invalid_name", 18)
                self.assertIn(code_point, r["error"]["message"])
                self.assertNotIn(chr(int(code_point[2:], 16)),
                                 r["error"]["message"])
        r = self.ask(c, {"op": "stat", "id": 19, "name": "cafe\u0301.txt"})
        self.assertError(r, "invalid_name", 19)
        self.assertIn("NFC", r["error"]["message"])
        self.assertIn("caf\u00e9.txt", r["error"]["message"])

    def test_names_not_representable_in_json_are_bad_json(self):
        # DOC: section 5 forbids overlong forms and surrogates, but such a
        # name cannot be sent: the control frame itself is not valid UTF-8
        # JSON, so the answer is bad_json (id null), not invalid_name.
        c = self.client()
        for raw in (b'{"op":"stat","id":17,"name":"a\xff"}',
                    b'{"op":"stat","id":17,"name":"a\xc0\xaf"}',
                    b'{"op":"stat","id":17,"name":"a\xed\xa0\x80"}',
                    b'{"op":"stat","id":17,"name":"a\\ud800"}'):
            with self.subTest(raw=raw):
                c.send_raw(fw.frame(1, raw))
                self.assertError(c.recv(), "bad_json", None)
        self.assertUsable(c)


class LargeFolderListTests(ServerCase):
    # 4.2: a folder whose single list reply would pass ferryd's 4 MiB gets
    # list_too_large without pages, and is listed whole in pages.
    COUNT = 14000

    @classmethod
    def prepare(cls, root):
        for i in range(cls.COUNT):
            name = ("%07d" % i).ljust(255, "n")
            os.close(os.open(os.path.join(root, name), os.O_CREAT | os.O_WRONLY, 0o644))

    def test_a_large_folder_is_refused_whole_and_listed_in_pages(self):
        c = self.client()
        with self.assertRaises(fw.RemoteError) as caught:
            c.list()
        self.assertEqual(caught.exception.code, "list_too_large")
        files, last, pages = c.list_paged()
        self.assertGreater(pages, 1)
        self.assertEqual(len({f["name"] for f in files}), self.COUNT)
        self.assertEqual(len(files), self.COUNT)
        self.assertEqual(last["skipped_invalid_names"], 0)


class StatsTests(ServerCase):

    @classmethod
    def prepare(cls, root):
        write_file(os.path.join(root, "hello.txt"), b"hello", MTIME)

    def test_stats_counts_what_happened(self):
        c0 = self.client(hello=False)
        self.assertError(self.ask(c0, {"op": "stats", "id": 1}),
                         "hello_required", 1)
        c1 = self.client()
        self.assertEqual(c1.get("hello.txt")[1], b"hello")
        self.assertTrue(c1.put("up.txt", b"abc")["ok"])
        self.assertError(self.ask(c1, {"op": "get", "id": 2,
                                       "name": "missing"}), "not_found", 2)
        self.client()
        r = c1.request("stats", id=3)
        self.assertEqual(r["id"], 3)
        self.assertIsInstance(r["uptime_seconds"], int)
        self.assertGreaterEqual(r["uptime_seconds"], 0)
        self.assertEqual(r["connections"], {"now": 3, "total": 3})
        self.assertEqual(r["transfers"], {"now": 0, "total": 2})
        self.assertEqual(r["bytes"], {"in": 3, "out": 5})
        self.assertEqual(r["errors"], {"hello_required": 1, "not_found": 1})

    def test_stats_is_announced_and_refused_during_an_upload(self):
        c = self.client(hello=False)
        self.assertIn("stats", c.hello()["capabilities"])
        self.put_start(c, "s.bin", 1, rid=4)
        self.assertError(self.ask(c, {"op": "stats", "id": 5}),
                         "unexpected_frame", 5)
        self.ask(c, {"op": "abort", "id": 4, "discard": True})
