"""hello and framing: versions, hello_required, frame limits, JSON rules,
pipelining and ids.

Part of the conformance suite (ferryd against docs/PROTOCOL.md);
test_conformance.py runs it with the others.
"""

import os
import struct
import time

import ferry_wire as fw
from conformance import (MTIME, PROTOCOL_MD, ServerCase, hexdump_blocks,
                         sha, write_file)


class HelloTests(ServerCase):

    def test_hello_reply(self):
        c = self.client(hello=False)
        r = self.ask(c, {"op": "hello", "id": 77, "version": 1,
                         "client": "conformance/1"})
        self.assertIs(r["ok"], True)
        self.assertEqual(r["id"], 77)
        self.assertEqual(r["version"], 1)
        self.assertIsInstance(r["server"], str)
        for cap in ("list", "stat", "get", "put", "resume"):
            self.assertIn(cap, r["capabilities"])
        self.assertIn("sha256", r["hashes"])
        self.assertEqual(r["max_control_frame"], 65536)
        self.assertEqual(r["max_data_frame"], 16777216)

    def test_appendix_a_hello_reply_is_what_the_server_says(self):
        """Appendix A's worked example is true of a server started with no
        options: its hello request gets exactly its hello reply."""
        with open(PROTOCOL_MD) as f:
            blocks = dict(hexdump_blocks(f.read()))
        c = self.client(hello=False)
        c.send_raw(blocks["hello request"])
        got = c.recv_frame()
        want = fw.decode_all(blocks["hello reply"])[0]
        self.assertEqual(got.json(), want.json())

    def test_hello_client_field_is_optional(self):
        c = self.client(hello=False)
        r = self.ask(c, {"op": "hello", "id": 0, "version": 1})
        self.assertIs(r["ok"], True)
        self.assertUsable(c)

    def test_second_hello_is_answered_like_the_first(self):
        c = self.client()
        r = self.ask(c, {"op": "hello", "id": 9, "version": 1})
        self.assertIs(r["ok"], True)
        self.assertEqual(r["id"], 9)
        self.assertEqual(r["version"], 1)
        self.assertUsable(c)

    def test_unsupported_version_then_close(self):
        c = self.client(hello=False)
        r = self.ask(c, {"op": "hello", "id": 3, "version": 0})
        self.assertError(r, "unsupported_version", 3)
        self.assertClosed(c)

    def test_unsupported_version_on_second_hello_closes(self):
        c = self.client()
        r = self.ask(c, {"op": "hello", "id": 4, "version": 0})
        self.assertError(r, "unsupported_version", 4)
        self.assertClosed(c)

    def test_version_is_the_highest_both_speak(self):
        """Section 8: the reply's version is the highest the server speaks
        that is not above the client's; version 2 adds its capabilities."""
        v2_caps = ("folders", "mkdir", "delete", "rename", "digest", "mtime")
        for asked, got in ((1, 1), (2, 2), (3, 2), (1000, 2),
                           (2 ** 32 - 1, 2)):
            with self.subTest(version=asked):
                c = self.client(hello=False)
                r = self.ask(c, {"op": "hello", "id": 5, "version": asked})
                self.assertIs(r["ok"], True)
                self.assertEqual(r["version"], got)
                for cap in v2_caps:
                    if got == 2:
                        self.assertIn(cap, r["capabilities"])
                    else:
                        self.assertNotIn(cap, r["capabilities"])
                self.assertUsable(c)

    def test_version_1_keeps_the_flat_folder(self):
        """A version-1 client sees the root as before: names with '/' are
        invalid_name and the operations of version 2 are unknown_op."""
        c = self.client()       # says hello with version 1
        for rid, req in enumerate([
                {"op": "stat", "name": "a/b"},
                {"op": "get", "name": "a/b"},
                {"op": "put", "name": "a/b", "size": 1}], start=20):
            req["id"] = rid
            self.assertError(self.ask(c, req), "invalid_name", rid)
        for rid, req in enumerate([
                {"op": "mkdir", "path": "a"},
                {"op": "delete", "path": "a"},
                {"op": "rename", "from": "a", "to": "b"},
                {"op": "digest", "name": "a"}], start=30):
            req["id"] = rid
            self.assertError(self.ask(c, req), "unknown_op", rid)
        self.assertUsable(c)

    def test_hello_required_keeps_connection_open(self):
        c = self.client(hello=False)
        requests = [
            {"op": "list", "id": 1},
            {"op": "stat", "id": 2, "name": "a"},
            {"op": "get", "id": 3, "name": "a"},
            {"op": "put", "id": 4, "name": "a", "size": 1},
            {"op": "commit", "id": 5, "sha256": "0" * 64},
            {"op": "abort", "id": 6},
        ]
        for req in requests:
            with self.subTest(op=req["op"]):
                self.assertError(self.ask(c, req), "hello_required",
                                 req["id"])
        r = self.ask(c, {"op": "hello", "id": 0, "version": 1})
        self.assertIs(r["ok"], True)
        self.assertUsable(c)

    def test_malformed_requests_before_hello(self):
        # DOC: the document says only that "any other request" before hello
        # gets hello_required. A frame that is not a valid request is
        # reported as such (bad_json, bad_request, unknown_op), a data frame
        # as unexpected_frame; the connection stays open.
        c = self.client(hello=False)
        c.send_raw(fw.frame(1, b"nope"))
        self.assertError(c.recv(), "bad_json", None)
        self.assertError(self.ask(c, {"op": "frob", "id": 1}),
                         "unknown_op", 1)
        self.assertError(self.ask(c, {"op": "stat", "id": 2}),
                         "bad_request", 2)
        c.send_data(b"x")
        self.assertError(c.recv(), "unexpected_frame", None)
        self.assertIs(c.hello()["ok"], True)
        self.assertUsable(c)

    def test_hello_bad_fields(self):
        c = self.client(hello=False)
        self.assertError(self.ask(c, {"op": "hello", "id": 1}),
                         "bad_request", 1)
        self.assertError(self.ask(c, {"op": "hello", "id": 2,
                                      "version": "1"}), "bad_request", 2)
        self.assertError(self.ask(c, {"op": "hello", "id": 3, "version": 1,
                                      "client": 5}), "bad_request", 3)
        self.assertIs(c.hello()["ok"], True)
        self.assertUsable(c)


class FramingTests(ServerCase):

    @classmethod
    def prepare(cls, root):
        write_file(os.path.join(root, "hello.txt"), b"hello", MTIME)

    def test_frames_split_one_byte_per_send(self):
        c = self.client(hello=False)
        stream = (fw.control({"op": "hello", "id": 0, "version": 1}) +
                  fw.control({"op": "stat", "id": 1, "name": "hello.txt"}) +
                  fw.control({"op": "put", "id": 2, "name": "split.bin",
                              "size": 40}) +
                  fw.data(bytes(range(40))) +
                  fw.control({"op": "commit", "id": 2,
                              "sha256": sha(bytes(range(40)))}))
        for i in range(len(stream)):
            c.send_raw(stream[i:i + 1])
            if i % 16 == 0:
                time.sleep(0.001)     # let the segments go out one by one
        self.assertEqual(c.recv()["id"], 0)
        self.assertEqual(c.recv()["size"], 5)
        self.assertEqual(c.recv()["offset"], 0)
        r = c.recv()
        self.assertEqual((r["id"], r["ok"], r["size"]), (2, True, 40))

    def test_pipelined_requests_answered_in_order(self):
        c = self.client(hello=False)
        reqs = [{"op": "hello", "id": 0, "version": 1},
                {"op": "list", "id": 1},
                {"op": "stat", "id": 2, "name": "hello.txt"},
                {"op": "stat", "id": 3, "name": "missing"},
                {"op": "frob", "id": 4},
                {"op": "get", "id": 5, "name": "hello.txt", "offset": 4},
                {"op": "stat", "id": 6, "name": "../etc"},
                {"op": "list", "id": 7}]
        c.send_raw(b"".join(fw.control(r) for r in reqs) +
                   fw.frame(1, b"not json") +
                   b"".join(fw.control({"op": "stat", "id": 100 + i,
                                        "name": "hello.txt"})
                            for i in range(50)))
        ids = []
        for _ in range(len(reqs) + 1):    # + the get's data and trailer
            r = c.recv()
            ids.append(r["id"])
            if r["id"] == 5:
                f = c.recv_frame()
                self.assertEqual(f.payload, b"o")
                self.assertEqual(c.recv()["done"], True)
        self.assertEqual(ids, [0, 1, 2, 3, 4, 5, 6, 7, None])
        for i in range(50):
            self.assertEqual(c.recv()["id"], 100 + i)

    def test_ids_are_echoed_across_their_range(self):
        c = self.client()
        for rid in (0, 1, 2 ** 32, 2 ** 53 + 1, 2 ** 64 - 1):
            with self.subTest(id=rid):
                self.assertEqual(c.request("list", id=rid)["id"], rid)
        # ids need not be unique or increasing
        self.assertEqual(c.request("list", id=5)["id"], 5)
        self.assertEqual(c.request("list", id=5)["id"], 5)

    def padded(self, n):
        base = {"op": "list", "id": 7, "pad": ""}
        base["pad"] = "x" * (n - len(fw.encode_json(base)))
        raw = fw.encode_json(base)
        self.assertEqual(len(raw), n)
        return raw

    def test_control_frame_at_the_limit(self):
        c = self.client()
        c.send_raw(fw.frame(1, self.padded(65536)))
        r = c.recv()
        self.assertEqual((r["id"], r["ok"]), (7, True))

    def test_control_frame_one_byte_over_the_limit(self):
        c = self.client()
        c.send_raw(fw.frame(1, self.padded(65537)))
        self.assertError(c.recv(), "frame_too_large", None)
        self.assertClosed(c)

    def test_oversized_frames_refused_from_the_header(self):
        for kind, length in ((1, 65537), (1, 0xFFFFFFFF), (2, 16777217),
                             (2, 0xFFFFFFFF)):
            with self.subTest(kind=kind, length=length):
                c = self.client()
                c.send_raw(struct.pack(">BI", kind, length))
                self.assertError(c.recv(), "frame_too_large", None)
                self.assertClosed(c)

    def test_unknown_frame_kind(self):
        for kind in (0x00, 0x03, 0x7F, 0xFF):
            with self.subTest(kind=kind):
                c = self.client()
                c.send_raw(fw.frame(kind, b"{}"))
                self.assertError(c.recv(), "bad_frame", None)
                self.assertClosed(c)

    def test_unknown_frame_kind_before_hello(self):
        c = self.client(hello=False)
        c.send_raw(b"\x03\x00\x00\x00\x00")
        self.assertError(c.recv(), "bad_frame", None)
        self.assertClosed(c)

    def test_bad_json_keeps_the_connection(self):
        c = self.client()
        for payload in (b"", b"not json", b"[1,2]", b'"text"', b"42",
                        b"null", b'{"op":"list","id":1} x', b'{"op":',
                        b"\xff\xfe", b'{"op":"list","id":1}{}'):
            with self.subTest(payload=payload):
                c.send_raw(fw.frame(1, payload))
                self.assertError(c.recv(), "bad_json", None)
                self.assertUsable(c)

    def test_json_whitespace_is_allowed(self):
        # DOC: "with no trailing bytes" could be read as forbidding JSON
        # whitespace after the object; ferryd accepts it, as RFC 8259 does.
        c = self.client()
        for payload in (b' {"op":"list","id":1} ', b'{"op":"list","id":1}\n',
                        b'{ "op" : "list" ,\r\n "id" : 1 }'):
            with self.subTest(payload=payload):
                c.send_raw(fw.frame(1, payload))
                self.assertEqual(c.recv()["id"], 1)

    def test_bad_request_keeps_the_connection(self):
        c = self.client()
        cases = [  # (request, id expected in the answer)
            ({"op": "list"}, None),
            ({"op": "list", "id": "1"}, None),
            ({"op": "list", "id": -1}, None),
            ({"op": "list", "id": 1.5}, None),
            ({"op": "list", "id": None}, None),
            ({"op": "list", "id": True}, None),
            ({"op": "list", "id": 2 ** 64}, None),
            ({"id": 8}, 8),
            ({"op": 5, "id": 8}, 8),
            ({"op": None, "id": 8}, 8),
            ({"op": "stat", "id": 8}, 8),
            ({"op": "stat", "id": 8, "name": 7}, 8),
            ({"op": "stat", "id": 8, "name": ["a"]}, 8),
        ]
        for req, rid in cases:
            with self.subTest(req=req):
                self.assertError(self.ask(c, req), "bad_request", rid)
                self.assertUsable(c)

    def test_only_whitespace_may_follow_the_object(self):
        """Section 2: a NUL is not whitespace, so a frame with anything
        after its object, behind a NUL or not, is bad_json, never answered
        as the object before it."""
        c = self.client()
        for payload in (b'{"op":"stats","id":5}\x00{"op":"list","id":6}',
                        b'{"op":"stats","id":5}\x00',
                        b'{"op":"stats","id":5} \x00 ',
                        b'\x00{"op":"stats","id":5}',
                        b'\xef\xbb\xbf{"op":"stats","id":5}'):
            with self.subTest(payload=payload):
                c.send_raw(fw.frame(1, payload))
                self.assertError(c.recv(), "bad_json", None)
                self.assertUsable(c)

    def test_repeated_keys_are_bad_json(self):
        c = self.client()
        for payload in (b'{"op":"stats","id":5,"id":6}',
                        b'{"op":"list","op":"stats","id":5}',
                        b'{"op":"stats","id":5,"x":{"a":1,"a":2}}',
                        b'{"op":"stats","id":5,"x":[{"a":1,"a":1}]}'):
            with self.subTest(payload=payload):
                c.send_raw(fw.frame(1, payload))
                self.assertError(c.recv(), "bad_json", None)
                self.assertUsable(c)
        c.send_raw(fw.frame(1, b'{"op":"stat","id":5,"name":"hello.txt",'
                               b'"x":{"id":1,"name":2},"y":[{"a":1},{"a":1}]}'))
        self.assertEqual(c.recv()["size"], 5)

    def test_integers_are_digits_only_and_in_range(self):
        """Section 3.1: an integer field takes digits only (no sign,
        fraction or exponent), 0 to 2^64-1. Any other JSON number, however
        large, is valid JSON: bad_request, with the id unless the id is the
        bad field."""
        c = self.client()
        huge = ["1e400", "-1e400", "9" * 1000, "-" + "9" * 1000,
                "18446744073709551616", "1" + "0" * 400 + ".5e3"]
        for number in ["7.0", "1e2", "-0", "5E0", "-3"] + huge:
            for template, rid in (
                    ('{"op":"get","id":31,"name":"hello.txt","offset":%s}', 31),
                    ('{"op":"put","id":32,"name":"n.txt","size":%s}', 32),
                    ('{"op":"list","id":%s}', None),
                    ('{"id":%s,"op":"list"}', None)):
                payload = (template % number).encode()
                with self.subTest(payload=payload[:80]):
                    c.send_raw(fw.frame(1, payload))
                    self.assertError(c.recv(), "bad_request", rid)
        self.assertUsable(c)
        # A huge number in a field nobody reads is just an unknown field.
        for number in huge:
            c.send_raw(fw.frame(1, ('{"op":"stat","id":33,"name":"hello.txt",'
                                    '"later":%s}' % number).encode()))
            self.assertEqual(c.recv()["size"], 5)
        # The largest id and offset are fine.
        c.send_raw(fw.frame(1, b'{"op":"list","id":18446744073709551615}'))
        self.assertEqual(c.recv()["id"], 2 ** 64 - 1)

    def test_null_is_no_optional_fields_value(self):
        """Section 3.1: null is not the same as leaving a field out, for
        every optional field alike."""
        c = self.client()
        cases = [
            {"op": "hello", "id": 40, "version": 1, "client": None},
            {"op": "hello", "id": 40, "version": 1, "token": None},
            {"op": "get", "id": 41, "name": "hello.txt", "hash": None},
            {"op": "get", "id": 41, "name": "hello.txt", "offset": None},
            {"op": "put", "id": 42, "name": "n.txt", "size": 1, "hash": None},
            {"op": "put", "id": 42, "name": "n.txt", "size": 1,
             "resume": None},
        ]
        for req in cases:
            with self.subTest(req=req):
                self.assertError(self.ask(c, req), "bad_request", req["id"])
                self.assertUsable(c)

    def test_unknown_op_keeps_the_connection(self):
        c = self.client()
        for op in ("frob", "LIST", "", "delete"):
            with self.subTest(op=op):
                self.assertError(self.ask(c, {"op": op, "id": 9}),
                                 "unknown_op", 9)
                self.assertUsable(c)

    def test_unknown_fields_are_ignored(self):
        c = self.client()
        r = self.ask(c, {"op": "stat", "id": 10, "name": "hello.txt",
                         "future": {"x": [1, 2]}, "flag": True})
        self.assertEqual((r["ok"], r["size"]), (True, 5))

    def test_clients_leaving_in_the_middle_of_a_frame(self):
        stay = self.client()
        for partial in (b"\x01", b"\x01\x00\x00\x00\x20",
                        b'\x01\x00\x00\x00\x20{"op":"list"',
                        fw.control({"op": "hello", "id": 0, "version": 1}) +
                        b"\x02\x00\x00\x10\x00abc"):
            with self.subTest(partial=partial):
                c = self.client(hello=False)
                c.send_raw(partial)
                c.close()
                self.assertUsable(stay)
                self.assertUsable(self.client())


class SmallControlFrameTests(ServerCase):
    server_args = ("--max-control-frame", "1024")

    def test_announced_limit_is_enforced(self):
        c = self.client(hello=False)
        r = self.ask(c, {"op": "hello", "id": 0, "version": 1})
        self.assertEqual(r["max_control_frame"], 1024)
        pad = {"op": "list", "id": 1, "pad": ""}
        pad["pad"] = "y" * (1024 - len(fw.encode_json(pad)))
        c.send(pad)
        self.assertTrue(c.recv()["ok"])
        pad["pad"] += "y"
        c.send(pad)
        self.assertError(c.recv(), "frame_too_large", None)
        self.assertClosed(c)
