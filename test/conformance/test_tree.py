"""Version 2: the tree. Paths (5.1), list of a folder and of a tree (4.2),
stat of folders and of the root (4.3), get and put by path with parents
and mtime (4.4, 4.5), digest, mkdir, delete, rename, set_mtime (4.9 to
4.13), the read-only refusals,
and what a version-1 connection still sees (8).

Written from docs/PROTOCOL.md alone, with raw frames; part of the
conformance suite (test_conformance.py runs it with the others).
"""

import hashlib
import os
import shutil
import tempfile

from conformance import MTIME, ServerCase, write_file

V2_CAPABILITIES = ("folders", "mkdir", "delete", "rename", "digest", "mtime", "set_mtime", "holding_unlisted",
                   "delete_expect", "set_mtime_expect", "commit_replace", "unreadable_folders", "mode",
                   "folder_modes", "deferred_sync")


def sha(b):
    return hashlib.sha256(b).hexdigest()


class TreeCase(ServerCase):
    """A ferryd whose connections say hello with version 2."""

    def client2(self):
        c = self.client(hello=False)
        r = self.ask(c, {"op": "hello", "id": 0, "version": 2,
                         "client": "conformance-tree/1"})
        self.assertIs(r["ok"], True, r)
        self.assertEqual(r["version"], 2)
        return c

    def ok(self, c, obj):
        r = self.ask(c, obj)
        self.assertIs(r.get("ok"), True, r)
        self.assertEqual(r["id"], obj["id"])
        return r

    def list_all(self, c, rid, **fields):
        """Every page of a list: (entries of all pages, the last page)."""
        c.send(dict({"op": "list", "id": rid}, **fields))
        entries = []
        while True:
            page = c.recv()
            self.assertIs(page.get("ok"), True, page)
            self.assertEqual(page["id"], rid)
            entries += page["files"]
            if not page.get("more"):
                return entries, page

    def upload(self, c, rid, name, content, **fields):
        """put, one data frame, commit: the commit reply."""
        put = dict({"op": "put", "id": rid, "name": name,
                    "size": len(content)}, **fields)
        r = self.ask(c, put)
        if not r.get("ok"):
            return r
        self.assertEqual(r["offset"], 0)
        c.send_data(content)
        return self.ask(c, {"op": "commit", "id": rid, "sha256": sha(content)})

    def root(self, *parts):
        return os.path.join(self.server.root, *parts)


class PathTests(TreeCase):
    """5.1: what a path is, and the confinement list, refused before the
    file system is touched."""

    @classmethod
    def prepare(cls, root):
        write_file(os.path.join(root, "top.txt"), b"top", MTIME)
        os.makedirs(os.path.join(root, "a", "b"))
        write_file(os.path.join(root, "a", "b", "c.txt"), b"abc", MTIME)

    def test_hello_2_announces_the_tree(self):
        c = self.client(hello=False)
        r = self.ask(c, {"op": "hello", "id": 0, "version": 2})
        self.assertEqual(r["version"], 2)
        for cap in V2_CAPABILITIES:
            self.assertIn(cap, r["capabilities"])

    def test_refused_paths_are_invalid_name_for_every_operation(self):
        c = self.client2()
        refused = {
            "'..' first": "../top.txt",
            "'..' inside": "a/../top.txt",
            "'..' last": "a/b/..",
            "'.' inside": "a/./b",
            "an empty component": "a//b",
            "a trailing '/'": "a/b/",
            "an absolute path": "/etc/passwd",
            "a backslash": "a\\b",
            "a backslash with '..'": "..\\top.txt",
            "a hidden component": "a/.hidden",
            "a control character": "a/b\u0007",
            "depth 1,000": "/".join(["a"] * 1000),
            "depth 65": "/".join(["a"] * 65),
            "a 5,000-byte path": "/".join(["x" * 99] * 50),
            "4,096 bytes of valid components": "/".join(["y" * 240] * 17),
        }
        self.assertEqual(len(refused["4,096 bytes of valid components"].encode()), 4096)
        rid = 100
        for what, path in refused.items():
            for req in ({"op": "stat", "name": path},
                        {"op": "get", "name": path},
                        {"op": "digest", "name": path},
                        {"op": "list", "path": path},
                        {"op": "put", "name": path, "size": 1},
                        {"op": "mkdir", "path": path},
                        {"op": "delete", "path": path},
                        {"op": "rename", "from": "top.txt", "to": path},
                        {"op": "rename", "from": path, "to": "x"},
                        {"op": "set_mtime", "path": path, "mtime": MTIME}):
                rid += 1
                req["id"] = rid
                with self.subTest(what=what, op=req["op"]):
                    self.assertError(self.ask(c, req), "invalid_name", rid)
        self.assertUsable(c)
        self.assertEqual(sorted(os.listdir(self.server.root)), ["a", "top.txt"])

    def test_the_bounds_are_named(self):
        c = self.client2()
        r = self.ask(c, {"op": "stat", "id": 1, "name": "/".join(["a"] * 65)})
        self.assertError(r, "invalid_name", 1)
        self.assertIn("64", r["error"]["message"])
        r = self.ask(c, {"op": "stat", "id": 2, "name": "z" * 200 + "/" + "/".join(["x" * 250] * 20)})
        self.assertError(r, "invalid_name", 2)
        self.assertIn("4095", r["error"]["message"])

    def test_the_root_cannot_be_made_deleted_or_renamed(self):
        c = self.client2()
        for rid, req in enumerate([
                {"op": "mkdir", "path": ""},
                {"op": "mkdir", "path": "", "parents": True},
                {"op": "delete", "path": ""},
                {"op": "delete", "path": "", "recursive": True},
                {"op": "rename", "from": "", "to": "x"},
                {"op": "rename", "from": "top.txt", "to": ""},
                {"op": "get", "name": ""},
                {"op": "digest", "name": ""}], start=10):
            req["id"] = rid
            with self.subTest(req=req):
                self.assertError(self.ask(c, req), "invalid_name", rid)
        self.assertTrue(os.path.isfile(self.root("top.txt")))

    def test_stat_and_set_mtime_take_the_root(self):
        c = self.client2()
        r = self.ok(c, {"op": "stat", "id": 20, "name": ""})
        self.assertEqual((r["name"], r["type"], r["size"]), ("", "folder", 0))
        self.assertEqual(r["mtime"], int(os.stat(self.server.root).st_mtime))
        r = self.ok(c, {"op": "set_mtime", "id": 21, "path": "", "mtime": MTIME - 7})
        self.assertEqual((r["name"], r["type"], r["mtime"]), ("", "folder", MTIME - 7))
        self.assertEqual(int(os.stat(self.server.root).st_mtime), MTIME - 7)

    def test_a_path_through_a_file_is_not_a_folder(self):
        c = self.client2()
        for rid, req in enumerate([
                {"op": "stat", "name": "top.txt/x"},
                {"op": "get", "name": "a/b/c.txt/x"},
                {"op": "list", "path": "top.txt"},
                {"op": "mkdir", "path": "top.txt/x"},
                {"op": "put", "name": "top.txt/x", "size": 1}], start=20):
            req["id"] = rid
            with self.subTest(req=req):
                self.assertError(self.ask(c, req), "not_a_folder", rid)

    def test_a_missing_folder_is_not_found(self):
        c = self.client2()
        for rid, req in enumerate([
                {"op": "stat", "name": "nope/x"},
                {"op": "list", "path": "nope"},
                {"op": "get", "name": "a/nope/c.txt"},
                {"op": "digest", "name": "nope/x"},
                {"op": "mkdir", "path": "nope/x"},
                {"op": "delete", "path": "nope"},
                {"op": "rename", "from": "nope", "to": "x"},
                {"op": "rename", "from": "top.txt", "to": "nope/top.txt"},
                {"op": "put", "name": "nope/x", "size": 1}], start=30):
            req["id"] = rid
            with self.subTest(req=req):
                self.assertError(self.ask(c, req), "not_found", rid)
        self.assertTrue(os.path.isfile(self.root("top.txt")))


class SymlinkTests(TreeCase):
    """5.1: no symbolic link is followed on the way, wherever it points."""

    @classmethod
    def prepare(cls, root):
        cls.outside = tempfile.mkdtemp(prefix="ferry-outside-")
        write_file(os.path.join(cls.outside, "secret.txt"), b"secret", MTIME)
        os.makedirs(os.path.join(root, "real"))
        write_file(os.path.join(root, "real", "in.txt"), b"in", MTIME)
        os.symlink(cls.outside, os.path.join(root, "out"))
        os.symlink("real", os.path.join(root, "inlink"))

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.outside, ignore_errors=True)

    def test_a_symlink_on_the_way_is_not_a_folder(self):
        c = self.client2()
        for rid, req in enumerate([
                {"op": "stat", "name": "out/secret.txt"},
                {"op": "get", "name": "out/secret.txt"},
                {"op": "digest", "name": "out/secret.txt"},
                {"op": "list", "path": "out"},
                {"op": "list", "path": "inlink"},
                {"op": "stat", "name": "inlink/in.txt"},
                {"op": "put", "name": "out/planted.txt", "size": 1},
                {"op": "mkdir", "path": "out/planted"},
                {"op": "delete", "path": "out/secret.txt"},
                {"op": "rename", "from": "out/secret.txt", "to": "got.txt"},
                {"op": "rename", "from": "real/in.txt", "to": "out/in.txt"}],
                start=1):
            req["id"] = rid
            with self.subTest(req=req):
                self.assertError(self.ask(c, req), "not_a_folder", rid)
        self.assertEqual(sorted(os.listdir(self.outside)), ["secret.txt"])
        self.assertTrue(os.path.isfile(self.root("real", "in.txt")))

    def test_a_symlink_itself_is_not_regular_and_never_listed(self):
        c = self.client2()
        for rid, req in enumerate([
                {"op": "stat", "name": "out"},
                {"op": "delete", "path": "inlink"},
                {"op": "rename", "from": "inlink", "to": "moved"}], start=20):
            req["id"] = rid
            with self.subTest(req=req):
                self.assertError(self.ask(c, req), "not_regular_file", rid)
        entries, last = self.list_all(c, 30, recursive=True)
        self.assertEqual(sorted(e["name"] for e in entries),
                         ["real", "real/in.txt"])
        self.assertTrue(os.path.islink(self.root("inlink")))


class ListTests(TreeCase):
    """4.2: list of a folder, and of a whole tree in pages."""

    @classmethod
    def prepare(cls, root):
        write_file(os.path.join(root, "top.txt"), b"top", MTIME)
        write_file(os.path.join(root, ".hidden"), b"h", MTIME)
        os.makedirs(os.path.join(root, "logs", "old"))
        os.makedirs(os.path.join(root, "logs", ".cache"))
        os.makedirs(os.path.join(root, "empty"))
        write_file(os.path.join(root, "logs", "a.log"), b"aaaa", MTIME)
        write_file(os.path.join(root, "logs", "old", "b.log"), b"bb", MTIME)
        write_file(os.path.join(root, "logs", ".cache", "c"), b"c", MTIME)
        write_file(os.path.join(root, "logs", "bad\u202e.log"), b"x", MTIME)
        os.mkfifo(os.path.join(root, "logs", "fifo"))
        os.chmod(os.path.join(root, "top.txt"), 0o640)
        os.chmod(os.path.join(root, "logs"), 0o751)
        for d in ("logs", os.path.join("logs", "old"), "empty"):
            os.utime(os.path.join(root, d), (MTIME, MTIME))

    def test_list_of_the_root_has_files_and_folders_with_types(self):
        c = self.client2()
        r = self.ok(c, {"op": "list", "id": 1})
        self.assertEqual(r["files"], sorted(r["files"], key=lambda e: e["name"].encode()))
        by_name = {e["name"]: e for e in r["files"]}
        self.assertEqual(set(by_name), {"top.txt", "logs", "empty"})
        self.assertEqual(by_name["top.txt"],
                         {"name": "top.txt", "type": "file", "size": 3, "mtime": MTIME, "mode": 0o640})
        self.assertEqual(by_name["logs"]["type"], "folder")
        self.assertEqual(by_name["logs"]["mode"], 0o751)
        self.assertEqual(by_name["logs"]["size"], 0)
        self.assertEqual(by_name["logs"]["mtime"], MTIME)
        self.assertEqual(r["skipped_invalid_names"], 0)

    def test_list_of_a_folder_names_its_own_entries(self):
        c = self.client2()
        r = self.ok(c, {"op": "list", "id": 2, "path": "logs"})
        self.assertEqual({(e["name"], e["type"]) for e in r["files"]},
                         {("a.log", "file"), ("old", "folder")})
        self.assertEqual(r["skipped_invalid_names"], 1)
        paged, last = self.list_all(c, 3, path="logs", paged=True)
        self.assertEqual(sorted(e["name"] for e in paged), ["a.log", "old"])
        self.assertEqual(last["skipped_invalid_names"], 1)
        r = self.ok(c, {"op": "list", "id": 4, "path": "empty"})
        self.assertEqual(r["files"], [])

    def test_a_recursive_list_is_always_paged_and_puts_folders_first(self):
        c = self.client2()
        entries, last = self.list_all(c, 5, path="logs", recursive=True)
        names = [e["name"] for e in entries]
        self.assertEqual(sorted(names), ["a.log", "old", "old/b.log"])
        self.assertLess(names.index("old"), names.index("old/b.log"))
        types = {e["name"]: e["type"] for e in entries}
        self.assertEqual(types, {"a.log": "file", "old": "folder", "old/b.log": "file"})
        self.assertEqual(last["skipped_invalid_names"], 1)
        # The whole tree from the root.
        entries, last = self.list_all(c, 6, recursive=True)
        self.assertEqual(sorted(e["name"] for e in entries),
                         ["empty", "logs", "logs/a.log", "logs/old",
                          "logs/old/b.log", "top.txt"])
        self.assertEqual(last["skipped_invalid_names"], 1)
        self.assertUsable(c)

    def test_entries_past_the_path_bounds_are_counted_apart_and_not_entered(self):
        """5.1's bounds: a folder 65 components deep (or a path over 4,095
        bytes) cannot be asked for, so it is not listed, not entered, and
        counted in skipped_too_deep, not as an invalid name."""
        chain = ["deep"] + ["d"] * 64  # "deep/d/.../d": 65 components
        long_name = "n" * 250           # 17 of them pass 4,095 bytes
        try:
            os.makedirs(self.root(*chain, "below"))
            write_file(self.root(*chain, "below", "f.txt"), b"f", MTIME)
            # Past PATH_MAX for this process too: made one level at a time.
            fd = os.open(self.root(), os.O_RDONLY | os.O_DIRECTORY)
            try:
                for name in ["long"] + [long_name] * 17:
                    os.mkdir(name, dir_fd=fd)
                    child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
                    os.close(fd)
                    fd = child
            finally:
                os.close(fd)
            c = self.client2()
            for rid, path, too_deep in ((40, "deep", 1), (41, "long", 1), (42, "", 2)):
                with self.subTest(path=path):
                    entries, last = self.list_all(c, rid, path=path, recursive=True)
                    prefix = [path] if path else []
                    for e in entries:
                        full = "/".join(prefix + [e["name"]])
                        self.assertLessEqual(full.count("/") + 1, 64, full[:80])
                        self.assertLessEqual(len(full.encode()), 4095)
                    self.assertEqual(last.get("skipped_too_deep"), too_deep, last)
                    self.assertEqual(last["skipped_invalid_names"], 0 if path else 1)
            # The deepest listable folder, listed alone: its child is past the bound.
            r = self.ok(c, {"op": "list", "id": 43, "path": "/".join(chain[:64])})
            self.assertEqual(r["files"], [])
            self.assertEqual(r.get("skipped_too_deep"), 1, r)
            # Within the bounds, the field is absent (or 0).
            r = self.ok(c, {"op": "list", "id": 44, "path": "logs"})
            self.assertEqual(r.get("skipped_too_deep", 0), 0)
        finally:
            shutil.rmtree(self.root("deep"), ignore_errors=True)
            shutil.rmtree(self.root("long"), ignore_errors=True)

    def test_a_recursive_list_comes_in_pages_even_unasked(self):
        """Without "paged", a recursive list still ends with a page that
        carries skipped_invalid_names and no more."""
        c = self.client2()
        c.send({"op": "list", "id": 7, "recursive": True})
        page = c.recv()
        while page.get("more"):
            self.assertNotIn("skipped_invalid_names", page)
            page = c.recv()
        self.assertIn("skipped_invalid_names", page)

    def test_list_of_a_file_or_a_missing_path(self):
        c = self.client2()
        self.assertError(self.ask(c, {"op": "list", "id": 8, "path": "top.txt"}), "not_a_folder", 8)
        self.assertError(self.ask(c, {"op": "list", "id": 9, "path": "nope"}), "not_found", 9)
        self.assertError(self.ask(c, {"op": "list", "id": 10, "path": "logs/fifo"}), "not_a_folder", 10)
        self.assertError(self.ask(c, {"op": "list", "id": 11, "path": None}), "bad_request", 11)
        self.assertError(self.ask(c, {"op": "list", "id": 12, "recursive": "yes"}), "bad_request", 12)

    def test_stat_of_a_folder_and_of_a_file_by_path(self):
        c = self.client2()
        r = self.ok(c, {"op": "stat", "id": 13, "name": "logs/old"})
        self.assertEqual((r["name"], r["type"], r["size"], r["mtime"]), ("logs/old", "folder", 0, MTIME))
        r = self.ok(c, {"op": "stat", "id": 14, "name": "logs/old/b.log"})
        self.assertEqual((r["name"], r["type"], r["size"], r["mtime"]), ("logs/old/b.log", "file", 2, MTIME))
        self.assertError(self.ask(c, {"op": "stat", "id": 15, "name": "logs/fifo"}), "not_regular_file", 15)

    def test_version_1_sees_the_root_as_before(self):
        c = self.client()       # hello with version 1
        r = self.ok(c, {"op": "list", "id": 16})
        # No type and no mode: version 1's replies are what they were (3.3).
        self.assertEqual(r["files"], [{"name": "top.txt", "size": 3, "mtime": MTIME}])
        # "path" is no field of version 1: ignored, the root is listed.
        r = self.ok(c, {"op": "list", "id": 17, "path": "logs", "recursive": True})
        self.assertEqual([e["name"] for e in r["files"]], ["top.txt"])
        self.assertError(self.ask(c, {"op": "stat", "id": 18, "name": "logs"}), "not_regular_file", 18)
        self.assertError(self.ask(c, {"op": "stat", "id": 19, "name": "logs/a.log"}), "invalid_name", 19)
        r = self.ok(c, {"op": "stat", "id": 20, "name": "top.txt"})
        self.assertNotIn("type", r)
        self.assertNotIn("mode", r)
        r = self.ok(c, {"op": "get", "id": 21, "name": "top.txt"})
        self.assertNotIn("mode", r)
        self.read_transfer(c)


class TransferTests(TreeCase):
    """4.4, 4.5, 4.9: get, put and digest by path."""

    @classmethod
    def prepare(cls, root):
        os.makedirs(os.path.join(root, "d"))
        write_file(os.path.join(root, "d", "f.bin"), b"hello", MTIME)

    def test_get_by_path(self):
        c = self.client2()
        r = self.ok(c, {"op": "get", "id": 1, "name": "d/f.bin"})
        self.assertEqual((r["name"], r["size"], r["mtime"], r["offset"]), ("d/f.bin", 5, MTIME, 0))
        body, _, trailer = self.read_transfer(c)
        self.assertEqual(body, b"hello")
        self.assertEqual(trailer["sha256"], sha(b"hello"))

    def test_put_with_parents_and_mtime(self):
        c = self.client2()
        r = self.upload(c, 2, "new/deeper/x.bin", b"abc", parents=True, mtime=1700000000)
        self.assertIs(r.get("ok"), True, r)
        self.assertEqual((r["name"], r["size"], r["mtime"]), ("new/deeper/x.bin", 3, 1700000000))
        path = self.root("new", "deeper", "x.bin")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"abc")
        self.assertEqual(os.stat(path).st_mtime, 1700000000)
        self.assertTrue(os.path.isdir(self.root("new")))
        # A negative mtime is a time before 1970.
        r = self.upload(c, 3, "d/old.bin", b"o", mtime=-86400)
        self.assertIs(r.get("ok"), True, r)
        self.assertEqual(r["mtime"], -86400)
        self.assertEqual(os.stat(self.root("d", "old.bin")).st_mtime, -86400)
        # No partial is left in any folder but the root, none at all here.
        for folder, _, files in os.walk(self.server.root):
            self.assertEqual([n for n in files if n.startswith(".ferry-partial")], [], folder)

    def test_hello_says_the_mtime_limits_a_put_and_set_mtime_are_held_to(self):
        # 4.1: what the served file system holds of a time; a put's and a
        # set_mtime's reply say what it holds, as those limits predict.
        c = self.client(hello=False)
        hello = self.ask(c, {"op": "hello", "id": 0, "version": 2})
        limits = hello["mtime_limits"]
        self.assertEqual(sorted(limits), ["max", "min", "step"])
        self.assertLessEqual(limits["min"], limits["max"])
        self.assertGreaterEqual(limits["step"], 1)

        def held(t):
            t = max(limits["min"], min(limits["max"], t))
            return t - t % limits["step"]

        for rid, asked in enumerate((2**62, -2**62, 2**63 - 1, -2**63, 1_700_000_001), start=1):
            r = self.upload(c, rid, "t%d.bin" % rid, b"t", mtime=asked)
            self.assertIs(r.get("ok"), True, r)
            self.assertEqual(r["mtime"], held(asked), asked)
            self.assertEqual(int(os.stat(self.root("t%d.bin" % rid)).st_mtime), held(asked))
            s = self.ok(c, {"op": "set_mtime", "id": 100 + rid, "path": "t%d.bin" % rid, "mtime": asked})
            self.assertEqual(s["mtime"], held(asked), asked)
        # A version-1 hello carries no such field.
        v1 = self.ask(self.client(hello=False), {"op": "hello", "id": 0, "version": 1})
        self.assertNotIn("mtime_limits", v1)

    def test_a_puts_mode_is_a_new_files_create_mode(self):
        # 4.5's mode: as open(2)'s mode argument, less the server's umask
        # (ferryd's is the one it started with: this process's), never a
        # set-ID or sticky bit, and never for a file the upload replaces.
        umask = os.umask(0)
        os.umask(umask)
        c = self.client2()
        for rid, (name, mode) in enumerate([("m/private", 0o600), ("m/tool", 0o755), ("m/all", 0o7777),
                                            ("m/none", 0)], start=40):
            r = self.upload(c, rid, name, b"m", parents=True, mode=mode)
            self.assertIs(r.get("ok"), True, r)
            want = mode & 0o777 & ~umask
            self.assertEqual(os.stat(self.root(name)).st_mode & 0o7777, want, name)
            self.assertEqual(r["mode"], want, name)   # the commit reply describes the file published
            s = self.ok(c, {"op": "stat", "id": 100 + rid, "name": name})
            self.assertEqual(s["mode"], want, name)
        os.chmod(self.root("m", "tool"), 0o604)
        r = self.upload(c, 50, "m/tool", b"new", mode=0o700)
        self.assertIs(r.get("ok"), True, r)
        self.assertEqual(os.stat(self.root("m", "tool")).st_mode & 0o7777, 0o604)
        r = self.upload(c, 51, "m/plain", b"p")
        self.assertEqual(os.stat(self.root("m", "plain")).st_mode & 0o7777, 0o666 & ~umask)
        # A get's reply carries the mode too.
        r = self.ok(c, {"op": "get", "id": 52, "name": "m/private"})
        self.assertEqual(r["mode"], 0o600 & ~umask)
        self.read_transfer(c)

    def test_a_version_1_put_ignores_mode(self):
        c = self.client()       # hello with version 1
        r = self.ask(c, {"op": "put", "id": 60, "name": "v1.bin", "size": 1, "mode": "not bits"})
        self.assertIs(r.get("ok"), True, r)
        c.send_data(b"1")
        r = self.ask(c, {"op": "commit", "id": 60, "sha256": sha(b"1")})
        self.assertIs(r.get("ok"), True, r)
        self.assertNotIn("mode", r)
        umask = os.umask(0)
        os.umask(umask)
        self.assertEqual(os.stat(self.root("v1.bin")).st_mode & 0o7777, 0o666 & ~umask)

    def test_put_without_parents_into_a_missing_folder_is_not_found(self):
        c = self.client2()
        r = self.ask(c, {"op": "put", "id": 4, "name": "absent/x.bin", "size": 1})
        self.assertError(r, "not_found", 4)
        self.assertFalse(os.path.exists(self.root("absent")))
        self.assertUsable(c)

    def test_put_fields_follow_3_1(self):
        c = self.client2()
        for rid, extra in enumerate([{"parents": None}, {"parents": 1}, {"mtime": None},
                                     {"mtime": 1.5}, {"mtime": "1"},
                                     {"mtime": 2 ** 63}, {"mode": None}, {"mode": -1},
                                     {"mode": 4096}, {"mode": "0644"}, {"mode": 420.0},
                                     {"mode": True}, {"mode": 2 ** 64}], start=5):
            req = dict({"op": "put", "id": rid, "name": "d/z.bin", "size": 1}, **extra)
            with self.subTest(extra=extra):
                self.assertError(self.ask(c, req), "bad_request", rid)
        self.assertFalse(os.path.exists(self.root("d", "z.bin")))

    def test_put_onto_a_folder_is_not_regular_file(self):
        c = self.client2()
        self.assertError(self.ask(c, {"op": "put", "id": 12, "name": "d", "size": 1}), "not_regular_file", 12)

    def test_commit_without_replace_leaves_a_file_that_appeared_during_the_upload(self):
        """4.5: a commit with replace false is checked at the rename itself:
        a file put at the name after the put (here by another program, the
        data already sent) is `exists`, stays as it is, and nothing is left
        in the root."""
        c = self.client2()
        content = b"the upload's bytes"
        r = self.ok(c, {"op": "put", "id": 40, "name": "d/late.bin", "size": len(content)})
        self.assertEqual(r["offset"], 0)
        c.send_data(content)
        write_file(self.root("d", "late.bin"), b"appeared meanwhile", MTIME)
        r = self.ask(c, {"op": "commit", "id": 40, "sha256": sha(content), "replace": False})
        self.assertError(r, "exists", 40)
        with open(self.root("d", "late.bin"), "rb") as f:
            self.assertEqual(f.read(), b"appeared meanwhile")
        self.assertEqual([n for n in os.listdir(self.server.root) if n.startswith(".ferry-partial")], [])
        self.assertUsable(c)
        # Where the name is free at the rename, it publishes as any commit.
        r = self.ask(c, {"op": "put", "id": 41, "name": "d/free.bin", "size": len(content)})
        self.assertIs(r.get("ok"), True, r)
        c.send_data(content)
        r = self.ok(c, {"op": "commit", "id": 41, "sha256": sha(content), "replace": False})
        self.assertEqual((r["name"], r["size"]), ("d/free.bin", len(content)))
        with open(self.root("d", "free.bin"), "rb") as f:
            self.assertEqual(f.read(), content)
        # replace true, as without the field, replaces.
        r = self.ask(c, {"op": "put", "id": 42, "name": "d/late.bin", "size": len(content)})
        self.assertIs(r.get("ok"), True, r)
        c.send_data(content)
        self.ok(c, {"op": "commit", "id": 42, "sha256": sha(content), "replace": True})
        with open(self.root("d", "late.bin"), "rb") as f:
            self.assertEqual(f.read(), content)

    def test_a_deferred_commit_publishes_at_once_and_sync_answers_for_it(self):
        """4.5 and 4.14: a commit with defer_sync publishes as any commit and
        says synced false; the connection's sync then answers for its folder,
        once; a sync with nothing deferred syncs no folder; a sync during an
        upload is unexpected_frame and the upload goes on; a mistyped
        defer_sync is bad_request."""
        c = self.client2()
        self.assertEqual(self.ok(c, {"op": "sync", "id": 44}), {"id": 44, "ok": True, "folders": 0})
        for rid, name in ((45, "d/one.bin"), (46, "d/two.bin"), (47, "top.bin")):
            content = name.encode()
            r = self.ok(c, {"op": "put", "id": rid, "name": name, "size": len(content)})
            c.send_data(content)
            if rid == 45:
                for bad in (None, 1, "true"):
                    with self.subTest(defer_sync=bad):
                        r = self.ask(c, {"op": "commit", "id": rid, "sha256": sha(content), "defer_sync": bad})
                        self.assertError(r, "bad_request", rid)
                r = self.ask(c, {"op": "sync", "id": 48})
                self.assertError(r, "unexpected_frame", 48)
            r = self.ok(c, {"op": "commit", "id": rid, "sha256": sha(content), "defer_sync": True})
            self.assertIs(r.get("synced"), False, r)
            with open(self.root(*name.split("/")), "rb") as f:
                self.assertEqual(f.read(), content)
        # Two folders: d, and the served folder itself.
        self.assertEqual(self.ok(c, {"op": "sync", "id": 49})["folders"], 2)
        self.assertEqual(self.ok(c, {"op": "sync", "id": 50})["folders"], 0)
        # Without the field a commit is synced before its reply, as always.
        r = self.ok(c, {"op": "put", "id": 51, "name": "d/three.bin", "size": 1})
        c.send_data(b"3")
        self.assertNotIn("synced", self.ok(c, {"op": "commit", "id": 51, "sha256": sha(b"3")}))
        self.assertEqual(self.ok(c, {"op": "sync", "id": 52})["folders"], 0)
        # Version 1 has no sync.
        old = self.client()
        self.assertError(self.ask(old, {"op": "sync", "id": 53}), "unknown_op", 53)

    def test_commit_replace_follows_3_1(self):
        """A mistyped replace is bad_request, and the upload goes on."""
        c = self.client2()
        r = self.ask(c, {"op": "put", "id": 43, "name": "d/typed.bin", "size": 1})
        self.assertIs(r.get("ok"), True, r)
        c.send_data(b"x")
        for bad in (None, 0, "false"):
            with self.subTest(replace=bad):
                r = self.ask(c, {"op": "commit", "id": 43, "sha256": sha(b"x"), "replace": bad})
                self.assertError(r, "bad_request", 43)
        self.ok(c, {"op": "commit", "id": 43, "sha256": sha(b"x"), "replace": False})
        self.assertTrue(os.path.exists(self.root("d", "typed.bin")))

    def test_digest_in_either_hash(self):
        c = self.client2()
        r = self.ok(c, {"op": "digest", "id": 13, "name": "d/f.bin"})
        self.assertEqual((r["name"], r["size"], r["mtime"]), ("d/f.bin", 5, MTIME))
        self.assertEqual(r["sha256"], sha(b"hello"))
        r = self.ok(c, {"op": "digest", "id": 14, "name": "d/f.bin", "hash": "xxh3-128"})
        # The same digest a get's trailer carries in that hash.
        g = self.ok(c, {"op": "get", "id": 15, "name": "d/f.bin", "hash": "xxh3-128"})
        _, _, trailer = self.read_transfer(c)
        self.assertEqual(r["xxh3-128"], trailer["xxh3-128"])
        self.assertNotIn("sha256", r)
        self.assertEqual(g["size"], 5)

    def test_digest_refusals(self):
        c = self.client2()
        self.assertError(self.ask(c, {"op": "digest", "id": 16, "name": "d"}), "not_regular_file", 16)
        self.assertError(self.ask(c, {"op": "digest", "id": 17, "name": "d/none"}), "not_found", 17)
        self.assertError(self.ask(c, {"op": "digest", "id": 18, "name": "d/f.bin", "hash": "md5"}), "bad_request", 18)
        self.assertError(self.ask(c, {"op": "digest", "id": 19}), "bad_request", 19)


class MkdirDeleteTests(TreeCase):
    """4.10 and 4.11."""

    @classmethod
    def prepare(cls, root):
        write_file(os.path.join(root, "file.txt"), b"f", MTIME)

    def test_mkdir(self):
        c = self.client2()
        r = self.ok(c, {"op": "mkdir", "id": 1, "path": "m1", "parents": False})
        self.assertEqual((r["path"], r["created"]), ("m1", True))
        self.assertTrue(os.path.isdir(self.root("m1")))
        self.assertError(self.ask(c, {"op": "mkdir", "id": 2, "path": "m1"}), "exists", 2)
        r = self.ok(c, {"op": "mkdir", "id": 3, "path": "m1", "parents": True})
        self.assertIs(r["created"], False)
        r = self.ok(c, {"op": "mkdir", "id": 4, "path": "m2/x/y", "parents": True})
        self.assertIs(r["created"], True)
        self.assertTrue(os.path.isdir(self.root("m2", "x", "y")))
        self.assertError(self.ask(c, {"op": "mkdir", "id": 5, "path": "m3/x"}), "not_found", 5)
        self.assertFalse(os.path.exists(self.root("m3")))
        for rid, parents in ((6, False), (7, True)):
            self.assertError(self.ask(c, {"op": "mkdir", "id": rid, "path": "file.txt",
                                          "parents": parents}), "exists", rid)
        self.assertError(self.ask(c, {"op": "mkdir", "id": 8, "path": "m1", "parents": None}), "bad_request", 8)

    def test_folder_modes_are_the_create_modes_of_the_folders_made_aligned_to_the_paths_end(self):
        # 4.10's folder_modes: mkdir(2)'s mode for each folder made, the last
        # entry the deepest folder, with the owner's rwx, never a set-ID or
        # sticky bit, less the server's umask (ferryd's is this process's);
        # folders above the first entry get 0777, one already there keeps its own.
        umask = os.umask(0)
        os.umask(umask)

        def mode(*parts):
            return os.stat(self.root(*parts)).st_mode & 0o7777

        c = self.client2()
        r = self.ok(c, {"op": "mkdir", "id": 1, "path": "fm/a/b", "parents": True, "folder_modes": [0o700, 0o7750]})
        self.assertIs(r["created"], True)
        self.assertEqual((mode("fm"), mode("fm", "a"), mode("fm", "a", "b")),
                         (0o777 & ~umask, 0o700 & ~umask, 0o750 & ~umask))
        r = self.ok(c, {"op": "mkdir", "id": 2, "path": "fm/c", "folder_modes": [0o500]})
        self.assertEqual(mode("fm", "c"), 0o700 & ~umask)
        self.ok(c, {"op": "mkdir", "id": 3, "path": "fm/a", "parents": True, "folder_modes": [0o777, 0o777]})
        self.assertEqual(mode("fm", "a"), 0o700 & ~umask)
        r = self.upload(c, 4, "fp/q/f", b"f", parents=True, folder_modes=[0o711, 0o700])
        self.assertIs(r.get("ok"), True, r)
        self.assertEqual((mode("fp"), mode("fp", "q")), (0o711 & ~umask, 0o700 & ~umask))
        # More entries than folders, or anything but an array of permission
        # bits, is bad_request, and nothing is made.
        self.assertError(self.ask(c, {"op": "mkdir", "id": 5, "path": "fx/y", "parents": True,
                                      "folder_modes": [0o700] * 3}), "bad_request", 5)
        self.assertError(self.ask(c, {"op": "put", "id": 6, "name": "fx/f", "size": 1, "parents": True,
                                      "folder_modes": [0o700] * 2}), "bad_request", 6)
        for rid, bad in enumerate(([4096], [-1], "448", [448.0], None, [0o700] * 65), start=7):
            self.assertError(self.ask(c, {"op": "mkdir", "id": rid, "path": "fx", "folder_modes": bad}),
                             "bad_request", rid)
        self.assertFalse(os.path.exists(self.root("fx")))

    def test_delete_a_file_and_an_empty_folder(self):
        c = self.client2()
        write_file(self.root("gone.txt"), b"g")
        r = self.ok(c, {"op": "delete", "id": 10, "path": "gone.txt"})
        self.assertEqual((r["path"], r["type"], r["files"], r["folders"]), ("gone.txt", "file", 1, 0))
        self.assertFalse(os.path.exists(self.root("gone.txt")))
        os.makedirs(self.root("e"))
        r = self.ok(c, {"op": "delete", "id": 11, "path": "e", "recursive": False})
        self.assertEqual((r["type"], r["files"], r["folders"]), ("folder", 0, 1))
        self.assertFalse(os.path.exists(self.root("e")))
        self.assertError(self.ask(c, {"op": "delete", "id": 12, "path": "e"}), "not_found", 12)

    def test_a_folder_that_holds_anything_is_not_empty(self):
        c = self.client2()
        os.makedirs(self.root("h"))
        write_file(self.root("h", ".dot"), b"d")
        self.assertError(self.ask(c, {"op": "delete", "id": 13, "path": "h"}), "not_empty", 13)
        os.makedirs(self.root("full", "sub"))
        self.assertError(self.ask(c, {"op": "delete", "id": 14, "path": "full"}), "not_empty", 14)
        self.assertTrue(os.path.isdir(self.root("full", "sub")))

    def test_a_recursive_delete_counts_what_it_removed(self):
        c = self.client2()
        os.makedirs(self.root("tree", "a", "b"))
        for name in ("tree/1", "tree/a/2", "tree/a/b/3"):
            write_file(self.root(*name.split("/")), b"x")
        r = self.ok(c, {"op": "delete", "id": 15, "path": "tree", "recursive": True})
        self.assertEqual((r["path"], r["type"], r["files"], r["folders"]), ("tree", "folder", 3, 3))
        self.assertFalse(os.path.exists(self.root("tree")))

    def test_a_recursive_delete_leaves_what_it_would_not_list(self):
        c = self.client2()
        outside = tempfile.mkdtemp(prefix="ferry-outside-")
        self.addCleanup(shutil.rmtree, outside, True)
        write_file(os.path.join(outside, "keep.txt"), b"k")
        os.makedirs(self.root("mixed", "plain"))
        os.makedirs(self.root("mixed", "linked"))
        write_file(self.root("mixed", "plain", "p.txt"), b"p")
        os.symlink(outside, self.root("mixed", "linked", "out"))
        r = self.ask(c, {"op": "delete", "id": 16, "path": "mixed", "recursive": True})
        self.assertError(r, "not_empty", 16)
        self.assertIn("out", r["error"]["message"])
        # Removed before the refusal stays removed; the link and the
        # folders holding it stay; what it points to is untouched.
        self.assertFalse(os.path.exists(self.root("mixed", "plain")))
        self.assertTrue(os.path.islink(self.root("mixed", "linked", "out")))
        self.assertEqual(os.listdir(outside), ["keep.txt"])

    def test_a_list_names_the_folders_holding_what_a_delete_would_leave(self):
        c = self.client2()
        outside = tempfile.mkdtemp(prefix="ferry-outside-")
        self.addCleanup(shutil.rmtree, outside, True)
        for folder in ("hl/hidden", "hl/bad/deep", "hl/link", "hl/fifo", "hl/clean/sub"):
            os.makedirs(self.root(*folder.split("/")))
        write_file(self.root("hl", "hidden", ".secret"), b"s")
        write_file(self.root("hl", "hidden", "seen"), b"s")
        with open(os.path.join(self.root("hl", "bad", "deep").encode(), b"bad\xff"), "wb") as f:
            f.write(b"b")
        os.symlink(outside, self.root("hl", "link", "out"))
        os.mkfifo(self.root("hl", "fifo", "pipe"))
        write_file(self.root("hl", "clean", "sub", "c"), b"c")
        c.send({"op": "list", "id": 21, "path": "hl", "recursive": True})
        named = []
        while True:
            page = c.recv()
            named += page.get("holding_unlisted", [])
            if not page.get("more"):
                break
        self.assertEqual(sorted(named), ["bad/deep", "fifo", "hidden", "link"])
        # One folder's own listing names the folder itself as "".
        _, page = self.list_all(c, 22, path="hl/hidden")
        self.assertEqual(page.get("holding_unlisted"), [""], page)
        _, page = self.list_all(c, 23, path="hl/clean")
        self.assertNotIn("holding_unlisted", page)
        # And a recursive delete keeps exactly those folders, and those above them.
        r = self.ask(c, {"op": "delete", "id": 24, "path": "hl", "recursive": True})
        self.assertError(r, "not_empty", 24)
        self.assertFalse(os.path.exists(self.root("hl", "clean")))
        for folder in ("hidden", "bad/deep", "link", "fifo"):
            self.assertTrue(os.path.isdir(self.root("hl", *folder.split("/"))), folder)

    def test_delete_fields_follow_3_1(self):
        c = self.client2()
        self.assertError(self.ask(c, {"op": "delete", "id": 17}), "bad_request", 17)
        self.assertError(self.ask(c, {"op": "delete", "id": 18, "path": "file.txt",
                                      "recursive": None}), "bad_request", 18)
        self.assertTrue(os.path.exists(self.root("file.txt")))

    def test_a_delete_with_expect_removes_only_the_entry_described(self):
        """4.11: the entry at the path must still be the one expected (a
        file by type, size and mtime; a folder by type); anything else
        stays, as file_changed."""
        c = self.client2()
        os.makedirs(self.root("ex", "sub"))
        write_file(self.root("ex", "f"), b"12345", MTIME)
        listed = {e["name"]: e for e in self.list_all(c, 40, path="ex")[0]}
        as_file = {k: listed["f"][k] for k in ("type", "size", "mtime")}
        self.assertEqual(as_file, {"type": "file", "size": 5, "mtime": MTIME})
        # Another file at the name: of another size, of another mtime.
        rid = 41
        for content, mtime in ((b"123456", MTIME), (b"54321", MTIME + 1)):
            write_file(self.root("ex", "f"), content, mtime)
            r = self.ask(c, {"op": "delete", "id": rid, "path": "ex/f", "expect": as_file})
            self.assertError(r, "file_changed", rid)
            self.assertIn("ex/f", r["error"]["message"])
            with open(self.root("ex", "f"), "rb") as f:
                self.assertEqual(f.read(), content)
            rid += 1
        # A folder in the file's place, and a file in the folder's place.
        os.unlink(self.root("ex", "f"))
        os.makedirs(self.root("ex", "f"))
        self.assertError(self.ask(c, {"op": "delete", "id": 43, "path": "ex/f", "expect": as_file}),
                         "file_changed", 43)
        self.assertTrue(os.path.isdir(self.root("ex", "f")))
        os.rmdir(self.root("ex", "f"))
        os.rmdir(self.root("ex", "sub"))
        write_file(self.root("ex", "sub"), b"s")
        self.assertError(self.ask(c, {"op": "delete", "id": 44, "path": "ex/sub",
                                      "expect": {"type": "folder"}}), "file_changed", 44)
        self.assertTrue(os.path.isfile(self.root("ex", "sub")))
        os.unlink(self.root("ex", "sub"))
        os.makedirs(self.root("ex", "sub"))
        # As described: removed. A folder's mtime is not compared (its
        # entries' removal changes it), and a listing's entry may be sent as is.
        write_file(self.root("ex", "f"), b"12345", MTIME)
        r = self.ok(c, {"op": "delete", "id": 45, "path": "ex/f", "expect": as_file})
        self.assertEqual((r["type"], r["files"]), ("file", 1))
        folder = dict(listed["sub"], mtime=0)
        r = self.ok(c, {"op": "delete", "id": 46, "path": "ex/sub", "expect": folder})
        self.assertEqual((r["type"], r["folders"]), ("folder", 1))
        self.assertEqual(os.listdir(self.root("ex")), [])

    def test_a_bad_expect_is_bad_request_and_nothing_is_removed(self):
        c = self.client2()
        write_file(self.root("kept.txt"), b"k", MTIME)
        file = {"type": "file", "size": 1, "mtime": MTIME}
        for rid, fields in enumerate((
                {"expect": None},
                {"expect": "file"},
                {"expect": {}},
                {"expect": {"type": "link"}},
                {"expect": {"type": "file", "size": 1}},
                {"expect": {"type": "file", "mtime": MTIME}},
                {"expect": {"type": "file", "size": -1, "mtime": MTIME}},
                {"expect": {"type": "file", "size": 1, "mtime": 1.5}},
                {"expect": {"type": "folder", "size": None}},
                # A recursive delete removes what no listing described.
                {"expect": file, "recursive": True},
        ), start=50):
            with self.subTest(fields=fields):
                request = dict({"op": "delete", "id": rid, "path": "kept.txt"}, **fields)
                self.assertError(self.ask(c, request), "bad_request", rid)
        self.assertTrue(os.path.exists(self.root("kept.txt")))


class RenameTests(TreeCase):
    """4.12."""

    def setUp(self):
        for name in os.listdir(self.server.root):
            path = self.root(name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        os.makedirs(self.root("dir", "sub"))
        os.makedirs(self.root("emptydir"))
        write_file(self.root("a.txt"), b"a")
        write_file(self.root("b.txt"), b"b")
        write_file(self.root("dir", "sub", "in.txt"), b"i")

    def content(self, *parts):
        with open(self.root(*parts), "rb") as f:
            return f.read()

    def test_rename_across_folders(self):
        c = self.client2()
        r = self.ok(c, {"op": "rename", "id": 1, "from": "a.txt", "to": "dir/sub/a2.txt", "replace": False})
        self.assertEqual((r["from"], r["to"]), ("a.txt", "dir/sub/a2.txt"))
        self.assertFalse(os.path.exists(self.root("a.txt")))
        self.assertEqual(self.content("dir", "sub", "a2.txt"), b"a")
        r = self.ok(c, {"op": "rename", "id": 2, "from": "dir/sub", "to": "moved"})
        self.assertEqual(self.content("moved", "in.txt"), b"i")

    def test_without_replace_an_existing_target_is_exists(self):
        c = self.client2()
        for rid, (src, dst) in enumerate([("a.txt", "b.txt"), ("a.txt", "dir"),
                                          ("emptydir", "dir"), ("dir", "a.txt")], start=3):
            with self.subTest(src=src, dst=dst):
                self.assertError(self.ask(c, {"op": "rename", "id": rid, "from": src, "to": dst}),
                                 "exists", rid)
        self.assertEqual((self.content("a.txt"), self.content("b.txt")), (b"a", b"b"))

    def test_with_replace(self):
        c = self.client2()
        self.ok(c, {"op": "rename", "id": 7, "from": "a.txt", "to": "b.txt", "replace": True})
        self.assertEqual(self.content("b.txt"), b"a")
        self.assertFalse(os.path.exists(self.root("a.txt")))
        # A folder over an empty folder.
        os.makedirs(self.root("filled"))
        write_file(self.root("filled", "x"), b"x")
        self.ok(c, {"op": "rename", "id": 8, "from": "filled", "to": "emptydir", "replace": True})
        self.assertEqual(self.content("emptydir", "x"), b"x")
        # A folder over a folder that holds anything.
        self.assertError(self.ask(c, {"op": "rename", "id": 9, "from": "emptydir", "to": "dir",
                                      "replace": True}), "not_empty", 9)
        # A file over a folder; a folder over a file.
        self.assertError(self.ask(c, {"op": "rename", "id": 10, "from": "b.txt", "to": "dir",
                                      "replace": True}), "exists", 10)
        self.assertError(self.ask(c, {"op": "rename", "id": 11, "from": "dir", "to": "b.txt",
                                      "replace": True}), "not_a_folder", 11)
        self.assertEqual(self.content("dir", "sub", "in.txt"), b"i")
        self.assertEqual(self.content("b.txt"), b"a")

    def test_a_folder_into_itself_is_invalid_move(self):
        c = self.client2()
        for rid, dst in enumerate(["dir/sub/x", "dir/x", "dir/sub/deeper/x"], start=12):
            with self.subTest(dst=dst):
                r = self.ask(c, {"op": "rename", "id": rid, "from": "dir", "to": dst})
                self.assertError(r, "invalid_move", rid)
        r = self.ask(c, {"op": "rename", "id": 15, "from": "dir", "to": "dir/sub", "replace": True})
        self.assertError(r, "invalid_move", 15)
        self.assertTrue(os.path.isdir(self.root("dir", "sub")))
        # Onto itself: only what is there; a missing path is not_found.
        self.assertError(self.ask(c, {"op": "rename", "id": 18, "from": "dir", "to": "dir"}), "invalid_move", 18)
        self.assertError(self.ask(c, {"op": "rename", "id": 19, "from": "none", "to": "none"}), "not_found", 19)
        self.assertError(self.ask(c, {"op": "rename", "id": 20, "from": "dir/none", "to": "dir/none",
                                      "replace": True}), "not_found", 20)

    def test_missing_source_or_target_folder(self):
        c = self.client2()
        self.assertError(self.ask(c, {"op": "rename", "id": 16, "from": "none", "to": "x"}), "not_found", 16)
        self.assertError(self.ask(c, {"op": "rename", "id": 17, "from": "a.txt", "to": "none/x"}),
                         "not_found", 17)
        self.assertTrue(os.path.exists(self.root("a.txt")))

    def test_rename_fields_follow_3_1(self):
        c = self.client2()
        for rid, req in enumerate([{"from": "a.txt"}, {"to": "x"},
                                   {"from": None, "to": "x"},
                                   {"from": "a.txt", "to": "x", "replace": None},
                                   {"from": "a.txt", "to": "x", "replace": "no"}], start=20):
            with self.subTest(req=req):
                self.assertError(self.ask(c, dict({"op": "rename", "id": rid}, **req)), "bad_request", rid)
        self.assertTrue(os.path.exists(self.root("a.txt")))


class SetMtimeTests(TreeCase):
    """4.13: set_mtime of a file, a folder; what it refuses."""

    @classmethod
    def prepare(cls, root):
        os.makedirs(os.path.join(root, "d", "e"))
        write_file(os.path.join(root, "d", "f.txt"), b"f", MTIME)
        os.symlink("f.txt", os.path.join(root, "d", "link"))
        os.symlink("/", os.path.join(root, "out"))
        os.mkfifo(os.path.join(root, "d", "fifo"))
        os.makedirs(os.path.join(root, "x", "sub"))
        write_file(os.path.join(root, "x", "g.txt"), b"12345", MTIME)

    def test_a_set_mtime_with_expect_sets_only_the_entry_described(self):
        c = self.client2()
        listed = {"type": "file", "size": 5, "mtime": MTIME}
        for rid, (path, expect, differs) in enumerate([
                ("x/g.txt", dict(listed, size=6), "has 5 bytes, expected 6"),
                ("x/g.txt", dict(listed, mtime=MTIME - 1), "has mtime %d, expected %d" % (MTIME, MTIME - 1)),
                ("x/g.txt", {"type": "folder"}, "is a file, expected a folder"),
                ("x/sub", listed, "is a folder, expected a file"),
                ("", listed, "expected a file")], start=50):
            with self.subTest(path=path, expect=expect):
                before = os.stat(self.root(*path.split("/")) if path else self.root()).st_mtime_ns
                r = self.ask(c, {"op": "set_mtime", "id": rid, "path": path, "mtime": 5, "expect": expect})
                self.assertError(r, "file_changed", rid)
                self.assertIn(differs, r["error"]["message"])
                self.assertIn("its time was not set", r["error"]["message"])
                self.assertEqual(os.stat(self.root(*path.split("/")) if path else self.root()).st_mtime_ns, before)
        # As listed (a listing's entry as it came, name included): set.
        entry = dict(listed, name="g.txt")
        r = self.ok(c, {"op": "set_mtime", "id": 60, "path": "x/g.txt", "mtime": MTIME + 7, "expect": entry})
        self.assertEqual((r["name"], r["type"], r["size"], r["mtime"]), ("x/g.txt", "file", 5, MTIME + 7))
        self.assertEqual(int(os.stat(self.root("x", "g.txt")).st_mtime), MTIME + 7)
        # A folder by its type alone, whatever its mtime.
        r = self.ok(c, {"op": "set_mtime", "id": 61, "path": "x/sub", "mtime": MTIME - 9,
                        "expect": {"type": "folder", "size": 0, "mtime": 1}})
        self.assertEqual((r["type"], r["mtime"]), ("folder", MTIME - 9))
        self.ok(c, {"op": "set_mtime", "id": 62, "path": "x/g.txt", "mtime": MTIME,
                    "expect": dict(listed, mtime=MTIME + 7)})
        self.assertEqual(int(os.stat(self.root("x", "g.txt")).st_mtime), MTIME)

    def test_a_set_mtime_with_expect_refuses_links_and_fifos_untouched(self):
        c = self.client2()
        before = {name: os.lstat(self.root("d", name)).st_mtime_ns for name in ("f.txt", "link", "fifo")}
        for rid, path in enumerate(["d/link", "d/fifo"], start=70):
            with self.subTest(path=path):
                self.assertError(self.ask(c, {"op": "set_mtime", "id": rid, "path": path, "mtime": 5,
                                              "expect": {"type": "file", "size": 1, "mtime": MTIME}}),
                                 "not_regular_file", rid)
        after = {name: os.lstat(self.root("d", name)).st_mtime_ns for name in ("f.txt", "link", "fifo")}
        self.assertEqual(after, before)

    def test_a_bad_set_mtime_expect_is_bad_request_and_nothing_is_set(self):
        c = self.client2()
        before = os.stat(self.root("x", "g.txt")).st_mtime_ns
        for rid, expect in enumerate([None, "file", [], {}, {"type": "link", "size": 1, "mtime": 1},
                                      {"type": "file"}, {"type": "file", "size": 5},
                                      {"type": "file", "mtime": MTIME}, {"type": "file", "size": -1, "mtime": 1},
                                      {"type": "file", "size": 5, "mtime": "1"},
                                      {"type": "folder", "mtime": 1.5}], start=80):
            with self.subTest(expect=expect):
                self.assertError(self.ask(c, {"op": "set_mtime", "id": rid, "path": "x/g.txt", "mtime": 5,
                                              "expect": expect}), "bad_request", rid)
        self.assertEqual(os.stat(self.root("x", "g.txt")).st_mtime_ns, before)

    def test_a_file_and_a_folder_get_the_time_given(self):
        c = self.client2()
        atime = os.stat(self.root("d", "f.txt")).st_atime
        r = self.ok(c, {"op": "set_mtime", "id": 1, "path": "d/f.txt", "mtime": MTIME + 100})
        self.assertEqual((r["name"], r["type"], r["size"], r["mtime"]), ("d/f.txt", "file", 1, MTIME + 100))
        st = os.stat(self.root("d", "f.txt"))
        self.assertEqual((int(st.st_mtime), st.st_atime), (MTIME + 100, atime))
        r = self.ok(c, {"op": "set_mtime", "id": 2, "path": "d/e", "mtime": -86400})
        self.assertEqual((r["name"], r["type"], r["mtime"]), ("d/e", "folder", -86400))
        self.assertEqual(int(os.stat(self.root("d", "e")).st_mtime), -86400)
        self.assertEqual(self.ok(c, {"op": "stat", "id": 3, "name": "d/e"})["mtime"], -86400)

    def test_links_fifos_and_missing_paths_are_refused_untouched(self):
        c = self.client2()
        before = {name: os.lstat(self.root("d", name)).st_mtime_ns for name in ("f.txt", "link", "fifo")}
        outside = os.stat("/").st_mtime_ns
        for rid, (path, code) in enumerate([("d/link", "not_regular_file"),
                                            ("d/fifo", "not_regular_file"),
                                            ("out", "not_regular_file"),
                                            ("out/etc", "not_a_folder"),
                                            ("d/link/x", "not_a_folder"),
                                            ("d/none", "not_found"),
                                            ("none/x", "not_found"),
                                            ("d/f.txt/x", "not_a_folder")], start=10):
            with self.subTest(path=path):
                self.assertError(self.ask(c, {"op": "set_mtime", "id": rid, "path": path, "mtime": 5}),
                                 code, rid)
        after = {name: os.lstat(self.root("d", name)).st_mtime_ns for name in ("f.txt", "link", "fifo")}
        self.assertEqual(after, before)
        self.assertEqual(os.stat("/").st_mtime_ns, outside)

    def test_set_mtime_fields_follow_3_1(self):
        c = self.client2()
        for rid, req in enumerate([{"path": "d"}, {"mtime": 5},
                                   {"path": None, "mtime": 5},
                                   {"path": "d", "mtime": None},
                                   {"path": "d", "mtime": "5"},
                                   {"path": "d", "mtime": 1.5},
                                   {"path": "d", "mtime": 2 ** 63}], start=30):
            with self.subTest(req=req):
                self.assertError(self.ask(c, dict({"op": "set_mtime", "id": rid}, **req)), "bad_request", rid)

    def test_version_1_does_not_know_set_mtime(self):
        c = self.client()
        self.assertError(self.ask(c, {"op": "set_mtime", "id": 40, "path": "d", "mtime": 5}), "unknown_op", 40)
        self.assertNotEqual(int(os.stat(self.root("d")).st_mtime), 5)


class CommitTargetTests(TreeCase):
    """4.5 and 4.7: what stands at an upload's name when it is published, and
    what a partial file the server finds at its (predictable) name may be."""

    @classmethod
    def prepare(cls, root):
        os.makedirs(os.path.join(root, "t"))

    def begin(self, c, rid, name, content):
        r = self.ask(c, {"op": "put", "id": rid, "name": name, "size": len(content)})
        self.assertIs(r.get("ok"), True, r)
        c.send_data(content)

    def test_a_special_file_that_took_the_name_meanwhile_is_not_replaced(self):
        outside = tempfile.mkdtemp(prefix="ferry-conf-outside-")
        self.addCleanup(shutil.rmtree, outside)
        write_file(os.path.join(outside, "keep.txt"), b"outside")
        import socket
        import stat as st

        def fifo(path):
            os.mkfifo(path)

        def link(path):
            os.symlink(os.path.join(outside, "keep.txt"), path)

        def unix_socket(path):
            s = socket.socket(socket.AF_UNIX)
            s.bind(path)
            self.addCleanup(s.close)

        def device(path):
            os.mknod(path, 0o600 | st.S_IFCHR, os.makedev(1, 3))

        c = self.client2()
        for rid, (kind, make, check) in enumerate([("fifo", fifo, st.S_ISFIFO), ("link", link, st.S_ISLNK),
                                                   ("socket", unix_socket, st.S_ISSOCK),
                                                   ("device", device, st.S_ISCHR)], start=1):
            with self.subTest(kind=kind):
                name = "t/" + kind
                content = os.urandom(5000)
                self.begin(c, rid, name, content)
                make(self.root("t", kind))
                r = self.ask(c, {"op": "commit", "id": rid, "sha256": sha(content)})
                self.assertError(r, "not_regular_file", rid)
                self.assertTrue(check(os.lstat(self.root("t", kind)).st_mode), kind)
        with open(os.path.join(outside, "keep.txt"), "rb") as f:
            self.assertEqual(f.read(), b"outside")
        self.assertUsable(c)
        self.assertEqual([n for n in os.listdir(self.server.root) if n.startswith(".ferry-partial")], [])

    def partial_of(self, name, size):
        token = hashlib.sha256(("%d\n%s" % (size, name)).encode()).hexdigest()[:32]
        return self.root(".ferry-partial-" + token)

    def test_a_planted_partial_is_made_private_or_left_behind(self):
        c = self.client2()
        content = os.urandom(3000)
        # Left by a crash between the commit's chmod and its rename: wider than 0600.
        planted = self.partial_of("t/wide.bin", len(content))
        write_file(planted, b"")
        os.chmod(planted, 0o644)
        self.begin(c, 20, "t/wide.bin", content)
        self.assertEqual(os.stat(planted).st_mode & 0o777, 0o600)
        self.ok(c, {"op": "commit", "id": 20, "sha256": sha(content)})
        # Made by another user, who holds it open: never written through.
        planted = self.partial_of("t/theirs.bin", len(content))
        write_file(planted, b"")
        os.chown(planted, 65534, 65534)
        os.chmod(planted, 0o666)
        held = open(planted, "rb")
        self.addCleanup(held.close)
        self.begin(c, 21, "t/theirs.bin", content)
        self.assertNotEqual(os.stat(planted).st_ino, os.fstat(held.fileno()).st_ino)
        self.assertEqual(os.stat(planted).st_mode & 0o777, 0o600)
        self.ok(c, {"op": "commit", "id": 21, "sha256": sha(content)})
        self.assertEqual(held.read(), b"")
        with open(self.root("t", "theirs.bin"), "rb") as f:
            self.assertEqual(f.read(), content)


class UnreadableFolderTests(TreeCase):
    """4.2's unreadable_folders: ferryd runs as uid 1234 over a tree whose
    folders it may not enter (root's, 0700), may read but not search (0600:
    no entry can be stat'ed), or may read in full. Each folder it could not
    read is named with its code, in holding_unlisted too, and is never
    passed for an empty one."""

    server_user = 1234

    @classmethod
    def prepare(cls, root):
        for rel, data in (("t/ok/a.txt", b"a"), ("t/locked/secret.txt", b"s"), ("t/locked/deep/x", b"x"),
                          ("t/nosearch/f.txt", b"f"), ("t/ok/inner/locked2/y", b"y")):
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            write_file(os.path.join(root, rel), data)
        for folder, folders, files in os.walk(root):
            for name in [folder] + [os.path.join(folder, n) for n in folders + files]:
                os.lchown(name, cls.server_user, cls.server_user)
        for rel in ("t/locked", "t/ok/inner/locked2"):
            os.chown(os.path.join(root, rel), 0, 0)
            os.chmod(os.path.join(root, rel), 0o700)
        os.chmod(os.path.join(root, "t", "nosearch"), 0o600)

    def unread(self, c, rid, path):
        """(entries, unreadable_folders, holding_unlisted) of a recursive list, all pages."""
        c.send({"op": "list", "id": rid, "path": path, "recursive": True})
        entries, unread, holding = [], [], []
        while True:
            page = c.recv()
            self.assertIs(page.get("ok"), True, page)
            entries += [e["name"] for e in page["files"]]
            unread += page.get("unreadable_folders", [])
            holding += page.get("holding_unlisted", [])
            if not page.get("more"):
                return sorted(entries), sorted(unread, key=lambda f: f["path"]), sorted(holding)

    def test_hello_lists_the_capability(self):
        c = self.client(hello=False)
        r = self.ask(c, {"op": "hello", "id": 0, "version": 2, "client": "conformance-tree/1"})
        self.assertIn("unreadable_folders", r["capabilities"], r)

    def test_a_recursive_list_names_each_folder_it_could_not_read_with_its_code(self):
        c = self.client2()
        entries, unread, holding = self.unread(c, 1, "t")
        self.assertEqual(entries, ["locked", "nosearch", "ok", "ok/a.txt", "ok/inner", "ok/inner/locked2"])
        self.assertEqual(unread, [{"code": "forbidden", "path": "locked"},
                                  {"code": "forbidden", "path": "nosearch"},
                                  {"code": "forbidden", "path": "ok/inner/locked2"}])
        self.assertEqual(holding, ["locked", "nosearch", "ok/inner/locked2"])
        # The listed folder itself, read but not searchable: "".
        _, unread, _ = self.unread(c, 2, "t/nosearch")
        self.assertEqual(unread, [{"code": "forbidden", "path": ""}])
        # Paths are relative to the listed folder; a plain list never enters.
        _, unread, _ = self.unread(c, 3, "t/ok")
        self.assertEqual([f["path"] for f in unread], ["inner/locked2"])
        _, page = self.list_all(c, 4, path="t")
        self.assertNotIn("unreadable_folders", page)
        # A folder it cannot enter, asked for itself, is the same code.
        self.assertError(self.ask(c, {"op": "list", "id": 5, "path": "t/locked", "recursive": True}),
                         "forbidden", 5)


class ReadOnlyTreeTests(TreeCase):
    """4.1: a read-only connection reads the tree and changes nothing."""

    server_args = ("--read-only",)

    @classmethod
    def prepare(cls, root):
        os.makedirs(os.path.join(root, "d"))
        write_file(os.path.join(root, "d", "f.txt"), b"f", MTIME)

    def test_read_only_refuses_what_changes_the_tree(self):
        c = self.client2()
        for rid, req in enumerate([
                {"op": "mkdir", "path": "x"},
                {"op": "mkdir", "path": "d", "parents": True},
                {"op": "delete", "path": "d/f.txt"},
                {"op": "delete", "path": "d", "recursive": True},
                {"op": "rename", "from": "d/f.txt", "to": "g.txt"},
                {"op": "set_mtime", "path": "d/f.txt", "mtime": 5},
                {"op": "set_mtime", "path": "", "mtime": 5},
                {"op": "put", "name": "d/g.txt", "size": 1, "parents": True}], start=1):
            req["id"] = rid
            with self.subTest(req=req):
                self.assertError(self.ask(c, req), "forbidden", rid)
        self.assertEqual(sorted(os.listdir(self.server.root)), ["d"])
        self.assertEqual(os.listdir(self.root("d")), ["f.txt"])
        self.assertEqual(int(os.stat(self.root("d", "f.txt")).st_mtime), MTIME)
        self.ok(c, {"op": "digest", "id": 10, "name": "d/f.txt"})
        self.ok(c, {"op": "stat", "id": 11, "name": "d"})
        # Section 6's order: the tree operations are refused before their
        # paths are looked at; a put's name is checked before its access.
        for rid, req in enumerate([
                {"op": "mkdir", "path": "../x"},
                {"op": "delete", "path": ""},
                {"op": "rename", "from": "a//b", "to": "/c"},
                {"op": "set_mtime", "path": "d/../e", "mtime": 5}], start=20):
            req["id"] = rid
            with self.subTest(req=req):
                self.assertError(self.ask(c, req), "forbidden", rid)
        self.assertError(self.ask(c, {"op": "put", "id": 30, "name": "../x", "size": 1}), "invalid_name", 30)
        entries, _ = self.list_all(c, 12, recursive=True)
        self.assertEqual(sorted(e["name"] for e in entries), ["d", "d/f.txt"])
