"""ferryd as an operator configures it: --config FILE (every option, the
command line wins), usage errors exit 2 naming what is wrong, start-up
failures exit with their documented status in the chosen log format and
file, --root is created, and the token file's labels reach the log while
the tokens never do."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import unittest

from wire import Peer, Server, has_ipv6_loopback, temp_root, wait_until

import harness  # after wire, which puts test/ on the path

FERRYD = os.environ.get("FERRYD", "")
HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "..", "packaging", "ferryd.conf")


def run(*args, timeout=20):
    return subprocess.run([FERRYD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def help_options():
    text = run("--help").stdout.decode()
    names = set(re.findall(r"--([a-z][a-z-]+)", text.split("Options:", 1)[1]))
    return names - {"help", "version", "config"}


class ConfigFile(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()
        self.addCleanup(shutil.rmtree, self.root)

    def write(self, name, text, mode=0o644):
        path = os.path.join(self.root, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def test_settings_come_from_the_file_and_the_command_line_wins(self):
        files = os.path.join(self.root, "files")
        os.mkdir(files)  # a read-only ferryd creates no folder
        config = self.write(".ferryd.conf",
                            f'root = "{files}"\nlisten = "127.0.0.1:0"\nread-only = true\n'
                            'log-format = "json"\nmax-upload-size = 4\nworkers = 3\n')
        # (Server also passes --root and --listen, the same as the file's.)
        with Server(FERRYD, files, "--config", config) as server:
            self.assertEqual(server.peer().access, "ro")
            self.assertTrue(wait_until(lambda: '"event":"start"' in server.log_text(), within=30))
            start = json.loads(server.log_text().splitlines()[0])
        self.assertEqual((start["workers"], start["access"], start["level"]), (3, "read-only", "notice"))
        with Server(FERRYD, files, "--config", config, "--log-format", "text", "--read-only=false",
                    "--workers", "2") as server:
            self.assertEqual(server.peer().access, "rw")
            self.assertTrue(wait_until(lambda: " ferryd: start " in server.log_text()))
            self.assertIn("workers=2", server.log_text())

    def test_an_unknown_key_or_a_bad_value_is_a_usage_error_naming_it(self):
        cases = [("max-conections = 5\n", "unknown key max-conections"),
                 ("[server]\nroot = \"x\"\n", "unknown section [server]"),
                 ("workers = many\n", "--workers"),
                 ("workers = 999\n", "--workers"),
                 ('log-format = "xml"\n', "--log-format"),
                 ("idle-timeout = -1\n", "--idle-timeout"),
                 ("config = \"other.conf\"\n", "config"),
                 # A byte order mark is no part of TOML's quoting rules.
                 ('\ufefflog-format = "json"\n', "FEFF")]
        for text, named in cases:
            with self.subTest(text=text):
                config = self.write(".bad.conf", text)
                result = run("--config", config, "--root", self.root, "--listen", "127.0.0.1:0")
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn(named, result.stderr.decode())
                self.assertIn("start_failed", result.stderr.decode())
        missing = run("--config", os.path.join(self.root, "nowhere.conf"))
        self.assertEqual(missing.returncode, 2)
        self.assertIn("nowhere.conf", missing.stderr.decode())

    def test_the_example_config_names_every_option_and_its_defaults_start(self):
        with open(EXAMPLE) as f:
            example = f.read()
        keys = set(re.findall(r"^#?([a-z][a-z-]+) = ", example, re.M))
        self.assertEqual(keys, help_options())
        # As shipped, and with every default uncommented, it is accepted.
        everything = re.sub(r"^#([a-z][a-z-]+ = )", r"\1", example, flags=re.M)
        for text in (example, everything):
            config = self.write(".example.conf", text)
            with Server(FERRYD, self.root, "--config", config) as server:
                self.assertEqual(server.peer().access, "rw")

    def test_usage_errors_exit_2(self):
        for args in (["--bogus"], ["--listen"],
                     ["--tls-cert", "c.pem"], ["--workers", "many"], ["--max-control-frame", "1"],
                     ["--log-format", "xml"], ["stray"],
                     # A malformed address is misuse, not a failure to listen (7).
                     ["--listen", "127.0.0.1:"], ["--listen", "127.0.0.1:99999"], ["--listen", "no-port"]):
            with self.subTest(args=args):
                result = run("--root", self.root, *args)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn("--help", result.stderr.decode())
        self.assertEqual(run("--help").returncode, 0)

    def test_an_option_given_twice_takes_its_last_value(self):
        # Server passes --root first; a later one wins. (--listen adds an
        # address instead: the Listen class below.)
        elsewhere = os.path.join(self.root, "elsewhere")
        with Server(FERRYD, os.path.join(self.root, "first"), "--root", elsewhere,
                    "--log-format", "json") as server:
            self.assertTrue(wait_until(lambda: '"event":"start"' in server.log_text(), within=30))
            self.assertEqual(json.loads(server.log_text().splitlines()[0])["root"], elsewhere)
        self.assertEqual(run("--version").returncode, 0)

    def test_a_key_repeated_anywhere_in_the_file_takes_its_last_value(self):
        # Adjacent repeats were always merged; a repeat with other keys
        # between the two lines kept the FIRST value.
        for between in ("", 'log-format = "json"\n', 'log-format = "json"\nread-only = false\n'):
            with self.subTest(between=between):
                config = self.write(".twice.conf", "workers = 3\n" + between + "workers = 2\n")
                with Server(FERRYD, self.root, "--config", config, "--log-format", "json") as server:
                    self.assertTrue(wait_until(lambda: '"event":"start"' in server.log_text(), within=30))
                    self.assertEqual(json.loads(server.log_text().splitlines()[0])["workers"], 2)
        # The command line still wins over every line of the file.
        config = self.write(".twice.conf", 'workers = 3\nlog-format = "json"\nworkers = 2\n')
        with Server(FERRYD, self.root, "--config", config, "--workers", "1") as server:
            self.assertTrue(wait_until(lambda: '"event":"start"' in server.log_text(), within=30))
            self.assertEqual(json.loads(server.log_text().splitlines()[0])["workers"], 1)

    def test_an_unclosed_quote_or_an_empty_root_is_a_usage_error(self):
        cases = [('root = "' + self.root + '/files\n', "never closes"),
                 ("root = '" + self.root + "/files\n", "never closes"),
                 ('log-file = "\n', "never closes"),
                 ('root = ""\n', "--root"),
                 ("root = ''\n", "--root")]
        for text, named in cases:
            with self.subTest(text=text):
                config = self.write(".bad.conf", text)
                result = run("--config", config, "--listen", "127.0.0.1:0")
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn(named, result.stderr.decode())
                self.assertEqual(sorted(os.listdir(self.root)), [".bad.conf"])
        result = run("--root", "", "--listen", "127.0.0.1:0")
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("--root", result.stderr.decode())


    def test_a_nul_in_any_value_is_a_usage_error(self):
        """TOML writes NUL as \\u0000 and a line may hold a NUL byte: a root
        of "<root>/a\\u0000b" was served, and made, as <root>/a (the system
        reads a path up to its first NUL). Refused, naming the key."""
        files = os.path.join(self.root, "a")
        cases = [('root = "%s\\u0000b"\nlisten = "127.0.0.1:0"\n' % files, "root"),
                 ('root = "%s"\nlisten = ["127.0.0.1:0\\u0000x"]\n' % files, "listen"),
                 ('root = "%s"\nlisten = "127.0.0.1:0"\nlog-file = %s/l\0x\n' % (files, self.root), "log-file"),
                 # A file written on Windows: each line ends in CR (a tester's finding), or more blanks.
                 ('root = "%s\\u0000b"\r\nlisten = "127.0.0.1:0"\r\n' % files, "root"),
                 ('root = "%s\\u0000b"\r\r\nlisten = "127.0.0.1:0"\n' % files, "root"),
                 ('root = "%s\\u0000b" \f\v\r\nlisten = "127.0.0.1:0"\n' % files, "root")]
        for text, key in cases:
            with self.subTest(text=text):
                config = self.write(".nul.conf", text)
                result = run("--config", config)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn("the value of key %s holds a NUL character" % key, result.stderr.decode())
                self.assertEqual(sorted(os.listdir(self.root)), [".nul.conf"])
        # In a key, which CLI11 would name as far as the NUL ("unknown key root").
        for text in ('"root\\u0000x" = "%s"\n' % files, 'ro\0ot = "%s"\n' % files):
            with self.subTest(text=text):
                config = self.write(".nul.conf", text)
                result = run("--config", config, "--listen", "127.0.0.1:0")
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn("a key holds a NUL character", result.stderr.decode())

    def test_an_option_written_with_equals_and_nothing_after_is_refused(self):
        """"--root=" took the next word for its value (the root "--listen"):
        CLI11 reads "--name=" as "--name". It is refused, naming the option,
        before anything starts; above all "--token-file=" (a variable left
        unset) never serves without the tokens a config file names, nor
        "--tls-cert=" without its TLS (a tester's finding on a first version
        of this fix, which read them as empty values). "--" as an option's
        value is no end of the options (`--log-file -- --root=`)."""
        files = os.path.join(self.root, "files")
        tokens = self.write(".tokens", "0123456789abcdef0123456789abcdef rw\n", 0o600)
        config = self.write(".ferryd.conf", f'root = "{files}"\nlisten = "127.0.0.1:0"\ntoken-file = "{tokens}"\n')
        for args in (["--root=", "--listen", "127.0.0.1:0"], ["--max-connections=", "--root", files],
                     ["--config", config, "--token-file="], ["--config", config, "--tls-cert=", "--tls-key="],
                     ["--config=", "--root", files], ["--log-file=", "--root", files],
                     ["--log-file", "--", "--root=", "--read-only"]):
            with self.subTest(args=args):
                option = next(word for word in args if word.endswith("="))[:-1]
                result = run(*args, "--listen", "127.0.0.1:0")
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn(option + ": nothing follows the '='", result.stderr.decode())
                self.assertFalse(os.path.exists(files))
        # A switch too (it was the switch given), as it would be in the file.
        result = run("--read-only=", "--root", files, "--listen", "127.0.0.1:0")
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("--read-only: nothing follows the '='", result.stderr.decode())
        self.assertFalse(os.path.exists(files))


class OptionValues(unittest.TestCase):
    """Every number an operator gives means what it says: a value that would
    switch the server or one of its protections off (0 connections, a NaN
    timeout that never fires, a negative count that wraps to the largest
    one, an empty config value read as 0) is refused at start, exit 2, with
    the option and its range in plain figures."""

    def setUp(self):
        self.root = temp_root()
        self.addCleanup(shutil.rmtree, self.root)

    def assert_refused(self, args, option, config_text=None):
        if config_text is not None:
            config = os.path.join(self.root, ".values.conf")
            with open(config, "w") as f:
                f.write(config_text)
            args = ["--config", config, *args]
        result = run("--root", os.path.join(self.root, "files"), "--listen", "127.0.0.1:0", *args, timeout=10)
        message = result.stderr.decode()
        self.assertEqual(result.returncode, 2, message)
        self.assertIn(option, message)
        self.assertIn(" to ", message)  # the range
        self.assertIsNone(re.search(r"[0-9]{21}", message), message)  # in plain figures
        self.assertFalse(os.path.exists(os.path.join(self.root, "files")))

    def test_values_that_would_switch_a_limit_off_are_refused_on_the_command_line(self):
        cases = {"--max-connections": ["0", "-1", "", "1e3", "0x10"],
                 "--max-connections-per-address": ["0", "-1"],
                 "--max-transfers": ["0", "-3"],
                 "--max-transfers-per-address": ["-1"],
                 "--min-rate": ["-5"],
                 "--max-upload-size": ["-1", "9223372036854775808"],
                 "--max-protocol-errors": ["0", "-1"],
                 "--max-control-frame": ["-1"],
                 "--workers": ["-1"],
                 "--partial-ttl": ["-1", "18446744073709551616", " 5"],
                 "--idle-timeout": ["nan", "inf", "-1", "0", "1e-300", "1e10", "5s", ""],
                 "--stall-timeout": ["nan", "NaN", "-inf", "0.0001"],
                 "--handshake-timeout": ["nan", "0"],
                 "--drain-timeout": ["nan", "-1", "inf"]}
        for option, values in cases.items():
            for value in values:
                with self.subTest(option=option, value=value):
                    self.assert_refused([f"{option}={value}"] if value else [option, ""], option)  # "--x=": refused as it stands

    def test_values_that_would_switch_a_limit_off_are_refused_in_the_config_file(self):
        for text, option in [("max-connections =\n", "--max-connections"),
                             ("max-connections = -1\n", "--max-connections"),
                             ("max-transfers = 0\n", "--max-transfers"),
                             ("idle-timeout = nan\n", "--idle-timeout"),
                             ("idle-timeout = 5s\n", "--idle-timeout"),
                             ('stall-timeout = "nan"\n', "--stall-timeout"),
                             ("partial-ttl = -1\n", "--partial-ttl")]:
            with self.subTest(text=text):
                self.assert_refused([], option, config_text=text)

    def test_read_only_takes_a_plain_yes_or_no(self):
        # Round 76, F9: CLI11 read -1, -2 and 0x1 as false, so a config that
        # meant read-only started a server clients could write to.
        config = os.path.join(self.root, ".values.conf")
        for value in ("-1", "-2", "0x1", "1.5", "t", "+1"):
            for args in (["--read-only=" + value.strip('"')], None):
                with self.subTest(value=value, where="command line" if args else "config file"):
                    if args is None:
                        with open(config, "w") as f:
                            f.write("read-only = %s\n" % value)
                        args = ["--config", config]
                    result = run("--root", os.path.join(self.root, "files"), "--listen", "127.0.0.1:0", *args,
                                 timeout=10)
                    self.assertEqual(result.returncode, 2, result.stderr)
                    self.assertIn("--read-only", result.stderr.decode())
                    self.assertIn("takes true or false", result.stderr.decode())
                    self.assertFalse(os.path.exists(os.path.join(self.root, "files")))
        for value, access in (("true", "read-only"), ("ON", "read-only"), ("1", "read-only"), ("no", "read-write"),
                              ("false", "read-write"), ("0", "read-write")):
            with self.subTest(value=value):
                with open(config, "w") as f:
                    f.write("read-only = %s\n" % value)
                with Server(FERRYD, self.root, "--config", config) as server:
                    self.assertEqual(server.peer().access == "ro", access == "read-only")

    def test_values_at_the_ends_of_each_range_start(self):
        log = os.path.join(self.root, "log")
        config = os.path.join(self.root, ".edges.conf")
        with open(config, "w") as f:
            f.write("max-connections = 1000000000\nmin-rate = 0\nmax-upload-size = 9223372036854775807\n")
        with Server(FERRYD, os.path.join(self.root, "files"), "--config", config,
                    "--idle-timeout", "1e9", "--stall-timeout", "0.001", "--handshake-timeout", "1000000000",
                    "--drain-timeout", "0", "--partial-ttl", "18446744073709551615",
                    "--max-transfers-per-address", "0", "--max-connections-per-address", "1",
                    "--max-transfers", "1", "--log-file", log) as server:
            server.peer().close()

    def test_a_hash_inside_a_quoted_value_is_part_of_it(self):
        # CLI11 cut every value at its first #: "a#b.log" became the
        # unclosed quote "a. TOML's rules: a # in quotes is text, after them
        # a comment.
        log = os.path.join(self.root, "a#b.log")
        files = os.path.join(self.root, "x#y")
        config = os.path.join(self.root, ".hash.conf")
        with open(config, "w") as f:
            f.write(f'log-file = "{log}" # the log, "quoted"\nroot = \'{files}\'\n'
                    'log-format = "json"  # comment\nworkers = 1 # one\n')
        with Server(FERRYD, files, "--config", config) as server:
            server.peer().close()
            self.assertTrue(wait_until(lambda: '"event":"start"' in open(log).read()))
        start = json.loads(open(log).read().splitlines()[0])
        self.assertEqual((start["root"], start["workers"]), (files, 1))


class Listen(unittest.TestCase):
    """Several addresses, from --listen given again or from an array in the config file: each is served.
    Before, only the last one given was bound, and nothing said so."""

    def setUp(self):
        self.root = temp_root()
        self.addCleanup(shutil.rmtree, self.root)

    def start(self, *args):
        process = subprocess.Popen([FERRYD, "--root", self.root, *args, "--log-format", "json"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.addCleanup(process.wait)
        self.addCleanup(process.stderr.close)
        self.addCleanup(process.stdout.close)
        self.addCleanup(process.terminate)
        line = process.stdout.readline().decode()
        self.assertTrue(line.startswith("listening on "), line)
        return process, line.split()[-1].split(",")

    def write_config(self, text):
        """The config file (mode 0600, as ferryd requires) holding TEXT; its path."""
        config = os.path.join(self.root, ".ferryd.conf")
        with open(config, "w") as f:
            f.write(text)
        os.chmod(config, 0o600)
        return config

    def assert_each_serves(self, addresses):
        for address in addresses:
            host, port = address.rsplit(":", 1)
            peer = Peer(int(port), host=host.strip("[]"))
            reply = peer.request({"op": "list"})
            self.assertEqual(reply.get("files"), [], reply)
            peer.close()

    def test_each_listen_given_is_served(self):
        second = "[::1]:0" if has_ipv6_loopback() else "127.0.0.1:0"
        for workers in ("1", "3"):
            with self.subTest(workers=workers):
                process, addresses = self.start("--listen", "127.0.0.1:0", "--listen", second, "--workers", workers)
                self.assertEqual(len(addresses), 2, addresses)
                self.assertEqual(len(set(addresses)), 2, addresses)
                self.assert_each_serves(addresses)
                process.terminate()
                start = json.loads(process.stderr.readline())
                self.assertEqual(start["listen"], ",".join(addresses))
                # One worker at least for each address.
                self.assertEqual(start["workers"], max(2, int(workers)))

    def test_an_array_in_the_config_file_is_served_whole(self):
        config = self.write_config('listen = ["127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"]\n')
        process, addresses = self.start("--config", config)
        self.assertEqual(len(set(addresses)), 3, addresses)
        self.assert_each_serves(addresses)

    def test_an_array_is_read_as_toml_whole_or_refused(self):
        # Round 78: CLI11's reading took the # inside "#" for a comment and
        # served the first address alone; it accepted an unclosed quote, a
        # missing ] or comma; `key = []` crashed ferryd for some keys, and
        # an array for a one-value key took its last element.
        def start_with(line):
            return run("--config", self.write_config(line + "\n"), "--root", self.root, timeout=10)

        refused = [('listen = ["127.0.0.1:0", "#", "127.0.0.1:0"]', 'bad address \\"#\\"'),
                   ('listen = ["127.0.0.1:0", "127.0.0.1:0#x"]', 'bad address \\"127.0.0.1:0#x\\"'),
                   ('listen = ["127.0.0.1:0", "127.0.0.1:0]', "not an array of quoted strings on one line"),
                   ('listen = ["127.0.0.1:0", "127.0.0.1:0"', "not an array of quoted strings on one line"),
                   ('listen = ["127.0.0.1:0" "127.0.0.1:0"]', "not an array of quoted strings on one line"),
                   ('listen = [', "not an array of quoted strings on one line"),
                   ("listen = []", "the array of key listen is empty"),
                   ("listen = [7021]", "holds something other than a quoted string")]
        for key in ("token-file", "workers", "log-file", "tls-cert", "log-format", "max-connections",
                    "idle-timeout", "read-only"):
            refused += [(f"{key} = []", f"key {key} takes no array"),
                        (f'{key} = ["1", ""]', f"key {key} takes no array")]
        # Round 79: words after a value became more values, of which a
        # one-value key kept the last: `token-file = "/t" ""` served without
        # tokens, `root = "/a" junk` served ./junk.
        for line in ('root = "/a" "/b"', 'root = "/a" junk', 'token-file = "/t" ""',
                     'listen = "127.0.0.1:0" "127.0.0.1:0"', "listen = 127.0.0.1:0 127.0.0.1:0",
                     "workers = 1 2"):
            refused.append((line, "is followed by more words"))
        for line, message in refused:
            with self.subTest(line=line):
                result = start_with(line)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn(message, result.stderr.decode())
        # TOML's own forms: space before a comma, a comment after, escapes;
        # and a Windows line end (round 79).
        config = self.write_config('listen = ["127.0.0.1:0" , \'127.0.0.1:0\', "\\u0031\\u0032\\u0037.0.0.1:0"] # three\r\n'
                                   "workers = 1\r\n")
        process, addresses = self.start("--config", config)
        self.assertEqual(len(set(addresses)), 3, addresses)
        self.assert_each_serves(addresses)

    def test_the_wildcards_of_both_families_on_one_port(self):
        # Round 78: with 0.0.0.0:P bound, a dual-stack [::]:P cannot be, so
        # the two together failed with "address already in use". Run in a
        # network namespace of its own (unshare -n), whose one interface is
        # its own loopback, so that the wildcards reach nothing else.
        unshare, ip = shutil.which("unshare"), shutil.which("ip")
        if not unshare or not ip:
            self.skipTest("needs unshare (util-linux) and ip (iproute2) for a network namespace")
        if subprocess.run([unshare, "-n", "true"], capture_output=True).returncode != 0:
            self.skipTest("cannot make a network namespace here (unshare -n)")
        inside = f"""
import json, socket, struct, subprocess, sys
subprocess.run([{ip!r}, "link", "set", "lo", "up"], check=True)
server = subprocess.Popen([{FERRYD!r}, "--root", {self.root!r}, "--listen", "0.0.0.0:7021", "--listen", "[::]:7021",
                           "--workers", "3"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
line = server.stdout.readline().decode()
served = []
for host in ("127.0.0.1", "::1"):
    try:
        with socket.create_connection((host, 7021), timeout=5) as sock:
            hello = json.dumps({{"op": "hello", "id": 1, "version": 2}}).encode()
            sock.sendall(struct.pack(">BI", 1, len(hello)) + hello)
            kind, size = struct.unpack(">BI", sock.recv(5, socket.MSG_WAITALL))
            served.append(json.loads(sock.recv(size, socket.MSG_WAITALL))["ok"])
    except OSError as error:
        served.append(str(error))
server.terminate()
print(json.dumps({{"line": line, "served": served, "status": server.wait(timeout=20)}}))
"""
        result = subprocess.run([unshare, "-n", sys.executable, "-c", inside], capture_output=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        seen = json.loads(result.stdout)
        self.assertEqual(seen["line"], "listening on 0.0.0.0:7021,[::]:7021\n", seen)
        self.assertEqual(seen["served"], [True, True], seen)
        self.assertEqual(seen["status"], 0, seen)

    def test_an_address_given_twice_is_a_usage_error_that_says_so(self):
        # It failed to listen (exit 7) with "address already in use", which
        # blames another program for a port ferryd itself had just taken.
        port = socket.socket()
        port.bind(("127.0.0.1", 0))
        number = port.getsockname()[1]
        port.close()  # a port free now; every case below is refused before any bind
        cases = [([f"127.0.0.1:{number}", f"127.0.0.1:{number}"], "are the same address"),
                 ([f"127.0.0.1:{number}", f"127.0.0.1:0{number}"], "are the same address"),
                 ([f"0.0.0.0:{number}", f"127.0.0.1:{number}"], "claim the same port"),
                 ([f"[::1]:{number}", f"[::]:{number}"], "claim the same port")]
        for addresses, said in cases:
            with self.subTest(addresses=addresses):
                result = run("--root", self.root, *[f"--listen={a}" for a in addresses])
                message = result.stderr.decode()
                self.assertEqual(result.returncode, 2, message)
                self.assertIn(said, message)
                self.assertIn(addresses[0] + " and " + addresses[1], message)
                self.assertNotIn("in use", message)
        # Port 0 twice is two free ports; another address on the same port is another socket.
        for addresses in (["127.0.0.1:0", "127.0.0.1:0"], [f"127.0.0.1:{number}", f"127.0.0.2:{number}"]):
            with self.subTest(addresses=addresses):
                process, bound = self.start(*[f"--listen={a}" for a in addresses])
                self.assertEqual(len(set(bound)), 2, bound)

    def test_a_start_that_fails_on_one_address_listens_on_none(self):
        # Round 78: the addresses before the one that could not be bound
        # listened already, so clients were let in and then cut off.
        strace = shutil.which("strace")
        if not strace:
            self.skipTest("needs strace")
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        self.addCleanup(busy.close)
        trace = os.path.join(self.root, ".trace")
        for workers in ("1", "4"):
            with self.subTest(workers=workers):
                result = subprocess.run([strace, "-f", "-qq", "-e", "trace=listen", "-o", trace, FERRYD,
                                         "--root", self.root, "--listen", "127.0.0.1:0", "--listen",
                                         f"127.0.0.1:{busy.getsockname()[1]}", "--workers", workers],
                                        capture_output=True, stdin=subprocess.DEVNULL, timeout=60,
                                        env=harness.traceable(os.environ))
                self.assertEqual(result.returncode, 7, result.stderr)
                with open(trace) as f:
                    self.assertNotIn("listen(", f.read())

    def test_an_address_given_twice_or_a_bad_one_among_good_ones_is_refused(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        busy.close()
        for workers in ("1", "4"):
            with self.subTest(workers=workers):
                result = run("--root", self.root, "--listen", f"127.0.0.1:{port}", "--listen", "127.0.0.1:0",
                             "--listen", f"127.0.0.1:{port}", "--workers", workers)
                # A usage error that names both (it was exit 7, "address already in use").
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn(f"127.0.0.1:{port} and 127.0.0.1:{port} are the same address", result.stderr.decode())
        # An IPv4-mapped address beside another cannot be served (its socket
        # is IPv6 only): the message says what to give instead.
        result = run("--root", self.root, "--listen", "[::ffff:127.0.0.1]:0", "--listen", "127.0.0.1:0")
        self.assertEqual(result.returncode, 7, result.stderr)
        self.assertIn("give this one in its IPv4 form", result.stderr.decode())
        result = run("--root", self.root, "--listen", "127.0.0.1:0", "--listen", "127.0.0.1:")
        self.assertEqual(result.returncode, 2, result.stderr)
        # Each address takes a worker, and --workers stops at 256.
        result = run("--root", self.root, *["--listen", "127.0.0.1:0"] * 257)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("at most 256 addresses", result.stderr.decode())
        # One address per --listen: a second word is not taken as another.
        result = run("--root", self.root, "--listen", "127.0.0.1:0", "127.0.0.1:0")
        self.assertEqual(result.returncode, 2, result.stderr)


class StartupFailures(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()
        self.addCleanup(shutil.rmtree, self.root)

    def test_each_failure_has_its_status_in_the_chosen_format_and_file(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        self.addCleanup(busy.close)
        port = busy.getsockname()[1]
        unreadable = os.path.join(self.root, ".tokens")
        os.mkdir(unreadable)  # a folder: not a readable token file
        blocker = os.path.join(self.root, ".file")
        open(blocker, "w").close()
        cases = [(["--token-file", os.path.join(self.root, "none")], 5, "token file"),
                 (["--token-file", unreadable], 5, "not a regular file"),
                 (["--tls-cert", blocker, "--tls-key", blocker], 6, ""),
                 (["--listen", f"127.0.0.1:{port}"], 7, "address already in use"),
                 (["--listen", f"127.0.0.1:{port}", "--workers", "1"], 7, "address already in use"),
                 (["--root", os.path.join(blocker, "sub")], 4, "cannot create folder"),
                 (["--bogus"], 2, "--bogus")]
        for args, status, message in cases:
            with self.subTest(args=args):
                log = os.path.join(self.root, ".log")
                result = run("--root", self.root, "--listen", "127.0.0.1:0", *args,
                             "--log-format", "json", "--log-file", log)
                self.assertEqual(result.returncode, status, result.stderr)
                with open(log) as f:
                    lines = [json.loads(line) for line in f]
                os.unlink(log)
                failed = [line for line in lines if line["event"] == "start_failed"]
                self.assertEqual(len(failed), 1, lines)
                self.assertEqual((failed[0]["level"], failed[0]["exit_status"]), ("error", status))
                self.assertIn(message, failed[0]["message"])
                # A person at the terminal is told as well.
                self.assertIn(message, result.stderr.decode())
        # No --log-file: the JSON line goes to stderr, and nothing else.
        result = run("--root", self.root, "--listen", f"127.0.0.1:{port}", "--log-format", "json")
        self.assertEqual(result.returncode, 7)
        line = json.loads(result.stderr.decode())
        self.assertEqual((line["event"], line["level"]), ("start_failed", "error"))
        # An unopenable log file: exit 3, said on stderr.
        result = run("--root", self.root, "--log-file", os.path.join(blocker, "log"))
        self.assertEqual(result.returncode, 3)
        self.assertIn("cannot open log file", result.stderr.decode())

    def test_a_missing_root_is_created_with_its_parents(self):
        nested = os.path.join(self.root, "a", "b", "share")
        with Server(FERRYD, nested) as server:
            server.peer().close()
            self.assertTrue(os.path.isdir(nested))
        # Only the default ./files gets a welcome file.
        self.assertEqual(os.listdir(nested), [])


class Labels(unittest.TestCase):
    def test_the_log_never_holds_a_token(self):
        root = temp_root()
        self.addCleanup(shutil.rmtree, root)
        tokens = os.path.join(root, ".tokens")
        alice = "alice-token-0123456789abcdef"
        bob = "bob-token-0123456789abcdef"
        wrong = "wrong-token-0123456789abcdef"
        with open(tokens, "w") as f:
            f.write(f"{alice} rw alice\n{bob} ro  # no label\n")
        os.chmod(tokens, 0o600)
        with open(os.path.join(root, "a.txt"), "wb") as f:
            f.write(b"hello")
        log = os.path.join(root, ".log")
        for fmt in ("text", "json"):
            with Server(FERRYD, root, "--token-file", tokens, "--log-format", fmt, "--log-file", log) as server:
                peer = server.peer(token=alice)
                peer.get("a.txt")
                peer.put("b.txt", b"world")
                peer.close()
                server.peer(token=bob).get("a.txt")
                try:
                    server.peer(token=wrong)
                except Exception:
                    pass
                self.assertTrue(wait_until(lambda: open(log).read().count("disconnect") >= 2))
            with open(log) as f:
                text = f.read()
            os.unlink(log)
            for token in (alice, bob, wrong):
                self.assertNotIn(token, text)
                self.assertNotIn(token[:16], text)


if __name__ == "__main__":
    unittest.main()
