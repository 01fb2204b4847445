"""A mount made or removed at a name while the server acts on that name.

A mount point is neither entered nor described (PROTOCOL.md 5.1): a folder
mounted at a name, or a file bind-mounted over one, is `forbidden`. The
server's checks and its act must be about one entry: a set_mtime that
checked the name and then set the time by name again went through a mount
made in between, onto the mount's root or a bind-mounted file's source
(attack round 72, F1); a stat that took the attributes by one look and the
mount by a second one answered with a mount's attributes when the mount
went in between (F2). strace holds the server between its looks (as in
test_moved_meanwhile) while the test mounts or unmounts. A bind mount of
the temp folder's own file system has the served folder's device, so only
the mount id tells it.

Needs root (mount(8)) and strace; every mount is made under a temp folder
and removed by the test."""

import ctypes
import os
import shutil
import subprocess
import tempfile
import threading
import unittest

from test_moved_meanwhile import HeldCall
from wire import Peer, Server

FERRYD = os.environ.get("FERRYD", "")
libc = ctypes.CDLL(None, use_errno=True)
STRANGE_TIME = 1_000_000_000


def can_mount():
    """Whether this process may bind-mount (root, with mount(8)): tried on a scratch folder."""
    if os.geteuid() != 0 or not shutil.which("mount") or not shutil.which("strace"):
        return False
    scratch = tempfile.mkdtemp(prefix="ferry-can-mount-")
    try:
        if subprocess.run(["mount", "--bind", scratch, scratch], capture_output=True).returncode != 0:
            return False
        subprocess.run(["umount", scratch], capture_output=True)
        return True
    finally:
        os.rmdir(scratch)


@unittest.skipUnless(FERRYD and can_mount(), "needs FERRYD, root, mount(8) and strace")
class AMountAtTheNameMeanwhile(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="ferry-mounted-")
        self.addCleanup(shutil.rmtree, self.base)
        self.root = os.path.join(self.base, "share")
        self.sources = os.path.join(self.base, "outside")
        os.makedirs(os.path.join(self.root, "t"), mode=0o755)
        os.chmod(os.path.join(self.root, "t"), 0o755)
        with open(os.path.join(self.root, "f"), "wb") as f:
            f.write(b"served file")
        # What the mounts show: a folder and a file of other modes and sizes.
        os.makedirs(os.path.join(self.sources, "d"))
        os.chmod(os.path.join(self.sources, "d"), 0o700)
        with open(os.path.join(self.sources, "secret"), "wb") as f:
            f.write(b"on another mount: 24 B\n!")
        for source in ("d", "secret"):
            os.utime(os.path.join(self.sources, source), (978_307_200, 978_307_200))
        self.server = Server(FERRYD, self.root)
        self.addCleanup(self.server.stop)
        self.peer = Peer(self.server.port, version=2)
        self.addCleanup(self.peer.close)

    def mount(self, source, name):
        target = os.path.join(self.root, name)
        subprocess.run(["mount", "--bind", os.path.join(self.sources, source), target], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", target], capture_output=True)

    def unmount(self, name):
        subprocess.run(["umount", os.path.join(self.root, name)], check=True)

    def held_at_first_statx(self, request, at, act):
        """Sends `request`, holds the server in its first statx (on entry or exit), calls `act`
        meanwhile, and returns the reply."""
        held = HeldCall(self.server.pid, "statx", self.base, nth=1, at=at)
        try:
            self.peer.send(request)
            self.assertTrue(held.wait_for_the_hold(), "the server never reached its statx")
            act()
            return self.peer.reply()
        finally:
            held.stop()

    def assertSourceUntouched(self, source):
        self.assertEqual(os.stat(os.path.join(self.sources, source)).st_mtime, 978_307_200,
                         f"the time of {source}, on another mount, was set")

    def retime_while_mounting(self, name, source):
        reply = self.held_at_first_statx({"op": "set_mtime", "path": name, "mtime": STRANGE_TIME}, "exit",
                                         lambda: self.mount(source, name))
        self.assertSourceUntouched(source)
        return reply

    def test_a_folder_mounted_while_its_time_is_set_is_not_retimed(self):
        reply = self.retime_while_mounting("t", "d")
        self.assertEqual(reply.get("error", {}).get("code"), "forbidden", reply)

    def test_a_file_bind_mounted_while_its_time_is_set_is_not_retimed(self):
        reply = self.retime_while_mounting("f", "secret")
        self.assertEqual(reply.get("error", {}).get("code"), "forbidden", reply)

    def stat_while_unmounting(self, name, source):
        self.mount(source, name)
        return self.held_at_first_statx({"op": "stat", "name": name}, "enter", lambda: self.unmount(name))

    def test_a_stat_never_answers_with_the_attributes_of_a_folder_unmounted_meanwhile(self):
        reply = self.stat_while_unmounting("t", "d")
        if reply.get("ok"):
            self.assertEqual(reply["mode"], 0o755, f"a mount's root described: {reply}")
        else:
            self.assertEqual(reply.get("error", {}).get("code"), "forbidden", reply)

    def test_a_stat_never_answers_with_the_attributes_of_a_file_unmounted_meanwhile(self):
        reply = self.stat_while_unmounting("f", "secret")
        if reply.get("ok"):
            self.assertEqual(reply["size"], len(b"served file"), f"a bind-mounted file described: {reply}")
        else:
            self.assertEqual(reply.get("error", {}).get("code"), "forbidden", reply)

    def test_a_get_never_sends_a_file_from_outside_through_a_folder_swapped_under_a_mount(self):
        """Attack round 86, F1. A small file is read whole by the lookup that opens it, and the check after the
        read, which finds the very file at its path from the root, stood for the look at the folder's place.
        Swapped between the folder's lookup and the file's open: the folder moved out of the tree, an outside
        file exchanged into it under the name, and a folder moved in whose file at that name is a bind mount
        of that same outside file. The open took the outside file through the folder held; the check's stat
        followed the mount to the same file, and the get sent it, ok. The name's mount now counts too."""
        with open(os.path.join(self.root, "t", "g"), "wb") as f:
            f.write(b"the served file in t")
        spare = os.path.join(self.sources, "spare")
        os.makedirs(spare)
        with open(os.path.join(spare, "g"), "wb") as f:
            f.write(b"a placeholder")
        secret = os.path.join(self.sources, "secret")
        with open(secret, "rb") as f:
            outside = f.read()
        subprocess.run(["mount", "--bind", secret, os.path.join(spare, "g")], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", os.path.join(self.root, "t", "g")], capture_output=True)
        self.addCleanup(subprocess.run, ["umount", "-l", os.path.join(spare, "g")], capture_output=True)
        stash = os.path.join(self.sources, "stash")

        # Held once its lookup of the folder "t" (the thread's first openat2) is done; swapped meanwhile.
        held = HeldCall(self.server.pid, "openat2", self.base, nth=1, at="exit")
        swapped = []

        def swap_in_the_hold():
            if held.wait_for_the_hold():
                os.rename(os.path.join(self.root, "t"), stash)
                swapped.append(libc.renameat2(-100, os.path.join(stash, "g").encode(), -100, secret.encode(), 2))
                os.rename(spare, os.path.join(self.root, "t"))

        swapper = threading.Thread(target=swap_in_the_hold)
        swapper.start()
        try:
            reply, data, trailer = self.peer.get("t/g")
        finally:
            swapper.join()
            held.stop()
        self.assertEqual(swapped, [0], "the server never reached its openat2, or the exchange failed")
        self.assertNotEqual(data, outside, f"the outside file was sent: {reply} {trailer}")
        self.assertFalse(reply.get("ok") and trailer.get("ok"), (reply, trailer))
        code = (trailer if reply.get("ok") else reply).get("error", {}).get("code")
        self.assertIn(code, ("forbidden", "file_changed"), (reply, trailer))

if __name__ == "__main__":
    unittest.main()
