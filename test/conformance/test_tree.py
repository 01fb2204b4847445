"""Version 2: the tree (PROTOCOL.md 5.1, 4.2 to 4.12, 8), from the document
alone, with raw frames; part of the conformance suite (test_conformance.py
runs it with the others). Here: what a version-1 connection still sees over
a tree, and hello with version 2.
"""

import hashlib
import os
import shutil
import tempfile

from conformance import MTIME, ServerCase, write_file

V2_CAPABILITIES = ("folders", "mkdir", "delete", "rename", "digest", "mtime")


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


class Version1ViewTests(TreeCase):
    """8: over a tree, a version-1 connection sees the root as version 1
    always showed it; hello with 2 announces the tree."""

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
        for d in ("logs", os.path.join("logs", "old"), "empty"):
            os.utime(os.path.join(root, d), (MTIME, MTIME))

    def test_hello_2_announces_the_tree(self):
        c = self.client(hello=False)
        r = self.ask(c, {"op": "hello", "id": 0, "version": 2})
        self.assertEqual(r["version"], 2)
        for cap in V2_CAPABILITIES:
            self.assertIn(cap, r["capabilities"])

    def test_version_1_sees_the_root_as_before(self):
        c = self.client()       # hello with version 1
        r = self.ok(c, {"op": "list", "id": 16})
        self.assertEqual(r["files"], [{"name": "top.txt", "size": 3, "mtime": MTIME}])
        # "path" is no field of version 1: ignored, the root is listed.
        r = self.ok(c, {"op": "list", "id": 17, "path": "logs", "recursive": True})
        self.assertEqual([e["name"] for e in r["files"]], ["top.txt"])
        self.assertError(self.ask(c, {"op": "stat", "id": 18, "name": "logs"}), "not_regular_file", 18)
        self.assertError(self.ask(c, {"op": "stat", "id": 19, "name": "logs/a.log"}), "invalid_name", 19)
        r = self.ok(c, {"op": "stat", "id": 20, "name": "top.txt"})
        self.assertNotIn("type", r)
