"""The ferry client at a terminal and in scripts: a progress line that fits
the window (40 and 80 columns, resized, TERM=dumb), Tab completion that
quotes what it inserts, batch mode on a non-terminal standard input, help
that fits 80 columns, and get -C making its folder."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import Scratch, Server
from terminal import Terminal, display_width, screen_segments

FERRY = os.environ.get("FERRY")
FERRYD = os.environ.get("FERRYD")

LONG_NAME = "quarterly-report-of-the-northern-region-final-version-2.tar.gz"  # 62 characters
WIDE_NAME = "\u56db\u534a\u671f\u58f2\u4e0a\u5831\u544a\u66f8-\u6700\u7d42\u7248-\u5317\u90e8\u5730\u57df\u306e\u30c7\u30fc\u30bf.bin"


class ServedFolder(unittest.TestCase):
    """A ferryd serving a fresh folder, and a fresh local folder."""

    def setUp(self):
        self.scratch = Scratch("ferry-terminal-")
        self.base, self.root, self.local = self.scratch.base, self.scratch.root, self.scratch.local
        self.server = Server(FERRYD, self.root)
        self.address = self.server.address

    def tearDown(self):
        self.server.stop()
        self.scratch.remove()

    def local_file(self, name, size=0, content=None):
        path = os.path.join(self.local, name)
        with open(path, "wb") as out:
            if content is not None:
                out.write(content)
            else:
                block = os.urandom(1 << 20)
                for _ in range(size >> 20):
                    out.write(block)
                out.write(block[: size & ((1 << 20) - 1)])
        return path

    def served_file(self, name, content):
        with open(os.path.join(self.root, name), "wb") as out:
            out.write(content)

    def ferry(self, *args, stdin=b"", env=None):
        child_env = dict(os.environ)
        child_env.update({"HOME": self.base, "XDG_STATE_HOME": ""})
        if env:
            child_env.update(env)
        return subprocess.run([FERRY, "--server", self.address, *args], input=stdin, capture_output=True,
                              cwd=self.local, env=child_env, timeout=120)

    def shell(self, columns):
        return Terminal([FERRY, "--server", self.address], columns, cwd=self.local,
                        env={"HOME": self.base, "XDG_STATE_HOME": os.path.join(self.base, "state")})


class ProgressTests(ServedFolder):
    def upload(self, name, size, columns, env=None, resize_to=None):
        """Puts a local file under a pseudo-terminal `columns` wide (stdout
        in a file, so that only the progress is on the terminal); returns
        what the terminal showed, and what it showed after the resize."""
        path = self.local_file(name, size)
        results = tempfile.TemporaryFile()
        self.addCleanup(results.close)
        terminal = Terminal([FERRY, "--server", self.address, "put", path], columns, env=env, stdout_file=results)
        after = None
        if resize_to is not None:
            self.assertIsNotNone(terminal.read_until("%", within=60), terminal.text())
            before = len(terminal.screen)
            terminal.resize(resize_to)
        code = terminal.finish()
        self.assertEqual(code, 0, terminal.text())
        text = terminal.text()
        if resize_to is not None:
            after = terminal.screen[before:].decode("utf-8", errors="replace")
        return text, after

    def assert_fits(self, text, columns):
        segments = [segment for segment in screen_segments(text) if "%" in segment]
        self.assertTrue(segments, "no progress shown: " + repr(text))
        for segment in segments:
            self.assertLessEqual(display_width(segment), columns - 1, repr(segment))
        return segments

    def test_progress_fits_80_columns_with_a_62_character_name(self):
        text, _ = self.upload(LONG_NAME, 8 << 20, 80)
        segments = self.assert_fits(text, 80)
        self.assertTrue(any("[" in segment and "ETA" in segment for segment in segments), segments)

    def test_progress_fits_40_columns_with_any_name(self):
        for name in ("a.bin", LONG_NAME, WIDE_NAME):
            with self.subTest(name=name):
                text, _ = self.upload(name, 8 << 20, 40)
                segments = self.assert_fits(text, 40)
                if name != "a.bin":
                    # Shortened in the middle: its start and its end show.
                    self.assertTrue(any("\u2026" in segment for segment in segments), segments)
                    self.assertTrue(any(name[:3] in segment and name[-4:] in segment for segment in segments),
                                    segments)

    def test_progress_follows_a_resized_window(self):
        _, after = self.upload("big.bin", 400 << 20, 80, resize_to=40)
        # The segment being drawn when the window changed may still be
        # 80 wide; the redraws after it fit 40, the last one above all.
        segments = [segment for segment in screen_segments(after) if "%" in segment]
        self.assertTrue(segments, "the transfer ended before the resize: " + repr(after))
        self.assertLessEqual(display_width(segments[-1]), 39, segments)
        self.assertIn("100%", segments[-1])

    def test_dumb_terminal_gets_plain_lines(self):
        text, _ = self.upload("plain.bin", 8 << 20, 80, env={"TERM": "dumb"})
        self.assertNotIn("\r\x1b", text)
        self.assertNotIn("\x1b[", text)
        lines = [line for line in text.replace("\r\n", "\n").split("\n") if line]
        self.assertTrue(lines, repr(text))
        self.assertTrue(lines[-1].startswith("plain.bin: 100%"), lines)
        self.assertLessEqual(len(lines), 11, lines)
        # One at each tenth, however fast the transfer (README): a redraw
        # interval between them skipped most (a new user's trial, round 72).
        tenths = {int(line.split("%")[0].split()[-1]) // 10 for line in lines}
        self.assertEqual(tenths, set(range(11)), lines)


class CompletionTests(ServedFolder):
    def run_shell(self, columns, keys, expect):
        """Types `keys` (a list of (text, wait-for) pairs) into the shell on
        a terminal `columns` wide; returns the screen."""
        terminal = self.shell(columns)
        self.assertIsNotNone(terminal.read_until("ferry> ", within=60), terminal.text())
        for text, wait_for in keys:
            terminal.type(text)
            if wait_for is not None:
                self.assertIsNotNone(terminal.read_until(wait_for, within=60),
                                     f"never saw {wait_for!r}: {terminal.text()!r}")
        terminal.type("quit\n")
        self.assertEqual(terminal.finish(), 0, terminal.text())
        screen = terminal.text()
        for text in expect:
            self.assertIn(text, screen)
        return screen

    def test_completion_quotes_names_with_blanks_and_quotes(self):
        for columns in (40, 80):
            with self.subTest(columns=columns):
                self.served_file("my file.txt", b"blank in the name")
                self.served_file("it's.txt", b"quote in the name")
                self.served_file("other.txt", b"other")
                # libedit redraws only what changed: the inserted part shows.
                self.run_shell(columns, [
                    ("get my\t", "\\ file.txt "),
                    ("\n", "ferry> "),
                    ("get it\t", "\\'s.txt "),
                    ("\n", "ferry> "),
                ], [])
                with open(os.path.join(self.local, "my file.txt"), "rb") as got:
                    self.assertEqual(got.read(), b"blank in the name")
                with open(os.path.join(self.local, "it's.txt"), "rb") as got:
                    self.assertEqual(got.read(), b"quote in the name")
                for name in ("my file.txt", "it's.txt"):
                    os.unlink(os.path.join(self.local, name))
                self.assertFalse(os.path.exists(os.path.join(self.local, "my")))

    def test_completion_inside_an_open_quote(self):
        for columns in (40, 80):
            with self.subTest(columns=columns):
                self.served_file("my file.txt", b"blank in the name")
                self.served_file("it's.txt", b"quote in the name")
                self.run_shell(columns, [
                    ('get "my f\t', 'ile.txt" '),
                    ("\n", "ferry> "),
                    ("get 'it\t", "'\\''s.txt' "),
                    ("\n", "ferry> "),
                ], [])
                for name, content in (("my file.txt", b"blank in the name"), ("it's.txt", b"quote in the name")):
                    with open(os.path.join(self.local, name), "rb") as got:
                        self.assertEqual(got.read(), content)
                    os.unlink(os.path.join(self.local, name))

    def test_completion_never_makes_a_name_an_option(self):
        # Round 30 (lftp/wget kind): a server listing "-o.bashrc" made
        # "get a.txt -<Tab>" into "get a.txt -o.bashrc", which wrote the
        # server's a.txt onto ./.bashrc. A name that begins with '-' is
        # offered only after "--", past which every word is a name.
        self.served_file("a.txt", b"the server's a.txt")
        self.served_file("-o.bashrc", b"a file with an odd name")
        with open(os.path.join(self.local, ".bashrc"), "wb") as rc:
            rc.write(b"precious rc")
        self.run_shell(80, [
            ("get a.txt -\t\n", "ferry> "),
            ("get -- -o\t", ".bashrc "),
            ("\n", "ferry> "),
        ], [])
        with open(os.path.join(self.local, ".bashrc"), "rb") as rc:
            self.assertEqual(rc.read(), b"precious rc")
        with open(os.path.join(self.local, "-o.bashrc"), "rb") as got:
            self.assertEqual(got.read(), b"a file with an odd name")

    def test_completion_escapes_wildcard_characters_in_names(self):
        # Round 33: a completed name went in as it is, so "m[1]" became a
        # pattern matching m1: rm of the completed name removed m1 (and
        # "?x" removed ax). A name is completed as typed, its wildcard
        # characters escaped (the shell's own reading takes one backslash,
        # so the line holds two); what the user typed as a pattern ("m[",
        # "?") is left a pattern, and completes to nothing.
        cases = (
            # name, the name it would match, a pattern typed, typed escaped, what Tab adds
            ("m[1]", "m1", "m[", "m\\\\[", "1\\\\] "),
            ("?x", "ax", "?", "\\\\?", "x "),
            ("*x", "ax", None, "\\\\*", "x "),
        )
        for name, other, pattern, escaped, added in cases:
            with self.subTest(name=name):
                self.served_file(name, b"the odd name")
                self.served_file(other, b"precious")
                keys = [("rm %s\t\n" % pattern, "ferry> ")] if pattern else []
                keys += [("rm %s\t" % escaped, added), ("\n", "ferry> ")]
                self.run_shell(80, keys, [])
                with open(os.path.join(self.root, other), "rb") as kept:
                    self.assertEqual(kept.read(), b"precious")
                self.assertFalse(os.path.exists(os.path.join(self.root, name)))
                os.unlink(os.path.join(self.root, other))

    def test_completion_lists_each_name_as_the_word_that_names_it(self):
        # A new user's trial (round 72): the second Tab listed "m\\[1\\]",
        # which the shell reads as the pattern m[1]; typed as listed, rm
        # removed m1. Each listed candidate is the whole word to type.
        self.served_file("m[1]", b"the odd name")
        self.served_file("m1", b"precious")
        self.served_file("mz", b"other")
        terminal = self.shell(80)
        self.assertIsNotNone(terminal.read_until("ferry> ", within=60), terminal.text())
        terminal.type("rm m\t\t")
        self.assertIsNotNone(terminal.read_until("mz", within=60), terminal.text())
        listed = [word for word in terminal.text().split() if word.startswith("m") and "[" in word]
        self.assertEqual(len(listed), 1, terminal.text())
        terminal.type("\x15rm %s\n" % listed[0])  # Ctrl-U, then the word as listed
        self.assertIsNotNone(terminal.read_until("removed", within=60), terminal.text())
        terminal.type("quit\n")
        self.assertEqual(terminal.finish(), 0, terminal.text())
        self.assertTrue(os.path.exists(os.path.join(self.root, "m1")), "the word as listed removed m1")
        self.assertFalse(os.path.exists(os.path.join(self.root, "m[1]")), terminal.text())

    def test_completion_leaves_a_folder_pattern_a_pattern(self):
        # Round 34: "rm s/[ab]/o<Tab>" listed the real folder "[ab]" and
        # completed its only.txt; run, the line's folder part was a
        # pattern, so it removed s/a/only.txt and s/b/only.txt instead. A
        # folder part typed as a pattern completes to nothing; escaped, it
        # names the folder "[ab]" and completes from it.
        for folder in ("[ab]", "?"):
            with self.subTest(folder=folder):
                matched = ("a", "b") if folder == "[ab]" else ("a",)
                for name in matched + (folder,):
                    os.makedirs(os.path.join(self.root, "s", name), exist_ok=True)
                    self.served_file("s/%s/only.txt" % name, b"precious " + name.encode())
                escaped = folder.replace("[", "\\\\[").replace("]", "\\\\]").replace("?", "\\\\?")
                self.run_shell(80, [
                    ("rm s/%s/o\t\n" % folder, "ferry> "),
                    ("rm s/%s/o\t" % escaped, "nly.txt "),
                    ("\n", "ferry> "),
                ], [])
                for name in matched:
                    with open(os.path.join(self.root, "s", name, "only.txt"), "rb") as kept:
                        self.assertEqual(kept.read(), b"precious " + name.encode())
                self.assertFalse(os.path.exists(os.path.join(self.root, "s", folder, "only.txt")))
                shutil.rmtree(os.path.join(self.root, "s"))

    def test_completion_of_a_local_name_in_brackets_sends_that_file(self):
        # Round 35: "put [x<Tab>" completed the local "[x]" to "put [x] ",
        # and the line sent ./x: CLI11 read the word as a list. A local
        # name is no pattern: completed as it is, it sends itself.
        with open(os.path.join(self.local, "[x]"), "wb") as f:
            f.write(b"bracketed")
        with open(os.path.join(self.local, "x"), "wb") as f:
            f.write(b"plain x")
        self.run_shell(80, [("put [x\t", "] "), ("\n", "ferry> ")], [])
        with open(os.path.join(self.root, "[x]"), "rb") as sent:
            self.assertEqual(sent.read(), b"bracketed")
        self.assertFalse(os.path.exists(os.path.join(self.root, "x")))

    def test_completion_sees_names_that_came_after_it_first_listed(self):
        self.served_file("alpha.txt", b"a")
        # The first completion loads the names, then the folder changes
        # behind the shell's back (another client), and list shows it.
        terminal = self.shell(80)
        self.assertIsNotNone(terminal.read_until("ferry> ", within=60))
        terminal.type("stat al\t\n")
        self.assertIsNotNone(terminal.read_until("alpha.txt", within=60), terminal.text())
        self.served_file("zebra.txt", b"z")
        terminal.type("list\n")
        self.assertIsNotNone(terminal.read_until("zebra.txt", within=60), terminal.text())
        terminal.type("stat ze\t\n")
        shown = terminal.read_until("zebra.txt\r\n", within=30)
        terminal.type("quit\n")
        terminal.finish()
        self.assertIsNotNone(shown, terminal.text())
        self.assertIn("name:     zebra.txt", terminal.text())

    def test_completion_of_remote_paths_enters_folders_and_follows_cd(self):
        os.makedirs(os.path.join(self.root, "logs", "2026"))
        self.served_file("logs/2026/report.txt", b"the report")
        self.served_file("logs/other.txt", b"other")
        self.run_shell(80, [
            # A folder completes with its '/' and no blank: the next Tab goes in.
            # libedit shows only what it inserts.
            ("get lo\t", "gs/"),
            ("2\t", "026/"),
            ("re\t", "port.txt "),
            ("\n", "ferry> "),
            # After cd, names complete in the current folder.
            ("cd lo\t", "gs/"),
            ("\n", "ferry> "),
            ("stat ot\t", "her.txt "),
            ("\n", "name:     other.txt"),
        ], [])
        with open(os.path.join(self.local, "report.txt"), "rb") as got:
            self.assertEqual(got.read(), b"the report")

    def test_shell_help_lists_every_command_and_a_typo_is_named(self):
        for columns in (40, 80):
            with self.subTest(columns=columns):
                screen = self.run_shell(columns, [("help\n", "quit"), ("lsit\n", "(try: help)")], [])
                for alias in ("list, ls", "help, ?", "quit, exit"):
                    self.assertIn(alias, screen)
                self.assertIn("unknown command 'lsit' (try: help)", screen)
                self.assertNotIn("bad_request", screen)


class BatchTests(ServedFolder):
    def test_commands_from_a_pipe(self):
        self.served_file("hello.txt", b"hello")
        result = self.ferry(stdin=b"list\nquit\n")
        self.assertEqual(result.returncode, 0, result)
        self.assertIn(b"hello.txt", result.stdout)
        self.assertNotIn(b"ferry> ", result.stdout)
        self.assertNotIn(b"Usage", result.stdout + result.stderr)

    def test_batch_runs_to_the_end_of_input(self):
        self.served_file("hello.txt", b"hello")
        result = self.ferry(stdin=b"# fetch it\n\nget hello.txt -C copies\nstat hello.txt")
        self.assertEqual(result.returncode, 0, result)
        with open(os.path.join(self.local, "copies", "hello.txt"), "rb") as got:
            self.assertEqual(got.read(), b"hello")
        self.assertIn(b"hello.txt", result.stdout)

    def test_cd_pwd_lcd_lpwd_and_paths_relative_to_both(self):
        self.local_file("up.txt", content=b"uploaded")
        os.mkdir(os.path.join(self.local, "sub"))
        result = self.ferry(stdin=b"mkdir -p a/b\ncd a\npwd\nput up.txt\ncd b\nls ..\n-cd ../../..\n"
                                  b"-cd nowhere\ncd ../..\npwd\nlcd sub\nlpwd\nget a/up.txt\ncd /a/b\npwd\n")
        self.assertEqual(result.returncode, 0, result)
        out = result.stdout.decode()
        with open(os.path.join(self.root, "a", "up.txt"), "rb") as got:
            self.assertEqual(got.read(), b"uploaded")
        with open(os.path.join(self.local, "sub", "up.txt"), "rb") as got:
            self.assertEqual(got.read(), b"uploaded")
        self.assertEqual([line for line in out.splitlines() if line.startswith("/")],
                         ["/a", "/", os.path.realpath(os.path.join(self.local, "sub")), "/a/b"])
        self.assertIn("  b/\n", out)
        self.assertIn("  up.txt\n", out)
        err = result.stderr.decode()
        self.assertIn("ferry: invalid_name: \"../../..\" climbs above the server's root", err)
        self.assertIn("ferry: not_found: ", err)

    def test_sync_remote_folder_is_relative_to_cd(self):
        os.makedirs(os.path.join(self.root, "a", "b"))
        with open(os.path.join(self.root, "a", "b", "deep.txt"), "wb") as out:
            out.write(b"deep")
        with open(os.path.join(self.root, "top.txt"), "wb") as out:
            out.write(b"top")
        os.mkdir(os.path.join(self.local, "up"))
        self.local_file("up/pushed.txt", content=b"pushed")
        result = self.ferry(stdin=b"cd a\nsync :b from_b\nsync up :\nsync up :b/c\nsync :.. from_root\n"
                                  b"sync :/a/b from_abs\n-sync :../.. nowhere\n")
        self.assertEqual(result.returncode, 0, result)
        with open(os.path.join(self.local, "from_b", "deep.txt"), "rb") as got:
            self.assertEqual(got.read(), b"deep")
        with open(os.path.join(self.root, "a", "pushed.txt"), "rb") as got:  # ":" is the current folder
            self.assertEqual(got.read(), b"pushed")
        with open(os.path.join(self.root, "a", "b", "c", "pushed.txt"), "rb") as got:
            self.assertEqual(got.read(), b"pushed")
        with open(os.path.join(self.local, "from_root", "top.txt"), "rb") as got:
            self.assertEqual(got.read(), b"top")
        with open(os.path.join(self.local, "from_abs", "deep.txt"), "rb") as got:
            self.assertEqual(got.read(), b"deep")
        self.assertFalse(os.path.exists(os.path.join(self.root, "pushed.txt")))
        self.assertFalse(os.path.exists(os.path.join(self.local, "nowhere")))
        self.assertIn(b"climbs above the server's root", result.stderr)

    def test_what_was_typed_is_echoed_printable_and_short(self):
        # A NUL cut the echoed word (and the rest of the message) short; a
        # pasted 5 MB word came back whole; an escape sequence reached the terminal.
        for line, expected in ((b"ls\x00rest", "ferry: the line holds a NUL byte, which no command, name or path can hold"),
                               (b"get a\x00b", "ferry: the line holds a NUL byte, which no command, name or path can hold"),
                               (b"\x1b[2Jwipe", "ferry: unknown command '?[2Jwipe' (try: help)"),
                               (b"w" * 5_000_000, "(5000000 bytes)"),
                               (b"get --bogus" + b"x" * 100_000, "(try: help get)"),
                               (b"lcd " + b"Q" * 3_000_000, "bytes cut) ... "),
                               (b"put " + b"Q" * 3_000_000, "bytes cut) ... "),
                               (b"get -o " + b"Q" * 3_000_000 + b" x", "bytes cut) ... ")):
            with self.subTest(line=line[:20]):
                result = self.ferry(stdin=line + b"\n")
                self.assertNotEqual(result.returncode, 0, result.stderr[:300])
                lines = result.stderr.decode().splitlines()
                self.assertEqual(len(lines), 1, lines)
                self.assertLess(len(lines[0]), 1000)
                self.assertNotIn("\x1b", lines[0])
                self.assertIn(expected, lines[0])

    def test_the_first_failing_command_ends_the_batch(self):
        self.served_file("hello.txt", b"hello")
        result = self.ferry(stdin=b"stat missing.txt\nget hello.txt\n")
        self.assertEqual(result.returncode, 4, result)  # that command's status: refused by the server
        self.assertFalse(os.path.exists(os.path.join(self.local, "hello.txt")))
        result = self.ferry(stdin=b"lsit\nget hello.txt\n")
        self.assertEqual(result.returncode, 2, result)
        self.assertIn(b"unknown command 'lsit'", result.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.local, "hello.txt")))

    def test_a_leading_dash_lets_a_command_fail(self):
        self.served_file("hello.txt", b"hello")
        result = self.ferry(stdin=b"-stat missing.txt\nget hello.txt\n")
        self.assertEqual(result.returncode, 0, result)
        self.assertTrue(os.path.exists(os.path.join(self.local, "hello.txt")))

    def test_errors_name_the_path_as_typed_and_say_what_to_do(self):
        # cd asks for a folder, as ls does; a path typed from the root keeps
        # its '/'; the commands' errors name the flag that is the way out,
        # as on the command line (one grammar); an operand that starts with -
        # is not "required": the command has no such option, and -- gives it.
        os.makedirs(os.path.join(self.root, "logs", "old"))
        os.mkdir(os.path.join(self.root, "a"))
        os.mkdir(os.path.join(self.root, "x"))
        result = self.ferry(stdin=b"-cd nosuch\n-ls /lo\ncd a\n-ls /lo\n-ls nosuch\n-cd /lo\n-mkdir b/c/d\n"
                                  b"-rm /logs\n-mv /x /logs\n-get -x*\n-get \"-it's\"\n")
        self.assertEqual(result.returncode, 0, result)
        err = result.stderr.decode()
        self.assertIn('not_found: no folder named "nosuch"\n', err)
        self.assertNotIn("no file named", err)
        self.assertEqual(err.count('no folder named "/lo"'), 3, err)
        self.assertIn('no folder named "nosuch"', err)
        self.assertIn('no folder named "b/c" (mkdir -p makes the missing folders too)', err)
        self.assertIn('"/logs" is not empty (rm -r', err)
        # /logs holds a folder: --replace would fail with not_empty.
        self.assertIn('"/logs" already exists (a folder that is not empty is there, which nothing replaces: '
                      "mv to '/logs/' moves it into that folder)", err)
        self.assertIn('get has no option "-x*"', err)
        self.assertIn("get -- '-x*'", err)
        # The suggestion reads back as the name, in the shell as in sh.
        self.assertIn("get -- '-it'\\''s' (try: help get)", err)
        self.assertNotIn("required", err)


class OneGrammarTests(ServedFolder):
    """The shell parses its lines with the command line's definitions: a
    flag of the command line works in the shell, and the shell's help of a
    command is the command line's."""

    def test_no_clobber_works_in_the_shell_as_on_the_command_line(self):
        self.served_file("hello.txt", b"hello")
        for flag in ("-n", "--no-clobber"):
            with self.subTest(flag=flag):
                self.local_file("hello.txt", content=b"mine")
                line = self.ferry(stdin=f"get {flag} hello.txt\n".encode())
                command = self.ferry("get", flag, "hello.txt")
                for result in (line, command):
                    self.assertEqual(result.returncode, 0, result)
                    self.assertIn(b"skipped", result.stdout)
                    with open(os.path.join(self.local, "hello.txt"), "rb") as kept:
                        self.assertEqual(kept.read(), b"mine")
                self.assertEqual(line.stdout, command.stdout)

    def test_skip_identical_works_in_the_shell(self):
        self.served_file("hello.txt", b"hello")
        self.local_file("hello.txt", content=b"other")
        result = self.ferry(stdin=b"get --skip-identical hello.txt\n")
        self.assertEqual(result.returncode, 0, result)
        with open(os.path.join(self.local, "hello.txt"), "rb") as got:
            self.assertEqual(got.read(), b"hello")  # it differed, so it was replaced

    @staticmethod
    def without_program(text):
        """The help with the usage line's program name taken out (the
        shell's commands have none)."""
        lines = []
        for line in text.decode().splitlines():
            if line.startswith("Usage: "):
                words = line.split(" ")
                line = "Usage: " + " ".join(words[2:] if words[1].endswith("ferry") else words[1:])
            lines.append(line)
        return lines

    def test_help_of_a_command_in_the_shell_is_the_command_lines(self):
        for command in ("list", "stat", "get", "put", "stats"):
            with self.subTest(command=command):
                expected = self.ferry(command, "--help")
                self.assertEqual(expected.returncode, 0, expected)
                for line in (f"help {command}\n", f"{command} --help\n"):
                    shown = self.ferry(stdin=line.encode())
                    self.assertEqual(shown.returncode, 0, shown)
                    self.assertEqual(self.without_program(shown.stdout), self.without_program(expected.stdout))
        flags = self.ferry(stdin=b"help get\n").stdout.decode()
        for flag in ("-o,--output", "-C,--directory", "-n,--no-clobber", "--skip-identical", "--no-resume"):
            self.assertIn(flag, flags)

    def test_what_the_grammar_refuses_is_one_line_and_the_batch_goes_on_after_a_dash(self):
        self.served_file("hello.txt", b"hello")
        for line, says in ((b"get --token secret hello.txt", b"--token"), (b"get --hash xxh3-128 hello.txt", b"--hash"),
                           (b"get --frobnicate hello.txt", b"--frobnicate"), (b"stat", b"PATH"),
                           (b"get -o a -C b hello.txt", b"excludes")):
            with self.subTest(line=line):
                result = self.ferry(stdin=line + b"\n")
                self.assertEqual(result.returncode, 2, result)
                self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
                self.assertTrue(result.stderr.startswith(b"ferry: "), result.stderr)
                self.assertIn(says, result.stderr)
                self.assertFalse(os.path.exists(os.path.join(self.local, "hello.txt")))
                result = self.ferry(stdin=b"-" + line + b"\nget hello.txt\n")
                self.assertEqual(result.returncode, 0, result)
                os.remove(os.path.join(self.local, "hello.txt"))

    def test_under_json_a_refused_line_is_one_json_object(self):
        # Round 33: under --json a line the grammar refused printed only a
        # text line on stderr, where the command line prints one object
        # (bad_request); a script reading one object per command lost step.
        self.served_file("hello.txt", b"hello")
        for line in (b"stat", b"bogus", b"get --frobnicate hello.txt", b'get "open', b"--hash xxh3-128"):
            with self.subTest(line=line):
                result = self.ferry("--json", stdin=line + b"\n")
                self.assertEqual(result.returncode, 2, result)
                lines = result.stdout.decode().splitlines()
                self.assertEqual(len(lines), 1, result)
                self.assertEqual(json.loads(lines[0])["error"]["code"], "bad_request")
                self.assertEqual(result.stderr, b"")
        result = self.ferry("--json", stdin=b"-stat\nstat hello.txt\n")
        self.assertEqual(result.returncode, 0, result)
        first, second = [json.loads(l) for l in result.stdout.decode().splitlines()]
        self.assertEqual(first["error"]["code"], "bad_request")
        self.assertEqual(second["name"], "hello.txt")

    def test_a_line_that_begins_with_an_option_is_refused_not_taken_for_a_dash(self):
        # The dash that lets a command fail precedes a command's name; a
        # line that begins with an option (global or not) is refused and
        # ends the batch, as at the prompt.
        self.served_file("hello.txt", b"hello")
        for line, says in ((b"--hash xxh3-128", b"--hash"), (b"--server 127.0.0.1:1 ls", b"--server"),
                           (b"--token x ls", b"--token"), (b"-s 127.0.0.1:1 ls", b"")):
            with self.subTest(line=line):
                result = self.ferry(stdin=line + b"\nget hello.txt\n")
                self.assertEqual(result.returncode, 2, result)
                self.assertTrue(result.stderr.startswith(b"ferry: "), result.stderr)
                self.assertIn(says, result.stderr)
                self.assertFalse(os.path.exists(os.path.join(self.local, "hello.txt")))


class HelpTests(ServedFolder):
    def test_help_command_is_help(self):
        self.assertEqual(self.ferry("help").stdout, self.ferry("--help").stdout)
        self.assertEqual(self.ferry("help").returncode, 0)
        for command in ("list", "stat", "get", "put", "stats"):
            with self.subTest(command=command):
                result = self.ferry("help", command)
                self.assertEqual(result.returncode, 0, result)
                self.assertEqual(result.stdout, self.ferry(command, "--help").stdout)
        self.assertEqual(self.ferry("help", "nope").returncode, 2)

    def test_help_fits_80_columns_and_says_the_long_part_once(self):
        top = self.ferry("--help").stdout.decode()
        self.assertIn("Environment:", top)
        for args in ((), ("list",), ("stat",), ("get",), ("put",), ("stats",), ("help",)):
            with self.subTest(args=args):
                text = self.ferry(*args, "--help").stdout.decode()
                for line in text.splitlines():
                    self.assertLessEqual(len(line), 80, line)
                if args:
                    self.assertNotIn("Environment:", text)
                    self.assertNotIn("Named servers:", text)


class DirectoryTests(ServedFolder):
    def test_get_makes_the_folder_of_minus_c(self):
        self.served_file("hello.txt", b"hello")
        for flag in ("-C", "--directory"):
            with self.subTest(flag=flag):
                target = f"new{flag}/deeper/"
                result = self.ferry("get", "hello.txt", flag, target)
                self.assertEqual(result.returncode, 0, result)
                with open(os.path.join(self.local, target, "hello.txt"), "rb") as got:
                    self.assertEqual(got.read(), b"hello")

    def test_a_folder_that_cannot_be_made_is_named_with_the_flag_as_typed(self):
        self.served_file("hello.txt", b"hello")
        self.local_file("plain-file", content=b"not a folder")
        for flag in ("-C", "--directory"):
            with self.subTest(flag=flag):
                result = self.ferry("get", "hello.txt", flag, "plain-file/sub")
                self.assertEqual(result.returncode, 3, result)  # a local file error
                self.assertIn(f"{flag} plain-file/sub".encode(), result.stderr)
                self.assertNotIn(b"--directory" if flag == "-C" else b"-C ", result.stderr)


if __name__ == "__main__":
    unittest.main()
