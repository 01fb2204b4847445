"""The files an operator names by path (--token-file, --config, --log-file,
--tls-cert, --tls-key): no kind of file at the path can block ferryd, at
start or at SIGHUP, where a hung main thread would no longer hear SIGTERM;
the log file is never reached through a symbolic link planted at its name;
a token file that another user may write is refused; and the token file's
text is held to PROTOCOL.md 4.1. Every ferryd here is bounded by a timeout:
a blocking open shows as a timeout, never as a hung suite."""

import os
import shutil
import signal
import socket
import subprocess
import unittest

from wire import Server, temp_root, wait_until

FERRYD = os.environ.get("FERRYD", "")
WRITER = "writer-0123456789abcdef"
NEWCOMER = "newcomer-0123456789abcdef"
OTHER_UID = 1234


def run(*args, timeout=10):
    """ferryd to its end; TimeoutExpired (the test fails) if it blocks."""
    return subprocess.run([FERRYD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def waits_in_open(pid):
    """Whether the process waits in open(2) for a FIFO's other end (its
    kernel wait channel, proc(5))."""
    try:
        with open(f"/proc/{pid}/wchan") as f:
            return f.read() == "wait_for_partner"
    except OSError:
        return False


def make_certificate(folder):
    cert = os.path.join(folder, "cert.pem")
    key = os.path.join(folder, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=30)
    return cert, key


class OperatorFiles(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()
        self.addCleanup(shutil.rmtree, self.root)
        self.tokens = os.path.join(self.root, ".tokens")
        self.write_tokens(f"{WRITER} rw\n")

    def write_tokens(self, text, mode=0o600, data=None):
        with open(self.tokens + ".new", "wb") as f:
            f.write(data if data is not None else text.encode())
        os.chmod(self.tokens + ".new", mode)
        os.replace(self.tokens + ".new", self.tokens)

    def fifo(self, name):
        path = os.path.join(self.root, name)
        os.mkfifo(path, 0o600)
        return path

    def start_fails(self, args, status, *words):
        result = run("--root", self.root, "--listen", "127.0.0.1:0", *args)
        self.assertEqual(result.returncode, status, result.stderr)
        for word in words:
            self.assertIn(word, result.stderr.decode())

    def test_a_fifo_or_socket_at_any_named_path_is_refused_at_start(self):
        fifo = self.fifo(".fifo")
        cert, key = make_certificate(self.root)
        listener = socket.socket(socket.AF_UNIX)
        self.addCleanup(listener.close)
        sock = os.path.join(self.root, ".sock")
        listener.bind(sock)
        cases = [(["--token-file", fifo], 5, "FIFO"),
                 (["--token-file", sock], 5, "not a regular file"),
                 (["--config", fifo], 2, "FIFO"),
                 (["--log-file", fifo], 3, "FIFO"),
                 (["--tls-cert", fifo, "--tls-key", key], 6, "FIFO"),
                 (["--tls-cert", cert, "--tls-key", fifo], 6, "FIFO")]
        for args, status, word in cases:
            with self.subTest(args=args):
                self.start_fails(args, status, word)
        # With a reader on the FIFO, a log file there would open: refused as well.
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, reader)
        self.start_fails(["--log-file", fifo], 3, "is not a regular file (it is a FIFO)")

    def test_what_is_not_a_regular_file_is_refused_without_being_opened(self):
        # Opening a FIFO's end wakes whoever waits in open(2) on the other
        # (as opening a device runs its driver's open, which may act): a
        # waiting process shows whether ferryd opened the path at all.
        fifo = self.fifo(".fifo")
        cert, key = make_certificate(self.root)
        cases = [(["--token-file", fifo], 5, "O_WRONLY"),
                 (["--config", fifo], 2, "O_WRONLY"),
                 (["--tls-cert", fifo, "--tls-key", key], 6, "O_WRONLY"),
                 (["--tls-cert", cert, "--tls-key", fifo], 6, "O_WRONLY"),
                 (["--log-file", fifo], 3, "O_RDONLY")]
        for args, status, end in cases:
            with self.subTest(args=args):
                waiter = subprocess.Popen(
                    ["python3", "-c", f"import os; os.open({fifo!r}, os.{end}); print('woken', flush=True)"],
                    stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
                try:
                    self.assertTrue(wait_until(lambda: waits_in_open(waiter.pid), within=10))
                    self.start_fails(args, status, "is not a regular file (it is a FIFO)")
                    self.assertRaises(subprocess.TimeoutExpired, waiter.wait, timeout=0.5)
                finally:
                    waiter.kill()
                    waiter.wait()

    def test_a_log_file_with_another_name_is_refused(self):
        # A hard link is the symbolic link's twin where fs.protected_hardlinks
        # is off: the log's name given to a file ferryd must never append to.
        precious = os.path.join(self.root, ".precious")
        with open(precious, "w") as f:
            f.write("precious\n")
        os.chmod(precious, 0o600)
        log = os.path.join(self.root, ".ferryd.log")
        os.link(precious, log)
        self.start_fails(["--log-file", log], 3, "hard links")
        os.unlink(log)
        with Server(FERRYD, self.root, "--log-file", log) as server:
            os.rename(log, log + ".1")
            os.link(precious, log)
            server.process.send_signal(signal.SIGHUP)

            def old_log():
                with open(log + ".1") as f:
                    return f.read()
            self.assertTrue(wait_until(lambda: "log_reopen_failed" in old_log(), within=10), old_log())
            self.assertIn("hard links", old_log())
        with open(precious) as f:
            self.assertEqual(f.read(), "precious\n")

    def test_a_fifo_at_sighup_keeps_the_tokens_and_the_log_and_sigterm_still_stops(self):
        log = os.path.join(self.root, ".log")
        server = Server(FERRYD, self.root, "--token-file", self.tokens, "--log-file", log)
        try:
            os.unlink(self.tokens)
            os.mkfifo(self.tokens, 0o600)
            os.rename(log, log + ".1")
            os.mkfifo(log, 0o600)
            reader = os.open(log, os.O_RDONLY | os.O_NONBLOCK)  # so that a write open would succeed
            self.addCleanup(os.close, reader)
            server.process.send_signal(signal.SIGHUP)

            def old_log():
                with open(log + ".1") as f:
                    return f.read()
            self.assertTrue(wait_until(lambda: "tokens_kept" in old_log(), within=10), old_log())
            text = old_log()
            self.assertIn("log_reopen_failed", text)
            self.assertIn("FIFO", text.split("log_reopen_failed", 1)[1])
            self.assertIn("FIFO", text.split("tokens_kept", 1)[1])
            self.assertEqual(server.peer(token=WRITER).access, "rw")
            # The main thread is free: the next SIGHUP reads a good file again.
            os.unlink(self.tokens)
            self.write_tokens(f"{NEWCOMER} ro\n")
            server.process.send_signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: "tokens_reloaded" in old_log(), within=10), old_log())
            self.assertEqual(server.peer(token=NEWCOMER).access, "ro")
        finally:
            status = server.stop(timeout=10)
        self.assertEqual(status, 0)

    def test_the_log_file_is_never_reached_through_a_symbolic_link(self):
        folder = os.path.join(self.root, "logs")
        os.mkdir(folder, 0o1777)  # as a folder another user may write
        os.chmod(folder, 0o1777)
        precious = os.path.join(self.root, ".precious")
        with open(precious, "w") as f:
            f.write("precious\n")
        os.chmod(precious, 0o600)
        log = os.path.join(folder, "ferryd.log")
        os.symlink(precious, log)
        self.start_fails(["--log-file", log], 3, "symbolic link")
        os.unlink(log)
        with Server(FERRYD, self.root, "--log-file", log) as server:
            # Rotation, and then a name planted where the log was.
            os.rename(log, log + ".1")
            os.symlink(precious, log)
            server.process.send_signal(signal.SIGHUP)

            def old_log():
                with open(log + ".1") as f:
                    return f.read()
            self.assertTrue(wait_until(lambda: "log_reopen_failed" in old_log(), within=10), old_log())
            self.assertIn("symbolic link", old_log())
            # The old file is kept and written on.
            server.peer().close()
            self.assertTrue(wait_until(lambda: " connect " in old_log(), within=10), old_log())
        with open(precious) as f:
            self.assertEqual(f.read(), "precious\n")

    def test_a_token_file_another_user_may_write_is_refused(self):
        self.write_tokens(f"{WRITER} rw\n", mode=0o620)
        self.start_fails(["--token-file", self.tokens], 5, "its group may write it")
        self.write_tokens(f"{WRITER} rw\n", mode=0o600)
        subprocess.run(["setfacl", "-m", f"u:{OTHER_UID}:rw", self.tokens], check=True, timeout=10)
        self.start_fails(["--token-file", self.tokens], 5, "ACL")
        self.write_tokens(f"{WRITER} rw\n", mode=0o600)
        os.chown(self.tokens, OTHER_UID, OTHER_UID)
        self.start_fails(["--token-file", self.tokens], 5, f"belongs to uid {OTHER_UID}")
        # At SIGHUP: the tokens read before stay in force.
        self.write_tokens(f"{WRITER} rw\n")
        with Server(FERRYD, self.root, "--token-file", self.tokens) as server:
            self.write_tokens(f"{WRITER} rw\n{NEWCOMER} rw\n")
            os.chown(self.tokens, OTHER_UID, OTHER_UID)
            server.process.send_signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: "tokens_kept" in server.log_text(), within=10))
            self.assertIn(f"belongs to uid {OTHER_UID}", server.log_text())

    def test_a_link_on_the_way_to_a_token_file_is_held_to_the_folder_rules(self):
        # Round 76, F3: a symbolic link at the token file's path, in a folder
        # anyone may write, was accepted (only the target's folders were
        # checked), and anyone could point it at a file of their choosing.
        shared = os.path.join(self.root, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o777)
        link = os.path.join(shared, "tokens")
        os.symlink(self.tokens, link)
        self.start_fails(["--token-file", link], 5, f'{shared}\\" on the way', "mode 777")
        # A folder on the way that is a link in such a folder: the same.
        safe = os.path.join(self.root, "safe")
        os.mkdir(safe, 0o700)
        os.rename(self.tokens, os.path.join(safe, "tokens"))
        os.symlink(safe, os.path.join(shared, "to-safe"))
        self.start_fails(["--token-file", os.path.join(shared, "to-safe", "tokens")], 5, f'{shared}\\" on the way')
        # A link in a sticky folder is someone's to replace when it is theirs.
        sticky = os.path.join(self.root, "sticky")
        os.mkdir(sticky)
        os.chmod(sticky, 0o1777)
        theirs = os.path.join(sticky, "tokens")
        os.symlink(os.path.join(safe, "tokens"), theirs)
        os.lchown(theirs, OTHER_UID, OTHER_UID)
        self.start_fails(["--token-file", theirs], 5, f"belongs to uid {OTHER_UID}", "symbolic link")
        # Links the operator owns, in folders no one else may write, are fine.
        mine = os.path.join(self.root, "mine")
        os.mkdir(mine, 0o755)
        os.symlink("../safe/tokens", os.path.join(mine, "tokens"))
        with Server(FERRYD, self.root, "--token-file", os.path.join(mine, "tokens")) as server:
            self.assertEqual(server.peer(token=WRITER).access, "rw")
            # At SIGHUP, the link swapped for one in the open folder: the tokens stay.
            os.unlink(os.path.join(mine, "tokens"))
            os.symlink(link, os.path.join(mine, "tokens"))
            os.unlink(link)
            os.symlink(os.path.join(safe, "tokens"), link)
            server.process.send_signal(signal.SIGHUP)
            self.assertTrue(wait_until(lambda: "tokens_kept" in server.log_text(), within=10))
            self.assertIn("mode 777", server.log_text())

    def test_a_tls_key_others_may_read_or_change_is_refused(self):
        # Round 76, F6: a key of mode 644 or 666, or another user's, was used
        # as it was: whoever may read it may be this server to its clients.
        cert, key = make_certificate(self.root)
        for mode, owner, words in ((0o644, 0, ["mode 644", "anyone may read it"]),
                                   (0o660, 0, ["mode 660", "its group may write it"]),
                                   (0o600, OTHER_UID, [f"belongs to uid {OTHER_UID}"])):
            with self.subTest(mode=oct(mode), owner=owner):
                os.chmod(key, mode)
                os.chown(key, owner, owner)
                self.start_fails(["--tls-cert", cert, "--tls-key", key], 6, f'key \\"{key}\\"', *words)
        os.chown(key, 0, 0)
        os.chmod(key, 0o600)
        # An ACL's read for another user shows only in the group bits (its
        # mask), which a group's read may have too (round 77).
        subprocess.run(["setfacl", "-m", f"u:{OTHER_UID}:r", key], check=True, timeout=10)
        self.start_fails(["--tls-cert", cert, "--tls-key", key], 6, "has an ACL that lets users or groups")
        subprocess.run(["setfacl", "-b", key], check=True, timeout=10)
        os.chmod(key, 0o640)   # a group may read it (Debian's ssl-cert)
        with Server(FERRYD, self.root, "--tls-cert", cert, "--tls-key", key):
            pass

    def test_an_encrypted_tls_key_is_refused_without_a_prompt(self):
        # Round 76, F8: OpenSSL asked for a passphrase on the terminal or read
        # standard input; ferryd reads none, and says why the key is refused.
        cert, key = make_certificate(self.root)
        locked = os.path.join(self.root, "locked.pem")
        subprocess.run(["openssl", "pkey", "-in", key, "-out", locked, "-aes256", "-passout", "pass:secret"],
                       check=True, capture_output=True, timeout=30)
        os.chmod(locked, 0o600)
        answer = os.path.join(self.root, ".answer")
        with open(answer, "w") as f:
            f.write("secret\n")
        with open(answer) as stdin:
            result = subprocess.run([FERRYD, "--root", self.root, "--listen", "127.0.0.1:0", "--tls-cert", cert,
                                     "--tls-key", locked], stdin=stdin, capture_output=True, timeout=10)
        self.assertEqual(result.returncode, 6, result.stderr)
        self.assertIn(b"is encrypted", result.stderr)
        self.assertNotIn(b"pass phrase", result.stderr + result.stdout)

    def test_a_config_file_others_may_change_is_refused(self):
        # Round 76, F7: the config file decides the root, the token file and
        # read-only, and another user's, or one anyone may write, was used.
        config = os.path.join(self.root, ".ferryd.conf")
        with open(config, "w") as f:
            f.write('listen = "127.0.0.1:0"\n')
        for mode, owner, words in ((0o666, 0, ["mode 666", "anyone may write it"]),
                                   (0o644, OTHER_UID, [f"belongs to uid {OTHER_UID}"])):
            with self.subTest(mode=oct(mode), owner=owner):
                os.chmod(config, mode)
                os.chown(config, owner, owner)
                result = run("--root", self.root, "--config", config)
                self.assertEqual(result.returncode, 2, result.stderr)
                for word in words:
                    self.assertIn(word, result.stderr.decode())
        os.chown(config, 0, 0)
        os.chmod(config, 0o644)
        shared = os.path.join(self.root, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o777)
        os.rename(config, os.path.join(shared, "ferryd.conf"))
        result = run("--root", self.root, "--config", os.path.join(shared, "ferryd.conf"))
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn(f'{shared}\\" on the way', result.stderr.decode())

    def test_a_log_file_another_user_owns_or_may_write_is_not_adopted(self):
        # Round 76, F5: between a rotation and its SIGHUP another user made
        # the log's name in a folder where anyone may add names; ferryd
        # appended to that file, and its owner rewrote the lines.
        folder = os.path.join(self.root, "logs")
        os.mkdir(folder)
        os.chmod(folder, 0o1777)
        log = os.path.join(folder, "ferryd.log")
        with open(log, "w"):
            pass
        os.chown(log, OTHER_UID, OTHER_UID)
        self.start_fails(["--log-file", log], 3, f"belongs to uid {OTHER_UID}")
        os.chown(log, 0, 0)
        os.chmod(log, 0o666)
        self.start_fails(["--log-file", log], 3, "anyone may write it")
        os.unlink(log)
        old_mask = os.umask(0)
        try:
            server = Server(FERRYD, self.root, "--log-file", log)
        finally:
            os.umask(old_mask)
        with server:
            self.assertEqual(os.stat(log).st_mode & 0o777, 0o640)   # not 0666, whatever the umask
            os.rename(log, log + ".1")
            with open(log, "w"):
                pass
            os.chown(log, OTHER_UID, OTHER_UID)
            server.process.send_signal(signal.SIGHUP)

            def old_log():
                with open(log + ".1") as f:
                    return f.read()
            self.assertTrue(wait_until(lambda: "log_reopen_failed" in old_log(), within=10), old_log())
            self.assertIn(f"belongs to uid {OTHER_UID}", old_log())
            server.peer().close()
            self.assertTrue(wait_until(lambda: " connect " in old_log(), within=10), old_log())
        with open(log) as f:
            self.assertEqual(f.read(), "")

    def test_a_umask_that_lets_others_write_is_warned_about(self):
        # Round 76, F11: under umask 000 every folder a put made was 0777,
        # without a word.
        for mask, warned in ((0o000, True), (0o002, False), (0o022, False)):
            with self.subTest(umask=oct(mask)):
                old_mask = os.umask(mask)
                try:
                    server = Server(FERRYD, self.root)
                finally:
                    os.umask(old_mask)
                with server:
                    # Said with the start's other words on exposure, after them.
                    self.assertTrue(wait_until(lambda: "no --token-file" in server.log_text(), within=10))
                    said = "umask %03o: the folders and files ferryd makes are writable" % mask
                    # Written right after that notice: waited for too, where it is due.
                    if warned:
                        wait_until(lambda: said in server.log_text(), within=10)
                    self.assertEqual(said in server.log_text(), warned, server.log_text())

    def test_token_file_text_is_held_to_the_documented_rules(self):
        cases = [(b"\xef\xbb\xbf" + WRITER.encode() + b" rw\n", "line 1", "byte order mark"),
                 (WRITER.encode() + b" rw\n" + "é".encode() * 8 + b" rw\n", "line 2", "has 8"),
                 (b"TTTTTTTT\xffTTTTTTTTTT rw\n", "line 1", "not UTF-8"),
                 (b"TTTTTTTT\x00TTTTTTTTTT rw\n", "line 1", "NUL"),
                 ("TTTTTTTT\u00a0TTTTTTTTTT rw\n".encode(), "line 1", "U+00A0"),
                 (b"TTTTTTTT\x1bTTTTTTTTTT rw\n", "line 1", "U+001B"),
                 (b"TTTTTTTT\x0bTTTTTTTTTT rw\n", "line 1", "U+000B")]
        for data, line, why in cases:
            with self.subTest(data=data):
                self.write_tokens("", data=data)
                self.start_fails(["--token-file", self.tokens], 5, line, why)


if __name__ == "__main__":
    unittest.main()
