"""The library trusts a server's replies no more than ferry does
(PROTOCOL.md 4.1, 4.2 "What a client may rely on", 4.4 to 4.13, 5, 5.1):
scripted replies that break the protocol, each refused as
ProtocolError("internal") naming what was wrong, the connection dropped.
No server: the replies are fed through Client.over."""

import io
import json
import os
import re
import tempfile
import unittest

from support import REPO, ferry_client, sha256
from ferry_client import listing_check, wire
from test_vectors import Replay

HELLO = {"id": 0, "ok": True, "version": 2, "server": "ferryd/9",
         "capabilities": ["list", "stat", "get", "put", "resume", "stats", "folders", "mkdir", "delete", "rename",
                          "digest", "mtime", "set_mtime", "holding_unlisted", "commit_replace"],
         "hashes": ["sha256", "xxh3-128"], "max_control_frame": 65536, "max_data_frame": 16777216, "access": "rw"}


def control(obj):
    # ASCII JSON: a lone surrogate goes as its \ud800 escape, as a server could send it.
    return wire.Frame(wire.KIND_CONTROL, json.dumps(obj).encode())


def scripted(*replies):
    """A version-2 Client whose server answers with ``replies`` (dicts, or
    bytes for a data frame), and its channel."""
    frames = [wire.Frame(wire.KIND_DATA, r) if isinstance(r, bytes) else control(r) for r in replies]
    channel = Replay(frames)
    return ferry_client.Client.over(channel, HELLO), channel


def entry(name, kind="file"):
    return {"name": name, "type": kind, "size": 0, "mtime": 5}


def page(files, more=False, **extra):
    return dict({"id": 1, "ok": True, "files": files, "more": more}, **extra)


class Refusals(unittest.TestCase):
    def assertBreaks(self, channel, run, *words):
        """``run`` raises ProtocolError("internal") naming ``words``, and
        the connection is closed."""
        with self.assertRaises(ferry_client.ProtocolError) as caught:
            run()
        self.assertEqual(caught.exception.code, "internal")
        for word in words:
            self.assertIn(word, caught.exception.message)
        self.assertTrue(channel.closed, "the connection stays open after the break")
        return caught.exception


class ListingTests(Refusals):
    def listed(self, pages, path="", recursive=False):
        client, channel = scripted(*pages)
        return client, channel, lambda: list(client.list(path, recursive=recursive))

    def test_a_well_formed_tree_is_taken(self):
        client, channel, run = self.listed([
            page([entry("a", "folder"), entry("a/b", "folder")], more=True),
            page([entry("a/b/c.txt"), entry("d.txt")], holding_unlisted=["", "a/b"])], "x", True)
        self.assertEqual([e.name for e in run()], ["a", "a/b", "a/b/c.txt", "d.txt"])
        self.assertFalse(channel.closed)

    def test_names_that_are_not_names_of_section_5(self):
        for name in ("", ".hidden", "..", "a/b", "a\\b", "a\x00b", "a\x1bb", "a\u009bb", "a\u202eb",
                     "pay\u200bpal", "a\u2028b", "a\ue000", "a\u0378", "a\u3164b", "a\ufe0fb", "a\u034fb",
                     "cafe\u0301", "x" * 256, "\u00e9" * 128):
            with self.subTest(name=name):
                _, channel, run = self.listed([page([entry("ok"), entry(name)])])
                error = self.assertBreaks(channel, run, "4.2")
                self.assertNotIn("\u202e", error.message)   # the name is shown escaped

    def test_a_name_listed_twice_across_pages(self):
        _, channel, run = self.listed([page([entry("a")], more=True), page([entry("a")])])
        self.assertBreaks(channel, run, '"a"', "listed twice")

    def test_a_recursive_listing_gives_each_folder_before_what_it_holds(self):
        for files in ([entry("a/b")], [entry("a"), entry("a/b")], [entry("a/b", "folder"), entry("a", "folder")],
                      [entry("a", "folder"), entry("a/b/c")]):
            with self.subTest(files=files):
                _, channel, run = self.listed([page(files)], recursive=True)
                self.assertBreaks(channel, run, "was not listed as a folder before it")

    def test_paths_that_break_5_1(self):
        for name in ("/a", "a/", "a//b", "../a", "a/./b", "a/.b"):
            with self.subTest(name=name):
                _, channel, run = self.listed([page([entry("a", "folder"), entry(name)])], recursive=True)
                self.assertBreaks(channel, run, "4.2")

    def test_the_listed_path_and_a_name_keep_within_5_1s_bounds(self):
        deep = "/".join(["d"] * 64)           # 64 components: a path on its own
        folders = [entry("/".join(["d"] * n), "folder") for n in range(1, 65)]
        _, channel, run = self.listed([page(folders)], "", True)
        self.assertEqual(len(run()), 64)
        _, channel, run = self.listed([page(folders)], "top", True)
        self.assertBreaks(channel, run, '"' + deep + '"', "more than 64 components")
        long_name = "n" * 255
        _, channel, run = self.listed([page([entry(long_name)])], "/".join(["p" * 255] * 15) + "/q")
        self.assertBreaks(channel, run, "longer than 4095 bytes")

    def test_holding_unlisted_names_only_the_root_or_a_listed_folder(self):
        for held in (["nowhere"], ["f"], ["../x"], ["a/"]):
            with self.subTest(held=held):
                _, channel, run = self.listed([page([entry("a", "folder"), entry("f")], holding_unlisted=held)],
                                              recursive=True)
                self.assertBreaks(channel, run, "holding_unlisted")

    def test_page_fields_of_the_wrong_type(self):
        for bad in ({"more": "yes"}, {"more": 1}, {"skipped_invalid_names": -1}, {"skipped_too_deep": "2"},
                    {"holding_unlisted": "a"}, {"files": None}):
            with self.subTest(bad=bad):
                _, channel, run = self.listed([dict(page([entry("a")]), **bad)])
                self.assertBreaks(channel, run)

    def test_a_listing_past_ferrys_bounds_is_refused(self):
        self.addCleanup(setattr, listing_check, "MAX_ENTRIES", listing_check.MAX_ENTRIES)
        self.addCleanup(setattr, listing_check, "MAX_NAME_BYTES", listing_check.MAX_NAME_BYTES)
        listing_check.MAX_ENTRIES = 3
        _, channel, run = self.listed([page([entry("a"), entry("b")], more=True), page([entry("c")])])
        self.assertEqual(len(run()), 3)
        _, channel, run = self.listed([page([entry("a"), entry("b")], more=True),
                                       page([entry("c")], holding_unlisted=[""])])
        self.assertBreaks(channel, run, "more than 3 entries")
        listing_check.MAX_ENTRIES, listing_check.MAX_NAME_BYTES = 100, 10
        _, channel, run = self.listed([page([entry("abcde"), entry("fghij")], more=True), page([entry("k")])])
        self.assertBreaks(channel, run, "more than 10 bytes")

    def test_the_bounds_are_ferrys(self):
        with open(os.path.join(REPO, "protocol", "listing_check.hpp"), encoding="utf-8") as f:
            header = f.read()
        entries = int(re.search(r"entries = ([0-9']+);", header).group(1).replace("'", ""))
        mib = int(re.search(r"name_bytes = (\d+)ULL \* 1024 \* 1024;", header).group(1))
        self.assertEqual((listing_check.MAX_ENTRIES, listing_check.MAX_NAME_BYTES), (entries, mib << 20))


class ErrorReplyTests(Refusals):
    """An error reply (3.2): ok false, the request's id or null, an error
    object of a string code and a string message."""

    def test_a_malformed_error_is_a_break(self):
        error = {"code": "not_found", "message": "no file named \"a\""}
        for reply in ({"id": 1, "ok": False, "error": {"code": "not_found"}},
                      {"id": 1, "ok": False, "error": {"code": 5, "message": "m"}},
                      {"id": 1, "ok": False, "error": "not_found"}, {"id": 1, "ok": "false", "error": error},
                      {"ok": False, "error": error}, {"id": 7, "ok": False, "error": error}):
            with self.subTest(reply=reply):
                client, channel = scripted(reply)
                self.assertBreaks(channel, lambda: client.stat("a"))

    def test_a_well_formed_error_keeps_the_connection(self):
        for rid in (1, None):
            with self.subTest(id=rid):
                client, channel = scripted({"id": rid, "ok": False, "error": {"code": "not_found", "message": "m"}})
                with self.assertRaises(ferry_client.NotFound):
                    client.stat("a")
                self.assertFalse(channel.closed)


class NameTests(unittest.TestCase):
    def test_names_of_every_script_pass_and_deceptive_ones_do_not(self):
        from ferry_client import names
        for good in ("a b.txt", "caf\u00e9.txt", "\u65e5\u672c\u8a9e.txt", "\U0001F600 x", "\u00a0x", "\u0627\u0644",
                     "\ud55c\uae00", "x" * 255, "\u00e9" * 127, "-", "a.b.c"):
            with self.subTest(good=good):
                self.assertIsNone(names.check_file_name(good))
                self.assertIsNone(names.check_path(good + "/" + good))
        for bad in ("a\ud800", "a\U000E0001", "a\U000E0100", "a\u115f", "a\u17b4", "a\u180b", "a\ufeff"):
            with self.subTest(bad=bad):
                self.assertIn("U+", names.check_file_name(bad))
        self.assertEqual(names.printable("a\u202eb\x1b"), "a\\u{202E}b\\u{001B}")


class HelloTests(Refusals):
    def hello(self, reply, version=2):
        channel = Replay([control(reply)])
        client = ferry_client.Client(channel)
        return client, channel, lambda: client.hello(version=version)

    def test_the_documented_reply_is_taken(self):
        client, channel, run = self.hello(dict(HELLO, access="ro"))
        run()
        self.assertEqual((client.server, client.access, client.max_control_frame), ("ferryd/9", "ro", 65536))
        self.assertFalse(channel.closed)
        client, _, run = self.hello({k: v for k, v in HELLO.items() if k != "access"})
        run()
        self.assertEqual(client.access, "rw")

    def test_each_field_out_of_its_type_or_range(self):
        missing = object()
        for key, value in (("server", missing), ("server", 9), ("hashes", missing), ("hashes", "sha256"),
                           ("hashes", ["sha256", 1]), ("capabilities", None), ("capabilities", [["list"]]),
                           ("max_control_frame", missing), ("max_control_frame", "65536"),
                           ("max_control_frame", -1), ("max_control_frame", 65536.0), ("max_control_frame", 2**64),
                           ("max_data_frame", missing), ("max_data_frame", 0), ("max_data_frame", True),
                           ("access", "admin"), ("access", None), ("access", ""), ("version", 3), ("version", 0),
                           ("id", 5)):
            with self.subTest(key=key, value=value):
                reply = dict(HELLO)
                if value is missing:
                    del reply[key]
                else:
                    reply[key] = value
                client, channel, run = self.hello(reply)
                self.assertBreaks(channel, run, key if key != "id" else "id")
                self.assertEqual(client.hashes, ["sha256"])   # nothing taken from it

    def test_a_version_over_the_one_asked_for(self):
        _, channel, run = self.hello(HELLO, version=1)
        self.assertBreaks(channel, run, "version 2")


class ReplyTests(Refusals):
    GOOD = sha256(b"hello")

    def test_a_digest_is_lowercase_hex_of_its_hashs_size(self):
        for value in (self.GOOD.upper(), self.GOOD[:-2], self.GOOD + "00", " " + self.GOOD[1:],
                      self.GOOD[:62] + " 0", 5, None):
            with self.subTest(value=value):
                client, channel = scripted({"id": 1, "ok": True, "name": "a", "type": "file", "size": 5,
                                            "mtime": 5, "sha256": value})
                self.assertBreaks(channel, lambda: client.digest("a"), "sha256")
        client, channel = scripted({"id": 1, "ok": True, "name": "a", "size": 5, "mtime": 5, "xxh3-128": "0" * 64})
        self.assertBreaks(channel, lambda: client.digest("a", "xxh3-128"), "32 lowercase hex digits")
        client, _ = scripted({"id": 1, "ok": True, "name": "a", "size": 5, "mtime": 5, "sha256": self.GOOD})
        self.assertEqual(client.digest("a").digest, self.GOOD)

    def test_a_version_1_digest_asks_again_when_the_file_shrank_and_reads_past_what_it_gained(self):
        """Version 1's digest is a get at the stat's size: bad_offset (the
        file shrank) asks again, bytes gained meanwhile are passed over, a
        file that keeps shrinking is file_changed, never a digest."""
        hello = dict(HELLO, version=1, capabilities=["list", "stat", "get", "put", "resume", "stats"])
        stat = {"ok": True, "name": "a", "size": 5, "mtime": 5}
        shrank = {"ok": False, "error": {"code": "bad_offset", "message": "past the end"}}
        frames = [control(dict(stat, id=1)), control(dict(shrank, id=2)), control(dict(stat, id=3, size=3)),
                  control({"id": 4, "ok": True, "name": "a", "size": 4, "mtime": 6, "offset": 3}),
                  wire.Frame(wire.KIND_DATA, b"!"),
                  control({"id": 4, "ok": True, "done": True, "size": 4, "sha256": self.GOOD})]
        channel = Replay(frames)
        client = ferry_client.Client.over(channel, hello)
        d = client.digest("a")
        self.assertEqual((d.size, d.mtime, d.digest), (4, 6, self.GOOD))
        self.assertEqual([(m["op"], m.get("offset")) for m in channel.sent], [("stat", None), ("get", 5),
                                                                              ("stat", None), ("get", 3)])
        self.assertFalse(channel.closed)
        frames = [control(dict(stat, id=i)) if i % 2 else control(dict(shrank, id=i)) for i in range(1, 7)]
        client = ferry_client.Client.over(Replay(frames), hello)
        with self.assertRaises(ferry_client.IntegrityError) as caught:
            client.digest("a")
        self.assertEqual(caught.exception.code, "file_changed")

    def test_a_version_1_digest_from_a_get_that_breaks_the_protocol(self):
        """The get from the end is held to what its reply says: its offset,
        the bytes its size adds, a trailer of that size. A break closes the
        connection; an error in place of the trailer ends the get in step."""
        hello = dict(HELLO, version=1, capabilities=["list", "stat", "get", "put", "resume", "stats"])
        stat = control({"id": 1, "ok": True, "name": "a", "size": 3, "mtime": 5})
        reply = {"id": 2, "ok": True, "name": "a", "size": 4, "mtime": 6, "offset": 3}
        trailer = {"id": 2, "ok": True, "done": True, "size": 4, "sha256": self.GOOD}
        data = wire.Frame(wire.KIND_DATA, b"!")
        for what, frames in (
                ("offset", [control(dict(reply, offset=2)), data, control(trailer)]),
                ("shorter", [control(dict(reply, size=2, offset=3)), control(dict(trailer, size=2))]),
                ("bytes", [control(reply), data, data, control(trailer)]),
                ("trailer size", [control(reply), data, control(dict(trailer, size=5))]),
                ("too few bytes", [control(reply), control(trailer)])):
            with self.subTest(what=what):
                channel = Replay([stat] + frames)
                client = ferry_client.Client.over(channel, hello)
                self.assertBreaks(channel, lambda: client.digest("a"), "get")
        channel = Replay([stat, control(reply), data,
                          control({"id": 2, "ok": False, "error": {"code": "file_changed", "message": "changed"}})])
        client = ferry_client.Client.over(channel, hello)
        with self.assertRaises(ferry_client.IntegrityError):
            client.digest("a")
        self.assertFalse(channel.closed)
        channel = Replay([stat, control(reply)])  # cut short: no more frames
        client = ferry_client.Client.over(channel, hello)
        with self.assertRaises(ferry_client.ConnectionLost):
            client.digest("a")
        self.assertTrue(channel.closed)

    def test_a_digest_of_another_file_or_a_folder(self):
        for fields in ({"name": "b"}, {"type": "folder"}):
            with self.subTest(fields=fields):
                client, channel = scripted(dict({"id": 1, "ok": True, "name": "a", "size": 5, "mtime": 5,
                                                 "sha256": self.GOOD}, **fields))
                self.assertBreaks(channel, lambda: client.digest("a"))

    def test_a_trailer_digest_that_is_not_hex_is_a_break_not_a_mismatch(self):
        for value in (self.GOOD.upper(), None, "zz"):
            with self.subTest(value=value):
                client, channel = scripted({"id": 1, "ok": True, "name": "a", "size": 5, "mtime": 5, "offset": 0},
                                           b"hello", {"id": 1, "ok": True, "done": True, "size": 5, "sha256": value})
                self.assertBreaks(channel, lambda: client.get("a", io.BytesIO()), "trailer")

    def test_a_get_reply_about_another_file(self):
        for fields in ({"name": "b"}, {"type": "folder"}):
            with self.subTest(fields=fields):
                client, channel = scripted(dict({"id": 1, "ok": True, "name": "a", "size": 5, "mtime": 5,
                                                 "offset": 0}, **fields))
                self.assertBreaks(channel, lambda: client.get("a", io.BytesIO()), "get reply")

    def test_a_put_reply_prefix_and_token(self):
        for reply in ({"offset": 2, "token": "t", "prefix_sha256": self.GOOD.upper()},
                      {"offset": 2, "token": "t", "prefix_sha256": "ab"}, {"offset": 0}, {"offset": 0, "token": 7}):
            with self.subTest(reply=reply):
                client, channel = scripted(dict({"id": 1, "ok": True}, **reply))
                self.assertBreaks(channel, lambda: client.open_put("a", 5, resume=True), "put reply")

    def test_a_new_upload_starts_at_0(self):
        for resume, offset in ((False, 2), (True, 6)):
            with self.subTest(resume=resume, offset=offset):
                client, channel = scripted({"id": 1, "ok": True, "offset": offset, "token": "t",
                                            "prefix_sha256": self.GOOD})
                self.assertBreaks(channel, lambda: client.open_put("a", 5, resume=resume), "put reply")

    def test_a_commit_reply_describes_what_was_committed(self):
        for fields in ({"name": "b"}, {"size": 6}, {"sha256": self.GOOD.upper()}, {"type": "folder"},
                       {"mtime": "now"}):
            with self.subTest(fields=fields):
                client, channel = scripted({"id": 1, "ok": True, "offset": 0, "token": "t"},
                                           dict({"id": 1, "ok": True, "name": "a", "size": 5, "mtime": 5,
                                                 "sha256": self.GOOD}, **fields))
                upload = client.open_put("a", 5)
                upload.write(b"hello")
                self.assertBreaks(channel, lambda: upload.commit(self.GOOD), "commit reply")

    def test_an_abort_reply(self):
        for discard, fields in ((False, {"kept": "yes", "offset": 0}), (False, {"offset": 0}),
                                (False, {"kept": True, "offset": 6}), (True, {"kept": True, "offset": 0}),
                                (True, {"kept": False, "offset": 3}), (False, {"kept": False, "offset": 2})):
            with self.subTest(discard=discard, fields=fields):
                client, channel = scripted({"id": 1, "ok": True, "offset": 0, "token": "t"},
                                           dict({"id": 1, "ok": True}, **fields))
                upload = client.open_put("a", 5)
                self.assertBreaks(channel, lambda: upload.abort(discard), "abort reply")
        client, _ = scripted({"id": 1, "ok": True, "offset": 0, "token": "t"},
                             {"id": 1, "ok": True, "kept": True, "offset": 5})
        self.assertEqual(client.open_put("a", 5).abort()["offset"], 5)

    def test_a_mkdir_reply(self):
        for parents, fields in ((False, {"created": "yes"}), (False, {}), (True, {"created": 1}),
                                (False, {"created": False}), (True, {"created": True, "path": "b"})):
            with self.subTest(parents=parents, fields=fields):
                client, channel = scripted(dict({"id": 1, "ok": True, "path": "a"}, **fields))
                self.assertBreaks(channel, lambda: client.mkdir("a", parents), "mkdir")
        client, _ = scripted({"id": 1, "ok": True, "path": "a", "created": False})
        self.assertFalse(client.mkdir("a", parents=True))

    def test_a_delete_reply(self):
        for recursive, fields in ((False, {"type": "link"}), (False, {"path": "b"}), (False, {"files": 2}),
                                  (False, {"files": -1}), (False, {"type": "folder", "files": 0, "folders": 2}),
                                  (True, {"type": "folder", "files": 3, "folders": 0})):
            with self.subTest(recursive=recursive, fields=fields):
                client, channel = scripted(dict({"id": 1, "ok": True, "path": "a", "type": "file", "files": 1,
                                                 "folders": 0}, **fields))
                self.assertBreaks(channel, lambda: client.delete("a", recursive), "delete reply")
        client, _ = scripted({"id": 1, "ok": True, "path": "a", "type": "folder", "files": 3, "folders": 2})
        self.assertEqual(client.delete("a", recursive=True), ferry_client.Deleted("a", "folder", 3, 2))

    def test_a_rename_reply(self):
        for fields in ({"to": "c"}, {"from": None}, {"to": 5}):
            with self.subTest(fields=fields):
                client, channel = scripted(dict({"id": 1, "ok": True, "from": "a", "to": "b"}, **fields))
                self.assertBreaks(channel, lambda: client.rename("a", "b"), "rename reply")

    def test_stat_and_set_mtime_replies_about_another_entry(self):
        client, channel = scripted({"id": 1, "ok": True, "name": "b", "size": 1, "mtime": 5})
        self.assertBreaks(channel, lambda: client.stat("a"), "stat reply")
        client, channel = scripted({"id": 1, "ok": True, "name": "b", "type": "file", "size": 1, "mtime": 5})
        self.assertBreaks(channel, lambda: client.set_mtime("a", 5), "set_mtime reply")

    def test_a_stats_reply(self):
        good = {"id": 1, "ok": True, "uptime_seconds": 1, "connections": {"now": 1, "total": 2},
                "transfers": {"now": 0, "total": 0}, "bytes": {"in": 0, "out": 0}, "errors": {"not_found": 1}}
        client, _ = scripted(good)
        self.assertEqual(client.stats()["errors"], {"not_found": 1})
        for fields in ({"uptime_seconds": -1}, {"bytes": {"in": 0}}, {"connections": [1, 2]},
                       {"errors": {"not_found": "1"}}):
            with self.subTest(fields=fields):
                client, channel = scripted(dict(good, **fields))
                self.assertBreaks(channel, client.stats, "stats reply")


class ModeTests(Refusals):
    """File information's ``mode`` (PROTOCOL.md 3.3): an unsigned integer
    up to 4095 (07777) wherever a file is described, None when absent; and
    a put's ``mode`` (4.5), sent only to a server whose hello lists "mode"."""

    GOOD = sha256(b"data")
    BAD = ("420", -1, 4096, 2**64, 420.0, True, None, [420])

    def described(self, mode):
        """Each reply that describes a file, with ``mode``, and the call
        that reads it: (what, run, channel)."""
        info = {"name": "a", "type": "file", "size": 4, "mtime": 5, "mode": mode}
        client, channel = scripted(dict(info, id=1, ok=True))
        yield "stat", (lambda: client.stat("a")), channel
        client, channel = scripted(dict(info, id=1, ok=True))
        yield "set_mtime", (lambda: client.set_mtime("a", 5)), channel
        client, channel = scripted(dict(info, id=1, ok=True, sha256=self.GOOD))
        yield "digest", (lambda: client.digest("a")), channel
        client, channel = scripted(page([entry("b"), info]))
        yield "list", (lambda: list(client.list())), channel
        client, channel = scripted(dict(info, id=1, ok=True, offset=0), b"data",
                                   {"id": 1, "ok": True, "done": True, "size": 4, "sha256": self.GOOD})
        yield "get", (lambda: client.get("a", io.BytesIO())), channel
        client, channel = scripted({"id": 1, "ok": True, "offset": 0, "token": "t"},
                                   dict(info, id=1, ok=True, sha256=self.GOOD))
        yield "commit", (lambda: client.put(io.BytesIO(b"data"), "a")), channel

    def test_a_mode_out_of_its_type_or_range_is_a_break(self):
        for value in self.BAD:
            for what, run, channel in self.described(value):
                with self.subTest(what=what, mode=value):
                    self.assertBreaks(channel, run, "mode")

    def test_the_range_is_taken_and_absence_is_none(self):
        # Round 45: 07777 is within range, but `mode` is the permission bits
        # alone (st_mode & 0o777), as documented.
        for value in (0, 0o644, 0o2755, 4095):
            for what, run, channel in self.described(value):
                with self.subTest(what=what, mode=value):
                    result = run()
                    self.assertEqual(result[-1].mode if isinstance(result, list) else result.mode, value & 0o777)
                    self.assertFalse(channel.closed)
        client, _ = scripted({"id": 1, "ok": True, "name": "a", "type": "file", "size": 4, "mtime": 5})
        self.assertIsNone(client.stat("a").mode)

    def put_sent(self, hello, src):
        """The put request the library sends for ``src``, on a server that said ``hello``."""
        channel = Replay([control({"id": 1, "ok": True, "offset": 0, "token": "t"}),
                          control({"id": 1, "ok": True, "name": "a", "type": "file", "size": 4, "mtime": 5,
                                   "sha256": self.GOOD})])
        ferry_client.Client.over(channel, hello).put(src, "a")
        return channel.sent[0]

    def test_a_put_from_a_path_sends_its_bits_only_where_hello_lists_mode(self):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "a")
            with open(path, "wb") as f:
                f.write(b"data")
            with_mode = dict(HELLO, capabilities=HELLO["capabilities"] + ["mode"])
            for mode in (0o600, 0o755, 0o640, 0o400):
                with self.subTest(mode=oct(mode)):
                    os.chmod(path, mode)
                    self.assertEqual(self.put_sent(with_mode, path).get("mode"), mode)
                    self.assertNotIn("mode", self.put_sent(HELLO, path))
            os.chmod(path, 0o600)
            with open(path, "rb") as opened:   # a file object: no mode of its own
                self.assertNotIn("mode", self.put_sent(with_mode, opened))
            self.assertNotIn("mode", self.put_sent(with_mode, io.BytesIO(b"data")))


if __name__ == "__main__":
    unittest.main()
