"""The library's codec and get against the shared vectors
(docs/protocol-vectors/vectors.json and PROTOCOL.md Appendix A): no server."""

import io
import json
import os
import re
import unittest

from support import REPO, ferry_client
from ferry_client import wire

VECTORS = os.path.join(REPO, "docs", "protocol-vectors", "vectors.json")
PROTOCOL_MD = os.path.join(REPO, "docs", "PROTOCOL.md")


def load_vectors():
    with open(VECTORS, encoding="utf-8") as f:
        return json.load(f)


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Replay:
    """A FrameChannel that answers with recorded server frames and keeps
    what the client sends."""

    def __init__(self, frames):
        self.frames = list(frames)
        self.sent = []
        self.closed = False

    def send_control(self, obj):
        self.sent.append(obj)

    def send_data(self, payload):
        self.sent.append(bytes(payload))

    def recv_frame(self):
        if not self.frames:
            raise ferry_client.ConnectionLost("no more recorded frames")
        return self.frames.pop(0)

    def close(self):
        self.closed = True


class VectorTests(unittest.TestCase):
    def test_every_vector_decodes_as_recorded(self):
        vectors = load_vectors()
        self.assertGreater(len(vectors), 20)
        for vector in vectors:
            with self.subTest(vector["name"]):
                raw = bytes.fromhex(vector["hex"])
                if "error" in vector:
                    decoder = wire.Decoder()
                    with self.assertRaises(ferry_client.ProtocolError) as caught:
                        decoder.feed(raw)
                        decoder.next().json()
                    self.assertEqual(caught.exception.code, vector["error"])
                    continue
                (frame,) = wire.decode_all(raw)
                if vector["kind"] == "control":
                    self.assertTrue(frame.is_control)
                    self.assertEqual(frame.json(), vector["json"])
                    # The canonical form re-encodes byte for byte.
                    self.assertEqual(wire.frame(wire.KIND_CONTROL, canonical(vector["json"])), raw)
                else:
                    self.assertTrue(frame.is_data)
                    self.assertEqual(frame.payload, bytes.fromhex(vector["data_hex"]))
                    self.assertEqual(wire.data(frame.payload), raw)

    def test_frames_split_anywhere_decode_the_same(self):
        stream = b"".join(bytes.fromhex(v["hex"]) for v in load_vectors() if "error" not in v)
        whole = [(f.kind, f.payload) for f in wire.decode_all(stream)]
        decoder, pieces = wire.Decoder(), []
        for at in range(0, len(stream), 7):
            decoder.feed(stream[at:at + 7])
            pieces += [(f.kind, f.payload) for f in decoder.frames()]
        self.assertEqual(pieces, whole)
        self.assertEqual(decoder.pending(), 0)

    def appendix_a(self):
        with open(PROTOCOL_MD, encoding="utf-8") as f:
            text = f.read()
        blocks = {}
        for name, block in re.findall(r"<!-- vector: (.*?) -->\n```hexdump\n(.*?)```", text, re.S):
            raw = bytearray()
            for line in block.splitlines():
                raw += bytes.fromhex(line.split("|", 1)[0].replace(" ", ""))
            blocks[name] = wire.decode_all(bytes(raw))[0]
        return blocks

    def test_client_checks_and_keeps_the_appendix_a_download(self):
        """Client.get fed the server frames of PROTOCOL.md Appendix A: the
        list gives hello.txt, the download verifies against the trailer."""
        a = self.appendix_a()
        channel = Replay([a["hello reply"], a["list reply"], a["get reply"], a["data frame (server, get)"],
                          a["get trailer"]])
        client = ferry_client.Client(channel)
        reply = client.hello(version=1)
        self.assertEqual((client.version, client.access, reply["server"]), (1, "rw", "ferryd/0.1.0"))
        self.assertEqual(channel.sent[0]["op"], "hello")
        listing = list(client.list())
        self.assertEqual(listing, [ferry_client.Entry("hello.txt", 5, 1764370000)])
        # The recorded get reply answers id 3: the client's next id must be 3.
        client.next_id = 3
        sink = io.BytesIO()
        done = client.get("hello.txt", sink)
        self.assertEqual(sink.getvalue(), b"hello")
        self.assertEqual(done.digest, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        self.assertEqual(channel.sent[-1], {"op": "get", "id": 3, "name": "hello.txt", "offset": 0})

    def test_a_corrupt_byte_is_never_kept(self):
        a = self.appendix_a()
        bad = wire.Frame(wire.KIND_DATA, b"hellO")
        channel = Replay([a["hello reply"], a["get reply"], bad, a["get trailer"]])
        client = ferry_client.Client(channel)
        client.hello(version=1)
        client.next_id = 3
        with self.assertRaises(ferry_client.IntegrityError) as caught:
            client.get("hello.txt", io.BytesIO())
        self.assertEqual(caught.exception.code, "hash_mismatch")

    def test_server_frames_over_the_limit_are_refused_from_the_header(self):
        decoder = wire.Decoder()
        decoder.feed(wire.HEADER.pack(wire.KIND_DATA, wire.MAX_DATA + 1))
        with self.assertRaises(ferry_client.ProtocolError) as caught:
            decoder.next()
        self.assertEqual(caught.exception.code, "frame_too_large")

    def test_repeated_keys_and_constants_are_bad_json(self):
        for payload in (b'{"a":1,"a":2}', b'{"a":NaN}', b"[1]", b'{"a":1}\x00', b"\xff", b'{"a":"\\ud800"}',
                        b'{"a":["\\udc00x"]}', b'{"\\ud83dx":1}'):
            with self.subTest(payload):
                with self.assertRaises(ferry_client.ProtocolError) as caught:
                    wire.parse_control(payload)
                self.assertEqual(caught.exception.code, "bad_json")
        self.assertEqual(wire.parse_control(b'{"a":"\\ud83d\\ude00"}'), {"a": "\U0001F600"})   # a pair is fine

    def test_json_nested_past_the_recursion_limit_is_bad_json(self):
        # Round 74, M2: json.loads raised RecursionError, no FerryError.
        for payload in (b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", b"[" * 100_000 + b"]" * 100_000,
                        b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
            with self.assertRaises(ferry_client.ProtocolError) as caught:
                wire.parse_control(payload)
            self.assertEqual(caught.exception.code, "bad_json")


class ListingTests(unittest.TestCase):
    """Pages fed from recorded frames: an error page ends the listing, and
    the connection serves the next request (no wait for pages that never
    come)."""

    def control(self, obj):
        return wire.Frame(wire.KIND_CONTROL, wire.encode_json(obj))

    def test_an_error_page_ends_the_listing(self):
        page = {"id": 1, "ok": True, "files": [{"name": "a", "size": 1, "mtime": 5}], "more": True}
        error = {"id": 1, "ok": False, "error": {"code": "io_error", "message": "the folder cannot be read"}}
        stat = {"id": 2, "ok": True, "name": "a", "size": 1, "mtime": 5}
        client = ferry_client.Client.over(Replay([self.control(page), self.control(error), self.control(stat)]))
        seen = []
        with self.assertRaises(ferry_client.StorageError):
            for entry in client.list():
                seen.append(entry.name)
        self.assertEqual(seen, ["a"])
        self.assertEqual(client.stat("a").size, 1)

    def test_an_unread_listing_is_read_to_its_end_by_the_next_request(self):
        pages = [self.control({"id": 1, "ok": True, "files": [{"name": "p%d" % i, "size": 0, "mtime": 0}],
                               "more": i < 2}) for i in range(3)]
        pages[-1] = self.control({"id": 1, "ok": True, "files": [], "skipped_invalid_names": 4,
                                  "skipped_too_deep": 2})
        stat = self.control({"id": 2, "ok": True, "name": "a", "size": 1, "mtime": 5})
        client = ferry_client.Client.over(Replay(pages + [stat]))
        listing = client.list()
        self.assertEqual(client.stat("a").name, "a")
        # Read and kept (round 74, H1: they were dropped, so a loop that
        # called the Client for each entry saw the first page only): the
        # iteration goes on with them.
        self.assertEqual((listing.done, listing.pages), (False, 3))
        self.assertEqual([entry.name for entry in listing], ["p0", "p1"])
        self.assertEqual((listing.done, listing.skipped_invalid_names, listing.skipped_too_deep), (True, 4, 2))

    def test_an_error_page_read_for_another_request_is_raised_where_the_iteration_meets_it(self):
        page = {"id": 1, "ok": True, "files": [{"name": "a", "size": 1, "mtime": 5}], "more": True}
        second = {"id": 1, "ok": True, "files": [{"name": "b", "size": 1, "mtime": 5}], "more": True}
        error = {"id": 1, "ok": False, "error": {"code": "io_error", "message": "the folder cannot be read"}}
        stat = {"id": 2, "ok": True, "name": "a", "size": 1, "mtime": 5}
        client = ferry_client.Client.over(Replay([self.control(f) for f in (page, second, error, stat)]))
        seen = []
        listing = client.list()
        with self.assertRaises(ferry_client.StorageError):
            for entry in listing:
                seen.append(entry.name)
                if entry.name == "a":
                    self.assertEqual(client.stat("a").size, 1)   # the rest is read here
        self.assertEqual(seen, ["a", "b"])
        # Raised once; then the listing has ended, as one whose error page
        # the loop met itself (round 77: a later loop was silently empty).
        with self.assertRaises(ValueError):
            list(listing)


class HelloTests(unittest.TestCase):
    """hello's optional mtime_limits (PROTOCOL.md 4.1), from recorded
    replies: absent is none, malformed is the server breaking the protocol
    (the connection is closed), a valid one is held to as ferry does."""

    HELLO = {"id": 0, "ok": True, "version": 2, "server": "ferryd/9", "capabilities": ["list"],
             "hashes": ["sha256"], "max_control_frame": 65536, "max_data_frame": 16777216, "access": "rw"}

    def hello(self, **extra):
        channel = Replay([wire.Frame(wire.KIND_CONTROL, wire.encode_json(dict(self.HELLO, **extra)))])
        client = ferry_client.Client(channel)
        return client, channel

    def test_absent_limits_compare_times_exactly(self):
        client, channel = self.hello()
        client.hello()
        self.assertIsNone(client.mtime_limits)
        self.assertEqual(client.held_mtime(2**62 + 1), 2**62 + 1)
        self.assertFalse(channel.closed)

    def test_malformed_limits_are_a_protocol_error(self):
        for limits in ([1, 2, 3], None, "ext4", {"min": 0, "max": 10}, {"min": 0, "max": 10, "step": 0},
                       {"min": 10, "max": 0, "step": 1}, {"min": 0, "max": 10, "step": 1.0},
                       {"min": 0, "max": 10, "step": True}, {"min": "0", "max": 10, "step": 1},
                       {"min": -2**63 - 1, "max": 10, "step": 1}, {"min": 0, "max": 2**63, "step": 1},
                       {"min": 0, "max": 10, "step": -2}):
            with self.subTest(limits=limits):
                client, channel = self.hello(mtime_limits=limits)
                with self.assertRaises(ferry_client.ProtocolError) as caught:
                    client.hello()
                self.assertEqual(caught.exception.code, "internal")
                self.assertIn("mtime_limits", caught.exception.message)
                self.assertTrue(channel.closed)

    def test_valid_limits_clamp_then_round_down(self):
        client, _ = self.hello(mtime_limits={"min": 315532800, "max": 4354819198, "step": 2})   # FAT
        client.hello()
        self.assertEqual(client.mtime_limits, ferry_client.MtimeLimits(315532800, 4354819198, 2))
        self.assertEqual(client.held_mtime(993599999), 993599998)
        self.assertEqual(client.held_mtime(993513600), 993513600)
        self.assertEqual(client.held_mtime(0), 315532800)
        self.assertEqual(client.held_mtime(2**62), 4354819198)
        limits = ferry_client.MtimeLimits
        self.assertEqual(limits(-2**63, 2**63 - 1, 2).held(-3), -4)      # toward the past, not zero
        self.assertEqual(limits(-2**63, 2**63 - 1, 3).held(-2**63), -2**63 + 2)   # no multiple below: toward zero
        self.assertEqual(limits(-2**31, 15032385535, 1).held(-2**62), -2**31)     # ext4


class ReplyRangeTests(unittest.TestCase):
    """PROTOCOL.md 3.1 and 3.3: a size, offset or count is unsigned within
    64 bits, an mtime signed within 64 bits, an entry a file or a folder;
    a reply outside that is the server breaking the protocol."""

    def stat_reply(self, **fields):
        reply = dict({"id": 1, "ok": True, "name": "a", "type": "file", "size": 1, "mtime": 5}, **fields)
        return ferry_client.Client.over(Replay([wire.Frame(wire.KIND_CONTROL, wire.encode_json(reply))]))

    def test_fields_out_of_range_or_type_are_refused(self):
        for fields in ({"size": -1}, {"size": 2**64}, {"mtime": 2**63}, {"mtime": -2**63 - 1},
                       {"type": "link"}, {"type": None}):
            with self.subTest(fields=fields):
                with self.assertRaises(ferry_client.ProtocolError) as caught:
                    self.stat_reply(**fields).stat("a")
                self.assertEqual(caught.exception.code, "internal")

    def test_the_extremes_are_accepted(self):
        entry = self.stat_reply(size=2**64 - 1, mtime=-2**63, type="folder").stat("a")
        self.assertEqual((entry.size, entry.mtime, entry.is_folder), (2**64 - 1, -2**63, True))


class ErrorMappingTests(unittest.TestCase):
    def test_each_code_of_section_6_has_one_family(self):
        with open(PROTOCOL_MD, encoding="utf-8") as f:
            section = f.read().split("## 6. Error codes", 1)[1].split("\n## ", 1)[0]
        codes = re.findall(r"^\| `([a-z_]+)` \|", section, re.M)
        self.assertGreater(len(codes), 20)
        for code in codes:
            with self.subTest(code):
                family = ferry_client.error_class(code)
                self.assertIn(code, family.codes, f"{code} falls back to {family.__name__}")
                self.assertTrue(issubclass(family, ferry_client.FerryError))

    def test_an_unknown_code_is_a_server_error_with_its_message(self):
        error = ferry_client.errors.from_reply({"id": 1, "ok": False,
                                                "error": {"code": "new_in_v9", "message": "m"}})
        self.assertIsInstance(error, ferry_client.ServerError)
        self.assertEqual((error.code, error.message), ("new_in_v9", "m"))

    def test_a_servers_controls_never_reach_a_terminal_through_an_error(self):
        # Round 30 (CVE-2019-6109 kind): a hostile server's error text went
        # raw into .message, .code and str(error), which programs print.
        hostile = "evil\x1b]0;PWNED\x07\u009b2J\u202e"
        for code in ("not_found", "new_" + hostile):
            with self.subTest(code=code):
                error = ferry_client.errors.from_reply({"id": 1, "ok": False,
                                                        "error": {"code": code, "message": hostile}})
                for text in (error.code, error.message, str(error)):
                    for raw in ("\x1b", "\x07", "\u009b", "\u202e"):
                        self.assertNotIn(raw, text)
                self.assertIn("\\u{001B}", error.message)
                self.assertEqual(error.reply["error"]["message"], hostile)


if __name__ == "__main__":
    unittest.main()
