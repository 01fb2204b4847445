"""ferryd where /proc is not mounted (a chroot or a container without it).

A published file takes its folder's default ACL (acl(5)), which libacl
reads by path only, so ferryd names the held folder /proc/self/fd/N. Most
folders hold none, and a descriptor says so without /proc: there a new file
gets 0666 less the umask, as everywhere. Before, every new file in such a
ferryd stayed 0600, with a warning. A folder that does hold a default ACL
still needs /proc: its file stays 0600, never wider, and the log says why.
"""
import ctypes
import os
import shutil
import stat
import subprocess
import unittest

from wire import Server, temp_root

FERRYD = os.environ.get("FERRYD", "")

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18


def without_proc():
    """preexec_fn: a mount namespace of its own, /proc covered by an empty
    tmpfs (nothing outside the child sees either), umask 022."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
    if libc.mount(b"none", b"/proc", b"tmpfs", 0, None) != 0:
        raise OSError(ctypes.get_errno(), "mount tmpfs on /proc")
    os.umask(0o022)


def can_hide_proc():
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs none /proc && test ! -e /proc/self"],
                           capture_output=True)
    return probe.returncode == 0


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@unittest.skipUnless(FERRYD and can_hide_proc(), "needs FERRYD and root (a mount namespace)")
class NewFilesWithoutProc(unittest.TestCase):
    def setUp(self):
        self.root = temp_root()
        os.mkdir(os.path.join(self.root, "sub"))
        self.addCleanup(shutil.rmtree, self.root, True)
        # A default ACL on the temp folder would pass down to these two and
        # need /proc: the plain case is folders without one.
        for folder in (self.root, os.path.join(self.root, "sub")):
            try:
                os.removexattr(folder, "system.posix_acl_default")
            except OSError:
                pass

    def test_a_new_file_gets_its_plain_mode_in_any_folder(self):
        with Server(FERRYD, self.root, preexec_fn=without_proc) as server:
            peer = server.peer(version=2)
            for name in ("top.txt", "sub/inner.txt"):
                with self.subTest(name=name):
                    reply = peer.put(name, b"published without /proc\n")
                    self.assertTrue(reply.get("ok"), reply)
                    self.assertEqual(mode(os.path.join(self.root, name)), 0o644)
            _, data, _ = peer.get("sub/inner.txt")
            self.assertEqual(data, b"published without /proc\n")
            self.assertNotIn("default ACL cannot be read", server.log_text())

    def test_a_folder_with_a_default_acl_keeps_the_file_at_0600_and_says_why(self):
        if shutil.which("setfacl") is None:
            self.skipTest("no setfacl")
        folder = os.path.join(self.root, "sub")
        if subprocess.run(["setfacl", "-d", "-m", "u::rwx,g::rwx,o::rwx", folder],
                          capture_output=True).returncode != 0:
            self.skipTest("this file system keeps no ACL")
        with Server(FERRYD, self.root, preexec_fn=without_proc) as server:
            reply = server.peer(version=2).put("sub/acl.txt", b"x")
            self.assertTrue(reply.get("ok"), reply)
            self.assertEqual(mode(os.path.join(folder, "acl.txt")), 0o600)  # never the ACL's 0666
            self.assertIn("default ACL cannot be read", server.log_text())


if __name__ == "__main__":
    unittest.main()
