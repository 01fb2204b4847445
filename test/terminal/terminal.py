"""A child process on a pseudo-terminal of a given size, and how text looks
on it (display widths, the redrawn segments of a progress line)."""

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time
import unicodedata

ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def display_width(text):
    """Columns `text` takes on a terminal: East Asian wide and full-width
    characters two, combining marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def screen_segments(output):
    """The pieces a terminal shows on one row each: split at carriage
    returns and newlines, escape sequences removed."""
    text = ESCAPE.sub("", output)
    return [piece for piece in re.split(r"[\r\n]", text) if piece]


def set_size(fd, columns, rows=24):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


class Terminal:
    """Runs argv with its standard input, output and error on a new
    pseudo-terminal `columns` wide, which is its controlling terminal (so
    that a resize sends it SIGWINCH)."""

    def __init__(self, argv, columns, env=None, cwd=None, stdout_file=None):
        self.master, slave = os.openpty()
        set_size(slave, columns)
        child_env = dict(os.environ)
        child_env.update({"TERM": "xterm", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"})
        child_env.pop("COLUMNS", None)
        if env:
            child_env.update(env)
        self.process = subprocess.Popen(
            argv, stdin=slave, stdout=stdout_file if stdout_file is not None else slave, stderr=slave,
            env=child_env, cwd=cwd, start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        self.screen = b""
        self.mark = 0

    def resize(self, columns):
        set_size(self.master, columns)

    def type(self, text):
        """Sends keys; the next read_until looks only at what follows."""
        self.mark = len(self.screen)
        os.write(self.master, text.encode())

    def _read_some(self, wait):
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every copy of the child's side is closed
            return False
        if not data:
            return False
        self.screen += data
        return True

    def read_until(self, text, within=60.0):
        """Everything shown so far once `text` shows (as str), or None.
        Escape sequences (cursor moves of a redraw) do not count: "a\x1b[5Gb"
        shows "ab"."""
        deadline = time.time() + within
        while text not in ESCAPE.sub("", self.screen[self.mark:].decode("utf-8", errors="replace")):
            if time.time() > deadline or not self._read_some(0.1):
                return None
        return self.text()

    def finish(self, within=120.0):
        """Reads until the child exits; returns its exit status."""
        deadline = time.time() + within
        while time.time() < deadline:
            if not self._read_some(0.1) and self.process.poll() is not None:
                break
            if self.process.poll() is not None:
                while self._read_some(0.05) and select.select([self.master], [], [], 0)[0]:
                    pass
                break
        else:
            self.process.send_signal(signal.SIGKILL)
        code = self.process.wait()
        os.close(self.master)
        return code

    def text(self):
        return self.screen.decode("utf-8", errors="replace")
