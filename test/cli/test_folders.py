"""ferry's folder commands (issue 14) against a real ferryd: list PATH -r,
stat of a folder, get -r and put -r with -p, rm, mv, mkdir, digest,
wildcards matched against the server's listing, errors shown with their
wire code (and the same under --json, checked against
docs/ferry-json.schema.json), and a server that speaks only protocol
version 1 (a fake one here), on which the folder commands say so.

Usage: test_folders.py --ferryd PATH --ferry PATH [unittest arguments]"""

import hashlib
import json
import os
import re
import resource
import shlex
import shutil
import stat
import socket
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import test_cli  # noqa: E402
from test_cli import CliTest, schema_for  # noqa: E402


def tree(base):
    """Every file and folder below base: relative path -> bytes (files) or None (folders)."""
    found = {}
    for folder, folders, files in os.walk(base):
        for name in folders:
            found[os.path.relpath(os.path.join(folder, name), base)] = None
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                found[os.path.relpath(os.path.join(folder, name), base)] = f.read()
    return found


def make_tree(base, files, folders=()):
    for path in folders:
        os.makedirs(os.path.join(base, path), exist_ok=True)
    for path, data in files.items():
        os.makedirs(os.path.dirname(os.path.join(base, path)), exist_ok=True)
        with open(os.path.join(base, path), "wb") as f:
            f.write(data)


class Folders(CliTest):
    def test_list_stat_mkdir_mv_rm_and_their_errors(self):
        server = self.start_server()
        make_tree(self.root, {"top.txt": b"top", "logs/a.log": b"aa", "logs/old/b.log": b"bbb"})

        listed = self.ferry("list", server=server)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn(b"  logs/\n", listed.stdout)
        self.assertIn(b"  top.txt\n", listed.stdout)
        listed = self.json_of(self.ferry("--json", "ls", "logs", "-r", server=server))
        schema_for("list").validate(listed)
        self.assertEqual([(f["name"], f["type"]) for f in listed["files"]],
                         [("a.log", "file"), ("old", "folder"), ("old/b.log", "file")])
        # A file lists as itself.
        self.assertIn(b"a.log", self.ferry("ls", "logs/a.log", server=server).stdout)

        folder = self.json_of(self.ferry("--json", "stat", "logs/old", server=server))
        schema_for("stat").validate(folder)
        self.assertEqual(folder["type"], "folder")
        self.assertIn(b"type:     folder", self.ferry("stat", "logs", server=server).stdout)

        made = self.json_of(self.ferry("--json", "mkdir", "-p", "new/deeper", "logs", server=server))
        schema_for("paths").validate(made)
        self.assertEqual(made["made"], [{"path": "new/deeper", "created": True}, {"path": "logs", "created": False}])
        self.assertTrue(os.path.isdir(os.path.join(self.root, "new", "deeper")))
        # Errors carry the server's code and message, for people and for scripts.
        exists = self.ferry("mkdir", "logs", server=server)
        self.assertEqual(exists.returncode, 4)
        self.assertTrue(exists.stderr.startswith(b"ferry: exists: "), exists.stderr)
        missing_parent = self.json_of(self.ferry("--json", "mkdir", "x/y", server=server))
        schema_for("paths").validate(missing_parent)
        self.assertEqual(missing_parent["error"]["code"], "not_found")
        self.assertEqual(missing_parent["failed"][0]["path"], "x/y")

        moved = self.ferry("mv", "top.txt", "new/", server=server)
        self.assertEqual(moved.returncode, 0, moved.stderr)
        self.assertEqual(moved.stdout, b"top.txt -> new/top.txt\n")
        self.assertTrue(os.path.isfile(os.path.join(self.root, "new", "top.txt")))
        moved = self.json_of(self.ferry("--json", "mv", "new/top.txt", "renamed.txt", server=server))
        schema_for("move").validate(moved)
        self.assertEqual(moved, {"from": "new/top.txt", "to": "renamed.txt"})
        make_tree(self.root, {"other.txt": b"o"})
        refused = self.ferry("mv", "other.txt", "renamed.txt", server=server)
        self.assertEqual(refused.returncode, 4)
        self.assertTrue(refused.stderr.startswith(b"ferry: exists: "), refused.stderr)
        self.assertEqual(self.ferry("mv", "other.txt", "renamed.txt", "--replace", server=server).returncode, 0)
        self.assertEqual(open(os.path.join(self.root, "renamed.txt"), "rb").read(), b"o")
        into_itself = self.ferry("mv", "logs", "logs/old/logs", server=server)
        self.assertTrue(into_itself.stderr.startswith(b"ferry: invalid_move: "), into_itself.stderr)

        not_empty = self.ferry("rm", "logs", server=server)
        self.assertEqual(not_empty.returncode, 4)
        self.assertTrue(not_empty.stderr.startswith(b"ferry: not_empty: "), not_empty.stderr)
        removed = self.json_of(self.ferry("--json", "rm", "-r", "logs", "renamed.txt", server=server))
        schema_for("paths").validate(removed)
        self.assertEqual(removed["removed"], [
            {"path": "logs", "type": "folder", "files": 2, "folders": 2},
            {"path": "renamed.txt", "type": "file", "files": 1, "folders": 0}])
        self.assertFalse(os.path.exists(os.path.join(self.root, "logs")))
        gone = self.ferry("rm", "logs", server=server)
        self.assertTrue(gone.stderr.startswith(b"ferry: not_found: "), gone.stderr)
        # '..' is settled on the client: above the root it is refused before anything is sent.
        climb = self.ferry("ls", "new/../..", server=server)
        self.assertEqual(climb.returncode, 4)
        self.assertIn(b"above the server's root", climb.stderr)

    def test_mv_into_a_folder_keeps_an_escaped_name_and_takes_dot_for_a_folder(self):
        # Round 34: "mv 'm\[1]' dst/" made the target's name of the typed,
        # escaped path (invalid_name), and "mv x ." said the root cannot
        # be renamed. Into a folder, a name is its own, escapes undone; a
        # target of ".", ".." or ending in either is a folder, like "dst/".
        server = self.start_server()
        make_tree(self.root, {"m[1]": b"odd", "m1": b"precious", "dst/x.txt": b"x", "dst/deeper/y.txt": b"y"})
        moved = self.ferry("mv", "m\\[1]", "dst/", server=server)
        self.assertEqual(moved.returncode, 0, moved.stderr)
        self.assertEqual(open(os.path.join(self.root, "dst", "m[1]"), "rb").read(), b"odd")
        self.assertEqual(open(os.path.join(self.root, "m1"), "rb").read(), b"precious")
        for source, target, where in (("dst/x.txt", ".", "x.txt"), ("dst/m\\[1]", "dst/..", "m[1]"),
                                      ("dst/deeper/y.txt", "dst/deeper/..", "dst/y.txt"),
                                      ("x.txt", "dst/deeper/.", "dst/deeper/x.txt")):
            with self.subTest(source=source, target=target):
                moved = self.ferry("mv", source, target, server=server)
                self.assertEqual(moved.returncode, 0, moved.stderr)
                self.assertTrue(os.path.isfile(os.path.join(self.root, where)), tree(self.root))
        self.assertEqual(tree(self.root), {"m[1]": b"odd", "m1": b"precious", "dst": None, "dst/y.txt": b"y",
                                              "dst/deeper": None, "dst/deeper/x.txt": b"x"})

    def test_a_path_ending_in_a_slash_names_a_folder_never_a_file(self):
        # Round 35: a trailing "/" on a file was dropped: "mv f/ y" renamed
        # the file f, "rm f/" removed it, "get g/" fetched it, "put lf/"
        # sent the local file lf and "get g -o out/" wrote a file "out".
        # POSIX resolves a path with a trailing slash to a folder only.
        server = self.start_server()
        files = {"f": b"f", "g": b"g", "y": b"y", "x1": b"x1", "d/k": b"k", "xd/k": b"k"}
        make_tree(self.root, files)
        make_tree(self.local, {"lf": b"local f", "ld/q": b"q"})
        for words in (("rm", "f/"), ("rm", "-r", "f/"), ("mv", "f/", "z"), ("mv", "g/", "y", "--replace"),
                      ("get", "g/"), ("get", "g/."), ("get", "-r", "g/"), ("stat", "f/"), ("stat", "f/."),
                      ("ls", "f/"), ("ls", "-r", "f/"), ("digest", "f/"), ("get", "d/k/")):
            with self.subTest(words=words):
                result = self.ferry(*words, server=server)
                self.assertEqual(result.returncode, 4, result.stderr)
                self.assertIn(b"not_a_folder", result.stderr)
        self.assertEqual(tree(self.root), {"f": b"f", "g": b"g", "y": b"y", "x1": b"x1", "d": None, "d/k": b"k",
                                           "xd": None, "xd/k": b"k"})
        self.assertFalse(os.path.exists(os.path.join(self.local, "g")))
        # On this machine alike: a file is no folder, and no file is made
        # at a name typed as a folder.
        for words in (("put", "lf/"), ("put", "lf/."), ("put", "-r", "lf/."), ("put", "ld/q/"), ("get", "f", "-o", "out/"),
                      ("get", "f", "-o", "lf/"), ("get", "f", "-o", "lf/.")):
            with self.subTest(words=words):
                result = self.ferry(*words, server=server)
                self.assertNotEqual(result.returncode, 0, result.stderr)
                self.assertIn(b"local_io", result.stderr)
        self.assertEqual(tree(self.local), {"lf": b"local f", "ld": None, "ld/q": b"q"})
        refused = self.ferry("put", "lf", "--as", "newname/", server=server)
        self.assertEqual(refused.returncode, 4, refused.stderr)
        self.assertIn(b"invalid_name", refused.stderr)
        self.assertNotIn("lf", os.listdir(self.root))
        self.assertNotIn("newname", os.listdir(self.root))
        # Folders typed so go on as before; a pattern typed so matches folders only.
        fetched = self.ferry("get", "-r", "d/", server=server)
        self.assertEqual(fetched.returncode, 0, fetched.stderr)
        self.assertEqual(tree(self.local)["d/k"], b"k")
        os.mkdir(os.path.join(self.local, "into"))
        into = self.ferry("get", "f", "-o", "into/", server=server)
        self.assertEqual(into.returncode, 0, into.stderr)
        self.assertEqual(tree(self.local)["into/f"], b"f")
        listed = self.ferry("--json", "stat", "x*/", server=server)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn(b'"xd"', listed.stdout)
        self.assertNotIn(b'"x1"', listed.stdout)
        # Round 36: digest of a pattern that matches folders alone said
        # nothing and exited 0.
        digest = self.ferry("digest", "x*/", server=server)
        self.assertEqual(digest.returncode, 4, digest.stderr)
        self.assertIn(b"not_regular_file", digest.stderr)
        self.assertIn(b"matches only folders", digest.stderr)
        removed = self.ferry("rm", "-r", "x*/", server=server)
        self.assertEqual(removed.returncode, 0, removed.stderr)
        none = self.ferry("rm", "f*/", server=server)
        self.assertEqual(none.returncode, 4, none.stderr)
        self.assertIn(b"no match", none.stderr)
        self.assertEqual(tree(self.root), {"f": b"f", "g": b"g", "y": b"y", "x1": b"x1", "d": None, "d/k": b"k"})

    def test_rm_and_mv_refuse_a_path_ending_in_dot_or_dot_dot(self):
        # "rm -r e/g/.." removed the whole of e, and in the shell "rm -r .."
        # the folder above the current one. POSIX rm refuses an operand
        # whose last component is "." or "..", and rename(2) such a source.
        server = self.start_server()
        make_tree(self.root, {"e/g/k": b"k", "e/h": b"h", "keep": b"keep"})
        whole = tree(self.root)
        for words in (("rm", "-r", "e/g/.."), ("rm", "-r", "e/g/."), ("rm", "-r", "e/g/./"), ("rm", "-r", "e/.."),
                      ("rm", "keep/."), ("rm", "-r", "nothing/.."),
                      ("mv", "e/g/..", "moved"), ("mv", "e/.", "moved"), ("mv", "e/g/../", "moved")):
            with self.subTest(words=words):
                result = self.ferry(*words, server=server)
                self.assertEqual(result.returncode, 4, result.stderr)
                self.assertIn(b"invalid_name", result.stderr)
        shell = self.ferry(server=server, stdin=b"cd e/g\nrm -r ..\nrm -r .\nmv .. moved\n")
        self.assertIn(b"invalid_name", shell.stderr)
        self.assertEqual(tree(self.root), whole)
        removed = self.ferry("rm", "-r", "e/g/", server=server)
        self.assertEqual(removed.returncode, 0, removed.stderr)
        self.assertEqual(tree(self.root), {"e": None, "e/h": b"h", "keep": b"keep"})

    def test_dot_dot_climbs_only_out_of_a_folder(self):
        # Round 36: ".." was settled by its text alone, so "rm -r f/../d"
        # with f a file, or nosuch/../d, removed d. POSIX.1-2017 4.13
        # resolves "f/.." only when f is a folder (ENOTDIR, ENOENT), and
        # POSIX cd refuses it too: every command now asks the server first.
        server = self.start_server()
        make_tree(self.root, {"d/a": b"a", "d/sub/b": b"b", "e/keep": b"k", "f": b"file", "x1": b"x1"})
        make_tree(self.local, {"X": b"local X"})
        whole = tree(self.root)
        out = os.path.join(self.local, "out")
        for words, code in ((("rm", "-r", "f/../d"), b"not_a_folder"), (("rm", "-r", "nosuch/../d"), b"not_found"),
                            (("rm", "-r", "e/keep/../../d"), b"not_a_folder"),
                            (("rm", "-r", "d/sub/../../f/../d"), b"not_a_folder"),
                            (("stat", "f/.."), b"not_a_folder"), (("ls", "f/../d"), b"not_a_folder"),
                            (("digest", "f/../x1"), b"not_a_folder"), (("mkdir", "-p", "f/../nd"), b"not_a_folder"),
                            (("mv", "x1", "f/../y"), b"not_a_folder"), (("mv", "f/../x1", "y"), b"not_a_folder"),
                            (("get", "f/../x1", "-o", out), b"not_a_folder"),
                            (("get", "-r", "nosuch/../d", "-o", out), b"not_found"),
                            (("put", os.path.join(self.local, "X"), "--as", "f/../y"), b"not_a_folder"),
                            (("put", os.path.join(self.local, "X"), "-C", "nosuch/../d"), b"not_found"),
                            (("sync", ":f/../d", out), b"not_a_folder"),
                            (("sync", self.local, ":nosuch/../d"), b"not_found"),
                            (("rm", "-r", "x*/../d"), b"invalid_name")):
            with self.subTest(words=words):
                result = self.ferry(*words, server=server)
                self.assertEqual(result.returncode, 4, result.stderr)
                self.assertIn(code, result.stderr)
                self.assertEqual(tree(self.root), whole)
                self.assertFalse(os.path.exists(out))
        # The shell: cd and rm alike, its messages relative to its folder.
        for line, said in ((b"cd d\ncd f/..\n", b'"f" is not there'), (b"cd d\ncd ../f/..\n", b'"/f" is a file'),
                           (b"cd d\nrm -r sub/b/../../sub\n", b'"sub/b" is a file')):
            with self.subTest(line=line):
                shell = self.ferry(server=server, stdin=line)
                self.assertIn(said, shell.stderr)
                self.assertEqual(tree(self.root), whole)
        # mkdir -p makes the folder a ".." climbs out of, as every missing
        # intermediate component (POSIX mkdir -p; GNU's mkdir -p e/new/..).
        made = self.ferry("mkdir", "-p", "e/new/../n2/deep/..", server=server)
        self.assertEqual(made.returncode, 0, made.stderr)
        self.assertEqual(made.stdout, b"made e/new/\nmade e/n2/\nmade e/n2/deep/\n")  # each said once (rounds 38, 39)
        for folder in ("e/new", "e/n2", "e/n2/deep"):
            self.assertTrue(os.path.isdir(os.path.join(self.root, folder)), folder)
        refused = self.ferry("mkdir", "-p", "f/x/../y", server=server)
        self.assertEqual(refused.returncode, 4, refused.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.root, "y")))
        for folder in ("e/n2/deep", "e/n2", "e/new"):
            os.rmdir(os.path.join(self.root, folder))
        self.assertEqual(tree(self.root), whole)
        # Out of a folder, ".." goes where it always did.
        stat = self.ferry("stat", "e/../d/sub/../a", server=server)
        self.assertEqual(stat.returncode, 0, stat.stderr)
        shell = self.ferry(server=server, stdin=b"cd d/sub\ncd ../../e/..\npwd\nrm -r e/../d\n")
        self.assertEqual(shell.returncode, 0, shell.stderr)
        self.assertEqual(shell.stdout.splitlines()[0], b"/")
        self.assertEqual(sorted(os.listdir(self.root)), ["e", "f", "x1"])

    def test_pwd_and_lpwd_under_json_print_json(self):
        # A new user's trial (round 72): under --json every command printed
        # one JSON object but pwd and lpwd, whose plain lines broke a reader.
        server = self.start_server()
        os.makedirs(os.path.join(self.root, "logs"))
        shell = self.ferry("--json", server=server, stdin=b"cd logs\npwd\nlpwd\n")
        self.assertEqual(shell.returncode, 0, shell.stderr)
        lines = [json.loads(line) for line in shell.stdout.splitlines()]
        for line in lines:
            schema_for("current_folder").validate(line)
        self.assertEqual(lines, [{"folder": "/logs"}, {"local_folder": os.path.realpath(self.local)}])

    def test_under_json_every_command_names_paths_from_the_root_after_cd(self):
        # A new user's trial (round 72, item 3): after `cd logs`, --json's
        # mkdir and rm named "logs/q", but mv, stat and digest "q" as typed:
        # a script could not tell which folder a path was in. Every path a
        # command reports under --json is now from the root, as a get's or
        # put's name always was; the text shows paths in the current folder.
        server = self.start_server()
        make_tree(self.root, {"logs/a.txt": b"a", "top.txt": b"t"})
        shell = self.ferry("--json", server=server,
                           stdin=b"cd logs\nmkdir q\nmv q q2\nstat q2\nstat q*\ndigest a.txt\ndigest a*\nls q*\n"
                                 b"mv q2 ../q3\nstat ../top.txt\nrm ../q3\n")
        self.assertEqual(shell.returncode, 0, shell.stderr)
        lines = [json.loads(line) for line in shell.stdout.splitlines()]
        self.assertEqual(lines[0]["made"][0]["path"], "logs/q")
        self.assertEqual(lines[1], {"from": "logs/q", "to": "logs/q2"})
        self.assertEqual(lines[2]["name"], "logs/q2")
        self.assertEqual([f["name"] for f in lines[3]["files"]], ["logs/q2"])
        self.assertEqual([f["name"] for f in lines[4]["files"]], ["logs/a.txt"])
        self.assertEqual([f["name"] for f in lines[5]["files"]], ["logs/a.txt"])
        self.assertEqual([f["name"] for f in lines[6]["files"]], ["logs/q2"])
        self.assertEqual(lines[7], {"from": "logs/q2", "to": "q3"})
        self.assertEqual(lines[8]["name"], "top.txt")
        self.assertEqual(lines[9]["removed"][0]["path"], "q3")
        # People still read them in the current folder.
        text = self.ferry(server=server, stdin=b"cd logs\nmkdir q\nmv q q2\nstat q2\nmv q2 ../q3\nrm ../q3\n")
        self.assertEqual(text.returncode, 0, text.stderr)
        out = text.stdout.decode()
        for said in ("made q/", "q -> q2", "name:     q2", "q2 -> /q3", "removed /q3/"):
            self.assertIn(said, out)

    def test_each_failed_download_line_names_its_path_once(self):
        # A several-file get put the path before an error that names it
        # already: 'ferry: not_a_folder: "f/../a": "f/../a": "f" is a
        # file...'. Each line now names its path once, as a single get's
        # line and rm's do.
        server = self.start_server()
        make_tree(self.root, {"a": b"a", "f": b"file", "d/x": b"x"})
        out = os.path.join(self.local, "out")
        for flags in ((), ("-r",)):
            with self.subTest(flags=flags):
                got = self.ferry("get", *flags, "f/../a", "/../a", "d/nope", "a", "-C", out, server=server)
                self.assertEqual(got.returncode, 4, got.stderr)
                lines = got.stderr.decode().splitlines()
                self.assertEqual(lines, [
                    'ferry: not_a_folder: "f/../a": "f" is a file, and ".." climbs out of a folder only',
                    'ferry: invalid_name: "/../a" climbs above the server\'s root',
                    'ferry: not_found: %s named "d/nope"' % ("nothing" if flags else "no file")], lines)
                self.assertEqual(tree(out), {"a": b"a"})
                shutil.rmtree(out)
        # A name the output escapes (a tab), and --json's first error (round 46).
        got = self.ferry("get", "f/../c\tx", "a", "-C", out, server=server)
        self.assertEqual(got.stderr.decode().splitlines(),
                         ['ferry: not_a_folder: "f/../c\\u{0009}x": "f" is a file, and ".." climbs out of a folder only'])
        listed = self.json_of(self.ferry("--json", "get", "f/../a", "a", "-C", out, server=server))
        self.assertEqual(listed["error"]["message"],
                         '1 of 2 files failed; first: "f/../a": "f" is a file, and ".." climbs out of a folder only')
        # A message that names the path further on is not led by it again
        # (round 47: '"nope": no file named "nope"').
        listed = self.json_of(self.ferry("--json", "get", "nope", "a", "-C", out, server=server))
        self.assertEqual(listed["error"]["message"], '1 of 2 files failed; first: no file named "nope"')
        # A quote in a local name is not another path's quotes: the folder
        # q"a" names no "a" (round 46), so the line still names "a".
        os.makedirs(os.path.join(self.local, 'q"a"', "a"))
        quoted_folder = self.ferry("get", "a", "d/x", "-C", 'q"a"', server=server)
        self.assertIn('ferry: local_io: "a": "q"a"/a" is a folder', quoted_folder.stderr.decode())

    def test_a_folder_that_cannot_be_made_is_one_line_not_one_per_file_below_it(self):
        # get -r printed a line for every file and folder below a folder it
        # could not make ('"t/sub/f1": not written: its folder "t/sub" could
        # not be made', ...): one cause, one line, as sync and rsync say it.
        # The summary still counts each, and --json still lists each.
        server = self.start_server()
        make_tree(self.root, {"t/top": b"top", "t/sub/f1": b"1", "t/sub/f2": b"2", "t/sub/deep/g": b"g"})
        os.makedirs(os.path.join(self.root, "e", "empty"))
        make_tree(self.local, {"t/sub": b"a file where the server has a folder"})
        for words, said in ((("get", "-r", "t"), '"t/sub" is a file'),
                            (("get", "-r", "t", "-o", "missing/x/y"), '"t": cannot open "missing"'),
                            (("get", "-r", "t", "-o", "missing/."), '"t": cannot open the folder "missing/."')):
            with self.subTest(words=words):
                got = self.ferry(*words, server=server)
                self.assertEqual(got.returncode, 3, got.stderr)
                lines = got.stderr.decode().splitlines()
                self.assertEqual(len(lines), 1, lines)
                self.assertTrue(lines[0].startswith("ferry: local_io: " + said), lines)
                self.assertFalse(os.path.exists(os.path.join(self.local, "missing")))
        listed = self.json_of(self.ferry("--json", "get", "-r", "t", server=server))
        self.assertEqual(sorted(f["name"] for f in listed["files"] if "error" in f),
                         ["t/sub/deep/g", "t/sub/f1", "t/sub/f2"])
        self.assertEqual([f["name"] for f in listed["failed_folders"]], ["t/sub", "t/sub/deep"])
        # The error that speaks for the command is the cause, not a file it
        # took down with it (round 47).
        self.assertTrue(listed["error"]["message"].startswith(
            '3 of 4 files failed and 2 folders failed; first: "t/sub" is a file'), listed["error"])
        only_folders = self.json_of(self.ferry("--json", "get", "-r", "e", "-o", "missing/x", server=server))
        self.assertTrue(only_folders["error"]["message"].startswith(
            '2 folders failed; first "e": cannot open "missing"'), only_folders["error"])

    def test_a_change_in_a_folder_ferryd_may_write_but_not_read_is_refused_with_nothing_changed(self):
        # Round 50 (older): run as a user other than root, ferryd made a
        # folder, deleted an entry or renamed one in or out of a folder it
        # may write and search but not read (a drop box, mode 0311), then
        # could not sync that folder (fsync needs it opened for reading)
        # and answered forbidden "cannot sync folder" with the change made.
        # Such a change is now refused first, as a put there is, and
        # nothing changes; below it, in a folder ferryd reads, all works.
        nobody = 65534
        os.chmod(self.dir, 0o755)
        make_tree(self.root, {"wo/del": b"x", "wo/mv": b"y", "wo/sub/f": b"z", "ok/f": b"o"})
        make_tree(self.local, {"up": b"u"})
        for folder, folders, files in os.walk(self.root):
            for name in [folder] + [os.path.join(folder, entry) for entry in folders + files]:
                os.chown(name, nobody, nobody)
        drop_box = os.path.join(self.root, "wo")
        os.chmod(drop_box, 0o311)

        def as_nobody():
            os.setgroups([])
            os.setgid(nobody)
            os.setuid(nobody)
        self.server = harness.Server(test_cli.FERRYD, self.root, preexec_fn=as_nobody)
        server = self.server.address
        before = tree(self.root)
        for argv in (["rm", "wo/del"], ["rm", "-r", "wo/sub"], ["mv", "wo/mv", "wo/mv2"], ["mv", "wo/mv", "top"],
                     ["mv", "ok/f", "wo/f"], ["mkdir", "wo/new"], ["mkdir", "-p", "wo/new/deep"],
                     ["put", "up", "-C", "wo"]):
            with self.subTest(argv=argv):
                run = self.ferry(*argv, server=server)
                self.assertEqual(run.returncode, 4, run.stderr)
                self.assertEqual(run.stderr.decode(), 'ferry: forbidden: cannot open folder "wo": Permission denied\n')
                self.assertEqual(tree(self.root), before)
        made = self.ferry("mkdir", "-p", "wo/sub/deeper", server=server)
        self.assertEqual(made.returncode, 0, made.stderr)
        self.assertTrue(os.path.isdir(os.path.join(drop_box, "sub", "deeper")))
        moved = self.ferry("mv", "wo", "ok/wo", server=server)
        self.assertEqual(moved.returncode, 0, moved.stderr)
        self.assertEqual(self.ferry("rm", "ok/wo/sub/f", server=server).returncode, 0)

    def test_an_error_names_a_path_typed_with_dot_dot_as_it_was_typed(self):
        # Round 49: an error about a path typed with '..' named the path it
        # resolves to ("d/sub/../../f" as "f", and in the shell's folder d
        # "../f" as "/f"), where rm, mkdir and stat on this machine name
        # the operand as typed. A folder on the way that the message names
        # is still the server's path.
        server = self.start_server()
        make_tree(self.root, {"f": b"1", "d/sub/g": b"2", "e/h": b"3", "e/g": b"4"})
        before = tree(self.root)
        for argv, said in ((["rm", "d/../nope"], 'nothing named "d/../nope"'),
                           (["rm", "d/sub/../../e"], '"d/sub/../../e" is not empty'),
                           (["stat", "d/sub/../nope"], 'nothing named "d/sub/../nope"'),
                           (["mkdir", "d/../f"], '"d/../f" already exists'),
                           (["mkdir", "-p", "d/../f"], '"d/../f" already exists and is not a folder'),
                           (["mv", "d/../nope", "x"], 'nothing named "d/../nope"'),
                           (["mv", "f", "d/../d/sub/g"], '"d/../d/sub/g" already exists'),
                           (["mv", "d/../e", "d/sub/../../e/x"], 'cannot move "d/../e" into itself ("d/sub/../../e/x")'),
                           (["ls", "d/sub/../../nope"], 'no folder named "d/sub/../../nope"'),
                           (["digest", "d/../e"], '"d/../e" is not a regular file'),
                           (["mkdir", "d/../nope/x"], 'no folder named "nope"'),
                           # Round 51: a name the name rule refuses is a
                           # component, not the path; a text two of mv's
                           # paths share is named as the server's path;
                           # empty and "." components and wildcard escapes
                           # are tidied as for a path without '..'; cd and
                           # sync name their folder so too.
                           (["stat", "d/../.hid"], 'path component ".hid": file name'),
                           (["mkdir", "d/../.hid"], 'path component ".hid": file name'),
                           (["mv", "d/nope/x", "d/sub/../nope"], 'no folder named "d/nope"'),
                           (["mv", "e/../d/sub", "d/sub/x"], 'cannot move "e/../d/sub" into itself ("d/sub/x")'),
                           (["mv", "d/sub/g/x", "e/../d/sub/g"], '"d/sub/g" is not a folder'),
                           (["stat", "./d/..//nope//."], 'no folder named "d/../nope"'),
                           (["stat", "/d/../nope/"], 'no folder named "/d/../nope"'),
                           (["rm", "d/../m\\[1]"], 'nothing named "d/../m[1]"'),
                           (["sync", ":d/../nope", "pulled"], 'no folder named "d/../nope"'),
                           # Round 51b: get named a file it did not find by
                           # the path it resolves to ("nope"), alone and
                           # beside another file.
                           (["get", "d/../nope"], 'no file named "d/../nope"'),
                           (["get", "f", "d/sub/../../nope", "-C", "got"], 'no file named "d/sub/../../nope"'),
                           (["get", "d/sub/../../e"], '"d/sub/../../e" is not a regular file'),
                           (["get", "-r", "e/../nope"], 'nothing named "e/../nope"'),
                           # Round 51b: a missing path moved onto itself was
                           # invalid_move ("renamed onto itself"); mv(1)
                           # says it cannot stat it. (A spot both paths
                           # claim is named as the server's path.)
                           (["mv", "d/../nope", "nope"], 'not_found: nothing named "nope"'),
                           # Round 52 F4: a name clash named both files by
                           # their server paths ("g" and "g"). (One file named
                           # twice is got once since round 56: below.)
                           (["get", "d/sub/g", "d/../e/g", "-C", "got"],
                            '"d/../e/g" and "d/sub/g" would both use the local name "got/g"'),
                           (["get", "e/../d/sub/g", "e/g", "-C", "got2"],
                            '"e/g" and "e/../d/sub/g" would both use the local name "got2/g"')):
            with self.subTest(argv=argv):
                run = self.ferry(*argv, server=server)
                self.assertNotEqual(run.returncode, 0, run.stdout)
                self.assertIn(said, run.stderr.decode())
        for argv in (["get", "f", "d/../f", "-C", "got3"], ["get", "e/../f", "f", "-C", "got4"]):
            with self.subTest(argv=argv):
                run = self.ferry(*argv, server=server)
                self.assertEqual(run.returncode, 0, run.stderr)
                self.assertIn(b'"f" is named more than once for "got', run.stderr)
        shell = self.ferry(server=server,
                           stdin=b"cd d\n-stat ../nope\n-rm sub/../../e\n-mkdir ../f\n-rm ../nope\n-get sub/../../nope\n")
        self.assertEqual([line.split(": ", 2)[2] for line in shell.stderr.decode().splitlines()],
                         ['nothing named "../nope"', '"sub/../../e" is not empty (rm -r removes a folder with what '
                          'it holds)', '"../f" already exists', 'nothing named "../nope"',
                          'no file named "sub/../../nope"'], shell.stderr)
        shell = self.ferry(server=server, stdin=b"cd d/sub\n-cd ../../f\n-cd ../nope\n-cd /f\n")
        self.assertEqual([line.split(": ", 2)[2] for line in shell.stderr.decode().splitlines()],
                         ['"../../f" is not a folder', 'no folder named "../nope"', '"/f" is not a folder'],
                         shell.stderr)
        self.assertEqual(tree(self.root), before)

    def test_the_shell_names_a_clash_and_a_failed_folder_from_its_current_folder(self):
        # Round 46: after "cd d" a name clash advised 'get "d/ff/x" on its
        # own', which there names /d/d/ff/x, and get -r's folder line named
        # "d/sub" for a typed "sub". Both now read as the file lines do;
        # the command line (and --json) still name paths from the root.
        server = self.start_server()
        make_tree(self.root, {"d/x": b"1", "d/ff/x": b"2", "d/sub/s": b"s"})
        make_tree(self.local, {"sub": b"a file where the server has a folder"})
        shell = self.ferry(server=server, stdin=b"cd d\n-get x ff/x -C out\n-get -r sub\n")
        lines = shell.stderr.decode().splitlines()
        self.assertIn('ferry: name_clash: "ff/x" and "x" would both use the local name "out/x" (as a file or as its '
                      'partial download\'s .ferry-part or state): only "x" was given it; get \'ff/x\' on its own to '
                      'another name (-o) or folder', lines)
        self.assertIn('ferry: local_io: "sub" is a file: no folder is made there, and nothing is written '
                      'through it', lines)
        listed = self.json_of(self.ferry("--json", "get", "d/x", "d/ff/x", "-C", "out2", server=server))
        self.assertTrue(listed["files"][1]["error"]["message"].startswith('"d/ff/x" and "d/x" would both use'), listed)
        # Round 48: the note on names the server does not list named the
        # folder from the root ("d/bad"), which in that shell is /d/d/bad.
        make_tree(self.root, {"d/bad/ok": b"ok"})
        with open(os.path.join(self.root, "d", "bad", "new\nline"), "wb") as broken:
            broken.write(b"a name that breaks the rule")
        noted = self.ferry(server=server, stdin=b"cd d\nget -r bad -C o6\n")
        self.assertEqual(noted.returncode, 0, noted.stderr)
        self.assertIn('1 entry below "bad" not listed by the server', noted.stderr.decode())
        from_root = self.ferry("get", "-r", "d/bad", "-C", "o7", server=server)
        self.assertIn('1 entry below "d/bad" not listed by the server', from_root.stderr.decode())
        # The advice is one word that a POSIX shell and ferry's shell both
        # read back as the path (round 47: quotes, wildcard characters and a
        # leading "-" were written as they are).
        for name in ("s*", "m[1]", "q'x", 'b"c', "-dash"):
            with self.subTest(name=name):
                make_tree(self.root, {"d/" + name: b"1", "d/ff/" + name: b"2"})
                escaped = name.replace("*", "\\*").replace("[", "\\[")
                clash = self.ferry(server=server, stdin=("cd d\n-get %s %s -C o3\n" % (
                    shlex.quote("./" + escaped), shlex.quote("ff/" + escaped))).encode())
                advice = re.search(r"; get (.*) on its own", clash.stderr.decode()).group(1)
                again = self.ferry(server=server, stdin=("cd d\nget %s -C o4\n" % advice).encode())
                self.assertEqual(again.returncode, 0, (advice, again.stderr))
                self.assertEqual(tree(os.path.join(self.local, "o4")), {name: b"2"})
                typed = self.ferry("get", "d/" + shlex.split(advice)[0], "-C", "o5", server=server)
                self.assertEqual(typed.returncode, 0, (advice, typed.stderr))
                self.assertEqual(tree(os.path.join(self.local, "o5")), {name: b"2"})
                for folder in ("o3", "o4", "o5"):
                    shutil.rmtree(os.path.join(self.local, folder))

    def test_the_shell_never_names_a_local_path_as_a_server_path(self):
        # Round 47: after "cd d" the shell rewrote every quoted server path
        # from the root in a message as typed from d, and a local path that
        # reads the same ("d/ff/x") was rewritten too: '"ff/x" is a folder'
        # for the local folder d/ff/x. Errors about local files now say so
        # (Error::about_local_files), and keep their paths as they are.
        server = self.start_server()
        make_tree(self.root, {"d/ff/x": b"x", "d/ff/y": b"y"})
        cases = [
            # get -r: a file's line, then a folder's line
            ({"d/ff/x/in": b"a local folder at the file's name"}, "get -r ff -C d",
             'ferry: local_io: "ff/x": "d/ff/x" is a folder: nothing is downloaded onto it'),
            ({"d/ff": b"a local file at the folder's name"}, "get -r ff -C d",
             'ferry: local_io: "ff": "d/ff" is a file: no folder is made there'),
            # sync's local operand
            ({"d/ff": b"a local file at the folder's name"}, "sync :ff d/ff",
             'ferry: local_io: sync d/ff: cannot open the folder "d/ff": Not a directory'),
        ]
        for files, line, expected in cases:
            with self.subTest(line=line, files=sorted(files)):
                shutil.rmtree(self.local)
                os.makedirs(self.local)
                make_tree(self.local, files)
                shell = self.ferry(server=server, stdin=("cd d\n-%s\n" % line).encode())
                self.assertTrue(any(said.startswith(expected) for said in shell.stderr.decode().splitlines()),
                                (expected, shell.stderr))
        # put -r: a local link at the name the server's folder has
        shutil.rmtree(self.local)
        os.makedirs(os.path.join(self.local, "d/real"))
        os.symlink("real", os.path.join(self.local, "d/ff"))
        shell = self.ferry(server=server, stdin=b"cd d\n-put -r d/ff\n")
        self.assertIn('ferry: local_io: "d/ff" is a symbolic link: put -r follows none; write "d/ff/" to send the '
                      'folder it leads to', shell.stderr.decode().splitlines())

    def test_a_local_path_is_shown_as_typed_with_no_stray_dot_slash(self):
        # Round 46: a path in the working folder was shown as "./t/sub"
        # (get -r without -C), sync's as "./p", and put -r o/. showed
        # "o/./a". They are shown as typed and as rsync shows them: "t/sub",
        # "p", "o/a"; only a name that starts with "-" keeps "./", so that
        # no shown path reads as an option or as standard input or output.
        server = self.start_server()
        make_tree(self.root, {"t/sub/f": b"f", "s/-dash": b"d", "s/x": b"x"})
        make_tree(self.local, {"t/sub": b"a file where the server has a folder", "o/a": b"a"})
        got = self.ferry("get", "-r", "t", server=server)
        self.assertIn('ferry: local_io: "t/sub" is a file', got.stderr.decode())
        self.assertNotIn("./", got.stderr.decode())
        for typed in ("o/.", "o/", "o/./"):
            with self.subTest(typed=typed):
                put = self.ferry("put", "-r", typed, "-C", "up", server=server)
                self.assertEqual(put.returncode, 0, put.stderr)
                self.assertIn(b"o/a -> up/o/a:", put.stdout)
                self.assertNotIn(b"/./", put.stdout)
        into = os.path.join(self.local, "into")
        os.makedirs(into)
        pulled = subprocess.run([test_cli.FERRY, "--server", server, "sync", ":s", "."], cwd=into, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(pulled.returncode, 0, pulled.stderr)
        self.assertIn(b"s/x -> x:", pulled.stdout)
        self.assertIn(b"s/-dash -> ./-dash:", pulled.stdout)
        # Round 48: a plain get showed "-x" bare; it is "./-x" there too.
        got = self.ferry("get", "--", "s/-dash", server=server)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertIn(b"s/-dash -> ./-dash:", got.stdout)
        self.assertEqual(open(os.path.join(self.local, "-dash"), "rb").read(), b"d")
        os.mkfifo(os.path.join(into, "p"))
        pushed = subprocess.run([test_cli.FERRY, "--server", server, "sync", ".", ":s"], cwd=into, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(pushed.returncode, 0, pushed.stderr)
        self.assertIn(b"p: not a regular file or folder, not sent", pushed.stdout + pushed.stderr)
        self.assertNotIn(b"./p", pushed.stdout + pushed.stderr)

    def test_the_shell_does_not_list_a_file_that_replaced_its_current_folder(self):
        # Round 46: after "cd gone", with a file put at "gone" since, a bare
        # "ls" listed that file as if it had been named; "ls ." refused. A
        # bare ls names the current folder, so it now refuses alike.
        server = self.start_server()
        os.makedirs(os.path.join(self.root, "gone"))
        shell = subprocess.Popen([test_cli.FERRY, "--server", server], cwd=self.local, env=self.env,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            shell.stdin.write(b"cd gone\npwd\n")
            shell.stdin.flush()
            self.assertEqual(shell.stdout.readline(), b"/gone\n")  # the cd is done
            os.rmdir(os.path.join(self.root, "gone"))
            make_tree(self.root, {"gone": b"a file now"})
            out, err = shell.communicate(b"-ls\n-ls -r\nls /\n", timeout=60)
        finally:
            if shell.poll() is None:
                shell.kill()
                shell.wait()
        self.assertEqual(err.decode().splitlines(), ['ferry: not_a_folder: "/gone" is not a folder'] * 2, err)
        self.assertIn(b"gone", out)  # the root still lists it, as a file

    def test_a_folder_typed_with_a_slash_or_dot_is_shown_once_and_dot_names_only_what_is_there(self):
        # Round 36: "get -r d -o out/" showed "out//x", "-o new/." made a
        # missing new (POSIX: "new/." names nothing there, as mkdir new/.
        # says) and showed "new/./x"; sync named a local file "outf" as
        # "outf/", a slash never typed; a pull's summary said "sent".
        server = self.start_server()
        make_tree(self.root, {"d/x": b"x", "d/sub/y": b"y"})
        got = self.ferry("get", "-r", "d", "-o", "out/", server=server)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertIn(b"d/x -> out/x:", got.stdout)
        self.assertIn(b"d/sub/y -> out/sub/y:", got.stdout)
        self.assertNotIn(b"//", got.stdout)
        doubled = self.ferry("get", "-r", "d", "-o", "twice//", server=server)
        self.assertEqual(doubled.returncode, 0, doubled.stderr)
        self.assertIn(b"d/sub/y -> twice/sub/y:", doubled.stdout)
        self.assertEqual(open(os.path.join(self.local, "twice/sub/y"), "rb").read(), b"y")
        into = self.ferry("get", "d/x", "-C", "gnew//.", server=server)
        self.assertEqual(into.returncode, 0, into.stderr)
        self.assertIn(b"d/x -> gnew/x:", into.stdout)
        # out is there now: the tree goes into it, as cp -r d out/. does.
        again = self.ferry("get", "-r", "d", "-o", "out/.", server=server)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn(b"d/sub/y -> out/d/sub/y:", again.stdout)
        self.assertNotIn(b"/./", again.stdout)
        self.assertEqual(open(os.path.join(self.local, "out/d/sub/y"), "rb").read(), b"y")
        for typed in ("new/.", "new/./", "new/sub/."):
            with self.subTest(typed=typed):
                refused = self.ferry("get", "-r", "d", "-o", typed, server=server)
                self.assertEqual(refused.returncode, 3, refused.stderr)
                self.assertIn(b"local_io", refused.stderr)
                self.assertIn(b"No such file or directory", refused.stderr)
                self.assertFalse(os.path.exists(os.path.join(self.local, "new")))
        self.write(os.path.join(self.local, "outf"), b"a file")
        for words in (("sync", ":d", "outf"), ("sync", "outf", ":elsewhere")):
            with self.subTest(words=words):
                refused = self.ferry(*words, server=server)
                self.assertEqual(refused.returncode, 3, refused.stderr)
                self.assertIn(b'"outf"', refused.stderr)
                self.assertNotIn(b'"outf/"', refused.stderr)
        # On the server too "new/." names what is there (round 37): mkdir
        # and put -C make no such folder; mkdir -p does, as POSIX's.
        for words, code in ((("mkdir", "newE/."), b"not_found"), (("mkdir", "d/."), b"exists"),
                            (("put", "outf", "-C", "newC/."), b"not_found")):
            with self.subTest(words=words):
                refused = self.ferry(*words, server=server)
                self.assertEqual(refused.returncode, 4, refused.stderr)
                self.assertIn(code, refused.stderr)
                self.assertEqual(sorted(os.listdir(self.root)), ["d"])
        made = self.ferry("mkdir", "-p", "newP/.", server=server)
        self.assertEqual(made.returncode, 0, made.stderr)
        self.assertTrue(os.path.isdir(os.path.join(self.root, "newP")))
        os.rmdir(os.path.join(self.root, "newP"))
        pulled = self.ferry("sync", ":d", "pulled", server=server)
        self.assertEqual(pulled.returncode, 0, pulled.stderr)
        self.assertIn(b"pull: 2 received, 0 skipped, 0 deleted", pulled.stdout)
        pushed = self.ferry("sync", "pulled", ":pushed", server=server)
        self.assertIn(b"push: 2 sent, 0 skipped, 0 deleted", pushed.stdout)

    def test_the_root_however_spelled_is_a_folder_there_and_a_dot_dot_past_a_link_is_not_a_folder(self):
        # Round 37: stat / said 1970 (mtime 0); get / and get d/.. said
        # local_io about "", digest d/.. "path is empty"; mkdir -p / and
        # mkdir -p d/.. failed (invalid_name) on a folder that is there; a
        # link before ".." was not_regular_file; mkdir 'st*r/../x' spoke of
        # a wildcard, which mkdir does not expand.
        server = self.start_server()
        make_tree(self.root, {"d/a": b"a", "e/k": b"k"})
        os.symlink("e", os.path.join(self.root, "lnk"))
        os.utime(self.root, (1700000000, 1700000000))
        for typed in ("/", ".", "d/.."):
            with self.subTest(typed=typed):
                stat = self.ferry("--json", "stat", typed, server=server)
                self.assertEqual(stat.returncode, 0, stat.stderr)
                self.assertEqual(self.json_of(stat)["mtime"], 1700000000)
                # Round 44: named "", which the schema refuses; "/" as the shell says.
                schema_for("stat").validate(self.json_of(stat))
                self.assertEqual(self.json_of(stat)["name"], "/")
                got = self.ferry("get", typed, "-o", "out", server=server)
                self.assertEqual(got.returncode, 4, got.stderr)
                self.assertIn(b"not_regular_file", got.stderr)
                made = self.ferry("mkdir", "-p", typed, server=server)
                self.assertEqual(made.returncode, 0, made.stderr)
                self.assertIn(b"already there: /", made.stdout)
                again = self.ferry("mkdir", typed, server=server)
                self.assertEqual(again.returncode, 4, again.stderr)
                self.assertIn(b"exists", again.stderr)
        digest = self.ferry("digest", "d/..", server=server)
        self.assertEqual(digest.returncode, 4, digest.stderr)
        self.assertIn(b"not_regular_file", digest.stderr)
        for words in (("ls", "lnk/../d"), ("rm", "-r", "lnk/../d"), ("mkdir", "lnk/../n")):
            with self.subTest(words=words):
                through = self.ferry(*words, server=server)
                self.assertEqual(through.returncode, 4, through.stderr)
                self.assertIn(b'not_a_folder: "lnk/..', through.stderr)
        # Round 38: the link typed as a folder, and mkdir of "x/." where x
        # is a file or a link, are not_a_folder too.
        make_tree(self.root, {"f": b"file"})
        for words in (("ls", "lnk/"), ("stat", "lnk/."), ("rm", "-r", "lnk/"), ("mkdir", "f/."), ("mkdir", "lnk/."),
                      ("mkdir", "-p", "f/."), ("mkdir", "-p", "lnk/.")):
            with self.subTest(words=words):
                typed = self.ferry(*words, server=server)
                self.assertEqual(typed.returncode, 4, typed.stderr)
                self.assertIn(b"not_a_folder", typed.stderr)
        for line in (b"cd lnk\n", b"cd lnk/.\n"):  # round 39: the shell's cd too
            with self.subTest(line=line):
                shell = self.ferry(server=server, stdin=line)
                self.assertIn(b'not_a_folder: "lnk" is not a folder', shell.stderr)
        os.unlink(os.path.join(self.root, "f"))
        # A command that expands no wildcard takes "*" as written before "..".
        literal = self.ferry("mkdir", "st*r/../new1", server=server)
        self.assertEqual(literal.returncode, 4, literal.stderr)
        self.assertIn(b'not_found: "st*r/../new1": "st*r" is not there', literal.stderr)
        os.mkdir(os.path.join(self.root, "st*r"))
        made = self.ferry("mkdir", "st*r/../new1", server=server)
        self.assertEqual(made.returncode, 0, made.stderr)
        self.assertTrue(os.path.isdir(os.path.join(self.root, "new1")))
        self.write(os.path.join(self.local, "p"), b"p")
        for words in (("put", "p", "--as", "st*r/../new1/p1"), ("put", "p", "-C", "st*r/../new1"),
                      ("sync", ".", ":st*r/../new1/s")):
            with self.subTest(words=words):
                sent = self.ferry(*words, server=server)
                self.assertEqual(sent.returncode, 0, sent.stderr)
        self.assertEqual(sorted(os.listdir(os.path.join(self.root, "new1"))), ["p", "p1", "s"])
        deep = self.ferry("mkdir", "-p", "g*2/g3/../g4", server=server)
        self.assertEqual(deep.returncode, 0, deep.stderr)
        # Each folder made on the way is said so, once; the argument's own,
        # made on the way, is "created" (round 39).
        onward = self.ferry("--json", "mkdir", "-p", "h1/h2/..", server=server)
        self.assertEqual(onward.returncode, 0, onward.stderr)
        self.assertEqual(self.json_of(onward)["made"], [{"created": True, "path": "h1"}])
        shutil.rmtree(os.path.join(self.root, "h1"))
        self.assertEqual(sorted(os.listdir(os.path.join(self.root, "g*2"))), ["g3", "g4"])
        self.assertFalse(os.path.exists(os.path.join(self.local, "out")))
        self.assertEqual(sorted(os.listdir(self.root)), ["d", "e", "g*2", "lnk", "new1", "st*r"])

    def test_the_shell_names_put_as_and_sync_paths_relative_to_its_folder(self):
        # Round 37: in the shell, put --as's error named "cf/../pp" as
        # "/cf/../pp" (a path that is not there), and sync named the
        # server's paths from the root without the leading '/'.
        server = self.start_server()
        make_tree(self.root, {"c/cf": b"file", "d/sub/s": b"a file", "d/a": b"a"})
        make_tree(self.local, {"src/top": b"top", "p.txt": b"p"})
        put = self.ferry(server=server, stdin=b"cd c\nput p.txt --as cf/../pp\n")
        self.assertIn(b'not_a_folder: "cf/../pp": "cf" is a file', put.stderr)
        pushed = self.ferry(server=server, stdin=b"cd d/sub\nsync src :new5\n")
        self.assertEqual(pushed.returncode, 0, pushed.stderr)
        self.assertIn(b"src/top -> new5/top:", pushed.stdout)
        planned = self.ferry(server=server, stdin=b"cd d/sub\nsync -n src :..\n")
        self.assertIn(b"would send /d/top (", planned.stderr + planned.stdout)
        self.assertIn(b"would set the time of /d/ ", planned.stderr + planned.stdout)
        # Round 57: the current folder itself was named from the root
        # ("/d/sub/") while every other line named paths below it.
        here = self.ferry(server=server, stdin=b"cd d/sub\nsync -n src :.\n")
        self.assertIn(b"would send top (", here.stdout)
        self.assertIn(b"would set the time of ./ ", here.stdout)
        self.assertNotIn(b"/d/sub", here.stdout + here.stderr)
        # ... and a get's note on a file named twice named it from the root
        # while its transfer line named it below the shell's folder.
        twice = self.ferry(server=server, stdin=b"cd d\nget a ./a /d/a -C got\n")
        self.assertEqual(twice.returncode, 0, twice.stderr)
        self.assertIn(b'note: "a" is named more than once for "got/a": it counts once', twice.stderr)
        self.assertIn(b"a -> got/a:", twice.stdout)
        # Round 59: put -r's clash named the server's paths from the root
        # ("below \"d/A/q\"") beside the local ones.
        make_tree(self.local, {"one/A/q": b"1", "two/A/q/r/z": b"2"})
        clash = self.ferry(server=server, stdin=b"cd d\nput -r one/A two/A\n")
        self.assertIn(b'"two/A/q/r/z" would be put as "A/q/r/z", below "A/q", where "one/A/q" is put as a file',
                      clash.stderr)
        refused = self.ferry(server=server, stdin=b"cd d/sub\nsync src :s\n")
        self.assertIn(b'not_a_folder: "s" is not a folder', refused.stderr)
        self.assertEqual(open(os.path.join(self.root, "d/sub/new5/top"), "rb").read(), b"top")

    def test_a_word_in_brackets_is_the_pattern_or_name_typed_never_a_list(self):
        # Round 35: CLI11 read an operand "[...]" of rm, get, digest, mkdir
        # and put as a list: rm '[!q]' removed !q (the one name it does not
        # match), rm '[a-c]' removed a-c, '[a,b]' named a and b, mkdir
        # '[nd]' made nd, put '[x]' sent ./x. On the command line and in
        # the shell alike.
        server = self.start_server()
        for via_shell in (False, True):
            with self.subTest(via_shell=via_shell):
                for name in os.listdir(self.root):  # the served folder itself stays (a new one is refused)
                    path = os.path.join(self.root, name)
                    shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
                make_tree(self.root, {"!q": b"kept", "a": b"a", "b": b"b", "a-c": b"kept too", "x": b"server x"})
                make_tree(self.local, {"[x]": b"bracketed", "x": b"plain x"})

                def run(*words):
                    if not via_shell:
                        return self.ferry(*words, server=server)
                    line = " ".join("'%s'" % word if "[" in word else word for word in words)
                    return self.ferry(server=server, stdin=(line + "\n").encode())

                digest = run("digest", "[!qx]")
                self.assertEqual(digest.returncode, 0, digest.stderr)
                self.assertIn(b"a\n", digest.stdout)
                self.assertNotIn(b"!q", digest.stdout)
                removed = run("rm", "[!qx]")
                self.assertEqual(removed.returncode, 0, removed.stderr)
                self.assertEqual(sorted(os.listdir(self.root)), ["!q", "a-c", "x"])
                self.assertEqual(run("mkdir", "[nd]").returncode, 0)
                self.assertTrue(os.path.isdir(os.path.join(self.root, "[nd]")))
                self.assertFalse(os.path.exists(os.path.join(self.root, "nd")))
                put = run("put", "[x]")
                self.assertEqual(put.returncode, 0, put.stderr)
                self.assertEqual(open(os.path.join(self.root, "[x]"), "rb").read(), b"bracketed")
                self.assertEqual(open(os.path.join(self.root, "x"), "rb").read(), b"server x")
                listed = run("rm", "[a,b]")  # a pattern matching nothing here: refused, nothing removed
                self.assertNotEqual(listed.returncode, 0)
                self.assertEqual(sorted(os.listdir(self.root)), ["!q", "[nd]", "[x]", "a-c", "x"])
                os.unlink(os.path.join(self.local, "[x]"))
                os.unlink(os.path.join(self.local, "x"))

    def test_get_r_and_put_r_keep_the_tree_and_with_p_the_times(self):
        server = self.start_server()
        files = {"a.txt": b"alpha", "sub/b.bin": os.urandom(300000), "sub/deeper/c.txt": b"c" * 70000}
        make_tree(self.root, files, folders=["empty", "sub/hollow"])
        os.utime(os.path.join(self.root, "sub", "b.bin"), (1700000000, 1700000000))
        os.utime(os.path.join(self.root, "sub", "deeper"), (1600000000, 1600000000))
        os.utime(os.path.join(self.root, "sub"), (1400000000, 1400000000))

        plain = self.ferry("get", "sub", server=server)
        self.assertEqual(plain.returncode, 4)
        self.assertIn(b"get -r", plain.stderr, plain.stderr)

        got = self.json_of(self.ferry("--json", "get", "-r", "-p", "sub", "a.txt", "-C", "down", server=server))
        schema_for("transfer").validate(got)
        self.assertEqual(got["summary"]["failed"], 0, got)
        self.assertEqual(sorted(f["name"] for f in got["files"]), ["a.txt", "sub/b.bin", "sub/deeper/c.txt"])
        down = os.path.join(self.local, "down")
        self.assertEqual(tree(down), {"a.txt": b"alpha", "sub": None, "sub/b.bin": files["sub/b.bin"],
                                      "sub/deeper": None, "sub/deeper/c.txt": files["sub/deeper/c.txt"],
                                      "sub/hollow": None})
        self.assertEqual(os.stat(os.path.join(down, "sub", "b.bin")).st_mtime, 1700000000)
        self.assertEqual(os.stat(os.path.join(down, "sub", "deeper")).st_mtime, 1600000000)
        # The tree's own folder too (attack round 21, F2: it kept the time of
        # its making unless a wildcard had matched it), named as on the
        # server or by -o.
        self.assertEqual(os.stat(os.path.join(down, "sub")).st_mtime, 1400000000)
        for named in (["sub/deeper", "-C", "down2"], ["sub/deeper", "-o", "down3"]):
            again = self.ferry("get", "-r", "-p", *named, server=server)
            self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(os.stat(os.path.join(self.local, "down2", "deeper")).st_mtime, 1600000000)
        self.assertEqual(os.stat(os.path.join(self.local, "down3")).st_mtime, 1600000000)
        self.assertFalse([n for n in os.listdir(os.path.join(down, "sub")) if "ferry-part" in n])
        # Without -p the file is as new as its download.
        self.ferry("get", "sub/b.bin", "-o", "fresh.bin", server=server)
        self.assertNotEqual(os.stat(os.path.join(self.local, "fresh.bin")).st_mtime, 1700000000)

        # put -r: the tree goes up under its own name, empty folders too; a
        # symlink is not followed, and said so.
        up = os.path.join(self.local, "up")
        make_tree(up, {"x.txt": b"x", "in/y.bin": os.urandom(100000)}, folders=["in/nothing"])
        os.utime(os.path.join(up, "in", "y.bin"), (1500000000, 1500000000))
        # Round 36: put -r -p kept the files' times but not the folders'.
        for folder, when in (("in/nothing", 1400000000), ("in", 1300000000), ("", 1200000000)):
            os.utime(os.path.join(up, folder), (when, when))
        os.symlink("/etc", os.path.join(up, "link"))
        os.utime(up, (1200000000, 1200000000), follow_symlinks=False)
        refused = self.ferry("put", "up", server=server)
        self.assertEqual(refused.returncode, 3)
        self.assertIn(b"put -r", refused.stderr)
        sent = self.ferry("put", "-r", "-p", "up", "-C", "backups/today", server=server)
        self.assertEqual(sent.returncode, 0, sent.stderr)
        self.assertIn(b"up/link: a symbolic link (not followed), not sent", sent.stderr)
        target = os.path.join(self.root, "backups", "today", "up")
        self.assertEqual(tree(target), {"x.txt": b"x", "in": None, "in/y.bin": tree(up)["in/y.bin"],
                                        "in/nothing": None})
        self.assertEqual(os.stat(os.path.join(target, "in", "y.bin")).st_mtime, 1500000000)
        for folder, when in (("in/nothing", 1400000000), ("in", 1300000000), ("", 1200000000)):
            self.assertEqual(os.stat(os.path.join(target, folder)).st_mtime, when, folder)
        # --as names the tree's place; the round trip gives back the same bytes.
        self.assertEqual(self.ferry("put", "-r", "up", "--as", "copy", server=server).returncode, 0)
        self.assertEqual(self.ferry("get", "-r", "copy", "-o", "back", server=server).returncode, 0)
        self.assertEqual(tree(os.path.join(self.local, "back")), tree(target))

    def test_a_new_copy_takes_its_sources_permission_bits_both_ways_and_a_replaced_file_keeps_its_own(self):
        # Round 36 (medium): a 0600 file pushed or pulled landed 0644. As sftp,
        # scp and rsync make a new copy: the source's bits less the umask,
        # never a set-ID bit; a file replaced keeps its own (PROTOCOL.md 4.5).
        umask = os.umask(0)
        os.umask(umask)

        def mode(*parts):
            return os.stat(os.path.join(*parts)).st_mode & 0o7777

        server = self.start_server()
        up = os.path.join(self.local, "up")
        make_tree(up, {"priv.txt": b"p", "tool.sh": b"#!/bin/sh\n", "plain.txt": b"x", "in/key": b"k"})
        for name, bits in (("priv.txt", 0o600), ("tool.sh", 0o4755), ("plain.txt", 0o644), ("in/key", 0o640)):
            os.chmod(os.path.join(up, name), bits)
        for name in ("priv.txt", "tool.sh"):
            done = self.ferry("put", os.path.join("up", name), server=server)
            self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(mode(self.root, "priv.txt"), 0o600 & ~umask)
        self.assertEqual(mode(self.root, "tool.sh"), 0o755 & ~umask)      # never set-user-ID
        sent = self.ferry("put", "-r", "up", "-C", "tree", server=server)
        self.assertEqual(sent.returncode, 0, sent.stderr)
        self.assertEqual(mode(self.root, "tree", "up", "in", "key"), 0o640 & ~umask)
        self.assertEqual(mode(self.root, "tree", "up", "priv.txt"), 0o600 & ~umask)
        # Standard input has no bits of its own: 0666 less the umask.
        piped = self.ferry("put", "-", "--as", "piped.txt", server=server, stdin=b"data")
        self.assertEqual(piped.returncode, 0, piped.stderr)
        self.assertEqual(mode(self.root, "piped.txt"), 0o666 & ~umask)
        # A file replaced on the server keeps its own bits.
        os.chmod(os.path.join(self.root, "tree", "up", "plain.txt"), 0o604)
        os.chmod(os.path.join(up, "plain.txt"), 0o700)
        with open(os.path.join(up, "plain.txt"), "wb") as f:
            f.write(b"changed")
        again = self.ferry("put", "up/plain.txt", "-C", "tree/up", server=server)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(mode(self.root, "tree", "up", "plain.txt"), 0o604)

        # stat shows them; --json carries them.
        shown = self.ferry("stat", "priv.txt", server=server)
        self.assertIn(b"mode:     0600", shown.stdout, shown.stdout)
        described = self.json_of(self.ferry("--json", "stat", "tree/up/in/key", server=server))
        schema_for("stat").validate(described)
        self.assertEqual(described["mode"], 0o640 & ~umask)
        listed = self.json_of(self.ferry("--json", "ls", "tree/up", server=server))
        schema_for("list").validate(listed)
        self.assertEqual({e["name"]: e["mode"] for e in listed["files"]}["priv.txt"], 0o600 & ~umask)

        # get: a new local file takes the server's bits; get -r too.
        os.chmod(os.path.join(self.root, "tree", "up", "tool.sh"), 0o750)
        got = self.ferry("get", "priv.txt", "tree/up/tool.sh", "-C", "down", server=server)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertEqual(mode(self.local, "down", "priv.txt"), 0o600 & ~umask)
        self.assertEqual(mode(self.local, "down", "tool.sh"), 0o750 & ~umask)
        single = self.ferry("get", "priv.txt", "-o", "one.txt", server=server)
        self.assertEqual(single.returncode, 0, single.stderr)
        self.assertEqual(mode(self.local, "one.txt"), 0o600 & ~umask)
        got = self.ferry("get", "-r", "tree/up", "-o", "back", server=server)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertEqual(mode(self.local, "back", "in", "key"), 0o640 & ~umask)
        self.assertEqual(mode(self.local, "back", "plain.txt"), 0o604 & ~umask)
        # A local file replaced keeps its own bits.
        os.chmod(os.path.join(self.local, "one.txt"), 0o644)
        again = self.ferry("get", "priv.txt", "-o", "one.txt", server=server)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(mode(self.local, "one.txt"), 0o644)

        # Round 44 (high): a new local file in a folder with a default ACL
        # takes what that ACL gives a file created there with the server's
        # bits (acl(5): no umask then), not the bits less the umask chmod'ed
        # over it, which opened a private folder's files to others.
        private = os.path.join(self.local, "private")
        team = os.path.join(self.local, "team")
        os.mkdir(private)
        os.mkdir(team)
        subprocess.run(["setfacl", "-d", "-m", "u::rwx,g::---,o::---", private], check=True)
        subprocess.run(["setfacl", "-d", "-m", "u::rwx,u:1234:rwx,g::r-x,m::rwx,o::---", team], check=True)
        got = self.ferry("get", "tree/up/tool.sh", "priv.txt", "-C", "private", server=server)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertEqual(mode(private, "tool.sh"), 0o700)
        self.assertEqual(mode(private, "priv.txt"), 0o600)
        got = self.ferry("get", "-r", "tree/up/in", "-C", "team", server=server)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertEqual(mode(team, "in", "key"), 0o640)
        acl = subprocess.run(["getfacl", "-cnp", os.path.join(team, "in", "key")], stdout=subprocess.PIPE,
                             check=True).stdout.decode()
        self.assertIn("user:1234:rwx", acl)
        self.assertIn("mask::r--", acl)
        pulled = self.ferry("sync", ":tree/up", "private/pulled", server=server)
        self.assertEqual(pulled.returncode, 0, pulled.stderr)
        self.assertEqual(mode(private, "pulled", "plain.txt"), 0o600)

        # sync, both ways, makes new files with the source's bits.
        pushed = self.ferry("sync", "up", ":synced", server=server)
        self.assertEqual(pushed.returncode, 0, pushed.stderr)
        self.assertEqual(mode(self.root, "synced", "priv.txt"), 0o600 & ~umask)
        self.assertEqual(mode(self.root, "synced", "in", "key"), 0o640 & ~umask)
        pulled = self.ferry("sync", ":synced", "pulled", server=server)
        self.assertEqual(pulled.returncode, 0, pulled.stderr)
        self.assertEqual(mode(self.local, "pulled", "priv.txt"), 0o600 & ~umask)
        self.assertEqual(mode(self.local, "pulled", "in", "key"), 0o640 & ~umask)

    def test_a_new_folder_takes_its_sources_permission_bits_both_ways_and_one_there_keeps_its_own(self):
        # Round 53b (medium): every folder ferry made was 0777 less the umask,
        # so a 0700 folder of 0644 files arrived readable by every user. As
        # cp -r, scp -r and rsync make one: the source's bits less the umask
        # (with the owner's rwx, to fill it), never a set-ID or sticky bit
        # (PROTOCOL.md 4.10's folder_modes); one already there keeps its own.
        umask = os.umask(0o022)
        self.addCleanup(os.umask, umask)

        def mode(*parts):
            return os.stat(os.path.join(*parts)).st_mode & 0o7777

        server = self.start_server()
        priv = os.path.join(self.local, "priv")
        make_tree(priv, {"s": b"secret", "sub/deep/t": b"t", "team/u": b"u"})
        os.mkdir(os.path.join(priv, "empty"))
        bits = {"": 0o700, "sub": 0o750, "sub/deep": 0o711, "team": 0o2775, "empty": 0o500}
        for folder, folder_bits in bits.items():
            os.chmod(os.path.join(priv, folder), folder_bits)
        made = {"": 0o700, "sub": 0o750, "sub/deep": 0o711, "team": 0o755, "empty": 0o700}

        def check_tree(*top):
            for folder, want in made.items():
                self.assertEqual(mode(*top, folder), want, (top, folder))

        sent = self.ferry("put", "-r", "priv", "-C", "new/box", server=server)
        self.assertEqual(sent.returncode, 0, sent.stderr)
        check_tree(self.root, "new", "box", "priv")
        # The folders above the tree are the user's -C: 0777 less the umask.
        self.assertEqual(mode(self.root, "new"), 0o755)
        self.assertEqual(mode(self.root, "new", "box"), 0o755)
        pushed = self.ferry("sync", "priv", ":pushed/priv", server=server)
        self.assertEqual(pushed.returncode, 0, pushed.stderr)
        check_tree(self.root, "pushed", "priv")
        self.assertEqual(mode(self.root, "pushed"), 0o755)

        # A folder there keeps its own, whatever the source's.
        os.chmod(os.path.join(self.root, "pushed", "priv", "sub"), 0o755)
        make_tree(priv, {"sub/more": b"m"})
        os.chmod(os.path.join(priv, "sub"), 0o750)
        again = self.ferry("sync", "priv", ":pushed/priv", server=server)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(mode(self.root, "pushed", "priv", "sub"), 0o755)

        # The pull side: get -r by name and by wildcard, and sync's pull.
        for how, args, top in (("get -r", ["get", "-r", "new/box/priv", "-C", "got"], ("got", "priv")),
                               ("get -r -o", ["get", "-r", "new/box/priv", "-o", "out"], ("out",)),
                               ("wildcard", ["get", "-r", "new/box/pr*", "-C", "wild"], ("wild", "priv")),
                               ("sync", ["sync", ":new/box/priv", "pulled/priv"], ("pulled", "priv"))):
            done = self.ferry(*args, server=server)
            self.assertEqual(done.returncode, 0, (how, done.stderr))
            check_tree(self.local, *top)
            self.assertEqual(mode(self.local, *top, "s"), 0o644, how)
        self.assertEqual(mode(self.local, "pulled"), 0o755)

    def test_stat_of_a_wildcard_is_a_list_however_many_match(self):
        # Round 53b (low): one match was a bare object, several {"files": [...]}:
        # a script could not know which shape a wildcard would give.
        server = self.start_server()
        make_tree(self.root, {"js/a": b"a", "one.txt": b"1"})
        for typed, names in (("js/*", ["js/a"]), ("j?/[a-z]", ["js/a"])):
            out = self.json_of(self.ferry("--json", "stat", typed, server=server))
            schema_for("stat_many").validate(out)
            self.assertEqual([f["name"] for f in out["files"]], names, out)
        make_tree(self.root, {"js/b": b"b"})
        out = self.json_of(self.ferry("--json", "stat", "js/*", server=server))
        self.assertEqual([f["name"] for f in out["files"]], ["js/a", "js/b"], out)
        # A name without a wildcard is one entry, as before.
        for typed in ("one.txt", "js/a"):
            out = self.json_of(self.ferry("--json", "stat", typed, server=server))
            schema_for("stat").validate(out)
            self.assertNotIn("files", out)

    def test_two_files_of_one_put_for_one_server_name_are_refused_as_get_refuses_them(self):
        # Round 53b (low-medium): put pa/x pb/x -C d sent both to d/x, the
        # second replacing the first, and said "2 ok". As get does for one
        # local name: the first keeps the name, the others get name_clash
        # (exit 4) before any byte moves, and the rest is sent.
        make_tree(self.local, {"pa/x": b"AAA", "pb/x": b"BBBBB", "pc/y": b"y",
                               "ta/same": b"ta", "ta/only-a": b"a", "tb/same": b"tb", "tb/only-b": b"b"})
        server = self.start_server()
        put = self.ferry("put", "pa/x", "pb/x", "pc/y", "-C", "d", server=server)
        self.assertEqual(put.returncode, 4, put.stderr)
        self.assertIn(b'name_clash: "pb/x" and "pa/x" would both be put as "d/x": only "pa/x" is sent', put.stderr)
        with open(os.path.join(self.root, "d", "x"), "rb") as f:
            self.assertEqual(f.read(), b"AAA")
        self.assertTrue(os.path.exists(os.path.join(self.root, "d", "y")))
        report = self.json_of(self.ferry("--json", "put", "pb/x", "pa/x", "-C", "e", server=server))
        self.assertEqual([(f["name"], f.get("error", {}).get("code")) for f in report["files"]],
                         [("e/x", None), ("e/x", "name_clash")], report)
        # Round 57: the refused file named twice was refused twice ("3 files
        # sent: 1 ok, 2 failed"); it is one file, refused once.
        again = self.json_of(self.ferry("--json", "put", "pb/x", "pa/x", "./pa/x", "-C", "e2", server=server))
        self.assertEqual([(f["name"], f.get("error", {}).get("code")) for f in again["files"]],
                         [("e2/x", None), ("e2/x", "name_clash")], again)
        # Two trees into one folder: their files merge, and the file both
        # have is put once, from the first.
        os.rename(os.path.join(self.local, "tb"), os.path.join(self.local, "other"))
        os.makedirs(os.path.join(self.local, "b2"))
        os.rename(os.path.join(self.local, "other"), os.path.join(self.local, "b2", "ta"))
        trees = self.ferry("put", "-r", "ta", "b2/ta", "-C", "t", server=server)
        self.assertEqual(trees.returncode, 4, trees.stderr)
        self.assertIn(b'"b2/ta/same" and "ta/same" would both be put as "t/ta/same"', trees.stderr)
        self.assertEqual(sorted(os.listdir(os.path.join(self.root, "t", "ta"))), ["only-a", "only-b", "same"])
        with open(os.path.join(self.root, "t", "ta", "same"), "rb") as f:
            self.assertEqual(f.read(), b"ta")

    def test_a_file_where_another_of_the_put_needs_a_folder_is_refused_before_any_byte_moves(self):
        # Round 55's leftover: put -r t1/x x (a folder and a file for one
        # server name) sent the first, and the server refused the second
        # (not_regular_file or not_a_folder) after it. The first named
        # keeps the name; the others get name_clash before any byte moves.
        make_tree(self.local, {"t1/x/f": b"f", "t1/x/g": b"g", "x": b"the file x", "y": b"y", "k/z": b"z",
                               "other/k": b"the file k"})
        server = self.start_server()
        for args, kept, refused in (
                (("-r", "t1/x", "x", "y", "-C", "c1"), {"c1/x/f": b"f", "c1/x/g": b"g", "c1/y": b"y"}, ["c1/x"]),
                (("-r", "x", "t1/x/", "y", "-C", "c2"), {"c2/x": b"the file x", "c2/y": b"y"},
                 ["c2/x/f", "c2/x/g"]),
                (("-r", "k", "other/k", "-C", "c4"), {"c4/k/z": b"z"}, ["c4/k"])):
            with self.subTest(args=args):
                top = os.path.join(self.root, os.path.dirname(next(iter(kept))) or ".")
                report = self.json_of(self.ferry("--json", "put", *args, server=server))
                self.assertEqual(sorted(f["name"] for f in report["files"] if not f["ok"]), refused, report)
                self.assertEqual({f["error"]["code"] for f in report["files"] if not f["ok"]}, {"name_clash"})
                self.assertTrue(all("on its own with --as or -C" in f["error"]["message"]
                                    for f in report["files"] if not f["ok"]), report)
                for name, data in kept.items():
                    with open(os.path.join(self.root, name), "rb") as f:
                        self.assertEqual(f.read(), data)
                self.assertTrue(os.path.isdir(top))
        # Round 57: an empty folder of put -r was made while the put was
        # planned, before any name was settled, so it took the name of a
        # file named before it (and the file was refused by the server).
        os.makedirs(os.path.join(self.local, "E", "x"))
        os.makedirs(os.path.join(self.local, "F", "x", "y"))
        for args, top, kind, failed in ((("-r", "x", "E/x", "-C", "c5"), "c5", "file", (["c5/x"], [])),
                                        (("-r", "E/x", "x", "-C", "c6"), "c6", "folder", ([], ["c6/x"])),
                                        (("-r", "x", "F/x", "-C", "c7"), "c7", "file", (["c7/x", "c7/x/y"], []))):
            with self.subTest(args=args):
                report = self.json_of(self.ferry("--json", "put", *args, server=server))
                self.assertEqual(sorted(f["name"] for f in report.get("failed_folders", [])), failed[0], report)
                self.assertEqual([f["name"] for f in report["files"] if not f["ok"]], failed[1], report)
                self.assertEqual({f["error"]["code"] for f in report.get("failed_folders", [])} |
                                 {f["error"]["code"] for f in report["files"] if not f["ok"]}, {"name_clash"})
                made = os.path.join(self.root, top, "x")
                self.assertTrue(os.path.isfile(made) if kind == "file" else os.path.isdir(made), report)
        nested = self.ferry("put", "-r", "x", "F/x", "-C", "c8", server=server)
        self.assertEqual(nested.stderr.count(b"name_clash"), 1, nested.stderr)  # F/x/y follows F/x
        text = self.ferry("put", "-r", "t1/x", "x", "-C", "c3", server=server)
        self.assertEqual(text.returncode, 4, text.stderr)
        self.assertIn(b'ferry: name_clash: "x" would be put as "c3/x", where "t1/x" puts a folder: only "t1/x" is '
                      b"sent; put 'x' on its own with --as or -C\n", text.stderr)
        # Round 57: a file below another tree's file named that tree, not the
        # file: '"A/q" is put as a file' where A/q is a folder and A/q/r the file.
        make_tree(self.local, {"A/q/r": b"r", "B/q/r/s/f": b"f", "B/q/r/t/g": b"g"})
        below = self.ferry("put", "-r", "A/q", "B/q", "-C", "c9", server=server)
        self.assertEqual(below.returncode, 4, below.stderr)
        self.assertIn(b'name_clash: "B/q/r/s/f" would be put as "c9/q/r/s/f", below "c9/q/r", where "A/q/r" is '
                      b"put as a file: only \"A/q\" is sent; put 'B/q' on its own with --as or -C\n", below.stderr)
        os.makedirs(os.path.join(self.local, "C", "q", "r", "empty"))
        empty = self.ferry("put", "-r", "A/q", "C/q", "-C", "c10", server=server)
        self.assertEqual(empty.returncode, 4, empty.stderr)
        self.assertIn(b'would be made as "c10/q/r", where "A/q/r" is put as the file "c10/q/r"', empty.stderr)

    def test_one_server_file_named_twice_in_a_get_is_got_once_without_an_error(self):
        # Round 56, F4: get a1.txt 'a*.txt' failed with a name clash of a1.txt
        # with itself (exit 4), and with -n counted it twice. As put does:
        # got once, with a note, exit 0, counted once.
        make_tree(self.root, {"a1.txt": b"a1", "a2.txt": b"a2", "t/x": b"x", "t/sub/y": b"y", "t/z": b"z",
                              "t/sub/w": b"w"})
        server = self.start_server()
        for words, got in ((["a1.txt", "a*.txt"], {"a1.txt": b"a1", "a2.txt": b"a2"}),
                           (["a1.txt", "./a1.txt", "/a1.txt"], {"a1.txt": b"a1"}),
                           (["-r", "t", "t/", "-C", "g"],
                            {"g/t/x": b"x", "g/t/sub/y": b"y", "g/t/z": b"z", "g/t/sub/w": b"w"})):
            for flags in ([], ["-n"]):
                with self.subTest(words=words, flags=flags):
                    result = self.ferry("--json", "get", *flags, *words, server=server)
                    self.assertEqual(result.returncode, 0, result.stderr)
                    report = self.json_of(result)
                    self.assertEqual(sorted(f["local"] for f in report["files"]), sorted(got), report)
                    self.assertEqual(report["summary"]["files"], len(got), report)
                    self.assertEqual(len(report["notes"]), 1, report)
                    self.assertIn("named more than once", report["notes"][0])
                    self.assertTrue(report["notes"][0].endswith("counts once"), report["notes"])
                    for name, body in got.items():
                        with open(os.path.join(self.local, name), "rb") as f:
                            self.assertEqual(f.read(), body)
        text = self.ferry("get", "a1.txt", "a1.txt", server=server)
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn(b'ferry: note: "a1.txt" is named more than once for "a1.txt": it counts once\n', text.stderr)
        # Round 57: the note claimed "got once" for a file then refused as a
        # name clash, and named the folder "." for a wildcard's match.
        make_tree(self.root, {"g/t/x": b"gtx", "g/u/x": b"gux"})
        clash = self.ferry("get", "g/*/x", "g/u/x", "-C", "e", server=server)
        self.assertEqual(clash.returncode, 4, clash.stderr)
        self.assertIn(b'"g/u/x" is named more than once for "e/x": it counts once', clash.stderr)
        self.assertIn(b"name_clash", clash.stderr)
        self.assertNotIn(b"got once", clash.stderr)
        with open(os.path.join(self.local, "e", "x"), "rb") as f:
            self.assertEqual(f.read(), b"gtx")

    def test_one_local_file_named_twice_in_a_put_is_sent_once_without_an_error(self):
        # Round 54 (medium): refusing two files for one server name also
        # refused one file named twice (put x x, put x ./x, a link to its
        # folder, a glob that matches a file also typed, a hard link, or the
        # same tree twice) with name_clash and exit 4, where before it went
        # twice and said "2 ok". The same local file (device and inode) is
        # one file: put once, exit 0, with a note that says so.
        make_tree(self.local, {"x": b"one", "pa/x": b"pa", "logs/app.log": b"app", "logs/b.log": b"b",
                               "tree/a": b"a", "tree/sub/b": b"b"})
        os.symlink("pa", os.path.join(self.local, "pl"))
        server = self.start_server()
        for words, sent in ((["x", "x"], {"x": b"one"}),
                            (["x", "./x"], {"x": b"one"}),
                            (["x", os.path.join(self.local, "x")], {"x": b"one"}),
                            (["pa/x", "pl/x", "-C", "d"], {"d/x": b"pa"}),
                            (["logs/app.log", "logs/b.log", "logs/app.log", "-C", "g"],
                             {"g/app.log": b"app", "g/b.log": b"b"}),
                            (["-r", "tree", "tree", "-C", "t"], {"t/tree/a": b"a", "t/tree/sub/b": b"b"})):
            with self.subTest(words=words):
                put = self.ferry("--json", "put", *words, server=server)
                self.assertEqual(put.returncode, 0, put.stderr)
                report = self.json_of(put)
                self.assertEqual(sorted(f["name"] for f in report["files"]), sorted(sent), report)
                self.assertTrue(all(f["ok"] for f in report["files"]), report)
                self.assertEqual(report["summary"]["failed"], 0, report)
                self.assertEqual(len(report["notes"]), 1, report)
                self.assertIn("put once", report["notes"][0])
                for name, body in sent.items():
                    with open(os.path.join(self.root, name), "rb") as f:
                        self.assertEqual(f.read(), body)
        # A hard link is the same file too; people read the note.
        os.mkdir(os.path.join(self.local, "other"))
        os.link(os.path.join(self.local, "x"), os.path.join(self.local, "other", "x"))
        put = self.ferry("put", "x", "other/x", "-C", "k", server=server)
        self.assertEqual(put.returncode, 0, put.stderr)
        self.assertIn(b'note: "other/x" is the same file as "x": put once, as "k/x"', put.stderr)
        put = self.ferry("put", "x", "x", server=server)
        self.assertEqual(put.returncode, 0, put.stderr)
        self.assertIn(b'note: "x" is named twice: put once, as "x"', put.stderr)
        # Round 55: a missing file named twice is one missing file (exit 3,
        # as alone), and a tree named twice in other spellings one note.
        single = self.ferry("put", "nope", server=server)
        for words in (["nope", "nope"], ["nope", "./nope"]):
            with self.subTest(words=words):
                put = self.ferry("put", *words, server=server)
                self.assertEqual(put.returncode, single.returncode, put.stderr)
                self.assertNotIn(b"name_clash", put.stderr)
        report = self.json_of(self.ferry("--json", "put", "-r", "tree", "./tree/", "-C", "t2", server=server))
        self.assertEqual(report["notes"], ['"tree" is named twice: its files are put once'], report)
        # A different file for the same name is still refused.
        os.unlink(os.path.join(self.local, "other", "x"))
        with open(os.path.join(self.local, "other", "x"), "wb") as f:
            f.write(b"another")
        put = self.ferry("put", "x", "other/x", "-C", "k2", server=server)
        self.assertEqual(put.returncode, 4, put.stderr)
        self.assertIn(b'name_clash: "other/x" and "x" would both be put as "k2/x"', put.stderr)

    def test_a_get_that_fetches_nothing_leaves_no_folder_it_made_for_c(self):
        # Round 39 (low): get NAME -C DIR made DIR even where the get then
        # failed before any download. The folders -C made go again when the
        # get fails and they are still empty; what was there, or got a file,
        # stays.
        server = self.start_server()
        make_tree(self.root, {"a.txt": b"a"})
        os.mkdir(os.path.join(self.local, "there"))
        for words in (["nosuch", "-C", "new1/deeper"], ["no*", "-C", "new2"], ["a.txt", "nosuch", "-C", "new3"],
                      ["nosuch", "-C", "there/new4"]):
            with self.subTest(words=words):
                got = self.ferry("get", *words, server=server)
                self.assertEqual(got.returncode, 4, got.stderr)
        self.assertEqual(sorted(os.listdir(self.local)), ["new3", "there"])
        self.assertEqual(os.listdir(os.path.join(self.local, "new3")), ["a.txt"])
        self.assertEqual(os.listdir(os.path.join(self.local, "there")), [])
        shell = self.ferry(server=server, stdin=b"-get nosuch -C new5\nget a.txt -C new6\n")
        self.assertEqual(shell.returncode, 0, shell.stderr)
        self.assertEqual(sorted(os.listdir(self.local)), ["new3", "new6", "there"])

    def test_get_r_never_writes_through_a_link_in_the_local_folder(self):
        # The server names everything below the target folder; a link that
        # stands at one of those names locally must not carry the write
        # elsewhere (a file link, a folder link, or the tree's own folder).
        server = self.start_server()
        make_tree(self.root, {"photos/a.jpg": b"server a", "photos/sub/b.jpg": b"server b", "album/c.jpg": b"c"})
        outside = os.path.join(self.dir, "outside")
        os.makedirs(outside)
        with open(os.path.join(outside, "victim"), "wb") as f:
            f.write(b"ORIGINAL")
        dst = os.path.join(self.local, "dst")
        os.makedirs(os.path.join(dst, "photos"))
        os.symlink(os.path.join(outside, "victim"), os.path.join(dst, "photos", "a.jpg"))
        os.symlink(outside, os.path.join(dst, "photos", "sub"))
        os.symlink(outside, os.path.join(dst, "album"))
        got = self.ferry("--json", "get", "-r", "photos", "album", "-C", dst, server=server)
        self.assertEqual(got.returncode, 3, got.stderr)  # local_io
        self.assertIn(b"symbolic link", got.stdout + got.stderr)
        self.assertEqual(tree(outside), {"victim": b"ORIGINAL"})
        self.assertTrue(os.path.islink(os.path.join(dst, "photos", "a.jpg")))
        self.assertTrue(os.path.islink(os.path.join(dst, "album")))

    def test_a_get_of_more_folders_than_open_files_allowed_finishes(self):
        # A get plans all its files before the first request; a descriptor
        # held per folder from the plan on would fail every file past the
        # process's descriptor limit (RLIMIT_NOFILE, soft and hard): a tree
        # of many folders, and many typed names (each walked on its own).
        server = self.start_server()
        count = 600
        make_tree(self.root, {"t/d%03d/f" % i: b"%d" % i for i in range(count)})
        make_tree(self.root, {"n%03d" % i: b"n%d" % i for i in range(count)})
        os.makedirs(os.path.join(self.local, "down"))

        def ferry_limited(*args):
            return subprocess.run(
                [test_cli.FERRY, "--server", server] + list(args), cwd=self.local, env=self.env,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)))

        got = ferry_limited("get", "-r", "t")
        self.assertEqual(got.returncode, 0, got.stderr[-2000:])
        self.assertEqual(len(os.listdir(os.path.join(self.local, "t"))), count)
        self.assertEqual(open(os.path.join(self.local, "t", "d599", "f"), "rb").read(), b"599")
        got = ferry_limited("get", *["n%03d" % i for i in range(count)], "-C", "down")
        self.assertEqual(got.returncode, 0, got.stderr[-2000:])
        self.assertEqual(len(os.listdir(os.path.join(self.local, "down"))), count)
        self.assertEqual(open(os.path.join(self.local, "down", "n599"), "rb").read(), b"n599")

    def test_a_deep_local_tree_under_a_low_descriptor_limit(self):
        # Attack round 18, finding 3: the local walk held one descriptor a
        # level, so put -r and sync push of a 40-deep tree failed past depth
        # N-6, saying "Bad file descriptor" (a close(-1) after the failed
        # dup). The walk now holds a share of the limit, whatever the depth,
        # and a failure says its own errno.
        server = self.start_server()
        files = {}
        path = "up"
        for depth in range(1, 41):
            path += "/l%d" % depth
            for f in range(3):
                files["%s/f%d" % (path, f)] = b"%d %d" % (depth, f)
        make_tree(self.local, files)

        def ferry_limited(limit, *args):
            return subprocess.run(
                [test_cli.FERRY, "--server", server, "--no-progress"] + list(args), cwd=self.local, env=self.env,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))

        want = tree(os.path.join(self.local, "up"))
        for limit in (10, 16):
            got = ferry_limited(limit, "put", "-r", "up", "-C", "p%d" % limit)
            self.assertEqual(got.returncode, 0, (limit, got.stderr[-2000:]))
            self.assertEqual(tree(os.path.join(self.root, "p%d" % limit, "up")), want, limit)
            got = ferry_limited(limit, "sync", "up", ":s%d" % limit)
            self.assertEqual(got.returncode, 0, (limit, got.stderr[-2000:]))
            self.assertEqual(tree(os.path.join(self.root, "s%d" % limit)), want, limit)
        got = ferry_limited(6, "put", "-r", "up", "-C", "p6")
        self.assertEqual(got.returncode, 3, got.stderr)
        self.assertIn(b"Too many open files", got.stderr)
        self.assertNotIn(b"Bad file descriptor", got.stderr)

    def test_a_low_descriptor_limit_slows_a_tree_but_fails_no_file(self):
        # Every bound of what a command holds open side by side (a publish
        # batch's parts, the folders kept, gets ahead, sync's connections)
        # comes from RLIMIT_NOFILE: under a hard limit of 32, 20 and 16 a
        # get -r, a sync pull and a sync push of 300 files in 30 folders
        # move every file (before: most failed with EMFILE).
        server = self.start_server()
        files = {"t/d%02d/f%02d" % (d, f): os.urandom(100 + 37 * f) for d in range(30) for f in range(10)}
        make_tree(self.root, files)
        want = {k[2:]: v for k, v in files.items()}
        want.update({"d%02d" % d: None for d in range(30)})

        for limit in (32, 20, 16):
            def ferry_limited(*args):
                return subprocess.run(
                    [test_cli.FERRY, "--server", server] + list(args), cwd=self.local, env=self.env,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                    preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))

            got = ferry_limited("--json", "get", "-r", "t", "-C", "g%d" % limit)
            self.assertEqual(got.returncode, 0, (limit, got.stderr[-2000:]))
            self.assertEqual(self.json_of(got)["summary"]["ok"], 300, limit)
            self.assertEqual(tree(os.path.join(self.local, "g%d" % limit, "t")), want, limit)
            pulled = os.path.join(self.local, "s%d" % limit)
            got = ferry_limited("sync", ":t", pulled)
            self.assertEqual(got.returncode, 0, (limit, got.stderr[-2000:]))
            self.assertEqual(tree(pulled), want, limit)
            got = ferry_limited("sync", pulled, ":pushed%d" % limit)
            self.assertEqual(got.returncode, 0, (limit, got.stderr[-2000:]))
            self.assertEqual(tree(os.path.join(self.root, "pushed%d" % limit)), want, limit)

    def test_get_r_counts_a_refused_folder_apart_from_the_files(self):
        # A folder that cannot be made (a link stands at its local name) is
        # no file: --json counts and lists files only, and the folder, with
        # the folders below it, under failed_folders; its files fail each.
        server = self.start_server()
        make_tree(self.root, {"logs/f1": b"1", "logs/a/f2": b"2", "logs/a/b/f3": b"3", "logs/a/b/c/f5": b"5"},
                  folders=["logs/a/b/e"])
        outside = os.path.join(self.dir, "outside")
        os.makedirs(outside)
        dst = os.path.join(self.local, "dst")
        os.makedirs(os.path.join(dst, "logs", "a"))
        os.symlink(outside, os.path.join(dst, "logs", "a", "b"))
        got = self.ferry("--json", "get", "-r", "logs", "-C", dst, server=server)
        self.assertEqual(got.returncode, 3, got.stderr)  # local_io
        output = self.json_of(got)
        schema_for("transfer").validate(output)
        self.assertEqual(sorted(f["name"] for f in output["files"]),
                         ["logs/a/b/c/f5", "logs/a/b/f3", "logs/a/f2", "logs/f1"])
        self.assertEqual({k: output["summary"][k] for k in ("files", "ok", "failed", "failed_folders")},
                         {"files": 4, "ok": 2, "failed": 2, "failed_folders": 3})
        self.assertEqual([f["name"] for f in output["failed_folders"]], ["logs/a/b", "logs/a/b/c", "logs/a/b/e"])
        self.assertEqual(output["failed_folders"][0]["local"], os.path.join(dst, "logs", "a", "b"))
        self.assertIn("symbolic link", output["failed_folders"][0]["error"]["message"])
        self.assertEqual(output["error"]["code"], "local_io")
        self.assertEqual(os.listdir(outside), [])
        # For people: the folder's error, and the closing line counts it apart.
        again = self.ferry("get", "-r", "logs", "-C", dst, server=server)
        self.assertEqual(again.returncode, 3, again.stderr)
        self.assertIn(b'"logs/a/b": ', again.stderr)
        self.assertIn(b"4 files: 2 received, 2 failed; 3 folders failed;", again.stdout)

        # The tree's own folder refused: every file fails, no folder is one of them.
        top = os.path.join(self.local, "top")
        os.makedirs(top)
        os.symlink(outside, os.path.join(top, "logs"))
        whole = self.json_of(self.ferry("--json", "get", "-r", "logs", "-C", top, server=server))
        schema_for("transfer").validate(whole)
        self.assertEqual((whole["summary"]["files"], whole["summary"]["failed"]), (4, 4))
        self.assertEqual(whole["failed_folders"][0]["name"], "logs")
        self.assertEqual(sorted(f["name"] for f in whole["failed_folders"]),
                         ["logs", "logs/a", "logs/a/b", "logs/a/b/c", "logs/a/b/e"])
        self.assertEqual(os.listdir(outside), [])

    def test_put_r_counts_a_folder_the_server_refused_apart_from_the_files(self):
        server = self.start_server()
        make_tree(self.root, {"up/hollow": b"a file on the server"})
        make_tree(os.path.join(self.local, "up"), {"a.txt": b"a"}, folders=["hollow"])
        got = self.ferry("--json", "put", "-r", "up", server=server)
        self.assertNotEqual(got.returncode, 0, got.stderr)
        output = self.json_of(got)
        schema_for("transfer").validate(output)
        self.assertEqual([f["name"] for f in output["files"]], ["up/a.txt"])
        self.assertEqual((output["summary"]["files"], output["summary"]["failed"]), (1, 0))
        self.assertEqual([(f["name"], f["local"]) for f in output["failed_folders"]], [("up/hollow", "up/hollow")])
        self.assertIn("error", output)

    def test_put_r_syncs_each_folder_once_per_sync_request_not_once_per_file(self):
        """put -r's commits ask the server to defer their folder's fsync, and the connection's sync request
        (every 64 files, and at the end) makes them durable (PROTOCOL.md 4.14): here 70 files in 2 folders,
        two syncs, so at most 4 folder fsyncs where one per commit made 70; every file reported."""
        log = os.path.join(self.dir, "fsyncs")
        self.server = harness.Server(test_cli.FERRYD, self.root,
                                     env=test_cli.preloaded(dict(os.environ), self.fault_library(),
                                                            FERRY_FSYNC_LOG=log))
        make_tree(os.path.join(self.local, "up"),
                  {f"{folder}/f{index:02}.txt": b"%d" % index for folder in "ab" for index in range(35)})
        got = self.ferry("--json", "put", "-r", "up", server=self.server.address)
        self.assertEqual(got.returncode, 0, got.stderr)
        output = self.json_of(got)
        self.assertEqual((output["summary"]["files"], output["summary"]["ok"]), (70, 70), output["summary"])
        with open(log) as f:
            synced = f.read().splitlines()
        folders = [os.path.join(os.path.realpath(self.root), "up", name) for name in "ab"]
        self.assertLessEqual(sum(synced.count(folder) for folder in folders), 4, synced[-16:])
        for folder in folders:
            self.assertIn(folder, synced)

    def test_put_r_with_a_folder_whose_sync_fails_fails_only_its_files_after_a_retry(self):
        """A failed sync fails its whole batch; the retry commits without deferring, so only the failing
        folder's files stay failed (round 81: every retry met the bad folder in the same batch again)."""
        self.server = harness.Server(test_cli.FERRYD, self.root,
                                     env=test_cli.preloaded(dict(os.environ), self.fault_library(),
                                                            FERRY_FSYNC_FAULT_PATH=os.path.join(
                                                                os.path.realpath(self.root), "up", "b")))
        make_tree(os.path.join(self.local, "up"),
                  {f"{folder}/f{index:02}.txt": b"%d" % index for folder in "abc" for index in range(10)})
        got = self.ferry("--json", "--retry", "1", "put", "-r", "up", server=self.server.address)
        self.assertEqual(got.returncode, 6, got.stderr)
        output = self.json_of(got)
        failed = sorted(f["name"] for f in output["files"] if "error" in f)
        self.assertEqual(failed, [f"up/b/f{index:02}.txt" for index in range(10)], output["summary"])
        self.assertEqual(output["summary"]["ok"], 20, output["summary"])

    def test_put_r_onto_a_file_where_the_tree_has_a_folder_is_one_failed_folder(self):
        # Round 53b (low): the server's file tp/f where the tree t4 has the
        # folder f gave one not_a_folder line per file below it, and the
        # empty folder below it was the failed folder. As get -r, and as
        # README says: one failed folder, tp/f, and nothing below it a line.
        server = self.start_server()
        make_tree(self.root, {"tp/f": b"a file on the server", "tq": b"another"})
        make_tree(os.path.join(self.local, "t4"), {"f/in": b"1", "f/deeper/in2": b"2", "ok.txt": b"o"},
                  folders=["f/emp"])
        text = self.ferry("put", "-r", "t4", "--as", "tp", server=server)
        self.assertEqual(text.returncode, 4, text.stderr)
        lines = [l for l in text.stderr.decode().splitlines() if l.startswith("ferry: ")]
        self.assertEqual(lines, ['ferry: not_a_folder: "tp/f" is not a folder on the server, where "t4/f" is one: '
                                 'nothing in it was sent'], text.stderr)
        output = self.json_of(self.ferry("--json", "put", "-r", "t4", "--as", "tp", server=server))
        schema_for("transfer").validate(output)
        self.assertEqual([(f["name"], f["local"], f["error"]["code"]) for f in output["failed_folders"]][0],
                         ("tp/f", "t4/f", "not_a_folder"), output)
        self.assertEqual(sorted((f["name"], f.get("error", {}).get("code")) for f in output["files"]),
                         [("tp/f/deeper/in2", "not_a_folder"), ("tp/f/in", "not_a_folder"), ("tp/ok.txt", None)])
        # The tree's own top: the whole tree is that one folder's failure.
        top = self.ferry("put", "-r", "t4", "--as", "tq", server=server)
        lines = [l for l in top.stderr.decode().splitlines() if l.startswith("ferry: ")]
        self.assertEqual(lines, ['ferry: not_a_folder: "tq" is not a folder on the server, where "t4" is one: '
                                 'nothing in it was sent'], top.stderr)
        with open(os.path.join(self.root, "tp", "f"), "rb") as f:
            self.assertEqual(f.read(), b"a file on the server")

    def test_a_put_of_files_into_a_file_on_the_server_fails_each_file_not_a_folder(self):
        # Round 72's trial, item 5: `put ../work/a.txt -C c.txt`, c.txt a file
        # on the server, blamed the local "../work" as a folder that "is
        # one" and counted a failed folder, though no tree was being copied;
        # the same put of a bare a.txt said only that c.txt is not a folder.
        server = self.start_server()
        make_tree(self.root, {"c.txt": b"a file on the server"})
        make_tree(os.path.join(self.local, "work"), {"a.txt": b"a", "sub/b.txt": b"b"})
        for locals_ in (["work/a.txt"], [os.path.join(self.local, "work", "a.txt")], ["work/sub/b.txt", "work/a.txt"]):
            with self.subTest(locals_=locals_):
                text = self.ferry("put", *locals_, "-C", "c.txt", server=server)
                self.assertEqual(text.returncode, 4, text.stderr)
                lines = [l for l in text.stderr.decode().splitlines() if l.startswith("ferry: ")]
                self.assertEqual(len(lines), len(locals_), text.stderr)   # one line per file
                for line in lines:
                    self.assertTrue(line.startswith("ferry: not_a_folder: "), line)
                    self.assertTrue(line.endswith('"c.txt" is not a folder'), line)
                self.assertNotIn(b"work", text.stderr)
                self.assertNotIn(b"folder failed", text.stderr)
                output = self.json_of(self.ferry("--json", "put", *locals_, "-C", "c.txt", server=server))
                schema_for("transfer").validate(output)
                self.assertNotIn("failed_folders", output)
                self.assertEqual(sorted((f["name"], f["error"]["code"]) for f in output["files"]),
                                 sorted(("c.txt/" + os.path.basename(l), "not_a_folder") for l in locals_))
        with open(os.path.join(self.root, "c.txt"), "rb") as f:
            self.assertEqual(f.read(), b"a file on the server")

    def check_refused_part(self, words, shown, part, kind, victim):
        mode = os.lstat(part).st_mode
        got = self.ferry(*words, server=self.server.address, timeout=30)
        self.assertEqual(got.returncode, 3, got.stderr)  # local_io
        self.assertIn(('"%s", the name this download\'s partial file goes by, is %s: ferry neither '
                       'follows nor replaces it; remove it or move it away, then get the file again'
                       % (shown, kind)).encode(), got.stderr)
        self.assertEqual(os.lstat(part).st_mode, mode, "replaced")
        with open(victim, "rb") as f:
            self.assertEqual(f.read(), b"ORIGINAL", "followed")
        self.assertFalse(os.path.exists(part[:-len(".ferry-part")]))
        # Under --json the same words, with the code.
        got = self.json_of(self.ferry("--json", *words, server=self.server.address, timeout=30))
        self.assertEqual(got["files"][0]["error"]["code"], "local_io")
        self.assertIn("neither follows nor replaces it", got["files"][0]["error"]["message"])

    def test_what_stands_at_a_partial_name_is_refused_unfollowed_with_what_to_do(self):
        # A download writes NAME.ferry-part first. A symbolic link, FIFO,
        # socket or folder standing at that name is neither followed nor
        # opened nor replaced; the message names it and says what to do
        # (it said "Too many levels of symbolic links" or "No such device
        # or address").
        server = self.start_server()
        make_tree(self.root, {"data.bin": b"server bytes", "tree/in.bin": b"in the tree"})
        outside = os.path.join(self.dir, "outside")
        os.makedirs(outside)
        victim = os.path.join(outside, "victim")
        self.write(victim, b"ORIGINAL")
        os.makedirs(os.path.join(self.local, "got", "tree"))

        def plant(path, kind):
            if kind == "a symbolic link":
                os.symlink(victim, path)
            elif kind == "a FIFO":
                os.mkfifo(path)
            elif kind == "a socket":
                sock = socket.socket(socket.AF_UNIX)
                sock.bind(path)
                sock.close()
            else:
                os.mkdir(path)

        for kind in ("a symbolic link", "a FIFO", "a socket", "a folder"):
            for words, shown, part in (
                    (["get", "data.bin"], "data.bin.ferry-part", os.path.join(self.local, "data.bin.ferry-part")),
                    (["get", "-r", "tree", "-C", "got"], "got/tree/in.bin.ferry-part",
                     os.path.join(self.local, "got", "tree", "in.bin.ferry-part"))):
                with self.subTest(kind=kind, words=words):
                    plant(part, kind)
                    try:
                        self.check_refused_part(words, shown, part, kind, victim)
                    finally:
                        if os.path.isdir(part) and not os.path.islink(part):
                            os.rmdir(part)
                        else:
                            os.remove(part)
        # Once it is gone, the get goes through.
        got = self.ferry("get", "data.bin", server=server)
        self.assertEqual(got.returncode, 0, got.stderr)
        with open(os.path.join(self.local, "data.bin"), "rb") as f:
            self.assertEqual(f.read(), b"server bytes")

    def test_put_r_follows_no_link_not_even_the_one_it_is_given(self):
        server = self.start_server()
        outside = os.path.join(self.dir, "outside")
        make_tree(outside, {"secret.txt": b"secret"})
        os.symlink(outside, os.path.join(self.local, "ltlink"))
        put = self.ferry("put", "-r", "ltlink", server=server)
        self.assertEqual(put.returncode, 3, put.stderr)  # local_io
        self.assertIn(b"symbolic link", put.stderr)
        self.assertEqual(tree(self.root), {})
        # With its slash, the name is the folder the link leads to.
        put = self.ferry("put", "-r", "ltlink/", server=server)
        self.assertEqual(put.returncode, 0, put.stderr)
        self.assertEqual(tree(self.root), {"ltlink": None, "ltlink/secret.txt": b"secret"})
        # Round 49: "ltlink/." went up under the target's name ("outside"),
        # into whatever the server holds by that name; it is the link's.
        put = self.ferry("put", "-r", "ltlink/.", "-C", "dot", server=server)
        self.assertEqual(put.returncode, 0, put.stderr)
        self.assertEqual(tree(os.path.join(self.root, "dot")), {"ltlink": None, "ltlink/secret.txt": b"secret"})
        shutil.rmtree(os.path.join(self.root, "dot"))
        # Round 48: a link to a file, or to nothing, given to put -r was
        # followed (README: a link named on the command line is refused).
        os.symlink(os.path.join(outside, "secret.txt"), os.path.join(self.local, "filelink"))
        os.symlink("nowhere", os.path.join(self.local, "dangling"))
        os.mkfifo(os.path.join(self.local, "fifo"))
        os.symlink("fifo", os.path.join(self.local, "fifolink"))
        os.symlink("loop2", os.path.join(self.local, "loop1"))
        os.symlink("loop1", os.path.join(self.local, "loop2"))
        for name, why in (("filelink", "put without -r sends the file it leads to"),
                          ("dangling", "it leads to nothing"),
                          # Round 49: no advice that then fails, and a loop said as one.
                          ("fifolink", "it leads to no regular file, which put does not send"),
                          ("loop1", "it cannot be followed: Too many levels of symbolic links")):
            with self.subTest(name=name):
                put = self.ferry("put", "-r", name, "-C", "links", server=server)
                self.assertEqual(put.returncode, 3, put.stderr)  # local_io
                self.assertIn('"%s" is a symbolic link: put -r follows none; %s' % (name, why), put.stderr.decode())
        self.assertFalse(os.path.exists(os.path.join(self.root, "links")))
        plain = self.ferry("put", "filelink", "-C", "plain", server=server)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        self.assertEqual(tree(os.path.join(self.root, "plain")), {"filelink": b"secret"})

    def as_other(self, *args, server, umask=None):
        """ferry run as uid 1234, whose folders here root does not read for it (under `umask` when given)."""
        os.chmod(self.dir, 0o755)
        os.chmod(self.local, 0o777)
        argv = ["setpriv", "--reuid", "1234", "--regid", "1234", "--clear-groups"]
        if umask is not None:
            argv += ["sh", "-c", 'umask %s && exec "$0" "$@"' % umask]
        argv += [test_cli.FERRY, "--server", server, *args]
        return subprocess.run(argv, cwd=self.local, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=60)

    def test_a_default_config_file_out_of_reach_is_no_error(self):
        # Attack round 73: the check that a file FERRY_CONFIG names must be
        # there also refused a default file this user may not read (a HOME
        # of another user's): that one means nothing configured, as before.
        server = self.start_server()
        config = os.path.join(self.dir, "config")
        os.makedirs(os.path.join(config, "ferry"), exist_ok=True)
        self.write(os.path.join(config, "ferry", "config.toml"), b'default = "elsewhere"\n')
        os.chmod(config, 0o700)
        listed = self.as_other("ls", server=server)
        self.assertEqual(listed.returncode, 0, listed.stderr)

    def test_a_publish_refused_after_the_part_took_its_targets_mode_leaves_it_private(self):
        # A 0666 target of root's in a sticky 1777 folder: uid 1234 may not
        # rename over it (EPERM). The verified part had taken the target's
        # 0666 for the rename, and was left world-writable.
        server = self.start_server()
        self.write(os.path.join(self.root, "f"), b"the server's bytes " * 100)
        shared = os.path.join(self.local, "sh")
        os.mkdir(shared)
        os.chmod(shared, 0o1777)
        target = os.path.join(shared, "f")
        self.write(target, b"ROOT'S FILE")
        os.chmod(target, 0o666)
        for attempt in (1, 2):
            got = self.as_other("--no-progress", "get", "f", "-C", "sh", server=server)
            self.assertEqual(got.returncode, 3, got.stderr)  # local_io
            self.assertIn(b"Operation not permitted", got.stderr)
            with open(target, "rb") as f:
                self.assertEqual(f.read(), b"ROOT'S FILE")
            part = os.path.join(shared, "f.ferry-part")
            st = os.lstat(part)
            self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode) & 0o077), (1234, 0), (attempt, oct(st.st_mode)))
            try:
                os.getxattr(part, "system.posix_acl_access", follow_symlinks=False)
                self.fail("the part kept an access ACL")
            except OSError:
                pass

    def test_a_user_replaces_a_read_only_file_of_their_own_and_makes_files_under_a_umask_without_u_w(self):
        """Attack round 21, F1: the part was made with the published mode's
        owner bits, 0400 for a 0444 target or under umask 0222, and setting
        ferry's mark on it needs write permission: every such get failed with
        "cannot mark ... as a partial download" for anyone but root. The part
        is now its owner's 0600 while it downloads; the file still gets the
        replaced file's mode (or 0666 less the umask), and no mark."""
        server = self.start_server()
        self.write(os.path.join(self.root, "f"), b"the server's bytes " * 100)
        os.mkdir(os.path.join(self.root, "t"))
        self.write(os.path.join(self.root, "t", "a"), b"tree a")
        mine = os.path.join(self.local, "mine")
        os.mkdir(mine)
        os.chown(mine, 1234, 1234)
        target = os.path.join(mine, "f")
        self.write(target, b"old")
        os.chown(target, 1234, 1234)
        os.chmod(target, 0o444)
        got = self.as_other("--no-progress", "get", "f", "-C", "mine", server=server)
        self.assertEqual(got.returncode, 0, got.stderr)
        with open(target, "rb") as f:
            self.assertEqual(f.read(), b"the server's bytes " * 100)
        st = os.lstat(target)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (1234, 0o444))
        with self.assertRaises(OSError):
            os.getxattr(target, "user.ferry.part", follow_symlinks=False)
        self.assertEqual(sorted(os.listdir(mine)), ["f"])

        for umask, mode in (("0222", 0o444), ("0277", 0o400), ("0577", 0o200)):
            with self.subTest(umask=umask):
                into = "u" + umask
                os.mkdir(os.path.join(mine, into))
                os.chown(os.path.join(mine, into), 1234, 1234)
                got = self.as_other("--no-progress", "get", "f", "t/a", "-C", "mine/" + into, server=server,
                                    umask=umask)
                self.assertEqual(got.returncode, 0, got.stderr)
                for name, data in (("f", b"the server's bytes " * 100), ("a", b"tree a")):
                    path = os.path.join(mine, into, name)
                    with open(path, "rb") as f:
                        self.assertEqual(f.read(), data)
                    self.assertEqual(stat.S_IMODE(os.lstat(path).st_mode), mode, name)
                self.assertEqual(sorted(os.listdir(os.path.join(mine, into))), ["a", "f"])
                # A tree: the folders it makes get the owner's read, write
                # and search bits back (they were 0555 under umask 0222, 0200
                # under 0577, and nothing could be written in them).
                tree_got = self.as_other("--no-progress", "get", "-r", "t", "-C", "mine/" + into + "/deep/er",
                                         server=server, umask=umask)
                self.assertEqual(tree_got.returncode, 0, tree_got.stderr)
                with open(os.path.join(mine, into, "deep", "er", "t", "a"), "rb") as f:
                    self.assertEqual(f.read(), b"tree a")
                for folder in ("deep", "deep/er", "deep/er/t"):
                    folder_mode = stat.S_IMODE(os.lstat(os.path.join(mine, into, folder)).st_mode)
                    self.assertEqual(folder_mode & 0o700, 0o700, (folder, oct(folder_mode)))
                    self.assertEqual(folder_mode & 0o022, 0, (folder, oct(folder_mode)))

    def test_put_r_fails_a_folder_it_cannot_read_as_a_folder(self):
        # It was a note, exit status 0, and --json said failed: 0 without
        # naming it; then it failed among the files, counted as a file. A
        # folder is no file: counted and listed as a failed folder.
        server = self.start_server()
        top = os.path.join(self.local, "tree")
        make_tree(top, {"ok.txt": b"ok", "noread/important": b"z", "a/locked/deep/y": b"y", "a/seen.txt": b"s"})
        for folder, folders, files in os.walk(top):
            for name in [folder] + [os.path.join(folder, n) for n in folders + files]:
                os.lchown(name, 1234, 1234)
        os.chmod(os.path.join(top, "noread"), 0o000)
        os.chmod(os.path.join(top, "a", "locked"), 0o000)
        put = self.as_other("put", "-r", "tree", "-C", "one", server=server)
        self.assertEqual(put.returncode, 3, put.stderr)
        # Named where they stand, on this machine (a new user's trial, round
        # 72, saw the server paths one/tree/noread...).
        self.assertIn(b'ferry: local_io: "tree/noread": cannot open the folder: Permission denied', put.stderr)
        self.assertIn(b'ferry: local_io: "tree/a/locked": cannot open the folder', put.stderr)
        self.assertIn(b"2 files: 2 sent, 0 failed; 2 folders failed;", put.stdout)
        put = self.json_of(self.as_other("--json", "put", "-r", "tree", "-C", "two", server=server))
        schema_for("transfer").validate(put)
        self.assertEqual({k: put["summary"][k] for k in ("files", "ok", "failed", "failed_folders")},
                         {"files": 2, "ok": 2, "failed": 0, "failed_folders": 2}, put)
        self.assertEqual(sorted(f["name"] for f in put["files"]), ["two/tree/a/seen.txt", "two/tree/ok.txt"])
        self.assertEqual(sorted((f["local"], f["name"], f["error"]["code"]) for f in put["failed_folders"]),
                         [("tree/a/locked", "two/tree/a/locked", "local_io"),
                          ("tree/noread", "two/tree/noread", "local_io")])
        self.assertEqual(put["error"]["code"], "local_io")
        # Not "0 of 2 files failed and 2 folders failed" (round 47).
        self.assertTrue(put["error"]["message"].startswith("2 folders failed; first "), put["error"])
        self.assertEqual(tree(os.path.join(self.root, "two")),
                         {"tree": None, "tree/a": None, "tree/ok.txt": b"ok", "tree/a/seen.txt": b"s"})
        # sync's push names each such folder as one error, counts no file for it.
        pushed = self.json_of(self.as_other("--json", "sync", "tree", ":three", server=server))
        schema_for("sync").validate(pushed)
        self.assertEqual(pushed["sync"]["sent"], 2, pushed)
        self.assertEqual(sorted((e["path"], e["code"]) for e in pushed["sync"]["errors"]),
                         [("a/locked", "local_io"), ("noread", "local_io")])
        self.assertTrue(all("cannot open the folder" in e["message"] for e in pushed["sync"]["errors"]), pushed)

    def test_get_r_fails_a_folder_the_server_cannot_list_as_a_folder(self):
        # ferryd as uid 1234, which may not read top/secret: get -r of it
        # counted it as a failed file.
        make_tree(self.root, {"top/a/x": b"x", "top/secret/y": b"y"})
        for folder, folders, files in os.walk(self.root):
            for name in [folder] + [os.path.join(folder, n) for n in folders + files]:
                os.lchown(name, 1234, 1234)
        os.chmod(os.path.join(self.root, "top", "secret"), 0o000)
        os.chmod(self.dir, 0o755)
        self.server = harness.Server(test_cli.FERRYD, self.root,
                                     preexec_fn=lambda: (os.setgroups([]), os.setgid(1234), os.setuid(1234)))
        got = self.ferry("--json", "get", "-r", "top/secret", "top/a", "-C", "down", server=self.server.address)
        self.assertEqual(got.returncode, 4, got.stderr)  # forbidden
        out = self.json_of(got)
        schema_for("transfer").validate(out)
        self.assertEqual({k: out["summary"][k] for k in ("files", "ok", "failed", "failed_folders")},
                         {"files": 1, "ok": 1, "failed": 0, "failed_folders": 1}, out)
        self.assertEqual([(f["name"], f["local"], f["error"]["code"]) for f in out["failed_folders"]],
                         [("top/secret", "down/secret", "forbidden")])
        text = self.ferry("get", "-r", "top/secret", "-C", "again", server=self.server.address)
        self.assertEqual(text.returncode, 4, text.stderr)
        self.assertIn(b"0 files: 0 received, 0 failed; 1 folder failed;", text.stdout)
        # A name the server does not have is still a failed file.
        missing = self.json_of(self.ferry("--json", "get", "-r", "top/nothere", server=self.server.address))
        self.assertEqual((missing["summary"]["failed"], "failed_folders" in missing), (1, False), missing)

    def test_a_folder_the_server_cannot_read_inside_a_tree_is_never_taken_for_an_empty_one(self):
        # ferryd as uid 1234, which may not enter top/secret (root's, 0700)
        # nor search top/a/nosearch (0600): get -r made them empty here and
        # exited 0, ls -r listed them as empty, rm -r of a wildcard's match
        # said nothing of them.
        make_tree(self.root, {"top/a/x": b"x", "top/secret/y": b"y", "top/secret/deeper/z": b"z",
                              "top/a/nosearch/n": b"n"})
        for folder, folders, files in os.walk(self.root):
            for name in [folder] + [os.path.join(folder, n) for n in folders + files]:
                os.lchown(name, 1234, 1234)
        os.chown(os.path.join(self.root, "top", "secret"), 0, 0)
        os.chmod(os.path.join(self.root, "top", "secret"), 0o700)
        os.chmod(os.path.join(self.root, "top", "a", "nosearch"), 0o600)
        os.chmod(self.dir, 0o755)
        self.server = harness.Server(test_cli.FERRYD, self.root,
                                     preexec_fn=lambda: (os.setgroups([]), os.setgid(1234), os.setuid(1234)))
        unread = [("top/a/nosearch", "forbidden"), ("top/secret", "forbidden")]
        got = self.ferry("--json", "get", "-r", "top", "-C", "down", server=self.server.address)
        self.assertEqual(got.returncode, 4, got.stderr)
        out = self.json_of(got)
        schema_for("transfer").validate(out)
        self.assertEqual({k: out["summary"][k] for k in ("files", "ok", "failed", "failed_folders")},
                         {"files": 1, "ok": 1, "failed": 0, "failed_folders": 2}, out)
        self.assertEqual(sorted((f["name"], f["error"]["code"]) for f in out["failed_folders"]), unread)
        self.assertEqual(sorted(f["local"] for f in out["failed_folders"]), ["down/top/a/nosearch", "down/top/secret"])
        text = self.ferry("get", "-r", "top", "-C", "again", server=self.server.address)
        self.assertEqual(text.returncode, 4, text.stderr)
        self.assertIn(b'the server could not read the folder "top/secret"', text.stderr)
        # Below a folder that could not be made here, an unread folder is
        # one entry, not two (round 46: "4 folders not made" for 3).
        make_tree(os.path.join(self.local, "blocked"), {"top/a": b"a file where the server has a folder"})
        out = self.json_of(self.ferry("--json", "get", "-r", "top", "-C", "blocked", server=self.server.address))
        self.assertEqual(sorted(f["name"] for f in out["failed_folders"]), ["top/a", "top/a/nosearch", "top/secret"])
        self.assertEqual(out["summary"]["failed_folders"], 3, out)
        # The shell names such a folder from its current folder, in the
        # line's message too (round 47: '"a/nosearch": the server could not
        # read the folder "top/a/nosearch"').
        shell = self.ferry(server=self.server.address, stdin=b"cd top\n-get -r a -C sh\n")
        lines = [line for line in shell.stderr.decode().splitlines() if "nosearch" in line]
        self.assertEqual(len(lines), 1, shell.stderr)
        self.assertTrue(lines[0].startswith('ferry: forbidden: the server could not read the folder "a/nosearch"'),
                        lines)
        # ls -r lists them, and then says it could not read them.
        listed = self.ferry("--json", "ls", "-r", "top", server=self.server.address)
        self.assertEqual(listed.returncode, 4, listed.stderr)
        out = self.json_of(listed)
        schema_for("list").validate(out)
        self.assertIn("secret", [f["name"] for f in out["files"]])
        self.assertEqual(sorted((f["path"], f["error"]["code"]) for f in out["failed_folders"]),
                         [("a/nosearch", "forbidden"), ("secret", "forbidden")])
        text = self.ferry("ls", "-r", "top", server=self.server.address)
        self.assertEqual(text.returncode, 4, text.stderr)
        self.assertIn(b"secret/", text.stdout)
        self.assertIn(b'ferry: forbidden: the server could not read the folder "top/secret"', text.stderr)
        # A wildcard over several components cannot know all its matches.
        got = self.ferry("get", "top/*/y", "-C", "wild", server=self.server.address)
        self.assertEqual(got.returncode, 4, got.stderr)
        self.assertIn(b"ferry: forbidden: the server could not read the folder", got.stderr)
        self.assertIn(b"the wildcard's matches are not all known", got.stderr)
        # rm -r of a wildcard's match removes what was listed, keeps the
        # unread folders and those above them, and says so.
        got = self.ferry("--json", "rm", "-r", "to*", server=self.server.address)
        self.assertEqual(got.returncode, 4, got.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.root, "top", "a", "x")))
        self.assertTrue(os.path.exists(os.path.join(self.root, "top", "secret", "deeper", "z")))
        os.chmod(os.path.join(self.root, "top", "a", "nosearch"), 0o700)
        self.assertTrue(os.path.exists(os.path.join(self.root, "top", "a", "nosearch", "n")))

    def test_get_p_and_put_p_say_when_a_time_could_not_be_kept(self):
        # ext4 clamps a time past 2446: -p reports it (round 12), never hides it.
        far, ext4_max = 2**62, 15_032_385_535
        roomy = harness.mount_scratch(self, "tmpfs")  # holds every 64-bit time
        narrow = harness.mount_scratch(self, "ext4")
        make_tree(roomy, {"far.bin": b"far"})
        os.utime(os.path.join(roomy, "far.bin"), (0, far))
        self.server = harness.Server(test_cli.FERRYD, roomy)
        got = self.ferry("--json", "get", "-p", "far.bin", "-o", os.path.join(narrow, "far.bin"),
                         server=self.server.address)
        self.assertEqual(got.returncode, 0, got.stderr)
        out = self.json_of(got)
        schema_for("transfer").validate(out)
        self.assertEqual(int(os.stat(os.path.join(narrow, "far.bin")).st_mtime), ext4_max)
        self.assertEqual(len(out["notes"]), 1, out)
        self.assertIn('"far.bin": its modification time %d' % far, out["notes"][0])
        self.assertIn("the file system here holds %d" % ext4_max, out["notes"][0])
        text = self.ferry("get", "-p", "far.bin", "-o", os.path.join(narrow, "again.bin"), server=self.server.address)
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn(b"ferry: note: \"far.bin\": its modification time", text.stderr)
        # Without -p no time is asked, and nothing is said.
        plain = self.json_of(self.ferry("--json", "get", "far.bin", "-o", os.path.join(narrow, "plain.bin"),
                                        server=self.server.address))
        self.assertNotIn("notes", plain)
        # A time the server's file system clamps: its commit reply says what it holds.
        self.server.stop()
        served = os.path.join(narrow, "served")
        os.mkdir(served)
        self.server = harness.Server(test_cli.FERRYD, served)
        put = self.ferry("--json", "put", "-p", os.path.join(roomy, "far.bin"), server=self.server.address)
        self.assertEqual(put.returncode, 0, put.stderr)
        out = self.json_of(put)
        schema_for("transfer").validate(out)
        self.assertEqual(int(os.stat(os.path.join(served, "far.bin")).st_mtime), ext4_max)
        self.assertEqual(len(out["notes"]), 1, out)
        self.assertIn("the file system on the server holds %d" % ext4_max, out["notes"][0])
        # A time it holds: no note.
        os.utime(os.path.join(roomy, "far.bin"), (0, 1_700_000_000))
        kept = self.json_of(self.ferry("--json", "put", "-p", os.path.join(roomy, "far.bin"), "--as", "kept.bin",
                                       server=self.server.address))
        self.assertNotIn("notes", kept)

    def test_put_r_json_carries_the_notes_of_what_it_leaves_out(self):
        # --json dropped every skip note: a link, a FIFO, a hidden name left no trace.
        server = self.start_server()
        top = os.path.join(self.local, "tree")
        make_tree(top, {"a": b"a", ".h": b"h"})
        os.symlink("a", os.path.join(top, "l"))
        os.mkfifo(os.path.join(top, "p"))
        put = self.ferry("--json", "put", "-r", "tree", server=server)
        self.assertEqual(put.returncode, 0, put.stderr)
        self.assertEqual(put.stderr, b"")
        out = self.json_of(put)
        schema_for("transfer").validate(out)
        notes = out["notes"]
        self.assertEqual(len(notes), 3, notes)
        for name, why in (("tree/.h", "name"), ("tree/l", "symbolic link"), ("tree/p", "not a regular file")):
            self.assertTrue(any(n.startswith('%s: ' % name) and why in n and n.endswith(", not sent") for n in notes),
                            (name, notes))
        # For people they stay notes on stderr, one each.
        put = self.ferry("put", "-r", "tree", "-C", "again", server=server)
        self.assertEqual(put.returncode, 0, put.stderr)
        self.assertEqual(put.stderr.count(b"ferry: note: "), 3, put.stderr)
        # A clean run's shape is as it was: no notes field.
        os.unlink(os.path.join(top, "l"))
        os.unlink(os.path.join(top, "p"))
        os.unlink(os.path.join(top, ".h"))
        clean = self.json_of(self.ferry("--json", "put", "-r", "tree", "-C", "clean", server=server))
        self.assertNotIn("notes", clean)

    def test_a_read_only_server_refuses_each_writing_command_once_trying_nothing(self):
        # Hello says "access": "ro": put -r, mkdir and rm tried each entry and
        # printed one pathless "forbidden" line per entry.
        server = self.start_server("--read-only")
        make_tree(self.root, {"f": b"1", "d/g": b"2"})
        make_tree(os.path.join(self.local, "tree"), {"a": b"a", "s/b": b"b", "s/c": b"c"})
        before = tree(self.root)
        for args in (["put", "-r", "tree"], ["put", "tree/a", "tree/s/b"], ["mkdir", "x", "y"],
                     ["rm", "f", "d/g"], ["rm", "-r", "d", "f"], ["mv", "f", "g"]):
            run = self.ferry(*args, server=server)
            self.assertEqual(run.returncode, 4, (args, run.stderr))
            lines = run.stderr.decode().splitlines()
            self.assertEqual(len(lines), 1, (args, lines))
            self.assertTrue(lines[0].startswith("ferry: forbidden: the server lets this connection only read"),
                            (args, lines))
        put = self.json_of(self.ferry("--json", "put", "-r", "tree", server=server))
        schema_for("transfer").validate(put)
        self.assertEqual((put["error"]["code"], put["summary"]["failed"]), ("forbidden", 1), put)
        removed = self.json_of(self.ferry("--json", "rm", "f", "d/g", server=server))
        schema_for("paths").validate(removed)
        self.assertEqual([(f["path"], f["error"]["code"]) for f in removed["failed"]],
                         [("f", "forbidden"), ("d/g", "forbidden")], removed)
        self.assertEqual(tree(self.root), before)

    def test_mkdir_p_of_a_folder_that_is_there_is_no_error_on_a_read_only_server(self):
        # Round 46: mkdir -p of a folder that is there said "forbidden" on a
        # read-only server, where GNU mkdir -p on a read-only mount says
        # nothing and succeeds: nothing needs making. What would need
        # making is still refused.
        server = self.start_server("--read-only")
        make_tree(self.root, {"f": b"1", "d/sub/g": b"2"})
        before = tree(self.root)
        for paths in (["d"], ["d/sub", "d/"], ["d/sub/."], ["/"]):
            with self.subTest(paths=paths):
                run = self.ferry("mkdir", "-p", *paths, server=server)
                self.assertEqual(run.returncode, 0, (paths, run.stderr))
                self.assertEqual(run.stdout.decode().count("already there: "), len(paths), run.stdout)
        some = self.ferry("mkdir", "-p", "d", "new", "f", server=server)
        self.assertEqual(some.returncode, 4, some.stderr)
        self.assertIn(b"already there: d/", some.stdout)
        self.assertEqual([line.split(": the server")[0] for line in some.stderr.decode().splitlines()],
                         ['ferry: forbidden: "new"', 'ferry: exists: "f" already exists and is not a folder'],
                         some.stderr)
        made = self.json_of(self.ferry("--json", "mkdir", "-p", "d", "new", server=server))
        schema_for("paths").validate(made)
        self.assertEqual([f["path"] for f in made["failed"]], ["new"], made)
        self.assertEqual(made["error"]["code"], "forbidden", made)
        none = self.ferry("mkdir", "-p", "new", "x/y", server=server)
        self.assertEqual(none.returncode, 4, none.stderr)
        self.assertEqual(len(none.stderr.decode().splitlines()), 1, none.stderr)  # said once
        shell = self.ferry(server=server, stdin=b"cd d\nmkdir -p . sub\n")
        self.assertEqual(shell.returncode, 0, shell.stderr)
        # Round 48: the root from a shell's folder read "already there: //".
        root = self.ferry(server=server, stdin=b"cd d\nmkdir -p .. /\n")
        self.assertEqual(root.stdout, b"already there: /\n" * 2, root.stderr)
        # Round 48: a path that no server would make got "forbidden", which
        # sends the user after write access in vain: it gets the answer a
        # writable server gives.
        for path, said in (("f", 'ferry: exists: "f" already exists and is not a folder'),
                           ("f/x", 'ferry: not_a_folder: "f" is not a folder'),
                           # Round 49: "f/." is not_a_folder there, as it is on a writable server.
                           ("f/.", 'ferry: not_a_folder: "f" is a file, and a path ending in "/" or "/." names a folder'),
                           ("d/../..", 'ferry: invalid_name: "d/../.." climbs above the server\'s root'),
                           ("..", 'ferry: invalid_name: ".." climbs above the server\'s root')):
            for paths in ([path], [path, "d"]):
                with self.subTest(paths=paths):
                    run = self.ferry("mkdir", "-p", *paths, server=server)
                    self.assertEqual(run.returncode, 4, run.stderr)
                    self.assertEqual(run.stderr.decode().splitlines(), [said], run.stderr)
        # Round 49: a folder missing before a '..' is one -p would make.
        climbed = self.ferry("mkdir", "-p", "nope/../d", "d", server=server)
        self.assertEqual(climbed.returncode, 4, climbed.stderr)
        self.assertEqual(climbed.stdout, b"already there: d/\n")
        self.assertTrue(climbed.stderr.decode().startswith('ferry: forbidden: "nope/../d": the server lets'),
                        climbed.stderr)
        self.assertEqual(tree(self.root), before)

    def test_mkdir_on_a_read_only_server_answers_as_a_writable_one_wherever_nothing_is_made(self):
        # Round 49: a plain mkdir on a read-only server said "forbidden" for
        # a folder or file that is there, a missing parent, a file on the
        # way and '..' above the root, where a writable server (and Linux's
        # mkdir(2) on a read-only mount: EEXIST, ENOENT, ENOTDIR before
        # EROFS) names the real reason. Each path, with -p and without, and
        # in the shell, is answered by both servers on the same tree; only a
        # path a writable server would make is refused.
        def plant(base):
            make_tree(base, {"f": b"1", "d/sub/g": b"2"})
            os.mkfifo(os.path.join(base, "p"))
            os.symlink("d", os.path.join(base, "ld"))

        def names(base):
            return sorted((os.path.relpath(os.path.join(folder, name), base), os.lstat(os.path.join(folder, name)).st_mode)
                          for folder, folders, files in os.walk(base) for name in folders + files)

        plant(self.root)
        writable_root = os.path.join(self.dir, "writable")
        os.mkdir(writable_root)
        plant(writable_root)
        read_only = self.start_server("--read-only")
        writable = harness.Server(test_cli.FERRYD, writable_root)
        self.addCleanup(writable.stop)
        before = names(self.root)
        refused_everywhere = ["d", "d/", "d/sub", "f", "p", "ld", "f/x", "f/x/y", "ld/x", "p/x", "f/.", "d/.",
                              "d/sub/.", "new/.", "nope/x", "nope/y/z", "d/nope/x", "nope/../d", "..", "d/../..",
                              "/", "."]
        nothing_to_make = ["d", "d/", "d/sub", "d/.", "d/sub/.", "/", ".", "d/sub/..", "f", "p", "ld", "f/x",
                           "ld/x", "p/x", "f/.", "..", "d/../.."]
        cases = [[path] for path in refused_everywhere] + [[path, "d/sub"] for path in refused_everywhere]
        cases = [["mkdir"] + paths for paths in cases] + [["mkdir", "-p", path] for path in nothing_to_make]
        for argv in cases:
            with self.subTest(argv=argv):
                expected = self.ferry(*argv, server=writable.address)
                got = self.ferry(*argv, server=read_only)
                self.assertEqual((got.returncode, got.stdout, got.stderr),
                                 (expected.returncode, expected.stdout, expected.stderr))
                as_json = [self.json_of(self.ferry("--json", *argv, server=where))
                           for where in (writable.address, read_only)]
                self.assertEqual(as_json[0], as_json[1])
        script = b"cd d\n-mkdir sub\n-mkdir ../f sub/g/x\n-mkdir nope/x ../..\n-mkdir -p . ../f ..\n"
        shell = [self.ferry(server=where, stdin=script) for where in (read_only, writable.address)]
        self.assertEqual([(run.returncode, run.stdout, run.stderr) for run in shell][0],
                         [(run.returncode, run.stdout, run.stderr) for run in shell][1])
        self.assertEqual(len(shell[0].stderr.decode().splitlines()), 6, shell[0].stderr)
        self.assertEqual(names(writable_root), before)
        # What a writable server would make is refused: once when every
        # path needs making, else named beside the other paths' answers.
        for paths in (["new"], ["d/new", "d/sub/new"], ["-p", "new/x/y", "d/sub/new"]):
            with self.subTest(paths=paths):
                run = self.ferry("mkdir", *paths, server=read_only)
                self.assertEqual(run.returncode, 4, run.stderr)
                self.assertEqual(len(run.stderr.decode().splitlines()), 1, run.stderr)
                self.assertTrue(run.stderr.startswith(b"ferry: forbidden: the server lets"), run.stderr)
        mixed = self.ferry("mkdir", "new", "d", server=read_only)
        self.assertEqual(mixed.stderr.decode().splitlines(),
                         ['ferry: forbidden: "new": the server lets this connection only read (hello said '
                          '"access": "ro": a read-only server or token); nothing is made',
                          'ferry: exists: "d" already exists'])
        self.assertEqual(names(self.root), before)

    def test_put_of_a_fifo_is_refused_at_once(self):
        # Opening a FIFO for reading waited, beyond Ctrl-C and SIGTERM, for
        # a writer that never came.
        server = self.start_server()
        fifo = os.path.join(self.local, "pipe")
        os.mkfifo(fifo)
        put = self.ferry("put", fifo, "--as", "pipe.txt", server=server, timeout=20)
        self.assertEqual(put.returncode, 3, put.stderr)  # local_io
        self.assertIn(b"not a regular file", put.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.root, "pipe.txt")))

    def test_wildcards_match_the_servers_names(self):
        server = self.start_server()
        make_tree(self.root, {"logs/1.gz": b"1", "logs/2.gz": b"22", "logs/keep.txt": b"k",
                              "logs/old/3.gz": b"333", "a.txt": b"a", "b.txt": b"b"})
        got = self.ferry("get", "logs/*.gz", "-C", "gz", server=server)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertEqual(sorted(os.listdir(os.path.join(self.local, "gz"))), ["1.gz", "2.gz"])
        deep = self.json_of(self.ferry("--json", "ls", "logs/*/*.gz", server=server))
        self.assertEqual([f["name"] for f in deep["files"]], ["logs/old/3.gz"])
        many = self.json_of(self.ferry("--json", "stat", "*.txt", server=server))
        schema_for("stat_many").validate(many)
        self.assertEqual([f["name"] for f in many["files"]], ["a.txt", "b.txt"])

        none = self.ferry("get", "logs/*.zip", server=server)
        self.assertEqual(none.returncode, 4)
        self.assertIn(b"ferry: not_found: no match for 'logs/*.zip'", none.stderr)
        none = self.json_of(self.ferry("--json", "rm", "*.none", server=server))
        self.assertEqual(none["error"], {"code": "not_found", "message": "no match for '*.none'"})

        removed = self.ferry("rm", "logs/[12].gz", server=server)
        self.assertEqual(removed.returncode, 0, removed.stderr)
        self.assertEqual(sorted(os.listdir(os.path.join(self.root, "logs"))), ["keep.txt", "old"])

    def test_get_r_leaves_a_local_fifo_alone_instead_of_hanging_on_it(self):
        # A FIFO at one of the server's file names blocked get -r in open()
        # for good (no timeout reached it), and every later file with it.
        server = self.start_server()
        make_tree(self.root, {"tree/a.txt": b"a", "tree/b/c.txt": b"c", "tree/d.txt": b"d"})
        os.makedirs(os.path.join(self.local, "out", "tree"))
        fifo = os.path.join(self.local, "out", "tree", "a.txt")
        os.mkfifo(fifo)
        got = self.ferry("get", "-r", "tree", "-C", "out", server=server, timeout=30)
        self.assertNotEqual(got.returncode, 0)
        self.assertIn(b"is a FIFO, socket or device: it is left alone", got.stderr)
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode))
        for name, content in (("b/c.txt", b"c"), ("d.txt", b"d")):
            with open(os.path.join(self.local, "out", "tree", name), "rb") as f:
                self.assertEqual(f.read(), content)

    def test_a_wildcard_get_passes_over_folders_and_still_gets_the_files(self):
        server = self.start_server()
        make_tree(self.root, {"logs/1.gz": b"1", "logs/keep.txt": b"k", "logs/old/3.gz": b"333",
                              "logs/new/4.gz": b"4444"})
        got = self.ferry("get", "logs/*", "-C", "all", server=server)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertEqual(sorted(os.listdir(os.path.join(self.local, "all"))), ["1.gz", "keep.txt"])
        self.assertIn(b'skipping "logs/new": a folder (get -r downloads folders)', got.stderr)
        self.assertIn(b'skipping "logs/old"', got.stderr)
        # Only folders match: nothing to get is an error, named once.
        only = self.ferry("get", "logs/[no]*", "-C", "none", server=server)
        self.assertNotEqual(only.returncode, 0)
        self.assertIn(b'"logs/[no]*" matches only folders', only.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.local, "none", "new")))
        # A folder named without a wildcard is still an error.
        named = self.ferry("get", "logs/old", server=server)
        self.assertNotEqual(named.returncode, 0)
        self.assertIn(b"(a folder comes with get -r)", named.stderr)

    def test_a_wildcard_matching_several_files_is_refused_with_o_before_any_download(self):
        # Round 33: the first match was written to -o's file and the rest
        # refused as name clashes; -o names one file, as when typed.
        server = self.start_server()
        make_tree(self.root, {"logs/a1.txt": b"1", "logs/a2.txt": b"2", "logs/b.txt": b"b"}, folders=["logs/a3"])
        several = self.ferry("get", "logs/a*", "-o", "out.txt", server=server)
        self.assertEqual(several.returncode, 4, several.stderr)
        self.assertIn(b'name_clash: "logs/a*" matches 2 entries, and -o names one file: use -C DIR for several',
                      several.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.local, "out.txt")))
        one = self.ferry("get", "logs/b*", "-o", "out.txt", server=server)
        self.assertEqual(one.returncode, 0, one.stderr)
        with open(os.path.join(self.local, "out.txt"), "rb") as f:
            self.assertEqual(f.read(), b"b")

    def test_digest_prints_what_sha256sum_prints(self):
        server = self.start_server()
        make_tree(self.root, {"d/one.bin": b"one", "d/two.bin": b"two" * 1000}, folders=["d/sub"])
        digests = self.ferry("digest", "d/*", server=server)
        self.assertEqual(digests.returncode, 0, digests.stderr)
        self.assertEqual(digests.stdout.decode().splitlines(), [
            hashlib.sha256(b"one").hexdigest() + "  d/one.bin",
            hashlib.sha256(b"two" * 1000).hexdigest() + "  d/two.bin"])
        fast = self.json_of(self.ferry("--json", "--hash", "xxh3-128", "digest", "d/one.bin", server=server))
        schema_for("paths").validate(fast)
        self.assertEqual(fast["files"][0]["digest"]["algorithm"], "xxh3-128")
        self.assertEqual(len(fast["files"][0]["digest"]["value"]), 32)
        folder = self.ferry("digest", "d/sub", server=server)
        self.assertEqual(folder.returncode, 4)
        self.assertTrue(folder.stderr.startswith(b"ferry: not_regular_file: "), folder.stderr)


    def test_put_r_into_a_deep_folder_keeps_within_the_servers_bounds(self):
        # The server counts 64 components from its root (PROTOCOL.md 5.1):
        # below p0/.../p9/up (11) a path of the tree has 53 left. What lies
        # past them is not sent, with a note, as sync does; the rest goes.
        server = self.start_server()
        remote = "/".join("p%d" % i for i in range(10))
        chain = "/".join("c%02d" % i for i in range(53))
        up = os.path.join(self.local, "up")
        make_tree(up, {chain.rsplit("/", 1)[0] + "/inside": b"53 components", chain + "/past": b"54 components"})
        sent = self.ferry("put", "-r", "up", "-C", remote, server=server)
        self.assertEqual(sent.returncode, 0, sent.stderr)
        self.assertIn(b"/past: deeper than 53 components, not sent", sent.stderr)
        landed = os.path.join(self.root, remote, "up")
        self.assertTrue(os.path.isfile(os.path.join(landed, chain.rsplit("/", 1)[0], "inside")))
        self.assertFalse(os.path.exists(os.path.join(landed, chain, "past")))

    def test_bash_completion_goes_into_the_servers_folders(self):
        script = os.path.join(HERE, "..", "..", "packaging", "completions", "ferry.bash")
        server = self.start_server()
        make_tree(self.root, {"logs/2026/report.txt": b"r", "logs/other.txt": b"o", "top.txt": b"t"})
        probe = ('source "$1"; '
                 'COMP_WORDS=(ferry --server "$2" rm lo); COMP_CWORD=4; _ferry; printf "%s\\n" "${COMPREPLY[@]}"; '
                 'COMP_WORDS=(ferry --server "$2" get logs/); COMP_CWORD=4; _ferry; printf "%s\\n" "${COMPREPLY[@]}"; '
                 'COMP_WORDS=(ferry m); COMP_CWORD=1; _ferry; printf "%s\\n" "${COMPREPLY[@]}"')
        ferry = test_cli.FERRY
        result = subprocess.run(["bash", "-c", probe, "bash", script, server],
                                env=dict(self.env, PATH=os.path.dirname(ferry) + ":" + self.env["PATH"]),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(result.stdout.decode().splitlines(),
                         ["logs/", "logs/2026/", "logs/other.txt", "mv", "mkdir"], result.stderr)


class ErrorsSayWhatToDo(CliTest):
    """An error that a flag or a form of the command gets past names it (the
    server cannot: it does not know the client's flags), as get of a folder
    says "a folder comes with get -r"; a path is named as it was typed."""

    def test_the_flag_that_is_the_way_out(self):
        server = self.start_server()
        make_tree(self.root, {"a.txt": b"a", "x.txt": b"x", "logs/old/b.log": b"b", "full/.hidden": b"h",
                              "nest/logs/k": b"k"},
                  folders=["empty", "busy/in"])
        os.symlink("a.txt", os.path.join(self.root, "link"))
        # Round 53b: a hint only where it gets past what stands there: a
        # file onto a folder goes into it with a trailing slash, not with
        # --replace; a link is never followed, by get -r neither.
        # Round 54: a folder onto a folder that holds anything (shown or
        # not) goes into it; --replace would only fail with not_empty.
        cases = [(("mv", "a.txt", "x.txt"), b"ferry: exists: ", b"(a file is there: mv --replace replaces it)"),
                 (("mv", "logs", "empty"), b"ferry: exists: ", b"(an empty folder is there: mv --replace replaces it)"),
                 (("mv", "logs", "busy"), b"ferry: exists: ",
                  b"(a folder that is not empty is there, which nothing replaces: mv to 'busy/' moves it into that "
                  b"folder)"),
                 # Round 55: a target that already goes into a folder
                 # is not pointed into it again.
                 (("mv", "logs", "nest/"), b"ferry: exists: ",
                  b"(a folder that is not empty is there, which nothing replaces; mv it to another name, or move "
                  b"that folder away first)"),
                 (("mv", "logs", "full"), b"ferry: exists: ",
                  b"(a folder that is not empty is there, which nothing replaces: mv to 'full/' moves it into that "
                  b"folder)"),
                 (("mv", "a.txt", "empty"), b"ferry: exists: ",
                  b"(a folder is there: mv to 'empty/' moves it into that folder)"),
                 (("mv", "logs", "x.txt"), b"ferry: exists: ", b"(a file is there, and a folder replaces no file)"),
                 (("get", "logs"), b"ferry: not_regular_file: ", b"a folder (a folder comes with get -r)"),
                 (("rm", "logs"), b"ferry: not_empty: ", b"(rm -r removes a folder with what it holds)"),
                 (("rm", "logs/*"), b"ferry: not_empty: ", b"(rm -r removes a folder with what it holds)"),
                 (("mkdir", "n/b/c"), b"ferry: not_found: ", b"(mkdir -p makes the missing folders too)")]
        for args, code, hint in cases:
            with self.subTest(args=args):
                failed = self.ferry(*args, server=server)
                self.assertEqual(failed.returncode, 4, failed.stderr)
                self.assertTrue(failed.stderr.startswith(code), failed.stderr)
                self.assertIn(hint, failed.stderr)
                out = self.json_of(self.ferry("--json", *args, server=server))
                self.assertIn(hint.decode(), out["error"]["message"], out)
        # With the flag given, no hint: its failure is another one.
        for args in (("rm", "-r", "nosuch"), ("mkdir", "-p", "a.txt/b")):
            with self.subTest(args=args):
                failed = self.ferry(*args, server=server)
                self.assertNotIn(b" -r ", failed.stderr)
                self.assertNotIn(b"mkdir -p", failed.stderr)
        self.assertEqual(self.ferry("mv", "a.txt", "x.txt", "--replace", server=server).returncode, 0)
        linked = self.ferry("get", "link", "-o", "-", server=server)
        self.assertEqual(linked.returncode, 4, linked.stderr)
        self.assertIn(b'"link" is not a regular file: a symbolic link (never followed)', linked.stderr)
        self.assertNotIn(b"get -r", linked.stderr)
        missing = self.ferry("stat", "nope", server=server)
        self.assertIn(b'ferry: not_found: nothing named "nope"', missing.stderr)
        # Round 54: get -r takes a file too, so a missing name is no folder
        # it lacks (a path typed as a folder still is, below).
        for args in (("get", "-r", "nope"), ("get", "-r", "a.txt", "nope", "-C", "gr")):
            with self.subTest(args=args):
                missing = self.ferry(*args, server=server)
                self.assertEqual(missing.returncode, 4, missing.stderr)
                self.assertIn(b'not_found: nothing named "nope"', missing.stderr)
        # A path typed as a folder names a folder (put -C new/. said "no file named").
        for args in (("stat", "nope/"), ("ls", "nope/."), ("put", "a.txt", "-C", "nope/."), ("mv", "nope/", "x"),
                     ("get", "-r", "nope/")):
            with self.subTest(args=args):
                missing = self.ferry(*args, server=server)
                self.assertIn(b'ferry: not_found: no folder named "nope"', missing.stderr)

    def test_an_operand_that_starts_with_a_dash_points_to_double_dash(self):
        server = self.start_server()
        make_tree(self.root, {"-x1": b"dash"})
        for args in (("get", "-x*"), ("get", "a", "-x*"), ("rm", "-x1"), ("mkdir", "-new"), ("stat", "-x1"),
                     ("digest", "-x1"), ("list", "-x"), ("put", "-x1"), ("mv", "-x1", "y")):
            with self.subTest(args=args):
                failed = self.ferry(*args, server=server)
                self.assertEqual(failed.returncode, 2, failed.stderr)
                self.assertNotIn(b"required", failed.stderr)
                dashed = [a for a in args if a.startswith("-")][0]
                self.assertIn(('%s has no option "%s"' % (args[0], dashed)).encode(), failed.stderr)
                quoted = dashed if "*" not in dashed else "'%s'" % dashed
                self.assertIn(("as in ferry %s -- %s\n" % (args[0], quoted)).encode(), failed.stderr)
                out = self.json_of(self.ferry("--json", *args, server=server))
                self.assertIn("has no option", out["error"]["message"])
        got = self.ferry("get", "--", "-x*", server=server)
        self.assertEqual(got.returncode, 0, got.stderr)
        with open(os.path.join(self.local, "-x1"), "rb") as f:
            self.assertEqual(f.read(), b"dash")
        # A real option's misuse keeps CLI11's own message, and an option's value is no operand.
        self.assertNotIn(b"no option", self.ferry("get", "a", "-o", server=server).stderr)
        self.assertNotIn(b"no option", self.ferry("sync", "-j", "-1", "a", ":b", server=server).stderr)

    def test_an_unknown_double_dash_word_blames_no_other_word(self):
        # get has no --jobs: the word after it may be its value, so nothing
        # after it is blamed; --jobs itself is.
        server = self.start_server()
        failed = self.ferry("get", "--jobs", "-1", "-x", server=server)
        self.assertEqual(failed.returncode, 2, failed.stderr)
        self.assertTrue(failed.stderr.startswith(b'ferry: bad_request: get has no option "--jobs"; '), failed.stderr)
        self.assertNotIn(b'"-1"', failed.stderr)
        self.assertNotIn(b'"-x"', failed.stderr)

    def test_a_lone_unknown_option_is_named_with_the_double_dash_form(self):
        # Round 22, F3: a lone --word said only "PATH is required", and -rZ
        # "The following argument was not expected: -Z": neither said the
        # command has no such option, nor how to name a path with a dash.
        server = self.start_server()
        cases = ((("rm", "--force"), '"--force"', "--force"), (("get", "--x"), '"--x"', "--x"),
                 (("get", "--x=1"), '"--x=1"', "--x=1"), (("stat", "--weird"), '"--weird"', "--weird"),
                 (("mkdir", "--parents-x"), '"--parents-x"', "--parents-x"),
                 (("get", "-rZ", "tree"), '"-Z" (in "-rZ")', "-rZ"))
        for args, named, form in cases:
            with self.subTest(args=args):
                failed = self.ferry(*args, server=server)
                self.assertEqual(failed.returncode, 2, failed.stderr)
                self.assertTrue(failed.stderr.startswith(('ferry: bad_request: %s has no option %s; ' % (args[0], named)).encode()),
                                failed.stderr)
                self.assertIn(("as in ferry %s -- %s\n" % (args[0], form)).encode(), failed.stderr)
                self.assertNotIn(b"required", failed.stderr)
                out = self.json_of(self.ferry("--json", *args, server=server))
                self.assertIn("has no option", out["error"]["message"])
        # A flag of a cluster that takes a value takes the next word: nothing blamed.
        self.assertNotIn(b"no option", self.ferry("get", "-ro", "out", "x", server=server).stderr)

    def test_the_suggested_command_never_names_another_path(self):
        # Round 22, F2: `ferry rm $'-\x01'` suggested `ferry rm -- '-?'`,
        # and '?' is a wildcard: running it removed -a, -b and -c.
        server = self.start_server()
        for args in ((b"rm", b"-\x01"), (b"rm", b"-\t"), (b"get", b"-a\nb"), (b"get", b"-\xff\xfe")):
            with self.subTest(args=args):
                make_tree(self.root, {"-a": b"a", "-b": b"b", "-c": b"c"})
                failed = subprocess.run([test_cli.FERRY.encode(), b"--server", server.encode(), *args],
                                        cwd=self.local, env=self.env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, timeout=30)
                self.assertEqual(failed.returncode, 2, failed.stderr)
                suggested = failed.stderr.split(b"as in ", 1)[1].split(b"\n", 1)[0]
                operand = suggested.split(b" -- ", 1)[1]
                # Followed as a shell reads it, it names nothing else.
                typed = subprocess.run([b"bash", b"-c", b"printf '%s' " + operand], stdout=subprocess.PIPE,
                                       timeout=30).stdout
                self.ferry(args[0].decode(), "--", typed.decode(errors="surrogateescape"), server=server)
                self.assertEqual(sorted(os.listdir(self.root)), ["-a", "-b", "-c"], suggested)
                # The very word, or no word at all.
                self.assertIn(typed, (args[1], b"PATH"), suggested)
                self.assertEqual(suggested, b"ferry " + args[0] + b" -- PATH")

    def test_a_mistyped_flag_is_told_first_that_there_is_no_such_option(self):
        server = self.start_server()
        for args, command in ((("ls", "-l"), "ls"), (("list", "-l"), "list"), (("get", "-R", "dir"), "get")):
            with self.subTest(args=args):
                failed = self.ferry(*args, server=server)
                self.assertEqual(failed.returncode, 2, failed.stderr)
                dashed = [a for a in args if a.startswith("-")][0]
                self.assertTrue(failed.stderr.startswith(('ferry: bad_request: %s has no option "%s"; ' % (command, dashed)).encode()),
                                failed.stderr)
                self.assertIn(("a path that starts with - goes after --, as in ferry %s -- %s\n"
                               % (command, dashed)).encode(), failed.stderr)

    def test_the_suggested_command_is_shell_safe_and_printable(self):
        server = self.start_server()
        make_tree(self.root, {"-it's": b"quote"})
        failed = self.ferry("get", "-it's", server=server)
        self.assertEqual(failed.returncode, 2, failed.stderr)
        suggested = failed.stderr.decode().split("as in ", 1)[1].splitlines()[0]
        self.assertEqual(suggested, "ferry get -- '-it'\\''s'")
        # The shell reads the suggestion back as the name itself, and it works.
        typed = subprocess.run(["bash", "-c", "printf '%s\\n' " + suggested.split(" -- ", 1)[1]],
                               stdout=subprocess.PIPE, timeout=30)
        self.assertEqual(typed.stdout, b"-it's\n")
        got = self.ferry("get", "--", "-it's", server=server)
        self.assertEqual(got.returncode, 0, got.stderr)
        # A control byte never reaches the terminal: it shows as '?'.
        failed = self.ferry("get", "-x\x1b[2J\x07", server=server)
        self.assertEqual(failed.returncode, 2, failed.stderr)
        self.assertNotIn(b"\x1b", failed.stderr)
        self.assertNotIn(b"\x07", failed.stderr)
        self.assertIn(b"-x?[2J?", failed.stderr)

    def test_a_path_from_the_root_keeps_its_slash(self):
        server = self.start_server()
        for args in (("list", "/lo"), ("stat", "/lo"), ("list", "/lo/deeper")):
            with self.subTest(args=args):
                failed = self.ferry(*args, server=server)
                self.assertEqual(failed.returncode, 4, failed.stderr)
                self.assertIn(b'"/lo', failed.stderr)


class ReadmeOfList(CliTest):
    def test_the_readme_says_what_list_shows(self):
        # README's "Using it" said "regular, non-hidden files"; list shows folders too (ending in /).
        server = self.start_server()
        make_tree(self.root, {"a.txt": b"a", "logs/b.log": b"b"})
        listed = self.ferry("list", server=server)
        self.assertIn(b"  logs/\n", listed.stdout)
        with open(os.path.join(HERE, "..", "..", "README.md")) as f:
            line = [l for l in f if l.startswith("    ferry list ")][0]
        self.assertIn("files and folders (ending in /)", line)
        self.assertNotIn("regular", line)


class WildcardRemoval(CliTest):
    """rm with a wildcard deletes only what the listing showed, as it showed
    it: each match's delete carries the listed entry as `expect`, a match
    listed as a file is never deleted recursively, and a folder matched
    under -r goes by a listing of what it holds. The client is held by a
    relay at its first delete (after the listings), where the test puts
    another entry at a listed name: no race."""

    def rm_swapping(self, swap, *args):
        self.start_server()
        relay = harness.HoldingRelay(self.server.address, hold_on=b'"delete"')
        held, returncode, out, err = harness.run_held(
            relay, [test_cli.FERRY, "--server", relay.address, "--json", "rm", *args], swap,
            cwd=self.local, env=self.env)
        self.assertTrue(held, "the client never sent a delete: %r" % err)
        lines = out.decode().splitlines()
        self.assertEqual(len(lines), 1, (out, err))
        summary = json.loads(lines[0])
        schema_for("paths").validate(summary)
        return returncode, summary

    def at(self, *parts):
        return os.path.join(self.root, *parts)

    def failed_codes(self, summary):
        return {f["path"]: f["error"]["code"] for f in summary["failed"]}

    def test_rm_r_never_removes_a_tree_renamed_over_a_match_listed_as_a_file(self):
        make_tree(self.root, {"d/a.txt": b"old", "d/b.txt": b"old", "work/p1": b"precious1",
                              "work/sub/p2": b"precious2"})

        def swap():
            os.remove(self.at("d", "a.txt"))
            os.rename(self.at("work"), self.at("d", "a.txt"))

        returncode, summary = self.rm_swapping(swap, "-r", "d/*.txt")
        self.assertEqual(returncode, 6, summary)  # file_changed
        self.assertEqual(self.failed_codes(summary), {"d/a.txt": "file_changed"})
        self.assertEqual(summary["removed"], [{"path": "d/b.txt", "type": "file", "files": 1, "folders": 0}])
        self.assertEqual(tree(self.at("d")), {"a.txt": None, "a.txt/p1": b"precious1", "a.txt/sub": None, "a.txt/sub/p2": b"precious2"})

    def test_rm_never_removes_a_file_written_at_a_matched_name_since(self):
        make_tree(self.root, {"d/a.txt": b"old", "d/b.txt": b"old", "new.txt": b"NEW precious"})
        returncode, summary = self.rm_swapping(
            lambda: os.rename(self.at("new.txt"), self.at("d", "a.txt")), "d/*.txt")
        self.assertEqual(returncode, 6, summary)  # file_changed
        self.assertEqual(self.failed_codes(summary), {"d/a.txt": "file_changed"})
        self.assertEqual([r["path"] for r in summary["removed"]], ["d/b.txt"])
        with open(self.at("d", "a.txt"), "rb") as f:
            self.assertEqual(f.read(), b"NEW precious")

    def test_rm_never_removes_a_folder_made_at_a_matched_files_name_since(self):
        make_tree(self.root, {"d/a.txt": b"old", "d/b.txt": b"old"})

        def swap():
            os.remove(self.at("d", "a.txt"))
            os.mkdir(self.at("d", "a.txt"))

        returncode, summary = self.rm_swapping(swap, "d/*.txt")
        self.assertEqual(returncode, 6, summary)  # file_changed
        self.assertEqual(self.failed_codes(summary), {"d/a.txt": "file_changed"})
        self.assertTrue(os.path.isdir(self.at("d", "a.txt")))
        self.assertFalse(os.path.exists(self.at("d", "b.txt")))

    def test_the_shells_rm_never_removes_a_tree_renamed_over_a_matched_file(self):
        make_tree(self.root, {"d/a.txt": b"old", "work/p1": b"precious1"})
        self.start_server()
        script = os.path.join(self.dir, "commands")
        with open(script, "w") as f:
            f.write("cd d\nrm -r *.txt\n")

        def swap():
            os.remove(self.at("d", "a.txt"))
            os.rename(self.at("work"), self.at("d", "a.txt"))

        relay = harness.HoldingRelay(self.server.address, hold_on=b'"delete"')
        with open(script, "rb") as commands:
            held, returncode, out, err = harness.run_held(
                relay, [test_cli.FERRY, "--server", relay.address], swap, cwd=self.local, env=self.env,
                stdin=commands)
        self.assertTrue(held, err)
        self.assertNotEqual(returncode, 0)
        self.assertIn(b"file_changed", err)
        self.assertEqual(tree(self.at("d")), {"a.txt": None, "a.txt/p1": b"precious1"})

    def test_rm_r_removes_a_matched_folder_by_its_listing_and_counts_what_went(self):
        make_tree(self.root, {"d/tree/f1": b"1", "d/tree/sub/f2": b"22", "d/keep": b"k"})

        def swap():
            with open(self.at("d", "tree", "sub", "new"), "wb") as f:
                f.write(b"written after the listing")

        returncode, summary = self.rm_swapping(swap, "-r", "d/t*")
        self.assertEqual(returncode, 4, summary)
        self.assertEqual(self.failed_codes(summary), {"d/tree/sub": "not_empty", "d/tree": "not_empty"})
        self.assertEqual(sorted((r["path"], r["files"], r["folders"]) for r in summary["removed"]),
                         [("d/tree/f1", 1, 0), ("d/tree/sub/f2", 1, 0)])
        self.assertEqual(tree(self.at("d")), {"keep": b"k", "tree": None, "tree/sub": None,
                                              "tree/sub/new": b"written after the listing"})

        # Nothing put there since: the folder goes whole, one outcome with its counts.
        make_tree(self.root, {"d/tree2/f1": b"1", "d/tree2/sub/f2": b"22"})
        whole = self.json_of(self.ferry("--json", "rm", "-r", "d/tree2*", server=self.server.address))
        self.assertEqual(whole["removed"], [{"path": "d/tree2", "type": "folder", "files": 2, "folders": 2}])
        self.assertFalse(os.path.exists(self.at("d", "tree2")))


class ShellExpandsLocalWildcards(CliTest):
    """README: in the shell "wildcards need no quotes". No other shell reads
    its lines, so `put *.log` sent a file named "*.log" (missing: exit 3)
    before; its local operands are now expanded as sh expands them."""

    def test_put_s_local_operands_are_expanded_here(self):
        server = self.start_server()
        for name in ("a.log", "b.log", ".hidden.log", "note.txt", "m[1]", "d1/x", "d2/y"):
            os.makedirs(os.path.dirname(os.path.join(self.local, name)), exist_ok=True)
            self.write(os.path.join(self.local, name), name.encode())
        done = self.ferry(server=server, stdin=b"put *.log\nput 'm\\[1]'\nput -r d[12] -C trees\n")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(tree(self.root), {"a.log": b"a.log", "b.log": b"b.log", "m[1]": b"m[1]", "trees": None,
                                           "trees/d1": None, "trees/d1/x": b"d1/x", "trees/d2": None,
                                           "trees/d2/y": b"d2/y"})
        # A pattern matching nothing: refused before anything moves, the
        # command's other operands included.
        none = self.ferry(server=server, stdin=b"put note.txt *.gz\n")
        self.assertEqual(none.returncode, 3, none.stderr)
        self.assertIn(b"ferry: local_io: no match for '*.gz' on this machine", none.stderr)
        self.assertNotIn("note.txt", tree(self.root))

    def test_a_match_is_a_file_never_standard_input_and_is_checked_as_typed_names_are(self):
        # Round 56, F1: '?' matched a local file "-", which put read as
        # standard input: the rest of the batch script went up as "-".
        # F3: 'put *.log --as one' sent the first match and refused the
        # rest, where two typed names with --as are refused before anything.
        server = self.start_server()
        self.write(os.path.join(self.local, "-"), b"the file named dash")
        self.write(os.path.join(self.local, "-x"), b"the file named -x")
        for name in ("a.log", "b.log"):
            self.write(os.path.join(self.local, name), name.encode())
        script = b"put ?\nput ?x\n" + b"".join(b"ls z%d\n" % i for i in range(50))
        done = self.ferry(server=server, stdin=script)
        self.assertEqual(tree(self.root), {"-": b"the file named dash", "-x": b"the file named -x"}, done.stderr)
        for line in (b"put *.log --as one\n", b"put ?.log -p --as one\n"):
            refused = self.ferry(server=server, stdin=line)
            self.assertEqual(refused.returncode, 2, refused.stderr)
            self.assertIn(b"--as names one file", refused.stderr)
            self.assertNotIn("one", tree(self.root))
        # Round 57: one file typed twice, or typed and matched, is one file,
        # as it is without --as (put once, with a note).
        for line in (b"put a.log a*.log --as one\n", b"put a.log ./a.log --as one\n"):
            with self.subTest(line=line):
                once = self.ferry(server=server, stdin=line)
                self.assertEqual(once.returncode, 0, once.stderr)
                self.assertIn(b"put once", once.stderr)
                self.assertEqual(tree(self.root)["one"], b"a.log")


class ShellFolderNamedWithWildcards(CliTest):
    """The shell's current folder is a real path, never a pattern (round
    33): after `cd k/d?r`, rm x.txt matched k/dar/x.txt as well, since the
    folder's name was joined to what was typed with its '?' live. Each
    command that takes a path, run inside a folder whose name holds each
    wildcard character, touches that folder alone."""

    FOLDERS = ("d?r", "d*r", "d[a]r")

    def test_every_command_in_such_a_folder_names_it_alone(self):
        for weird in self.FOLDERS:
            with self.subTest(folder=weird):
                self.start_server()
                files = {}
                for folder in (weird, "dar"):
                    files.update({"k/%s/x.txt" % folder: b"x in " + folder.encode(),
                                  "k/%s/keep.txt" % folder: b"keep in " + folder.encode(),
                                  "k/%s/s/y" % folder: b"y in " + folder.encode()})
                make_tree(self.root, files, folders=("k/%s/m" % weird, "k/dar/m"))
                self.write(os.path.join(self.local, "new.txt"), b"new")
                commands = ("cd k/%s\nls\nstat keep.txt\nget keep.txt\nrm x.txt\nrm -r s\n"
                            "put new.txt -C m\nmv keep.txt kept.txt\nmkdir made\ndigest kept.txt\n" % weird)
                result = self.ferry(server=self.server.address, stdin=commands.encode())
                self.assertEqual(result.returncode, 0, result)
                listed = result.stdout.decode()
                self.assertNotIn("dar", listed)
                with open(os.path.join(self.local, "keep.txt"), "rb") as got:
                    self.assertEqual(got.read(), b"keep in " + weird.encode())
                os.unlink(os.path.join(self.local, "keep.txt"))
                self.assertEqual(tree(os.path.join(self.root, "k", "dar")),
                                 {"x.txt": b"x in dar", "keep.txt": b"keep in dar", "s": None, "s/y": b"y in dar",
                                  "m": None})
                self.assertEqual(tree(os.path.join(self.root, "k", weird)),
                                 {"kept.txt": b"keep in " + weird.encode(), "m": None, "m/new.txt": b"new",
                                  "made": None})
                self.server.stop()
                self.server = None
                shutil.rmtree(os.path.join(self.root, "k"))

    def test_the_shell_shows_every_path_one_way_relative_to_its_folder(self):
        # Round 35: in a folder "[d]", "mv k .." printed "[d]/k -> k" (from
        # the root, with no '/', read against the current folder it named
        # k itself), "stat k" printed "name: [d]/k" and "get k" "[d]/k -> k",
        # while errors wrote "/k". Every line now shows a path as the shell
        # takes it: relative below the current folder, else from the root
        # with its leading '/'.
        server = self.start_server()
        make_tree(self.root, {"[d]/k": b"k", "[d]/g": b"g", "a1": b"a"})
        self.write(os.path.join(self.local, "up.txt"), b"up")
        commands = ("cd \\[d]\nstat k\nget g\nput up.txt\nmkdir sub\nrm sub\nmv k ..\nstat ../k\n"
                    "get ../a1 none\n")
        result = self.ferry(server=server, stdin=commands.encode())
        shown = result.stdout.decode()
        self.assertIn("name:     k\n", shown)
        self.assertIn("g -> g: ", shown)
        self.assertIn("up.txt -> up.txt: ", shown)
        self.assertIn("made sub/\n", shown)
        self.assertIn("removed sub/ ", shown)
        self.assertIn("k -> /k\n", shown)
        self.assertIn("name:     /k\n", shown)
        self.assertIn("/a1 -> a1: ", shown)
        self.assertNotIn("[d]", shown)
        self.assertIn(b'ferry: not_found: no file named "none"\n', result.stderr)  # named once (named_once)
        self.assertNotIn(b"[d]", result.stderr)

    def test_the_shell_names_a_file_typed_as_a_folder_and_mv_s_source_as_typed(self):
        # Round 36: in folder ab, "rm f/", "get f/" and "digest f/" named
        # the file "ab/f" (read against ab, that is ab/ab/f), get "/f/"
        # (the root's f); "mv nope .." named the missing source "/nope".
        server = self.start_server()
        make_tree(self.root, {"ab/f": b"f", "ab/d/k": b"k", "f": b"root f"})
        # (Round 49: a path typed with '..' is named as typed, trailing "/" aside.)
        for line, named in (("cd ab\nrm f/\n", b'"f"'), ("cd ab\nrm -r f/\n", b'"f"'), ("cd ab\nget f/\n", b'"f"'),
                            ("cd ab\nget -r f/\n", b'"f"'), ("cd ab\ndigest f/\n", b'"f"'),
                            ("cd ab/d\nrm ../f/\n", b'"../f"'), ("cd ab/d\nget ../../f/.\n", b'"../../f"')):
            with self.subTest(line=line):
                result = self.ferry(server=server, stdin=line.encode())
                self.assertIn(b"not_a_folder: " + named + b" is a file", result.stderr)
        for line in ("cd ab\nmv nope ..\n", "cd ab\nmv nope /\n", "cd ab/d\nmv nope ../..\n"):
            with self.subTest(line=line):
                result = self.ferry(server=server, stdin=line.encode())
                self.assertIn(b'not_found: nothing named "nope"', result.stderr)
        self.assertEqual(tree(self.root), {"ab": None, "ab/f": b"f", "ab/d": None, "ab/d/k": b"k", "f": b"root f"})


class VersionOneServer:
    """A server that speaks only protocol version 1, as ferryd did before
    folders: a hello asking for more is refused with unsupported_version
    (and the connection closed); a version-1 hello is answered, and then
    list gets one file, old.txt, which stat and get serve too (a get in
    whole, or from its end for its trailer's digest); `shrink_gets` gets
    find it a byte shorter than its stat said, once each (bad_offset);
    `grow_gets` gets find it GROWN longer (its reply, bytes and trailer
    say so). `lie` breaks the protocol in a get: "offset" (a reply at
    another offset), "bytes" (more bytes than its reply's size adds),
    "size" (a trailer of another size than the reply's)."""

    GROWN = b"+2"

    OLD = b"old"

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(60)
        self.port = self.sock.getsockname()[1]
        self.hellos = []
        self.requests = []
        self.shrink_gets = 0
        self.grow_gets = 0
        self.lie = None
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    read_frame = staticmethod(harness.read_frame)
    send = staticmethod(harness.send_json)

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(30)
                try:
                    self.converse(conn)
                except (OSError, ValueError):
                    pass

    def converse(self, conn):
        hello = self.read_frame(conn)
        if hello is None:
            return
        self.hellos.append(hello["version"])
        if hello["version"] != 1:
            self.send(conn, {"id": 0, "ok": False, "error": {"code": "unsupported_version",
                                                            "message": "this server speaks version 1"}})
            return
        self.send(conn, {"id": 0, "ok": True, "version": 1, "server": "oldferryd/0.9",
                         "capabilities": ["list", "stat", "get", "put", "resume", "stats"],
                         "hashes": ["sha256", "xxh3-128"], "max_control_frame": 65536,
                         "max_data_frame": 16777216, "access": "rw"})
        while True:
            request = self.read_frame(conn)
            if request is None:
                return
            self.requests.append(request)
            file = {"name": "old.txt", "size": len(self.OLD), "mtime": 1700000000}
            if request.get("op") == "list":
                self.send(conn, {"id": request["id"], "ok": True, "files": [file], "skipped_invalid_names": 0})
            elif request.get("op") in ("stat", "get") and request.get("name") != "old.txt":
                self.send(conn, {"id": request["id"], "ok": False,
                                 "error": {"code": "not_found", "message": "no such file"}})
            elif request.get("op") == "stat":
                self.send(conn, {"id": request["id"], "ok": True, **file})
            elif request.get("op") == "get":
                offset = request.get("offset", 0)
                if self.shrink_gets > 0:
                    self.shrink_gets -= 1
                    self.send(conn, {"id": request["id"], "ok": False,
                                     "error": {"code": "bad_offset", "message": "past the end"}})
                    continue
                content = self.OLD
                if self.grow_gets > 0:
                    self.grow_gets -= 1
                    content += self.GROWN
                hash_name = request.get("hash", "sha256")
                digest = hashlib.sha256(content).hexdigest() if hash_name == "sha256" else "0" * 32
                self.send(conn, {"id": request["id"], "ok": True, **file, "size": len(content),
                                 "offset": offset + (1 if self.lie == "offset" else 0)})
                if offset < len(content) or self.lie == "bytes":
                    harness.send_data(conn, content[offset:] + (b"!" if self.lie == "bytes" else b""))
                self.send(conn, {"id": request["id"], "ok": True, "done": True,
                                 "size": len(content) + (1 if self.lie == "size" else 0), hash_name: digest})
            else:
                self.send(conn, {"id": request["id"], "ok": False,
                                 "error": {"code": "unknown_op", "message": "no such op"}})

    def close(self):
        self.sock.close()


class OldServer(CliTest):
    def test_a_version_1_server_lists_its_root_and_the_folder_commands_say_it_has_none(self):
        old = VersionOneServer()
        self.addCleanup(old.close)
        server = "127.0.0.1:%d" % old.port
        listed = self.ferry("ls", server=server)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn(b"old.txt", listed.stdout)
        self.assertEqual(old.hellos[:2], [2, 1])  # asked for 2, then fell back to 1
        wildcard = self.ferry("ls", "*.txt", server=server)
        self.assertEqual(wildcard.returncode, 0, wildcard.stderr)
        self.assertIn(b"old.txt", wildcard.stdout)
        message = b"ferry: unsupported_version: this server speaks protocol version 1, which has no folders\n"
        for args in (["mkdir", "a"], ["ls", "sub"], ["ls", "-r"], ["stat", "sub/x"], ["get", "-r", "sub"],
                     ["get", "sub/x.txt"]):
            with self.subTest(args=args):
                result = self.ferry(*args, server=server)
                self.assertEqual(result.stderr, message)
                self.assertNotEqual(result.returncode, 0)
        # What a command needs beyond folders is named as it is, not as folders.
        with open(os.path.join(self.local, "kept.txt"), "wb") as f:
            f.write(b"kept\n")
        for args, lacking in ((["rm", "old.txt"], b"delete operation"), (["mv", "old.txt", "new.txt"], b"rename operation"),
                              (["put", "-p", "kept.txt"], b"set_mtime operation (put -p)")):
            with self.subTest(args=args):
                result = self.ferry(*args, server=server)
                self.assertEqual(result.stderr.splitlines()[0], b"ferry: unsupported_version: this server speaks "
                                 b"protocol version 1, which has no " + lacking)
                self.assertNotEqual(result.returncode, 0)
        # A missing file's own error comes first, not the server's age.
        missing = self.ferry("put", "-p", "kept.txt", "missing.txt", server=server)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn(b"set_mtime operation (put -p)", missing.stderr)
        self.assertRegex(missing.stderr, rb'ferry: local_io: [^\n]*"missing.txt"[^\n]*No such file')
        self.assertNotIn(b'unsupported_version: "missing.txt"', missing.stderr)
        result = self.json_of(self.ferry("--json", "mkdir", "a", server=server))
        self.assertEqual(result["error"]["code"], "unsupported_version")
        os.mkdir(os.path.join(self.local, "tree"))
        put = self.ferry("put", "-r", "tree", server=server)
        self.assertEqual(put.stderr.splitlines()[0], message.rstrip())

    def test_a_version_1_server_gives_a_digest_by_the_trailer_of_a_get_from_the_end(self):
        """Version 1 has no digest request, but its get's trailer carries the
        whole file's digest: a get from the file's end gives it and no byte."""
        old = VersionOneServer()
        self.addCleanup(old.close)
        server = "127.0.0.1:%d" % old.port
        result = self.ferry("digest", "old.txt", server=server)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(hashlib.sha256(b"old").hexdigest().encode(), result.stdout)
        gets = [r for r in old.requests if r.get("op") == "get"]
        self.assertEqual([g["offset"] for g in gets], [3])
        self.assertFalse([r for r in old.requests if r.get("op") == "digest"])
        shaped = self.json_of(self.ferry("--json", "digest", "old.txt", server=server))
        self.assertEqual(shaped["files"][0]["digest"], {"algorithm": "sha256", "value": hashlib.sha256(b"old").hexdigest()})
        self.assertEqual(shaped["files"][0]["size"], 3)
        missing = self.json_of(self.ferry("--json", "digest", "gone.txt", server=server))
        self.assertEqual(missing["error"]["code"], "not_found")
        # A file that shrinks between the stat and the get is asked again,
        # and one that keeps shrinking is file_changed, never a wrong digest.
        old.shrink_gets = 1
        again = self.ferry("digest", "old.txt", server=server)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual([(r["op"], r.get("offset")) for r in old.requests[-4:]],
                         [("stat", None), ("get", 3), ("stat", None), ("get", 3)])
        old.shrink_gets = 3
        shrinking = self.json_of(self.ferry("--json", "digest", "old.txt", server=server))
        self.assertEqual(shrinking["error"]["code"], "file_changed")
        # One that grew is read past its new bytes: the digest is of the
        # whole file as the get's reply gave it.
        old.grow_gets = 1
        grown = self.json_of(self.ferry("--json", "digest", "old.txt", server=server))
        self.assertEqual(grown["files"][0]["size"], 5, grown)
        self.assertEqual(grown["files"][0]["digest"]["value"], hashlib.sha256(b"old+2").hexdigest())
        # A server that breaks the protocol in the get gives no digest.
        for lie in ("offset", "bytes", "size"):
            with self.subTest(lie=lie):
                old.lie = lie
                broken = self.json_of(self.ferry("--json", "digest", "old.txt", server=server))
                self.assertEqual(broken["error"]["code"], "internal", broken)
                self.assertIn("broke the protocol", broken["error"]["message"])
        old.lie = None


if __name__ == "__main__":
    sys.exit(test_cli.main())  # runs this module's tests, against the binaries it is given
