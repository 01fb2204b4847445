"""The transfer hash chosen at hello: sha256 and xxh3-128 on get and put.

Part of the conformance suite (ferryd against docs/PROTOCOL.md);
test_conformance.py runs it with the others.
"""

import os

import ferry_wire as fw
from conformance import ServerCase, sha, write_file


class HashChoiceTests(ServerCase):
    """Section 4.1's hash table: a get or put names its hash; digests travel
    under the hash's name. The standard library cannot compute XXH3, so the
    digests are checked for form and for agreement between operations."""

    DATA = bytes(range(256)) * 700 + b"tail"

    @classmethod
    def prepare(cls, root):
        write_file(os.path.join(root, "a.bin"), cls.DATA)
        write_file(os.path.join(root, "b.bin"), cls.DATA[:-1] + b"!")

    def fast_get(self, c, name, offset=0, rid=70):
        r = self.ask(c, {"op": "get", "id": rid, "name": name,
                         "offset": offset, "hash": "xxh3-128"})
        self.assertTrue(r.get("ok"), r)
        body, _, end = self.read_transfer(c)
        return body, end

    def test_hello_offers_both(self):
        r = self.client(hello=False).request("hello", id=0, version=1)
        self.assertEqual(r["hashes"][:2], ["sha256", "xxh3-128"])

    def test_get_with_xxh3_names_its_digest(self):
        c = self.client()
        body, end = self.fast_get(c, "a.bin")
        self.assertEqual(body, self.DATA)
        self.assertNotIn("sha256", end)
        self.assertRegex(end["xxh3-128"], r"^[0-9a-f]{32}$")
        # The digest covers the whole file whatever the offset, is stable,
        # and tells a one-byte change apart.
        _, from_middle = self.fast_get(c, "a.bin", offset=1000, rid=71)
        self.assertEqual(from_middle["xxh3-128"], end["xxh3-128"])
        _, again = self.fast_get(c, "a.bin", rid=72)
        self.assertEqual(again["xxh3-128"], end["xxh3-128"])
        _, other = self.fast_get(c, "b.bin", rid=73)
        self.assertNotEqual(other["xxh3-128"], end["xxh3-128"])
        self.assertUsable(c)

    def test_unknown_hash_is_a_bad_request(self):
        c = self.client()
        for bad in ("md5", "XXH3-128", "", 5):
            self.assertError(self.ask(c, {"op": "get", "id": 74, "name": "a.bin",
                                          "hash": bad}), "bad_request", 74)
            self.assertError(self.ask(c, {"op": "put", "id": 75, "name": "n.bin",
                                          "size": 1, "hash": bad}), "bad_request", 75)
        self.assertUsable(c)

    def test_put_with_xxh3_commits_under_its_name(self):
        c = self.client()
        _, end = self.fast_get(c, "a.bin")
        digest = end["xxh3-128"]
        r = self.ask(c, {"op": "put", "id": 76, "name": "up.bin",
                         "size": len(self.DATA), "hash": "xxh3-128"})
        self.assertTrue(r.get("ok"), r)
        for i in range(0, len(self.DATA), fw.CHUNK):
            c.send_data(self.DATA[i:i + fw.CHUNK])
        # Another hash's digest is refused and the upload goes on.
        self.assertError(self.ask(c, {"op": "commit", "id": 76,
                                      "sha256": sha(self.DATA)}), "bad_request", 76)
        wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
        r = self.ask(c, {"op": "put", "id": 77, "name": "up2.bin",
                         "size": 1, "hash": "xxh3-128"})
        self.assertError(r, "unexpected_frame", 77)
        done = self.ask(c, {"op": "commit", "id": 76, "xxh3-128": digest})
        self.assertIs(done.get("ok"), True, done)
        self.assertEqual(done["xxh3-128"], digest)
        with open(self.server.path("up.bin"), "rb") as f:
            self.assertEqual(f.read(), self.DATA)
        # A wrong digest publishes nothing.
        r = self.ask(c, {"op": "put", "id": 78, "name": "bad.bin",
                         "size": 3, "hash": "xxh3-128"})
        self.assertTrue(r.get("ok"), r)
        c.send_data(b"abc")
        self.assertError(self.ask(c, {"op": "commit", "id": 78, "xxh3-128": wrong}),
                         "hash_mismatch", 78)
        self.assertFalse(os.path.exists(self.server.path("bad.bin")))
