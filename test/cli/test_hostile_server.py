"""ferry against a server that does not keep the protocol (a scripted fake
one on loopback, every wait bounded), and against links another user
planted where a download lands (a real ferryd):

- --timeout counts only progress: a server that sends empty data frames
  or empty pages that promise more, forever, is given up like a silent one;
- every listing is checked once, whatever command asked for it: a name
  that breaks PROTOCOL.md 5, a path in a one-folder listing, an entry whose
  folder was never listed as a folder, a duplicate: the server's protocol
  error (exit 8) naming the entry, in ls, get, get -r, wildcards and sync;
- a name the server's listing gave (a wildcard's match) is never written
  through a local link; a name the user typed is, only where the link is
  the user's own or root's.

Usage: test_hostile_server.py --ferryd PATH --ferry PATH [unittest arguments]"""

import ctypes
import hashlib
import json
import os
import pty
import select
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import test_cli  # noqa: E402
from test_cli import CliTest, schema_for  # noqa: E402

MTIME = 1764370000
OTHER_UID = 1234  # no user of the test machine: stands for whoever planted a link
HELLO = {"ok": True, "version": 2, "server": "scripted/0",
         "capabilities": ["list", "stat", "get", "put", "resume", "stats", "folders", "mkdir", "delete", "rename",
                          "digest", "set_mtime", "holding_unlisted"],
         "hashes": ["sha256", "xxh3-128"], "max_control_frame": 65536, "max_data_frame": 16777216, "access": "rw"}


def entry(name, kind="file", size=0):
    return {"name": name, "type": kind, "size": size, "mtime": MTIME}


class ScriptedServer:
    """A version-2 server on loopback that answers from a script:
    `listings` maps (path, recursive) to the pages of that listing (a list
    of lists of entries), `files` maps a path to its bytes, `holding` is
    the last page's "holding_unlisted". `stall` is
    "frames" (a get's reply, then an empty data frame every 0.2 s) or
    "pages" (any listing: empty pages with "more": true, every 0.01 s);
    a stall lasts at most `stall_for` seconds, then the server hangs up."""

    def __init__(self, listings=None, files=None, stall=None, stall_for=20, holding=None, before_trailer=None,
                 commit_error=None, capabilities=(), unread=None, hello=None, answer_as=None,
                 not_found_message="no", get_errors=None, cut_after=None, on_get=None):
        self.listings, self.files = listings or {}, files or {}
        # Fields that replace hello's, and the name a stat, get or digest
        # reply gives for the one asked (None: the one asked).
        self.hello = hello or {}
        self.not_found_message = not_found_message
        self.answer_as = answer_as
        self.holding = holding
        self.unread = unread  # the last page's "unreadable_folders" (a dict: by listing)
        # Called with the file's name once its data is sent, before its
        # trailer: what a test does there happens after the client's looks
        # before the download and before its publish.
        self.before_trailer = before_trailer
        # A put's commit is recorded in `commits` and answered with this
        # error code (None: ok); `capabilities` are added to hello's.
        self.commit_error = commit_error
        self.commits = []
        self.puts = []  # each put request as received
        # By name: the error codes its gets are answered with, one per get
        # in turn (then the file, if it has one).
        self.get_errors = {name: list(codes) for name, codes in (get_errors or {}).items()}
        # By name: how many bytes its first get sends before the server
        # hangs up (a lost connection midway).
        self.cut_after = dict(cut_after or {})
        # Called with (name, offset) when a get arrives, before its reply:
        # what a test does there happens between the client's plan of the
        # download and the server's answer.
        self.on_get = on_get
        self.gets = []  # (name, offset) of each get, in turn
        self.capabilities = list(capabilities)
        self.stall, self.stall_for = stall, stall_for
        self.stalled = []  # how long each stall went on before the client left
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(60)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    read_frame = staticmethod(harness.read_frame)
    send = staticmethod(harness.send_json)
    send_data = staticmethod(harness.send_data)

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.converse_on, args=(conn,), daemon=True).start()

    def converse_on(self, conn):
        with conn:
            conn.settimeout(30)
            try:
                self.converse(conn)
            except (OSError, ValueError):
                pass

    def stall_with(self, conn, frame, every):
        start = time.monotonic()
        try:
            while time.monotonic() - start < self.stall_for:
                frame()
                time.sleep(every)
        except OSError:
            pass
        self.stalled.append(time.monotonic() - start)

    def entry_of(self, path):
        if path == "" or any(path == listed for listed, _ in self.listings):
            return entry(path, "folder")
        if path in self.files:
            return entry(path, "file", len(self.files[path]))
        return None

    def converse(self, conn):
        while True:
            request = self.read_frame(conn)
            if request is None:
                return
            if not isinstance(request, dict):
                continue
            op, rid = request.get("op"), request.get("id")
            if op == "hello":
                self.send(conn, dict(HELLO, id=rid, capabilities=HELLO["capabilities"] + self.capabilities,
                                     **self.hello))
            elif op == "put":
                self.take_upload(conn, rid, request)
            elif op == "list" and self.stall == "pages":
                self.stall_with(conn, lambda: self.send(conn, {"id": rid, "ok": True, "files": [], "more": True}),
                                0.01)
                return
            elif op == "list":
                pages = self.listings.get((request.get("path", ""), bool(request.get("recursive"))))
                if pages is None:
                    self.send(conn, {"id": rid, "ok": False, "error": {"code": "not_found", "message": "no"}})
                    continue
                for number, page in enumerate(pages):
                    reply = {"id": rid, "ok": True, "files": page}
                    if number + 1 < len(pages):
                        reply["more"] = True
                    else:
                        reply["skipped_invalid_names"] = 0
                        if self.holding:
                            reply["holding_unlisted"] = self.holding
                        unread = self.unread
                        if isinstance(unread, dict):  # by listing: {(path, recursive): [...]}
                            unread = unread.get((request.get("path", ""), bool(request.get("recursive"))))
                        if unread is not None:
                            reply["unreadable_folders"] = unread
                    self.send(conn, reply)
            elif op in ("stat", "digest"):
                found = self.entry_of(request.get("name", ""))
                if found is None:
                    self.send(conn, {"id": rid, "ok": False,
                                     "error": {"code": "not_found", "message": self.not_found_message}})
                    continue
                if self.answer_as:
                    found["name"] = self.answer_as
                if op == "digest":
                    found["sha256"] = hashlib.sha256(self.files[request["name"]]).hexdigest()
                self.send(conn, dict(found, id=rid, ok=True))
            elif op == "get":
                name = request["name"]
                if self.get_errors.get(name):
                    code = self.get_errors[name].pop(0)
                    self.send(conn, {"id": rid, "ok": False, "error": {"code": code, "message": "scripted: " + code}})
                    continue
                data = self.files.get(name)
                if data is None:
                    self.send(conn, {"id": rid, "ok": False, "error": {"code": "not_found", "message": "no"}})
                    continue
                offset = request.get("offset", 0)
                self.gets.append((name, offset))
                if self.on_get:
                    self.on_get(name, offset)
                self.send(conn, dict(entry(self.answer_as or name, "file", len(data)), id=rid, ok=True,
                                     offset=offset))
                if self.stall == "frames":
                    self.stall_with(conn, lambda: self.send_data(conn, b""), 0.2)
                    return
                cut = self.cut_after.pop(name, None)
                rest = data[offset:cut]
                for start in range(0, len(rest), 1 << 20):
                    self.send_data(conn, rest[start:start + (1 << 20)])
                if cut is not None:
                    return
                if self.before_trailer:
                    self.before_trailer(name)
                self.send(conn, {"id": rid, "ok": True, "done": True, "size": len(data),
                                 "sha256": hashlib.sha256(data).hexdigest()})
            elif op == "set_mtime":
                self.send(conn, {"id": rid, "ok": True, "name": request["path"], "type": "file", "size": 0,
                                 "mtime": request["mtime"]})
            else:
                self.send(conn, {"id": rid, "ok": False, "error": {"code": "forbidden", "message": "scripted: no"}})

    def take_upload(self, conn, rid, request):
        """A put: accepted at 0, its data read to the commit, which is
        recorded and answered as `commit_error` says."""
        self.puts.append(request)
        self.send(conn, {"id": rid, "ok": True, "offset": 0, "token": "9f2c4e1a7b3d5c6e8f0a1b2c3d4e5f60"})
        data = b""
        while True:
            frame = self.read_frame(conn)
            if frame is None:
                return
            if isinstance(frame, bytes):
                data += frame
                continue
            break
        self.commits.append(frame)
        if self.commit_error:
            self.send(conn, {"id": rid, "ok": False,
                             "error": {"code": self.commit_error, "message": "scripted: a file stands there"}})
            return
        self.send(conn, {"id": rid, "ok": True, "name": request["name"], "type": "file", "size": len(data),
                         "mtime": MTIME, "sha256": hashlib.sha256(data).hexdigest()})

    def close(self):
        self.sock.close()


class HostileTest(CliTest):
    def scripted(self, **script):
        server = ScriptedServer(**script)
        self.addCleanup(server.close)
        return server

    def folder(self, *parts):
        path = os.path.join(self.dir, *parts)
        os.makedirs(path, exist_ok=True)
        return path


class ServerTextAndNamesAreChecked(HostileTest):
    """Round 30 (scp CVE-2019-6109/6111 kinds): the server's free text never
    reaches the terminal as controls, wherever ferry prints it; a reply
    about another name than the one asked is the server's protocol break."""

    HOSTILE = "evil\x1b]0;PWNED\x07\u009b2J\u202e"

    def assert_no_controls(self, text):
        for raw in ("\x1b", "\x07", "\u009b", "\u202e"):
            self.assertNotIn(raw, text)

    def test_the_hello_server_name_is_escaped_in_v_and_the_shell_banner(self):
        server = self.scripted(hello={"server": self.HOSTILE}, listings={("", False): [[entry("a", size=1)]]})
        shown = self.ferry("-v", "ls", server=server.address)
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertIn("\\u{001B}", shown.stderr.decode())
        self.assert_no_controls(shown.stderr.decode())
        banner = self.shell_banner(server.address)
        self.assertIn("connected to", banner)
        self.assertIn("\\u{001B}", banner)
        self.assert_no_controls(banner)

    def shell_banner(self, address):
        """What the shell shows at a terminal up to its first prompt."""
        main, side = pty.openpty()
        shell = subprocess.Popen([test_cli.FERRY, "--server", address], stdin=side, stdout=side, stderr=side,
                                 cwd=self.local, env=self.env)
        os.close(side)
        shown = b""
        deadline = time.monotonic() + 30
        try:
            while b"ferry> " not in shown and time.monotonic() < deadline:
                if select.select([main], [], [], 1)[0]:
                    shown += os.read(main, 4096)
            os.write(main, b"quit\n")
            shell.wait(timeout=30)
        finally:
            if shell.poll() is None:
                shell.kill()
                shell.wait()
            os.close(main)
        return shown.decode(errors="replace")

    def test_a_server_message_is_escaped_in_json_too(self):
        server = self.scripted(not_found_message=self.HOSTILE)
        for args in (["--json", "stat", "a"], ["stat", "a"]):
            with self.subTest(args=args):
                result = self.ferry(*args, server=server.address)
                self.assertEqual(result.returncode, 4, (result.stdout, result.stderr))  # not_found
                said = result.stdout.decode() + result.stderr.decode()
                self.assert_no_controls(said)
                if args[0] == "--json":
                    self.assertIn("\\u{009B}", self.json_of(result)["error"]["message"])

    def test_a_file_named_dash_lands_in_a_file(self):
        # Round 31: a server's file named "-" went to standard output (its
        # bytes straight to the terminal, before --json's object); only
        # -o - means standard output.
        data = b"\x1b]0;PWNED\x07 bytes of the file"
        listing = {("", False): [[entry("-", size=len(data))]]}
        for args in (["get", "*"], ["--json", "get", "*"], ["get", "--", "-"]):
            with self.subTest(args=args):
                server = self.scripted(listings=listing, files={"-": data})
                result = self.ferry(*args, server=server.address)
                self.assertEqual(result.returncode, 0, (result.stdout, result.stderr))
                self.assertNotIn(b"PWNED", result.stdout)
                if args[0] == "--json":
                    self.json_of(result)
                with open(os.path.join(self.local, "-"), "rb") as got:
                    self.assertEqual(got.read(), data)
                os.unlink(os.path.join(self.local, "-"))

    def test_a_reply_about_another_name_is_refused(self):
        listing = {("", False): [[entry("a", size=5)]]}
        for other in ("../../getname-evil", "b"):
            server = self.scripted(listings=listing, files={"a": b"hello"}, answer_as=other)
            for args in (["stat", "a"], ["digest", "a"], ["digest", "*"], ["--json", "stat", "a"],
                         ["get", "a", "-o", os.path.join(self.local, "got")]):
                with self.subTest(other=other, args=args):
                    result = self.ferry(*args, server=server.address)
                    self.assertEqual(result.returncode, 8, (result.stdout, result.stderr))
                    if args[0] == "--json":
                        self.assertEqual(list(self.json_of(result)), ["error"])
                    else:
                        self.assertNotIn(other, result.stdout.decode())
                    said = result.stdout.decode() + result.stderr.decode()
                    self.assertIn("not the \"a\" asked for", said.replace("\\\"", "\""))
                    self.assertFalse(os.path.exists(os.path.join(self.local, "got")))


class NoClobberHoldsToThePublish(HostileTest):
    """-n is checked at the publish itself, not only before the transfer:
    a local file that appears while a get runs (here: after the data, before
    the trailer, so after the look before the download) is left alone and
    the file reported skipped; a put's commit asks the server not to
    replace (commit_replace), and its `exists` is a skip too."""

    def check_get(self, *args, dest, names):
        content = b"the server's bytes " * 1000

        def appear(name):
            with open(os.path.join(dest, os.path.basename(name)), "wb") as f:
                f.write(b"MY PRECIOUS LOCAL FILE")

        listed = [[entry(n, "file", len(content)) for n in names]]
        server = self.scripted(listings={("d", False): listed, ("d", True): listed},
                               files={"d/" + n: content for n in names}, before_trailer=appear)
        got = self.ferry("--json", "--no-progress", "get", "-n", *args, server=server.address)
        self.assertEqual(got.returncode, 0, got.stderr)
        report = self.json_of(got)
        self.assertEqual([f.get("skipped") for f in report["files"]], ["exists"] * len(names), report)
        self.assertEqual(report["summary"]["failed"], 0, report)
        for name in names:
            with open(os.path.join(dest, name), "rb") as f:
                self.assertEqual(f.read(), b"MY PRECIOUS LOCAL FILE", name)
        # Skipped as if found at the start: no part or state of it is left.
        self.assertEqual(sorted(os.listdir(dest)), sorted(names))

    def test_a_local_file_that_appears_during_get_n_is_left_alone(self):
        dest = self.folder("one")
        self.check_get("d/f", "-C", dest, dest=dest, names=["f"])

    def test_several_names_and_wildcards_keep_it_too(self):
        dest = self.folder("several")
        self.check_get("d/f", "d/g", "-C", dest, dest=dest, names=["f", "g"])
        dest = self.folder("wild")
        self.check_get("d/*", "-C", dest, dest=dest, names=["f", "g"])

    def test_get_r_keeps_it_too(self):
        top = self.folder("tree")
        os.mkdir(os.path.join(top, "d"))
        self.check_get("-r", "d", "-C", top, dest=os.path.join(top, "d"), names=["f", "g"])

    # What -n answers for each kind of name, by whether it was there before
    # the get or appeared during it: the same answer (skipped, or the same
    # error and exit status), and the name is left as it was, with no part.
    KINDS = ("folder", "link to nothing", "own link to a file", "another user's link", "FIFO")

    def make_kind(self, path, kind, outside):
        if kind == "folder":
            os.mkdir(path)
        elif kind == "link to nothing":
            os.symlink(os.path.join(outside, "nothing"), path)
        elif kind == "own link to a file":
            os.symlink(os.path.join(outside, "kept"), path)
        elif kind == "another user's link":
            os.symlink(os.path.join(outside, "kept"), path)
            os.lchown(path, OTHER_UID, OTHER_UID)
        else:
            os.mkfifo(path)

    def answer_of(self, args, dest, kind, when, names):
        content = b"the server's bytes " * 1000
        outside = self.folder("outside-" + os.path.relpath(dest, self.dir).replace("/", "-"))
        with open(os.path.join(outside, "kept"), "wb") as f:
            f.write(b"KEPT")

        def appear(name):
            self.make_kind(os.path.join(dest, os.path.basename(name)), kind, outside)

        if when == "before":
            for name in names:
                appear(name)
        listed = [[entry(n, "file", len(content)) for n in names]]
        server = self.scripted(listings={("d", False): listed, ("d", True): listed},
                               files={"d/" + n: content for n in names},
                               before_trailer=appear if when == "during" else None)
        got = self.ferry("--json", "--no-progress", "get", "-n", *args, server=server.address)
        report = self.json_of(got)
        # Left as it was: never downloaded onto, nor through.
        self.assertEqual(sorted(os.listdir(dest)), sorted(names), (kind, when, report))
        with open(os.path.join(outside, "kept"), "rb") as f:
            self.assertEqual(f.read(), b"KEPT")
        self.assertFalse(os.path.exists(os.path.join(outside, "nothing")))
        outcomes = [f.get("skipped") or (f["error"]["code"], f["error"]["message"].replace(dest, "DEST"))
                    for f in report["files"]]
        return got.returncode, outcomes

    def check_kinds(self, args_of, dest_of, names):
        for kind in self.KINDS:
            answers = {}
            for when in ("before", "during"):
                dest = dest_of("%s-%s" % (kind.replace(" ", "-").replace("'", ""), when))
                answers[when] = self.answer_of(args_of(dest), dest, kind, when, names)
            if os.environ.get("SHOW_ANSWERS"):
                print(kind, answers)
            self.assertEqual(answers["during"], answers["before"], kind)

    def test_any_kind_of_name_gets_the_same_answer_before_and_during_the_get(self):
        self.check_kinds(lambda dest: ["d/f", "-C", dest], lambda case: self.folder("one-" + case), ["f"])
        self.check_kinds(lambda dest: ["d/f", "d/g", "-C", dest], lambda case: self.folder("several-" + case),
                         ["f", "g"])
        self.check_kinds(lambda dest: ["d/*", "-C", dest], lambda case: self.folder("wild-" + case), ["f", "g"])

        def tree_dest(case):
            top = self.folder("tree-" + case)
            os.mkdir(os.path.join(top, "d"))
            return os.path.join(top, "d")
        self.check_kinds(lambda dest: ["-r", "d", "-C", os.path.dirname(dest)], tree_dest, ["f", "g"])

    def test_put_n_commits_without_replacing_and_takes_exists_as_a_skip(self):
        self.write(os.path.join(self.local, "up.bin"), b"mine")
        server = self.scripted(commit_error="exists", capabilities=["commit_replace"])
        got = self.ferry("--json", "--no-progress", "put", "-n", "up.bin", server=server.address)
        self.assertEqual(got.returncode, 0, got.stderr)
        report = self.json_of(got)
        self.assertEqual([f.get("skipped") for f in report["files"]], ["exists"], report)
        self.assertEqual([c.get("replace") for c in server.commits], [False])
        # Without -n the commit is spelled as it always was.
        server = self.scripted(capabilities=["commit_replace"])
        got = self.ferry("--no-progress", "put", "up.bin", server=server.address)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertNotIn("replace", server.commits[0])

    def test_put_n_to_a_server_that_cannot_refuse_says_so(self):
        self.write(os.path.join(self.local, "up.bin"), b"mine")
        server = self.scripted()  # no commit_replace: it would ignore the field
        got = self.ferry("--no-progress", "put", "-n", "up.bin", server=server.address)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertIn(b"commit_replace", got.stderr)
        self.assertNotIn("replace", server.commits[0])


    def test_folder_modes_go_only_to_a_server_that_takes_them_and_the_others_get_a_note(self):
        # Round 53b: a folder is made with its source's mode where the
        # server says it honours folder_modes; an older ferryd ignores the
        # field and opens a 0700 folder to everyone, which the user is told.
        tree = os.path.join(self.local, "box")
        os.makedirs(os.path.join(tree, "in"))
        self.write(os.path.join(tree, "in", "f"), b"f")
        os.chmod(os.path.join(tree, "in"), 0o700)
        os.chmod(tree, 0o750)
        server = self.scripted(capabilities=["folder_modes"])
        got = self.ferry("--no-progress", "put", "-r", "box", "-C", "up", server=server.address)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertEqual([(p["name"], p.get("folder_modes")) for p in server.puts], [("up/box/in/f", [0o750, 0o700])])
        self.assertNotIn(b"older ferryd", got.stderr)
        server = self.scripted()
        got = self.ferry("--no-progress", "put", "-r", "box", "-C", "up", server=server.address)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertNotIn("folder_modes", server.puts[0])
        self.assertIn(b"(an older ferryd): 2 folders closed to other users here may be open to them there",
                      got.stderr)
        # Round 54: the note counts only the folders the put makes. Those
        # the server's listing already shows keep their mode there, so a
        # second put -r of the same tree says nothing, and a tree of which
        # only the top is there counts the rest.
        # Round 55: nor one where a file stands (its put fails there).
        for listed, note in (([entry("in", "folder"), entry("in/f", "file", 1)], None),
                             ([entry("in", "file", 1)], None),
                             ([], b"1 folder closed")):
            with self.subTest(listed=listed):
                server = self.scripted(listings={("up/box", True): [listed]})
                got = self.ferry("--no-progress", "put", "-r", "box", "-C", "up", server=server.address)
                self.assertEqual(got.returncode, 0, got.stderr)
                if note is None:
                    self.assertNotIn(b"older ferryd", got.stderr)
                else:
                    self.assertIn(note, got.stderr)


class RetryKeepsWaitingDownloads(HostileTest):
    """Round 53's gap: with --retry, a download waiting behind the one that
    holds its local name was refused at the end of the first pass when that
    one failed for a passing reason, so if it then failed for good in the
    retry, neither file came. It waits behind it in the retry too."""

    def test_a_waiting_download_takes_the_name_when_its_holder_fails_for_good_in_the_retry(self):
        server = self.scripted(files={"d/x": b"from d"}, get_errors={"f/x": ["io_error", "not_found"]})
        got = self.ferry("--no-progress", "get", "--retry", "1", "f/x", "d/x", server=server.address)
        self.assertEqual(got.returncode, 4, got.stderr)  # f/x: not_found
        with open(os.path.join(self.local, "x"), "rb") as f:
            self.assertEqual(f.read(), b"from d")
        self.assertNotIn(b"name_clash", got.stderr)

    def test_a_waiting_download_is_refused_once_when_its_holder_gets_it_in_the_retry(self):
        server = self.scripted(files={"f/x": b"from f", "d/x": b"from d"}, get_errors={"f/x": ["io_error"]})
        got = self.ferry("--no-progress", "get", "--retry", "1", "f/x", "d/x", server=server.address)
        self.assertEqual(got.returncode, 4, got.stderr)
        with open(os.path.join(self.local, "x"), "rb") as f:
            self.assertEqual(f.read(), b"from f")
        self.assertEqual(got.stderr.count(b"name_clash"), 1, got.stderr)
        # Without tries left, it is refused at once, as before.
        os.remove(os.path.join(self.local, "x"))
        server = self.scripted(files={"d/x": b"from d"}, get_errors={"f/x": ["io_error"]})
        got = self.ferry("--json", "--no-progress", "get", "f/x", "d/x", server=server.address)
        report = self.json_of(got)
        self.assertEqual([f.get("error", {}).get("code") for f in report["files"]], ["io_error", "name_clash"])


class PartChangedBeforeTheAnswer(HostileTest):
    """A download cut midway (the client keeps what came for a resume),
    then its part changed as the resume's get arrives: between the
    client's plan and the server's answer."""

    CUT = 300000  # bytes the first get sends before the server hangs up

    def resumed_meanwhile(self, command, dest, change, keep_state=False):
        """The command's download, cut at CUT, then `change` done to its
        part as the resume's get arrives (the state goes too unless
        `keep_state`): (the ferry run, the server, the file's bytes)."""
        data = os.urandom(1024 * 1024 + 4096)
        os.makedirs(os.path.dirname(dest), exist_ok=True)

        def meanwhile(name, offset):
            if offset > 0:
                change(dest + ".ferry-part")
                if not keep_state:
                    os.remove(dest + ".ferry-part.state")

        server = self.scripted(listings={("d", True): [[entry("x", "file", len(data))]]}, files={"d/x": data},
                               cut_after={"d/x": self.CUT}, on_get=meanwhile)
        return self.ferry("--no-progress", *command, server=server.address), server, data

    def check_got_whole(self, got, server, data, dest):
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertEqual([offset for _, offset in server.gets], [0, self.CUT, 0])
        with open(dest, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(data).hexdigest())
        self.assertFalse(os.path.exists(dest + ".ferry-part"))

    def check_tried_again(self, command, dest, gone):
        self.check_got_whole(*self.resumed_meanwhile(command, dest, gone), dest)

    @staticmethod
    def swap_in(part, content, marked):
        """Another file at the part's name (a new inode), `marked` as a
        part of ferry's or not."""
        with open(part + ".new", "wb") as f:
            f.write(content)
        if marked:
            os.setxattr(part + ".new", "user.ferry.part", b"1")
        os.rename(part + ".new", part)

    @staticmethod
    def head_of(path, size):
        with open(path, "rb") as f:
            return f.read(size)


class RetryOutlastsAnotherDownloadOfTheName(PartChangedBeforeTheAnswer):
    """Round 61: two ferry download one file to one name. The second's
    retry plans a resume of the first's part, and the first publishes it
    (or the user removes it) before the server's answer: the part is gone
    when the second opens it. That was local_io, permanent, so --retry gave
    up with the file unfetched; it is busy now, and the next try starts
    afresh."""

    def test_a_part_published_by_another_download_before_the_answer(self):
        dest = os.path.join(self.local, "x")
        self.check_tried_again(["get", "--retry", "2", "d/x"], dest, lambda part: os.rename(part, dest))

    def test_a_part_removed_before_the_answer(self):
        dest = os.path.join(self.local, "x")
        self.check_tried_again(["get", "--retry", "2", "d/x", "-o", dest], dest, os.remove)

    def test_a_sync_pulls_part_published_before_the_answer(self):
        dest = os.path.join(self.local, "pulled", "x")
        self.check_tried_again(["sync", "--retry", "2", ":d", "pulled"], dest, lambda part: os.rename(part, dest))


class ARetryInAFolderThePullMadeResumes(HostileTest):
    """A pull plans a file's first try in a folder it made itself without
    looking for a part, a sidecar or the file (nothing could stand there
    yet). Its retry, after the connection was lost midway, looks as any
    get does: it resumes the part the first try left, in the folder the
    pull made and in the synced folder it made, rather than starting
    over."""

    CUT = 300000

    def test_the_retry_resumes_where_the_first_try_stopped(self):
        data = {"d/x": os.urandom(1024 * 1024 + 4096), "d/s/y": os.urandom(1024 * 1024 + 512)}
        listed = [entry("s", "folder"), entry("s/y", "file", len(data["d/s/y"])), entry("x", "file", len(data["d/x"]))]
        server = self.scripted(listings={("d", True): [listed]}, files=data,
                               cut_after={"d/x": self.CUT, "d/s/y": self.CUT})
        got = self.ferry("--no-progress", "sync", "-j", "1", "--retry", "1", ":d", "pulled", server=server.address)
        self.assertEqual(got.returncode, 0, got.stderr)
        # Each file twice: from 0, then from what its first try kept (all
        # of CUT, or less where the server's hang-up, with a pipelined get
        # unread, reset the connection before the client read the rest).
        for name in data:
            offsets = [offset for asked, offset in server.gets if asked == name]
            self.assertEqual(len(offsets), 2, server.gets)
            self.assertEqual(offsets[0], 0, server.gets)
            self.assertTrue(0 < offsets[1] <= self.CUT, server.gets)
        for name, local in (("d/x", "x"), ("d/s/y", "s/y")):
            with open(os.path.join(self.local, "pulled", local), "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), hashlib.sha256(data[name]).hexdigest())
        self.assertEqual(sorted(os.listdir(os.path.join(self.local, "pulled"))), ["s", "x"])
        self.assertEqual(os.listdir(os.path.join(self.local, "pulled", "s")), ["y"])


class ResumeWritesOnlyTheCheckedPart(PartChangedBeforeTheAnswer):
    """Round 63: a resume wrote into whatever regular file of the user's
    stood at the part's name when the server answered, and published it as
    verified: the hash goes on from the saved state and never reads the
    bytes before the offset again. A part another download left when it
    stopped (shorter) came out with a hole of zeros; a file the user put
    there was written into and published. Now the resume writes only into
    the file it checked, else busy, and the next try looks again."""

    def test_a_shorter_part_another_download_left_is_not_built_on(self):
        dest = os.path.join(self.local, "x")
        got, server, data = self.resumed_meanwhile(
            ["get", "--retry", "2", "d/x"], dest,
            lambda part: self.swap_in(part, self.head_of(part, 50000), marked=True), keep_state=True)
        self.check_got_whole(got, server, data, dest)

    def test_a_part_with_other_bytes_in_a_sync_pull_is_not_built_on(self):
        dest = os.path.join(self.local, "pulled", "x")
        got, server, data = self.resumed_meanwhile(
            ["sync", "--retry", "2", ":d", "pulled"], dest,
            lambda part: self.swap_in(part, b"\xff" * os.path.getsize(part), marked=True), keep_state=True)
        self.check_got_whole(got, server, data, dest)

    def test_a_users_own_file_at_the_parts_name_is_never_written(self):
        dest = os.path.join(self.local, "x")
        part = dest + ".ferry-part"
        got, server, _ = self.resumed_meanwhile(
            ["get", "--retry", "2", "d/x"], dest, lambda planned: self.swap_in(planned, bytes(self.CUT), marked=False),
            keep_state=True)
        self.assertNotEqual(got.returncode, 0, got.stderr)
        self.assertEqual([offset for _, offset in server.gets], [0, self.CUT])
        with open(part, "rb") as f:
            self.assertEqual(f.read(), bytes(self.CUT))
        self.assertFalse(os.path.exists(dest))


class TimeoutCountsOnlyProgress(HostileTest):
    """--timeout 2 against a server that keeps the connection busy without
    moving anything: the client gives up after about 2 s, as against a
    silent server, not when the server tires (20 s)."""

    def check_gives_up(self, server, *args):
        start = time.monotonic()
        got = self.ferry("--timeout", "2", "--no-progress", *args, server=server.address, timeout=40)
        took = time.monotonic() - start
        self.assertEqual(got.returncode, 6, got.stderr)  # connection_lost: transient
        self.assertIn(b"no progress for 2 s", got.stderr)
        self.assertLess(took, 10, "held %.1f s by a server that moved nothing" % took)

    def test_empty_data_frames_do_not_keep_a_download_alive(self):
        server = self.scripted(listings={("d", False): [[entry("f", "file", 10)]]}, files={"d/f": b"0123456789"},
                               stall="frames")
        self.check_gives_up(server, "get", "d/f", "-C", self.folder("got"))

    def test_empty_data_frames_do_not_keep_a_sync_pull_alive(self):
        server = self.scripted(listings={("d", True): [[entry("f", "file", 10)]]}, files={"d/f": b"0123456789"},
                               stall="frames")
        self.check_gives_up(server, "sync", ":d", self.folder("pulled"))

    def test_empty_pages_that_promise_more_do_not_keep_a_listing_alive(self):
        server = self.scripted(stall="pages")
        for args in (["ls", "d"], ["ls", "-r", "d"], ["get", "d/*", "-C", self.folder("w")],
                     ["get", "-r", "d", "-C", self.folder("r")], ["sync", ":d", self.folder("s")]):
            with self.subTest(args=args):
                self.check_gives_up(server, *args)

    def test_a_slow_server_that_moves_is_not_cut(self):
        # The other side of the rule: pages with entries, each later than
        # the last but within the timeout, add up to more than it.
        class Slow(ScriptedServer):
            def converse(self, conn):
                while True:
                    request = self.read_frame(conn)
                    if request is None:
                        return
                    if request["op"] == "hello":
                        self.send(conn, dict(HELLO, id=request["id"]))
                        continue
                    for number in range(4):
                        time.sleep(0.8)
                        self.send(conn, {"id": request["id"], "ok": True, "files": [entry("f%d" % number)],
                                         "more": number < 3})
        server = Slow()
        self.addCleanup(server.close)
        # 3.2 s in all against a timeout of 2.5 s: 1.7 s to spare a page on a loaded machine.
        got = self.ferry("--timeout", "2.5", "ls", "d", server=server.address, timeout=40)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertEqual(got.stdout.count(b"\n"), 4, got.stdout)


class ListingsAreChecked(HostileTest):
    """Each broken listing gets the same answer from every command: exit 8,
    the server broke the protocol, the entry named, nothing written."""

    def commands(self):
        return (["ls", "d"], ["ls", "-r", "d"], ["get", "d/*", "-C", self.folder("w")],
                ["get", "-r", "d", "-C", self.folder("r")], ["sync", ":d", self.folder("s")])

    def check_refused(self, flat, deep, shown, only=None):
        files = {"d/" + str(e["name"]): b"PWNED\n" for e in flat + deep if e.get("type") == "file"}
        files["d/ok.txt"] = b"ok\n"
        server = self.scripted(listings={("d", False): [flat], ("d", True): [deep], ("", False): [[entry("d", "folder")]]},
                               files=files)
        for args in self.commands():
            if only is not None and args[:2] not in only:
                continue
            with self.subTest(args=args):
                got = self.ferry("--no-progress", *args, server=server.address)
                self.assertEqual(got.returncode, 8, (got.stdout, got.stderr))
                self.assertIn(b"the server broke the protocol", got.stderr)
                self.assertIn(shown.encode(), got.stderr)
                self.assertNotIn(b"PWNED", got.stdout)
        for landed in ("w", "r", "s"):
            for folder, _, names in os.walk(os.path.join(self.dir, landed)):
                for name in names:
                    with open(os.path.join(folder, name), "rb") as f:
                        self.assertNotEqual(f.read(), b"PWNED\n", os.path.join(folder, name))

    def test_names_that_climb_or_are_absolute(self):
        for bad in ("..", "../esc1", "a/../../esc2", "/tmp/esc3", "."):
            with self.subTest(name=bad):
                listed = [entry(bad, "file", 6), entry("ok.txt", "file", 3)]
                self.check_refused(listed, listed, '"%s"' % bad)

    def test_names_section_5_refuses(self):
        for bad, shown in (("", '""'), ("a\x1b[31mred", "a\\u{001B}[31mred"), (".hidden", '".hidden"'),
                           ("x" * 256, "x" * 256), ("back\\slash", "back\\slash"), ("rtl\u202etxt", "U+202E")):
            with self.subTest(name=shown):
                listed = [entry("ok.txt", "file", 3), entry(bad, "file", 6)]
                self.check_refused(listed, listed, shown)

    def test_a_path_in_a_one_folder_listing(self):
        flat = [entry("sub/evil", "file", 6), entry("ok.txt", "file", 3)]
        self.check_refused(flat, [], '"sub/evil"', only=(["ls", "d"], ["get", "d/*"]))

    def test_an_entry_below_a_file_or_below_nothing_listed(self):
        for deep, shown in (([entry("f", "file", 6), entry("f/g", "file", 6)], '"f/g"'),
                            ([entry("n/o/p", "file", 6)], '"n/o/p"'),
                            ([entry("late/x", "file", 6), entry("late", "folder")], '"late/x"')):
            with self.subTest(shown=shown):
                self.check_refused([entry("ok.txt", "file", 3)], deep, shown,
                                   only=(["ls", "-r"], ["get", "-r"], ["sync", ":d"]))

    def test_a_duplicate_in_one_page_or_across_pages(self):
        flat = [entry("x", "file", 3), entry("x", "file", 6)]
        self.check_refused(flat, flat, '"x"')
        both = [entry("y", "folder"), entry("y", "file", 3)]
        self.check_refused(both, both, '"y"')

    def test_a_duplicate_across_pages(self):
        files = {"d/a": b"aa\n", "d/b/c": b"cc\n"}
        pages = [[entry("a", "file", 3)], [entry("a", "file", 3), entry("b", "folder")], [entry("b/c", "file", 3)]]
        server = self.scripted(listings={("d", False): pages, ("d", True): pages}, files=files)
        for args in self.commands():
            with self.subTest(args=args):
                got = self.ferry("--no-progress", *args, server=server.address)
                self.assertEqual(got.returncode, 8, got.stderr)
                self.assertIn(b'"a": it was listed twice', got.stderr)

    def test_holding_unlisted_names_only_listed_folders(self):
        for holding, shown in ((["a", "../up"], '"../up"'), (["never"], '"never"'), (["f"], '"f"')):
            with self.subTest(holding=holding):
                server = self.scripted(listings={("d", True): [[entry("a", "folder"), entry("f", "file", 3)]]},
                                       files={"d/f": b"ff\n"}, holding=holding)
                got = self.ferry("sync", ":d", self.folder("s"), server=server.address)
                self.assertEqual(got.returncode, 8, got.stderr)
                self.assertIn(b"holding_unlisted", got.stderr)
                self.assertIn(shown.encode(), got.stderr)

    def test_badly_typed_entries_are_the_servers_protocol_error(self):
        # A field of the wrong type or range in a reply is the server
        # breaking the protocol (exit 8), never a bad_request of ours (exit 2).
        for field, value in (("type", "symlink"), ("type", None), ("size", -1), ("size", "3"), ("size", 2 ** 64),
                             ("mtime", 1.5), ("name", 5), ("mode", 4096), ("mode", -1), ("mode", "420"),
                             ("mode", 420.0)):
            with self.subTest(field=field, value=value):
                bad = dict(entry("bad", "file", 3), **{field: value})
                listed = [entry("ok.txt", "file", 3), bad]
                self.check_refused(listed, listed, 'field "%s"' % field)

    def test_a_mode_with_set_id_bits_is_shown_as_its_permission_bits(self):
        # Round 44: 07777 is within what a reply may carry (PROTOCOL.md 3.3),
        # but --json showed it whole where the text shows 0777 and the
        # schema allows 0777 at most.
        listed = [dict(entry("f", "file", 3), mode=0o7777), dict(entry("g", "folder"), mode=0o2755)]
        server = self.scripted(listings={("d", False): [listed]}, files={"d/f": b"ff\n"})
        got = self.ferry("--json", "ls", "d", server=server.address)
        self.assertEqual(got.returncode, 0, got.stderr)
        shown = json.loads(got.stdout)
        schema_for("list").validate(shown)
        self.assertEqual({e["name"]: e["mode"] for e in shown["files"]}, {"f": 0o777, "g": 0o755})

    def test_badly_typed_holding_unlisted_is_the_servers_protocol_error(self):
        for holding in ([1], "sub"):
            with self.subTest(holding=holding):
                server = self.scripted(listings={("d", True): [[entry("a", "folder")]]}, holding=holding)
                got = self.ferry("sync", ":d", self.folder("s"), server=server.address)
                self.assertEqual(got.returncode, 8, got.stderr)
                self.assertIn(b"the server broke the protocol", got.stderr)
                self.assertIn(b"holding_unlisted", got.stderr)

    def test_unreadable_folders_names_only_listed_folders_with_a_known_code(self):
        listed = [[entry("a", "folder"), entry("f", "file", 3)]]
        for unread, shown in (([{"path": "never", "code": "forbidden"}], b'"never"'),
                              ([{"path": "f", "code": "forbidden"}], b'"f"'),
                              ([{"path": "a", "code": "not_found"}], b'"code"'),
                              ([{"path": "a"}], b'"code"'),
                              (["a"], b"objects"), ("a", b"unreadable_folders")):
            with self.subTest(unread=unread):
                server = self.scripted(listings={("d", True): listed}, files={"d/f": b"ff\n"}, unread=unread)
                for args in (("sync", ":d", self.folder("s")), ("get", "-r", "d", "-C", self.folder("g")),
                             ("ls", "-r", "d")):
                    got = self.ferry(*args, server=server.address)
                    self.assertEqual(got.returncode, 8, (args, got.stderr))
                    self.assertIn(b"unreadable_folders", got.stderr)
                    self.assertIn(shown, got.stderr)

    def test_a_folder_named_unreadable_is_never_taken_for_an_empty_one(self):
        # Named in unreadable_folders alone (not in holding_unlisted): still
        # what it holds is unknown. sync --delete keeps what is here below
        # it, get -r and ls -r report it; each exits with its code.
        listed = [[entry("a", "folder"), entry("f", "file", 3), entry("locked", "folder")]]
        server = self.scripted(listings={("d", True): listed}, files={"d/f": b"ff\n"},
                               unread=[{"path": "locked", "code": "forbidden"}])
        dest = self.folder("s")
        os.makedirs(os.path.join(dest, "locked", "deep"))
        for rel in ("locked/mine.txt", "locked/deep/x", "stray.txt"):
            with open(os.path.join(dest, rel), "wb") as f:
                f.write(b"mine")
        for dry_run in (["-n"], []):
            got = self.ferry("--json", "sync", *dry_run, "--delete", ":d", dest, server=server.address)
            self.assertEqual(got.returncode, 4, got.stderr)
            summary = json.loads(got.stdout)["sync"]
            self.assertEqual([(e["path"], e["code"]) for e in summary["errors"]], [("locked", "forbidden")], summary)
            self.assertIn("--delete removes nothing at or below it", summary["errors"][0]["message"])
        for rel in ("locked/mine.txt", "locked/deep/x"):
            self.assertTrue(os.path.exists(os.path.join(dest, rel)), rel)
        self.assertFalse(os.path.exists(os.path.join(dest, "stray.txt")))
        got = self.ferry("--json", "get", "-r", "d", "-C", self.folder("g"), server=server.address)
        self.assertEqual(got.returncode, 4, got.stderr)
        out = json.loads(got.stdout)
        self.assertEqual([(f["name"], f["error"]["code"]) for f in out["failed_folders"]], [("d/locked", "forbidden")])
        got = self.ferry("ls", "-r", "d", server=server.address)
        self.assertEqual(got.returncode, 4, got.stderr)
        self.assertIn(b"locked/", got.stdout)
        self.assertIn(b'the server could not read the folder "d/locked"', got.stderr)
        # ls -r of a wildcard lists what each matched folder holds (round
        # 33: -r was dropped), and names its unreadable folders the same way.
        server = self.scripted(listings={("d", True): listed, ("", False): [[entry("d", "folder"),
                                                                             entry("e", "file", 1)]]},
                               files={"d/f": b"ff\n"}, unread={("d", True): [{"path": "locked", "code": "forbidden"}]})
        for pattern, also in (("d*", []), ("[de]", ["e"])):
            got = self.ferry("--json", "ls", "-r", pattern, server=server.address)
            self.assertEqual(got.returncode, 4, got.stderr)
            out = json.loads(got.stdout)
            self.assertEqual([f["name"] for f in out["files"]], ["d", "d/a", "d/f", "d/locked"] + also)
            self.assertEqual([(f["path"], f["error"]["code"]) for f in out["failed_folders"]],
                             [("d/locked", "forbidden")])
            self.assertIn('the server could not read the folder "d/locked"', out["failed_folders"][0]["error"]["message"])
            text = self.ferry("ls", "-r", pattern, server=server.address)
            self.assertEqual(text.returncode, 4, text.stderr)
            self.assertIn(b'the server could not read the folder "d/locked"', text.stderr)

    def test_a_reply_to_another_request_is_refused_before_its_fields(self):
        # The id is compared first: a get's reply with another id and no
        # "offset" is a reply to another request, not a missing field.
        class WrongId(ScriptedServer):
            def converse(self, conn):
                while True:
                    request = self.read_frame(conn)
                    if request is None:
                        return
                    if request["op"] == "hello":
                        self.send(conn, dict(HELLO, id=request["id"]))
                    elif request["op"] == "stat":
                        self.send(conn, dict(entry("d/f", "file", 3), id=request["id"], ok=True))
                    else:
                        self.send(conn, {"id": 99999, "ok": True, "name": "zz", "size": 3, "mtime": 1})
        server = WrongId()
        self.addCleanup(server.close)
        got = self.ferry("--no-progress", "get", "d/f", "-C", self.folder("g"), server=server.address)
        self.assertEqual(got.returncode, 8, got.stderr)
        self.assertIn(b"a reply for request 99999", got.stderr)

    def test_a_listing_that_keeps_the_rules_passes(self):
        flat = [entry("ok.txt", "file", 3), entry("sub", "folder")]
        deep = [entry("ok.txt", "file", 3), entry("sub", "folder"), entry("sub/in.txt", "file", 3)]
        server = self.scripted(listings={("d", False): [flat[:1], flat[1:]], ("d", True): [deep[:2], deep[2:]]},
                               files={"d/ok.txt": b"ok\n", "d/sub/in.txt": b"in\n"})
        for args in self.commands():
            with self.subTest(args=args):
                got = self.ferry("--no-progress", *args, server=server.address)
                self.assertEqual(got.returncode, 0, got.stderr)


class PlantedLinks(CliTest):
    """A shared folder (mode 1777 or 777) where another user put a link
    at the name a file lands on, leading to a file of root's outside."""

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("needs root, to plant a link owned by another user")
        self.address = self.start_server()
        os.makedirs(os.path.join(self.root, "d"))
        for name in ("y", "z"):
            with open(os.path.join(self.root, "d", name), "wb") as f:
                f.write(b"server " + name.encode() + b"\n")
        self.victim = os.path.join(self.dir, "victim")
        with open(self.victim, "wb") as f:
            f.write(b"root's secret\n")
        os.chmod(self.victim, 0o600)

    def shared(self, mode):
        path = os.path.join(self.dir, "shared-%o" % mode)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, mode)
        return path

    def plant(self, folder, name="y", uid=OTHER_UID):
        link = os.path.join(folder, name)
        os.symlink(self.victim, link)
        os.lchown(link, uid, uid)
        return link

    def check_victim_kept(self):
        with open(self.victim, "rb") as f:
            self.assertEqual(f.read(), b"root's secret\n")

    def test_a_wildcards_match_is_never_written_through_a_link(self):
        # Whoever owns the link: the name is the server's, not the user's.
        for mode in (0o1777, 0o777):
            for uid in (OTHER_UID, 0):
                with self.subTest(mode="%o" % mode, uid=uid):
                    folder = self.shared(mode)
                    link = self.plant(folder, uid=uid)
                    got = self.ferry("--no-progress", "get", "d/*", "-C", folder, server=self.address)
                    self.assertEqual(got.returncode, 3, got.stderr)  # local_io, for y alone
                    self.assertIn(b"is a symbolic link", got.stderr)
                    self.check_victim_kept()
                    self.assertTrue(os.path.islink(link))
                    with open(os.path.join(folder, "z"), "rb") as f:
                        self.assertEqual(f.read(), b"server z\n")  # the rest goes on
                    os.unlink(link)
                    os.unlink(os.path.join(folder, "z"))

    def test_a_wildcard_into_an_existing_folder_given_with_o(self):
        folder = self.shared(0o1777)
        self.plant(folder)
        got = self.ferry("--no-progress", "get", "d/y*", "-o", folder, server=self.address)
        self.assertEqual(got.returncode, 3, got.stderr)
        self.check_victim_kept()

    def test_a_typed_name_is_not_written_through_another_users_link(self):
        for mode in (0o1777, 0o777):
            for args in (lambda f: ["get", "d/y", "-C", f], lambda f: ["get", "d/y", "-o", os.path.join(f, "y")],
                         lambda f: ["get", "d/y", "d/z", "-C", f]):
                folder = self.shared(mode)
                with self.subTest(mode="%o" % mode, args=args(folder)):
                    link = self.plant(folder)
                    got = self.ferry("--no-progress", *args(folder), server=self.address)
                    self.assertEqual(got.returncode, 3, got.stderr)
                    self.assertIn(b"owned by another user (uid %d)" % OTHER_UID, got.stderr)
                    self.check_victim_kept()
                    self.assertTrue(os.path.islink(link))
                    os.unlink(link)
                    if os.path.exists(os.path.join(folder, "z")):
                        os.unlink(os.path.join(folder, "z"))

    def test_a_typed_name_in_the_working_folder(self):
        folder = self.shared(0o1777)
        self.plant(folder)
        self.local = folder
        got = self.ferry("--no-progress", "get", "d/y", server=self.address)
        self.assertEqual(got.returncode, 3, got.stderr)
        self.check_victim_kept()

    def test_a_chain_through_another_users_link_is_refused(self):
        # The user's own link, leading to one someone else planted.
        folder = self.shared(0o1777)
        planted = self.plant(folder, name="planted")
        mine = os.path.join(self.dir, "mine")
        os.symlink(planted, mine)
        got = self.ferry("--no-progress", "get", "d/y", "-o", mine, server=self.address)
        self.assertEqual(got.returncode, 3, got.stderr)
        self.assertIn(b"owned by another user", got.stderr)
        self.check_victim_kept()

    def test_a_folder_named_through_another_users_link_is_refused(self):
        # -C DIR where DIR (or a folder above the name) is someone else's link.
        outside = os.path.join(self.dir, "outside")
        os.makedirs(outside)
        folder = self.shared(0o1777)
        link = os.path.join(folder, "dir")
        os.symlink(outside, link)
        os.lchown(link, OTHER_UID, OTHER_UID)
        for args in (["get", "d/y", "-C", link], ["get", "d/*", "-C", link], ["get", "-r", "d", "-C", link],
                     ["get", "d/y", "-o", os.path.join(link, "y")], ["get", "d/y", "-C", os.path.join(link, "new")],
                     ["get", "-r", "d", "-C", os.path.join(link, "new", "deeper")]):
            with self.subTest(args=args):
                got = self.ferry("--no-progress", *args, server=self.address)
                self.assertEqual(got.returncode, 3, got.stderr)
                self.assertIn(b"owned by another user (uid %d)" % OTHER_UID, got.stderr)
                self.assertEqual(os.listdir(outside), [])

    def test_the_users_own_link_at_a_typed_name_is_followed_as_documented(self):
        folder = self.shared(0o1777)
        link = self.plant(folder, uid=os.geteuid())
        got = self.ferry("--no-progress", "get", "d/y", "-o", link, server=self.address)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertTrue(os.path.islink(link))
        with open(self.victim, "rb") as f:
            self.assertEqual(f.read(), b"server y\n")


    def test_the_users_own_link_to_a_fifo_is_followed(self):
        fifo = os.path.join(self.dir, "fifo")
        os.mkfifo(fifo)
        link = os.path.join(self.shared(0o1777), "mine")
        os.symlink(fifo, link)
        got_bytes = []
        def read():
            with open(fifo, "rb") as f:
                got_bytes.append(f.read())
        reader = threading.Thread(target=read)
        reader.start()
        got = self.ferry("--no-progress", "get", "d/y", "-o", link, server=self.address)
        reader.join(30)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertEqual(got_bytes, [b"server y\n"])

    def planted_folder(self):
        # Root's folder outside the shared one, and uid 1234's link to it.
        victim_dir = os.path.join(self.dir, "victimdir")
        os.makedirs(victim_dir)
        os.chmod(victim_dir, 0o700)
        for name in ("precious", "secret"):
            self.write(os.path.join(victim_dir, name), b"root's " + name.encode() + b"\n")
        link = os.path.join(self.shared(0o1777), "backup")
        os.symlink(victim_dir, link)
        os.lchown(link, OTHER_UID, OTHER_UID)
        return victim_dir, link

    def test_syncs_local_folder_follows_no_one_elses_link(self):
        os.makedirs(os.path.join(self.root, "d", "t"))
        self.write(os.path.join(self.root, "d", "t", "f"), b"server f\n")
        victim_dir, link = self.planted_folder()
        for args in (["sync", "--delete", ":d/t", link], ["sync", ":d/t", link], ["sync", link, ":up"],
                     ["sync", "--delete", link + "/", ":up"], ["put", "-r", link + "/", "-C", "up2"]):
            with self.subTest(args=args):
                got = self.ferry("--no-progress", *args, server=self.address)
                self.assertEqual(got.returncode, 3, got.stderr)
                self.assertIn(b"owned by another user (uid %d)" % OTHER_UID, got.stderr)
                self.assertEqual(sorted(os.listdir(victim_dir)), ["precious", "secret"])
                self.assertFalse(os.path.exists(os.path.join(self.root, "up", "secret")))
                self.assertFalse(os.path.exists(os.path.join(self.root, "up2")))

    def test_put_reads_no_file_through_another_users_link(self):
        folder = self.shared(0o1777)
        link = self.plant(folder, name="notes.txt")
        for args in (["put", link], ["put", link, "--as", "n2"], ["put", os.path.join(folder, ".", "notes.txt")]):
            with self.subTest(args=args):
                got = self.ferry("--no-progress", *args, server=self.address)
                self.assertEqual(got.returncode, 3, got.stderr)
                self.assertIn(b"owned by another user (uid %d)" % OTHER_UID, got.stderr)
                self.assertEqual(sorted(os.listdir(self.root)), ["d"])

    def test_the_users_own_links_to_a_folder_are_followed(self):
        os.makedirs(os.path.join(self.root, "d", "t"))
        self.write(os.path.join(self.root, "d", "t", "f"), b"server f\n")
        mine = os.path.join(self.dir, "mine")
        os.makedirs(mine)
        self.write(os.path.join(mine, "old"), b"mine\n")
        link = os.path.join(self.shared(0o1777), "mylink")
        os.symlink(mine, link)
        got = self.ferry("--no-progress", "sync", "--delete", ":d/t", link, server=self.address)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertEqual(os.listdir(mine), ["f"])
        got = self.ferry("--no-progress", "sync", link, ":up", server=self.address)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertTrue(os.path.exists(os.path.join(self.root, "up", "f")))
        self.write(os.path.join(mine, "notes"), b"notes\n")
        got = self.ferry("--no-progress", "put", os.path.join(link, "notes"), server=self.address)
        self.assertEqual(got.returncode, 0, got.stderr)
        # ".." is the folder above where the link leads, as the kernel has it.
        got = self.ferry("--no-progress", "get", "d/y", "-C", os.path.join(link, "..", "mine"), server=self.address)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertTrue(os.path.exists(os.path.join(mine, "y")))


RENAME_EXCHANGE = 2


class SwappedLinks(CliTest):
    """uid 1234 exchanges its own folder in a shared (1777) folder with its
    own link to a root-only folder, over and over (renameat2
    RENAME_EXCHANGE), while root downloads into the folder by name: the
    owner rule must hold on what is written through, not on a path looked
    at before."""

    ATTEMPTS = 40

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest("needs root, to make another user's link")
        os.makedirs(os.path.join(self.root, "d"))
        self.write(os.path.join(self.root, "d", "y"), os.urandom(4 << 20))
        self.address = self.start_server()
        self.out = os.path.join(self.dir, "out")
        os.makedirs(self.out)
        os.chmod(self.out, 0o700)
        self.write(os.path.join(self.out, "keep"), b"ROOT ONLY\n")
        self.sh = os.path.join(self.dir, "sh")
        os.makedirs(self.sh)
        os.chmod(self.sh, 0o1777)
        self.udir = os.path.join(self.sh, "udir")
        os.makedirs(self.udir)
        os.chown(self.udir, OTHER_UID, OTHER_UID)
        self.ulink = os.path.join(self.sh, "ul")
        os.symlink(self.out, self.ulink)
        os.lchown(self.ulink, OTHER_UID, OTHER_UID)
        self.stop = threading.Event()
        libc = ctypes.CDLL(None, use_errno=True)
        a, b = self.udir.encode(), self.ulink.encode()

        def swap():
            while not self.stop.is_set():
                libc.renameat2(-100, a, -100, b, RENAME_EXCHANGE)
        self.swapper = threading.Thread(target=swap)
        self.swapper.start()

    def tearDown(self):
        self.stop.set()
        self.swapper.join()
        super().tearDown()

    def check(self, args):
        for attempt in range(self.ATTEMPTS):
            got = self.ferry("--no-progress", "-q", *args, server=self.address)
            self.assertIn(got.returncode, (0, 3), got.stderr)
            self.assertEqual(os.listdir(self.out), ["keep"], "attempt %d: %r" % (attempt, got.stderr))

    def test_o(self):
        self.check(["get", "d/y", "-o", os.path.join(self.udir, "out")])

    def test_C(self):
        self.check(["get", "d/y", "-C", self.udir])

    def test_wildcard(self):
        self.check(["get", "d/*", "-C", self.udir])

    def test_recursive(self):
        self.check(["get", "-r", "d", "-C", self.udir])

    def test_sync(self):
        self.check(["sync", ":d", self.udir])


if __name__ == "__main__":
    sys.exit(test_cli.main())  # runs this module's tests, against the binaries it is given
