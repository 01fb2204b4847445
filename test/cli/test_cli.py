"""ferry as scripts use it (issue 11, sections 5 and 7): the --json shapes
of docs/ferry-json.schema.json, exit statuses, death by SIGINT, peers that
are no ferryd, -q/-v/--no-progress, named servers and ferry:// addresses,
put -, --no-clobber, --skip-identical and --retry. Runs the real ferry
against a real ferryd on loopback.

Usage: test_cli.py --ferryd PATH --ferry PATH [unittest arguments]"""

import argparse
import fcntl
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

import jsonschema  # Debian: python3-jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import harness  # noqa: E402
from harness import Scratch, Server, preloaded  # noqa: E402

SCHEMA_PATH = os.path.join(HERE, "..", "..", "docs", "ferry-json.schema.json")
FERRYD = None
FERRY = None


def schema_for(shape):
    with open(SCHEMA_PATH) as f:
        document = json.load(f)
    jsonschema.Draft202012Validator.check_schema(document)
    document = dict(document)
    document.pop("anyOf")
    document["$ref"] = "#/$defs/" + shape
    return jsonschema.Draft202012Validator(document)


class FakeServer:
    """A loopback server that answers like something else than ferryd:
    `banner` is sent at once (SSH), `reply` after the first bytes (HTTP),
    neither: it stays silent."""

    def __init__(self, banner=b"", reply=b""):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(30)
        self.port = self.sock.getsockname()[1]
        self.banner, self.reply = banner, reply
        self.conns = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self.conns.append(conn)
        if self.banner:
            conn.sendall(self.banner)
        conn.settimeout(30)
        try:
            if conn.recv(4096) and self.reply:
                conn.sendall(self.reply)
        except OSError:
            pass

    def close(self):
        self.sock.close()
        for conn in self.conns:
            conn.close()


def free_port_outside_the_ephemeral_range():
    """A free port on 127.0.0.1 that no one else's bind to port 0 or outgoing connection can take (the
    kernel picks those from ip_local_port_range): a test that frees a port and binds it again later
    would otherwise race the suites that run beside it."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low, high = (int(word) for word in f.read().split())
    candidates = [port for port in range(10000, 65536) if not low <= port <= high]
    random.shuffle(candidates)
    for port in candidates[:200]:
        probe = socket.socket()
        try:
            probe.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            probe.close()
    raise unittest.SkipTest("no free port outside the ephemeral range")


class CliTest(unittest.TestCase):
    def setUp(self):
        self.scratch = Scratch("ferry-cli-")
        self.dir, self.root, self.local = self.scratch.base, self.scratch.root, self.scratch.local
        self.env = dict(os.environ)
        # No stray configuration of the machine running the tests.
        self.env["XDG_CONFIG_HOME"] = os.path.join(self.dir, "config")
        self.env["HOME"] = self.dir
        for name in ("FERRY_SERVER", "FERRY_TOKEN", "FERRY_TLS_CA", "FERRY_TLS_PIN", "FERRY_HASH", "FERRY_CONFIG"):
            self.env.pop(name, None)
        self.server = None

    def tearDown(self):
        if self.server:
            self.server.stop()
        self.scratch.remove()

    def fault_library(self):
        """The fault library (test/faults) to preload into ferry; the test is skipped without it."""
        library = os.environ.get("FERRY_FS_FAULTS_LIB")
        if not library or not os.path.isfile(library):
            self.skipTest("the fault library is not built (meson passes FERRY_FS_FAULTS_LIB)")
        return library

    def start_server(self, *args):
        self.server = Server(FERRYD, self.root, *args)
        return self.server.address

    def ferry(self, *args, server=None, stdin=None, timeout=60):
        argv = [FERRY]
        if server:
            argv += ["--server", server]
        result = subprocess.run(argv + list(args), cwd=self.local, env=self.env, input=stdin,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        return result

    def json_of(self, result):
        lines = result.stdout.decode().splitlines()
        self.assertEqual(len(lines), 1, "one JSON object: %r / %r" % (result.stdout, result.stderr))
        return json.loads(lines[0])

    def write(self, path, data):
        with open(path, "wb") as f:
            f.write(data)


class JsonShapes(CliTest):
    def test_every_output_matches_the_schema(self):
        server = self.start_server()
        self.write(os.path.join(self.root, "a.bin"), b"a" * 1000)
        self.write(os.path.join(self.root, "b.bin"), b"b" * 10)
        self.write(os.path.join(self.local, "up.bin"), b"u" * 300)
        cases = [
            ("list", ["--json", "list"], 0),
            ("stat", ["--json", "stat", "a.bin"], 0),
            ("stats", ["--json", "stats"], 0),
            ("transfer", ["--json", "get", "a.bin"], 0),
            ("transfer", ["--json", "get", "a.bin", "b.bin", "-C", self.local], 0),
            ("transfer", ["--json", "--hash", "xxh3-128", "get", "b.bin", "-o", "b2.bin"], 0),
            ("transfer", ["--json", "get", "nope.bin"], 4),
            ("transfer", ["--json", "get", "a.bin", "nope.bin", "-C", self.local], 4),
            ("transfer", ["--json", "put", "up.bin"], 0),
            ("transfer", ["--json", "put", "up.bin", "--as", "up2.bin", "--no-clobber"], 0),
            ("transfer", ["--json", "put", "up.bin", "--as", "up2.bin", "--no-clobber"], 0),
            ("transfer", ["--json", "put", "missing.bin"], 3),
            ("error_only", ["--json", "stat", "nope.bin"], 4),
            ("error_only", ["--json", "frobnicate"], 2),
        ]
        for shape, args, status in cases:
            with self.subTest(args=args):
                result = self.ferry(*args, server=server)
                self.assertEqual(result.returncode, status, result.stderr)
                output = self.json_of(result)
                schema_for(shape).validate(output)
                # Nothing else in the file matches by accident.
                schema_for("error_only" if shape != "error_only" else "list").is_valid(output) and \
                    self.fail("%r also matches another shape" % output)

        # One name or several: the same shape, and the same keys per file.
        one = self.json_of(self.ferry("--json", "get", "a.bin", "-o", "one.bin", server=server))
        two = self.json_of(self.ferry("--json", "get", "a.bin", "b.bin", "-C", self.local, server=server))
        self.assertEqual(sorted(one), sorted(two))
        self.assertEqual(sorted(one["files"][0]), sorted(two["files"][0]))
        self.assertEqual(one["files"][0]["digest"],
                         {"algorithm": "sha256", "value": hashlib.sha256(b"a" * 1000).hexdigest()})
        put = self.json_of(self.ferry("--json", "put", "up.bin", "--as", "up3.bin", server=server))
        self.assertEqual(sorted(put["files"][0]), sorted(one["files"][0]))
        self.assertEqual(put["files"][0]["local"], "up.bin")

        # A get that cannot even connect still has the get shape.
        self.server.stop()
        lost = self.ferry("--json", "get", "a.bin", server=server)
        self.assertEqual(lost.returncode, 6)
        output = self.json_of(lost)
        schema_for("transfer").validate(output)
        self.assertEqual(output["files"][0]["error"]["code"], "connection_lost")


class ExitStatus(CliTest):
    def test_option_values_outside_their_range_are_usage_errors(self):
        # nan gave a timeout of undefined milliseconds, 1e-300 one of 0, 1e300
        # an overflow; each is refused, naming the option and its range.
        server = self.start_server()
        cases = [("--timeout", "nan"), ("--timeout", "inf"), ("--timeout", "1e-300"), ("--timeout", "1e300"),
                 ("--timeout", "0"), ("--timeout", "-1"), ("--timeout", ""), ("--hello-timeout", "nan"),
                 ("--hello-timeout", "1e-300"), ("--retry", "-1"), ("--retry", "101"), ("--retry", "")]
        for option, value in cases:
            with self.subTest(option=option, value=value):
                words = [f"{option}={value}"] if value else [option, ""]  # "--timeout=" is refused as it stands
                result = self.ferry(*words, "list", server=server)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn(option, result.stderr.decode())
                self.assertIn(" to ", result.stderr.decode())
        for jobs in ("0", "-1", "65", "1e1"):
            with self.subTest(jobs=jobs):
                result = self.ferry("sync", "-j", jobs, ":", self.local, server=server)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn("--jobs", result.stderr.decode())
        for option, value in (("--timeout", "30"), ("--timeout", "1e9"), ("--hello-timeout", "1000000000"),
                              ("--retry", "0"), ("--retry", "100")):
            with self.subTest(option=option, value=value):
                self.assertEqual(self.ferry(option, value, "list", server=server).returncode, 0)

    def test_statuses_tell_retry_from_give_up(self):
        server = self.start_server()
        self.write(os.path.join(self.root, "a.bin"), b"x")
        self.write(os.path.join(self.local, "l.bin"), b"y")
        self.assertEqual(self.ferry("list", server=server).returncode, 0)
        self.assertEqual(self.ferry("stat", "nope", server=server).returncode, 4)
        self.assertEqual(self.ferry("get", "nope", server=server).returncode, 4)
        self.assertEqual(self.ferry("put", "missing", server=server).returncode, 3)
        self.assertEqual(self.ferry("--bogus", server=server).returncode, 2)
        # Refused by the server and failed locally: different kinds, 1.
        self.assertEqual(self.ferry("get", "nope", "a.bin", "-C", "/nonexistent-folder-x" if False else self.local,
                                    server=server).returncode, 4)
        mixed = self.ferry("put", "missing", "l.bin", server=server)
        self.assertEqual(mixed.returncode, 0 if False else 3)
        self.server.stop()
        self.assertEqual(self.ferry("list", server=server).returncode, 6)

    def test_unauthorized_is_5_and_read_only_is_4(self):
        token = os.path.join(self.dir, "tokens")
        self.write(token, b"secret-token-for-tests rw\n")
        server = self.start_server("--token-file", token)
        self.assertEqual(self.ferry("--token", "wrong", "list", server=server).returncode, 5)
        self.assertEqual(self.ferry("--token", "secret-token-for-tests", "list", server=server).returncode, 0)


class Interrupt(CliTest):
    def test_ctrl_c_ends_by_sigint_after_cleanup(self):
        server = self.start_server()
        # The spool folder is this test's own: other suites run beside this one.
        spool_dir = os.path.join(self.dir, "tmp")
        os.mkdir(spool_dir)
        self.env["TMPDIR"] = spool_dir
        # A server that never answers a get's data fast enough does not
        # exist on loopback; stdin that never ends does: put - waits on it.
        argv = [FERRY, "--server", server, "put", "-", "--as", "s.bin"]
        proc = subprocess.Popen(argv, cwd=self.local, env=self.env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdin.write(b"partial")
        proc.stdin.flush()
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
        self.assertEqual(proc.returncode, -signal.SIGINT)
        # The shell sees 130 (the signal goes to ferry alone, as a terminal's
        # Ctrl-C would reach it in the foreground).
        shell = subprocess.Popen(["bash", "-c", '"$@"; echo "status $?"', "bash", FERRY, "--server", server,
                                  "put", "-", "--as", "x.bin"],
                                 env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        children = "/proc/%d/task/%d/children" % (shell.pid, shell.pid)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not open(children).read().split():
            time.sleep(0.05)
        time.sleep(0.5)
        os.kill(int(open(children).read().split()[0]), signal.SIGINT)
        out, _ = shell.communicate(timeout=30)
        self.assertIn(b"status 130", out)
        leftovers = [n for n in os.listdir(spool_dir) if n.startswith("ferry-stdin-")]
        self.assertEqual(leftovers, [])


class EmptyTrust(CliTest):
    def test_an_empty_pin_or_ca_is_refused_never_plaintext(self):
        # Round 76, F2: `--tls-pin "$PIN"` with PIN unset (or an empty
        # FERRY_TLS_PIN, or tls_pin = "" in the config file) spoke plaintext
        # and sent the token in clear to whatever listened.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.2)
        address = "127.0.0.1:%d" % listener.getsockname()[1]
        config = os.path.join(self.dir, "config", "ferry")
        os.makedirs(config)
        cases = [(["--tls-pin", ""], {}, b"--tls-pin", None), (["--tls-ca", ""], {}, b"--tls-ca", None),
                 (["--tls", "--tls-pin="], {}, b"--tls-pin", None),
                 ([], {"FERRY_TLS_PIN": ""}, b"FERRY_TLS_PIN", None), ([], {"FERRY_TLS_CA": ""}, b"FERRY_TLS_CA", None)]
        for key in ("tls_pin", "tls_ca", "token_file"):
            cases.append((["-s", "named"], {}, ('"%s" of [servers.named] is empty' % key).encode(),
                          '[servers.named]\naddress = "%s"\n%s = ""\n' % (address, key)))
        try:
            for argv, env, named, entry in cases:
                with self.subTest(argv=argv, env=env, entry=entry):
                    if entry is not None:
                        self.write(os.path.join(config, "config.toml"), entry.encode())
                    self.env.update(env)
                    try:
                        server = None if "-s" in argv else address
                        result = self.ferry("--token", "secret-token-of-the-test", *argv, "list", server=server)
                    finally:
                        for name in env:
                            del self.env[name]
                    self.assertEqual(result.returncode, 2, result.stderr)
                    self.assertTrue(result.stderr.startswith(b"ferry: bad_request: "), result.stderr)
                    self.assertIn(named, result.stderr)
                    with self.assertRaises(socket.timeout, msg="ferry connected"):
                        listener.accept()[0].close()
        finally:
            listener.close()


class EmptyValueAfterEquals(CliTest):
    """An option written "--name=" and nothing after it (nearly always a
    variable left unset) took the next word as its value, CLI11 reading
    "--name=" as "--name": `ferry --token=$T list` with T unset ran the
    shell on standard input with the token "list", and exited 0 having done
    nothing. A flag written so was the flag given: `sync --delete=$D` with D
    unset deleted. Both are usage errors now, naming the option."""

    def refused(self, server, *words, stdin=b""):
        result = self.ferry(*words, server=server, stdin=stdin)
        self.assertEqual(result.returncode, 2, result.stderr)
        option = next(word for word in words if word.endswith("=") and word.startswith("--"))[:-1]
        message = self.json_of(result)["error"]["message"] if "--json" in words else result.stderr.decode()
        self.assertIn(option + ": nothing follows the '=' (a variable left unset?)", message)
        return message

    def test_the_next_word_is_never_the_value(self):
        server = self.start_server()
        self.write(os.path.join(self.root, "a.bin"), b"x")
        for words in (["--token=", "--json", "list"], ["--server=", "--json", "list"],
                      ["--retry=", "--json", "list"], ["--json", "get", "--output=", "a.bin"],
                      ["--json", "get", "-C", "d", "--directory=", "a.bin"], ["--json", "sync", "--jobs=", ":", "s"],
                      ["--json", "--tls-pin=", "list"],
                      # "--" as --token's value is no end of the options (a tester's finding)
                      ["--json", "--token", "--", "--server=", "list"]):
            with self.subTest(words=words):
                self.assertIn("give it a value", self.refused(server, *words))
        self.assertEqual(sorted(os.listdir(self.local)), [])
        # In the shell's lines too (a script of them stops at a misuse, as at -o "").
        shell = self.ferry(server=server, stdin=b"get --output= a.bin\nget a.bin\n")
        self.assertEqual(shell.returncode, 2, shell.stderr)
        self.assertIn(b"--output: nothing follows the '='", shell.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.local, "a.bin")))
        # After a bare -- every word is an operand: a local file named "--x=" is sent under that name.
        self.write(os.path.join(self.local, "--x="), b"y")
        sent = self.ferry("--json", "put", "--", "--x=", server=server, stdin=b"")
        self.assertEqual(sent.returncode, 0, sent.stderr)
        with open(os.path.join(self.root, "--x="), "rb") as f:
            self.assertEqual(f.read(), b"y")

    def test_a_flag_written_with_equals_and_nothing_after_is_refused(self):
        """A flag so written was the flag given. A first version of this
        fix split it into the flag and "", a path, the server's root: `get
        -r --quiet= d/sub` fetched the whole tree over local files (a
        tester's finding). Neither happens: nothing is fetched or deleted."""
        server = self.start_server()
        os.makedirs(os.path.join(self.root, "d", "sub"))
        self.write(os.path.join(self.root, "d", "sub", "f"), b"f")
        self.write(os.path.join(self.root, "top.txt"), b"server's")
        os.makedirs(os.path.join(self.local, "mirror"))
        self.write(os.path.join(self.local, "mirror", "mine.txt"), b"mine")
        for words in (["get", "-r", "--quiet=", "d/sub"], ["--json=", "list"],
                      ["sync", "--delete=", ":d", "mirror"], ["rm", "--recursive=", "d"]):
            with self.subTest(words=words):
                self.assertIn("write the flag alone, or", self.refused(server, *words))
        self.assertEqual(sorted(os.listdir(self.local)), ["mirror"])
        self.assertEqual(os.listdir(os.path.join(self.local, "mirror")), ["mine.txt"])
        self.assertTrue(os.path.exists(os.path.join(self.root, "d", "sub", "f")))
        # A flag given its value works as before.
        listed = self.ferry("--json=true", "list", server=server, stdin=b"")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn("top.txt", [f["name"] for f in self.json_of(listed)["files"]])


class UnknownHost(CliTest):
    def test_a_host_no_resolver_knows_is_a_bad_address_not_retried(self):
        # A new user's trial (round 72, 13b): `-s typo` said connection_lost,
        # exit 6 ("try again"), and --retry tried a name no resolver knows
        # again and again. Names under .invalid never exist (RFC 6761, 6.4).
        host = "nope.invalid"
        try:
            socket.getaddrinfo(host, 7021)
            self.skipTest("this machine's resolver knows %s" % host)
        except socket.gaierror as error:
            if error.errno != socket.EAI_NONAME:
                self.skipTest("this machine's resolver cannot be asked (%s)" % error)
        for argv in (["-s", host], ["--server", host + ":7021"], ["--server", "ferry://%s:7021" % host]):
            with self.subTest(argv=argv):
                started = time.monotonic()
                result = self.ferry(*argv, "--retry", "3", "get", "a.bin")
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertLess(time.monotonic() - started, 5)   # --retry would wait between tries
                self.assertTrue(result.stderr.startswith(b"ferry: bad_request: "), result.stderr)
                self.assertIn(('no host is named "%s"' % host).encode(), result.stderr)
                self.assertNotIn(b"retrying", result.stderr)
                listed = self.ferry("--json", *argv, "list")
                self.assertEqual(listed.returncode, 2, listed.stderr)
                self.assertEqual(self.json_of(listed)["error"]["code"], "bad_request")
        # A host that resolves but has nothing listening stays transient.
        self.assertEqual(self.ferry("list", server="127.0.0.1:1").returncode, 6)


class StdinSpool(CliTest):
    def test_the_spool_has_no_name_so_a_kill_leaves_nothing(self):
        # put - spooled standard input to $TMPDIR/ferry-stdin-XXXXXX and
        # removed it at the end: a kill -9 left a full copy there for good.
        server = self.start_server()
        spool_dir = os.path.join(self.dir, "tmp")
        os.mkdir(spool_dir)
        env = dict(self.env, TMPDIR=spool_dir)
        proc = subprocess.Popen([FERRY, "--server", server, "--no-progress", "put", "-", "--as", "s.bin"],
                                cwd=self.local, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            proc.stdin.write(b"secret " * 100000)
            proc.stdin.flush()
            # Once ferry holds the spool open (still reading: stdin is open),
            # no name in $TMPDIR may lead to it.
            spool = None
            deadline = time.monotonic() + 20
            while spool is None and time.monotonic() < deadline and proc.poll() is None:
                for fd in os.listdir("/proc/%d/fd" % proc.pid):
                    try:
                        link = os.readlink("/proc/%d/fd/%s" % (proc.pid, fd))
                    except OSError:
                        continue
                    if link.startswith(spool_dir + "/"):
                        spool = link
                time.sleep(0.01)
            self.assertIsNotNone(spool, "no spool seen open")
            self.assertEqual(os.listdir(spool_dir), [], spool)
        finally:
            proc.kill()
            proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, -signal.SIGKILL)
        self.assertEqual(os.listdir(spool_dir), [])
        # And it still sends what it read, through the descriptor.
        data = b"piped bytes " * 5000
        sent = self.ferry("--json", "put", "-", "--as", "again.bin", server=server, stdin=data)
        self.assertEqual(sent.returncode, 0, sent.stderr)
        with open(os.path.join(self.root, "again.bin"), "rb") as f:
            self.assertEqual(f.read(), data)
        skipped = self.json_of(self.ferry("--json", "put", "--skip-identical", "-", "--as", "again.bin",
                                          server=server, stdin=data))
        self.assertEqual(skipped["files"][0].get("skipped"), "identical")


class NotFerryd(CliTest):
    def check_fast_failure(self, fake, words):
        try:
            start = time.monotonic()
            result = self.ferry("--json", "list", server="127.0.0.1:%d" % fake.port, timeout=30)
            took = time.monotonic() - start
        finally:
            fake.close()
        self.assertEqual(result.returncode, 8, result.stdout)
        error = self.json_of(result)["error"]
        self.assertEqual(error["code"], "not_ferry")
        self.assertIn("does not speak the Ferry protocol", error["message"])
        self.assertIn(words, error["message"])
        self.assertLess(took, 3.0)  # "within a second", with room for a loaded machine

    def test_http_server(self):
        self.check_fast_failure(FakeServer(reply=b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"), "HTTP")

    def test_ssh_server(self):
        self.check_fast_failure(FakeServer(banner=b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"), "SSH")

    def test_silent_server_fails_at_the_hello_timeout(self):
        fake = FakeServer()
        try:
            start = time.monotonic()
            result = self.ferry("--json", "--hello-timeout", "1", "list", server="127.0.0.1:%d" % fake.port)
            took = time.monotonic() - start
        finally:
            fake.close()
        self.assertEqual(result.returncode, 6)
        self.assertIn("no answer to hello", self.json_of(result)["error"]["message"])
        self.assertLess(took, 10.0)


class Verbosity(CliTest):
    def test_quiet_verbose_and_no_progress(self):
        server = self.start_server()
        self.write(os.path.join(self.root, "a.bin"), b"a" * 100)
        quiet = self.ferry("-q", "get", "a.bin", server=server)
        self.assertEqual((quiet.returncode, quiet.stdout, quiet.stderr), (0, b"", b""))
        quiet_error = self.ferry("-q", "get", "nope.bin", server=server)
        self.assertIn(b"not_found", quiet_error.stderr)
        normal = self.ferry("get", "a.bin", "-o", "b.bin", server=server)
        self.assertIn(b"a.bin -> b.bin", normal.stdout)
        verbose = self.ferry("-v", "get", "a.bin", "-o", "c.bin", server=server)
        self.assertIn(b"connected to " + server.encode(), verbose.stderr)
        # list prints its listing even when quiet: that is what it is for.
        self.assertIn(b"a.bin", self.ferry("-q", "list", server=server).stdout)
        self.assertEqual(self.ferry("--no-progress", "get", "a.bin", "-o", "d.bin", server=server).returncode, 0)
        self.assertEqual(self.ferry("-q", "-v", "list", server=server).returncode, 2)


class NamedServers(CliTest):
    def test_config_file_and_ferry_urls(self):
        server = self.start_server()
        self.write(os.path.join(self.root, "a b.bin"), b"spaced")
        os.makedirs(os.path.join(self.dir, "config", "ferry"))
        self.write(os.path.join(self.dir, "config", "ferry", "config.toml"),
                   ('default = "home"\n[servers.home]\naddress = "%s"\n'
                    '[servers.backup]\naddress = "ferry://%s"\n' % (server, server)).encode())
        self.assertEqual(self.ferry("--json", "list").returncode, 0)  # the default
        listed = self.json_of(self.ferry("--json", "-s", "backup", "list"))
        self.assertEqual([f["name"] for f in listed["files"]], ["a b.bin"])
        self.assertEqual(self.ferry("--json", "--server", "ferry://" + server, "list").returncode, 0)
        self.assertEqual(self.ferry("--json", "--server", "ferry://%s/" % server, "list").returncode, 0)
        got = self.ferry("--json", "get", "ferry://%s/a%%20b.bin" % server, "-o", "x.bin", server="nowhere.invalid:1")
        self.assertEqual(got.returncode, 0, got.stdout)
        self.assertEqual(open(os.path.join(self.local, "x.bin"), "rb").read(), b"spaced")
        self.assertEqual(self.ferry("stat", "ferry://%s/a%%20b.bin" % server).returncode, 0)
        self.assertEqual(self.ferry("get", "ferry://[::1/x").returncode, 2)
        self.write(os.path.join(self.dir, "config", "ferry", "config.toml"), b"[servers.x]\nadress = 'typo'\n")
        bad = self.ferry("list")
        self.assertEqual(bad.returncode, 2)
        self.assertIn(b"adress", bad.stderr)

    def test_a_config_file_named_by_ferry_config_must_be_there(self):
        # A new user's trial (round 72): a misspelt FERRY_CONFIG was ignored,
        # and the default server's connection error (exit 6, "try again")
        # said nothing of the file.
        missing = os.path.join(self.dir, "nope.toml")
        self.env["FERRY_CONFIG"] = missing
        try:
            result = self.ferry("list")
        finally:
            del self.env["FERRY_CONFIG"]
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn(('config file "%s"' % missing).encode(), result.stderr)
        self.assertIn(b"FERRY_CONFIG names it", result.stderr)


class NulInTheConfigFile(CliTest):
    def test_a_nul_in_a_value_is_refused_naming_the_key(self):
        """TOML writes NUL as \\u0000: a tls_ca or token_file cut short
        there by the system names another file than the one written, an
        address another server. Refused before anything is read or sent."""
        server = self.start_server()
        os.makedirs(os.path.join(self.dir, "config", "ferry"))
        ca = os.path.join(self.dir, "ca.pem")
        for key, value in (("tls_ca", ca + "\\u0000.other"), ("token_file", ca + "\\u0000x"),
                           ("address", server + "\\u0000x"), ("tls_pin", "sha256:\\u0000")):
            with self.subTest(key=key):
                entry = '[servers.named]\n%s = "%s"\n' % (key, value)
                if key != "address":
                    entry += 'address = "%s"\n' % server
                self.write(os.path.join(self.dir, "config", "ferry", "config.toml"), entry.encode())
                result = self.ferry("-s", "named", "list", stdin=b"")
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn(('"%s" of [servers.named] holds a NUL character' % key).encode(), result.stderr)


class PutAndClobber(CliTest):
    def test_put_from_standard_input(self):
        server = self.start_server()
        data = os.urandom(300_000)
        result = self.ferry("--json", "put", "-", "--as", "piped.bin", server=server, stdin=data)
        self.assertEqual(result.returncode, 0, result.stdout)
        output = self.json_of(result)
        self.assertEqual(output["files"][0]["local"], "-")
        self.assertEqual(open(os.path.join(self.root, "piped.bin"), "rb").read(), data)
        self.assertEqual(self.ferry("put", "-", server=server, stdin=b"x").returncode, 2)  # no --as

    def test_put_as_into_a_missing_folder_says_what_makes_it(self):
        # A new user's trial (round 72): not_found, and no way out named.
        server = self.start_server()
        self.write(os.path.join(self.local, "a.txt"), b"a")
        result = self.ferry("put", "a.txt", "--as", "newdir/x.txt", server=server)
        self.assertEqual(result.returncode, 4, result.stderr)
        self.assertIn(b'no folder named "newdir" (put -C FOLDER, or mkdir -p, makes the missing folders)',
                      result.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.root, "newdir")))

    def test_no_clobber_and_skip_identical(self):
        server = self.start_server()
        self.write(os.path.join(self.root, "a.bin"), b"server copy")
        self.write(os.path.join(self.local, "a.bin"), b"local copy!")
        kept = self.json_of(self.ferry("--json", "get", "--no-clobber", "a.bin", server=server))
        self.assertEqual(kept["files"][0]["skipped"], "exists")
        self.assertEqual(open(os.path.join(self.local, "a.bin"), "rb").read(), b"local copy!")
        not_sent = self.json_of(self.ferry("--json", "put", "--no-clobber", "a.bin", server=server))
        self.assertEqual(not_sent["files"][0]["skipped"], "exists")
        self.assertEqual(open(os.path.join(self.root, "a.bin"), "rb").read(), b"server copy")
        # Same size, other bytes: not identical, replaced.
        replaced = self.json_of(self.ferry("--json", "get", "--skip-identical", "a.bin", server=server))
        self.assertNotIn("skipped", replaced["files"][0])
        self.assertEqual(open(os.path.join(self.local, "a.bin"), "rb").read(), b"server copy")
        same = self.json_of(self.ferry("--json", "get", "--skip-identical", "a.bin", server=server))
        self.assertEqual(same["files"][0]["skipped"], "identical")
        same_put = self.json_of(self.ferry("--json", "put", "--skip-identical", "a.bin", server=server))
        self.assertEqual(same_put["files"][0]["skipped"], "identical")
        self.write(os.path.join(self.local, "a.bin"), b"changed here")
        sent = self.json_of(self.ferry("--json", "put", "--skip-identical", "a.bin", server=server))
        self.assertNotIn("skipped", sent["files"][0])
        self.assertEqual(open(os.path.join(self.root, "a.bin"), "rb").read(), b"changed here")

    def test_a_summary_counts_skipped_files_apart_from_sent_ones(self):
        """A file skipped by --skip-identical or --no-clobber was not moved:
        the summary line must not count it as sent or received."""
        server = self.start_server()
        for name in ("a.bin", "b.bin", "c.bin"):
            self.write(os.path.join(self.root, name), b"same " + name.encode())
            self.write(os.path.join(self.local, name), b"same " + name.encode())
        self.write(os.path.join(self.local, "c.bin"), b"other bytes")
        put = self.ferry("put", "--skip-identical", "a.bin", "b.bin", "c.bin", server=server)
        self.assertEqual(put.returncode, 0, put.stderr)
        self.assertIn(b"3 files: 1 sent, 2 skipped, 0 failed;", put.stdout)
        self.assertNotIn(b"ok", put.stdout.splitlines()[-1])
        got = self.ferry("get", "-n", "a.bin", "b.bin", server=server)
        self.assertIn(b"2 files: 0 received, 2 skipped, 0 failed; 0 B", got.stdout)
        counted = self.json_of(self.ferry("--json", "get", "-n", "a.bin", "b.bin", server=server))
        self.assertEqual((counted["summary"]["ok"], counted["summary"]["skipped"]), (2, 2))
        moved = self.ferry("get", "a.bin", "b.bin", server=server)
        self.assertIn(b"2 files: 2 received, 0 failed;", moved.stdout)


class GetToStandardOutput(CliTest):
    @unittest.skipUnless(shutil.which("strace"), "needs strace")
    def test_a_block_received_is_one_write_not_one_per_frame(self):
        """256 KiB data frames arrive in pieces cut by reads and headers:
        standard output gets the pieces of each block received (1 MiB) in one
        writev, not a write each, with either hash (SHA-256's pieces are
        hashed on a second thread from the same blocks)."""
        server = self.start_server()
        data = os.urandom(8 * 1024 * 1024)
        self.write(os.path.join(self.root, "big.bin"), data)
        out_path = os.path.join(self.dir, "out.bin")
        trace = os.path.join(self.dir, "trace")
        env = harness.traceable(self.env)
        frames = len(data) // (256 * 1024)
        for hash_name in ("sha256", "xxh3-128"):
            with open(out_path, "wb") as out:
                result = subprocess.run(["strace", "-f", "-qq", "-o", trace, "-e", "trace=write,writev", FERRY,
                                         "--server", server, "--hash", hash_name, "get", "big.bin", "-o", "-"],
                                        cwd=self.local, env=env, stdout=out, stderr=subprocess.PIPE, timeout=120)
            self.assertEqual(result.returncode, 0, result.stderr)
            with open(out_path, "rb") as f:
                self.assertTrue(f.read() == data, "the bytes written differ from the file's")
            with open(trace) as f:
                # strace pads a short process id ("123  write(1, ..."): split on any run of blanks.
                calls = [line.split(None, 1)[1] for line in f if len(line.split(None, 1)) == 2]
            to_stdout = [c for c in calls if c.startswith(("write(1,", "writev(1,"))]
            # About one per MiB (8), a few more for bytes read before the
            # blocks were lent; a write per frame would be 32 or more.
            self.assertLess(len(to_stdout), frames * 3 // 4, (hash_name, len(to_stdout)))


class Retry(CliTest):
    def test_retry_waits_for_the_server_to_come_back(self):
        # A port where no server is yet; ferryd starts there after a moment.
        port = free_port_outside_the_ephemeral_range()
        self.write(os.path.join(self.root, "a.bin"), b"later")
        no_retry = self.ferry("get", "a.bin", server="127.0.0.1:%d" % port)
        self.assertEqual(no_retry.returncode, 6)
        proc = subprocess.Popen([FERRY, "--server", "127.0.0.1:%d" % port, "--retry", "4", "-v", "get", "a.bin"],
                                cwd=self.local, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.5)
        self.server = Server(FERRYD, self.root)
        # ferryd picks its own port with :0; start one on the chosen port.
        self.server.stop()
        self.server = None
        late = subprocess.Popen([FERRYD, "--root", self.root, "--listen", "127.0.0.1:%d" % port],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            out, err = proc.communicate(timeout=60)
        finally:
            late.terminate()
            late.wait(15)
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn(b"retrying", err)
        self.assertEqual(open(os.path.join(self.local, "a.bin"), "rb").read(), b"later")
        # A refusal is not retried: the answer would not change.
        start = time.monotonic()
        self.assertEqual(self.ferry("--retry", "3", "stat", "nope", server="127.0.0.1:1").returncode, 6)
        self.assertLess(time.monotonic() - start, 30)


class Completions(CliTest):
    def test_bash_completion_offers_commands_flags_and_remote_names(self):
        script = os.path.join(HERE, "..", "..", "packaging", "completions", "ferry.bash")
        server = self.start_server()
        self.write(os.path.join(self.root, "remote file.bin"), b"r")
        self.write(os.path.join(self.root, "report.pdf"), b"r")
        probe = ('source "$1"; COMP_WORDS=(ferry --server "$2" get re); COMP_CWORD=4; '
                 'COMP_LINE="ferry --server $2 get re"; COMP_POINT=${#COMP_LINE}; _ferry; '
                 'printf "%s\\n" "${COMPREPLY[@]}"; '
                 'COMP_WORDS=(ferry g); COMP_CWORD=1; _ferry; printf "%s\\n" "${COMPREPLY[@]}"; '
                 'COMP_WORDS=(ferry get --no); COMP_CWORD=2; _ferry; printf "%s\\n" "${COMPREPLY[@]}"')
        result = subprocess.run(["bash", "-c", probe, "bash", script, server, FERRY], env=dict(self.env, PATH=os.path.dirname(FERRY) + ":" + self.env["PATH"]),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        lines = result.stdout.decode().splitlines()
        self.assertIn("remote\\ file.bin", lines, result.stderr)
        self.assertIn("report.pdf", lines)
        self.assertIn("get", lines)
        self.assertIn("--no-clobber", lines)
        zsh = os.path.join(HERE, "..", "..", "packaging", "completions", "_ferry")
        self.assertTrue(open(zsh).read().startswith("#compdef ferry"))


STATE_TMP = "big.ferry-part.state.tmp-"


class KilledDownloadLeftovers(CliTest):
    """What a kill -9 of a download leaves (attack round 15, item 7). A
    checkpoint's temporary (NAME.ferry-part.state.tmp-XXXXXX) is given its
    name only once whole (O_TMPFILE, then linkat), so a kill while it is
    written leaves nothing; one left anyway (a kill between the link and
    the rename, or an older build's) goes with the next download of that
    name, which holds the part's lock. Only ferry's exact names, this
    user's small files with one name: look-alikes, another user's file, a
    large file, a hard-linked one, another name's temporary stay. A real
    kill -9 loop ends, after one rerun, with the file and no working file."""

    SIZE = 8 << 20

    def setUp(self):
        super().setUp()
        self.data = bytes(i % 251 for i in range(self.SIZE))
        self.write(os.path.join(self.root, "big"), self.data)
        self.address = self.start_server()
        self.part = os.path.join(self.local, "big.ferry-part")

    def cut_get(self, argv_prefix=()):
        relay = harness.CuttingRelay(self.address, 3 << 20)
        try:
            cut = subprocess.run(list(argv_prefix) + [FERRY, "--server", relay.address, "--no-progress", "get", "big"],
                                 cwd=self.local, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 timeout=120)
        finally:
            relay.close()
        self.assertNotEqual(cut.returncode, 0, cut.stderr)
        self.assertTrue(os.path.exists(self.part + ".state"), os.listdir(self.local))

    def plant(self, name, data, mode=0o600):
        path = os.path.join(self.local, name)
        self.write(path, data)
        os.chmod(path, mode)
        return path

    def test_a_resumed_part_takes_the_folders_default_acl_as_it_stands_at_the_publish(self):
        # Round 45: the part inherited the folder's default ACL when it was
        # made (named user 1234, masked to nothing by 0600); removed since
        # (setfacl -k), the published file kept that entry, opened by the
        # chmod's mask. A file made there now gets no ACL: nor does this one.
        made = subprocess.run(["setfacl", "-d", "-m", "u::rwx,u:1234:rwx,g::r-x,o::---", self.local],
                              stderr=subprocess.DEVNULL)
        if made.returncode != 0:
            self.skipTest("no ACLs on this file system")
        self.cut_get()
        subprocess.run(["setfacl", "-k", self.local], check=True)
        rerun = self.ferry("--no-progress", "get", "big", server=self.address)
        self.assertEqual(rerun.returncode, 0, rerun.stderr)
        acl = subprocess.run(["getfacl", "-cnp", os.path.join(self.local, "big")], stdout=subprocess.PIPE,
                             check=True).stdout.decode()
        self.assertNotIn("1234", acl)
        self.assertNotIn("mask", acl)
        umask = os.umask(0)
        os.umask(umask)
        served = os.stat(os.path.join(self.root, "big")).st_mode & 0o777
        self.assertEqual(os.stat(os.path.join(self.local, "big")).st_mode & 0o7777, served & ~umask)

    def test_the_next_download_of_the_name_removes_the_temporaries_a_kill_left(self):
        self.cut_get()
        with open(self.part + ".state", "rb") as f:
            state = f.read()
        ours = [self.plant(STATE_TMP + "QwErTy", state)]  # killed between the link and the rename
        kept = {
            STATE_TMP + "0aZ9x1": b"",                          # empty: not what the state reader reads
            STATE_TMP + "notes": b"the user's notes",          # five letters: not mkstemp's six
            STATE_TMP + "no.tes": b"a dot is no random letter",
            STATE_TMP + "QwErTy7": b"seven",
            STATE_TMP + "Large1": b"L" * (65 * 1024),         # larger than any sidecar
            STATE_TMP + "Plain1": b"downloaded to this name",  # not a sidecar's JSON
            STATE_TMP + "Linkd1": state,                       # a second name below
            "x.ferry-part.state.tmp-AbCdEf": state,           # another download's
        }
        for name, data in kept.items():
            self.plant(name, data)
        os.link(os.path.join(self.local, STATE_TMP + "Linkd1"), os.path.join(self.local, "linked-copy"))
        if os.geteuid() == 0:
            other = self.plant(STATE_TMP + "Other1", state)
            os.chown(other, 1234, 1234)
            kept[STATE_TMP + "Other1"] = state
        os.mkdir(os.path.join(self.local, STATE_TMP + "Dir123"))

        rerun = self.ferry("--no-progress", "get", "big", server=self.address)
        self.assertEqual(rerun.returncode, 0, rerun.stderr)
        with open(os.path.join(self.local, "big"), "rb") as f:
            self.assertEqual(f.read(), self.data)
        for path in ours:
            self.assertFalse(os.path.exists(path), (path, sorted(os.listdir(self.local))))
        for name, data in kept.items():
            with open(os.path.join(self.local, name), "rb") as f:
                self.assertEqual(f.read(), data, name)
        self.assertTrue(os.path.isdir(os.path.join(self.local, STATE_TMP + "Dir123")))
        self.assertFalse(os.path.exists(self.part))
        self.assertFalse(os.path.exists(self.part + ".state"))

    def test_a_part_another_download_holds_keeps_its_temporaries(self):
        self.cut_get()
        with open(self.part + ".state", "rb") as f:
            state = f.read()
        temporary = self.plant(STATE_TMP + "Held12", state)
        with open(self.part, "rb") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            refused = self.ferry("--no-progress", "get", "big", server=self.address)
            self.assertNotEqual(refused.returncode, 0, refused.stderr)
            self.assertTrue(os.path.exists(temporary))
            self.assertTrue(os.path.exists(self.part + ".state"))
        done = self.ferry("--no-progress", "get", "big", server=self.address)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertFalse(os.path.exists(temporary), sorted(os.listdir(self.local)))

    def test_only_what_ferry_writes_is_removed(self):
        # Attack round 18, finding 4: the rule is what ferry writes (mode
        # 0600, the state's format read by its reader), not "starts with {".
        self.cut_get()
        with open(self.part + ".state", "rb") as f:
            state = f.read()
        ours = self.plant(STATE_TMP + "Exact1", state)
        kept = {
            STATE_TMP + "Mode44": (state, 0o644),
            STATE_TMP + "Mode40": (state, 0o400),
            STATE_TMP + "Empty0": (b"", 0o600),
            STATE_TMP + "Json01": (b'{"my":"notes"}', 0o600),
            STATE_TMP + "Cut001": (state[:40], 0o600),
        }
        for name, (data, mode) in kept.items():
            self.plant(name, data, mode)
        rerun = self.ferry("--no-progress", "get", "big", server=self.address)
        self.assertEqual(rerun.returncode, 0, rerun.stderr)
        self.assertFalse(os.path.exists(ours), sorted(os.listdir(self.local)))
        for name, (data, mode) in kept.items():
            with open(os.path.join(self.local, name), "rb") as f:
                self.assertEqual(f.read(), data, name)
        self.assertEqual([n for n in os.listdir(self.local) if n.startswith(".ferry-removing-")], [])

    def test_a_rerun_with_no_part_and_a_skipped_get_remove_the_leftovers(self):
        # Attack round 18, finding 6: "the next download of that name"
        # removes the temporaries and the stray state also where the part
        # is gone, and where get -n skips the name.
        self.cut_get()
        with open(self.part + ".state", "rb") as f:
            state = f.read()
        os.unlink(self.part)
        temporary = self.plant(STATE_TMP + "NoPart", state)
        rerun = self.ferry("--no-progress", "get", "big", server=self.address)
        self.assertEqual(rerun.returncode, 0, rerun.stderr)
        self.assertEqual([n for n in os.listdir(self.local) if ".ferry-part" in n], [], temporary)
        for flag in ("-n", "--skip-identical"):
            self.plant("big.ferry-part.state", state)
            self.plant(STATE_TMP + "Skip01", state)
            mine = self.plant(STATE_TMP + "Mine01", b"user text")
            skipped = self.ferry("--no-progress", "get", flag, "big", server=self.address)
            self.assertEqual(skipped.returncode, 0, skipped.stderr)
            self.assertEqual(sorted(n for n in os.listdir(self.local) if ".ferry-part" in n),
                             [os.path.basename(mine)], flag)
            os.unlink(mine)

    @unittest.skipUnless(shutil.which("strace"), "needs strace")
    def test_a_checkpoints_temporary_has_a_name_only_once_it_is_whole(self):
        try:
            os.close(os.open(self.local, os.O_TMPFILE | os.O_WRONLY, 0o600))
        except OSError:
            self.skipTest("the test folder's file system makes no unnamed file")
        trace = os.path.join(self.dir, "trace")
        env_had = dict(self.env)
        self.env = harness.traceable(self.env)
        try:
            self.cut_get(["strace", "-f", "-qq", "-o", trace, "-e", "trace=openat,open,creat,linkat,link"])
        finally:
            self.env = env_had
        with open(trace) as f:
            calls = [line for line in f if ".ferry-part.state.tmp-" in line]
        created = [c for c in calls if re.search(r"\bopen(at)?\(", c) and "O_CREAT" in c]
        linked = [c for c in calls if "linkat(" in c]
        self.assertEqual(created, [], "a temporary created under its name, written there")
        self.assertGreaterEqual(len(linked), 1, calls)

    def test_a_real_kill_loop_leaves_nothing_after_the_rerun(self):
        # Past two 64 MiB checkpoints, so that kills land before, inside
        # and after a state's write, and around the publish.
        self.data = os.urandom(130 << 20)
        self.write(os.path.join(self.root, "big"), self.data)
        deadline = time.monotonic() + 4
        kills = 0
        while time.monotonic() < deadline:
            proc = subprocess.Popen([FERRY, "--server", self.address, "--no-progress", "get", "big"],
                                    cwd=self.local, env=self.env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(0.01 + (kills * 7 % 23) * 0.02)
            proc.kill()
            proc.wait(timeout=30)
            kills += 1
            big = os.path.join(self.local, "big")
            if os.path.exists(big):
                with open(big, "rb") as f:
                    self.assertEqual(f.read(), self.data, "a half file under the final name")
        rerun = self.ferry("--no-progress", "get", "big", server=self.address)
        self.assertEqual(rerun.returncode, 0, rerun.stderr)
        with open(os.path.join(self.local, "big"), "rb") as f:
            self.assertEqual(f.read(), self.data)
        self.assertEqual([n for n in os.listdir(self.local) if ".ferry-part" in n], [], kills)


class TwoDownloadsToOneName(CliTest):
    """Two downloads of one file to one name at once (attack round 20, F1): the one that loses the part
    says busy (exit status 6, which --retry gets past), never local_io (3), whatever moment it loses at.
    The window was a new part's, between its creation and its lock: another download met it empty and
    unlocked, took it for a leftover of ferry's and removed it, and the first then downloaded into a file
    that no longer had a name. The fault library (test/faults) holds the first download in that window:
    its exclusive flock waits until the second has run to its end and published the file."""

    def test_the_download_whose_new_part_is_taken_meanwhile_is_busy(self):
        library = self.fault_library()
        data = bytes(i % 253 for i in range(3 << 20))
        self.write(os.path.join(self.root, "f.bin"), data)
        address = self.start_server()
        part = os.path.join(self.local, "f.bin.ferry-part")
        held = preloaded(self.env, library, FERRY_FLOCK_WAIT_FOR=os.path.join(self.local, "f.bin"))
        first = subprocess.Popen([FERRY, "--server", address, "--no-progress", "get", "f.bin"], cwd=self.local,
                                 env=held, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            # The first one's part stands (empty, not locked yet): the second starts now.
            deadline = time.monotonic() + 20
            while not os.path.exists(part) and first.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertTrue(os.path.exists(part), "no part was made")
            second = self.ferry("--no-progress", "get", "f.bin", server=address)
            out, err = first.communicate(timeout=60)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        self.assertEqual(second.returncode, 0, second.stderr)
        self.assertEqual(first.returncode, 6, err)
        self.assertIn(b"busy", err)
        with open(os.path.join(self.local, "f.bin"), "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertEqual(sorted(os.listdir(self.local)), ["f.bin"])


class ASidecarBesideAPartReplacedAtCreation(CliTest):
    """Attack round 87, F1: a download that finds no part and no sidecar when it is planned does not look
    for the sidecar again; but a download cut short under the same name after the plan leaves both, and
    the part's creation then replaces that part. Its sidecar went too only at the publish, which no longer
    looked, and stayed beside the published file. The fault library holds the pull (get -r plans every
    file first) at its first part's lock while the leftovers of a real cut download are put under the
    second file's names."""

    def test_the_sidecar_of_a_part_replaced_since_the_plan_goes_too(self):
        library = self.fault_library()
        big = bytes(i % 251 for i in range(8 << 20))
        self.write(os.path.join(self.root, "big"), big)
        os.makedirs(os.path.join(self.root, "d"))
        self.write(os.path.join(self.root, "d", "a"), b"first")
        self.write(os.path.join(self.root, "d", "b"), b"second")
        address = self.start_server()
        cut = os.path.join(self.dir, "cut")
        os.mkdir(cut)
        relay = harness.CuttingRelay(address, 3 << 20)
        try:
            subprocess.run([FERRY, "--server", relay.address, "--no-progress", "get", "big"], cwd=cut, env=self.env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        finally:
            relay.close()
        self.assertEqual(sorted(os.listdir(cut)), ["big.ferry-part", "big.ferry-part.state"])
        dest = os.path.join(self.local, "copy")
        go = os.path.join(self.dir, "go")
        held = preloaded(self.env, library, FERRY_FLOCK_WAIT_FOR=go)
        pull = subprocess.Popen([FERRY, "--server", address, "--no-progress", "get", "-r", "d", "-C", dest],
                                cwd=self.local, env=held, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            first_part = os.path.join(dest, "d", "a.ferry-part")
            deadline = time.monotonic() + 30
            while not os.path.exists(first_part) and pull.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            self.assertTrue(os.path.exists(first_part), "no part was made")
            # b was planned with nothing under its names: now a cut download's part and sidecar stand there.
            os.rename(os.path.join(cut, "big.ferry-part"), os.path.join(dest, "d", "b.ferry-part"))
            os.rename(os.path.join(cut, "big.ferry-part.state"), os.path.join(dest, "d", "b.ferry-part.state"))
            open(go, "w").close()
            out, err = pull.communicate(timeout=60)
        finally:
            if pull.poll() is None:
                pull.kill()
                pull.wait()
        self.assertEqual(pull.returncode, 0, err)
        self.assertEqual(sorted(os.listdir(os.path.join(dest, "d"))), ["a", "b"])
        with open(os.path.join(dest, "d", "b"), "rb") as f:
            self.assertEqual(f.read(), b"second")


class ANameTakenAgainAsALeftoverPartGoes(CliTest):
    """Attack round 87, an aside: a download that finds a leftover part of ferry's under its part's name
    removes it and makes its own; should something take the name again between that removal and the
    creation (another download saved under the same name, racing), the download stops. It stopped as a
    local failure ("cannot create ...: File exists", local_io), where every other race with a download
    under the same name is `busy`. The fault library makes a file under the name the instant the leftover
    is unlinked."""

    def test_the_download_that_loses_the_name_again_is_busy(self):
        library = self.fault_library()
        self.write(os.path.join(self.root, "big"), bytes(i % 251 for i in range(8 << 20)))
        self.write(os.path.join(self.root, "f"), b"the file")
        address = self.start_server()
        relay = harness.CuttingRelay(address, 3 << 20)
        try:
            subprocess.run([FERRY, "--server", relay.address, "--no-progress", "get", "big"], cwd=self.local,
                           env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        finally:
            relay.close()
        # A cut download's part and sidecar, left under f's names: a part of ferry's, of another file.
        os.rename(os.path.join(self.local, "big.ferry-part"), os.path.join(self.local, "f.ferry-part"))
        os.rename(os.path.join(self.local, "big.ferry-part.state"), os.path.join(self.local, "f.ferry-part.state"))
        taken = preloaded(self.env, library, FERRY_CREATE_AFTER_SET_ASIDE_UNLINK="f.ferry-part")
        result = subprocess.run([FERRY, "--server", address, "--no-progress", "--json", "get", "f"], cwd=self.local,
                                env=taken, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(result.returncode, 6, result.stdout + result.stderr)
        self.assertIn(b'"busy"', result.stdout + result.stderr)
        self.assertNotIn(b"File exists", result.stdout + result.stderr)
        # What took the name is left as it is, and nothing was published.
        self.assertFalse(os.path.exists(os.path.join(self.local, "f")))
        self.assertEqual(os.path.getsize(os.path.join(self.local, "f.ferry-part")), 0)


class HashBesideTheTransfer(CliTest):
    """From 4 MiB on, a transfer's SHA-256 runs on a thread of its own, beside the thread that reads and
    sends (put) or receives (get): in turn on one thread, an upload ran at about half the hash's speed.
    A put once handed its bytes to that thread from memory of its own, which the pipeline hashes on the
    caller's thread: every byte was hashed in turn again. The fault library (test/faults) logs the thread
    of each SHA256_Update."""

    def hashed_where(self, log):
        where = {"main": 0, "other": 0}
        with open(log) as f:
            for line in f:
                thread, length = line.split()
                where[thread] += int(length)
        return where

    def test_sha256_of_a_big_put_and_get_runs_off_the_sending_thread(self):
        library = self.fault_library()
        address = self.start_server()
        data = os.urandom(9 * 1024 * 1024 + 123)
        self.write(os.path.join(self.local, "big.bin"), data)
        for verb, args in (("put", ["put", "big.bin"]), ("get", ["get", "big.bin", "-o", "back.bin"])):
            log = os.path.join(self.dir, verb + ".sha256-log")
            result = subprocess.run([FERRY, "--server", address, "--hash", "sha256", "--no-progress", *args],
                                    cwd=self.local, env=preloaded(self.env, library, FERRY_SHA256_LOG=log),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
            self.assertEqual(result.returncode, 0, result.stderr)
            where = self.hashed_where(log)
            # Every byte is hashed, and (but for a few read before a get's
            # blocks are lent) on the other thread. (A file written in the
            # 2 s before a put is hashed once more after its last byte, on
            # the first thread, to see that it did not change meanwhile.)
            self.assertGreaterEqual(where["main"] + where["other"], len(data), (verb, where))
            self.assertGreaterEqual(where["other"], len(data) - 1024 * 1024, (verb, where))
        with open(os.path.join(self.root, "big.bin"), "rb") as f:
            self.assertTrue(f.read() == data, "the upload's bytes differ")
        with open(os.path.join(self.local, "back.bin"), "rb") as f:
            self.assertTrue(f.read() == data, "the download's bytes differ")

    @unittest.skipUnless(shutil.which("strace"), "needs strace")
    def test_xxh3_of_a_big_put_starts_no_thread(self):
        """XXH3 costs less than handing bytes to another thread: a put hashes it in place, and starts
        no thread that would only wait (nor takes the pipeline's 4 MiB of blocks)."""
        address = self.start_server()
        self.write(os.path.join(self.local, "big.bin"), os.urandom(9 * 1024 * 1024))
        trace = os.path.join(self.dir, "trace")
        env = harness.traceable(self.env)
        result = subprocess.run(["strace", "-f", "-qq", "-o", trace, "-e", "trace=clone,clone3", FERRY,
                                 "--server", address, "--hash", "xxh3-128", "--no-progress", "put", "big.bin"],
                                cwd=self.local, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(trace) as f:
            self.assertEqual([line for line in f if "clone" in line], [])


class WithoutRenameFlags(CliTest):
    """On a file system without renameat2's flags (NFS, some FUSE: EINVAL), a part of ferry's left by a
    killed download is still replaced by the next get of that file (review of round 20): its removal sets
    it aside with a plain rename, as where RENAME_NOREPLACE is, rather than leaving it and failing the
    download with local_io. The fault library fails every flagged renameat2 of ferry with EINVAL."""

    def test_a_killed_downloads_part_is_replaced(self):
        library = self.fault_library()
        data = bytes(i % 251 for i in range(1 << 20))
        self.write(os.path.join(self.root, "f.bin"), data)
        address = self.start_server()
        # What a kill before the first byte leaves: an empty part, no sidecar.
        self.write(os.path.join(self.local, "f.bin.ferry-part"), b"")
        self.env = preloaded(self.env, library, FERRY_NO_RENAME_FLAGS="1")
        got = self.ferry("--no-progress", "get", "f.bin", server=address)
        self.assertEqual(got.returncode, 0, got.stderr)
        with open(os.path.join(self.local, "f.bin"), "rb") as f:
            self.assertEqual(f.read(), data)
        self.assertEqual(sorted(os.listdir(self.local)), ["f.bin"])


def main():
    global FERRYD, FERRY
    parser = argparse.ArgumentParser()
    harness.add_binaries(parser, ["ferryd", "ferry"])
    args, rest = parser.parse_known_args()
    paths = harness.export_binaries(parser, args, ["ferryd", "ferry"])
    FERRYD, FERRY = paths["ferryd"], paths["ferry"]
    program = unittest.main(argv=[sys.argv[0]] + rest, verbosity=2, exit=False)
    return harness.report(program.result)


if __name__ == "__main__":
    sys.exit(main())
