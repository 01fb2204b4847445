"""ferryd where /proc is not procfs: not mounted (a chroot or a container
without it), or a plain folder at its place, which a client may have made
where ferryd serves its own root (`--root /` in a chroot).

A published file takes its folder's default ACL (acl(5)). ferryd read it
with libacl, which takes a path, through /proc/self/fd/N: without /proc
every new file stayed 0600 (with a warning), and with a client's folders at
/proc's place the default ACL was read from the client's folder (none), so
a file in a folder whose default ACL says o::--- came out 0644. It is now
read by descriptor (fgetxattr), and every /proc/self/fd name ferryd still
uses is taken only where /proc is procfs's.
"""
import ctypes
import os
import shutil
import stat
import subprocess
import unittest

from test_folder_faults import preloaded
from wire import Server, temp_root

FERRYD = os.environ.get("FERRYD", "")

CLONE_NEWNS = 0x00020000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18


def hide_proc(plain_folder=None):
    """A preexec_fn: a mount namespace of its own with /proc covered, by an
    empty tmpfs or by PLAIN_FOLDER (bound there); umask 022."""
    def run():
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
        if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
            raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
        if plain_folder is None:
            covered = libc.mount(b"none", b"/proc", b"tmpfs", 0, None)
        else:
            covered = libc.mount(plain_folder.encode(), b"/proc", None, MS_BIND, None)
        if covered != 0:
            raise OSError(ctypes.get_errno(), "cover /proc")
        os.umask(0o022)
    return run


def can_hide_proc():
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("setfacl") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs none /proc && test ! -e /proc/self"],
                           capture_output=True)
    return probe.returncode == 0


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def acl_text(path):
    return subprocess.run(["getfacl", "-cpn", path], capture_output=True, text=True).stdout


@unittest.skipUnless(FERRYD and can_hide_proc(), "needs FERRYD, root (a mount namespace), unshare and setfacl")
class PublishWithoutProc(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()
        self.addCleanup(shutil.rmtree, self.root, True)
        for folder in ("sub", "private", "team"):
            os.mkdir(os.path.join(self.root, folder))
        # A default ACL on the temp folder would pass down: the plain case
        # is a folder without one.
        for folder in (self.root, os.path.join(self.root, "sub")):
            try:
                os.removexattr(folder, "system.posix_acl_default")
            except OSError:
                pass
        if subprocess.run(["setfacl", "-d", "-m", "u::rwx,g::---,o::---", os.path.join(self.root, "private")],
                          capture_output=True).returncode != 0:
            self.skipTest("this file system keeps no ACL")
        subprocess.run(["setfacl", "-d", "-m", "u::rwx,g::rwx,o::r-x,g:0:rwx,m::rwx", os.path.join(self.root, "team")],
                       check=True)

    def check_publishes(self, server):
        peer = server.peer(version=2)
        expected = {"top.txt": 0o644, "sub/inner.txt": 0o644, "private/secret.txt": 0o600, "team/shared.txt": 0o664}
        for name, wanted in expected.items():
            with self.subTest(name=name):
                reply = peer.put(name, b"published\n")
                self.assertTrue(reply.get("ok"), reply)
                self.assertEqual(oct(mode(os.path.join(self.root, name))), oct(wanted))
        shared = acl_text(os.path.join(self.root, "team/shared.txt"))
        self.assertIn("group:0:rwx", shared)  # the default ACL's entry,
        self.assertIn("mask::rw-", shared)    # limited to 0666 (acl(5))
        _, data, _ = peer.get("sub/inner.txt")
        peer.close()
        self.assertEqual(data, b"published\n")
        self.assertNotIn("default ACL cannot be read", server.log_text())

    def test_without_proc_a_new_file_gets_its_folders_default_acl_or_its_plain_mode(self):
        with Server(FERRYD, self.root, preexec_fn=hide_proc()) as server:
            self.check_publishes(server)

    def test_a_clients_folders_at_procs_place_change_no_files_mode(self):
        # What a client could make in a served chroot's root: proc/self/fd/N
        # for every descriptor ferryd may hold, none with a default ACL, and
        # at each N the names the test then replaces, without their ACL.
        plain = os.path.join(self.root, "proc")
        for fd in range(64):
            os.makedirs(os.path.join(plain, "self", "fd", str(fd)))
            with open(os.path.join(plain, "self", "fd", str(fd), "kept.txt"), "wb") as f:
                f.write(b"a client's\n")
        kept = os.path.join(self.root, "sub", "kept.txt")
        with open(kept, "wb") as f:
            f.write(b"old\n")
        os.chmod(kept, 0o640)
        subprocess.run(["setfacl", "-m", "u:65534:---,g::r--,m::r--", kept], check=True)
        with Server(FERRYD, self.root, preexec_fn=hide_proc(plain)) as server:
            self.check_publishes(server)
            peer = server.peer(version=2)
            reply = peer.put("sub/kept.txt", b"new\n")
            peer.close()
            self.assertTrue(reply.get("ok"), reply)
        self.assertIn("user:65534:---", acl_text(kept))  # the replaced file's ACL, not the client's none
        self.assertEqual(oct(mode(kept)), oct(0o640))


@unittest.skipUnless(FERRYD and os.geteuid() == 0 and shutil.which("setfacl"), "needs FERRYD, root and setfacl")
class UnreadableDefaultAcl(unittest.TestCase):
    """A folder's default ACL that cannot be read (EIO from the fault
    library) leaves a new file at 0600 with no ACL, never wider, and the log
    says why; the commit is still answered ok (PROTOCOL.md 4.5)."""

    def test_a_new_file_stays_0600_and_the_log_says_why(self):
        root = temp_root()
        self.addCleanup(shutil.rmtree, root, True)
        os.mkdir(os.path.join(root, "open"))
        if subprocess.run(["setfacl", "-d", "-m", "u::rwx,g::rwx,o::rwx", os.path.join(root, "open")],
                          capture_output=True).returncode != 0:
            self.skipTest("this file system keeps no ACL")
        with Server(FERRYD, root, env=preloaded(FERRY_DEFAULT_ACL_EIO="1")) as server:
            peer = server.peer(version=2)
            reply = peer.put("open/new.txt", b"x")
            peer.close()
            self.assertTrue(reply.get("ok"), reply)
            log = server.log_text()
        published = os.path.join(root, "open", "new.txt")
        self.assertEqual(oct(mode(published)), oct(0o600))  # never the ACL's 0666
        self.assertNotIn("user:", acl_text(published).replace("user::", ""))
        self.assertIn("default ACL cannot be read", log)


if __name__ == "__main__":
    unittest.main()
