"""What the ferry_client tests share: the library imported straight from
the tree, a ferryd on a free loopback port (test/harness.py's), and files."""

import hashlib
import os
import shutil
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_ROOT = os.path.normpath(os.path.join(HERE, ".."))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, PACKAGE_ROOT)
sys.path.insert(0, os.path.join(REPO, "test"))
import ferry_client  # noqa: E402,F401
import harness  # noqa: E402

FERRYD = os.environ.get("FERRYD", "")
MTIME = 1764370000


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def write(path, content, mtime=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def read(path):
    with open(path, "rb") as f:
        return f.read()




class Cut(Exception):
    """Raised by a progress callback to cut a transfer midway."""


def cut_after(limit):
    """A progress callback that raises Cut once `limit` bytes are held."""
    def progress(done, total):
        if done >= limit and done < total:
            raise Cut(done)
    return progress


class ServerCase(unittest.TestCase):
    """One ferryd per test class, serving a fresh folder; `local` is a
    scratch folder for the client side."""

    server_args = ()

    @classmethod
    def prepare(cls, root):
        """Fills the served folder before the server starts."""

    @classmethod
    def setUpClass(cls):
        cls.scratch = harness.Scratch("ferry-pylib-")
        cls.root, cls.local = cls.scratch.root, cls.scratch.local
        cls.prepare(cls.root)
        cls.server = harness.Server(FERRYD, cls.root, *cls.server_args)
        cls.address = cls.server.address

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        cls.scratch.remove()

    def connect(self, **kwargs):
        client = ferry_client.connect(self.address, timeout=20, **kwargs)
        self.addCleanup(client.close)
        return client

    def fresh_folder(self):
        folder = tempfile.mkdtemp(dir=self.local)
        self.addCleanup(shutil.rmtree, folder, True)
        return folder
